// SPDX-License-Identifier: GPL-2.0-only
/* trace.c - loads and attaches kfork trace's BPF programs and says which figures are unavailable, and why. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "trace.h"
#include "trace.skel.h"

#define TRACEFS_EVENTS	"/sys/kernel/tracing/events"

struct tracer {
	struct trace_bpf *skel;
	struct ring_buffer *rb;
	tracer_rec_fn fn;
	void *arg;
	int ncpus;
	char binary[PATH_MAX];
	struct tracer_source src[KF_SRC_MAX];
};

/* What each optional source needs; KF_SRC_USDT is mandatory and attached apart. */
static const struct tracer_source_desc {
	const char *name;
	const char *event;	/* under TRACEFS_EVENTS; NULL: a kprobe */
	const char *figure;
	int silent_under_pvm;
} source_desc[KF_SRC_MAX] = {
	[KF_SRC_USDT] = { "usdt:kfork", NULL, "spawn phases", 0 },
	[KF_SRC_KVM_EXIT] = { "kvm:kvm_exit", "kvm/kvm_exit", "VM exits by reason", 1 },
	[KF_SRC_USER_EXIT] = { "kvm:kvm_userspace_exit", "kvm/kvm_userspace_exit",
			       "exits to user space (KVM_RUN returns)", 0 },
	[KF_SRC_PIO] = { "kvm:kvm_pio", "kvm/kvm_pio", "port I/O exits", 0 },
	[KF_SRC_STAGE2_FAULT] = { "kvm:kvm_page_fault", "kvm/kvm_page_fault",
				  "stage-2 (NPT/EPT) faults", 0 },
	[KF_SRC_SPTE] = { "kvmmmu:kvm_mmu_set_spte", "kvmmmu/kvm_mmu_set_spte",
			  "stage-2 entries installed", 0 },
	[KF_SRC_HOST_FAULT] = { "exceptions:page_fault_user", "exceptions/page_fault_user",
				"host user page faults and CoW breaks of the VMM thread", 0 },
	[KF_SRC_MM_FAULT] = { "kprobe:handle_mm_fault", NULL,
			      "host faults KVM takes on the guest's behalf (CoW copies of clone memory)", 0 },
};

static struct bpf_program *source_prog(struct trace_bpf *skel, unsigned int src)
{
	struct bpf_program *progs[KF_SRC_MAX] = {
		[KF_SRC_KVM_EXIT] = skel->progs.kvm_exit,
		[KF_SRC_USER_EXIT] = skel->progs.kvm_userspace_exit,
		[KF_SRC_PIO] = skel->progs.kvm_pio,
		[KF_SRC_STAGE2_FAULT] = skel->progs.kvm_page_fault,
		[KF_SRC_SPTE] = skel->progs.kvm_mmu_set_spte,
		[KF_SRC_HOST_FAULT] = skel->progs.page_fault_user,
		[KF_SRC_MM_FAULT] = skel->progs.handle_mm_fault,
	};

	return src < KF_SRC_MAX ? progs[src] : NULL;
}

/*
 * The skeleton's link slot of a program: trace_bpf__destroy() detaches what
 * sits there, including the USDT links the skeleton cannot attach by itself.
 */
static struct bpf_link **link_slot(struct trace_bpf *skel, const struct bpf_program *prog)
{
	static struct bpf_link *nowhere;
	struct bpf_object_skeleton *s = skel->skeleton;

	for (int i = 0; i < s->prog_cnt; i++)
		if (*s->progs[i].prog == prog)
			return s->progs[i].link;
	return &nowhere;	/* not reached: every program is in the skeleton */
}

