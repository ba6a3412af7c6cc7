// SPDX-License-Identifier: GPL-2.0-only
/* figures.c - DESIGN.md's figures through libkfork: spawn (cold, pool), TTFR, reset, exits, throughput, density, fan-out. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "kfork.h"

/*
 *   kfork-bench figures -t TMPL -k tiny|minimal|python -b user|kmod [-n SPAWNS]
 *       [-p POOL_SPAWNS (default SPAWNS)] [-r RESETS] [-f FANOUT_MAX] [-F FANOUT_SECONDS]
 *       [-d THROUGHPUT_SECONDS] [-s SECTIONS]
 * SECTIONS is a comma list of ttfr,pool,reset,throughput,density (default all).
 * Every exec's output is checked ("hi\n" / "2\n"); a wrong answer counts as a
 * failure, and failures are reported next to the figure.
 */

#define POOL_SIZE	8
#define MEM_RESERVE_KIB	(384L << 10)	/* fan-out stops before MemAvailable falls below this */

struct fig {
	struct kf_template *tmpl;
	const char *kind;
	enum kf_exec_lang lang;
	const char *code, *expect;
	int n, pool_n, resets, fanout_max;
	double tp_seconds, fanout_seconds;
};

static int fig_exec(struct fig *f, struct kf_clone *clone, const char *code, enum kf_exec_lang lang,
		    const char *expect, struct kf_exec_result *res)
{
	struct kf_exec_req req = {
		.lang = lang, .code = code, .code_len = strlen(code), .timeout_ms = 120000,
	};
	int err = kf_exec(clone, &req, res);

	(void)f;
	if (err)
		return err;
	if (res->exit_code || (expect && (!res->out || strcmp(res->out, expect))))
		return -EBADMSG;
	return 0;
}

/* One trivial exec, result discarded; 0 if it answered right. */
static int fig_exec_trivial(struct fig *f, struct kf_clone *clone)
{
	struct kf_exec_result res;
	int err = fig_exec(f, clone, f->code, f->lang, f->expect, &res);

	kf_exec_result_free(&res);
	return err;
}

static void fig_note_error(const char *what, int err, char *last, size_t len)
{
	snprintf(last, len, "%s: %s (%s)", what, strerror(-err), kf_last_error());
}

/* --- cold spawn, TTFR, exits: spawn + exec + destroy, one after another ---- */

static void fig_ttfr(struct fig *f, struct jw *w)
{
	struct series spawn = { 0 }, ttfr = { 0 }, first = { 0 }, exits = { 0 }, destroy = { 0 };
	char last[512] = "";
	int failed = 0;

	for (int i = 0; i < f->n; i++) {
		struct kf_exec_result res;
		struct kf_clone *clone;
		uint64_t t0, t1, t2, t3;
		int err;

		t0 = bench_now_ns();
		err = kf_spawn(f->tmpl, &clone);
		t1 = bench_now_ns();
		if (err) {
			fig_note_error("kf_spawn", err, last, sizeof(last));
			failed++;
			continue;
		}
		err = fig_exec(f, clone, f->code, f->lang, f->expect, &res);
		t2 = bench_now_ns();
		if (err) {
			fig_note_error("kf_exec", err, last, sizeof(last));
			failed++;
		} else {
			series_add(&spawn, (t1 - t0) / 1e3);
			series_add(&ttfr, (t2 - t0) / 1e3);
			series_add(&first, (t1 - t0 + res.first_byte_ns) / 1e3);
			series_add(&exits, res.exits);
		}
		kf_exec_result_free(&res);
		kf_destroy(clone);
		t3 = bench_now_ns();
		series_add(&destroy, (t3 - t2) / 1e3);
	}
	jw_obj(w, "ttfr");
	jw_str(w, "code", f->code);
	jw_int(w, "n", ttfr.n);
	jw_int(w, "failed", failed);
	jw_str(w, "last_error", failed ? last : NULL);
	jw_series(w, "spawn_us", &spawn);
	jw_series(w, "ttfr_us", &ttfr);
	jw_series(w, "first_byte_us", &first);
	jw_series(w, "exits", &exits);
	jw_series(w, "destroy_call_us", &destroy);
	jw_obj_end(w);
	fprintf(stderr, "figures: %s: cold spawn p50 %.0f us, TTFR p50 %.0f us p99 %.0f us, exits p50 %.0f, %d failed\n",
		f->kind, series_pct(&spawn, .5), series_pct(&ttfr, .5), series_pct(&ttfr, .99),
		series_pct(&exits, .5), failed);
	series_free(&spawn);
	series_free(&ttfr);
	series_free(&first);
	series_free(&exits);
	series_free(&destroy);
}

