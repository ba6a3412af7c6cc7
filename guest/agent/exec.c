// SPDX-License-Identifier: GPL-2.0-only
/* exec.c - runs one EXEC at a time: child pipes, STDIN buffering, STDOUT/STDERR/EXIT frames. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define SH_PATH "/bin/sh"

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int fd_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * child_fds: the child's stdin (read end), stdout and stderr (write ends).
 * parent_fds: the agent's matching ends, non-blocking. All are O_CLOEXEC.
 */
int exec_pipes_open(int child_fds[3], int parent_fds[3])
{
	int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int err;

	for (int i = 0; i < 3; i++) {
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			err = -errno;
			goto close_pipes;
		}
	}
	child_fds[0] = p[0][0];
	parent_fds[0] = p[0][1];
	for (int i = 1; i < 3; i++) {
		child_fds[i] = p[i][1];
		parent_fds[i] = p[i][0];
	}
	for (int i = 0; i < 3; i++) {
		err = fd_set_nonblock(parent_fds[i]);
		if (err)
			goto close_pipes;
	}
	return 0;

close_pipes:
	for (int i = 0; i < 3; i++) {
		fd_close(&p[i][0]);
		fd_close(&p[i][1]);
	}
	return err;
}

/* The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; neither may leak
 * into user code, since both survive execve. */
void exec_child_reset_signals(void)
{
	sigset_t all;

	signal(SIGPIPE, SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
}

static pid_t exec_spawn_sh(const char *code, const int child_fds[3])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	/* Child: its own process group, so a whole pipeline can be signalled. */
	setpgid(0, 0);
	exec_child_reset_signals();
	for (int i = 0; i < 3; i++) {
		if (dup2(child_fds[i], i) < 0)
			_exit(127);
	}
	execl(SH_PATH, "sh", "-c", code, (char *)NULL);
	_exit(127);
}

static void exec_reset(struct agent_exec *e)
{
	fd_close(&e->out_fd);
	fd_close(&e->err_fd);
	fd_close(&e->in_fd);
	free(e->in_buf);
	*e = (struct agent_exec){ .out_fd = -1, .err_fd = -1, .in_fd = -1 };
}

void exec_start(struct agent *a, uint8_t lang, const uint8_t *code, uint32_t len)
{
	struct agent_exec *e = &a->exec;
	int child_fds[3], parent_fds[3];
	char *sh_code = NULL;
	pid_t pid = 0;
	int err;

	if (lang == KF_LANG_SH) {
		if (memchr(code, 0, len)) {
			link_send_error(a, KF_ERR_BAD_MSG, "EXEC: sh code contains a NUL byte");
			return;
		}
		sh_code = malloc(len + 1);
		if (!sh_code) {
			link_send_error(a, KF_ERR_EXEC, "EXEC: malloc of %u bytes failed", len + 1);
			return;
		}
		memcpy(sh_code, code, len);
		sh_code[len] = 0;
	} else if (a->zygote.ended) {
		link_send_error(a, KF_ERR_SESSION,
				"EXEC: the Python interpreter ended (wait status %#x) in an earlier exec; reset the clone for a fresh one",
				a->zygote.end_status);
		return;
	} else if (a->zygote.sock < 0) {
		link_send_error(a, KF_ERR_EXEC, "EXEC: no Python interpreter in this '%s' template",
				a->kind);
		return;
	}

	err = exec_pipes_open(child_fds, parent_fds);
	if (err) {
		link_send_error(a, KF_ERR_EXEC, "EXEC: pipe2 for child stdio: %s", strerror(-err));
		goto free_code;
	}

	if (lang == KF_LANG_SH) {
		pid = exec_spawn_sh(sh_code, child_fds);
		if (pid < 0) {
			link_send_error(a, KF_ERR_EXEC, "EXEC: fork of %s: %s", SH_PATH,
					strerror(errno));
			goto close_parent;
		}
	} else {
		err = zygote_submit(a, lang, code, len, child_fds);
		if (err) {
			link_send_error(a, KF_ERR_EXEC, "EXEC: sendmsg to Python zygote: %s",
					strerror(-err));
			goto close_parent;
		}
	}
	for (int i = 0; i < 3; i++)
		close(child_fds[i]);
	free(sh_code);

	exec_reset(e);
	e->running = true;
	e->lang = lang;
	e->pid = pid;
	e->in_fd = parent_fds[0];
	e->out_fd = parent_fds[1];
	e->err_fd = parent_fds[2];
	return;

close_parent:
	for (int i = 0; i < 3; i++) {
		close(parent_fds[i]);
		close(child_fds[i]);
	}
free_code:
	free(sh_code);
}

