// SPDX-License-Identifier: LGPL-2.1-or-later
/* exec.c - one exec in a clone: send EXEC and stdin frames, collect output and the exit status. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/internal.h"
#include "lib/probes.h"
#include "vmm/run.h"

_Static_assert((int)KF_EXEC_SH == (int)KF_LANG_SH && (int)KF_EXEC_PYTHON == (int)KF_LANG_PYTHON,
	       "public and wire language numbers agree");

/* A guest may not make the host buffer more than this per stream. */
#define EXEC_OUTPUT_MAX	KF_EXEC_OUTPUT_MAX

struct exec_session {
	const struct kf_exec_req *req;
	uint8_t wire_lang;	/* enum kf_lang: KF_LANG_PYTHON_SESSION in a session */
	struct kf_exec_result *res;
	size_t out_cap, err_cap;
	size_t out_total;	/* stdout + stderr bytes so far, against max_output */
	uint64_t dirty_base;	/* the clone's own pages when the exec began */
	uint64_t dirty_next;	/* next dirty-page poll, vm_now_ns() */
	uint64_t t0;
	uint64_t t_first;	/* first byte from the guest, 0 until then */
	int done;
	int err;		/* -errno once the exec failed */
};

static int exec_queue_frame(struct kf_clone *clone, uint8_t type, const void *payload,
			    uint32_t len)
{
	uint8_t *frame = malloc(KF_FRAME_HDR_LEN + len + KF_FRAME_CRC_LEN);
	size_t n;
	int err;

	if (!frame)
		return -ENOMEM;
	n = kf_frame_encode(frame, type, payload, len);
	if (!n)
		err = -E2BIG;
	else if (clone->tmpl->has_mbox)
		err = mbox_send(&clone->mbox, &clone->vm, frame, n);
	else
		err = uart_rx_push(&clone->vm.uart, frame, n);
	free(frame);
	return err;
}

int exec_queue_init(struct kf_clone *clone)
{
	struct kf_msg_init init = { .clone_id = clone->id };
	struct timespec now;
	int err;

	if (getrandom(init.seed, sizeof(init.seed), 0) != sizeof(init.seed))
		return kf_fail(-errno, "getrandom for clone %llu", (unsigned long long)clone->id);
	clock_gettime(CLOCK_REALTIME, &now);
	init.wall_sec = now.tv_sec;
	init.wall_nsec = now.tv_nsec;
	err = exec_queue_frame(clone, KF_MSG_INIT, &init, sizeof(init));
	if (err)
		return kf_fail(err, "queueing INIT for clone %llu", (unsigned long long)clone->id);
	clone->init_pending = 1;
	return vm_uart_sync_irq(&clone->vm);
}