/* --- pool: a refill thread keeps POOL_SIZE clones spawned; the caller takes one --- */

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	struct kf_clone *ready[POOL_SIZE];
	int n, stop, err;
	struct kf_template *tmpl;
	char last[256];
};

/*
 * The refill thread is woken only when the pool falls to half, then fills it
 * up: a wake-up on every take would let it preempt the caller on a small
 * machine, which is the very latency a pool exists to hide. (At nice 19 it
 * starved on a loaded 2-core host and the pool ran empty.)
 */
static void *pool_refill(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->n > POOL_SIZE / 2 && !p->stop)
			pthread_cond_wait(&p->changed, &p->mu);
		while (p->n < POOL_SIZE && !p->stop) {
			struct kf_clone *clone;
			int err;

			pthread_mutex_unlock(&p->mu);
			err = kf_spawn(p->tmpl, &clone);
			pthread_mutex_lock(&p->mu);
			if (err) {
				p->err = err;
				snprintf(p->last, sizeof(p->last), "kf_spawn (pool refill): %s (%s)",
					 strerror(-err), kf_last_error());
				p->stop = 1;
			} else {
				p->ready[p->n++] = clone;
			}
			pthread_cond_broadcast(&p->changed);
		}
		if (p->stop)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* The next pooled clone, waiting for the refill thread if the pool is empty; NULL if it failed. */
static struct kf_clone *pool_take(struct pool *p)
{
	struct kf_clone *clone = NULL;

	pthread_mutex_lock(&p->mu);
	while (!p->n && !p->stop)
		pthread_cond_wait(&p->changed, &p->mu);
	if (p->n) {
		clone = p->ready[--p->n];
		if (p->n <= POOL_SIZE / 2)
			pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->mu);
	return clone;
}

static void fig_pool(struct fig *f, struct jw *w)
{
	struct pool p = { .tmpl = f->tmpl };
	struct series take = { 0 }, ttfr = { 0 }, waited = { 0 };
	char last[512] = "";
	pthread_t th;
	int failed = 0;

	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.changed, NULL);
	if (pthread_create(&th, NULL, pool_refill, &p)) {
		jw_unavailable(w, "pool", "pthread_create failed");
		return;
	}
	pthread_mutex_lock(&p.mu);	/* start full: the clones are pre-spawned */
	while (p.n < POOL_SIZE && !p.stop)
		pthread_cond_wait(&p.changed, &p.mu);
	pthread_mutex_unlock(&p.mu);
	for (int i = 0; i < f->pool_n; i++) {
		struct kf_clone *clone;
		uint64_t t0, t1, t2;
		int empty, err;

		pthread_mutex_lock(&p.mu);
		empty = p.n == 0;
		pthread_mutex_unlock(&p.mu);
		t0 = bench_now_ns();
		clone = pool_take(&p);
		t1 = bench_now_ns();
		if (!clone) {
			snprintf(last, sizeof(last), "%s", p.last);
			failed += f->pool_n - i;
			break;
		}
		err = fig_exec_trivial(f, clone);
		t2 = bench_now_ns();
		if (err) {
			fig_note_error("kf_exec (pooled clone)", err, last, sizeof(last));
			failed++;
		} else {
			series_add(&take, (t1 - t0) / 1e3);
			series_add(&ttfr, (t2 - t0) / 1e3);
			series_add(&waited, empty);
		}
		kf_destroy(clone);
	}
	pthread_mutex_lock(&p.mu);
	p.stop = 1;
	pthread_cond_broadcast(&p.changed);
	pthread_mutex_unlock(&p.mu);
	pthread_join(th, NULL);
	for (int i = 0; i < p.n; i++)
		kf_destroy(p.ready[i]);
	jw_obj(w, "pool");
	jw_int(w, "pool_size", POOL_SIZE);
	jw_int(w, "n", take.n);
	jw_int(w, "failed", failed);
	jw_str(w, "last_error", failed ? last : NULL);
	jw_series(w, "spawn_us", &take);
	jw_series(w, "ttfr_us", &ttfr);
	jw_series(w, "found_empty", &waited);
	jw_obj_end(w);
	fprintf(stderr, "figures: %s: pool spawn p50 %.1f us p99 %.0f us, pool TTFR p50 %.0f us, %d failed\n",
		f->kind, series_pct(&take, .5), series_pct(&take, .99), series_pct(&ttfr, .5), failed);
	series_free(&take);
	series_free(&ttfr);
	series_free(&waited);
}

