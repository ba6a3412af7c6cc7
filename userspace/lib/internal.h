/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* internal.h - libkfork's objects, shared between its files and nowhere else. */
#ifndef KF_LIB_INTERNAL_H
#define KF_LIB_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kfork.h"
#include "proto/kf_proto.h"
#include "vmm/mbox.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#define KF_TPL_KEY_SIZE	32	/* kfork.ko's KFORK_KEY_SIZE */
/* Working-set entries, as kfork.ko's KFORK_WSET_*: a guest frame, written or only read. */
#define KF_WSET_WRITE		(1ULL << 63)
#define KF_WSET_GFN_MASK	((1ULL << 52) - 1)

struct kf_template {
	enum kf_template_kind kind;
	enum kf_backend backend;
	int memfd;			/* sealed: the template's pages never change */
	uint64_t mem_size;
	struct vm_state state;
	atomic_uint_fast64_t next_id;
	atomic_int refs;		/* the opener + each live clone */
	char name[64];			/* file name, for messages */
	int kmod_fd;			/* kmod backend: the module's template fd, else -1 */
	atomic_int kmod_wset_state;	/* kmod: 0 working set not recorded, 1 recording, 2 set */
	int pagemap_fd;			/* /proc/self/pagemap, opened before any sandbox */
	int pagemap_pid;		/* whose pagemap that is: a fork()ed child must not read it */
	int has_mbox;			/* its agent serves frames over the mailbox */
	struct kf_mbox_hdr mbox_hdr;	/* the mailbox header as frozen, when has_mbox */
	int meta_only;			/* read without its pages (memfd -1): mbox_hdr read from the file */
	uint8_t file_key[KF_TPL_KEY_SIZE];	/* the file's identity: its kfork.ko persistence key */
	int attached;			/* kmod: attached to a persistent template */
	uint64_t *wset;			/* working set from the file (v2), or NULL */
	uint64_t wset_len;
};

struct exec_session;

struct kf_clone {
	struct kf_template *tmpl;
	uint64_t id;
	uint8_t *mem;			/* MAP_PRIVATE of tmpl->memfd: copy-on-write */
	struct vm vm;
	struct kf_decoder *dec;		/* frames from the serial line */
	struct kf_decoder *mbox_dec;	/* frames from the mailbox (g2h), when tmpl->has_mbox */
	struct mbox mbox;
	struct exec_session *session;	/* the exec in progress, or NULL */
	int init_pending;		/* INIT sent, INIT_OK not seen yet */
	int needs_reset;		/* an exec timed out: state unknown */
	enum kf_session_state py_session;	/* kf_session_begin(); NONE after spawn and reset */
	uint64_t spawn_ns;
	int kmod_fd;			/* kmod backend: the clone fd, else -1 */
	void *kmod_scratch;		/* kmod backend: the module's ioctl buffer, ours to unmap */
	size_t kmod_scratch_size;
	struct kf_clone *reap_next;
};

/* template file */
int tplfile_write(const char *path, enum kf_template_kind kind, const uint8_t *mem,
		  uint64_t mem_size, const struct vm_state *st, const uint64_t *wset,
		  uint64_t wset_len);
/* meta_only: header, state, mailbox header and key; no pages, no memfd (kmod attach). */
int tplfile_read(const char *path, struct kf_template *tmpl, int meta_only);

void kf_template_put(struct kf_template *tmpl);

/* exec.c: bytes the guest wrote to the UART, and to the mailbox */
void exec_guest_tx(void *arg, uint8_t byte);
void exec_guest_mbox_rx(void *arg, const uint8_t *buf, size_t len);
int exec_queue_init(struct kf_clone *clone);

/* kmod.c: the kmod backend, /dev/kfork (see kmod/uapi/kfork.h) */
int kmod_template_register(struct kf_template *tmpl);
int kmod_template_attach(struct kf_template *tmpl);
int kmod_template_persist(struct kf_template *tmpl);
int kmod_template_remove(const uint8_t *key, const char *name);
int tplfile_path_key(const char *path, uint8_t key[KF_TPL_KEY_SIZE]);
/* *t_vm: when the VM, memory and vCPU existed (kfork trace's stamp) */
int kmod_clone_build(struct kf_clone *clone, const char *name, uint64_t *t_vm);
int kmod_clone_reset(struct kf_clone *clone);
void kmod_clone_learn(struct kf_clone *clone);
int clone_working_set(struct kf_clone *clone, uint64_t **out, uint64_t *n);
int clone_pagemap_scan(struct kf_clone *clone,
		       void (*fn)(void *arg, uint64_t frame, int present, int private), void *arg);

/* reaper.c: tear clones down on a background thread */
void reaper_push(struct kf_clone *clone);
void clone_teardown(struct kf_clone *clone);
/* Close and unmap what a spawn made (either backend); the clone struct stays. */
void clone_unbuild(struct kf_clone *clone);

#endif
