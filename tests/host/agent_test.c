// SPDX-License-Identifier: GPL-2.0-only
/* agent_test.c - kfork-agent over a socketpair: frame errors, sh and Python execs, streaming. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 6.1 harness itself is not -Wmissing-prototypes/-Wunused-parameter clean. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#include "proto/kf_proto.h"

#define AGENT_DEFAULT	"build/kfork-agent"
#define ZYGOTE_SCRIPT	"guest/python/kfork_zygote.py"
#define HOST_PYTHON	"/usr/bin/python3.11"
#define AGENT_FD	3
#define REPLY_TIMEOUT_MS 20000

struct conn {
	int fd;
	pid_t pid;
	struct kf_decoder dec;
	uint8_t in[65536];
	size_t in_off, in_len;
};

struct result {
	uint8_t *out, *err;
	size_t out_len, err_len;
	size_t max_chunk;
	uint8_t type;			/* KF_MSG_EXIT or KF_MSG_ERROR */
	struct kf_msg_exit exit;
	uint32_t error_code;
	char error_text[512];
};

static const char *agent_path(void)
{
	const char *p = getenv("KFORK_AGENT");

	return p && *p ? p : AGENT_DEFAULT;
}

/* Start the agent on one end of a socketpair; returns 0 or a skip reason. */
static const char *conn_start(struct conn *c, const char *kind, bool verbose_python)
{
	const char *agent = agent_path();
	int sv[2];

	c->fd = -1;
	c->pid = 0;
	kf_decoder_init(&c->dec);
	c->in_off = c->in_len = 0;
	if (access(agent, X_OK))
		return "kfork-agent not built (make build/kfork-agent, or set KFORK_AGENT)";
	if (!strcmp(kind, "python") && access(HOST_PYTHON, X_OK))
		return HOST_PYTHON " not installed";
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return "socketpair failed";
	c->pid = fork();
	if (!c->pid) {
		if (dup2(sv[1], AGENT_FD) < 0)
			_exit(127);
		if (verbose_python) {
			int null = open("/dev/null", O_WRONLY);

			setenv("PYTHONVERBOSE", "1", 1);
			dup2(null, 2);
		}
		execl(agent, "kfork-agent", "--fd", "3", "--kind", kind,
		      "--python", HOST_PYTHON, "--zygote", ZYGOTE_SCRIPT, "--no-clock",
		      (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	c->fd = sv[0];
	return NULL;
}

static void conn_stop(struct conn *c)
{
	int status;

	if (c->fd >= 0)
		close(c->fd);
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
	}
}

static int conn_send(struct conn *c, uint8_t type, const void *payload, uint32_t len)
{
	static uint8_t frame[KF_FRAME_MAX_LEN];
	size_t n = kf_frame_encode(frame, type, payload, len);

	return n && send(c->fd, frame, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int conn_send_exec(struct conn *c, uint8_t lang, const char *code)
{
	static uint8_t buf[KF_FRAME_MAX_PAYLOAD];
	struct kf_msg_exec m = { .lang = lang, .code_len = strlen(code) };

	memcpy(buf, &m, sizeof(m));
	memcpy(buf + sizeof(m), code, m.code_len);
	return conn_send(c, KF_MSG_EXEC, buf, sizeof(m) + m.code_len);
}

/* Next frame from the agent: its type, or -1 on timeout, EOF or bad frame. */
static int conn_recv(struct conn *c, const uint8_t **payload, uint32_t *len)
{
	for (;;) {
		while (c->in_off < c->in_len) {
			size_t used;
			enum kf_dec_status st = kf_decoder_feed(&c->dec, c->in + c->in_off,
								c->in_len - c->in_off, &used);

			c->in_off += used;
			if (st == KF_DEC_ERROR)
				return -1;
			if (st == KF_DEC_FRAME) {
				*payload = kf_decoder_payload(&c->dec);
				*len = c->dec.len;
				return c->dec.type;
			}
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, REPLY_TIMEOUT_MS) != 1)
			return -1;
		n = read(c->fd, c->in, sizeof(c->in));
		if (n <= 0)
			return -1;
		c->in_off = 0;
		c->in_len = n;
	}
}

static int conn_recv_error(struct conn *c, uint32_t *code, char *text, size_t text_size)
{
	const uint8_t *p;
	uint32_t len;
	int type = conn_recv(c, &p, &len);

	if (type != KF_MSG_ERROR || len < 4)
		return -1;
	memcpy(code, p, 4);
	len -= 4;
	if (len >= text_size)
		len = text_size - 1;
	memcpy(text, p + 4, len);
	text[len] = 0;
	return 0;
}

static void append(uint8_t **buf, size_t *len, const uint8_t *p, uint32_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = 0;
}

/* Collect STDOUT/STDERR until EXIT or ERROR; 0 on success, -1 on a protocol failure. */
static int conn_collect(struct conn *c, struct result *r)
{
	const uint8_t *p;
	uint32_t len;

	memset(r, 0, sizeof(*r));
	append(&r->out, &r->out_len, NULL, 0);
	append(&r->err, &r->err_len, NULL, 0);
	for (;;) {
		int type = conn_recv(c, &p, &len);

		if (type == KF_MSG_STDOUT || type == KF_MSG_STDERR) {
			if (len > r->max_chunk)
				r->max_chunk = len;
			if (type == KF_MSG_STDOUT)
				append(&r->out, &r->out_len, p, len);
			else
				append(&r->err, &r->err_len, p, len);
			continue;
		}
		r->type = type;
		if (type == KF_MSG_EXIT && len == sizeof(r->exit)) {
			memcpy(&r->exit, p, sizeof(r->exit));
			return 0;
		}
		if (type == KF_MSG_ERROR && len >= 4) {
			memcpy(&r->error_code, p, 4);
			snprintf(r->error_text, sizeof(r->error_text), "%.*s", (int)(len - 4), p + 4);
			return 0;
		}
		return -1;
	}
}

static int conn_run(struct conn *c, uint8_t lang, const char *code, const char *input,
		    struct result *r)
{
	if (conn_send_exec(c, lang, code))
		return -1;
	if (input) {
		if (*input && conn_send(c, KF_MSG_STDIN, input, strlen(input)))
			return -1;
		if (conn_send(c, KF_MSG_STDIN, NULL, 0))
			return -1;
	}
	return conn_collect(c, r);
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

static bool conn_pings(struct conn *c)
{
	const uint8_t *p;
	uint32_t len;

	return !conn_send(c, KF_MSG_PING, NULL, 0) && conn_recv(c, &p, &len) == KF_MSG_PONG &&
	       len == 0;
}

FIXTURE(sh) {
	struct conn *c;
	bool ready;
};

static void fixture_start(struct __test_metadata *_metadata, struct conn **cp, bool *ready,
			  const char *kind, bool verbose_python)
{
	const char *skip;
	const uint8_t *p;
	uint32_t len;

	*ready = false;
	*cp = calloc(1, sizeof(**cp));
	ASSERT_NE(NULL, *cp);
	skip = conn_start(*cp, kind, verbose_python);
	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_EQ(KF_MSG_READY, conn_recv(*cp, &p, &len)) TH_LOG("no READY from %s", agent_path());
	ASSERT_EQ(strlen(kind), len);
	ASSERT_EQ(0, memcmp(p, kind, len));
	*ready = true;
}

FIXTURE_SETUP(sh)
{
	fixture_start(_metadata, &self->c, &self->ready, "minimal", false);
}

FIXTURE_TEARDOWN(sh)
{
	conn_stop(self->c);
	free(self->c);
}

/* SKIP in FIXTURE_SETUP does not stop the body in this harness version. */
#define REQUIRE_READY() do { if (!self->ready) return; } while (0)

static void expect_error(struct __test_metadata *_metadata, struct conn *c, uint32_t want,
			 const char *want_text)
{
	uint32_t code = 0;
	char text[512] = "";

	ASSERT_EQ(0, conn_recv_error(c, &code, text, sizeof(text)));
	EXPECT_EQ(want, code) TH_LOG("error text: %s", text);
	if (want_text)
		EXPECT_NE(NULL, strstr(text, want_text)) TH_LOG("error text: %s", text);
	/* The agent keeps serving after every rejected input. */
	EXPECT_TRUE(conn_pings(c));
}

TEST_F(sh, bad_crc_is_rejected)
{
	uint8_t frame[KF_FRAME_HDR_LEN + KF_FRAME_CRC_LEN];

	REQUIRE_READY();
	kf_frame_encode(frame, KF_MSG_PING, NULL, 0);
	frame[KF_FRAME_HDR_LEN] ^= 0x55;
	ASSERT_EQ((ssize_t)sizeof(frame), send(self->c->fd, frame, sizeof(frame), 0));
	expect_error(_metadata, self->c, KF_ERR_BAD_FRAME, "checksum");
}

TEST_F(sh, overlong_length_is_rejected)
{
	uint8_t hdr[KF_FRAME_HDR_LEN] = { 'K', 'F', KF_MSG_EXEC, 0, 0x01, 0x00, 0x02, 0x00 };

	REQUIRE_READY();
	ASSERT_EQ((ssize_t)sizeof(hdr), send(self->c->fd, hdr, sizeof(hdr), 0));
	expect_error(_metadata, self->c, KF_ERR_BAD_FRAME, "length");
}

TEST_F(sh, unknown_type_is_rejected)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, 99, "x", 1));
	expect_error(_metadata, self->c, KF_ERR_BAD_TYPE, "99");
	/* A guest->host type sent to the guest is just as unexpected. */
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_READY, NULL, 0));
	expect_error(_metadata, self->c, KF_ERR_BAD_TYPE, NULL);
}