/* --- reset after N dirtied pages ------------------------------------------ */

static const int reset_pages[] = { 1, 16, 256, 4096 };

/* The command that dirties n pages in this kind of guest, or NULL with *why. */
static const char *fig_dirty_code(struct fig *f, int n, char *buf, size_t len, const char **why)
{
	if (!strcmp(f->kind, "tiny")) {
		if (n > 512) {
			*why = "the tiny guest (4 MiB RAM) dirties at most 512 pages (tests/tiny DIRTY_MAX)";
			return NULL;
		}
		snprintf(buf, len, "dirty %d", n);
	} else {
		/* n pages of the guest's ramfs page cache, plus dd's own few pages */
		snprintf(buf, len, "dd if=/dev/zero of=/tmp/kf-dirty bs=4096 count=%d 2>/dev/null", n);
	}
	return buf;
}

static void fig_reset(struct fig *f, struct jw *w)
{
	jw_obj(w, "reset");
	for (size_t k = 0; k < sizeof(reset_pages) / sizeof(reset_pages[0]); k++) {
		struct series reset = { 0 };
		char code[128], key[16], last[512] = "";
		const char *dirty, *why = NULL;
		struct kf_clone *clone;
		int failed = 0, err;

		snprintf(key, sizeof(key), "%d", reset_pages[k]);
		dirty = fig_dirty_code(f, reset_pages[k], code, sizeof(code), &why);
		if (!dirty) {
			jw_unavailable(w, key, why);
			continue;
		}
		err = kf_spawn(f->tmpl, &clone);
		if (err) {
			fig_note_error("kf_spawn", err, last, sizeof(last));
			jw_unavailable(w, key, last);
			continue;
		}
		for (int i = 0; i < f->resets; i++) {
			struct kf_exec_result res;
			uint64_t t0, t1;

			err = fig_exec(f, clone, dirty, KF_EXEC_SH, NULL, &res);
			kf_exec_result_free(&res);
			if (err) {
				fig_note_error("kf_exec (dirty)", err, last, sizeof(last));
				failed++;
				continue;
			}
			t0 = bench_now_ns();
			err = kf_reset(clone);
			t1 = bench_now_ns();
			if (err) {
				fig_note_error("kf_reset", err, last, sizeof(last));
				failed++;
				break;
			}
			series_add(&reset, (t1 - t0) / 1e3);
		}
		/* The reset clone still answers. */
		if (!failed && fig_exec_trivial(f, clone)) {
			snprintf(last, sizeof(last), "the clone did not answer after %d resets", f->resets);
			failed++;
		}
		kf_destroy(clone);
		jw_obj(w, key);
		jw_str(w, "dirty_code", dirty);
		jw_int(w, "n", reset.n);
		jw_int(w, "failed", failed);
		jw_str(w, "last_error", failed ? last : NULL);
		jw_series(w, "reset_us", &reset);
		jw_obj_end(w);
		fprintf(stderr, "figures: %s: reset after %d pages p50 %.0f us p99 %.0f us, %d failed\n",
			f->kind, reset_pages[k], series_pct(&reset, .5), series_pct(&reset, .99), failed);
		series_free(&reset);
	}
	jw_obj_end(w);
}

/* --- sustained throughput of spawn + exec + destroy ------------------------ */

struct tp_worker {
	struct fig *f;
	uint64_t deadline;
	long done, failed;
	pthread_t th;
};

static void *tp_loop(void *arg)
{
	struct tp_worker *t = arg;

	while (bench_now_ns() < t->deadline) {
		struct kf_clone *clone;

		if (kf_spawn(t->f->tmpl, &clone)) {
			t->failed++;
			continue;
		}
		if (fig_exec_trivial(t->f, clone))
			t->failed++;
		else
			t->done++;
		kf_destroy(clone);
	}
	return NULL;
}