static int exec_append(char **buf, size_t *len, size_t *cap, const uint8_t *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *p;

		while (c < *len + n + 1)
			c *= 2;
		if (c > EXEC_OUTPUT_MAX)
			return -EMSGSIZE;
		p = realloc(*buf, c);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

static void exec_output(struct kf_clone *clone, struct exec_session *s, int stream,
			const uint8_t *data, uint32_t len)
{
	struct kf_exec_result *res = s->res;
	size_t max = s->req->max_output ? s->req->max_output : EXEC_OUTPUT_MAX;
	int err;

	if (len > max - s->out_total) {
		/* Keep what fits, then stop the guest: the caller said no more. */
		len = max - s->out_total;
		s->err = kf_reject(-EMSGSIZE, "clone %llu: output passed the %zu-byte limit",
				   (unsigned long long)clone->id, max);
		s->done = 1;
	}
	s->out_total += len;
	if (!len)
		return;
	if (s->req->on_output) {
		s->req->on_output(s->req->arg, stream, data, len);
		return;
	}
	if (stream == 1)
		err = exec_append(&res->out, &res->out_len, &s->out_cap, data, len);
	else
		err = exec_append(&res->err, &res->err_len, &s->err_cap, data, len);
	if (err && !s->err) {
		s->err = kf_fail(err, "clone %llu: collecting output", (unsigned long long)clone->id);
		s->done = 1;
	}
}

static void exec_exit(struct kf_clone *clone, struct exec_session *s, const uint8_t *p,
		      uint32_t len)
{
	struct kf_msg_exit ex;

	s->done = 1;
	if (len != sizeof(ex)) {
		s->err = kf_reject(-EPROTO, "clone %llu: EXIT frame of %u bytes",
				 (unsigned long long)clone->id, len);
		return;
	}
	memcpy(&ex, p, sizeof(ex));
	if (ex.kind & KF_EXIT_F_SESSION_LOST) {
		/* Only an in-place exec can take the interpreter with it. */
		if (s->wire_lang != KF_LANG_PYTHON_SESSION) {
			s->err = kf_reject(-EPROTO, "clone %llu: EXIT frame says a session ended, but none ran",
					   (unsigned long long)clone->id);
			return;
		}
		ex.kind &= ~KF_EXIT_F_SESSION_LOST;
		clone->py_session = KF_SESSION_LOST;
	}
	if (ex.kind == KF_EXIT_CODE && ex.value >= 0 && ex.value <= 255) {
		s->res->exit_code = ex.value;
	} else if (ex.kind == KF_EXIT_SIGNAL && ex.value > 0 && ex.value < 128) {
		s->res->signal = ex.value;
		s->res->exit_code = 128 + ex.value;
	} else {
		s->err = kf_reject(-EPROTO, "clone %llu: EXIT frame with kind %u value %d",
				 (unsigned long long)clone->id, ex.kind, ex.value);
	}
}

static void exec_agent_error(struct kf_clone *clone, struct exec_session *s, const uint8_t *p,
			     uint32_t len)
{
	struct kf_msg_error e = { 0 };
	int text = len > sizeof(e) ? (int)(len - sizeof(e)) : 0;

	if (len >= sizeof(e))
		memcpy(&e, p, sizeof(e));
	if (text > 200)
		text = 200;
	s->done = 1;
	if (e.code == KF_ERR_SESSION && s->wire_lang != KF_LANG_SH) {
		/* The interpreter ended between execs (a thread's os._exit, say). */
		clone->py_session = KF_SESSION_LOST;
		s->err = kf_reject(-ESRCH, "clone %llu: its Python interpreter has ended: %.*s",
				   (unsigned long long)clone->id, text, (const char *)p + sizeof(e));
		return;
	}
	/* Printed with %.*s of bounded length; control bytes are the guest's problem. */
	s->err = kf_reject(-EPROTO, "clone %llu: agent error %u: %.*s",
			 (unsigned long long)clone->id, e.code, text, (const char *)p + sizeof(e));
}

static void exec_on_frame(struct kf_clone *clone, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct exec_session *s = clone->session;

	if (type == KF_MSG_INIT_OK) {
		clone->init_pending = 0;
		return;
	}
	if (!s || s->done)
		return;	/* nobody is waiting: late output of a failed exec */
	switch (type) {
	case KF_MSG_STDOUT:
		exec_output(clone, s, 1, p, len);
		break;
	case KF_MSG_STDERR:
		exec_output(clone, s, 2, p, len);
		break;
	case KF_MSG_EXIT:
		exec_exit(clone, s, p, len);
		break;
	case KF_MSG_ERROR:
		exec_agent_error(clone, s, p, len);
		break;
	default:
		break;	/* READY, PONG, unknown: not part of an exec */
	}
}

static void exec_first_byte(struct exec_session *s)
{
	if (s && !s->t_first) {
		s->t_first = vm_now_ns();
		s->res->first_byte_ns = s->t_first - s->t0;
	}
}

/* The serial line and the mailbox each have their own decoder: their frames never interleave. */
static void exec_guest_bytes(struct kf_clone *clone, struct kf_decoder *dec, const uint8_t *buf,
			     size_t len)
{
	size_t used;

	exec_first_byte(clone->session);
	while (len) {
		if (kf_decoder_feed(dec, buf, len, &used) == KF_DEC_FRAME)
			exec_on_frame(clone, dec->type, kf_decoder_payload(dec), dec->len);
		buf += used;
		len -= used;
	}
}

void exec_guest_tx(void *arg, uint8_t byte)
{
	struct kf_clone *clone = arg;

	exec_guest_bytes(clone, clone->dec, &byte, 1);
}

void exec_guest_mbox_rx(void *arg, const uint8_t *buf, size_t len)
{
	struct kf_clone *clone = arg;

	exec_guest_bytes(clone, clone->mbox_dec, buf, len);
}

static void count_private(void *arg, uint64_t frame, int present, int private)
{
	(void)frame;
	(void)present;
	*(uint64_t *)arg += private;
}

/* Pages of guest RAM the clone holds as its own copies (clone_pagemap_scan()). */
static int exec_private_pages(struct kf_clone *clone, uint64_t *out)
{
	int err;

	*out = 0;
	err = clone_pagemap_scan(clone, count_private, out);
	return err ? kf_fail(err, "reading /proc/self/pagemap for clone %llu",
			     (unsigned long long)clone->id) : 0;
}

static void exec_check_dirty(struct kf_clone *clone, struct exec_session *s)
{
	uint64_t n;
	int err = exec_private_pages(clone, &n);

	s->dirty_next = vm_now_ns() + KF_EXEC_DIRTY_POLL_MS * 1000000ull;
	if (err) {
		s->err = err;
		s->done = 1;
	} else if (n > s->dirty_base && n - s->dirty_base > s->req->max_dirty) {
		s->err = kf_reject(-EDQUOT, "clone %llu: dirtied %llu pages, limit %llu",
				   (unsigned long long)clone->id,
				   (unsigned long long)(n - s->dirty_base),
				   (unsigned long long)s->req->max_dirty);
		s->done = 1;
	}
}

static int exec_done(void *arg)
{
	struct kf_clone *clone = arg;
	struct exec_session *s = clone->session;

	if (!s->done && s->req->max_dirty && vm_now_ns() >= s->dirty_next)
		exec_check_dirty(clone, s);
	return s->done;
}

static int exec_queue_request(struct kf_clone *clone, const struct kf_exec_req *req,
			      uint8_t wire_lang)
{
	const uint8_t *in = req->stdin_data;
	size_t left = req->stdin_len;
	struct kf_msg_exec hdr = { .lang = wire_lang, .code_len = req->code_len };
	uint8_t *msg;
	int err;

	msg = malloc(sizeof(hdr) + req->code_len);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), req->code, req->code_len);
	err = exec_queue_frame(clone, KF_MSG_EXEC, msg, sizeof(hdr) + req->code_len);
	free(msg);
	while (!err && left) {
		uint32_t n = left > KF_FRAME_MAX_PAYLOAD ? KF_FRAME_MAX_PAYLOAD : left;

		err = exec_queue_frame(clone, KF_MSG_STDIN, in, n);
		in += n;
		left -= n;
	}
	if (!err)
		err = exec_queue_frame(clone, KF_MSG_STDIN, NULL, 0);	/* EOF */
	return err;
}

