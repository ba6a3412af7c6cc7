// SPDX-License-Identifier: GPL-2.0-only
/* zygote.c - starts, warms and talks to the warm Python interpreter (kfork_zygote.py). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

/*
 * Agent <-> zygote protocol, over an AF_UNIX SOCK_SEQPACKET pair (one
 * message per record, so no length framing). The zygote holds its end as fd 3.
 *
 *   zygote -> agent  "R"                       warmed up, serving
 *   agent -> zygote  mode + code + SCM_RIGHTS  one exec; fds are its stdin,
 *                    [stdin, stdout, stderr]   stdout, stderr; mode "F": in a
 *                                              forked child, "S": in place, in
 *                                              the session's globals
 *   zygote -> agent  "P" + s32 pid             child forked (S: its own pid)
 *   zygote -> agent  "W" + s32 pid + s32 st    child reaped, raw wait status
 *                                              (S: the code's, as if it exited)
 *
 * Integers are native (little-endian) byte order. One exec at a time.
 */
#define ZYGOTE_FD		3
#define ZYGOTE_READY_TIMEOUT_MS	(10 * 60 * 1000)
#define WARM_CODE		"print(1+1)\n"
#define WARM_OUTPUT		"2\n"

void zygote_lost(struct agent *a, int status)
{
	struct agent_zygote *z = &a->zygote;

	agent_log("Python zygote pid %d exited, wait status %#x", z->pid, status);
	if (z->sock >= 0)
		close(z->sock);
	z->sock = -1;
	z->pid = -1;
	z->ended = true;
	z->end_status = status;
	if (a->exec.running && exec_is_python(&a->exec) && !a->exec.exited) {
		/* In place, the interpreter's end is the code's end: report its status. */
		if (a->exec.lang == KF_LANG_PYTHON_SESSION)
			a->exec.session_lost = true;
		else
			a->exec.zygote_lost = true;
		exec_child_exited(a, status);
	}
}