static void fig_throughput(struct fig *f, struct jw *w)
{
	static const int threads[] = { 1, 2, 4 };

	jw_arr(w, "throughput");
	for (size_t k = 0; k < sizeof(threads) / sizeof(threads[0]); k++) {
		struct tp_worker t[4];
		long done = 0, failed = 0;
		uint64_t t0 = bench_now_ns(), t1;

		for (int i = 0; i < threads[k]; i++) {
			t[i] = (struct tp_worker){ .f = f, .deadline = t0 + f->tp_seconds * 1e9 };
			pthread_create(&t[i].th, NULL, tp_loop, &t[i]);
		}
		for (int i = 0; i < threads[k]; i++) {
			pthread_join(t[i].th, NULL);
			done += t[i].done;
			failed += t[i].failed;
		}
		t1 = bench_now_ns();
		jw_obj(w, NULL);
		jw_int(w, "threads", threads[k]);
		jw_num(w, "seconds", (t1 - t0) / 1e9);
		jw_int(w, "done", done);
		jw_int(w, "failed", failed);
		jw_num(w, "per_second", done / ((t1 - t0) / 1e9));
		jw_obj_end(w);
		fprintf(stderr, "figures: %s: throughput %d thread(s): %.1f spawn+exec+destroy/s, %ld failed\n",
			f->kind, threads[k], done / ((t1 - t0) / 1e9), failed);
		sleep(1);	/* let the reaper drain between runs */
	}
	jw_arr_end(w);
}

/* --- density and fan-out: clones kept alive after one exec each ------------ */

/*
 * MemAvailable, median of three reads: the host's other tenants move it by
 * megabytes, the median drops a single jump.
 */
static long mem_available_kib(void)
{
	long v[3];

	for (int i = 0; i < 3; i++) {
		v[i] = bench_mem_available_kib();
		if (i < 2)
			usleep(20000);
	}
	if (v[0] > v[1]) { long t = v[0]; v[0] = v[1]; v[1] = t; }
	if (v[1] > v[2]) { long t = v[1]; v[1] = v[2]; v[2] = t; }
	if (v[0] > v[1]) { long t = v[0]; v[0] = v[1]; v[1] = t; }
	return v[1];
}

/*
 * Bytes charged to the memory cgroup run.sh made for this process alone
 * (KFORK_BENCH_MEMCG names its memory.current): kernel memory KVM accounts
 * (vCPUs, MMU pages) included, and no other process's noise. -1 without one.
 */
