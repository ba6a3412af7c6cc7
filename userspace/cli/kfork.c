// SPDX-License-Identifier: GPL-2.0-only
/* kfork.c - the command line: build templates, run code in clones, measure spawn latency. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kfork.h"
#include "cli/cli.h"
#include "cli/stats.h"
#include "cli/template.h"
#include "cli/trace.h"

/* Largest --timeout: its milliseconds fit libkfork's unsigned int. */
#define MAX_TIMEOUT_S	4294967.0

/*
 * Guest files: next to the binary in a build tree (build/guest/vmlinux,
 * build/tests/tiny.bin), else in ../lib/kfork/ beside an installed one
 * (install.mk), so a tree staged with DESTDIR finds its own. NULL: neither.
 */
static const char *artefact(const char *build_rel)
{
	char exe[PATH_MAX], path[PATH_MAX + 64], *dir;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *base = strrchr(build_rel, '/');

	if (n <= 0)
		return NULL;
	exe[n] = 0;
	dir = dirname(exe);
	snprintf(path, sizeof(path), "%s/%s", dir, build_rel);
	if (!access(path, R_OK))
		return strdup(path);
	snprintf(path, sizeof(path), "%s/../lib/kfork/%s", dir, base ? base + 1 : build_rel);
	if (!access(path, R_OK))
		return strdup(path);
	return NULL;
}

/* A default guest file, or exit saying where it was looked for. */
static const char *guest_file(const char *build_rel, const char *option)
{
	const char *path = artefact(build_rel);

	if (!path)
		die("%s not found next to this kfork nor in its ../lib/kfork/: build it (make) or pass %s",
		    build_rel, option);
	return path;
}

static enum kf_template_kind parse_kind(const char *s)
{
	for (int k = 0; k < KF_KIND_MAX; k++)
		if (!strcmp(s, kf_kind_name(k)))
			return k;
	die("unknown template kind '%s' (minimal, python or tiny)", s);
}

static const char template_build_usage[] =
	"usage: kfork template build --kind minimal|python|tiny -o FILE [options]\n"
	"  boot a guest with kfork's own VMM, run it to its agent's READY, freeze it into FILE\n"
	"  -k, --kind KIND     minimal (Linux + agent + busybox), python (+ a warm interpreter),\n"
	"                      tiny (the freestanding test guest, no kernel)\n"
	"  -o, --output FILE   the template file to write\n"
	"  -K, --kernel FILE   guest kernel (PVH vmlinux; tiny: the flat image); default: the\n"
	"                      build tree's, or the installed ../lib/kfork/ one\n"
	"  -I, --initrd FILE   initramfs (default: KIND's, found as the kernel is)\n"
	"  -m, --mem MIB       guest RAM in MiB (default 256; tiny: 4)\n"
	"  -c, --cmdline TEXT  kernel command line instead of the default\n"
	"  -T, --timeout S     give up if READY has not come after S seconds (default 600)\n"
	"  -v, --verbose       copy the guest console to stderr\n"
	"  -h, --help          this text\n";