TEST_F(sh, exec_short_payload)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_EXEC, "\0\0\0", 3));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, NULL);
}

TEST_F(sh, exec_bad_lang)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_MAX, "echo no"));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "language");
}

TEST_F(sh, exec_nonzero_pad)
{
	uint8_t buf[sizeof(struct kf_msg_exec) + 4] = { KF_LANG_SH, 0, 1, 0, 4, 0, 0, 0,
							  't', 'r', 'u', 'e' };

	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_EXEC, buf, sizeof(buf)));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "pad");
}

TEST_F(sh, exec_wrong_code_len)
{
	uint8_t buf[sizeof(struct kf_msg_exec) + 4] = { KF_LANG_SH, 0, 0, 0, 5, 0, 0, 0,
							  't', 'r', 'u', 'e' };

	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_EXEC, buf, sizeof(buf)));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "code_len");
	buf[4] = 3;
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_EXEC, buf, sizeof(buf)));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "code_len");
}

TEST_F(sh, python_exec_in_minimal_template)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_PYTHON, "print(1)"));
	expect_error(_metadata, self->c, KF_ERR_EXEC, "Python");
}

TEST_F(sh, stdin_without_exec)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_STDIN, "x", 1));
	expect_error(_metadata, self->c, KF_ERR_BAD_TYPE, "STDIN");
}

