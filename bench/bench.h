/* SPDX-License-Identifier: GPL-2.0-only */
/* bench.h - kfork-bench's shared pieces: clocks, sample series, a small JSON writer, the sections. */
#ifndef KF_BENCH_H
#define KF_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * kfork-bench prints raw samples, never percentiles: bench/report.py computes
 * p50/p99 and ratios from the samples, so the JSON keeps everything a reader
 * needs to recompute a figure. Times are in microseconds.
 */

uint64_t bench_now_ns(void);
/* MemAvailable from /proc/meminfo in KiB, or -1. */
long bench_mem_available_kib(void);

struct series {
	double *v;
	size_t n, cap;
};

void series_add(struct series *s, double v);
void series_free(struct series *s);
/* p in [0, 1]; sorts a copy. NaN when empty. */
double series_pct(const struct series *s, double p);

/* A streaming JSON writer: objects and arrays nest, commas are its business. */
struct jw {
	FILE *f;
	int depth;
	int need_comma[32];
};

void jw_init(struct jw *w, FILE *f);
void jw_obj(struct jw *w, const char *key);	/* key NULL inside an array or at top */
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_num(struct jw *w, const char *key, double v);	/* NaN -> null */
void jw_int(struct jw *w, const char *key, long long v);
void jw_str(struct jw *w, const char *key, const char *v);	/* NULL -> null */
void jw_series(struct jw *w, const char *key, const struct series *s);
/* A figure that could not be measured: {"unavailable": why}. */
void jw_unavailable(struct jw *w, const char *key, const char *why);

/* Sections: each writes one JSON object to w and returns 0, or -1 on a setup failure. */
int floor_main(int argc, char **argv, struct jw *w);
int figures_main(int argc, char **argv, struct jw *w);
int peer_main(int argc, char **argv, struct jw *w);

#endif
