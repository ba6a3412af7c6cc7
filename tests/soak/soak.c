// SPDX-License-Identifier: GPL-2.0-only
/* soak.c - N spawn/exec/destroy cycles and N resets of one backend; fails if a resource grew past its bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"

/* What is sampled, and how far it may grow from the start sample to the end one. */
enum { S_RSS, S_FDS, S_SLAB, S_VMALLOC, S_LIVE_TEMPLATES, S_LIVE_CLONES, S_MAX };

static const struct {
	const char *name;
	const char *unit;
	int64_t bound;		/* largest allowed end - start */
	const char *why;
} samples[S_MAX] = {
	/* malloc arenas and the result buffers settle, a leak of a clone's pages does not */
	[S_RSS] = { "rss", "KiB", 16 * 1024, "process VmRSS" },
	[S_FDS] = { "fds", "", 0, "open fds of this process: every clone's close" },
	/* system-wide: ~84 bytes a cycle over 100000 cycles would exceed it */
	[S_SLAB] = { "slab", "KiB", 8 * 1024, "/proc/meminfo Slab" },
	[S_VMALLOC] = { "vmalloc", "KiB", 4 * 1024, "/proc/meminfo VmallocUsed" },
	[S_LIVE_TEMPLATES] = { "live_templates", "", 0, "kfork.ko KFORK_GET_CAPS" },
	[S_LIVE_CLONES] = { "live_clones", "", 0, "kfork.ko KFORK_GET_CAPS" },
};

struct sample {
	int64_t v[S_MAX];
	int have[S_MAX];
};

