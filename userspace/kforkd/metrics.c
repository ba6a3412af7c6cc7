// SPDX-License-Identifier: GPL-2.0-only
/* metrics.c - kforkd's counters and latency histograms, written out in Prometheus text format. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "kforkd.h"

static const char *const outcome_names[] = {
	[KFORKD_OK] = "ok",
	[KFORKD_CODE_ERROR] = "code_error",
	[KFORKD_TIMEOUT] = "timeout",
	[KFORKD_BAD_REQUEST] = "bad_request",
	[KFORKD_UNAUTHORIZED] = "unauthorized",
	[KFORKD_BUSY] = "busy",
	[KFORKD_INTERNAL] = "internal",
};
_Static_assert(sizeof(outcome_names) / sizeof(outcome_names[0]) == KFORKD_OUTCOME_MAX,
	       "outcome_names out of step with enum kforkd_outcome");

/* Upper bounds in microseconds; Prometheus wants seconds, printed as such. */
static const uint64_t bucket_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
#define N_BUCKETS	(sizeof(bucket_us) / sizeof(bucket_us[0]))

struct histogram {
	atomic_ulong le[N_BUCKETS];	/* not cumulative here; summed when written */
	atomic_ulong count;
	atomic_ulong sum_us;
};

static atomic_ulong outcomes[KFORKD_OUTCOME_MAX];
static struct histogram spawn_hist, total_hist;
static atomic_long live_clones;

void kforkd_metrics_outcome(enum kforkd_outcome outcome)
{
	if (outcome < KFORKD_OUTCOME_MAX)
		atomic_fetch_add(&outcomes[outcome], 1);
}

static void histogram_add(struct histogram *h, uint64_t us)
{
	for (size_t i = 0; i < N_BUCKETS; i++) {
		if (us <= bucket_us[i]) {
			atomic_fetch_add(&h->le[i], 1);
			break;
		}
	}
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, us);
}

void kforkd_metrics_latency(uint64_t spawn_us, uint64_t total_us)
{
	histogram_add(&spawn_hist, spawn_us);
	histogram_add(&total_hist, total_us);
}

void kforkd_metrics_clones(int delta)
{
	atomic_fetch_add(&live_clones, delta);
}

long kforkd_metrics_live_clones(void)
{
	return atomic_load(&live_clones);
}

static void histogram_write(FILE *f, const char *name, const char *help, struct histogram *h)
{
	unsigned long cum = 0, count = atomic_load(&h->count);

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load(&h->le[i]);
		fprintf(f, "%s_bucket{le=\"%g\"} %lu\n", name, bucket_us[i] / 1e6, cum);
	}
	/* count was read first: +Inf may not be below a bucket counted since. */
	fprintf(f, "%s_bucket{le=\"+Inf\"} %lu\n", name, count > cum ? count : cum);
	fprintf(f, "%s_sum %.6f\n%s_count %lu\n", name, atomic_load(&h->sum_us) / 1e6, name,
		count > cum ? count : cum);
}

char *kforkd_metrics_text(unsigned int queue_depth, unsigned int running, unsigned int workers)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputs("# HELP kforkd_requests_total Exec requests (each of a batch counts once) and refused requests, by outcome.\n"
	      "# TYPE kforkd_requests_total counter\n", f);
	for (int i = 0; i < KFORKD_OUTCOME_MAX; i++)
		fprintf(f, "kforkd_requests_total{outcome=\"%s\"} %lu\n", outcome_names[i],
			atomic_load(&outcomes[i]));
	histogram_write(f, "kforkd_spawn_seconds", "kf_spawn() call to runnable clone.", &spawn_hist);
	histogram_write(f, "kforkd_total_seconds", "Request received to result ready, queueing included.",
			&total_hist);
	fprintf(f, "# HELP kforkd_live_clones Clones kforkd holds now.\n# TYPE kforkd_live_clones gauge\n"
		"kforkd_live_clones %ld\n", atomic_load(&live_clones));
	fprintf(f, "# HELP kforkd_queue_depth Requests waiting for a worker.\n# TYPE kforkd_queue_depth gauge\n"
		"kforkd_queue_depth %u\n", queue_depth);
	fprintf(f, "# HELP kforkd_running Requests a worker is running.\n# TYPE kforkd_running gauge\n"
		"kforkd_running %u\n", running);
	fprintf(f, "# HELP kforkd_workers Worker threads.\n# TYPE kforkd_workers gauge\n"
		"kforkd_workers %u\n", workers);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
