// SPDX-License-Identifier: LGPL-2.1-or-later
/* vm.c - creates and destroys a VM: memory slot, irqchip, PIT, vCPU. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/error.h"
#include "vmm/kvm.h"
#include "vmm/vm.h"

int vm_create(struct vm *vm, const char *name, uint8_t *mem, uint64_t mem_size)
{
	const struct kvm_host *host;
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = mem_size,
		.userspace_addr = (uintptr_t)mem,
	};
	struct kvm_pit_config pit = { .flags = 0 };
	__u64 idmap = VM_IDMAP_ADDR;
	int err;

	memset(vm, 0, sizeof(*vm));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->fd = vm->vcpu_fd = -1;
	uart_init(&vm->uart);
	err = kvm_host_get(&host);
	if (err)
		return err;
	if (mem_size == 0 || mem_size > VM_MEM_MAX || mem_size % VM_PAGE_SIZE)
		return kf_reject(-EINVAL, "%s: guest memory size %llu", name,
			       (unsigned long long)mem_size);

	vm->fd = ioctl(host->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return kf_fail(-errno, "KVM_CREATE_VM for %s", name);
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		err = kf_fail(-errno, "KVM_SET_USER_MEMORY_REGION on %s", name);
		goto close_vm;
	}
	vm->mem = mem;
	vm->mem_size = mem_size;
	/* Intel needs these below 4 GiB outside RAM; AMD ignores them. */
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, VM_TSS_ADDR) < 0 ||
	    ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		err = kf_fail(-errno, "KVM_SET_TSS_ADDR on %s", name);
		goto close_vm;
	}
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		err = kf_fail(-errno, "KVM_CREATE_IRQCHIP on %s", name);
		goto close_vm;
	}
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
		err = kf_fail(-errno, "KVM_CREATE_PIT2 on %s", name);
		goto close_vm;
	}
	vm->vcpu_fd = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0) {
		err = kf_fail(-errno, "KVM_CREATE_VCPU on %s", name);
		goto close_vm;
	}
	vm->run_size = host->run_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		err = kf_fail(-errno, "mmap kvm_run of %s", name);
		goto close_vcpu;
	}
	err = vm_coalesce_uart(vm);
	if (err)
		goto unmap_run;
	return 0;

unmap_run:
	munmap(vm->run, vm->run_size);
	vm->run = NULL;
close_vcpu:
	close(vm->vcpu_fd);
	vm->vcpu_fd = -1;
close_vm:
	close(vm->fd);
	vm->fd = -1;
	vm->mem = NULL;
	return err;
}

/* Guest memory belongs to whoever passed it in; it is not unmapped here. */
void vm_destroy(struct vm *vm)
{
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->fd >= 0)
		close(vm->fd);
	uart_free(&vm->uart);
	vm->run = NULL;
	vm->vcpu_fd = vm->fd = -1;
}

#define RING_MAX \
	((VM_PAGE_SIZE - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))

int vm_pre_fault(struct vm *vm, uint64_t gpa, uint64_t size)
{
	struct kvm_pre_fault_memory range = { .gpa = gpa, .size = size };
	const struct kvm_host *host;
	int err = kvm_host_get(&host);

	if (err)
		return err;
	if (!host->has_pre_fault)
		return -EOPNOTSUPP;
	/*
	 * KVM advances gpa and shrinks size as it goes; EINTR and EAGAIN leave
	 * the rest for another call, but not forever.
	 */
	for (int stuck = 0; range.size && stuck < 100;) {
		uint64_t left = range.size;

		if (ioctl(vm->vcpu_fd, KVM_PRE_FAULT_MEMORY, &range) < 0 &&
		    errno != EINTR && errno != EAGAIN)
			return kf_fail(-errno, "KVM_PRE_FAULT_MEMORY [%#llx, +%#llx) on %s",
				       (unsigned long long)range.gpa,
				       (unsigned long long)range.size, vm->name);
		stuck = range.size < left ? 0 : stuck + 1;
	}
	return range.size ? kf_fail(-EAGAIN, "KVM_PRE_FAULT_MEMORY on %s made no progress", vm->name) : 0;
}

int vm_coalesce_uart(struct vm *vm)
{
	struct kvm_coalesced_mmio_zone zone = { .addr = UART_COM1_BASE, .size = 1, .pio = 1 };
	const struct kvm_host *host;
	int err = kvm_host_get(&host);

	if (err)
		return err;
	if (!host->has_coalesced_pio ||
	    (uint64_t)vm->run_size < (KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * VM_PAGE_SIZE)
		return 0;
	if (ioctl(vm->fd, KVM_REGISTER_COALESCED_MMIO, &zone) < 0)
		return kf_fail(-errno, "KVM_REGISTER_COALESCED_MMIO (UART) on %s", vm->name);
	vm->ring = (void *)((uint8_t *)vm->run + KVM_COALESCED_MMIO_PAGE_OFFSET * VM_PAGE_SIZE);
	return 0;
}

int vm_drain_coalesced(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *ring = vm->ring;
	uint32_t first, last;

	if (!ring)
		return 0;
	first = ring->first;
	/* Pairs with KVM's smp_wmb() before it advances last. */
	last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
	while (first != last) {
		const struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first % RING_MAX];
		uint8_t byte = e->data[0];

		/* Only the THR zone is registered; anything else is dropped. */
		if (e->pio == 1 && e->phys_addr == UART_COM1_BASE && e->len == 1 &&
		    uart_io(&vm->uart, 0, 1, &byte)) {
			int err = vm_irq_line(vm, UART_COM1_IRQ, vm->uart.regs.irq_level);

			if (err)
				return err;
		}
		first = (first + 1) % RING_MAX;
		__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	}
	return 0;
}

int vm_set_cpuid(struct vm *vm, const struct kvm_cpuid2 *cpuid)
{
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		return kf_fail(-errno, "KVM_SET_CPUID2 on %s", vm->name);
	return 0;
}

int vm_irq_line(struct vm *vm, int irq, int level)
{
	struct kvm_irq_level line = { .irq = irq, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &line) < 0)
		return kf_fail(-errno, "KVM_IRQ_LINE %d on %s", irq, vm->name);
	return 0;
}

void *vm_gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len)
{
	if (gpa >= vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

int vm_complete_io(struct vm *vm)
{
	int ret;

	vm->run->immediate_exit = 1;
	ret = ioctl(vm->vcpu_fd, KVM_RUN, 0);
	vm->run->immediate_exit = 0;
	if (ret < 0 && errno != EINTR)
		return kf_fail(-errno, "KVM_RUN (complete I/O) on %s", vm->name);
	return vm_drain_coalesced(vm);
}