void exec_feed_stdin(struct agent *a, const uint8_t *data, uint32_t len)
{
	struct agent_exec *e = &a->exec;
	uint8_t *buf;

	if (!e->running) {
		link_send_error(a, KF_ERR_BAD_TYPE, "STDIN: no exec is running");
		return;
	}
	if (e->in_eof) {
		link_send_error(a, KF_ERR_BAD_MSG, "STDIN: after end of input");
		return;
	}
	if (!len) {
		e->in_eof = true;
		if (!e->in_len)
			fd_close(&e->in_fd);
		return;
	}
	/* The child closed its stdin or is gone: what it never reads is dropped. */
	if (e->in_fd < 0)
		return;
	if (e->in_len + len > AGENT_STDIN_MAX) {
		link_send_error(a, KF_ERR_BAD_MSG,
				"STDIN: %zu bytes already buffered, child is not reading",
				e->in_len);
		return;
	}
	buf = realloc(e->in_buf, e->in_len + len);
	if (!buf) {
		link_send_error(a, KF_ERR_BAD_MSG, "STDIN: realloc of %zu bytes failed",
				e->in_len + len);
		return;
	}
	memcpy(buf + e->in_len, data, len);
	e->in_buf = buf;
	e->in_len += len;
	exec_poll_stdin(a);
}

/* Write as much buffered stdin as the pipe takes now; never block. */
void exec_poll_stdin(struct agent *a)
{
	struct agent_exec *e = &a->exec;

	while (e->in_fd >= 0 && e->in_len) {
		ssize_t n = write(e->in_fd, e->in_buf, e->in_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* EPIPE: the child closed its stdin; drop the rest. */
			e->in_len = 0;
			fd_close(&e->in_fd);
			return;
		}
		memmove(e->in_buf, e->in_buf + n, e->in_len - n);
		e->in_len -= n;
	}
	if (e->in_eof && !e->in_len)
		fd_close(&e->in_fd);
}

/* One chunk per call, so stdout and stderr interleave as produced. */
void exec_poll_output(struct agent *a, int *fd, uint8_t type)
{
	uint8_t buf[KF_OUTPUT_CHUNK];
	ssize_t n;

	do {
		n = read(*fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		fd_close(fd);
		return;
	}
	link_send(a, type, buf, n);
}

void exec_child_exited(struct agent *a, int status)
{
	struct agent_exec *e = &a->exec;

	e->exited = true;
	e->status = status;
	e->in_len = 0;
	fd_close(&e->in_fd);
}

/* EXIT goes out only after the last output byte: the child is gone and both
 * pipes reached EOF (a background grandchild holding them delays it). */
void exec_finish_if_done(struct agent *a)
{
	struct agent_exec *e = &a->exec;
	struct kf_msg_exit msg;

	if (!e->running || !e->exited || e->out_fd >= 0 || e->err_fd >= 0)
		return;
	if (e->zygote_lost) {
		link_send_error(a, KF_ERR_EXEC, "Python zygote died during the exec (wait status %#x)",
				e->status);
	} else {
		if (WIFSIGNALED(e->status)) {
			msg.kind = KF_EXIT_SIGNAL;
			msg.value = WTERMSIG(e->status);
		} else {
			msg.kind = KF_EXIT_CODE;
			msg.value = WEXITSTATUS(e->status);
		}
		if (e->session_lost)
			msg.kind |= KF_EXIT_F_SESSION_LOST;
		link_send(a, KF_MSG_EXIT, &msg, sizeof(msg));
	}
	exec_reset(e);
}