static int cmd_template_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kind", required_argument, NULL, 'k' }, { "output", required_argument, NULL, 'o' },
		{ "kernel", required_argument, NULL, 'K' }, { "initrd", required_argument, NULL, 'I' },
		{ "mem", required_argument, NULL, 'm' }, { "verbose", no_argument, NULL, 'v' },
		{ "timeout", required_argument, NULL, 'T' }, { "cmdline", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct kf_build_opts opts = { .kind = KF_KIND_MAX };
	const char *out = NULL;
	char rel[64];
	int c, err;

	while ((c = getopt_long(argc, argv, "k:o:K:I:m:vT:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': opts.kind = parse_kind(optarg); break;
		case 'o': out = optarg; break;
		case 'K': opts.kernel = optarg; break;
		case 'I': opts.initrd = optarg; break;
		case 'm': opts.mem_size = parse_count("--mem", optarg, 1, 1 << 20) << 20; break;
		case 'v': opts.verbose = 1; break;
		case 'T': opts.timeout_ms = parse_seconds_ms("--timeout", optarg, MAX_TIMEOUT_S); break;
		case 'c': opts.cmdline = optarg; break;
		case 'h': usage_exit(template_build_usage, 1);
		default: usage_exit(template_build_usage, 0);
		}
	}
	if (optind != argc)
		die("template build: unexpected argument '%s' (kfork template build --help)", argv[optind]);
	if (opts.kind == KF_KIND_MAX || !out)
		die("template build needs --kind and -o FILE (kfork template build --help)");
	if (opts.kind == KF_KIND_TINY) {
		if (!opts.kernel)
			opts.kernel = guest_file("tests/tiny.bin", "--kernel");
	} else {
		if (!opts.kernel)
			opts.kernel = guest_file("guest/vmlinux", "--kernel");
		snprintf(rel, sizeof(rel), "guest/%s.cpio.gz", kf_kind_name(opts.kind));
		if (!opts.initrd)
			opts.initrd = guest_file(rel, "--initrd");
	}
	err = kf_template_build(&opts, out);
	if (err)
		die("%s", kf_last_error());
	fprintf(stderr, "kfork: template %s (%s) written\n", out, kf_kind_name(opts.kind));
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Microseconds to 0.1, as the text output shows them. */
static double tenths(double us)
{
	return round(us * 10) / 10;
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
	int session;		/* --session: kf_session_begin() before the first code */
	struct run_code {
		const char *text;
		size_t len;
		char *buf;	/* -f: the file read, ours to free */
	} *codes;		/* each -c / -f, in order, or the one CODE */
	int ncodes;
	uint64_t open_ns;	/* kf_template_open(): read the file, or attach to the kept template */
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

/* The largest script -f reads: far past what one exec takes, so that exec says the limit. */
#define CODE_FILE_MAX	(16u << 20)

/* -f FILE: the whole file, or die saying why. */
static char *read_code_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		die("-f %s: %s", path, strerror(errno));
	buf = malloc(CODE_FILE_MAX + 1);
	if (!buf)
		die("-f %s: out of memory", path);
	n = fread(buf, 1, CODE_FILE_MAX + 1, f);
	if (ferror(f))
		die("-f %s: %s", path, strerror(errno));
	fclose(f);
	if (n > CODE_FILE_MAX)
		die("-f %s: larger than %u MiB", path, CODE_FILE_MAX >> 20);
	buf[n] = 0;
	*len = n;
	return buf;
}

/* What one exec of a run reports: 0..255 its status, or a CLI_EXIT_* that ends the run. */
static int run_report(struct kf_template *tmpl, const struct run_opts *o, int err,
		      struct kf_exec_result *res, uint64_t spawn_ns, uint64_t *elapsed_ns,
		      int index, int *stop)
{
	json_t *rec;
	int status;

	*stop = 1;
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "kfork: timed out after %g s (clone destroyed)\n", o->timeout_ms / 1e3);
		kf_exec_result_free(res);
		return CLI_EXIT_TIMEOUT;
	}
	if (err == -EMSGSIZE || err == -EDQUOT) {
		/* What came before the limit has been passed on already (or is in res). */
		fprintf(stderr, "kfork: %s (clone destroyed)\n", kf_last_error());
		kf_exec_result_free(res);
		return CLI_EXIT_LIMIT;
	}
	if (err)
		die("%s", kf_last_error());
	*stop = 0;
	status = res->exit_code;
	*elapsed_ns += res->exec_ns;
	if (o->json) {
		rec = json_pack("{s:o, s:o, s:i, s:f, s:f, s:f, s:f, s:b}",
				"stdout", json_bytes(res->out, res->out_len),
				"stderr", json_bytes(res->err, res->err_len),
				"exit_code", res->exit_code, "spawn_us", tenths(spawn_ns / 1e3),
				"exec_us", tenths(res->exec_ns / 1e3),
				"total_us", tenths((spawn_ns + *elapsed_ns) / 1e3),
				"open_us", tenths(o->open_ns / 1e3),
				"kept", kf_template_is_persistent(tmpl));
		/* Only a run of several codes, or a session, numbers its records. */
		if (o->ncodes > 1 || o->session) {
			json_object_set_new(rec, "index", json_integer(index));
			json_object_set_new(rec, "session", json_boolean(o->session));
		}
		json_print(rec, stdout);
	}
	kf_exec_result_free(res);
	return status;
}

/*
 * One clone; each code one exec in it, in order (a session's share one
 * interpreter). A non-zero status goes on to the next code; a timeout, a
 * limit or a failed exec ends the run. Exits with the last code's status.
 */
