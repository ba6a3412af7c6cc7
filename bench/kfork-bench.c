// SPDX-License-Identifier: GPL-2.0-only
/* kfork-bench.c - the benchmark program: dispatches to the floor, figures and peer sections; shared helpers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/*
 *   kfork-bench floor   [-n N]                          raw KVM floor
 *   kfork-bench figures -t TMPL -k KIND -b BACKEND ...  libkfork figures (see figures.c)
 *   kfork-bench peer    -k KIND ...                     QEMU restoring its own snapshot (see peer.c)
 * Each prints one JSON object of raw samples on stdout; bench/run.sh collects
 * them and bench/report.py turns them into the table and the plots.
 */

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

long bench_mem_available_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

void series_add(struct series *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		double *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return;	/* a lost sample, not a crash */
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
}

void series_free(struct series *s)
{
	free(s->v);
	*s = (struct series){ 0 };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double series_pct(const struct series *s, double p)
{
	double *c, v;

	if (!s->n)
		return NAN;
	c = malloc(s->n * sizeof(*c));
	if (!c)
		return NAN;
	memcpy(c, s->v, s->n * sizeof(*c));
	qsort(c, s->n, sizeof(*c), cmp_double);
	v = c[(size_t)((s->n - 1) * p + 0.5)];
	free(c);
	return v;
}

/* --- JSON writer ----------------------------------------------------------- */

void jw_init(struct jw *w, FILE *f)
{
	*w = (struct jw){ .f = f };
}

static void jw_key(struct jw *w, const char *key)
{
	if (w->need_comma[w->depth])
		fputc(',', w->f);
	w->need_comma[w->depth] = 1;
	if (key)
		fprintf(w->f, "\"%s\":", key);
}

static void jw_push(struct jw *w, const char *key, char open)
{
	jw_key(w, key);
	fputc(open, w->f);
	if (w->depth < 31)
		w->depth++;
	w->need_comma[w->depth] = 0;
}

static void jw_pop(struct jw *w, char close)
{
	fputc(close, w->f);
	if (w->depth > 0)
		w->depth--;
	if (w->depth == 0)
		fputc('\n', w->f);
	/* a run cut short (lab timeout) keeps every finished section: report.py mends the tail */
	fflush(w->f);
}

void jw_obj(struct jw *w, const char *key) { jw_push(w, key, '{'); }
void jw_obj_end(struct jw *w) { jw_pop(w, '}'); }
void jw_arr(struct jw *w, const char *key) { jw_push(w, key, '['); }
void jw_arr_end(struct jw *w) { jw_pop(w, ']'); }

void jw_num(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	if (isfinite(v))
		fprintf(w->f, "%.3f", v);
	else
		fputs("null", w->f);
}

void jw_int(struct jw *w, const char *key, long long v)
{
	jw_key(w, key);
	fprintf(w->f, "%lld", v);
}

void jw_str(struct jw *w, const char *key, const char *v)
{
	jw_key(w, key);
	if (!v) {
		fputs("null", w->f);
		return;
	}
	fputc('"', w->f);
	for (; *v; v++) {
		unsigned char c = *v;

		if (c == '"' || c == '\\')
			fprintf(w->f, "\\%c", c);
		else if (c < 0x20)
			fprintf(w->f, "\\u%04x", c);
		else
			fputc(c, w->f);
	}
	fputc('"', w->f);
}

void jw_series(struct jw *w, const char *key, const struct series *s)
{
	jw_arr(w, key);
	for (size_t i = 0; i < s->n; i++)
		jw_num(w, NULL, s->v[i]);
	jw_arr_end(w);
}

void jw_unavailable(struct jw *w, const char *key, const char *why)
{
	jw_obj(w, key);
	jw_str(w, "unavailable", why);
	jw_obj_end(w);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*main)(int argc, char **argv, struct jw *w);
	} sections[] = {
		{ "floor", floor_main },
		{ "figures", figures_main },
		{ "peer", peer_main },
	};
	struct jw w;

	jw_init(&w, stdout);
	for (size_t i = 0; argc >= 2 && i < sizeof(sections) / sizeof(sections[0]); i++)
		if (!strcmp(argv[1], sections[i].name))
			return sections[i].main(argc - 1, argv + 1, &w) ? 1 : 0;
	fprintf(stderr, "usage: kfork-bench floor|figures|peer [options]   (bench/run.sh drives it)\n");
	return 2;
}