static long long memcg_bytes(void)
{
	const char *path = getenv("KFORK_BENCH_MEMCG");
	long long v = -1;
	FILE *f;

	if (!path || !(f = fopen(path, "r")))
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int is_checkpoint(int n)
{
	static const int cp[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 };

	for (size_t i = 0; i < sizeof(cp) / sizeof(cp[0]); i++)
		if (cp[i] == n)
			return 1;
	return 0;
}

struct fan {
	struct fig *f;
	struct kf_clone **clones;
	int from, to, failed;
	struct series lat;
	pthread_t th;
};

static void *fan_exec(void *arg)
{
	struct fan *fa = arg;

	for (int i = fa->from; i < fa->to; i++) {
		uint64_t t0 = bench_now_ns();

		if (fig_exec_trivial(fa->f, fa->clones[i]))
			fa->failed++;
		else
			series_add(&fa->lat, (bench_now_ns() - t0) / 1e3);
	}
	return NULL;
}

static void fig_density(struct fig *f, struct jw *w)
{
	struct kf_clone **clones = calloc(f->fanout_max, sizeof(*clones));
	struct fan fa[2] = { 0 };
	char stop[512] = "reached the cap";
	long base, avail = 0;
	long long cg_base, cg = -1;
	struct rlimit rl;
	int live = 0, failed = 0;
	uint64_t t0, t1;

	if (!clones) {
		jw_unavailable(w, "density", "out of memory");
		return;
	}
	/* each clone holds a few fds (VM, vCPU, ...) */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sleep(1);	/* earlier clones torn down by the reaper */
	t0 = bench_now_ns();
	base = mem_available_kib();
	cg_base = memcg_bytes();
	jw_obj(w, "density");
	jw_int(w, "mem_available_base_kib", base);
	if (cg_base < 0)
		jw_str(w, "memcg", "unavailable: not run in a memory cgroup of its own (bench/run.sh makes one where cgroup v2 can be mounted: the lab)");
	else
		jw_int(w, "memcg_base_bytes", cg_base);
	jw_arr(w, "points");
	for (int i = 0; i < f->fanout_max; i++) {
		int err = kf_spawn(f->tmpl, &clones[live]);

		if (err) {
			fig_note_error("kf_spawn", err, stop, sizeof(stop));
			break;
		}
		err = fig_exec_trivial(f, clones[live]);
		if (err) {
			fig_note_error("kf_exec", err, stop, sizeof(stop));
			kf_destroy(clones[live]);
			failed++;
			break;
		}
		live++;
		if (is_checkpoint(live) || live == f->fanout_max) {
			avail = mem_available_kib();
			cg = memcg_bytes();
			jw_obj(w, NULL);
			jw_int(w, "live", live);
			jw_int(w, "mem_available_kib", avail);
			jw_num(w, "kib_per_clone", (double)(base - avail) / live);
			if (cg >= 0 && cg_base >= 0)
				jw_num(w, "memcg_kib_per_clone", (cg - cg_base) / 1024.0 / live);
			jw_obj_end(w);
		} else {
			avail = bench_mem_available_kib();
		}
		if (avail >= 0 && avail < MEM_RESERVE_KIB) {
			snprintf(stop, sizeof(stop), "MemAvailable fell to %ld MiB (reserve %ld MiB)",
				 avail >> 10, MEM_RESERVE_KIB >> 10);
			break;
		}
		if (f->fanout_seconds > 0 && bench_now_ns() - t0 > f->fanout_seconds * 1e9) {
			snprintf(stop, sizeof(stop), "the run's time budget for it (-F %.0f s) ran out",
				 f->fanout_seconds);
			break;
		}
	}
	if (live && !is_checkpoint(live) && live != f->fanout_max) {
		/* the last point, wherever it stopped */
		avail = mem_available_kib();
		cg = memcg_bytes();
		jw_obj(w, NULL);
		jw_int(w, "live", live);
		jw_int(w, "mem_available_kib", avail);
		jw_num(w, "kib_per_clone", (double)(base - avail) / live);
		if (cg >= 0 && cg_base >= 0)
			jw_num(w, "memcg_kib_per_clone", (cg - cg_base) / 1024.0 / live);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_int(w, "live", live);
	jw_int(w, "cap", f->fanout_max);
	jw_num(w, "kib_per_clone", live ? (double)(base - avail) / live : 0);
	if (cg >= 0 && cg_base >= 0 && live)
		jw_num(w, "memcg_kib_per_clone", (cg - cg_base) / 1024.0 / live);
	jw_str(w, "stopped_because", stop);
	jw_obj_end(w);
	fprintf(stderr, "figures: %s: density: %d live clones, %.0f KiB each (%s)\n", f->kind, live,
		live ? (double)(base - avail) / live : 0, stop);

	/* fan-out: every live clone answers one more exec, two callers at once */
	t0 = bench_now_ns();
	for (int k = 0; k < 2; k++) {
		fa[k] = (struct fan){ .f = f, .clones = clones, .from = k * live / 2,
				      .to = (k + 1) * live / 2 };
		pthread_create(&fa[k].th, NULL, fan_exec, &fa[k]);
	}
	for (int k = 0; k < 2; k++)
		pthread_join(fa[k].th, NULL);
	t1 = bench_now_ns();
	for (size_t i = 0; i < fa[1].lat.n; i++)
		series_add(&fa[0].lat, fa[1].lat.v[i]);
	jw_obj(w, "fanout");
	jw_int(w, "alive", live);
	jw_int(w, "answered", fa[0].lat.n);
	jw_int(w, "failed", fa[0].failed + fa[1].failed + failed);
	jw_num(w, "all_answered_s", (t1 - t0) / 1e9);
	jw_series(w, "exec_us", &fa[0].lat);
	jw_obj_end(w);
	fprintf(stderr, "figures: %s: fan-out: %zu of %d live clones answered in %.1f s\n", f->kind,
		fa[0].lat.n, live, (t1 - t0) / 1e9);
	series_free(&fa[0].lat);
	series_free(&fa[1].lat);
	for (int i = 0; i < live; i++)
		kf_destroy(clones[i]);
	free(clones);
	sleep(1);
}

/* --- driver ---------------------------------------------------------------- */

static int has_section(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; p && *p;) {
		if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
			return 1;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return 0;
}

int figures_main(int argc, char **argv, struct jw *w)
{
	struct fig f = { .n = 1000, .resets = 200, .fanout_max = 1000, .tp_seconds = 10 };
	const char *path = NULL, *backend = "user";
	const char *sections = "ttfr,pool,reset,throughput,density";
	enum kf_backend be;
	uint64_t t0;
	char rnd[16];
	int opt, err, warm_failed = 0;

	while ((opt = getopt(argc, argv, "t:k:b:n:p:r:f:F:d:s:")) != -1) {
		switch (opt) {
		case 't': path = optarg; break;
		case 'k': f.kind = optarg; break;
		case 'b': backend = optarg; break;
		case 'n': f.n = atoi(optarg); break;
		case 'p': f.pool_n = atoi(optarg); break;
		case 'r': f.resets = atoi(optarg); break;
		case 'f': f.fanout_max = atoi(optarg); break;
		case 'F': f.fanout_seconds = atof(optarg); break;
		case 'd': f.tp_seconds = atof(optarg); break;
		case 's': sections = optarg; break;
		default:
			fprintf(stderr, "usage: kfork-bench figures -t TMPL -k tiny|minimal|python -b user|kmod"
				" [-n SPAWNS] [-p POOL_SPAWNS] [-r RESETS] [-f FANOUT_MAX] [-F SECONDS] [-d SECONDS]"
				" [-s SECTIONS]\n");
			return -1;
		}
	}
	if (!path || !f.kind || f.n < 1 || f.fanout_max < 1) {
		fprintf(stderr, "kfork-bench figures: needs -t TMPL and -k KIND\n");
		return -1;
	}
	if (f.pool_n < 1)
		f.pool_n = f.n;
	f.lang = strcmp(f.kind, "python") ? KF_EXEC_SH : KF_EXEC_PYTHON;
	f.code = f.lang == KF_EXEC_PYTHON ? "print(1+1)" : "echo hi";
	f.expect = f.lang == KF_EXEC_PYTHON ? "2\n" : "hi\n";
	be = !strcmp(backend, "kmod") ? KF_BACKEND_KMOD : KF_BACKEND_USER;

	jw_obj(w, NULL);
	jw_str(w, "section", "figures");
	jw_str(w, "kind", f.kind);
	jw_str(w, "backend", kf_backend_name(be));
	/* A freshly booted lab's CRNG may not be ready: the first getrandom() blocks. */
	t0 = bench_now_ns();
	if (getrandom(rnd, sizeof(rnd), 0) < 0)
		perror("getrandom");
	jw_num(w, "first_getrandom_us", (bench_now_ns() - t0) / 1e3);
	err = kf_template_open(path, be, &f.tmpl);
	if (err) {
		char why[512];

		snprintf(why, sizeof(why), "kf_template_open %s (%s backend): %s", path,
			 kf_backend_name(be), kf_last_error());
		jw_str(w, "unavailable", why);
		jw_obj_end(w);
		fprintf(stderr, "figures: %s\n", why);
		return 0;
	}
	/* Warm up (page cache, template pages, kmod's working set) before measuring. */
	for (int i = 0; i < 5; i++) {
		struct kf_clone *clone;

		if (kf_spawn(f.tmpl, &clone)) {
			warm_failed++;
			continue;
		}
		warm_failed += fig_exec_trivial(&f, clone) != 0;
		kf_destroy(clone);
	}
	jw_int(w, "warmup_failed", warm_failed);
	sleep(1);
	if (has_section(sections, "ttfr"))
		fig_ttfr(&f, w);
	if (has_section(sections, "pool"))
		fig_pool(&f, w);
	if (has_section(sections, "reset"))
		fig_reset(&f, w);
	if (has_section(sections, "throughput"))
		fig_throughput(&f, w);
	if (has_section(sections, "density"))
		fig_density(&f, w);
	jw_obj_end(w);
	kf_template_close(f.tmpl);
	return 0;
}