static int run_once(struct kf_template *tmpl, const struct run_opts *o, struct kf_exec_req *req)
{
	struct kf_exec_result res;
	struct kf_clone *clone;
	uint64_t spawn_ns, elapsed_ns = 0;
	int err, status = 0, stop = 0;

	err = kf_spawn(tmpl, &clone);
	if (err)
		die("%s", kf_last_error());
	spawn_ns = kf_clone_spawn_ns(clone);
	if (o->session && kf_session_begin(clone))
		die("%s", kf_last_error());
	if (!o->json)
		req->on_output = stream_output;
	for (int i = 0; i < o->ncodes && !stop; i++) {
		if (kf_session_state(clone) == KF_SESSION_LOST) {
			fprintf(stderr, "kfork: code %d ended the session's interpreter (os._exit or a signal): "
				"codes %d to %d not run\n", i, i + 1, o->ncodes);
			break;
		}
		req->code = o->codes[i].text;
		req->code_len = o->codes[i].len;
		err = kf_exec(clone, req, &res);
		if (err && err != -ETIMEDOUT && err != -EMSGSIZE && err != -EDQUOT)
			kf_destroy(clone);	/* die() below exits */
		status = run_report(tmpl, o, err, &res, spawn_ns, &elapsed_ns, i + 1, &stop);
	}
	kf_destroy(clone);
	return status;
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
	return bad ? CLI_EXIT_FAILED_CLONES : CLI_EXIT_OK;
}

/*
 * kfork run confines itself (kf_sandbox_thread) unless KFORK_SANDBOX=0. The
 * filter kills the process, which could not then say why itself: so a
 * parent that is not confined waits for it and turns a SIGSYS into one line.
 * The parent returns only in the child; otherwise it exits with the child's
 * status, or dies of the child's signal.
 */
static int sandbox_wanted(void)
{
	const char *env = getenv("KFORK_SANDBOX");

	return !env || strcmp(env, "0");
}

