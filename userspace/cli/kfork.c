// SPDX-License-Identifier: GPL-2.0-only
/* kfork.c - the command line: build templates, run code in clones, measure spawn latency. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfork.h"
#include "cli/stats.h"
#include "cli/trace.h"

#define EXIT_TIMEOUT	124
#define EXIT_FAILURE_KF	125

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("kfork: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE_KF);
}

/* Default guest artefacts sit next to the binary: build/guest/, build/tests/. */
static const char *artefact(const char *rel)
{
	static char buf[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return rel;
	exe[n] = 0;
	snprintf(buf, sizeof(buf), "%s/%s", dirname(exe), rel);
	return strdup(buf);
}

static enum kf_template_kind parse_kind(const char *s)
{
	for (int k = 0; k < KF_KIND_MAX; k++)
		if (!strcmp(s, kf_kind_name(k)))
			return k;
	die("unknown template kind '%s' (minimal, python or tiny)", s);
}

static int cmd_template_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kind", required_argument, NULL, 'k' }, { "output", required_argument, NULL, 'o' },
		{ "kernel", required_argument, NULL, 'K' }, { "initrd", required_argument, NULL, 'I' },
		{ "mem", required_argument, NULL, 'm' }, { "verbose", no_argument, NULL, 'v' },
		{ "timeout", required_argument, NULL, 'T' }, { "cmdline", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct kf_build_opts opts = { .kind = KF_KIND_MAX };
	const char *out = NULL;
	char rel[64];
	int c, err;

	while ((c = getopt_long(argc, argv, "k:o:K:I:m:vT:c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': opts.kind = parse_kind(optarg); break;
		case 'o': out = optarg; break;
		case 'K': opts.kernel = optarg; break;
		case 'I': opts.initrd = optarg; break;
		case 'm': opts.mem_size = strtoull(optarg, NULL, 0) << 20; break;
		case 'v': opts.verbose = 1; break;
		case 'T': opts.timeout_ms = strtoul(optarg, NULL, 0) * 1000; break;
		case 'c': opts.cmdline = optarg; break;
		default: die("usage: kfork template build --kind minimal|python|tiny -o FILE [--kernel F] [--initrd F] [--mem MiB] [--cmdline S] [--timeout S] [-v]");
		}
	}
	if (opts.kind == KF_KIND_MAX || !out)
		die("template build needs --kind and -o FILE");
	if (opts.kind == KF_KIND_TINY) {
		if (!opts.kernel)
			opts.kernel = artefact("tests/tiny.bin");
	} else {
		if (!opts.kernel)
			opts.kernel = artefact("guest/vmlinux");
		snprintf(rel, sizeof(rel), "guest/%s.cpio.gz", kf_kind_name(opts.kind));
		if (!opts.initrd)
			opts.initrd = artefact(rel);
	}
	err = kf_template_build(&opts, out);
	if (err)
		die("%s", kf_last_error());
	fprintf(stderr, "kfork: template %s (%s) written\n", out, kf_kind_name(opts.kind));
	return 0;
}

static void print_json_string(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);	/* bytes, not UTF-8: lossless */
		else
			putchar(c);
	}
	putchar('"');
}

static void stream_output(void *arg, int stream, const void *buf, size_t len)
{
	(void)arg;
	if (fwrite(buf, 1, len, stream == 1 ? stdout : stderr) != len)
		return;
	if (stream == 1)
		fflush(stdout);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, int n, int pct)
{
	int i = (int)((long)n * pct / 100);

	if (i >= n)
		i = n - 1;
	return v[i] / 1000.0;
}

struct run_opts {
	const char *tmpl_path;
	enum kf_backend backend;
	unsigned int timeout_ms;
	int json;
	int count;
	int lang;		/* -1: from the template kind */
	int pass_stdin;
	const char *code;
};

static void *slurp_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	size_t got;

	while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	*len = n;
	return buf;
}

static int run_once(struct kf_template *tmpl, const struct run_opts *o, struct kf_exec_req *req)
{
	struct kf_exec_result res;
	struct kf_clone *clone;
	uint64_t spawn_ns;
	int err;

	err = kf_spawn(tmpl, &clone);
	if (err)
		die("%s", kf_last_error());
	spawn_ns = kf_clone_spawn_ns(clone);
	if (!o->json)
		req->on_output = stream_output;
	err = kf_exec(clone, req, &res);
	kf_destroy(clone);
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "kfork: timed out after %u s (clone destroyed)\n", o->timeout_ms / 1000);
		return EXIT_TIMEOUT;
	}
	if (err)
		die("%s", kf_last_error());
	if (o->json) {
		fputs("{\"stdout\":", stdout);
		print_json_string(res.out ? res.out : "", res.out_len);
		fputs(",\"stderr\":", stdout);
		print_json_string(res.err ? res.err : "", res.err_len);
		printf(",\"exit_code\":%d,\"spawn_us\":%.1f,\"exec_us\":%.1f,\"total_us\":%.1f}\n",
		       res.exit_code, spawn_ns / 1e3, res.exec_ns / 1e3,
		       (spawn_ns + res.exec_ns) / 1e3);
	}
	kf_exec_result_free(&res);
	return res.exit_code;
}

