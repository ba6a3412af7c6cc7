// SPDX-License-Identifier: GPL-2.0-only
/* session.c - one-shot Python exec: in the warm interpreter (in place, a session) vs fork-per-exec. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfork.h"

/*
 *   build/bench/session-bench -t TEMPLATE [-n N] [-b user,kmod] [-o RUNS.jsonl]
 *
 * For each backend and each mode, N cycles of: kf_spawn, (in place:
 * kf_session_begin), exec print(1+1), exec it again in the
 * same clone, kf_destroy. Modes and backends run round-robin, one cycle each
 * per round, so drift in the (emulated) lab hits them alike. Figures:
 *   ttfr    kf_spawn() call -> the first exec's result (DESIGN.md's TTFR)
 *   exec1   the first exec alone (kf_exec() call -> EXIT)
 *   exec2   the second exec in the same clone (pages the first touched are the clone's now)
 *   fb1     the first exec's first byte of output
 * Every exec must print "2\n" and exit 0, else the cycle counts as failed.
 * One line per cycle goes to RUNS.jsonl; a Markdown table of p50/p99 to stdout.
 */
enum { FIG_TTFR, FIG_EXEC1, FIG_EXEC2, FIG_FB1, FIG_MAX };
static const char *const fig_names[FIG_MAX] = { "ttfr", "exec1", "exec2", "fb1" };