static void sandbox_watch(void)
{
	pid_t parent = getpid(), pid = fork();
	int status;

	if (pid < 0)
		die("fork for the sandboxed run: %s (KFORK_SANDBOX=0 runs unconfined)", strerror(errno));
	if (pid == 0) {
		/* Nobody would report for us once the parent is gone. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(CLI_EXIT_ERROR);
		return;
	}
	/* Terminal signals reach the child too; the parent only reports. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid for the sandboxed run: %s", strerror(errno));
	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	if (WTERMSIG(status) == SIGSYS) {
		fprintf(stderr, "kfork: the sandbox killed kfork run: it made a system call "
			"outside libkfork's allow-list (the kernel log names it: audit type=1326 "
			"syscall=N); KFORK_SANDBOX=0 runs without the sandbox\n");
		exit(CLI_EXIT_ERROR);
	}
	signal(WTERMSIG(status), SIG_DFL);
	raise(WTERMSIG(status));
	exit(128 + WTERMSIG(status));
}

static void sandbox_enter(void)
{
	/* Jansson seeds its hash tables from /dev/urandom on first use: open it now. */
	json_object_seed(0);
	if (kf_sandbox_thread(0))
		die("%s (KFORK_SANDBOX=0 runs without the sandbox)", kf_last_error());
	/* Test hook (tests/host/cli_test.c): make one forbidden call, to show how it ends. */
	if (getenv("KFORK_SANDBOX_SELFTEST"))
		socket(AF_UNIX, SOCK_STREAM, 0);
}

static const char run_usage[] =
	"usage: kfork run -t TEMPLATE [options] -- CODE\n"
	"       kfork run -t TEMPLATE [options] -f FILE\n"
	"       kfork run -t TEMPLATE [--session] [options] -c CODE [-c CODE | -f FILE]...\n"
	"  spawn a clone of TEMPLATE, run CODE in it, pass its output on, exit with its status\n"
	"  -t, --template FILE    the template file (kfork template build)\n"
	"  -b, --backend B        user (plain KVM ioctls) or kmod (/dev/kfork); default: kmod\n"
	"                         where /dev/kfork exists; KFORK_BACKEND sets it too\n"
	"  -l, --lang L           sh or python (default: python for python templates, else sh)\n"
	"  -T, --timeout S        destroy the clone and exit 124 after S seconds (0.001 or more)\n"
	"  -f, --file FILE        run the code in FILE instead of a CODE argument\n"
	"  -c, --code CODE        one exec; -c and -f repeat: each is one exec in the same clone,\n"
	"                         in order, output of each as it comes; exit status of the last\n"
	"                         (a timeout, a limit or a failed exec stops the rest)\n"
	"  -s, --session          Python execs share one live interpreter: -c 'x = 41' -c\n"
	"                         'print(x + 1)' prints 42 (python templates only)\n"
	"  -i, --stdin            pass kfork's stdin to the code\n"
	"      --max-output BYTES stop the clone and exit 123 once stdout + stderr pass BYTES\n"
	"                         (default and most 268435456)\n"
	"      --max-dirty PAGES  stop the clone and exit 123 once it has copied more than PAGES\n"
	"                         4 KiB guest pages from the template (checked every 50 ms)\n"
	"  -j, --json             one JSON object: stdout, stderr, exit_code, spawn_us, exec_us,\n"
	"                         total_us, open_us (template open), kept (attached to a\n"
	"                         template kfork.ko keeps); invalid UTF-8 becomes U+FFFD;\n"
	"                         several codes or --session: one object per exec, one a line,\n"
	"                         with index (1, 2, ...) and session; total_us is spawn to it\n"
	"  -n, --count N          N clones in a row (1 to 1000000): p50/p99 of spawn and round\n"
	"                         trip; exits 1 if any clone failed or exited non-zero\n"
	"  -h, --help             this text\n"
	"exit status: CODE's own (128+N if signal N killed it), 123 past a --max-* limit,\n"
	"             124 timeout, 125 kfork's error\n"
	"once the template is open, kfork confines itself with no_new_privs and a seccomp\n"
	"allow-list (a forbidden system call ends it with 125); KFORK_SANDBOX=0 turns that off\n";

enum { OPT_MAX_OUTPUT = 256, OPT_MAX_DIRTY };

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "template", required_argument, NULL, 't' }, { "backend", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' }, { "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' }, { "lang", required_argument, NULL, 'l' },
		{ "stdin", no_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' },
		{ "file", required_argument, NULL, 'f' }, { "code", required_argument, NULL, 'c' },
		{ "session", no_argument, NULL, 's' },
		{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
		{ "max-dirty", required_argument, NULL, OPT_MAX_DIRTY },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o = { .count = 0, .lang = -1 };
	struct kf_exec_req req = { 0 };
	struct kf_template *tmpl;
	int c, err, status;
	struct run_code *code;

	o.codes = calloc(argc, sizeof(*o.codes));	/* at most one code per argument */
	if (!o.codes)
		die("out of memory");
	while ((c = getopt_long(argc, argv, "+t:b:T:jn:l:if:c:sh", longopts, NULL)) != -1) {
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
		case 'T': o.timeout_ms = parse_seconds_ms("--timeout", optarg, MAX_TIMEOUT_S); break;
		case 'j': o.json = 1; break;
		case 'n': o.count = (int)parse_count("-n", optarg, 1, 1000000); break;
		case 'l':
			if (!strcmp(optarg, "sh"))
				o.lang = KF_EXEC_SH;
			else if (!strcmp(optarg, "python"))
				o.lang = KF_EXEC_PYTHON;
			else
				die("--lang %s: expected sh or python", optarg);
			break;
		case 'i': o.pass_stdin = 1; break;
		case 'f':
			code = &o.codes[o.ncodes++];
			code->buf = read_code_file(optarg, &code->len);
			code->text = code->buf;
			break;
		case 'c':
			code = &o.codes[o.ncodes++];
			code->text = optarg;
			code->len = strlen(optarg);
			break;
		case 's': o.session = 1; break;
		case OPT_MAX_OUTPUT:
			req.max_output = parse_count("--max-output", optarg, 1, KF_EXEC_OUTPUT_MAX);
			break;
		case OPT_MAX_DIRTY:
			req.max_dirty = parse_count("--max-dirty", optarg, 1, 1ull << 40);
			break;
		case 'h': usage_exit(run_usage, 1);
		default: usage_exit(run_usage, 0);
		}
	}
	if (!o.tmpl_path || optind != argc - !o.ncodes)
		die("run needs -t TEMPLATE and exactly one CODE argument after --, or -f FILE, or -c CODE... (kfork run --help)");
	if (!o.ncodes) {
		o.codes[0].text = argv[optind];
		o.codes[0].len = strlen(argv[optind]);
		o.ncodes = 1;
	}
	if (o.count && (o.ncodes > 1 || o.session))
		die("-n N runs one code in N fresh clones: not with several -c/-f or --session");
	if (o.pass_stdin && o.ncodes > 1)
		die("--stdin goes to one code: not with several -c/-f");
	if (o.session && o.lang == KF_EXEC_SH)
		die("--session keeps a Python interpreter: not with --lang sh");
	if (sandbox_wanted())
		sandbox_watch();
	o.open_ns = now_ns();
	err = kf_template_open(o.tmpl_path, o.backend, &tmpl);
	if (err)
		die("%s", kf_last_error());
	o.open_ns = now_ns() - o.open_ns;
	if (o.lang < 0)
		o.lang = kf_template_kind(tmpl) == KF_KIND_PYTHON ? KF_EXEC_PYTHON : KF_EXEC_SH;
	if (o.session && o.lang != KF_EXEC_PYTHON)
		die("--session needs a python template (%s is %s)", o.tmpl_path,
		    kf_kind_name(kf_template_kind(tmpl)));
	req.lang = o.lang;
	req.code = o.codes[0].text;
	req.code_len = o.codes[0].len;
	req.timeout_ms = o.timeout_ms;
	if (o.pass_stdin)
		req.stdin_data = slurp_stdin(&req.stdin_len);
	if (sandbox_wanted())
		sandbox_enter();
	status = o.count ? run_many(tmpl, &o, &req) : run_once(tmpl, &o, &req);
	kf_template_close(tmpl);
	for (int i = 0; i < o.ncodes; i++)
		free(o.codes[i].buf);
	free(o.codes);
	fflush(stdout);
	return status;
}

