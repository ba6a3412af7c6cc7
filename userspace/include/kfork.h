/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kfork.h - libkfork: spawn copy-on-write clones of a frozen KVM guest and run code in them. */
#ifndef KFORK_H
#define KFORK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these headers; kf_version() is the library's, which may be newer. */
#define KF_VERSION_MAJOR	0
#define KF_VERSION_MINOR	3
#define KF_VERSION_PATCH	0
#define KF_VERSION_STRING	"0.3.0"
/* Major in bits 16-23, minor 8-15, patch 0-7: comparable with KF_VERSION_CODE(a, b, c). */
#define KF_VERSION_CODE(a, b, c)	(((a) << 16) | ((b) << 8) | (c))
#define KF_VERSION	KF_VERSION_CODE(KF_VERSION_MAJOR, KF_VERSION_MINOR, KF_VERSION_PATCH)

/*
 * libkfork is built with -fvisibility=hidden: only what is marked KF_API is
 * exported (userspace/lib/libkfork.map lists the same names, versioned).
 */
#define KF_API	__attribute__((visibility("default")))

/*
 * Every function returns 0 or a positive count on success and -errno on
 * failure; kf_last_error() then holds one line naming the call and the
 * object ("KVM_SET_XSAVE on clone 17: Invalid argument"). Whoever opens or
 * spawns an object closes or destroys it. Objects may be used from any
 * thread, one thread at a time per clone.
 *
 * libkfork interrupts KVM_RUN with KF_KICK_SIGNAL to enforce exec timeouts;
 * it installs a no-op handler for it unless the program already has one.
 */
#define KF_KICK_SIGNAL_OFFSET	3	/* SIGRTMIN + 3 */

struct kf_template;
struct kf_clone;

enum kf_backend {
	KF_BACKEND_AUTO = 0,	/* kmod if /dev/kfork exists, else user; KFORK_BACKEND overrides */
	KF_BACKEND_USER = 1,	/* plain KVM ioctls from user space */
	KF_BACKEND_KMOD = 2,	/* /dev/kfork */
};

/* The library's version as KF_VERSION_CODE(); *str (if not NULL) gets "0.3.0". */
KF_API unsigned int kf_version(const char **str);

KF_API const char *kf_last_error(void);
KF_API const char *kf_backend_name(enum kf_backend backend);

/* --- templates ---------------------------------------------------------- */

enum kf_template_kind {
	KF_KIND_MINIMAL = 0,	/* Linux + kfork-agent + busybox */
	KF_KIND_PYTHON = 1,	/* ... + a warm Python interpreter */
	KF_KIND_TINY = 2,	/* a 32-bit freestanding test guest, no kernel */
	KF_KIND_MAX = 3,
};

KF_API const char *kf_kind_name(enum kf_template_kind kind);

struct kf_build_opts {
	enum kf_template_kind kind;
	const char *kernel;	/* vmlinux (PVH ELF); tiny: the flat guest image */
	const char *initrd;	/* initramfs; NULL for tiny */
	const char *cmdline;	/* NULL: the default */
	uint64_t mem_size;	/* guest RAM bytes; 0: 256 MiB (tiny: 4 MiB) */
	unsigned int timeout_ms;	/* boot to READY; 0: 600 s */
	int verbose;		/* copy the guest console to stderr */
};

/*
 * Boot a guest with the user-space VMM, run it to READY, freeze it into path.
 * Linux kinds: a clone of the result then runs a trivial program (python:
 * forked, then again in place as a session runs it), and the pages it touched
 * go into the file as the working set kfork.ko prefaults in every clone, the
 * first included; the build fails if that exec does.
 */
KF_API int kf_template_build(const struct kf_build_opts *opts, const char *path);

/* Load and verify a template file (version, checksum, CPU). */
KF_API int kf_template_open(const char *path, enum kf_backend backend, struct kf_template **out);
KF_API void kf_template_close(struct kf_template *tmpl);
KF_API enum kf_template_kind kf_template_kind(const struct kf_template *tmpl);
KF_API enum kf_backend kf_template_backend(const struct kf_template *tmpl);
KF_API uint64_t kf_template_mem_size(const struct kf_template *tmpl);

