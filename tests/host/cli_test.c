// SPDX-License-Identifier: GPL-2.0-only
/* cli_test.c - the kfork command's conventions: --help, --version, unknown commands, strict numbers, exit codes, JSON. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"

#define KFORK		"build/kfork"
#define TINY_BIN	"build/tests/tiny.bin"
#define OUT_MAX		65536

struct cli_result {
	int status;		/* exit status, or -1 if killed */
	char out[OUT_MAX], err[OUT_MAX];
};

static void slurp(int fd, char *buf)
{
	size_t n = 0;
	ssize_t got;

	while (n + 1 < OUT_MAX && (got = read(fd, buf + n, OUT_MAX - 1 - n)) > 0)
		n += got;
	buf[n] = 0;
	close(fd);
}

/* Runs build/kfork with args (NULL-terminated); stdout and stderr to files, then into r. */
static int cli(struct cli_result *r, const char *const *args)
{
	char out[] = "/tmp/kfork-cli-out-XXXXXX", err[] = "/tmp/kfork-cli-err-XXXXXX";
	const char *argv[32] = { KFORK };
	int fo = mkstemp(out), fe = mkstemp(err), st;
	pid_t pid;

	for (int i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];
	if (fo < 0 || fe < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		execv(KFORK, (char *const *)argv);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	lseek(fo, 0, SEEK_SET);
	lseek(fe, 0, SEEK_SET);
	slurp(fo, r->out);
	slurp(fe, r->err);
	unlink(out);
	unlink(err);
	return 0;
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

#define CLI(r, ...) ASSERT_EQ(0, cli((r), (const char *const[]){ __VA_ARGS__, NULL }))

FIXTURE(cli) {
	struct cli_result r;
};

FIXTURE_SETUP(cli)
{
	ASSERT_EQ(0, access(KFORK, X_OK)) TH_LOG(KFORK " not built (run make)");
}

FIXTURE_TEARDOWN(cli)
{
}

/* Bad input first: each is refused with 125, nothing on stdout, one line naming the option. */
static const struct bad_input {
	const char *args[12];
	const char *says;
} bad_inputs[] = {
	{ { "run", "-t", "x.tmpl", "-n", "0", "--", "echo" }, "kfork: -n 0: expected a whole number" },
	{ { "run", "-t", "x.tmpl", "-n", "abc", "--", "echo" }, "kfork: -n abc: expected" },
	{ { "run", "-t", "x.tmpl", "-n", "5x", "--", "echo" }, "kfork: -n 5x: expected" },
	{ { "run", "-t", "x.tmpl", "-n", "-1", "--", "echo" }, "kfork: -n -1: expected" },
	{ { "run", "-t", "x.tmpl", "-n", "99999999999999999999", "--", "echo" }, "kfork: -n 9999" },
	{ { "run", "-t", "x.tmpl", "--timeout", "-1", "--", "echo" }, "kfork: --timeout -1: expected seconds" },
	{ { "run", "-t", "x.tmpl", "--timeout", "abc", "--", "echo" }, "kfork: --timeout abc: expected" },
	{ { "run", "-t", "x.tmpl", "--timeout", "0", "--", "echo" }, "kfork: --timeout 0: expected" },
	{ { "run", "-t", "x.tmpl", "--timeout", "nan", "--", "echo" }, "kfork: --timeout nan: expected" },
	{ { "run", "-t", "x.tmpl", "--timeout", "1e9", "--", "echo" }, "kfork: --timeout 1e9: expected" },
	{ { "run", "-t", "x.tmpl", "--backend", "qemu", "--", "echo" }, "kfork: --backend qemu: expected" },
	{ { "run", "-t", "x.tmpl", "--max-output", "0", "--", "echo" }, "kfork: --max-output 0: expected" },
	{ { "run", "-t", "x.tmpl", "--max-output", "300000000", "--", "echo" }, "kfork: --max-output 3" },
	{ { "run", "-t", "x.tmpl", "--max-dirty", "lots", "--", "echo" }, "kfork: --max-dirty lots: expected" },
	{ { "run", "-t", "x.tmpl", "--max-dirty", "-2", "--", "echo" }, "kfork: --max-dirty -2: expected" },
	{ { "run", "-t", "x.tmpl", "--bogus", "--", "echo" }, "kfork run: unrecognized option '--bogus'" },
	{ { "run", "--", "echo" }, "kfork: run needs -t TEMPLATE" },
	{ { "run", "-t", "x.tmpl", "-f", "/nonexistent/s.sh" }, "kfork: -f /nonexistent/s.sh: No such file" },
	{ { "run", "-t", "x.tmpl", "-f", "/dev/null", "--", "echo" }, "or -f FILE" },
	{ { "run", "-t", "x.tmpl", "-c", "echo", "--", "echo" }, "or -c CODE" },
	{ { "run", "-t", "x.tmpl", "-c", "a", "-c", "b", "-n", "2" }, "kfork: -n N runs one code" },
	{ { "run", "-t", "x.tmpl", "--session", "-n", "2", "-c", "a" }, "not with several -c/-f or --session" },
	{ { "run", "-t", "x.tmpl", "-i", "-c", "a", "-c", "b" }, "kfork: --stdin goes to one code" },
	{ { "run", "-t", "x.tmpl", "--session", "--lang", "sh", "-c", "a" }, "kfork: --session keeps a Python" },
	{ { "template", "build", "--kind", "tiny", "-o", "x", "--mem", "lots" }, "kfork: --mem lots: expected" },
	{ { "template", "build", "--kind", "tiny", "-o", "x", "--timeout", "-5" }, "kfork: --timeout -5:" },
	{ { "template", "build", "--kind", "huge", "-o", "x" }, "kfork: unknown template kind 'huge'" },
	{ { "template", "frob" }, "kfork: unknown template command 'frob'" },
	{ { "template", "load" }, "kfork: template load needs a template FILE" },
	{ { "template", "unload" }, "kfork: template unload needs a template FILE or --all" },
	{ { "template", "unload", "--all", "x.tmpl" }, "kfork: template unload: --all takes no FILE" },
	{ { "template", "load", "--bogus" }, "kfork template load: unrecognized option '--bogus'" },
	{ { "trace", "-p", "0" }, "kfork: -p 0: expected" },
	{ { "trace", "--duration", "soon" }, "kfork: --duration soon: expected" },
	{ { "events", "--count", "-3" }, "kfork: --count -3: expected" },
	{ { "events", "--count", "x" }, "kfork: --count x: expected" },
	{ { "stats", "--bogus" }, "usage: kfork stats" },
	{ { "bench", "--bogus" }, "usage: kfork bench" },
	{ { "frobnicate" }, "kfork: unknown command 'frobnicate' (kfork --help lists them)" },
};

TEST_F(cli, bad_input_exits_125_saying_why)
{
	for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
		const struct bad_input *b = &bad_inputs[i];

		ASSERT_EQ(0, cli(&self->r, b->args));
		EXPECT_EQ(125, self->r.status) TH_LOG("%s %s: exit %d", b->args[0], b->says, self->r.status);
		EXPECT_STREQ("", self->r.out) TH_LOG("%s: stdout %s", b->says, self->r.out);
		EXPECT_NE(NULL, strstr(self->r.err, b->says))
			TH_LOG("expected '%s' on stderr, got '%s'", b->says, self->r.err);
	}
}

TEST_F(cli, no_command_prints_usage_to_stderr_and_exits_125)
{
	ASSERT_EQ(0, cli(&self->r, (const char *const[]){ NULL }));
	EXPECT_EQ(125, self->r.status);
	EXPECT_STREQ("", self->r.out);
	EXPECT_EQ(0, strncmp(self->r.err, "usage: kfork COMMAND", 20)) TH_LOG("%s", self->r.err);
}

TEST_F(cli, help_goes_to_stdout_and_exits_0_for_every_command)
{
	static const char *const cmds[][3] = {
		{ "--help" }, { "-h" }, { "help" }, { "run", "--help" }, { "run", "-h" },
		{ "template", "--help" }, { "template", "build", "--help" },
		{ "template", "load", "--help" }, { "template", "unload", "--help" }, { "trace", "--help" },
		{ "stats", "--help" }, { "events", "--help" }, { "bench", "--help" },
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		ASSERT_EQ(0, cli(&self->r, cmds[i]));
		EXPECT_EQ(0, self->r.status) TH_LOG("%s %s: exit %d", cmds[i][0], cmds[i][1] ?: "",
						   self->r.status);
		EXPECT_STREQ("", self->r.err) TH_LOG("%s: stderr %s", cmds[i][0], self->r.err);
		EXPECT_EQ(0, strncmp(self->r.out, "usage: kfork", 12))
			TH_LOG("%s %s: stdout %s", cmds[i][0], cmds[i][1] ?: "", self->r.out);
	}
	/* The top-level help documents the exit codes. */
	CLI(&self->r, "--help");
	EXPECT_NE(NULL, strstr(self->r.out, "124 timeout"));
	EXPECT_NE(NULL, strstr(self->r.out, "123 past a --max-* limit"));
	EXPECT_NE(NULL, strstr(self->r.out, "125 kfork's own error"));
}

TEST_F(cli, version_names_kfork_and_libkfork)
{
	CLI(&self->r, "--version");
	EXPECT_EQ(0, self->r.status);
	EXPECT_STREQ("kfork " KF_VERSION_STRING " (libkfork " KF_VERSION_STRING ")\n", self->r.out);
	EXPECT_STREQ("", self->r.err);
}

/* Without kfork.ko, stats and events fail with the same code as everything else. */
TEST_F(cli, stats_and_events_without_the_module_exit_125)
{
	if (!access("/dev/kfork", F_OK))
		SKIP(return, "kfork.ko is loaded here (the lab's obs_test covers it)");
	CLI(&self->r, "stats");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "is kfork.ko loaded?")) TH_LOG("%s", self->r.err);
	CLI(&self->r, "events", "--count", "1");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "is kfork.ko loaded?")) TH_LOG("%s", self->r.err);
	CLI(&self->r, "template", "load", "x.tmpl");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "/dev/kfork not present")) TH_LOG("%s", self->r.err);
	CLI(&self->r, "template", "unload", "--all");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "/dev/kfork not present")) TH_LOG("%s", self->r.err);
}

