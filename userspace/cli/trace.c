// SPDX-License-Identifier: GPL-2.0-only
/* trace.c - `kfork trace`: live per-phase log2 histograms of every spawn, or one JSON line per spawn. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "bpf/trace.h"
#include "cli/cli.h"
#include "cli/trace.h"

#define EXIT_TRACE_FAILURE	CLI_EXIT_ERROR
#define TRACEFS			"/sys/kernel/tracing"
#define HIST_SLOTS		40

/* A phase runs from one libkfork stamp to the next; alt_from stands in when from is 0 (no output). */
static const struct phase {
	const char *name;
	const char *what;
	int from, to, alt_from;
} phases[] = {
	{ "vm", "kf_spawn() -> VM, memory, irqchip, vCPU created",
	  KF_TS_SPAWN_START, KF_TS_SPAWN_VM, -1 },
	{ "restore", "machine state restored", KF_TS_SPAWN_VM, KF_TS_SPAWN_RESTORED, -1 },
	{ "arm", "seed and clock queued, clone runnable", KF_TS_SPAWN_RESTORED, KF_TS_SPAWN_DONE, -1 },
	{ "first_byte", "kf_exec() request queued -> first byte from the guest",
	  KF_TS_EXEC_START, KF_TS_EXEC_FIRST_BYTE, -1 },
	{ "result", "first byte -> result in hand (from exec start if no output)",
	  KF_TS_EXEC_FIRST_BYTE, KF_TS_EXEC_DONE, KF_TS_EXEC_START },
};
#define NR_PHASES (int)(sizeof(phases) / sizeof(phases[0]))

struct hist {
	__u64 slots[HIST_SLOTS];
	__u64 count;
};