TEST_F(sh, init_bad_size_and_pad)
{
	struct kf_msg_init m = { .wall_sec = 1, .pad = 1 };

	REQUIRE_READY();
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_INIT, &m, sizeof(m) - 1));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "INIT");
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_INIT, &m, sizeof(m)));
	expect_error(_metadata, self->c, KF_ERR_BAD_MSG, "pad");
}

TEST_F(sh, init_applies_seed_and_clone_id)
{
	struct kf_msg_init m = { .wall_sec = 1700000000, .clone_id = 4242 };
	uint32_t code = 0;
	char text[512];
	struct result r;
	const uint8_t *p;
	uint32_t len;

	REQUIRE_READY();
	ASSERT_EQ((ssize_t)sizeof(m.seed), getrandom(m.seed, sizeof(m.seed), 0));
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_INIT, &m, sizeof(m)));
	if (geteuid()) {
		/* RNDADDENTROPY needs CAP_SYS_ADMIN: a clean INIT error, not a hang. */
		ASSERT_EQ(0, conn_recv_error(self->c, &code, text, sizeof(text)));
		EXPECT_EQ(KF_ERR_INIT, (int)code);
		EXPECT_NE(NULL, strstr(text, "RNDADDENTROPY"));
		SKIP(return, "not root: INIT cannot seed the CRNG");
	}
	ASSERT_EQ(KF_MSG_INIT_OK, conn_recv(self->c, &p, &len));
	EXPECT_EQ(0u, len);
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo $KFORK_CLONE_ID", NULL, &r));
	EXPECT_STREQ("4242\n", (char *)r.out);
	result_free(&r);
}

