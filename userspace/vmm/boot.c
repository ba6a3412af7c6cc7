// SPDX-License-Identifier: LGPL-2.1-or-later
/* boot.c - PVH direct boot of a vmlinux ELF, and a flat 32-bit loader for test guests. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/error.h"
#include "vmm/boot.h"
#include "vmm/mbox.h"

/* The x86/HVM direct boot ABI (xen/include/public/arch-x86/hvm/start_info.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY	18
#define HVM_START_MAGIC			0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* Low memory layout used during boot (all below 640 KiB). */
#define BOOT_START_INFO	0x6000ULL
#define BOOT_MODLIST	0x6100ULL
#define BOOT_MEMMAP	0x6200ULL
#define BOOT_CMDLINE	0x7000ULL
#define BOOT_CMDLINE_MAX 4096
#define BOOT_EBDA	0x9fc00ULL
#define BOOT_HIGH	0x100000ULL

struct mapped_file {
	const uint8_t *data;
	size_t size;
};

static int file_map(const char *path, struct mapped_file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return kf_fail(-errno, "open %s", path);
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return kf_reject(-EINVAL, "%s: empty or unreadable", path);
	}
	f->size = st.st_size;
	f->data = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->data == MAP_FAILED)
		return kf_fail(-errno, "mmap %s", path);
	return 0;
}

static void file_unmap(struct mapped_file *f)
{
	munmap((void *)f->data, f->size);
}

/* Find the PVH 32-bit entry point in the ELF notes. */
static int pvh_find_entry(const struct mapped_file *f, const Elf64_Ehdr *eh, uint32_t *entry)
{
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(f->data + eh->e_phoff + i * sizeof(*ph));
		uint64_t off, end;

		if (ph->p_type != PT_NOTE)
			continue;
		if (ph->p_offset > f->size || ph->p_filesz > f->size - ph->p_offset)
			return -EINVAL;
		off = ph->p_offset;
		end = off + ph->p_filesz;
		while (off + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const void *)(f->data + off);
			uint64_t name = off + sizeof(*nh);
			uint64_t desc = name + ((nh->n_namesz + 3) & ~3u);

			off = desc + ((nh->n_descsz + 3) & ~3u);
			if (off > end)
				break;
			if (nh->n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh->n_namesz == 4 &&
			    !memcmp(f->data + name, "Xen", 4) && nh->n_descsz >= 4) {
				memcpy(entry, f->data + desc, 4);
				return 0;
			}
		}
	}
	return -ENOENT;
}

