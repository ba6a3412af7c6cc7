// SPDX-License-Identifier: GPL-2.0-only
/* kmod_vs_user.c - spawn, time to first result and reset: user vs kmod backend, interleaved in one run. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kfork.h"
#include "lib/internal.h"
#include "vmm/run.h"

/*
 *   build/bench/kmod_vs_user [-t TEMPLATE] [-n N] [-c CODE] [-d DIRTY_CODE]
 * Default: the tiny guest, built to /tmp; CODE "echo hi"; DIRTY_CODE "dirty 256"
 * (the tiny guest's command writing 256 pages) run before each timed reset.
 * Configurations run round-robin, one cycle each per round, so drift in the
 * (emulated) machine hits them alike.
 */
struct config {
	const char *name;
	enum kf_backend backend;
	const char *prefault;	/* KFORK_KMOD_PREFAULT */
	const char *pool;	/* KFORK_KMOD_POOL, read at kf_template_open() */
	struct kf_template *tmpl;
	double *spawn, *ttfr, *reset, *exits;
	int failed;
};

/*
 * VM exits of the clone's vCPU so far, every kind (handled in the kernel or
 * not), from KVM's binary stats (KVM_GET_STATS_FD, "exits"): exact per
 * clone and needs no tracing. -1 if unavailable.
 */
static double vcpu_exits(int vcpu_fd)
{
	struct kvm_stats_header h;
	double val = -1;
	char *descs = NULL;
	int fd;

	fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return -1;
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;

	descs = malloc(dsz * h.num_desc);
	if (!descs || pread(fd, descs, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc))
		goto out;
	for (unsigned int i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * dsz);
		uint64_t v;

		if (strcmp(d->name, "exits"))
			continue;
		if (pread(fd, &v, sizeof(v), h.data_offset + d->offset) == sizeof(v))
			val = v;
		break;
	}
out:
	free(descs);
	close(fd);
	return val;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(int)((n - 1) * p + 0.5)];
}

static int exec_code(struct kf_clone *clone, const char *code, uint64_t *ns)
{
	struct kf_exec_req req = {
		.lang = KF_EXEC_SH, .code = code, .code_len = strlen(code), .timeout_ms = 120000,
	};
	struct kf_exec_result res;
	int err = kf_exec(clone, &req, &res);

	if (!err && res.exit_code)
		err = -EIO;
	if (ns)
		*ns = res.exec_ns;
	kf_exec_result_free(&res);
	return err;
}

static int cycle(struct config *c, int i, const char *code, const char *dirty)
{
	struct kf_clone *clone;
	uint64_t exec_ns;

	setenv("KFORK_KMOD_PREFAULT", c->prefault, 1);
	if (kf_spawn(c->tmpl, &clone))
		return -1;
	c->spawn[i] = kf_clone_spawn_ns(clone) / 1e3;
	if (exec_code(clone, code, &exec_ns))
		goto fail;
	c->ttfr[i] = c->spawn[i] + exec_ns / 1e3;
	c->exits[i] = vcpu_exits(clone->vm.vcpu_fd);
	if (exec_code(clone, dirty, NULL) || kf_reset(clone))
		goto fail;
	c->reset[i] = kf_clone_spawn_ns(clone) / 1e3;
	if (exec_code(clone, code, NULL))	/* the reset clone still works */
		goto fail;
	kf_destroy(clone);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", c->name, kf_last_error());
	kf_destroy(clone);
	return -1;
}