TEST_F(sh, ping)
{
	REQUIRE_READY();
	EXPECT_TRUE(conn_pings(self->c));
}

TEST_F(sh, echo_hi)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo hi", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type) TH_LOG("error %u: %s", r.error_code, r.error_text);
	EXPECT_STREQ("hi\n", (char *)r.out);
	EXPECT_EQ((size_t)0, r.err_len);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
}

TEST_F(sh, exit_code)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "exit 3", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(3, r.exit.value);
	EXPECT_EQ((size_t)0, r.out_len);
	result_free(&r);
}

TEST_F(sh, stderr_kept_apart)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo out; echo err >&2; echo out2", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("out\nout2\n", (char *)r.out);
	EXPECT_STREQ("err\n", (char *)r.err);
	result_free(&r);
}

TEST_F(sh, multi_line_script)
{
	static const char script[] =
		"x=1\n"
		"for i in 2 3 4; do\n"
		"  x=$((x * i))\n"
		"done\n"
		"echo \"x=$x\"\n";
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, script, NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("x=24\n", (char *)r.out);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
}

TEST_F(sh, stdin_delivered)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "tr a-z A-Z", "hello stdin\n", &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("HELLO STDIN\n", (char *)r.out);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
}

/* More stdin than a pipe holds: the agent must buffer and write as the child reads. */
TEST_F(sh, large_stdin_delivered)
{
	const size_t total = 300000;
	uint8_t chunk[30000];
	struct result r;

	REQUIRE_READY();
	memset(chunk, 'z', sizeof(chunk));
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_SH, "wc -c"));
	for (size_t sent = 0; sent < total; sent += sizeof(chunk)) {
		ASSERT_EQ(0, conn_send(self->c, KF_MSG_STDIN, chunk, sizeof(chunk)));
	}
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_STDIN, NULL, 0));
	ASSERT_EQ(0, conn_collect(self->c, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(total, strtoul((char *)r.out, NULL, 10)) TH_LOG("wc said '%s'", r.out);
	result_free(&r);
}

TEST_F(sh, one_mib_output_intact)
{
	static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz\n";
	const size_t total = 1048576;
	uint8_t *want;
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH,
			      "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 1048576",
			      NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(0, r.exit.value);
	ASSERT_EQ(total, r.out_len);
	EXPECT_LE(r.max_chunk, (size_t)KF_OUTPUT_CHUNK);
	want = malloc(total);
	ASSERT_NE(NULL, want);
	for (size_t i = 0; i < total; i++)
		want[i] = pattern[i % (sizeof(pattern) - 1)];
	EXPECT_EQ(kf_crc32(0, want, total), kf_crc32(0, r.out, r.out_len));
	EXPECT_EQ(0, memcmp(want, r.out, total));
	free(want);
	result_free(&r);
}

TEST_F(sh, killed_by_signal)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo before; kill -KILL $$; echo after",
			      NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_SIGNAL, (int)r.exit.kind);
	EXPECT_EQ(SIGKILL, r.exit.value);
	EXPECT_STREQ("before\n", (char *)r.out);
	result_free(&r);
}

TEST_F(sh, second_exec_is_busy)
{
	uint32_t code = 0;
	char text[512];
	struct result r;

	REQUIRE_READY();
	/* The first exec blocks on stdin, so it is certainly still running. */
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_SH, "read line; echo got $line"));
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_SH, "echo second"));
	ASSERT_EQ(0, conn_recv_error(self->c, &code, text, sizeof(text)));
	EXPECT_EQ(KF_ERR_BUSY, (int)code);
	ASSERT_EQ(0, conn_send(self->c, KF_MSG_STDIN, "go\n", 3));
	ASSERT_EQ(0, conn_collect(self->c, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("got go\n", (char *)r.out);
	result_free(&r);
	/* After EXIT the agent takes the next exec. */
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo second", NULL, &r));
	EXPECT_STREQ("second\n", (char *)r.out);
	result_free(&r);
}

FIXTURE(py) {
	struct conn *c;
	bool ready;
};

FIXTURE_SETUP(py)
{
	fixture_start(_metadata, &self->c, &self->ready, "python", false);
}

FIXTURE_TEARDOWN(py)
{
	conn_stop(self->c);
	free(self->c);
}

TEST_F(py, print)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "print(1+1)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type) TH_LOG("error %u: %s", r.error_code, r.error_text);
	EXPECT_STREQ("2\n", (char *)r.out);
	EXPECT_STREQ("", (char *)r.err);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
}

