// SPDX-License-Identifier: LGPL-2.1-or-later
/* tplfile.c - the versioned, checksummed template file: header, state, page bitmap, pages. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <zlib.h>

#include "lib/error.h"
#include "lib/internal.h"
#include "vmm/kvm.h"

#define TPL_MAGIC	"KFORKTPL"
#define TPL_VERSION	2	/* 2: a working set after the pages; 1 (none) is read too */
#define TPL_HDR_SIZE	4096
#define TPL_STATE_MAX	(16u << 20)

/* All fields little-endian; the header occupies the first 4 KiB. */
struct tpl_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	uint32_t crc;		/* zlib crc32 of the whole file with this field zero */
	uint32_t kind;		/* enum kf_template_kind */
	uint64_t mem_size;
	uint64_t state_off, state_len;
	uint64_t bitmap_off, bitmap_len;	/* one bit per guest page: stored or zero */
	uint64_t pages_off, pages_count;
	uint64_t created_unix;
	uint64_t wset_off, wset_count;	/* v2: KF_WSET_* entries after the pages; v1: 0 */
};

_Static_assert(sizeof(struct tpl_header) <= TPL_HDR_SIZE, "template header fits");

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < VM_PAGE_SIZE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

static int write_all(int fd, const void *buf, size_t len, uint32_t *crc)
{
	const uint8_t *p = buf;

	*crc = crc32(*crc, buf, len);
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int tplfile_write(const char *path, enum kf_template_kind kind, const uint8_t *mem,
		  uint64_t mem_size, const struct vm_state *st, const uint64_t *wset,
		  uint64_t wset_len)
{
	uint64_t npages = mem_size / VM_PAGE_SIZE, count = 0;
	static const uint8_t zeros[TPL_HDR_SIZE];
	struct tpl_header *hdr;
	uint8_t *head, *bitmap;
	char tmp[4096];
	uint32_t crc = 0;
	int fd, err;

	head = calloc(1, TPL_HDR_SIZE);
	bitmap = calloc(1, (npages + 7) / 8);
	if (!head || !bitmap) {
		err = kf_fail(-ENOMEM, "writing %s", path);
		goto free_bufs;
	}
	for (uint64_t i = 0; i < npages; i++)
		if (!page_is_zero(mem + i * VM_PAGE_SIZE)) {
			bitmap[i / 8] |= 1u << (i % 8);
			count++;
		}
	hdr = (struct tpl_header *)head;
	memcpy(hdr->magic, TPL_MAGIC, 8);
	hdr->version = TPL_VERSION;
	hdr->header_size = TPL_HDR_SIZE;
	hdr->kind = kind;
	hdr->mem_size = mem_size;
	hdr->state_off = TPL_HDR_SIZE;
	hdr->state_len = st->len;
	hdr->bitmap_off = hdr->state_off + st->len;
	hdr->bitmap_len = (npages + 7) / 8;
	hdr->pages_off = (hdr->bitmap_off + hdr->bitmap_len + VM_PAGE_SIZE - 1) & ~(VM_PAGE_SIZE - 1);
	hdr->pages_count = count;
	hdr->wset_off = hdr->pages_off + count * VM_PAGE_SIZE;
	hdr->wset_count = wset_len;
	hdr->file_size = hdr->wset_off + wset_len * sizeof(*wset);
	hdr->created_unix = time(NULL);

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = kf_fail(-errno, "create %s", tmp);
		goto free_bufs;
	}
	err = write_all(fd, head, TPL_HDR_SIZE, &crc);
	if (!err)
		err = write_all(fd, st->buf, st->len, &crc);
	if (!err)
		err = write_all(fd, bitmap, hdr->bitmap_len, &crc);
	if (!err)
		err = write_all(fd, zeros, hdr->pages_off - hdr->bitmap_off - hdr->bitmap_len, &crc);
	for (uint64_t i = 0; !err && i < npages; i++)
		if (bitmap[i / 8] & (1u << (i % 8)))
			err = write_all(fd, mem + i * VM_PAGE_SIZE, VM_PAGE_SIZE, &crc);
	if (!err && wset_len)
		err = write_all(fd, wset, wset_len * sizeof(*wset), &crc);
	if (!err) {
		hdr->crc = crc;
		if (pwrite(fd, &hdr->crc, sizeof(hdr->crc), offsetof(struct tpl_header, crc)) !=
		    sizeof(hdr->crc) || fsync(fd) < 0)
			err = -errno;
	}
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		err = kf_fail(err, "write template %s", path);
	}