static int64_t status_kib(const char *file, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	int64_t v = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int64_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int64_t n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static void take_sample(struct sample *s)
{
	struct kfork_caps caps = { .size = sizeof(caps) };
	int dev;

	memset(s, 0, sizeof(*s));
	s->v[S_RSS] = status_kib("/proc/self/status", "VmRSS");
	s->v[S_FDS] = count_fds();
	s->v[S_SLAB] = status_kib("/proc/meminfo", "Slab");
	s->v[S_VMALLOC] = status_kib("/proc/meminfo", "VmallocUsed");
	for (int i = S_RSS; i <= S_VMALLOC; i++)
		s->have[i] = s->v[i] >= 0;
	dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev >= 0 && !ioctl(dev, KFORK_GET_CAPS, &caps)) {
		s->v[S_LIVE_TEMPLATES] = (int64_t)caps.live_templates;
		s->v[S_LIVE_CLONES] = (int64_t)caps.live_clones;
		s->have[S_LIVE_TEMPLATES] = s->have[S_LIVE_CLONES] = 1;
	}
	if (dev >= 0)
		close(dev);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * kf_destroy() tears down on the library's reaper thread and the module may
 * free a VM after its fd is closed: sample once fds and live clones have not
 * moved for 300 ms (at most 60 s, then sample anyway).
 */
static void settle(struct sample *s)
{
	uint64_t t_end = now_ns() + 60ull * 1000000000ull;
	struct sample prev;
	int still = 0;

	take_sample(&prev);
	while (still < 15 && now_ns() < t_end) {
		struct timespec d = { 0, 20 * 1000000 };

		nanosleep(&d, NULL);
		take_sample(s);
		if (s->v[S_FDS] == prev.v[S_FDS] && s->v[S_LIVE_CLONES] == prev.v[S_LIVE_CLONES])
			still++;
		else
			still = 0;
		prev = *s;
	}
	take_sample(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int exec_echo(struct kf_clone *clone, const char *code, const char *want)
{
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .code = code, .code_len = strlen(code),
				   .timeout_ms = 120000 };
	struct kf_exec_result res;
	int err = kf_exec(clone, &req, &res);

	if (!err && (res.exit_code || !res.out || strcmp(res.out, want)))
		err = -EPROTO;
	if (err)
		fprintf(stderr, "soak: exec on clone %" PRIu64 ": %s (exit %d, stdout '%s')\n",
			kf_clone_id(clone), err == -EPROTO ? "wrong result" : kf_last_error(),
			res.exit_code, res.out ? res.out : "");
	kf_exec_result_free(&res);
	return err;
}

static int spawn_cycle(struct kf_template *tmpl, int leak)
{
	struct kf_clone *clone;
	int err = kf_spawn(tmpl, &clone);

	if (err) {
		fprintf(stderr, "soak: kf_spawn: %s\n", kf_last_error());
		return err;
	}
	err = exec_echo(clone, "echo soak", "soak\n");
	if (!leak)
		kf_destroy(clone);	/* --leak-one: this one clone is never destroyed */
	return err;
}

static int reset_cycle(struct kf_clone *clone)
{
	int err = kf_reset(clone);

	if (err) {
		fprintf(stderr, "soak: kf_reset: %s\n", kf_last_error());
		return err;
	}
	return exec_echo(clone, "echo reset", "reset\n");
}

static double mean_ms(const uint64_t *ns, long from, long to)
{
	uint64_t sum = 0;

	for (long i = from; i < to; i++)
		sum += ns[i];
	return to > from ? sum / 1e6 / (to - from) : 0;
}

/* Times, and the first tenth's mean against the last's: a cycle that slows down is a leak too. */
static void print_times(const char *what, uint64_t *ns, long n, uint64_t total_ns)
{
	long tenth = n / 10 ? n / 10 : 1;
	double first = mean_ms(ns, 0, tenth), last = mean_ms(ns, n - tenth, n);

	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("soak: %-6s %ld cycles in %.1f s: mean %.2f ms, p50 %.2f ms, p99 %.2f ms; "
	       "first tenth %.2f ms, last tenth %.2f ms\n", what, n, total_ns / 1e9,
	       total_ns / 1e6 / n, ns[n / 2] / 1e6, ns[(n * 99) / 100] / 1e6, first, last);
}

static const char usage[] =
	"usage: soak -t TEMPLATE -b user|kmod [-n N] [-w WARMUP] [--leak-one]\n"
	"  WARMUP (default 20) spawn/exec/destroy cycles and resets, a sample, N (default\n"
	"  100000) spawn/exec/destroy cycles, N reset+exec cycles of one clone, a sample;\n"
	"  exit 1 if anything grew past its bound, 2 if a cycle failed.\n"
	"  --leak-one: never destroy the clone of cycle N/2 (proves a one-VM leak is caught)\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "leak-one", no_argument, NULL, 'L' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum kf_backend backend = KF_BACKEND_AUTO;
	const char *path = NULL;
	long n = 100000, warm = 20;
	struct kf_template *tmpl;
	struct kf_clone *clone;
	uint64_t *t_spawn, *t_reset, t0, t_loop;
	struct sample start, end;
	int c, leak = 0, over = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* a long soak shows each phase as it ends */
	while ((c = getopt_long(argc, argv, "t:b:n:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': path = optarg; break;
		case 'b':
			backend = !strcmp(optarg, "kmod") ? KF_BACKEND_KMOD :
				  !strcmp(optarg, "user") ? KF_BACKEND_USER : (enum kf_backend)-1;
			break;
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'w': warm = strtol(optarg, NULL, 10); break;
		case 'L': leak = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!path || (int)backend < 0 || n < 2 || n > 100000000 || warm < 1 || warm > 100000) {
		fputs(usage, stderr);
		return 2;
	}
	/* Allocated before the start sample: they are not a leak. */
	t_spawn = calloc(n, sizeof(*t_spawn));
	t_reset = calloc(n, sizeof(*t_reset));
	if (!t_spawn || !t_reset) {
		fprintf(stderr, "soak: out of memory for %ld samples\n", n);
		return 2;
	}
	memset(t_spawn, 0, n * sizeof(*t_spawn));
	memset(t_reset, 0, n * sizeof(*t_reset));
	if (kf_template_open(path, backend, &tmpl)) {
		fprintf(stderr, "soak: %s\n", kf_last_error());
		return 2;
	}
	printf("soak: %s, backend %s, %ld cycles each (warm-up %ld)%s\n", path,
	       kf_backend_name(kf_template_backend(tmpl)), n, warm,
	       leak ? ", leaking one clone on purpose" : "");
	if (kf_spawn(tmpl, &clone)) {
		fprintf(stderr, "soak: kf_spawn: %s\n", kf_last_error());
		return 2;
	}
	for (long i = 0; i < warm; i++)
		if (spawn_cycle(tmpl, 0) || reset_cycle(clone))
			return 2;
	settle(&start);

	t_loop = now_ns();
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		if (spawn_cycle(tmpl, leak && i == n / 2))
			return 2;
		t_spawn[i] = now_ns() - t0;
	}
	print_times("spawn", t_spawn, n, now_ns() - t_loop);
	t_loop = now_ns();
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		if (reset_cycle(clone))
			return 2;
		t_reset[i] = now_ns() - t0;
	}
	print_times("reset", t_reset, n, now_ns() - t_loop);
	settle(&end);

	printf("soak: %-15s %12s %12s %8s %8s\n", "counter", "start", "end", "growth", "bound");
	for (int i = 0; i < S_MAX; i++) {
		int64_t d = end.v[i] - start.v[i];
		int bad = start.have[i] && end.have[i] && d > samples[i].bound;

		if (!start.have[i] || !end.have[i]) {
			/* The kmod backend's soak is not done without the module's own counts. */
			if (i >= S_LIVE_TEMPLATES && kf_template_backend(tmpl) == KF_BACKEND_KMOD)
				over++;
			printf("soak: %-15s %12s %12s %8s %8s  (%s: not available)\n", samples[i].name,
			       "-", "-", "-", "-", samples[i].why);
			continue;
		}
		printf("soak: %-15s %12" PRId64 " %12" PRId64 " %8" PRId64 " %8" PRId64 " %-3s %s%s\n",
		       samples[i].name, start.v[i], end.v[i], d, samples[i].bound, samples[i].unit,
		       bad ? "FAIL " : "", samples[i].why);
		over += bad;
	}
	printf("soak: %s: %s\n", kf_backend_name(kf_template_backend(tmpl)),
	       over ? "FAIL: a resource grew past its bound" : "PASS");
	kf_destroy(clone);
	kf_template_close(tmpl);
	free(t_spawn);
	free(t_reset);
	return over ? 1 : 0;
}