/*
 * Persistent templates (kmod backend). kf_template_persist() has kfork.ko
 * keep tmpl after this process closes it, under the file's identity (device,
 * inode, size, mtime): from then on kf_template_open() of the same file by
 * the same user attaches to it in one ioctl, reading only the file's header
 * and state (KFORK_ATTACH=0 loads the file anyway). Before keeping it, one
 * clone runs a trivial program, so the module records the working set that
 * every later first clone is prefaulted with. -EEXIST if it is kept already.
 * The memory stays charged to the user (RLIMIT_MEMLOCK) until
 * kf_template_unpersist(path) (0, or -ENOENT if not kept; NULL: all of
 * this user's, returns how many)
 * and the last clone and open template of it are gone. A rebuilt file has a
 * new identity: unpersist the old one by hand (or unpersist all).
 */
KF_API int kf_template_persist(struct kf_template *tmpl);
KF_API int kf_template_unpersist(const char *path);
/* 1 if tmpl is one kfork.ko keeps (attached to, or persisted by this process). */
KF_API int kf_template_is_persistent(const struct kf_template *tmpl);

/* --- clones ------------------------------------------------------------- */

/*
 * A runnable clone: new VM, memory mapped copy-on-write from the template,
 * machine state restored, a fresh seed and the host's wall clock queued so
 * the guest applies them before any user code.
 */
KF_API int kf_spawn(struct kf_template *tmpl, struct kf_clone **out);

enum kf_exec_lang {
	KF_EXEC_SH = 0,
	KF_EXEC_PYTHON = 1,
};

typedef void (*kf_output_fn)(void *arg, int stream, const void *buf, size_t len);

struct kf_exec_req {
	enum kf_exec_lang lang;
	const char *code;
	size_t code_len;
	const void *stdin_data;	/* may be NULL */
	size_t stdin_len;
	unsigned int timeout_ms;	/* 0: no timeout */
	kf_output_fn on_output;	/* NULL: collect into the result buffers */
	void *arg;
	/*
	 * Caller limits; past one the clone is stopped (kf_reset() or destroy it)
	 * and kf_exec() fails with the errno given, the result holding what came
	 * before. Host and sibling clones are never affected.
	 */
	size_t max_output;	/* stdout + stderr bytes: -EMSGSIZE; 0: KF_EXEC_OUTPUT_MAX */
	/*
	 * Guest pages the exec may newly copy from the template (the host
	 * memory it costs), checked every KF_EXEC_DIRTY_POLL_MS and at the end:
	 * -EDQUOT; 0: no limit. Pages the clone owns already are not counted
	 * again: with the kmod backend those include the prefaulted working set
	 * and every copy an earlier exec made, which kf_reset() keeps.
	 */
	uint64_t max_dirty;
};

#define KF_EXEC_OUTPUT_MAX	(256u << 20)
#define KF_EXEC_DIRTY_POLL_MS	50

struct kf_exec_result {
	int exit_code;		/* 0..255, or 128 + signal */
	int signal;		/* non-zero if killed by a signal */
	int timed_out;		/* the clone must be reset or destroyed */
	char *out;		/* collected stdout (malloc'd, NUL-terminated) */
	size_t out_len;
	char *err;		/* collected stderr */
	size_t err_len;
	uint64_t exec_ns;	/* kf_exec() call -> EXIT frame */
	uint64_t first_byte_ns;	/* kf_exec() call -> first byte from the guest */
	uint64_t exits;		/* KVM_RUN returns to user space during the exec */
};

/*
 * Run code in the clone and wait for its exit status. Returns 0 when the
 * code ran (whatever its exit status), -ETIMEDOUT on timeout (result still
 * holds partial output), -EMSGSIZE / -EDQUOT past max_output / max_dirty,
 * -EFAULT when the guest crashed (triple fault, halt), -EPROTO when it broke
 * the protocol, other -errno when the clone failed.
 */
