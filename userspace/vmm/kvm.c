// SPDX-License-Identifier: LGPL-2.1-or-later
/* kvm.c - opens /dev/kvm once and caches the host's capabilities, CPUID and MSR list. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/error.h"
#include "vmm/kvm.h"

static struct kvm_host host;
static int host_err;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static struct kvm_cpuid2 *kvm_host_get_cpuid(int fd)
{
	struct kvm_cpuid2 *cpuid;

	for (int nent = 64; nent <= 4096; nent *= 2) {
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return NULL;
		cpuid->nent = nent;
		if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			return cpuid;
		free(cpuid);
		if (errno != E2BIG)
			return NULL;
	}
	errno = E2BIG;
	return NULL;
}

/*
 * Turn what KVM supports into what the guest sees. KVM reports the APIC ID of
 * whichever host CPU answered; vCPU 0 has APIC ID 0, and normalising it makes
 * a template compare equal from any host CPU. KVM does not report the
 * "running under a hypervisor" bit; without it Linux never looks at KVM's
 * leaves, so it has no kvmclock and falls back to calibrating the TSC against
 * the PIT, which fails on a loaded nested host and hangs the boot.
 * Nested virtualisation (VMX, SVM) is hidden: a guest needs none, and one
 * running its own L2 guest would be in guest mode when a reset restores its
 * registers, which KVM would then apply to L2 (SECURITY.md).
 */
static void kvm_host_fix_cpuid(struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ebx &= 0x00ffffff;
			e->ecx |= 1u << 31;	/* X86_FEATURE_HYPERVISOR */
			e->ecx &= ~(1u << 5);	/* X86_FEATURE_VMX */
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = 0;
		} else if (e->function == 0x80000001) {
			e->ecx &= ~(1u << 2);	/* X86_FEATURE_SVM */
		} else if (e->function == 0x8000000a) {
			e->eax = e->ebx = e->ecx = e->edx = 0;	/* SVM's features */
		} else if (e->function == 0x8000001e) {
			e->eax = 0;
		}
	}
}

static struct kvm_msr_list *kvm_host_get_msrs(int fd)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;

	if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(__u32));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

static void kvm_host_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		host_err = kf_fail(-errno, "open /dev/kvm (is KVM enabled and are you in group kvm?)");
		return;
	}
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		host_err = kf_reject(-ENOTSUP, "KVM_GET_API_VERSION: not %d", KVM_API_VERSION);
		goto close_fd;
	}
	host.run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (host.run_size <= 0) {
		host_err = kf_fail(-errno, "KVM_GET_VCPU_MMAP_SIZE");
		goto close_fd;
	}
	host.has_xsave = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	host.xsave2_size = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (host.xsave2_size < 0)
		host.xsave2_size = 0;
	host.has_xcrs = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	host.has_debugregs = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	host.has_vcpu_events = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
	host.has_coalesced_pio = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) > 0;
	host.has_pre_fault = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY) > 0;
	host.cpuid = kvm_host_get_cpuid(fd);
	if (!host.cpuid) {
		host_err = kf_fail(-errno, "KVM_GET_SUPPORTED_CPUID");
		goto close_fd;
	}
	kvm_host_fix_cpuid(host.cpuid);
	host.msrs = kvm_host_get_msrs(fd);
	if (!host.msrs) {
		host_err = kf_fail(-errno, "KVM_GET_MSR_INDEX_LIST");
		goto free_cpuid;
	}
	host.fd = fd;
	return;

free_cpuid:
	free(host.cpuid);
	host.cpuid = NULL;
close_fd:
	close(fd);
}

int kvm_host_get(const struct kvm_host **out)
{
	pthread_once(&host_once, kvm_host_open);
	if (host_err)
		return kf_fail(host_err, "open /dev/kvm");
	*out = &host;
	return 0;
}
