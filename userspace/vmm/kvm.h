/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kvm.h - the process-wide /dev/kvm handle and what it reports about the host. */
#ifndef KF_VMM_KVM_H
#define KF_VMM_KVM_H

#include <linux/kvm.h>

/* Linux 6.10's uapi; the build's headers may be 6.1's. */
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY	236
struct kvm_pre_fault_memory {
	__u64 gpa;
	__u64 size;
	__u64 flags;
	__u64 padding[5];
};
#define KVM_PRE_FAULT_MEMORY	_IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

struct kvm_host {
	int fd;				/* /dev/kvm */
	int run_size;			/* KVM_GET_VCPU_MMAP_SIZE */
	int xsave2_size;		/* KVM_CAP_XSAVE2, 0 if absent */
	int has_xsave;
	int has_xcrs;
	int has_debugregs;
	int has_vcpu_events;
	int has_coalesced_pio;
	int has_pre_fault;	/* KVM_PRE_FAULT_MEMORY (Linux 6.10) */
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msrs;	/* KVM_GET_MSR_INDEX_LIST */
};

/* Open /dev/kvm once per process; later calls return the same host. */
int kvm_host_get(const struct kvm_host **out);

#endif