KF_API int kf_exec(struct kf_clone *clone, const struct kf_exec_req *req, struct kf_exec_result *res);
KF_API void kf_exec_result_free(struct kf_exec_result *res);

/* Return the clone to the template state in place, then re-seed it; ends a session. */
KF_API int kf_reset(struct kf_clone *clone);

/*
 * Sessions (python templates; since 0.3). After kf_session_begin(), every
 * KF_EXEC_PYTHON kf_exec() on the clone runs in place in the clone's warm
 * interpreter, in one __main__ kept from exec to exec (exec "x = 41", then
 * "print(x + 1)" prints 42), until kf_reset() ends the session and brings
 * back the template's fresh interpreter (a new clone has one too). Each
 * exec has its own stdin, stdout, stderr, exit status, timeout and limits.
 * sys.exit(N) and exceptions end only the exec (status N, 1). Code that ends
 * the interpreter (os._exit, a signal) gives that status as the exec's and
 * loses the session: kf_session_state() is then KF_SESSION_LOST and every
 * later Python kf_exec() fails with -ESRCH until kf_reset(). A timeout, or
 * passing max_output / max_dirty, leaves the clone needing kf_reset() as
 * always, which takes the session with it. KF_EXEC_SH execs fail with
 * -EOPNOTSUPP while a session is active (they run again once it is lost).
 *
 * kf_session_begin(): 0 (also when one is active already), -EOPNOTSUPP if
 * the template is not a python one, -ESRCH if the session was lost, -EBUSY
 * if the clone needs kf_reset() after a timeout.
 */
enum kf_session_state {
	KF_SESSION_NONE = 0,	/* Python execs fork from the warm interpreter */
	KF_SESSION_ACTIVE = 1,	/* Python execs run in place, state kept */
	KF_SESSION_LOST = 2,	/* the interpreter ended; kf_reset() for a fresh one */
};

KF_API int kf_session_begin(struct kf_clone *clone);
KF_API enum kf_session_state kf_session_state(const struct kf_clone *clone);

/* Release the clone; the teardown itself runs off the caller's thread. */
KF_API void kf_destroy(struct kf_clone *clone);

KF_API uint64_t kf_clone_id(const struct kf_clone *clone);
KF_API uint64_t kf_clone_spawn_ns(const struct kf_clone *clone);	/* last spawn or reset */

/* Guest-physical memory of a clone, for tests and tracing: read-only view. */
KF_API int kf_clone_read_mem(struct kf_clone *clone, uint64_t gpa, void *buf, size_t len);

/* --- privileges ---------------------------------------------------------- */

/*
 * Drop what the calling thread can do to what running clones needs: sets
 * no_new_privs and loads a seccomp allow-list (libseccomp) that still lets
 * it spawn, exec in, reset and destroy clones of templates it has already
 * opened, on either backend, and write to fds it holds. Opening a file
 * fails with EACCES (glibc's malloc opens one when a thread's arena
 * shrinks, and copes). Anything else (socket, execve, fork, ptrace, most
 * ioctls...) kills the whole process with SIGSYS; the kernel logs the
 * system call (audit type 1326).
 * Call it after kf_template_open() and before the first guest instruction.
 * It cannot be undone. Threads started afterwards inherit it.
 *
 * Flags: KF_SANDBOX_ALL_THREADS puts every thread of the process under the
 * filter (fails if one already has an incompatible filter); KF_SANDBOX_LOG
 * logs forbidden calls and lets them run, to find what a program needs.
 */
#define KF_SANDBOX_ALL_THREADS	(1u << 0)
#define KF_SANDBOX_LOG		(1u << 1)

KF_API int kf_sandbox_thread(unsigned int flags);

#ifdef __cplusplus
}
#endif
#endif /* KFORK_H */
