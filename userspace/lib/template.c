// SPDX-License-Identifier: LGPL-2.1-or-later
/* template.c - open a template file, pick the backend, and build templates by booting a guest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/internal.h"
#include "vmm/boot.h"
#include "vmm/kvm.h"
#include "vmm/run.h"

#define KFORK_DEVICE_PATH	"/dev/kfork"

static const char *const backend_names[] = {
	[KF_BACKEND_AUTO] = "auto", [KF_BACKEND_USER] = "user", [KF_BACKEND_KMOD] = "kmod",
};

const char *kf_backend_name(enum kf_backend backend)
{
	if ((unsigned int)backend >= sizeof(backend_names) / sizeof(backend_names[0]))
		return "?";
	return backend_names[backend];
}

static int backend_choose(enum kf_backend asked, enum kf_backend *out)
{
	const char *env = getenv("KFORK_BACKEND");
	int have_kmod = access(KFORK_DEVICE_PATH, F_OK) == 0;

	if (asked == KF_BACKEND_AUTO && env && *env) {
		if (!strcmp(env, "user"))
			asked = KF_BACKEND_USER;
		else if (!strcmp(env, "kmod"))
			asked = KF_BACKEND_KMOD;
		else
			return kf_reject(-EINVAL, "KFORK_BACKEND=%s: expected user or kmod", env);
	}
	if (asked == KF_BACKEND_AUTO)
		asked = have_kmod ? KF_BACKEND_KMOD : KF_BACKEND_USER;
	if (asked == KF_BACKEND_KMOD && !have_kmod)
		return kf_reject(-ENOTSUP, "kmod backend: /dev/kfork not present (load kfork.ko, or use --backend user)");
	*out = asked;
	return 0;
}

/*
 * Read the frozen mailbox header: clones of this template talk over it or
 * over serial only. KFORK_MAILBOX=0 keeps them on serial, as an older kfork
 * would (the agent answers the way it is spoken to): for comparisons.
 */