static int pvh_load_elf(struct vm *vm, const char *path, uint32_t *entry)
{
	struct mapped_file f;
	const Elf64_Ehdr *eh;
	int err = file_map(path, &f);

	if (err)
		return err;
	eh = (const void *)f.data;
	if (f.size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > f.size || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > f.size - eh->e_phoff) {
		err = kf_reject(-ENOEXEC, "%s: not an x86-64 ELF vmlinux (a bzImage? use vmlinux)", path);
		goto unmap;
	}
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(f.data + eh->e_phoff + i * sizeof(*ph));
		uint8_t *dst;

		if (ph->p_type != PT_LOAD)
			continue;
		dst = vm_gpa_ptr(vm, ph->p_paddr, ph->p_memsz);
		if (!dst || ph->p_filesz > ph->p_memsz || ph->p_offset > f.size ||
		    ph->p_filesz > f.size - ph->p_offset) {
			err = kf_reject(-EINVAL, "%s: segment at %#llx does not fit %llu MiB of guest RAM",
				      path, (unsigned long long)ph->p_paddr,
				      (unsigned long long)(vm->mem_size >> 20));
			goto unmap;
		}
		memcpy(dst, f.data + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	if (pvh_find_entry(&f, eh, entry))
		err = kf_reject(-ENOEXEC, "%s: no PVH entry note (build the guest with CONFIG_PVH=y)",
			      path);
unmap:
	file_unmap(&f);
	return err;
}

/* 32-bit flat protected mode, paging off: the state both loaders enter in. */
static int boot_set_flat32(struct vm *vm, uint64_t rip, uint64_t rbx, uint64_t rsp)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_segment tr = {
		.base = 0, .limit = 0x67, .selector = 0x18, .type = 0xb, .present = 1, .s = 0,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 0x2, .rip = rip, .rbx = rbx, .rsp = rsp };

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return kf_fail(-errno, "KVM_GET_SREGS on %s", vm->name);
	data.type = 0x3;
	data.selector = 0x10;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tr;
	sregs.cr0 = 0x11;	/* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return kf_fail(-errno, "KVM_SET_SREGS on %s", vm->name);
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return kf_fail(-errno, "KVM_SET_REGS on %s", vm->name);
	return 0;
}

/* LINT0 ExtINT, LINT1 NMI: the PIC reaches the CPU with no MP table or ACPI. */
static int boot_set_lapic_lints(struct vm *vm)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)(lapic.regs + 0x350);
	uint32_t *lvt1 = (uint32_t *)(lapic.regs + 0x360);

	if (ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return kf_fail(-errno, "KVM_GET_LAPIC on %s", vm->name);
	*lvt0 = (*lvt0 & ~0x700u) | (7u << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (4u << 8);
	if (ioctl(vm->vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
		return kf_fail(-errno, "KVM_SET_LAPIC on %s", vm->name);
	return 0;
}

int boot_pvh(struct vm *vm, const char *vmlinux, const char *initrd, const char *cmdline)
{
	struct hvm_start_info *si = vm_gpa_ptr(vm, BOOT_START_INFO, sizeof(*si));
	struct hvm_modlist_entry *mod = vm_gpa_ptr(vm, BOOT_MODLIST, sizeof(*mod));
	struct hvm_memmap_entry *map = vm_gpa_ptr(vm, BOOT_MEMMAP, 4 * sizeof(*map));
	char *cmd = vm_gpa_ptr(vm, BOOT_CMDLINE, BOOT_CMDLINE_MAX);
	gpa_t mbox = mbox_gpa(vm->mem_size);
	struct mapped_file rd;
	uint32_t entry = 0;
	uint64_t rd_addr;
	int err;

	if (!si || !mod || !map || !cmd || vm->mem_size < 64ULL << 20)
		return kf_reject(-EINVAL, "%s: a Linux guest needs at least 64 MiB", vm->name);
	/* The agent finds the mailbox through the command line (kfork.mbox=). */
	if (snprintf(cmd, BOOT_CMDLINE_MAX, "%s %s%#llx", cmdline, KF_MBOX_CMDLINE,
		     (unsigned long long)mbox) >= BOOT_CMDLINE_MAX)
		return kf_reject(-E2BIG, "%s: kernel command line over %d bytes", vm->name,
			       BOOT_CMDLINE_MAX);
	err = mbox_format(vm);
	if (err)
		return err;
	err = pvh_load_elf(vm, vmlinux, &entry);
	if (err)
		return err;
	err = file_map(initrd, &rd);
	if (err)
		return err;
	/* initrd at the top of RAM below the mailbox, page aligned, clear of the kernel at 16 MiB+. */
	rd_addr = (mbox - rd.size) & ~(VM_PAGE_SIZE - 1);
	if (rd.size > vm->mem_size / 2) {
		file_unmap(&rd);
		return kf_reject(-E2BIG, "%s: initrd %s (%zu MiB) too big for %llu MiB of RAM",
			       vm->name, initrd, rd.size >> 20,
			       (unsigned long long)(vm->mem_size >> 20));
	}
	memcpy(vm_gpa_ptr(vm, rd_addr, rd.size), rd.data, rd.size);
	mod->paddr = rd_addr;
	mod->size = rd.size;
	file_unmap(&rd);

	map[0] = (struct hvm_memmap_entry){ .addr = 0, .size = BOOT_EBDA, .type = 1 };
	map[1] = (struct hvm_memmap_entry){ .addr = BOOT_EBDA, .size = BOOT_HIGH - BOOT_EBDA,
					    .type = 2 };
	map[2] = (struct hvm_memmap_entry){ .addr = BOOT_HIGH, .size = mbox - BOOT_HIGH, .type = 1 };
	/* Reserved: never the kernel's RAM, so the agent may map it through /dev/mem. */
	map[3] = (struct hvm_memmap_entry){ .addr = mbox, .size = KF_MBOX_SIZE, .type = 2 };
	*si = (struct hvm_start_info){
		.magic = HVM_START_MAGIC, .version = 1, .nr_modules = 1,
		.modlist_paddr = BOOT_MODLIST, .cmdline_paddr = BOOT_CMDLINE,
		.memmap_paddr = BOOT_MEMMAP, .memmap_entries = 4,
	};
	err = boot_set_lapic_lints(vm);
	if (err)
		return err;
	return boot_set_flat32(vm, entry, BOOT_START_INFO, 0);
}

int boot_flat(struct vm *vm, const char *image)
{
	struct mapped_file f;
	uint8_t *dst;
	int err = file_map(image, &f);

	if (err)
		return err;
	dst = vm_gpa_ptr(vm, BOOT_FLAT_ADDR, f.size);
	if (!dst) {
		file_unmap(&f);
		return kf_reject(-E2BIG, "%s: image does not fit guest RAM", image);
	}
	memcpy(dst, f.data, f.size);
	file_unmap(&f);
	/* Stack grows down from the load address. */
	return boot_set_flat32(vm, BOOT_FLAT_ADDR, 0, BOOT_FLAT_ADDR);
}