/* With the tiny guest: run's exit codes and its JSON, UTF-8 included. */
FIXTURE(tiny) {
	char path[64];
	const char *skip;
	struct cli_result r;
};

FIXTURE_SETUP(tiny)
{
	self->skip = NULL;
	if (access("/dev/kvm", R_OK | W_OK))
		self->skip = "/dev/kvm not available";
	else if (access(TINY_BIN, R_OK))
		self->skip = TINY_BIN " not built (run make)";
	if (self->skip)
		return;
	snprintf(self->path, sizeof(self->path), "/tmp/kfork-cli-test-%d.tmpl", getpid());
	CLI(&self->r, "template", "build", "--kind", "tiny", "-o", self->path);
	ASSERT_EQ(0, self->r.status) TH_LOG("template build: %s", self->r.err);
}

FIXTURE_TEARDOWN(tiny)
{
	if (!self->skip)
		unlink(self->path);
}

#define NEED_TINY() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

TEST_F(tiny, run_exits_with_the_code_status)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--", "echo hi");
	EXPECT_EQ(0, self->r.status);
	EXPECT_STREQ("hi\n", self->r.out);
	CLI(&self->r, "run", "-t", self->path, "--", "exit 3");
	EXPECT_EQ(3, self->r.status);
	CLI(&self->r, "run", "-t", self->path, "-n", "3", "--", "exit 2");
	EXPECT_EQ(1, self->r.status) TH_LOG("-n with failing clones: %s", self->r.err);
	EXPECT_NE(NULL, strstr(self->r.out, "3 failed"));
}