struct series {
	enum kf_backend backend;
	int in_place;
	struct kf_template *tmpl;
	double *v[FIG_MAX];	/* microseconds */
	int n, failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int exec_ok(struct kf_clone *c, const char *code, const char *want, struct kf_exec_result *res)
{
	struct kf_exec_req req = { .lang = KF_EXEC_PYTHON, .code = code, .code_len = strlen(code),
				   .timeout_ms = 60000 };
	int err = kf_exec(c, &req, res);

	if (!err && (res->exit_code || !res->out || strcmp(res->out, want)))
		err = -EPROTO;
	return err;
}

static void cycle(struct series *s, const char *code, const char *want, FILE *runs)
{
	struct kf_exec_result r1 = { 0 }, r2 = { 0 };
	struct kf_clone *c;
	uint64_t t0 = now_ns(), ttfr;
	int err;

	err = kf_spawn(s->tmpl, &c);
	if (err)
		goto fail;
	if (s->in_place)
		err = kf_session_begin(c);
	if (!err)
		err = exec_ok(c, code, want, &r1);
	ttfr = now_ns() - t0;
	if (!err)
		err = exec_ok(c, code, want, &r2);
	kf_destroy(c);
	if (err)
		goto fail;
	s->v[FIG_TTFR][s->n] = ttfr / 1e3;
	s->v[FIG_EXEC1][s->n] = r1.exec_ns / 1e3;
	s->v[FIG_EXEC2][s->n] = r2.exec_ns / 1e3;
	s->v[FIG_FB1][s->n] = r1.first_byte_ns / 1e3;
	if (runs)
		fprintf(runs, "{\"backend\":\"%s\",\"mode\":\"%s\",\"ttfr_us\":%.1f,\"exec1_us\":%.1f,"
			"\"exec2_us\":%.1f,\"fb1_us\":%.1f}\n", kf_backend_name(s->backend),
			s->in_place ? "in-place" : "fork", s->v[FIG_TTFR][s->n],
			s->v[FIG_EXEC1][s->n], s->v[FIG_EXEC2][s->n], s->v[FIG_FB1][s->n]);
	s->n++;
	kf_exec_result_free(&r1);
	kf_exec_result_free(&r2);
	return;
fail:
	if (!s->failed)
		fprintf(stderr, "session-bench: %s %s: %s\n", kf_backend_name(s->backend),
			s->in_place ? "in-place" : "fork", err == -EPROTO ? "wrong output or status" :
			kf_last_error());
	s->failed++;
	kf_exec_result_free(&r1);
	kf_exec_result_free(&r2);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
	int i = (int)((long)n * p / 100);

	return n ? v[i >= n ? n - 1 : i] : 0;
}

static void report(struct series *s, int ns)
{
	printf("| backend | mode | n | failed |");
	for (int f = 0; f < FIG_MAX; f++)
		printf(" %s p50 | %s p99 |", fig_names[f], fig_names[f]);
	printf("\n|---|---|---|---|");
	for (int f = 0; f < FIG_MAX; f++)
		printf("---|---|");
	printf("\n");
	for (int i = 0; i < ns; i++) {
		printf("| %s | %s | %d | %d |", kf_backend_name(s[i].backend),
		       s[i].in_place ? "in place" : "fork", s[i].n, s[i].failed);
		for (int f = 0; f < FIG_MAX; f++) {
			qsort(s[i].v[f], s[i].n, sizeof(double), cmp_double);
			printf(" %.0f | %.0f |", pct(s[i].v[f], s[i].n, 50), pct(s[i].v[f], s[i].n, 99));
		}
		printf("\n");
	}
	printf("\nin place / fork, p50 (below 1: in place is faster):\n\n");
	for (int i = 0; i + 1 < ns; i += 2) {
		printf("- %s:", kf_backend_name(s[i].backend));
		for (int f = 0; f < FIG_MAX; f++) {
			double fork = pct(s[i].v[f], s[i].n, 50), inpl = pct(s[i + 1].v[f], s[i + 1].n, 50);

			printf(" %s %.2f%s", fig_names[f], fork > 0 ? inpl / fork : 0,
			       f + 1 < FIG_MAX ? "," : "\n");
		}
	}
}

int main(int argc, char **argv)
{
	const char *path = NULL, *backends = "user,kmod", *code = "print(1+1)", *runs_path = NULL;
	struct series s[4];
	int n = 100, ns = 0, opt;
	FILE *runs = NULL;

	while ((opt = getopt(argc, argv, "t:n:b:o:")) != -1) {
		switch (opt) {
		case 't': path = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'b': backends = optarg; break;
		case 'o': runs_path = optarg; break;
		default: goto usage;
		}
	}
	if (!path || n < 1)
		goto usage;
	memset(s, 0, sizeof(s));
	for (int b = KF_BACKEND_USER; b <= KF_BACKEND_KMOD; b++) {
		struct kf_template *t;

		if (!strstr(backends, kf_backend_name(b)))
			continue;
		if (kf_template_open(path, b, &t)) {
			fprintf(stderr, "session-bench: %s backend skipped: %s\n", kf_backend_name(b),
				kf_last_error());
			continue;
		}
		for (int m = 0; m < 2; m++) {
			struct series *x = &s[ns++];

			x->backend = b;
			x->in_place = m;
			x->tmpl = t;
			for (int f = 0; f < FIG_MAX; f++) {
				x->v[f] = calloc(n, sizeof(double));
				if (!x->v[f])
					return 1;
			}
		}
	}
	if (!ns)
		return 1;
	if (runs_path) {
		runs = fopen(runs_path, "w");
		if (!runs) {
			perror(runs_path);
			return 1;
		}
	}
	/* One untimed cycle each: the first clone of a template pays for its working set. */
	for (int i = 0; i < ns; i++) {
		cycle(&s[i], code, "2\n", NULL);
		s[i].n = 0;
	}
	for (int round = 0; round < n; round++)
		for (int i = 0; i < ns; i++)
			cycle(&s[i], code, "2\n", runs);
	if (runs)
		fclose(runs);
	report(s, ns);
	for (int i = 0; i < ns; i += 2)
		kf_template_close(s[i].tmpl);
	for (int i = 0; i < ns; i++)
		if (s[i].failed)
			return 1;
	return 0;
usage:
	fprintf(stderr, "usage: session-bench -t TEMPLATE [-n N] [-b user,kmod] [-o RUNS.jsonl]\n");
	return 2;
}