int zygote_start(struct agent *a)
{
	struct agent_zygote *z = &a->zygote;
	char fd_arg[16];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		agent_log("socketpair for Python zygote: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		agent_log("fork of Python zygote: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (!pid) {
		int null = open("/dev/null", O_RDONLY);

		exec_child_reset_signals();
		if (null >= 0)
			dup2(null, 0);
		if (dup2(sv[1], ZYGOTE_FD) < 0)
			_exit(127);
		snprintf(fd_arg, sizeof(fd_arg), "%d", ZYGOTE_FD);
		/* -s: no user site; -B: the stdlib ships its .pyc, write none. */
		execl(a->python, "python3", "-s", "-B", a->zygote_script, fd_arg,
		      (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	z->pid = pid;
	z->sock = sv[0];
	return 0;
}

static ssize_t zygote_recv(struct agent_zygote *z, void *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = z->sock, .events = POLLIN };
	ssize_t n;
	int r;

	if (timeout_ms >= 0) {
		do {
			r = poll(&pfd, 1, timeout_ms);
		} while (r < 0 && errno == EINTR);
		if (r <= 0)
			return r ? -errno : -ETIMEDOUT;
	}
	do {
		n = recv(z->sock, buf, len, timeout_ms >= 0 ? 0 : MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int zygote_submit(struct agent *a, uint8_t lang, const uint8_t *code, uint32_t len,
		  const int child_fds[3])
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} ctl;
	char mode = lang == KF_LANG_PYTHON_SESSION ? 'S' : 'F';
	struct iovec iov[2] = {
		{ .iov_base = &mode, .iov_len = 1 },
		{ .iov_base = (void *)code, .iov_len = len },
	};
	struct msghdr msg = {
		.msg_iov = iov,
		.msg_iovlen = 2,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	memset(&ctl, 0, sizeof(ctl));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(cm), child_fds, 3 * sizeof(int));
	do {
		n = sendmsg(a->zygote.sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len + 1 ? 0 : -EIO;
}

/* One message from the zygote; a short or unknown one is a zygote bug, logged. */
static int zygote_handle_msg(struct agent *a, const uint8_t *buf, ssize_t n)
{
	int32_t v[2];

	if (n == 1 + 4 && buf[0] == 'P') {
		memcpy(v, buf + 1, 4);
		if (a->exec.running && exec_is_python(&a->exec))
			a->exec.pid = v[0];
		return 'P';
	}
	if (n == 1 + 8 && buf[0] == 'W') {
		memcpy(v, buf + 1, 8);
		if (a->exec.running && exec_is_python(&a->exec) && !a->exec.exited)
			exec_child_exited(a, v[1]);
		return 'W';
	}
	if (n == 1 && buf[0] == 'R')
		return 'R';
	agent_log("Python zygote sent an unknown %zd-byte message", n);
	return -EPROTO;
}

/* Called when the zygote socket is readable from the main loop. */
void zygote_read(struct agent *a)
{
	uint8_t buf[16];
	ssize_t n = zygote_recv(&a->zygote, buf, sizeof(buf), -1);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		/* EOF: the zygote is gone; SIGCHLD brings its status. Stop polling. */
		agent_log("Python zygote socket: %s", n ? strerror(-n) : "closed");
		close(a->zygote.sock);
		a->zygote.sock = -1;
		/* In place, its exit status is the exec's: wait for SIGCHLD to bring it. */
		if (a->exec.running && a->exec.lang == KF_LANG_PYTHON && !a->exec.exited) {
			a->exec.zygote_lost = true;
			exec_child_exited(a, 0);
		}
		return;
	}
	zygote_handle_msg(a, buf, n);
}

static int warm_read_all(int fd, char *out, size_t cap, size_t *len)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char tmp[256];
		ssize_t n;

		if (poll(&pfd, 1, ZYGOTE_READY_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n ? -errno : 0;
		if (*len + n < cap) {
			memcpy(out + *len, tmp, n);
			*len += n;
		}
	}
}

/*
 * Wait for the zygote's "R", then run one trivial exec end to end (pipes,
 * SCM_RIGHTS, fork, wait) so the first user exec takes the warm path.
 * Blocking: runs before READY, when nothing else is served.
 */
int zygote_warm(struct agent *a)
{
	int child_fds[3], parent_fds[3];
	char out[64] = "", err_text[512] = "";
	size_t out_len = 0, err_len = 0;
	uint8_t buf[16];
	int status = -1, ret;
	ssize_t n;

	n = zygote_recv(&a->zygote, buf, sizeof(buf), ZYGOTE_READY_TIMEOUT_MS);
	if (n <= 0 || zygote_handle_msg(a, buf, n) != 'R') {
		agent_log("Python zygote did not report ready: %s",
			  n < 0 ? strerror(-n) : "unexpected message or EOF");
		return -EPROTO;
	}

	ret = exec_pipes_open(child_fds, parent_fds);
	if (ret)
		return ret;
	ret = zygote_submit(a, KF_LANG_PYTHON, (const uint8_t *)WARM_CODE, strlen(WARM_CODE),
			    child_fds);
	for (int i = 0; i < 3; i++)
		close(child_fds[i]);
	if (ret)
		goto close_parent;
	close(parent_fds[0]);
	parent_fds[0] = -1;
	ret = warm_read_all(parent_fds[1], out, sizeof(out), &out_len);
	if (!ret)
		ret = warm_read_all(parent_fds[2], err_text, sizeof(err_text), &err_len);
	while (!ret) {
		n = zygote_recv(&a->zygote, buf, sizeof(buf), ZYGOTE_READY_TIMEOUT_MS);
		if (n <= 0) {
			ret = n ? n : -EPIPE;
			break;
		}
		if (n == 9 && buf[0] == 'W') {
			memcpy(&status, buf + 5, 4);
			break;
		}
	}
	if (!ret && (status != 0 || out_len != strlen(WARM_OUTPUT) ||
		     memcmp(out, WARM_OUTPUT, out_len))) {
		agent_log("Python warm-up exec: status %#x, stdout '%.*s', stderr '%.*s'",
			  status, (int)out_len, out, (int)err_len, err_text);
		ret = -EPROTO;
	}
close_parent:
	for (int i = 0; i < 3; i++) {
		if (parent_fds[i] >= 0)
			close(parent_fds[i]);
	}
	return ret;
}