TEST_F(py, sys_exit_code)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "import sys\nsys.exit(3)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(3, r.exit.value);
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "raise SystemExit('bye')", NULL, &r));
	EXPECT_EQ(1, r.exit.value);
	EXPECT_STREQ("bye\n", (char *)r.err);
	result_free(&r);
}

TEST_F(py, exception_traceback)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON,
			      "print('before')\nraise ValueError('boom')", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(1, r.exit.value);
	EXPECT_STREQ("before\n", (char *)r.out);
	EXPECT_NE(NULL, strstr((char *)r.err, "Traceback (most recent call last)"));
	EXPECT_NE(NULL, strstr((char *)r.err, "File \"<kfork>\", line 2"));
	EXPECT_NE(NULL, strstr((char *)r.err, "ValueError: boom"));
	result_free(&r);
}

TEST_F(py, multi_line_def)
{
	static const char code[] =
		"def fact(n):\n"
		"    return 1 if n < 2 else n * fact(n - 1)\n"
		"\n"
		"for i in (5, 10):\n"
		"    print(i, fact(i))\n";
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, code, NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("5 120\n10 3628800\n", (char *)r.out);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
}

TEST_F(py, stdin_and_stderr)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON,
			      "import sys\ndata = sys.stdin.read()\n"
			      "print(data.upper(), end='')\nprint(len(data), file=sys.stderr)",
			      "abc\n", &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("ABC\n", (char *)r.out);
	EXPECT_STREQ("4\n", (char *)r.err);
	result_free(&r);
}

TEST_F(py, killed_by_signal)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON,
			      "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_SIGNAL, (int)r.exit.kind);
	EXPECT_EQ(SIGKILL, r.exit.value);
	result_free(&r);
}

/* Each exec runs in a fresh child: state from one never leaks into the next. */
TEST_F(py, execs_are_isolated)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "import json\nleak = 1", NULL, &r));
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "print('leak' in globals())", NULL, &r));
	EXPECT_STREQ("False\n", (char *)r.out);
	result_free(&r);
}

/* Sessions (KF_LANG_PYTHON_SESSION): the zygote runs the code in place, state kept. */
#define SESSION	KF_LANG_PYTHON_SESSION

TEST_F(py, session_keeps_state_and_forks_do_not_see_it)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION, "x = 41", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type) TH_LOG("error %u: %s", r.error_code, r.error_text);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(0, r.exit.value);
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, SESSION, "x += 1\nprint(x)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("42\n", (char *)r.out);
	result_free(&r);
	/* A forked exec starts from a fresh __main__, not the session's. */
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "print('x' in globals())", NULL, &r));
	EXPECT_STREQ("False\n", (char *)r.out);
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, SESSION, "print(x, __name__)", NULL, &r));
	EXPECT_STREQ("42 __main__\n", (char *)r.out);
	result_free(&r);
}

TEST_F(py, session_sys_exit_keeps_the_session)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION, "import sys\ny = 7\nsys.exit(3)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(3, r.exit.value);
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, SESSION, "print(y)\nraise ValueError('boom')", NULL, &r));
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_EQ(1, r.exit.value);
	EXPECT_STREQ("7\n", (char *)r.out);
	EXPECT_NE(NULL, strstr((char *)r.err, "File \"<kfork-2>\", line 2")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr((char *)r.err, "ValueError: boom"));
	result_free(&r);
}