free_bufs:
	free(bitmap);
	free(head);
	return err;
}

static int read_all(int fd, void *buf, size_t len, uint32_t *crc)
{
	uint8_t *p = buf;
	size_t left = len;

	while (left) {
		ssize_t n = read(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		p += n;
		left -= n;
	}
	*crc = crc32(*crc, buf, len);
	return 0;
}

/* The template must have been frozen with exactly this host's CPUID. */
static int tplfile_check_cpu(struct kf_template *tmpl)
{
	const struct kvm_cpuid2 *want = tmpl->state.item[ST_CPUID];
	const struct kvm_host *host;
	int err = kvm_host_get(&host);

	if (err)
		return err;
	if (want->nent != host->cpuid->nent)
		return kf_reject(-EINVAL, "%s was frozen on a different CPU (%u CPUID leaves, this host has %u); rebuild it here",
			       tmpl->name, want->nent, host->cpuid->nent);
	for (uint32_t i = 0; i < want->nent; i++) {
		const struct kvm_cpuid_entry2 *a = &want->entries[i], *b = &host->cpuid->entries[i];

		if (a->function != b->function || a->index != b->index || a->flags != b->flags ||
		    a->eax != b->eax || a->ebx != b->ebx || a->ecx != b->ecx || a->edx != b->edx)
			return kf_reject(-EINVAL, "%s was frozen on a different CPU (CPUID %#x.%u: %08x %08x %08x %08x, here %08x %08x %08x %08x); rebuild it here",
					 tmpl->name, a->function, a->index, a->eax, a->ebx, a->ecx,
					 a->edx, b->eax, b->ebx, b->ecx, b->edx);
	}
	if (!!tmpl->state.item[ST_XSAVE] != !!host->has_xsave)
		return kf_reject(-EINVAL, "%s was frozen on a CPU %s XSAVE; rebuild it here", tmpl->name,
			       host->has_xsave ? "without" : "with");
	return 0;
}

/*
 * What identifies this file's contents for kfork.ko's persistent templates:
 * device, inode, size and modification time, so a rebuilt (renamed into
 * place) or rewritten file gets a new key. The module keeps keys per user, so
 * only this user's own files can ever match.
 */
static void tplfile_key(const struct stat *st, uint8_t key[KF_TPL_KEY_SIZE])
{
	uint64_t id[4] = {
		st->st_dev, st->st_ino, st->st_size,
		(uint64_t)st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec,
	};

	_Static_assert(sizeof(id) == KF_TPL_KEY_SIZE, "key is the file's identity");
	memcpy(key, id, sizeof(id));
}

/*
 * The working set recorded at build (v2): guest frames, KF_WSET_WRITE for
 * written ones, each inside guest memory. Checked again by the module.
 */
static int tplfile_read_wset(int fd, const char *path, const struct tpl_header *hdr,
			     struct kf_template *tmpl, uint32_t *crc)
{
	uint64_t npages = hdr->mem_size / VM_PAGE_SIZE, *w;

	if (!hdr->wset_count)
		return 0;
	w = malloc(hdr->wset_count * sizeof(*w));
	if (!w)
		return kf_fail(-ENOMEM, "reading the working set of %s", path);
	if (read_all(fd, w, hdr->wset_count * sizeof(*w), crc)) {
		free(w);
		return kf_reject(-EIO, "%s: read failed", path);
	}
	for (uint64_t i = 0; i < hdr->wset_count; i++)
		if ((w[i] & ~(KF_WSET_GFN_MASK | KF_WSET_WRITE)) || (w[i] & KF_WSET_GFN_MASK) >= npages) {
			unsigned long long bad = w[i];

			free(w);
			return kf_reject(-EINVAL, "%s: corrupt working set (entry %llu: %#llx)", path,
					 (unsigned long long)i, bad);
		}
	tmpl->wset = w;
	tmpl->wset_len = hdr->wset_count;
	return 0;
}

int tplfile_path_key(const char *path, uint8_t key[KF_TPL_KEY_SIZE])
{
	struct stat st;

	if (stat(path, &st) < 0)
		return kf_fail(-errno, "template %s", path);
	tplfile_key(&st, key);
	return 0;
}

/* n bytes of guest memory at gpa (one page at most), from the stored pages: holes read as 0. */
static int tplfile_pread_guest(int fd, const struct tpl_header *hdr, const uint8_t *bitmap,
			       uint64_t gpa, void *buf, size_t n)
{
	uint64_t pfn = gpa / VM_PAGE_SIZE, rank = 0;

	if (gpa % VM_PAGE_SIZE + n > VM_PAGE_SIZE || gpa + n > hdr->mem_size)
		return -EINVAL;
	if (!(bitmap[pfn / 8] & (1u << (pfn % 8)))) {
		memset(buf, 0, n);
		return 0;
	}
	for (uint64_t i = 0; i < pfn / 8; i++)
		rank += __builtin_popcount(bitmap[i]);
	rank += __builtin_popcount(bitmap[pfn / 8] & ((1u << (pfn % 8)) - 1));
	if (rank >= hdr->pages_count ||
	    pread(fd, buf, n, hdr->pages_off + rank * VM_PAGE_SIZE + gpa % VM_PAGE_SIZE) !=
	    (ssize_t)n)
		return -EIO;
	return 0;
}

/*
 * Header, state and the mailbox header only: for a template the module
 * already holds (it checked every page when it was loaded). The file's
 * pages are not read, so their checksum is not checked here.
 */
static int tplfile_read_meta(int fd, const char *path, const struct tpl_header *hdr,
			     const uint8_t *bitmap, struct kf_template *tmpl)
{
	int err;

	tmpl->meta_only = 1;
	if (tmpl->mem_size < 2 * KF_MBOX_SIZE)
		return 0;
	err = tplfile_pread_guest(fd, hdr, bitmap, tmpl->mem_size - KF_MBOX_SIZE, &tmpl->mbox_hdr,
				  sizeof(tmpl->mbox_hdr));
	if (err)
		return kf_reject(err, "%s: reading the mailbox header failed", path);
	return 0;
}

int tplfile_read(const char *path, struct kf_template *tmpl, int meta_only)
{
	uint8_t *head = NULL, *bitmap = NULL, *page = NULL;
	struct tpl_header *hdr;
	uint64_t npages, count = 0;
	uint32_t crc = 0, want_crc;
	struct stat st;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kf_fail(-errno, "open template %s", path);
	head = malloc(TPL_HDR_SIZE);
	page = malloc(VM_PAGE_SIZE);
	if (!head || !page) {
		err = kf_fail(-ENOMEM, "reading %s", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || read_all(fd, head, TPL_HDR_SIZE, &crc)) {
		err = kf_reject(-EINVAL, "%s: not a kfork template (too short)", path);
		goto out;
	}
	hdr = (struct tpl_header *)head;
	if (memcmp(hdr->magic, TPL_MAGIC, 8)) {
		err = kf_reject(-EINVAL, "%s: not a kfork template (bad magic)", path);
		goto out;
	}
	if (hdr->version < 1 || hdr->version > TPL_VERSION || hdr->header_size != TPL_HDR_SIZE) {
		err = kf_reject(-EINVAL, "%s: template format version %u, this kfork reads %u; rebuild it with `kfork template build`",
			      path, hdr->version, TPL_VERSION);
		goto out;
	}
	if ((uint64_t)st.st_size != hdr->file_size) {
		err = kf_reject(-EINVAL, "%s: truncated or extended (%lld bytes, header says %llu)",
			      path, (long long)st.st_size, (unsigned long long)hdr->file_size);
		goto out;
	}
	/* Header checksum covers itself with the crc field as zero. */
	want_crc = hdr->crc;
	hdr->crc = 0;
	crc = crc32(0, head, TPL_HDR_SIZE);
	npages = hdr->mem_size / VM_PAGE_SIZE;
	if (hdr->kind >= KF_KIND_MAX || !hdr->mem_size || hdr->mem_size % VM_PAGE_SIZE ||
	    hdr->mem_size > VM_MEM_MAX || hdr->state_off != TPL_HDR_SIZE ||
	    hdr->state_len > TPL_STATE_MAX || hdr->bitmap_off != hdr->state_off + hdr->state_len ||
	    hdr->bitmap_len != (npages + 7) / 8 || hdr->pages_count > npages ||
	    hdr->pages_off != ((hdr->bitmap_off + hdr->bitmap_len + VM_PAGE_SIZE - 1) & ~(VM_PAGE_SIZE - 1)) ||
	    (hdr->version == 1 && (hdr->wset_off || hdr->wset_count)) ||
	    (hdr->version > 1 && hdr->wset_off != hdr->pages_off + hdr->pages_count * VM_PAGE_SIZE) ||
	    hdr->wset_count > npages ||
	    hdr->file_size != hdr->pages_off + hdr->pages_count * VM_PAGE_SIZE +
			      hdr->wset_count * sizeof(uint64_t)) {
		err = kf_reject(-EINVAL, "%s: corrupt template header", path);
		goto out;
	}
	tmpl->kind = hdr->kind;
	tmpl->mem_size = hdr->mem_size;
	tmpl->state.len = hdr->state_len;
	tmpl->state.buf = malloc(hdr->state_len);
	bitmap = malloc(hdr->bitmap_len + (hdr->pages_off - hdr->bitmap_off - hdr->bitmap_len));
	if (!tmpl->state.buf || !bitmap) {
		err = kf_fail(-ENOMEM, "reading %s", path);
		goto out;
	}
	if (read_all(fd, tmpl->state.buf, hdr->state_len, &crc) ||
	    read_all(fd, bitmap, hdr->pages_off - hdr->bitmap_off, &crc)) {
		err = kf_reject(-EIO, "%s: read failed", path);
		goto out;
	}
	tplfile_key(&st, tmpl->file_key);
	if (meta_only) {
		err = tplfile_read_meta(fd, path, hdr, bitmap, tmpl);
		if (!err)
			err = state_parse(&tmpl->state, path);
		if (!err)
			err = tplfile_check_cpu(tmpl);
		goto out;
	}
	tmpl->memfd = memfd_create("kfork-template", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (tmpl->memfd < 0 || ftruncate(tmpl->memfd, hdr->mem_size) < 0) {
		err = kf_fail(-errno, "memfd for %s (%llu MiB)", path,
			      (unsigned long long)(hdr->mem_size >> 20));
		goto out;
	}
	for (uint64_t i = 0; i < npages; i++) {
		if (!(bitmap[i / 8] & (1u << (i % 8))))
			continue;
		if (++count > hdr->pages_count || read_all(fd, page, VM_PAGE_SIZE, &crc)) {
			err = kf_reject(-EINVAL, "%s: page bitmap and page count disagree", path);
			goto out;
		}
		if (pwrite(tmpl->memfd, page, VM_PAGE_SIZE, i * VM_PAGE_SIZE) != VM_PAGE_SIZE) {
			err = kf_fail(-errno, "filling template memory from %s", path);
			goto out;
		}
	}
	err = tplfile_read_wset(fd, path, hdr, tmpl, &crc);
	if (err)
		goto out;
	if (count != hdr->pages_count || crc != want_crc) {
		err = kf_reject(-EINVAL, "%s: checksum mismatch (file corrupt); rebuild the template",
			      path);
		goto out;
	}
	err = state_parse(&tmpl->state, path);
	if (err)
		goto out;
	err = tplfile_check_cpu(tmpl);
	if (err)
		goto out;
	/* From here on nobody, this process included, can change the template's pages. */
	if (fcntl(tmpl->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
		  F_SEAL_SEAL) < 0)
		err = kf_fail(-errno, "sealing template memory of %s", path);
out:
	free(page);
	free(bitmap);
	free(head);
	close(fd);
	return err;
}