int main(int argc, char **argv)
{
	struct config cfg[] = {
		{ .name = "user", .backend = KF_BACKEND_USER, .prefault = "1", .pool = "0" },
		{ .name = "kmod", .backend = KF_BACKEND_KMOD, .prefault = "1", .pool = "1" },
		{ .name = "kmod-nopool", .backend = KF_BACKEND_KMOD, .prefault = "1", .pool = "0" },
		{ .name = "kmod-noprefault", .backend = KF_BACKEND_KMOD, .prefault = "0",
		  .pool = "0" },
	};
	const int ncfg = sizeof(cfg) / sizeof(cfg[0]);
	const char *path = NULL, *code = "echo hi", *dirty = "dirty 256";
	int n = 200, opt;

	while ((opt = getopt(argc, argv, "t:n:c:d:")) != -1) {
		switch (opt) {
		case 't': path = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'c': code = optarg; break;
		case 'd': dirty = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-t TEMPLATE] [-n N] [-c CODE] [-d DIRTY_CODE]\n", argv[0]);
			return 2;
		}
	}
	if (!path) {
		struct kf_build_opts opts = { .kind = KF_KIND_TINY, .kernel = "build/tests/tiny.bin" };

		path = "/tmp/kfork-bench-tiny.tmpl";
		if (access(path, R_OK) && kf_template_build(&opts, path)) {
			fprintf(stderr, "template build: %s\n", kf_last_error());
			return 1;
		}
	}
	for (int c = 0; c < ncfg; c++) {
		setenv("KFORK_KMOD_POOL", cfg[c].pool, 1);
		if (kf_template_open(path, cfg[c].backend, &cfg[c].tmpl)) {
			fprintf(stderr, "%s: %s\n", cfg[c].name, kf_last_error());
			return 1;
		}
		cfg[c].spawn = calloc(n, sizeof(double));
		cfg[c].ttfr = calloc(n, sizeof(double));
		cfg[c].reset = calloc(n, sizeof(double));
		cfg[c].exits = calloc(n, sizeof(double));
		/* Warm up: for kmod, the pages this exec touched become the working set. */
		{
			struct kf_clone *clone;

			setenv("KFORK_KMOD_PREFAULT", cfg[c].prefault, 1);
			if (kf_spawn(cfg[c].tmpl, &clone) == 0) {
				exec_code(clone, code, NULL);
				kf_destroy(clone);
			}
		}
	}
	sleep(1);	/* let the reaper tear the warm-up clones down (and learn) */
	for (int i = 0; i < n; i++)
		for (int c = 0; c < ncfg; c++)
			if (cycle(&cfg[c], i, code, dirty))
				cfg[c].failed++;
	printf("%d cycles of %s, code '%s', reset after '%s' (us; p50 / p99)\n", n, path, code,
	       dirty);
	printf("%-16s %10s %10s   %10s %10s   %10s %10s   %7s %7s  failed\n", "backend",
	       "spawn p50", "p99", "ttfr p50", "p99", "reset p50", "p99", "exits50", "p99");
	for (int c = 0; c < ncfg; c++) {
		int ok = n - cfg[c].failed;

		if (ok <= 0)
			continue;
		printf("%-16s %10.0f %10.0f   %10.0f %10.0f   %10.0f %10.0f   %7.0f %7.0f  %d\n",
		       cfg[c].name, pct(cfg[c].spawn, ok, .5), pct(cfg[c].spawn, ok, .99),
		       pct(cfg[c].ttfr, ok, .5), pct(cfg[c].ttfr, ok, .99),
		       pct(cfg[c].reset, ok, .5), pct(cfg[c].reset, ok, .99),
		       pct(cfg[c].exits, ok, .5), pct(cfg[c].exits, ok, .99), cfg[c].failed);
	}
	/* The ratios issue 3 asks for: kmod (pool + prefault) over user, p50. */
	if (cfg[0].failed < n && cfg[1].failed < n)
		printf("ratios kmod/user p50: spawn %.2f ttfr %.2f reset %.2f exits %.2f\n",
		       pct(cfg[1].spawn, n - cfg[1].failed, .5) / pct(cfg[0].spawn, n - cfg[0].failed, .5),
		       pct(cfg[1].ttfr, n - cfg[1].failed, .5) / pct(cfg[0].ttfr, n - cfg[0].failed, .5),
		       pct(cfg[1].reset, n - cfg[1].failed, .5) / pct(cfg[0].reset, n - cfg[0].failed, .5),
		       pct(cfg[1].exits, n - cfg[1].failed, .5) / pct(cfg[0].exits, n - cfg[0].failed, .5));
	for (int c = 0; c < ncfg; c++)
		kf_template_close(cfg[c].tmpl);
	return 0;
}
