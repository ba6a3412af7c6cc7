// SPDX-License-Identifier: GPL-2.0-only
/* floor.c - the raw KVM floor: KVM_CREATE_VM + KVM_CREATE_VCPU + one KVM_RUN to HLT of a one-page guest. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

/*
 * The least any VMM must do to run one guest instruction: a VM, one page of
 * memory holding HLT at the real-mode reset-free entry 0:0, a vCPU, one
 * KVM_RUN that returns KVM_EXIT_HLT (no in-kernel irqchip, so HLT exits).
 * Teardown (close vCPU and VM: KVM destroys the VM on the last close) is timed
 * on its own, as it is off the caller's path in libkfork too.
 */
enum floor_step { F_CREATE_VM, F_MEMSLOT, F_CREATE_VCPU, F_RUN, F_TOTAL, F_TEARDOWN, F_NR };
static const char *const floor_step_name[] = {
	[F_CREATE_VM] = "create_vm", [F_MEMSLOT] = "memslot", [F_CREATE_VCPU] = "create_vcpu",
	[F_RUN] = "run_to_hlt", [F_TOTAL] = "total", [F_TEARDOWN] = "teardown",
};
_Static_assert(sizeof(floor_step_name) / sizeof(floor_step_name[0]) == F_NR, "floor_step_name");

static int floor_once(int kvm, int run_size, uint8_t *page, double us[F_NR], char *err, size_t errlen)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = 4096, .userspace_addr = (uintptr_t)page,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	struct kvm_run *run;
	uint64_t t0, t1, t2, t3, t4, t5;
	int vm, vcpu, ret = -1;

	t0 = bench_now_ns();
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	t1 = bench_now_ns();
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		goto close_vm;
	}
	t2 = bench_now_ns();
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto close_vm;
	}
	t3 = bench_now_ns();
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		snprintf(err, errlen, "mmap of the vCPU's kvm_run: %s", strerror(errno));
		goto close_vcpu;
	}
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs)) {
		snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
		goto unmap_run;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) || ioctl(vcpu, KVM_SET_REGS, &regs)) {
		snprintf(err, errlen, "KVM_SET_SREGS/KVM_SET_REGS: %s", strerror(errno));
		goto unmap_run;
	}
	if (ioctl(vcpu, KVM_RUN, 0)) {
		snprintf(err, errlen, "KVM_RUN: %s", strerror(errno));
		goto unmap_run;
	}
	t4 = bench_now_ns();
	if (run->exit_reason != KVM_EXIT_HLT) {
		snprintf(err, errlen, "KVM_RUN: exit reason %u, expected KVM_EXIT_HLT", run->exit_reason);
		goto unmap_run;
	}
	munmap(run, run_size);
	close(vcpu);
	close(vm);
	t5 = bench_now_ns();
	us[F_CREATE_VM] = (t1 - t0) / 1e3;
	us[F_MEMSLOT] = (t2 - t1) / 1e3;
	us[F_CREATE_VCPU] = (t3 - t2) / 1e3;
	us[F_RUN] = (t4 - t3) / 1e3;
	us[F_TOTAL] = (t4 - t0) / 1e3;
	us[F_TEARDOWN] = (t5 - t4) / 1e3;
	return 0;
unmap_run:
	munmap(run, run_size);
close_vcpu:
	close(vcpu);
close_vm:
	close(vm);
	return ret;
}

int floor_main(int argc, char **argv, struct jw *w)
{
	struct series s[F_NR] = { 0 };
	int n = 1000, warmup = 20, opt, kvm, run_size, failed = 0;
	char err[256] = "";
	uint8_t *page;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n') {
			fprintf(stderr, "usage: kfork-bench floor [-n N]\n");
			return -1;
		}
		n = atoi(optarg);
	}
	jw_obj(w, NULL);
	jw_str(w, "section", "floor");
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(err, sizeof(err), "open /dev/kvm: %s", strerror(errno));
		jw_str(w, "unavailable", err);
		jw_obj_end(w);
		return 0;
	}
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (run_size <= 0 || page == MAP_FAILED) {
		jw_str(w, "unavailable", "KVM_GET_VCPU_MMAP_SIZE or mmap failed");
		jw_obj_end(w);
		close(kvm);
		return 0;
	}
	memset(page, 0xf4, 4096);	/* HLT everywhere */
	for (int i = 0; i < warmup + n; i++) {
		double us[F_NR];

		if (floor_once(kvm, run_size, page, us, err, sizeof(err))) {
			failed++;
			if (failed > 10)
				break;
			continue;
		}
		for (int k = 0; i >= warmup && k < F_NR; k++)
			series_add(&s[k], us[k]);
	}
	jw_int(w, "n", s[F_TOTAL].n);
	jw_int(w, "failed", failed);
	if (failed)
		jw_str(w, "last_error", err);
	jw_obj(w, "samples_us");
	for (int k = 0; k < F_NR; k++)
		jw_series(w, floor_step_name[k], &s[k]);
	jw_obj_end(w);
	jw_obj_end(w);
	fprintf(stderr, "floor: %zu runs, total p50 %.0f us p99 %.0f us, teardown p50 %.0f us\n",
		s[F_TOTAL].n, series_pct(&s[F_TOTAL], .5), series_pct(&s[F_TOTAL], .99),
		series_pct(&s[F_TEARDOWN], .5));
	for (int k = 0; k < F_NR; k++)
		series_free(&s[k]);
	munmap(page, 4096);
	close(kvm);
	return 0;
}