static int verbose_libbpf;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* Attach failures are reported per figure below; libbpf's own lines only with -v. */
	if (!verbose_libbpf || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void source_why(struct tracer_source *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void source_why(struct tracer_source *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

/* Before load: a program whose attach point is missing is not loaded at all. */
static int source_exists(struct tracer_source *s, const struct tracer_source_desc *d)
{
	char path[256];

	if (!d->event) {
		if (access("/sys/bus/event_source/devices/kprobe/type", F_OK)) {
			source_why(s, "kprobes are not configured in this kernel (no kprobe PMU)");
			return 0;
		}
		return 1;
	}
	snprintf(path, sizeof(path), TRACEFS_EVENTS "/%s", d->event);
	if (access(path, F_OK)) {
		source_why(s, "tracepoint %s does not exist in this kernel%s", s->name,
			   !strncmp(d->event, "kvm", 3) ? " (KVM not loaded?)" : "");
		return 0;
	}
	return 1;
}

static void source_attach_failed(struct tracer_source *s, int err)
{
	if (err == -EPERM || err == -EACCES)
		source_why(s, "attach refused: %s (kernel lockdown or missing CAP_PERFMON)",
			   strerror(-err));
	else if (err == -ENOENT)
		source_why(s, "attach point not found: %s", strerror(-err));
	else
		source_why(s, "attach failed: %s", strerror(-err));
}

static int is_pvm(void)
{
	return !access("/sys/module/kvm_pvm", F_OK);
}

static int ring_record(void *ctx, void *data, size_t len)
{
	struct tracer *t = ctx;

	if (len < sizeof(struct kf_trace_rec))
		return 0;
	t->fn(data, t->arg);
	return 0;
}

static int attach_usdt(struct tracer *t, pid_t pid, char *msg, size_t msg_len)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, t->skel->obj) {
		const char *probe = bpf_program__name(prog);
		struct bpf_link *link;

		if (strcmp(bpf_program__section_name(prog), "usdt"))
			continue;
		link = bpf_program__attach_usdt(prog, pid ? pid : -1, t->binary, "kfork", probe, NULL);
		if (!link) {
			int err = -errno;

			snprintf(msg, msg_len, "attaching USDT kfork:%s in %s: %s%s", probe, t->binary,
				 strerror(-err), err == -ENOENT ?
				 " (not a kfork binary? pass the one that links libkfork with --binary)" : "");
			return err;
		}
		*link_slot(t->skel, prog) = link;
	}
	return 0;
}

int tracer_source_by_name(const char *name)
{
	for (int i = 0; i < KF_SRC_MAX; i++) {
		const char *n = source_desc[i].name, *colon = strchr(n, ':');

		if (!strcmp(name, n) || (colon && !strcmp(name, colon + 1)))
			return i;
	}
	return -1;
}

int tracer_open(pid_t pid, const char *binary, unsigned int sources, int verbose,
		tracer_rec_fn fn, void *arg, struct tracer **out, char *msg, size_t msg_len)
{
	struct tracer *t;
	int pvm = is_pvm();
	int err;

	verbose_libbpf = verbose;
	libbpf_set_print(libbpf_print);
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(msg, msg_len, "out of memory");
		return -ENOMEM;
	}
	t->fn = fn;
	t->arg = arg;
	if (!binary) {
		char self[32];

		snprintf(self, sizeof(self), pid ? "/proc/%d/exe" : "/proc/self/exe", (int)pid);
		if (!realpath(self, t->binary)) {
			err = -errno;
			snprintf(msg, msg_len, "resolving %s: %s", self, strerror(errno));
			goto free_tracer;
		}
	} else if (!realpath(binary, t->binary)) {
		err = -errno;
		snprintf(msg, msg_len, "--binary %s: %s", binary, strerror(errno));
		goto free_tracer;
	}
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		err = t->ncpus ? t->ncpus : -EINVAL;
		snprintf(msg, msg_len, "counting possible CPUs: %s", strerror(-err));
		goto free_tracer;
	}

	t->skel = trace_bpf__open();
	if (!t->skel) {
		err = -errno;
		snprintf(msg, msg_len, "opening the BPF object: %s", strerror(errno));
		goto free_tracer;
	}
	t->skel->rodata->target_pid = pid;
	t->src[KF_SRC_USDT].name = source_desc[KF_SRC_USDT].name;
	t->src[KF_SRC_USDT].figure = source_desc[KF_SRC_USDT].figure;
	for (unsigned int i = 1; i < KF_SRC_MAX; i++) {
		struct tracer_source *s = &t->src[i];

		s->name = source_desc[i].name;
		s->figure = source_desc[i].figure;
		if (!(sources & KF_SRC_BIT(i))) {
			s->off = 1;
			source_why(s, "not asked for");
			bpf_program__set_autoload(source_prog(t->skel, i), false);
		} else if (!source_exists(s, &source_desc[i]))
			bpf_program__set_autoload(source_prog(t->skel, i), false);
	}
	err = trace_bpf__load(t->skel);
	if (err) {
		snprintf(msg, msg_len, "loading the BPF programs: %s%s", strerror(-err),
			 err == -EPERM ? " (needs root: CAP_BPF and CAP_PERFMON)" : "");
		goto destroy_skel;
	}

	err = attach_usdt(t, pid, msg, msg_len);
	if (err)
		goto destroy_skel;
	t->src[KF_SRC_USDT].attached = 1;
	for (unsigned int i = 1; i < KF_SRC_MAX; i++) {
		struct bpf_program *prog = source_prog(t->skel, i);
		struct tracer_source *s = &t->src[i];
		struct bpf_link *link;

		if (!bpf_program__autoload(prog))
			continue;
		link = bpf_program__attach(prog);
		if (!link) {
			source_attach_failed(s, -errno);
			continue;
		}
		*link_slot(t->skel, prog) = link;
		s->attached = 1;
		if (pvm && source_desc[i].silent_under_pvm) {
			s->silent = 1;
			source_why(s, "attached, but never fires under this host's software KVM (kvm_pvm)");
		}
	}

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), ring_record, t, NULL);
	if (!t->rb) {
		err = -errno;
		snprintf(msg, msg_len, "creating the ring buffer: %s", strerror(errno));
		goto destroy_skel;
	}
	*out = t;
	return 0;

destroy_skel:
	trace_bpf__destroy(t->skel);
free_tracer:
	free(t);
	return err;
}

/*
 * Records are submitted without a wakeup (one per spawn would wake this
 * process in the middle of the next spawn, on the traced machine's CPUs):
 * sleep, then take what came.
 */
int tracer_poll(struct tracer *t, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	int n;

	if (timeout_ms > 0 && nanosleep(&ts, NULL) && errno != EINTR)
		return -errno;
	n = ring_buffer__consume(t->rb);
	return n == -EINTR ? 0 : n;
}

const struct tracer_source *tracer_source(const struct tracer *t, unsigned int src)
{
	return src < KF_SRC_MAX ? &t->src[src] : NULL;
}

int tracer_fired(const struct tracer *t, __u64 fired[KF_SRC_MAX + 1])
{
	__u64 *percpu = calloc(t->ncpus, sizeof(__u64));
	int fd = bpf_map__fd(t->skel->maps.fired);

	if (!percpu)
		return -ENOMEM;
	for (__u32 i = 0; i <= KF_SRC_MAX; i++) {
		fired[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, percpu))
			continue;
		for (int c = 0; c < t->ncpus; c++)
			fired[i] += percpu[c];
	}
	free(percpu);
	return 0;
}

const char *tracer_binary(const struct tracer *t)
{
	return t->binary;
}

void tracer_close(struct tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	trace_bpf__destroy(t->skel);
	free(t);
}
