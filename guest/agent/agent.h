// SPDX-License-Identifier: GPL-2.0-only
/* agent.h - state shared by the parts of kfork-agent, the guest's PID 1. */
#ifndef KFORK_AGENT_H
#define KFORK_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/kf_mbox.h"
#include "proto/kf_proto.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "frame structs are sent in host byte order, which must be little-endian");

/* STDIN bytes buffered for a child that does not read them yet. */
#define AGENT_STDIN_MAX		(1u << 20)

struct agent_zygote {
	pid_t pid;		/* -1 when not running */
	int sock;		/* SOCK_SEQPACKET to the zygote, -1 when not running */
	bool ended;		/* it ran and exited: Python execs fail until a reset */
	int end_status;		/* its wait status, once ended */
};

struct agent_exec {
	bool running;
	uint8_t lang;		/* enum kf_lang */
	pid_t pid;		/* sh child, the zygote's child, or the zygote (session) */
	bool exited;
	int status;		/* wait status, valid once exited */
	bool zygote_lost;	/* zygote died mid-exec: report ERROR, not EXIT */
	bool session_lost;	/* the zygote ran this exec in place and died of it */
	int out_fd;		/* read end of the child's stdout, -1 at EOF */
	int err_fd;		/* read end of the child's stderr, -1 at EOF */
	int in_fd;		/* write end of the child's stdin, -1 once closed */
	bool in_eof;		/* host sent the zero-length STDIN */
	uint8_t *in_buf;	/* STDIN bytes not yet written to in_fd */
	size_t in_len;
};

/* The shared-memory mailbox (proto/kf_mbox.h), when the host offers one. */
struct agent_mbox {
	bool mapped;		/* h2g is drained on a doorbell byte */
	bool on;		/* frames to the host go into g2h: h2g brought some */
	bool dirty;		/* g2h written or h2g consumed since the last doorbell */
	struct kf_mbox_hdr *hdr;
	volatile uint32_t *doorbell;
	struct kf_ring h2g, g2h;
	struct kf_decoder dec;	/* frames arriving through h2g */
};

struct agent {
	int link_fd;		/* serial line (or socket in test mode), O_NONBLOCK */
	int sig_fd;		/* signalfd for SIGCHLD */
	bool test_mode;
	bool no_clock;
	char kind[32];		/* "minimal" or "python" */
	const char *python;
	const char *zygote_script;
	struct agent_zygote zygote;
	struct agent_exec exec;
	struct kf_decoder dec;	/* frames arriving on the line */
	struct agent_mbox mbox;
};

/* link.c: frames out, never partial */
int link_write_all(int fd, const void *buf, size_t len);
int link_send(struct agent *a, uint8_t type, const void *payload, uint32_t len);
int link_send_error(struct agent *a, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int link_tty_open(const char *path);

/* mbox.c: the mailbox, once mapped; frames it brings go to frame_feed() */
int mbox_open(struct agent *a);
int mbox_send(struct agent *a, const void *buf, size_t len);
void mbox_flush(struct agent *a);
void mbox_drain(struct agent *a);

/* kfork-agent.c: feed up to len bytes to dec, serve a completed frame; returns bytes used */
size_t frame_feed(struct agent *a, struct kf_decoder *dec, const uint8_t *buf, size_t len,
		  const char *where);

/* exec.c: one child at a time, output streamed as frames */
void exec_start(struct agent *a, uint8_t lang, const uint8_t *code, uint32_t len);
void exec_feed_stdin(struct agent *a, const uint8_t *data, uint32_t len);
void exec_poll_stdin(struct agent *a);
void exec_poll_output(struct agent *a, int *fd, uint8_t type);
void exec_child_exited(struct agent *a, int status);
void exec_finish_if_done(struct agent *a);
int exec_pipes_open(int child_fds[3], int parent_fds[3]);
void exec_child_reset_signals(void);

static inline bool exec_is_python(const struct agent_exec *e)
{
	return e->lang == KF_LANG_PYTHON || e->lang == KF_LANG_PYTHON_SESSION;
}

/* zygote.c: the warm Python interpreter */
int zygote_start(struct agent *a);
int zygote_warm(struct agent *a);
int zygote_submit(struct agent *a, uint8_t lang, const uint8_t *code, uint32_t len,
		  const int child_fds[3]);
void zygote_read(struct agent *a);
void zygote_lost(struct agent *a, int status);

void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* KFORK_AGENT_H */