/* What the wire calls req_lang on this clone: in a session, Python runs in place. */
static int exec_session_lang(struct kf_clone *clone, enum kf_exec_lang req_lang, uint8_t *wire)
{
	*wire = req_lang == KF_EXEC_PYTHON ? KF_LANG_PYTHON : KF_LANG_SH;
	if (clone->py_session == KF_SESSION_NONE)
		return 0;
	if (req_lang == KF_EXEC_SH) {
		if (clone->py_session == KF_SESSION_LOST)
			return 0;	/* the shell is still there */
		return kf_reject(-EOPNOTSUPP,
				 "exec on clone %llu: sh code in a Python session (kf_reset() ends the session)",
				 (unsigned long long)clone->id);
	}
	if (clone->py_session == KF_SESSION_LOST)
		return kf_reject(-ESRCH,
				 "exec on clone %llu: its session's interpreter ended in an earlier exec; kf_reset() it for a fresh one",
				 (unsigned long long)clone->id);
	*wire = KF_LANG_PYTHON_SESSION;
	return 0;
}

int kf_session_begin(struct kf_clone *clone)
{
	if (clone->tmpl->kind != KF_KIND_PYTHON)
		return kf_reject(-EOPNOTSUPP,
				 "kf_session_begin on clone %llu: a '%s' template has no Python interpreter (sessions need a python template)",
				 (unsigned long long)clone->id, kf_kind_name(clone->tmpl->kind));
	if (clone->needs_reset)
		return kf_reject(-EBUSY, "kf_session_begin on clone %llu: an earlier exec failed; kf_reset() it first",
				 (unsigned long long)clone->id);
	if (clone->py_session == KF_SESSION_LOST)
		return kf_reject(-ESRCH,
				 "kf_session_begin on clone %llu: its session's interpreter ended; kf_reset() it for a fresh one",
				 (unsigned long long)clone->id);
	clone->py_session = KF_SESSION_ACTIVE;
	return 0;
}

