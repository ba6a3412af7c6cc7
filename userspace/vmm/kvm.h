/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kvm.h - the process-wide /dev/kvm handle and what it reports about the host. */
#ifndef KF_VMM_KVM_H
#define KF_VMM_KVM_H

#include <linux/kvm.h>

struct kvm_host {
	int fd;				/* /dev/kvm */
	int run_size;			/* KVM_GET_VCPU_MMAP_SIZE */
	int xsave2_size;		/* KVM_CAP_XSAVE2, 0 if absent */
	int has_xsave;
	int has_xcrs;
	int has_debugregs;
	int has_vcpu_events;
	int has_coalesced_pio;
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msrs;	/* KVM_GET_MSR_INDEX_LIST */
};

/* Open /dev/kvm once per process; later calls return the same host. */
int kvm_host_get(const struct kvm_host **out);

#endif