/* -c and -f repeated: one exec each, in one clone, in order; the last one's status. */
TEST_F(tiny, run_several_codes_in_one_clone)
{
	char script[80];
	FILE *f;

	NEED_TINY();
	snprintf(script, sizeof(script), "%s.sh", self->path);
	f = fopen(script, "w");
	ASSERT_NE(NULL, f);
	fputs("echo from-file", f);
	fclose(f);
	CLI(&self->r, "run", "-t", self->path, "-c", "echo one", "-f", script, "-c", "exit 4");
	EXPECT_EQ(4, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_STREQ("one\nfrom-file\n", self->r.out);
	/* a non-zero status goes on; the id shows both ran in the same clone */
	CLI(&self->r, "run", "-t", self->path, "-c", "exit 2", "-c", "id", "-c", "id");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	ASSERT_EQ(4, strlen(self->r.out)) TH_LOG("%s", self->r.out);
	EXPECT_EQ(0, memcmp(self->r.out, self->r.out + 2, 2)) TH_LOG("%s", self->r.out);
	CLI(&self->r, "run", "-t", self->path, "--json", "-c", "echo a", "-c", "exit 3");
	EXPECT_EQ(3, self->r.status);
	EXPECT_TRUE(starts_with(self->r.out, "{\"stdout\":\"a\\n\",\"stderr\":\"\",\"exit_code\":0,"))
		TH_LOG("%s", self->r.out);
	EXPECT_NE(NULL, strstr(self->r.out, "\"index\":1,\"session\":false}\n{\"stdout\":\"\",\"stderr\":\"\",\"exit_code\":3,"))
		TH_LOG("%s", self->r.out);
	EXPECT_NE(NULL, strstr(self->r.out, "\"index\":2,\"session\":false}\n")) TH_LOG("%s", self->r.out);
	/* a timeout stops the rest */
	CLI(&self->r, "run", "-t", self->path, "--timeout", "0.5", "-c", "echo a", "-c", "spin",
	    "-c", "echo never");
	EXPECT_EQ(124, self->r.status);
	EXPECT_STREQ("a\n", self->r.out);
	/* one code keeps the one-object JSON of before */
	CLI(&self->r, "run", "-t", self->path, "--json", "-c", "echo a");
	EXPECT_EQ(NULL, strstr(self->r.out, "index")) TH_LOG("%s", self->r.out);
	unlink(script);
}

TEST_F(tiny, run_session_needs_a_python_template)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--session", "-c", "echo a");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "--session needs a python template")) TH_LOG("%s", self->r.err);
	EXPECT_STREQ("", self->r.out);
}

