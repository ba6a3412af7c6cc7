// SPDX-License-Identifier: GPL-2.0-only
/* tplfile_fuzz.c - libFuzzer target: the template file loader fed any file, from a memfd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "lib/internal.h"

/*
 * Input: one control byte, then the file. A fuzzer cannot forge a CRC-32, so
 * with bit 0 set the target writes the right checksum into the header (as
 * tplfile_write does: crc32 of the whole file with the field zero) and the
 * loader's checks behind the checksum get fuzzed too; bit 0 clear feeds the
 * file as it is. Checked: no crash, no leak, and a load either fails with a
 * -errno and a message or yields a template whose memory and state are
 * exactly what its header promised.
 */

#define TPL_CRC_OFF	24	/* offsetof(struct tpl_header, crc) in tplfile.c */
#define TPL_MEMSIZE_OFF	32	/* offsetof(struct tpl_header, mem_size) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_template tmpl;
	char path[64];
	uint8_t *file;
	int fd, err;

	if (!size)
		return 0;
	file = malloc(size);
	FUZZ_CHECK(file);
	memcpy(file, data + 1, size - 1);
	size--;
	if ((data[0] & 1) && size >= TPL_CRC_OFF + 4) {
		uint32_t crc;

		memset(file + TPL_CRC_OFF, 0, 4);
		crc = crc32(0, file, size);
		memcpy(file + TPL_CRC_OFF, &crc, 4);
	}
	fd = memfd_create("fuzz-template", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, file, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	/* As kf_template_open() sets it up and tears it down. */
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.memfd = -1;
	tmpl.kmod_fd = -1;
	snprintf(tmpl.name, sizeof(tmpl.name), "fuzz.tpl");
	/* Control bit 1: as kmod attach reads it (header, state, mailbox header; no pages). */
	err = tplfile_read(path, &tmpl, !!(data[0] & 2));
	FUZZ_CHECK(err <= 0 && err > -4096);
	if (!err && tmpl.meta_only) {
		FUZZ_CHECK(tmpl.memfd < 0 && tmpl.state.item[ST_CPUID]);
	} else if (!err) {
		uint64_t mem_size;

		memcpy(&mem_size, file + TPL_MEMSIZE_OFF, 8);
		FUZZ_CHECK(tmpl.mem_size == mem_size && mem_size % 4096 == 0);
		FUZZ_CHECK(lseek(tmpl.memfd, 0, SEEK_END) == (off_t)mem_size);
		/* Sealed: nobody can write the template's pages any more. */
		FUZZ_CHECK(fcntl(tmpl.memfd, F_GET_SEALS) & F_SEAL_WRITE);
		FUZZ_CHECK(tmpl.state.item[ST_CPUID] && tmpl.state.item[ST_MSRS]);
		for (int i = 1; i < ST_MAX; i++) {
			const uint8_t *p = tmpl.state.item[i];

			FUZZ_CHECK(!p || (p >= tmpl.state.buf &&
					  p + tmpl.state.item_len[i] <= tmpl.state.buf + tmpl.state.len));
		}
	}
	if (tmpl.memfd >= 0)
		close(tmpl.memfd);
	for (uint64_t i = 0; i < tmpl.wset_len; i++)
		FUZZ_CHECK((tmpl.wset[i] & KF_WSET_GFN_MASK) < tmpl.mem_size / 4096);
	free(tmpl.wset);
	state_free(&tmpl.state);
	close(fd);
	free(file);
	return 0;
}
