// SPDX-License-Identifier: GPL-2.0-only
/* state_fuzz.c - libFuzzer target: kfork.ko's state blob parser (kmod/state_parse.c) in user space. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "state_parse.h"

/*
 * The blob as KFORK_IOC_TEMPLATE_CREATE hands it over: a private copy of at
 * most KFORK_MAX_STATE_LEN (1 MiB) bytes. Lengths the ioctl refuses before
 * parsing (not a multiple of 8, too short) are parsed too: the parser must
 * not depend on that. After a successful parse, everything the restore path
 * reads is read here (so ASan sees any item that pokes out of the buffer):
 * every item's bytes, the CPUID entries and the MSR entries their counts
 * claim, and the fixed-size items at their table size.
 */

#define STATE_MAX	(1u << 20)

static uint32_t sum_bytes(const void *p, size_t len)
{
	const volatile uint8_t *b = p;
	uint32_t s = 0;

	while (len--)
		s += *b++;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kfork_state st;
	volatile uint32_t sink = 0;
	int err;

	if (size > STATE_MAX)
		return 0;
	memset(&st, 0xa5, sizeof(st));
	/* Exactly size bytes, so ASan flags a read one past the end. */
	st.buf = malloc(size ? size : 1);
	FUZZ_CHECK(st.buf);
	memcpy(st.buf, data, size);
	st.len = size;
	err = kfork_state_parse(&st);
	FUZZ_CHECK(err == 0 || err == -EINVAL);
	if (!err) {
		const struct kvm_cpuid2 *cpuid = st.item[KFORK_STATE_CPUID];
		const struct kvm_msrs *msrs = st.item[KFORK_STATE_MSRS];
		const struct kvm_vcpu_events *ev = st.item[KFORK_STATE_VCPU_EVENTS];

		for (int tag = 1; tag < KFORK_STATE_MAX; tag++) {
			const uint8_t *p = st.item[tag];

			FUZZ_CHECK(p || kfork_state_table[tag].optional);
			if (!p)
				continue;
			FUZZ_CHECK(p >= (uint8_t *)st.buf + sizeof(struct kfork_state_item));
			FUZZ_CHECK(p + st.item_len[tag] <= (uint8_t *)st.buf + st.len);
			FUZZ_CHECK(!kfork_state_table[tag].size ||
				   st.item_len[tag] == kfork_state_table[tag].size);
			FUZZ_CHECK(st.item_len[tag] <= st.max_item_len);
			sink += sum_bytes(p, st.item_len[tag]);
		}
		sink += sum_bytes(cpuid->entries, cpuid->nent * sizeof(cpuid->entries[0]));
		sink += sum_bytes(msrs->entries, msrs->nmsrs * sizeof(msrs->entries[0]));
		if (st.item[KFORK_STATE_XSAVE])
			FUZZ_CHECK(st.item_len[KFORK_STATE_XSAVE] >= sizeof(struct kvm_xsave));
		FUZZ_CHECK(!(ev && (ev->flags & KVM_VCPUEVENT_VALID_SMM) && ev->smi.smm));
		FUZZ_CHECK(((const struct kvm_irqchip *)st.item[KFORK_STATE_PIC_MASTER])->chip_id ==
			   KVM_IRQCHIP_PIC_MASTER);
	}
	(void)sink;
	free(st.buf);
	return 0;
}