/* kfork bench [--quick] [--host-only]: the tree's bench/run.sh, next to this binary's build/. */
static const char bench_usage[] =
	"usage: kfork bench [--quick] [--host-only]\n"
	"  every figure of DESIGN.md, both backends, the KVM floor and the QEMU peer (bench/run.sh);\n"
	"  runs from a kfork source tree only\n"
	"  --quick       fewer samples (under 5 minutes)\n"
	"  --host-only   no lab part\n"
	"  -h, --help    this text\n";

static int cmd_bench(int argc, char **argv)
{
	const char *run, *quick = "", *lab = "";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = "1";
		else if (!strcmp(argv[i], "--host-only"))
			lab = "0";
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			usage_exit(bench_usage, 1);
		else
			usage_exit(bench_usage, 0);
	}
	run = artefact("../bench/run.sh");
	if (!run || access(run, X_OK))
		die("bench/run.sh not found: kfork bench runs from a kfork source tree (make bench)");
	setenv("QUICK", quick, 1);
	setenv("LAB", lab, 1);
	execl(run, run, (char *)NULL);
	die("exec %s: %s", run, strerror(errno));
}

static const char main_usage[] =
	"usage: kfork COMMAND [options]     (kfork COMMAND --help for each)\n"
	"  template build   boot a guest once and freeze it into a template file\n"
	"  template load    have kfork.ko keep a template for later runs (unload: stop)\n"
	"  run              run code in a fresh copy-on-write clone of a template\n"
	"  trace            per-phase latency of every spawn, from eBPF\n"
	"  stats            kfork.ko's counters: module-wide and per template\n"
	"  events           kfork.ko's spawn, reset and destroy events as they happen\n"
	"  bench            the benchmarks (from a source tree)\n"
	"  --version        kfork's and libkfork's versions\n"
	"exit status: 0 success; run: the code's own status, 123 past a --max-* limit,\n"
	"             124 timeout; 125 kfork's own error\n";

static const char template_usage[] =
	"usage: kfork template build --kind minimal|python|tiny -o FILE [options]\n"
	"       kfork template load FILE...\n"
	"       kfork template unload FILE... | --all\n"
	"  (kfork template COMMAND --help for each)\n";

static int is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help");
}

static int cmd_template(int argc, char **argv)
{
	if (argc < 2)
		usage_exit(template_usage, 0);
	if (is_help(argv[1]))
		usage_exit(template_usage, 1);
	if (!strcmp(argv[1], "build")) {
		argv[1] = "kfork template build";	/* getopt's messages start with it */
		return cmd_template_build(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "load")) {
		argv[1] = "kfork template load";
		return cmd_template_load(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "unload")) {
		argv[1] = "kfork template unload";
		return cmd_template_unload(argc - 1, argv + 1);
	}
	die("unknown template command '%s' (kfork template --help)", argv[1]);
}

static int cmd_version(void)
{
	const char *lib;

	kf_version(&lib);
	printf("kfork %s (libkfork %s)\n", KF_VERSION_STRING, lib);
	return CLI_EXIT_OK;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "template", cmd_template }, { "run", cmd_run }, { "trace", cmd_trace },
	{ "stats", cmd_stats }, { "events", cmd_events }, { "bench", cmd_bench },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_exit(main_usage, 0);
	if (is_help(argv[1]))
		usage_exit(main_usage, 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cmd_version();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		static char name[32];

		if (strcmp(argv[1], commands[i].name))
			continue;
		snprintf(name, sizeof(name), "kfork %s", commands[i].name);
		argv[1] = name;		/* getopt's messages start with it */
		return commands[i].run(argc - 1, argv + 1);
	}
	die("unknown command '%s' (kfork --help lists them)", argv[1]);
}