enum kf_session_state kf_session_state(const struct kf_clone *clone)
{
	return clone->py_session;
}

int kf_exec(struct kf_clone *clone, const struct kf_exec_req *req, struct kf_exec_result *res)
{
	struct exec_session s = { .req = req, .res = res };
	uint64_t deadline = 0;
	int err;

	memset(res, 0, sizeof(*res));
	if ((unsigned int)req->lang > KF_EXEC_PYTHON || (!req->code && req->code_len))
		return kf_reject(-EINVAL, "exec on clone %llu: bad language or code",
			       (unsigned long long)clone->id);
	/* A lost session says so before anything else: the fix is the same reset. */
	err = exec_session_lang(clone, req->lang, &s.wire_lang);
	if (err)
		return err;
	if (clone->needs_reset)
		return kf_reject(-EBUSY, "clone %llu: an earlier exec timed out or failed; kf_reset() it first",
			       (unsigned long long)clone->id);
	if (req->code_len > KF_FRAME_MAX_PAYLOAD - sizeof(struct kf_msg_exec))
		return kf_reject(-E2BIG, "exec on clone %llu: code is %zu bytes, limit %zu",
			       (unsigned long long)clone->id, req->code_len,
			       (size_t)KF_FRAME_MAX_PAYLOAD - sizeof(struct kf_msg_exec));
	if (req->max_dirty) {
		err = exec_private_pages(clone, &s.dirty_base);
		if (err)
			return err;
	}
	s.t0 = vm_now_ns();
	s.dirty_next = s.t0 + KF_EXEC_DIRTY_POLL_MS * 1000000ull;
	err = exec_queue_request(clone, req, s.wire_lang);
	if (!err)
		err = vm_uart_sync_irq(&clone->vm);
	if (err) {
		/* Part of the request may be on its way: the clone's state is unknown. */
		clone->needs_reset = 1;
		s.err = err == -EPROTO ? err :	/* the mailbox said what the guest broke */
			kf_fail(err, "exec on clone %llu: queueing the request",
				(unsigned long long)clone->id);
		KF_PROBE6(exec_done, clone->id, s.t0, 0, vm_now_ns(), 0, s.err);
		return s.err;
	}
	if (req->timeout_ms)
		deadline = s.t0 + req->timeout_ms * 1000000ull;
	clone->session = &s;
	{
		uint64_t exits0 = clone->vm.exits;

		clone->vm.poll = req->max_dirty != 0;
		err = vm_run(&clone->vm, deadline, exec_done, clone);
		clone->vm.poll = 0;
		res->exits = clone->vm.exits - exits0;
	}
	/* A fast guest may finish between polls: the limit holds for the whole exec. */
	if (!err && !s.err && req->max_dirty)
		exec_check_dirty(clone, &s);
	clone->session = NULL;
	{
		uint64_t t_done = vm_now_ns();

		res->exec_ns = t_done - s.t0;
		KF_PROBE6(exec_done, clone->id, s.t0, s.t_first, t_done, res->exits,
			  err ? err : (s.err ? s.err : res->exit_code));
	}
	if (err == -ETIMEDOUT) {
		res->timed_out = 1;
		clone->needs_reset = 1;
		return kf_reject(err, "exec on clone %llu: timed out after %u ms",
			       (unsigned long long)clone->id, req->timeout_ms);
	}
	if (err)
		clone->needs_reset = 1;
	else if (s.err) {
		err = s.err;
		clone->needs_reset = 1;
	}
	if (!err && clone->init_pending)
		err = kf_reject(-EPROTO, "clone %llu: agent never confirmed seed and clock",
			      (unsigned long long)clone->id);
	return err;
}

void kf_exec_result_free(struct kf_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}