/* -f FILE runs the file's code; code past what one exec takes is refused, saying the limit. */
TEST_F(tiny, run_file_runs_its_code_and_refuses_too_big)
{
	char script[80];
	FILE *f;

	NEED_TINY();
	snprintf(script, sizeof(script), "%s.sh", self->path);
	f = fopen(script, "w");
	ASSERT_NE(NULL, f);
	fputs("echo from-file", f);
	fclose(f);
	CLI(&self->r, "run", "-t", self->path, "-f", script);
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_STREQ("from-file\n", self->r.out);
	f = fopen(script, "w");
	ASSERT_NE(NULL, f);
	for (int i = 0; i < 100000; i++)
		fputc('#', f);
	fclose(f);
	CLI(&self->r, "run", "-t", self->path, "-f", script);
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "code is 100000 bytes, limit")) TH_LOG("%s", self->r.err);
	unlink(script);
}

TEST_F(tiny, run_timeout_exits_124)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--timeout", "0.5", "--", "spin");
	EXPECT_EQ(124, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "timed out after 0.5 s")) TH_LOG("%s", self->r.err);
}

/* Caller limits: past one the clone is stopped, the host says which, exit 123. */
TEST_F(tiny, run_max_output_exits_123)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--max-output", "100", "--", "out 5000");
	EXPECT_EQ(123, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(100, strlen(self->r.out));
	EXPECT_NE(NULL, strstr(self->r.err, "output passed the 100-byte limit")) TH_LOG("%s", self->r.err);
	CLI(&self->r, "run", "-t", self->path, "--max-output", "5000", "--", "out 5000");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(5000, strlen(self->r.out));
}

TEST_F(tiny, run_max_dirty_exits_123)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--max-dirty", "20", "--", "dirty 200");
	EXPECT_EQ(123, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_NE(NULL, strstr(self->r.err, "limit 20")) TH_LOG("%s", self->r.err);
	CLI(&self->r, "run", "-t", self->path, "--max-dirty", "400", "--", "dirty 200");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
}

TEST_F(tiny, json_keeps_utf8_and_replaces_invalid_bytes)
{
	NEED_TINY();
	CLI(&self->r, "run", "-t", self->path, "--json", "--", "echo h\xc3\xa9llo \xe2\x9c\x93 \"q\" \\");
	EXPECT_EQ(0, self->r.status);
	EXPECT_TRUE(starts_with(self->r.out, "{\"stdout\":\"h\xc3\xa9llo \xe2\x9c\x93 \\\"q\\\" \\\\\\n\","
				"\"stderr\":\"\",\"exit_code\":0,\"spawn_us\":")) TH_LOG("%s", self->r.out);
	CLI(&self->r, "run", "-t", self->path, "--json", "--", "err a\xff" "b\xc3");
	EXPECT_TRUE(starts_with(self->r.out, "{\"stdout\":\"\",\"stderr\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\\n\","))
		TH_LOG("%s", self->r.out);
}

/* kfork run is confined by default; a forbidden call ends it with 125 and one clear line. */
TEST_F(tiny, run_is_sandboxed_and_a_forbidden_call_is_reported)
{
	NEED_TINY();
	setenv("KFORK_SANDBOX_SELFTEST", "1", 1);
	CLI(&self->r, "run", "-t", self->path, "--", "echo hi");
	EXPECT_EQ(125, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.err, "kfork: the sandbox killed kfork run")) TH_LOG("%s", self->r.err);
	EXPECT_NE(NULL, strstr(self->r.err, "KFORK_SANDBOX=0")) TH_LOG("%s", self->r.err);
	/* The opt-out: the same forbidden call just happens. */
	setenv("KFORK_SANDBOX", "0", 1);
	CLI(&self->r, "run", "-t", self->path, "--", "echo hi");
	unsetenv("KFORK_SANDBOX");
	unsetenv("KFORK_SANDBOX_SELFTEST");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_STREQ("hi\n", self->r.out);
}

TEST_HARNESS_MAIN