static int template_mbox_probe(struct kf_template *tmpl)
{
	const char *env = getenv("KFORK_MAILBOX");
	struct kf_mbox_hdr *h = &tmpl->mbox_hdr;
	int ret;

	tmpl->has_mbox = 0;
	if (tmpl->kind == KF_KIND_TINY || tmpl->mem_size < 2 * KF_MBOX_SIZE ||
	    (env && !strcmp(env, "0")))
		return 0;
	errno = 0;
	/* Without the pages, tplfile_read() has read the header from the file. */
	if (!tmpl->meta_only &&
	    pread(tmpl->memfd, h, sizeof(*h), mbox_gpa(tmpl->mem_size)) != (ssize_t)sizeof(*h))
		return kf_fail(errno ? -errno : -EIO, "reading the mailbox of %s", tmpl->name);
	ret = mbox_template_check(h, tmpl->name);
	if (ret < 0)
		return ret;
	tmpl->has_mbox = ret;
	return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22	/* Linux 5.14 */
#endif

/*
 * User backend: the pages of the file's working set that are holes in the
 * memfd get their (zero) page now, once, instead of on the first clone's
 * read fault, so that the first clone costs what later ones do. Runs of
 * frames are populated together. Best effort: a kernel without
 * MADV_POPULATE_READ leaves it to the first clone.
 */
static void template_populate(struct kf_template *tmpl)
{
	uint8_t *map;

	if (!tmpl->wset_len)
		return;
	map = mmap(NULL, tmpl->mem_size, PROT_READ, MAP_SHARED, tmpl->memfd, 0);
	if (map == MAP_FAILED)
		return;
	for (uint64_t i = 0; i < tmpl->wset_len;) {
		uint64_t first = tmpl->wset[i] & KF_WSET_GFN_MASK, n = 1;

		while (i + n < tmpl->wset_len && (tmpl->wset[i + n] & KF_WSET_GFN_MASK) == first + n)
			n++;
		if (madvise(map + first * VM_PAGE_SIZE, n * VM_PAGE_SIZE, MADV_POPULATE_READ) &&
		    errno == EINVAL)
			break;
		i += n;
	}
	munmap(map, tmpl->mem_size);
}

/* KFORK_ATTACH=0: always load the file, as a kfork without persistent templates would. */
static int attach_wanted(void)
{
	const char *env = getenv("KFORK_ATTACH");

	return !env || strcmp(env, "0");
}

/*
 * kmod: a template the module keeps for this file (kfork template load) is
 * attached to, and only the file's header and state are read. Otherwise the
 * whole file is read and checked, and registered with the module.
 */
static int template_load(const char *path, struct kf_template *tmpl)
{
	int err;

	/*
	 * Opened now, not when the working set is learnt or a dirty limit
	 * checked: those run on the reaper or a sandboxed thread
	 * (kf_sandbox_thread), where open is refused.
	 */
	tmpl->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	tmpl->pagemap_pid = getpid();

	if (tmpl->backend == KF_BACKEND_KMOD && attach_wanted()) {
		err = tplfile_read(path, tmpl, 1);
		if (!err)
			err = template_mbox_probe(tmpl);
		if (!err)
			err = kmod_template_attach(tmpl);
		if (err != -ENOENT)
			return err;
		state_free(&tmpl->state);
		free(tmpl->wset);
		tmpl->wset = NULL;
		tmpl->wset_len = 0;
		tmpl->meta_only = 0;
	}
	err = tplfile_read(path, tmpl, 0);
	if (!err)
		err = template_mbox_probe(tmpl);
	if (!err && tmpl->backend == KF_BACKEND_KMOD)
		err = kmod_template_register(tmpl);
	else if (!err)
		template_populate(tmpl);
	return err;
}

int kf_template_open(const char *path, enum kf_backend backend, struct kf_template **out)
{
	struct kf_template *tmpl;
	const char *base = strrchr(path, '/');
	int err;

	tmpl = calloc(1, sizeof(*tmpl));
	if (!tmpl)
		return kf_fail(-ENOMEM, "template %s", path);
	tmpl->memfd = -1;
	tmpl->kmod_fd = -1;
	tmpl->pagemap_fd = -1;
	snprintf(tmpl->name, sizeof(tmpl->name), "%s", base ? base + 1 : path);
	err = backend_choose(backend, &tmpl->backend);
	if (err)
		goto free_tmpl;
	err = template_load(path, tmpl);
	if (err)
		goto free_tmpl;
	atomic_init(&tmpl->refs, 1);
	atomic_init(&tmpl->next_id, 1);
	*out = tmpl;
	return 0;

free_tmpl:
	if (tmpl->memfd >= 0)
		close(tmpl->memfd);
	if (tmpl->kmod_fd >= 0)
		close(tmpl->kmod_fd);
	if (tmpl->pagemap_fd >= 0)
		close(tmpl->pagemap_fd);
	state_free(&tmpl->state);
	free(tmpl->wset);
	free(tmpl);
	return err;
}

void kf_template_put(struct kf_template *tmpl)
{
	if (atomic_fetch_sub(&tmpl->refs, 1) != 1)
		return;
	if (tmpl->kmod_fd >= 0)
		close(tmpl->kmod_fd);
	if (tmpl->pagemap_fd >= 0)
		close(tmpl->pagemap_fd);
	if (tmpl->memfd >= 0)
		close(tmpl->memfd);
	state_free(&tmpl->state);
	free(tmpl->wset);
	free(tmpl);
}

/* Live clones keep the template alive until they are torn down. */
void kf_template_close(struct kf_template *tmpl)
{
	if (tmpl)
		kf_template_put(tmpl);
}

enum kf_template_kind kf_template_kind(const struct kf_template *tmpl)
{
	return tmpl->kind;
}

enum kf_backend kf_template_backend(const struct kf_template *tmpl)
{
	return tmpl->backend;
}

uint64_t kf_template_mem_size(const struct kf_template *tmpl)
{
	return tmpl->mem_size;
}

/* --- persistent templates (kmod) ------------------------------------------- */

/*
 * One clone runs a trivial program of the template's kind and is reset: the
 * reset records the working set in the module (kmod_clone_learn), so every
 * clone of every later process is prefaulted from its first spawn.
 */
/* A trivial program of the template's kind, in clone: 0 if it ran and exited 0. */
static int template_trivial_exec(struct kf_clone *clone, const char *why)
{
	static const char py[] = "print(1)", sh[] = "echo 1";
	struct kf_template *tmpl = clone->tmpl;
	struct kf_exec_req req = { .timeout_ms = 60000 };
	struct kf_exec_result res;
	int err;

	req.lang = tmpl->kind == KF_KIND_PYTHON ? KF_EXEC_PYTHON : KF_EXEC_SH;
	req.code = req.lang == KF_EXEC_PYTHON ? py : sh;
	req.code_len = strlen(req.code);
	err = kf_exec(clone, &req, &res);
	if (err)
		return kf_fail(err, "%s %s: '%s': %.300s", why, tmpl->name, req.code, kf_last_error());
	if (res.exit_code)
		err = kf_reject(-EIO, "%s %s: '%s' exited %d: %.200s", why, tmpl->name, req.code,
				res.exit_code, res.err ? res.err : "");
	kf_exec_result_free(&res);
	return err;
}

/*
 * Python: the trivial program again, in place (a session exec), so that the
 * working set also holds the pages an exec in the warm interpreter itself
 * writes, not only those of a forked child (bench/results/2026-12-04-lab-session.md).
 */
static int template_trivial_session_exec(struct kf_clone *clone, const char *why)
{
	int err;

	if (clone->tmpl->kind != KF_KIND_PYTHON)
		return 0;
	err = kf_session_begin(clone);
	return err ? err : template_trivial_exec(clone, why);
}

static int template_warm(struct kf_template *tmpl)
{
	struct kf_clone *clone;
	int err;

	if (tmpl->kind == KF_KIND_TINY || atomic_load(&tmpl->kmod_wset_state) != 0)
		return 0;
	err = kf_spawn(tmpl, &clone);
	if (err)
		return err;
	err = template_trivial_exec(clone, "warming");
	if (!err)
		err = template_trivial_session_exec(clone, "warming, in place,");
	if (!err)
		err = kf_reset(clone);
	kf_destroy(clone);
	return err;
}

/*
 * The working set of a fresh template file: one user-backend clone of it runs
 * a trivial program, and the pages it touched are what later first clones get
 * prefaulted with (kmod). Also proves that the frozen guest serves an exec.
 */
static int template_learn_wset(const char *path, uint64_t **wset, uint64_t *n)
{
	struct kf_template *tmpl;
	struct kf_clone *clone;
	int err;

	err = kf_template_open(path, KF_BACKEND_USER, &tmpl);
	if (err)
		return err;
	err = kf_spawn(tmpl, &clone);
	if (!err) {
		err = template_trivial_exec(clone, "template build: the first exec in");
		if (!err)
			err = template_trivial_session_exec(clone, "template build: an exec in place in");
		if (!err)
			err = clone_working_set(clone, wset, n);
		if (err == -ENODATA)
			err = kf_reject(err, "template build: a clone of %s touched no page", path);
		kf_destroy(clone);
	}
	kf_template_close(tmpl);
	return err;
}

int kf_template_persist(struct kf_template *tmpl)
{
	int err;

	if (tmpl->backend != KF_BACKEND_KMOD)
		return kf_reject(-ENOTSUP, "%s: only kfork.ko keeps templates (backend %s)", tmpl->name,
				 kf_backend_name(tmpl->backend));
	if (tmpl->attached)
		return kf_reject(-EEXIST, "kfork.ko keeps %s already", tmpl->name);
	err = template_warm(tmpl);
	if (err)
		return err;
	return kmod_template_persist(tmpl);
}

int kf_template_is_persistent(const struct kf_template *tmpl)
{
	return tmpl->attached;
}

int kf_template_unpersist(const char *path)
{
	uint8_t key[KF_TPL_KEY_SIZE];
	int err;

	if (access(KFORK_DEVICE_PATH, F_OK))
		return kf_reject(-ENOTSUP, "/dev/kfork not present: no template is kept");
	if (!path)
		return kmod_template_remove(NULL, "this user");
	err = tplfile_path_key(path, key);
	if (!err)
		err = kmod_template_remove(key, path);
	return err < 0 ? err : 0;
}

/* --- building: boot once, run to READY, freeze ---------------------------------- */

struct build_watch {
	struct kf_decoder dec;
	int ready;
	int verbose;
	char log[4096];		/* tail of the console, shown when the boot fails */
	size_t log_len;
};

static void build_guest_tx(void *arg, uint8_t byte)
{
	struct build_watch *w = arg;
	size_t used;

	if (w->verbose)
		fputc(byte, stderr);
	if (w->log_len == sizeof(w->log)) {
		memmove(w->log, w->log + 1024, sizeof(w->log) - 1024);
		w->log_len -= 1024;
	}
	w->log[w->log_len++] = byte;
	if (kf_decoder_feed(&w->dec, &byte, 1, &used) == KF_DEC_FRAME &&
	    w->dec.type == KF_MSG_READY)
		w->ready = 1;
}

static int build_ready(void *arg)
{
	return ((struct build_watch *)arg)->ready;
}

static const char *const kind_names[KF_KIND_MAX] = {
	[KF_KIND_MINIMAL] = "minimal", [KF_KIND_PYTHON] = "python", [KF_KIND_TINY] = "tiny",
};

const char *kf_kind_name(enum kf_template_kind kind)
{
	return (unsigned int)kind < KF_KIND_MAX ? kind_names[kind] : "?";
}

#define BUILD_CMDLINE "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check tsc=reliable"

int kf_template_build(const struct kf_build_opts *opts, const char *path)
{
	uint64_t mem_size = opts->mem_size;
	unsigned int timeout_ms = opts->timeout_ms ? opts->timeout_ms : 600000;
	const struct kvm_host *host;
	struct build_watch *w;
	struct vm_state st;
	struct vm vm;
	uint8_t *mem;
	int err;

	if ((unsigned int)opts->kind >= KF_KIND_MAX || !opts->kernel ||
	    (opts->kind != KF_KIND_TINY && !opts->initrd))
		return kf_reject(-EINVAL, "template build: need a kind, a kernel and an initrd");
	if (!mem_size)
		mem_size = opts->kind == KF_KIND_TINY ? 4ULL << 20 : 256ULL << 20;
	err = kvm_host_get(&host);
	if (err)
		return err;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	kf_decoder_init(&w->dec);
	w->verbose = opts->verbose;
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED) {
		err = kf_fail(-errno, "template build: %llu MiB of guest memory",
			      (unsigned long long)(mem_size >> 20));
		goto free_watch;
	}
	err = vm_create(&vm, "template build", mem, mem_size);
	if (err)
		goto unmap;
	vm.uart.tx = build_guest_tx;
	vm.uart.tx_arg = w;
	err = vm_set_cpuid(&vm, host->cpuid);
	if (err)
		goto destroy;
	if (opts->kind == KF_KIND_TINY)
		err = boot_flat(&vm, opts->kernel);
	else
		err = boot_pvh(&vm, opts->kernel, opts->initrd,
			       opts->cmdline ? opts->cmdline : BUILD_CMDLINE);
	if (err)
		goto destroy;
	err = vm_run(&vm, vm_now_ns() + timeout_ms * 1000000ull, build_ready, w);
	if (err) {
		int n = (int)w->log_len;

		if (!opts->verbose)
			fprintf(stderr, "--- guest console (last %d bytes) ---\n%.*s\n---\n", n, n,
				w->log);
		if (err == -ETIMEDOUT)
			err = kf_reject(err, "template build: guest did not report READY within %u s",
					timeout_ms / 1000);
		else
			err = kf_reject(err, "template build: guest did not report READY: %.400s",
					kf_last_error());
		goto destroy;
	}
	err = vm_complete_io(&vm);
	if (err)
		goto destroy;
	err = state_save(&vm, host->cpuid, &st);
	if (err)
		goto destroy;
	err = tplfile_write(path, opts->kind, mem, mem_size, &st, NULL, 0);
	if (!err && opts->kind != KF_KIND_TINY) {
		uint64_t *wset, n;

		err = template_learn_wset(path, &wset, &n);
		if (!err) {
			err = tplfile_write(path, opts->kind, mem, mem_size, &st, wset, n);
			free(wset);
		}
		if (err)
			unlink(path);
	}
	state_free(&st);
destroy:
	vm_destroy(&vm);
unmap:
	munmap(mem, mem_size);
free_watch:
	free(w);
	return err;
}