/* -n N: N fresh clones in a row; figures as DESIGN.md defines them. */
static int run_many(struct kf_template *tmpl, const struct run_opts *o, struct kf_exec_req *req)
{
	uint64_t *spawn = calloc(o->count, sizeof(uint64_t));
	uint64_t *total = calloc(o->count, sizeof(uint64_t));
	int bad = 0;

	if (!spawn || !total)
		die("out of memory");
	for (int i = 0; i < o->count; i++) {
		struct kf_exec_result res;
		struct kf_clone *clone;
		int err = kf_spawn(tmpl, &clone);

		if (err)
			die("spawn %d of %d: %s", i + 1, o->count, kf_last_error());
		err = kf_exec(clone, req, &res);
		spawn[i] = kf_clone_spawn_ns(clone);
		total[i] = spawn[i] + res.exec_ns;
		kf_destroy(clone);
		if (err || res.exit_code) {
			if (!bad)
				fprintf(stderr, "kfork: clone %d: %s\n", i + 1,
					err ? kf_last_error() : "non-zero exit status");
			bad++;
		}
		kf_exec_result_free(&res);
	}
	qsort(spawn, o->count, sizeof(uint64_t), cmp_u64);
	qsort(total, o->count, sizeof(uint64_t), cmp_u64);
	printf("%d clones of %s, backend %s: spawn p50 %.1f us p99 %.1f us; "
	       "spawn+exec round trip p50 %.1f us p99 %.1f us; %d failed\n",
	       o->count, o->tmpl_path, kf_backend_name(kf_template_backend(tmpl)),
	       pct_us(spawn, o->count, 50), pct_us(spawn, o->count, 99),
	       pct_us(total, o->count, 50), pct_us(total, o->count, 99), bad);
	free(spawn);
	free(total);
	return bad ? 1 : 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "template", required_argument, NULL, 't' }, { "backend", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' }, { "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' }, { "lang", required_argument, NULL, 'l' },
		{ "stdin", no_argument, NULL, 'i' }, { NULL, 0, NULL, 0 },
	};
	struct run_opts o = { .count = 0, .lang = -1 };
	struct kf_exec_req req = { 0 };
	struct kf_template *tmpl;
	int c, err, status;

	while ((c = getopt_long(argc, argv, "+t:b:T:jn:l:i", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o.tmpl_path = optarg; break;
		case 'b':
			if (!strcmp(optarg, "user"))
				o.backend = KF_BACKEND_USER;
			else if (!strcmp(optarg, "kmod"))
				o.backend = KF_BACKEND_KMOD;
			else
				die("--backend %s: expected user or kmod", optarg);
			break;
		case 'T': o.timeout_ms = (unsigned int)(strtod(optarg, NULL) * 1000); break;
		case 'j': o.json = 1; break;
		case 'n': o.count = atoi(optarg); break;
		case 'l':
			if (!strcmp(optarg, "sh"))
				o.lang = KF_EXEC_SH;
			else if (!strcmp(optarg, "python"))
				o.lang = KF_EXEC_PYTHON;
			else
				die("--lang %s: expected sh or python", optarg);
			break;
		case 'i': o.pass_stdin = 1; break;
		default:
			die("usage: kfork run -t TEMPLATE [--backend user|kmod] [--timeout S] [--json] [-n N] [--lang sh|python] [--stdin] -- CODE");
		}
	}
	if (!o.tmpl_path || optind != argc - 1)
		die("run needs -t TEMPLATE and exactly one CODE argument after --");
	if (o.count < 0 || o.count > 1000000)
		die("-n %d: expected 1..1000000", o.count);
	o.code = argv[optind];
	err = kf_template_open(o.tmpl_path, o.backend, &tmpl);
	if (err)
		die("%s", kf_last_error());
	if (o.lang < 0)
		o.lang = kf_template_kind(tmpl) == KF_KIND_PYTHON ? KF_EXEC_PYTHON : KF_EXEC_SH;
	req.lang = o.lang;
	req.code = o.code;
	req.code_len = strlen(o.code);
	req.timeout_ms = o.timeout_ms;
	if (o.pass_stdin)
		req.stdin_data = slurp_stdin(&req.stdin_len);
	status = o.count ? run_many(tmpl, &o, &req) : run_once(tmpl, &o, &req);
	kf_template_close(tmpl);
	fflush(stdout);
	return status;
}

static void usage(void)
{
	fputs("usage: kfork template build --kind minimal|python|tiny -o FILE\n"
	      "       kfork run -t FILE [--backend user|kmod] [--timeout S] [--json] [-n N] -- CODE\n"
	      "       kfork trace [-p PID] [--json] [--duration S] [--binary PATH]\n"
	      "       kfork stats [--json]\n"
	      "       kfork events [--json] [--count N]\n"
	      "       kfork bench [--quick] [--host-only]\n",
	      stderr);
	exit(EXIT_FAILURE_KF);
}

/* kfork bench [--quick] [--host-only]: the tree's bench/run.sh, next to this binary's build/. */
static int cmd_bench(int argc, char **argv)
{
	const char *run = artefact("../bench/run.sh");
	const char *quick = "", *lab = "";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = "1";
		else if (!strcmp(argv[i], "--host-only"))
			lab = "0";
		else
			die("usage: kfork bench [--quick] [--host-only]");
	}
	if (access(run, X_OK))
		die("%s not found: kfork bench runs from a kfork source tree (make bench)", run);
	setenv("QUICK", quick, 1);
	setenv("LAB", lab, 1);
	execl(run, run, (char *)NULL);
	die("exec %s: %s", run, strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "template") && !strcmp(argv[2], "build"))
		return cmd_template_build(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "trace"))
		return cmd_trace(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "events"))
		return cmd_events(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return cmd_bench(argc - 1, argv + 1);
	usage();
}
