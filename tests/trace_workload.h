/* SPDX-License-Identifier: GPL-2.0-only */
/* trace_workload.h - runs `kfork trace --json` around a `kfork run -n N` workload, for the host and lab trace tests. */
#ifndef KF_TESTS_TRACE_WORKLOAD_H
#define KF_TESTS_TRACE_WORKLOAD_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KFORK_BIN	"build/kfork"

/* Why `kfork trace` cannot run here, or NULL. */
static const char *trace_skip_reason(void)
{
	if (geteuid())
		return "not root: BPF tracing needs CAP_BPF and CAP_PERFMON";
	if (access("/dev/kvm", R_OK | W_OK))
		return "/dev/kvm not available";
	if (access(KFORK_BIN, X_OK))
		return KFORK_BIN " not built (run make)";
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return "kernel without BTF (/sys/kernel/btf/vmlinux)";
	if (access("/sys/kernel/tracing/events", F_OK) &&
	    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return "tracefs not mounted at /sys/kernel/tracing and cannot be mounted";
	return NULL;
}

/* fork + exec argv with stdout and stderr to files (NULL: /dev/null). */
static pid_t spawn_cmd(char *const argv[], const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid == 0) {
		int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n)
		buf[0] = 0;
	fclose(f);
	return buf;
}

/* Waits up to ms for path to contain needle. */
static int wait_for_text(const char *path, const char *needle, int ms)
{
	for (; ms > 0; ms -= 50) {
		char *s = slurp(path);
		int found = s && strstr(s, needle);

		free(s);
		if (found)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* The integer after "key": in a JSON line: -1 missing, -2 null. */
static long long json_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	if (!strncmp(p, "null", 4))
		return -2;
	return strtoll(p, NULL, 10);
}

struct trace_run {
	char out[64], err[64];
	int trace_status, workload_status;
	char *records;		/* the JSON lines */
	char *messages;		/* kfork trace's stderr */
	pid_t workload_pid;
};

/*
 * Starts `kfork trace --json` (with --faults --exits, every attach point, if faults), waits until it is attached, runs the workload,
 * then stops the tracer with SIGINT (it drains what completed). --duration is
 * only the safety net.
 */
static int trace_around(struct trace_run *r, char *const workload[], int faults)
{
	char *const trace[] = { KFORK_BIN, "trace", "--json", "--duration", "600",
				faults ? "--faults" : NULL, "--exits", NULL };	/* NULL ends it */
	pid_t tracer;

	snprintf(r->out, sizeof(r->out), "/tmp/kfork-trace-test-%d.json", getpid());
	snprintf(r->err, sizeof(r->err), "/tmp/kfork-trace-test-%d.err", getpid());
	tracer = spawn_cmd(trace, r->out, r->err);
	if (tracer < 0)
		return -errno;
	if (wait_for_text(r->err, "tracing spawns", 60000)) {
		kill(tracer, SIGKILL);
		r->trace_status = wait_status(tracer);
		r->messages = slurp(r->err);
		r->records = strdup("");
		return -ETIMEDOUT;
	}
	/*
	 * Records are matched by the workload's pid; a sandboxed kfork run does
	 * its clones in a child (the parent only reports a seccomp kill), so
	 * the workload runs unconfined here. sandbox_test covers the sandbox.
	 */
	setenv("KFORK_SANDBOX", "0", 1);
	r->workload_pid = spawn_cmd(workload, NULL, NULL);
	unsetenv("KFORK_SANDBOX");
	r->workload_status = wait_status(r->workload_pid);
	kill(tracer, SIGINT);
	r->trace_status = wait_status(tracer);
	r->records = slurp(r->out);
	r->messages = slurp(r->err);
	unlink(r->out);
	unlink(r->err);
	return 0;
}

static void trace_run_free(struct trace_run *r)
{
	free(r->records);
	free(r->messages);
}

struct trace_check {
	int records;		/* of the workload's pid */
	int phases_missing;	/* a phase null: a stamp missing or out of order */
	int sum_off;		/* phase sum more than 5% off libkfork's spawn + exec */
	int lag_off;		/* a probe's BPF clock reading not within 0..1 s after libkfork's stamp */
	int exits_off;		/* user_exits_exec != lib_exits (where counted) */
	int exits_counted;	/* records with user_exits not null (--exits) */
	int lib_exits_counted;	/* records with libkfork's own KVM_RUN count > 0 */
	int kvm_exits_counted;	/* records with kvm_exits not null and > 0 */
	int stage2_counted;	/* records with stage2_faults > 0 */
	int faults_null;	/* records with stage2_faults and mm_faults null (not asked for) */
	long long max_clone;
	double worst_off;	/* worst |sum - lib| / lib */
};

static void trace_check_records(const struct trace_run *r, struct trace_check *c)
{
	static const char *const phase[] = { "vm", "restore", "arm", "first_byte", "result" };
	char *copy = strdup(r->records), *save = NULL;

	memset(c, 0, sizeof(*c));
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long long sum = json_num(line, "sum_ns");
		long long lib = json_num(line, "spawn_ns") + json_num(line, "exec_ns");
		long long lag = json_num(line, "probe_lag_ns");
		long long ue = json_num(line, "user_exits_exec");
		double off;

		if (json_num(line, "pid") != r->workload_pid)
			continue;
		c->records++;
		for (size_t i = 0; i < sizeof(phase) / sizeof(phase[0]); i++)
			if (json_num(line, phase[i]) < 0)
				c->phases_missing++;
		off = lib > 0 ? (double)llabs(sum - lib) / lib : 1.0;
		if (off > c->worst_off)
			c->worst_off = off;
		if (off > 0.05)
			c->sum_off++;
		if (lag < 0 || lag > 1000000000ll)
			c->lag_off++;
		if (json_num(line, "lib_exits") > 0)
			c->lib_exits_counted++;
		if (ue >= 0) {
			c->exits_counted++;
			if (ue != json_num(line, "lib_exits"))
				c->exits_off++;
		}
		if (json_num(line, "kvm_exits") > 0)
			c->kvm_exits_counted++;
		if (json_num(line, "stage2_faults") > 0)
			c->stage2_counted++;
		if (json_num(line, "stage2_faults") == -2 && json_num(line, "mm_faults") == -2)
			c->faults_null++;
		if (json_num(line, "clone") > c->max_clone)
			c->max_clone = json_num(line, "clone");
	}
	free(copy);
}

#endif