struct trace_state {
	struct tracer *tracer;
	int json;
	__u64 records, records_shown;
	struct hist phase[NR_PHASES];
	struct hist total;		/* sum of the phases */
	__u64 exits, user_exits, lib_exits, pio, stage2_faults, sptes, host_faults, host_cow_faults;
	__u64 mm_faults, mm_write_faults;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* --- exit reason names: tables, not switches --------------------------------- */

static const char *const vmx_reasons[] = {
	[0] = "exception_nmi", [1] = "external_interrupt", [2] = "triple_fault",
	[7] = "interrupt_window", [8] = "nmi_window", [9] = "task_switch", [10] = "cpuid",
	[12] = "hlt", [14] = "invlpg", [18] = "vmcall", [28] = "cr_access", [29] = "dr_access",
	[30] = "io_instruction", [31] = "msr_read", [32] = "msr_write", [33] = "invalid_state",
	[40] = "pause_instruction", [44] = "apic_access", [45] = "eoi_induced",
	[48] = "ept_violation", [49] = "ept_misconfig", [52] = "preemption_timer",
	[55] = "xsetbv", [56] = "apic_write",
};

static const struct { __u32 code; const char *name; } svm_reasons[] = {
	{ 0x060, "intr" }, { 0x061, "nmi" }, { 0x062, "smi" }, { 0x063, "init" },
	{ 0x064, "vintr" }, { 0x06e, "rdtsc" }, { 0x072, "cpuid" }, { 0x075, "pause" },
	{ 0x078, "hlt" }, { 0x079, "invlpg" }, { 0x07b, "ioio" }, { 0x07c, "msr" },
	{ 0x07f, "shutdown" }, { 0x081, "vmmcall" }, { 0x087, "rdtscp" }, { 0x08d, "xsetbv" },
	{ 0x400, "npf" }, { 0x401, "avic_incomplete_ipi" }, { 0x402, "avic_unaccelerated_access" },
};

static const char *const user_reasons[] = {
	[0] = "unknown", [1] = "exception", [2] = "io", [3] = "hypercall", [4] = "debug",
	[5] = "hlt", [6] = "mmio", [7] = "irq_window_open", [8] = "shutdown",
	[9] = "fail_entry", [10] = "intr", [17] = "internal_error", [24] = "system_event",
};

static const char *exit_reason_name(__u32 isa, __u32 reason, char *buf, size_t len)
{
	if (isa == KF_ISA_VMX && reason < sizeof(vmx_reasons) / sizeof(vmx_reasons[0]) &&
	    vmx_reasons[reason])
		return vmx_reasons[reason];
	if (isa == KF_ISA_SVM) {
		for (size_t i = 0; i < sizeof(svm_reasons) / sizeof(svm_reasons[0]); i++)
			if (svm_reasons[i].code == reason)
				return svm_reasons[i].name;
		if (reason < 0x10)
			return snprintf(buf, len, "read_cr%u", reason), buf;
		if (reason < 0x20)
			return snprintf(buf, len, "write_cr%u", reason - 0x10), buf;
		if (reason >= 0x40 && reason < 0x60)
			return snprintf(buf, len, "excp_%u", reason - 0x40), buf;
	}
	snprintf(buf, len, "0x%x", reason);
	return buf;
}

/* isa: unused, for the same shape as exit_reason_name() */
static const char *user_reason_name(__u32 isa, __u32 reason, char *buf, size_t len)
{
	(void)isa;
	if (reason < sizeof(user_reasons) / sizeof(user_reasons[0]) && user_reasons[reason])
		return user_reasons[reason];
	snprintf(buf, len, "%u", reason);
	return buf;
}

/* --- records ----------------------------------------------------------------- */

/* ns of one phase of rec, or -1 if a stamp is missing. */
static long long phase_ns(const struct kf_trace_rec *rec, const struct phase *p)
{
	__u64 from = rec->ts[p->from], to = rec->ts[p->to];

	if (!from && p->alt_from >= 0)
		from = rec->ts[p->alt_from];
	if (!from || !to || to < from)
		return -1;
	return (long long)(to - from);
}

static void hist_add(struct hist *h, __u64 ns)
{
	__u64 us = ns / 1000;
	int slot = 0;

	while (us > 1 && slot < HIST_SLOTS - 1) {	/* slot k: [2^k, 2^(k+1)) us, slot 0: 0..1 */
		us >>= 1;
		slot++;
	}
	h->slots[slot]++;
	h->count++;
}

/* In the manner of bcc's funclatency. */
static void hist_print(FILE *f, const struct hist *h, const char *name, const char *what)
{
	int lo = 0, hi = HIST_SLOTS - 1;
	__u64 max = 0;

	fprintf(f, "\n%s: %s (%llu spawns)\n", name, what, (unsigned long long)h->count);
	if (!h->count)
		return;
	while (!h->slots[lo])
		lo++;
	while (!h->slots[hi])
		hi--;
	for (int i = lo; i <= hi; i++)
		if (h->slots[i] > max)
			max = h->slots[i];
	fprintf(f, "%24s : count     distribution\n", "usecs");
	for (int i = lo; i <= hi; i++) {
		unsigned long long low = i ? 1ull << i : 0, high = (1ull << (i + 1)) - 1;
		int stars = (int)(h->slots[i] * 40 / max);
		char range[32];

		snprintf(range, sizeof(range), "%llu -> %llu", low, high);
		fprintf(f, "%24s : %-9llu |%-40.*s|\n", range, (unsigned long long)h->slots[i],
			stars, "****************************************");
	}
}

static int source_usable(const struct tracer *t, unsigned int src)
{
	const struct tracer_source *s = tracer_source(t, src);

	return s->attached && !s->silent;
}

/* null: the source is off or cannot fire here, so a 0 would be a lie. */
static void json_count(json_t *o, const struct tracer *t, const char *key, unsigned int src,
		       __u64 v)
{
	json_object_set_new(o, key, source_usable(t, src) ? json_integer((json_int_t)v) : json_null());
}

/* A reason table of src merged into dst's. */
static void reasons_merge(struct kf_trace_reason *dst, __u32 *nr, __u32 max, __u64 *other,
			  const struct kf_trace_reason *src, __u32 src_nr)
{
	for (__u32 i = 0; i < src_nr && i < max; i++) {
		__u32 j;

		for (j = 0; j < *nr && dst[j].reason != src[i].reason; j++)
			;
		if (j < *nr)
			dst[j].count += src[i].count;
		else if (*nr < max)
			dst[(*nr)++] = src[i];
		else
			*other += src[i].count;
	}
}

/* What a spawn and its exec counted together. */
static void counts_total(const struct kf_trace_rec *rec, struct kf_trace_counts *t)
{
	const struct kf_trace_counts *e = &rec->exec;

	*t = rec->spawn;
	t->isa = t->isa ? t->isa : e->isa;
	t->exits += e->exits;
	t->exits_other += e->exits_other;
	t->user_exits += e->user_exits;
	t->user_exits_other += e->user_exits_other;
	t->pio += e->pio;
	t->stage2_faults += e->stage2_faults;
	t->sptes += e->sptes;
	t->host_faults += e->host_faults;
	t->host_cow_faults += e->host_cow_faults;
	t->mm_faults += e->mm_faults;
	t->mm_write_faults += e->mm_write_faults;
	reasons_merge(t->exit_reasons, &t->nr_exit_reasons, KF_TRACE_EXIT_REASONS, &t->exits_other,
		      e->exit_reasons, e->nr_exit_reasons);
	reasons_merge(t->user_reasons, &t->nr_user_reasons, KF_TRACE_USER_REASONS,
		      &t->user_exits_other, e->user_reasons, e->nr_user_reasons);
}

static long long span_ns(const struct kf_trace_rec *rec, int from, int to)
{
	return rec->ts[from] && rec->ts[to] >= rec->ts[from] ?
	       (long long)(rec->ts[to] - rec->ts[from]) : -1;
}

/*
 * How long after libkfork's last stamp of a call the BPF clock read in its
 * probe: small and never negative when both read CLOCK_MONOTONIC, which is what
 * lets the stamps be set beside kernel events.
 */
static long long probe_lag_ns(const struct kf_trace_rec *rec)
{
	long long spawn = rec->probe_ns[0] && rec->ts[KF_TS_SPAWN_DONE] ?
			  (long long)(rec->probe_ns[0] - rec->ts[KF_TS_SPAWN_DONE]) : 0;
	long long exec = rec->probe_ns[1] && rec->ts[KF_TS_EXEC_DONE] ?
			 (long long)(rec->probe_ns[1] - rec->ts[KF_TS_EXEC_DONE]) : 0;

	if (spawn < 0 || exec < 0)
		return spawn < exec ? spawn : exec;
	return spawn > exec ? spawn : exec;
}

typedef const char *(*reason_name_fn)(__u32 isa, __u32 reason, char *buf, size_t len);

static void json_reasons(json_t *o, const char *key, const struct kf_trace_counts *c, int user,
			 reason_name_fn name)
{
	const struct kf_trace_reason *tab = user ? c->user_reasons : c->exit_reasons;
	__u32 nr = user ? c->nr_user_reasons : c->nr_exit_reasons;
	__u32 max = user ? KF_TRACE_USER_REASONS : KF_TRACE_EXIT_REASONS;
	__u64 other = user ? c->user_exits_other : c->exits_other;
	json_t *r = json_object();
	char buf[32];

	for (__u32 i = 0; i < nr && i < max; i++)
		json_object_set_new(r, name(c->isa, tab[i].reason, buf, sizeof(buf)),
				    json_integer(tab[i].count));
	json_object_set_new(r, "other", json_integer((json_int_t)other));
	json_object_set_new(o, key, r);
}

static void json_record(const struct tracer *t, const struct kf_trace_rec *rec,
			const struct kf_trace_counts *c)
{
	json_t *o, *phases_ns = json_object();
	long long sum = 0;

	for (int i = 0; i < NR_PHASES; i++) {
		long long ns = phase_ns(rec, &phases[i]);

		json_object_set_new(phases_ns, phases[i].name, ns < 0 ? json_null() : json_integer(ns));
		if (ns > 0)
			sum += ns;
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "pid", (json_int_t)rec->pid, "tid", (json_int_t)rec->tid,
		      "clone", (json_int_t)rec->clone_id, "status", (json_int_t)rec->status,
		      "phases_ns", phases_ns, "sum_ns", (json_int_t)sum,
		      "gap_ns", (json_int_t)span_ns(rec, KF_TS_SPAWN_DONE, KF_TS_EXEC_START),
		      "spawn_ns", (json_int_t)span_ns(rec, KF_TS_SPAWN_START, KF_TS_SPAWN_DONE),
		      "exec_ns", (json_int_t)span_ns(rec, KF_TS_EXEC_START, KF_TS_EXEC_DONE),
		      "probe_lag_ns", (json_int_t)probe_lag_ns(rec),
		      "lib_exits", (json_int_t)rec->lib_exits);
	if (!o)
		die("out of memory");
	json_count(o, t, "kvm_exits", KF_SRC_KVM_EXIT, c->exits);
	if (source_usable(t, KF_SRC_KVM_EXIT))
		json_reasons(o, "exit_reasons", c, 0, exit_reason_name);
	json_count(o, t, "user_exits", KF_SRC_USER_EXIT, c->user_exits);
	json_count(o, t, "user_exits_exec", KF_SRC_USER_EXIT, rec->exec.user_exits);
	if (source_usable(t, KF_SRC_USER_EXIT))
		json_reasons(o, "user_exit_reasons", c, 1, user_reason_name);
	json_count(o, t, "pio", KF_SRC_PIO, c->pio);
	json_count(o, t, "stage2_faults", KF_SRC_STAGE2_FAULT, c->stage2_faults);
	json_count(o, t, "stage2_sptes", KF_SRC_SPTE, c->sptes);
	json_count(o, t, "host_faults", KF_SRC_HOST_FAULT, c->host_faults);
	json_count(o, t, "host_cow_faults", KF_SRC_HOST_FAULT, c->host_cow_faults);
	json_count(o, t, "mm_faults", KF_SRC_MM_FAULT, c->mm_faults);
	json_count(o, t, "mm_write_faults", KF_SRC_MM_FAULT, c->mm_write_faults);
	json_print(o, stdout);
}

static void on_record(const struct kf_trace_rec *rec, void *arg)
{
	struct trace_state *st = arg;
	struct kf_trace_counts c;
	__u64 sum = 0;

	counts_total(rec, &c);
	st->records++;
	for (int i = 0; i < NR_PHASES; i++) {
		long long ns = phase_ns(rec, &phases[i]);

		if (ns >= 0) {
			hist_add(&st->phase[i], ns);
			sum += ns;
		}
	}
	hist_add(&st->total, sum);
	st->exits += c.exits;
	st->user_exits += c.user_exits;
	st->lib_exits += rec->lib_exits;
	st->pio += c.pio;
	st->stage2_faults += c.stage2_faults;
	st->sptes += c.sptes;
	st->host_faults += c.host_faults;
	st->host_cow_faults += c.host_cow_faults;
	st->mm_faults += c.mm_faults;
	st->mm_write_faults += c.mm_write_faults;
	if (st->json)
		json_record(st->tracer, rec, &c);
}

/* --- the terminal ---------------------------------------------------------------- */

static void print_counter(FILE *f, const struct trace_state *st, unsigned int src,
			  const char *name, __u64 v)
{
	const struct tracer_source *s = tracer_source(st->tracer, src);

	if (s->off)
		fprintf(f, "  %-34s off (--%s)\n", name,
			KF_SRC_BIT(src) & KF_SRC_PER_EXIT ? "exits" : "faults");
	else if (!s->attached || s->silent)
		fprintf(f, "  %-34s unavailable\n", name);
	else
		fprintf(f, "  %-34s %.1f\n", name, st->records ? (double)v / st->records : 0.0);
}

static void print_histograms(FILE *f, const struct trace_state *st, int clear)
{
	time_t now = time(NULL);
	char when[32];

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	if (clear)
		fputs("\033[H\033[2J", f);
	fprintf(f, "%s  %llu spawns traced in %s\n", when, (unsigned long long)st->records,
		tracer_binary(st->tracer));
	for (int i = 0; i < NR_PHASES; i++)
		hist_print(f, &st->phase[i], phases[i].name, phases[i].what);
	hist_print(f, &st->total, "total", "sum of the phases (spawn + exec, as libkfork measures)");
	fputs("\nper spawn (mean):\n", f);
	print_counter(f, st, KF_SRC_KVM_EXIT, "VM exits (kvm_exit)", st->exits);
	print_counter(f, st, KF_SRC_USER_EXIT, "exits to user space", st->user_exits);
	fprintf(f, "  %-34s %.1f\n", "KVM_RUN returns of the exec (lib)",
		st->records ? (double)st->lib_exits / st->records : 0.0);
	print_counter(f, st, KF_SRC_PIO, "port I/O", st->pio);
	print_counter(f, st, KF_SRC_STAGE2_FAULT, "stage-2 faults", st->stage2_faults);
	print_counter(f, st, KF_SRC_SPTE, "stage-2 entries installed", st->sptes);
	print_counter(f, st, KF_SRC_HOST_FAULT, "host user page faults", st->host_faults);
	print_counter(f, st, KF_SRC_HOST_FAULT, "  of which CoW breaks", st->host_cow_faults);
	print_counter(f, st, KF_SRC_MM_FAULT, "host mm faults (incl. KVM's)", st->mm_faults);
	print_counter(f, st, KF_SRC_MM_FAULT, "  of which writes", st->mm_write_faults);
	fflush(f);
}

static void report_sources(const struct tracer *t)
{
	int missing = 0, off = 0;

	for (unsigned int i = 0; i < KF_SRC_MAX; i++) {
		const struct tracer_source *s = tracer_source(t, i);

		if (!s->off)
			continue;
		if (!off++)
			fputs("kfork trace: not counted (per-page and per-VM-exit events slow spawns; "
			      "--faults, --exits count them):\n", stderr);
		fprintf(stderr, "kfork trace:   %s (%s)\n", s->figure, s->name);
	}
	for (unsigned int i = 0; i < KF_SRC_MAX; i++) {
		const struct tracer_source *s = tracer_source(t, i);

		if (s->off || (s->attached && !s->silent))
			continue;
		if (!missing++)
			fputs("kfork trace: unavailable here:\n", stderr);
		fprintf(stderr, "kfork trace:   %s (%s): %s\n", s->figure, s->name, s->why);
	}
	if (!missing)
		fprintf(stderr, "kfork trace: every figure available%s\n",
			off ? " (of those asked for)" : "");
}

/* Attached sources that never fired at all: their zeroes mean nothing. */
static void report_silent(const struct tracer *t, __u64 records)
{
	__u64 fired[KF_SRC_MAX + 1];

	if (tracer_fired(t, fired))
		return;
	for (unsigned int i = 1; i < KF_SRC_MAX; i++) {
		const struct tracer_source *s = tracer_source(t, i);

		if (s->attached && !s->silent && !fired[i] && records)
			fprintf(stderr, "kfork trace: %s attached but never fired: %s figures are zero\n",
				s->name, s->figure);
	}
	if (fired[KF_SRC_MAX])
		fprintf(stderr, "kfork trace: %llu records lost: ring buffer full\n",
			(unsigned long long)fired[KF_SRC_MAX]);
}

static int check_environment(void)
{
	if (geteuid()) {
		fputs("kfork trace: needs root (BPF and perf events: CAP_BPF, CAP_PERFMON); "
		      "run it with sudo\n", stderr);
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fputs("kfork trace: /sys/kernel/btf/vmlinux missing: this kernel has no BTF "
		      "(CONFIG_DEBUG_INFO_BTF), which CO-RE needs\n", stderr);
		return -ENOENT;
	}
	if (access(TRACEFS "/events", F_OK)) {
		/* Tracepoint attach goes through tracefs for the event ids. */
		if (mount("nodev", TRACEFS, "tracefs", 0, NULL)) {
			fprintf(stderr, "kfork trace: tracefs is not mounted at " TRACEFS
				" and mounting it failed (%s): mount -t tracefs nodev " TRACEFS "\n",
				strerror(errno));
			return -ENOENT;
		}
		fputs("kfork trace: mounted tracefs at " TRACEFS "\n", stderr);
	}
	return 0;
}

static void __attribute__((noreturn)) usage(int help)
{
	usage_exit("usage: kfork trace [-p PID] [--json] [--duration S] [--binary PATH] [--faults]\n"
	      "                   [--exits] [--sources LIST] [-v]\n"
	      "  live per-phase latency histograms of every spawn, refreshed every second;\n"
	      "  --json: one JSON line per completed spawn instead; --binary: the program\n"
	      "  that links libkfork (default: this kfork, or PID's executable);\n"
	      "  --faults: also count stage-2 faults and entries and host page faults\n"
	      "  (per-page events: slows spawns down); --exits: also count VM exits by\n"
	      "  reason, port I/O and exits to user space in the kernel (per-exit events:\n"
	      "  slows execs down; libkfork's own count of KVM_RUN returns is always\n"
	      "  there); --sources:\n"
	      "  exactly these optional\n"
	      "  attach points, comma-separated (kvm_exit,kvm_userspace_exit,kvm_pio,\n"
	      "  kvm_page_fault,kvm_mmu_set_spte,page_fault_user,handle_mm_fault; none)\n"
	      "  -p PID: only that process; --duration S: stop after S seconds; -h, --help: this text\n",
	      help);
}

/* "a,b,c" or "none": exactly these optional sources. */
static int parse_sources(const char *list, unsigned int *out)
{
	char buf[256], *save = NULL;
	unsigned int mask = 0;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -1;
	for (char *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		int src = strcmp(n, "none") ? tracer_source_by_name(n) : KF_SRC_USDT;

		if (src < 0) {
			fprintf(stderr, "kfork trace: --sources: no attach point %s\n", n);
			return -1;
		}
		if (src != KF_SRC_USDT)
			mask |= KF_SRC_BIT(src);
	}
	*out = mask;
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
		{ "duration", required_argument, NULL, 'd' }, { "binary", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' }, { "faults", no_argument, NULL, 'F' },
		{ "sources", required_argument, NULL, 'S' }, { "exits", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct trace_state st = { 0 };
	struct timespec t0, now;
	const char *binary = NULL;
	double duration = 0, last = 0;
	unsigned int sources = KF_SRC_DEFAULT;
	int c, err, verbose = 0, tty;
	pid_t pid = 0;
	char msg[512];

	while ((c = getopt_long(argc, argv, "p:jd:b:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pid = (pid_t)parse_count("-p", optarg, 1, INT_MAX); break;
		case 'j': st.json = 1; break;
		case 'd': duration = parse_seconds_ms("--duration", optarg, 4294967.0) / 1e3; break;
		case 'b': binary = optarg; break;
		case 'v': verbose = 1; break;
		case 'F': sources |= KF_SRC_PER_PAGE; break;
		case 'E': sources |= KF_SRC_PER_EXIT; break;
		case 'S': if (parse_sources(optarg, &sources)) usage(0); break;
		case 'h': usage(1);
		default: usage(0);
		}
	}
	if (optind != argc)
		usage(0);
	if (check_environment())
		return EXIT_TRACE_FAILURE;
	err = tracer_open(pid, binary, sources, verbose, on_record, &st, &st.tracer, msg, sizeof(msg));
	if (err) {
		fprintf(stderr, "kfork trace: %s\n", msg);
		return EXIT_TRACE_FAILURE;
	}
	report_sources(st.tracer);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	tty = !st.json && isatty(STDOUT_FILENO);
	fprintf(stderr, "kfork trace: tracing spawns in %s%s; Ctrl-C to stop\n",
		tracer_binary(st.tracer), pid ? " (one process)" : "");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop) {
		double el;

		err = tracer_poll(st.tracer, 100);
		if (err < 0) {
			fprintf(stderr, "kfork trace: polling the ring buffer: %s\n", strerror(-err));
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		el = (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if (duration && el >= duration)
			break;
		if (!st.json && el - last >= 1.0) {
			last = el;
			if (tty || st.records != st.records_shown)
				print_histograms(stdout, &st, tty);
			st.records_shown = st.records;
		}
	}
	/* Spawns that completed before the stop are still in the ring buffer. */
	while (tracer_poll(st.tracer, 0) > 0)
		;
	if (!st.json)
		print_histograms(stdout, &st, 0);
	report_silent(st.tracer, st.records);
	fprintf(stderr, "kfork trace: %llu spawns recorded\n", (unsigned long long)st.records);
	tracer_close(st.tracer);
	return err < 0 ? EXIT_TRACE_FAILURE : 0;
}
