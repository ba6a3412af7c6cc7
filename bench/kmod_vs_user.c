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
 *   build/bench/kmod_vs_user [-t TEMPLATE] [-n N] [-c CODE] [-d DIRTY_CODE] [-C CFG,..] [-v]
 * -C runs only the named configurations (user,kmod,kmod-nopool,kmod-noprefault;
 * the ratio line needs user and kmod); -v prints the vCPU's non-zero KVM
 * stats at the first result of the first cycle of each.
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
static double vcpu_stat(int vcpu_fd, const char *name, int dump)
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

		if (dump && (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE &&
		    d->size == 1 && pread(fd, &v, sizeof(v), h.data_offset + d->offset) == sizeof(v) &&
		    v)
			printf("  %s=%llu", d->name, (unsigned long long)v);
		if (strcmp(d->name, name))
			continue;
		if (pread(fd, &v, sizeof(v), h.data_offset + d->offset) == sizeof(v))
			val = v;
		if (!dump)
			break;
	}
out:
	free(descs);
	close(fd);
	return val;
}

/* name is one of the comma-separated words of list */
static int strstr_word(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; (p = strstr(p, name)); p += len)
		if ((p == list || p[-1] == ',') && (p[len] == ',' || !p[len]))
			return 1;
	return 0;
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

static int verbose;

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
	if (verbose && i == 0)
		printf("%s: vCPU stats at the first result:", c->name);
	c->exits[i] = vcpu_stat(clone->vm.vcpu_fd, "exits", verbose && i == 0);
	if (verbose && i == 0)
		printf("\n");
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
	const char *only = NULL;
	int n = 200, opt;

	while ((opt = getopt(argc, argv, "t:n:c:d:C:v")) != -1) {
		switch (opt) {
		case 'C': only = optarg; break;
		case 'v': verbose = 1; break;
		case 't': path = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'c': code = optarg; break;
		case 'd': dirty = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-t TEMPLATE] [-n N] [-c CODE] [-d DIRTY_CODE] [-C CFG,..] [-v]\n", argv[0]);
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
		if (only && !strstr_word(only, cfg[c].name)) {
			cfg[c].failed = n;	/* skipped: not printed */
			continue;
		}
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
			if (cfg[c].tmpl && cycle(&cfg[c], i, code, dirty))
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
	/* The ratios issue 3 asks for: kmod (pool + prefault) over user. */
	if (cfg[0].failed < n && cfg[1].failed < n) {
		int u = n - cfg[0].failed, k = n - cfg[1].failed;

		for (int q = 0; q < 2; q++) {
			double p = q ? .99 : .5;

			printf("ratios kmod/user p%d: spawn %.2f ttfr %.2f reset %.2f exits %.2f\n",
			       q ? 99 : 50, pct(cfg[1].spawn, k, p) / pct(cfg[0].spawn, u, p),
			       pct(cfg[1].ttfr, k, p) / pct(cfg[0].ttfr, u, p),
			       pct(cfg[1].reset, k, p) / pct(cfg[0].reset, u, p),
			       pct(cfg[1].exits, k, p) / pct(cfg[0].exits, u, p));
		}
	}
	for (int c = 0; c < ncfg; c++)
		kf_template_close(cfg[c].tmpl);
	return 0;
}