TEST_F(py, session_stdin_and_stderr_per_exec)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION,
			      "import sys\nkept = sys.stdin.read()\nprint('e1', file=sys.stderr)",
			      "one\n", &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("", (char *)r.out);
	EXPECT_STREQ("e1\n", (char *)r.err);
	result_free(&r);
	ASSERT_EQ(0, conn_run(self->c, SESSION,
			      "print(kept + sys.stdin.read(), end='')", "two\n", &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("one\ntwo\n", (char *)r.out);
	EXPECT_STREQ("", (char *)r.err);
	result_free(&r);
}

/* os._exit ends the interpreter: EXIT says so, and every later Python exec is refused. */
TEST_F(py, session_os_exit_ends_it)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION, "import os\nprint('bye')\nos._exit(5)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type) TH_LOG("error %u: %s", r.error_code, r.error_text);
	EXPECT_EQ(KF_EXIT_CODE | KF_EXIT_F_SESSION_LOST, r.exit.kind);
	EXPECT_EQ(5, r.exit.value);
	EXPECT_STREQ("bye\n", (char *)r.out);
	result_free(&r);
	ASSERT_EQ(0, conn_send_exec(self->c, SESSION, "print(1)"));
	expect_error(_metadata, self->c, KF_ERR_SESSION, "reset the clone");
	ASSERT_EQ(0, conn_send_exec(self->c, KF_LANG_PYTHON, "print(1)"));
	expect_error(_metadata, self->c, KF_ERR_SESSION, "wait status 0x500");
	/* sh still runs */
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_SH, "echo sh", NULL, &r));
	EXPECT_STREQ("sh\n", (char *)r.out);
	result_free(&r);
}

/* A child forked by session code ends with the code; it never serves the socket too. */
TEST_F(py, session_fork_in_code)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION,
			      "import os\nn = 1\npid = os.fork()\n"
			      "if pid == 0:\n    print('child', flush=True)\n"
			      "else:\n    os.waitpid(pid, 0)\n    print('parent')", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type) TH_LOG("error %u: %s", r.error_code, r.error_text);
	EXPECT_EQ(KF_EXIT_CODE, (int)r.exit.kind);
	EXPECT_STREQ("child\nparent\n", (char *)r.out);
	result_free(&r);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, conn_run(self->c, SESSION, "n += 1\nprint(n, os.getpid() != pid)", NULL, &r));
		ASSERT_EQ(KF_MSG_EXIT, r.type);
		EXPECT_EQ(i + 2, atoi((char *)r.out)) TH_LOG("%s", r.out);
		EXPECT_NE(NULL, strstr((char *)r.out, "True")) TH_LOG("%s", r.out);
		result_free(&r);
	}
}

TEST_F(py, session_killed_by_signal)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, SESSION,
			      "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_EQ(KF_EXIT_SIGNAL | KF_EXIT_F_SESSION_LOST, r.exit.kind);
	EXPECT_EQ(SIGKILL, r.exit.value);
	result_free(&r);
	ASSERT_EQ(0, conn_send_exec(self->c, SESSION, "print(1)"));
	expect_error(_metadata, self->c, KF_ERR_SESSION, "earlier exec");
}

TEST_F(sh, session_exec_in_minimal_template)
{
	REQUIRE_READY();
	ASSERT_EQ(0, conn_send_exec(self->c, SESSION, "print(1)"));
	expect_error(_metadata, self->c, KF_ERR_EXEC, "no Python interpreter");
}

FIXTURE(pyverbose) {
	struct conn *c;
	bool ready;
};

FIXTURE_SETUP(pyverbose)
{
	fixture_start(_metadata, &self->c, &self->ready, "python", true);
}

FIXTURE_TEARDOWN(pyverbose)
{
	conn_stop(self->c);
	free(self->c);
}

/*
 * With PYTHONVERBOSE every import is reported on the child's stderr: a warm
 * zygote runs print(1+1) without a single one.
 */
TEST_F(pyverbose, print_imports_nothing)
{
	struct result r;

	REQUIRE_READY();
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "print(1+1)", NULL, &r));
	ASSERT_EQ(KF_MSG_EXIT, r.type);
	EXPECT_STREQ("2\n", (char *)r.out);
	EXPECT_STREQ("", (char *)r.err);
	result_free(&r);
	/* and the check itself works: a cold import is reported */
	ASSERT_EQ(0, conn_run(self->c, KF_LANG_PYTHON, "import wave", NULL, &r));
	EXPECT_NE(NULL, strstr((char *)r.err, "wave")) TH_LOG("stderr: %s", r.err);
	result_free(&r);
}

TEST_HARNESS_MAIN
