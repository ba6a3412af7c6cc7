// SPDX-License-Identifier: GPL-2.0-only
/* mbox.c - the agent's side of the mailbox: frames through shared memory, one VM exit per batch. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent.h"

#define CMDLINE_PATH	"/proc/cmdline"
#define DEVMEM_PATH	"/dev/mem"
#define PAGE		4096u

/* The host puts kfork.mbox=0xADDR on the kernel command line; absent: serial only. */
static int mbox_find(uint64_t *gpa)
{
	char line[4096], *p, *end;
	ssize_t n;
	int fd;

	fd = open(CMDLINE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	line[n] = 0;
	for (p = line; (p = strstr(p, KF_MBOX_CMDLINE)); p++) {
		if (p != line && p[-1] != ' ')
			continue;
		errno = 0;
		*gpa = strtoull(p + strlen(KF_MBOX_CMDLINE), &end, 0);
		if (errno || (*end && *end != ' ' && *end != '\n') || *gpa % PAGE)
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

static void *mbox_map(int fd, uint64_t gpa, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)gpa);

	if (p == MAP_FAILED)
		return NULL;
	/* Children (user code) get neither the rings nor the doorbell. */
	madvise(p, len, MADV_DONTFORK);
	return p;
}

/*
 * Map the mailbox and the doorbell page and tell the host (agent_flags) that
 * the agent can use them. Called before READY, so it is in the template.
 * READY still goes on the line; frames go to g2h only once a host has sent
 * frames through h2g (mbox_drain), so an older host that knows nothing of
 * the mailbox keeps talking serial to this agent.
 */
int mbox_open(struct agent *a)
{
	struct agent_mbox *m = &a->mbox;
	struct kf_mbox_hdr *h;
	uint64_t gpa;
	uint8_t *base;
	int fd, err;

	err = mbox_find(&gpa);
	if (err)
		return err;
	fd = open(DEVMEM_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	base = mbox_map(fd, gpa, KF_MBOX_SIZE);
	if (!base) {
		err = -errno;
		goto close_fd;
	}
	h = (struct kf_mbox_hdr *)base;
	if (h->magic != KF_MBOX_MAGIC || h->version != KF_MBOX_VERSION ||
	    h->h2g_off != KF_MBOX_H2G_OFF || h->h2g_size != KF_MBOX_H2G_SIZE ||
	    h->g2h_off != KF_MBOX_G2H_OFF || h->g2h_size != KF_MBOX_G2H_SIZE ||
	    h->doorbell_gpa % PAGE) {
		err = -EPROTONOSUPPORT;
		goto unmap;
	}
	m->doorbell = mbox_map(fd, h->doorbell_gpa, PAGE);
	if (!m->doorbell) {
		err = -errno;
		goto unmap;
	}
	close(fd);
	m->hdr = h;
	kf_ring_init(&m->h2g, base + KF_MBOX_H2G_OFF, KF_MBOX_H2G_SIZE, &h->h2g_prod,
		     &h->h2g_cons, 0);
	kf_ring_init(&m->g2h, base + KF_MBOX_G2H_OFF, KF_MBOX_G2H_SIZE, &h->g2h_prod,
		     &h->g2h_cons, 1);
	kf_decoder_init(&m->dec);
	m->mapped = true;
	__atomic_store_n(&h->agent_flags, KF_MBOX_AGENT_ON, __ATOMIC_RELEASE);
	return 0;

unmap:
	munmap(base, KF_MBOX_SIZE);
close_fd:
	close(fd);
	return err;
}

/* One MMIO write: the host drains g2h and refills h2g before this returns. */
static void mbox_ring(struct agent_mbox *m)
{
	__atomic_store_n(m->doorbell, 1, __ATOMIC_RELEASE);
	m->dirty = false;
}

int mbox_send(struct agent *a, const void *buf, size_t len)
{
	struct agent_mbox *m = &a->mbox;
	const uint8_t *p = buf;
	int stalls = 0;

	while (len) {
		int32_t n = kf_ring_put(&m->g2h, p, len > UINT32_MAX ? UINT32_MAX : len);

		if (n < 0)
			return -EPROTO;
		if (n) {
			m->dirty = true;
			p += n;
			len -= n;
			stalls = 0;
			continue;
		}
		/* Full: the host empties g2h on the doorbell; if it does not, give up. */
		if (++stalls > 2)
			return -EIO;
		mbox_ring(m);
	}
	return 0;
}

/* Before the agent sleeps: whatever it wrote or consumed is the host's to see. */
void mbox_flush(struct agent *a)
{
	if (a->mbox.on && a->mbox.dirty)
		mbox_ring(&a->mbox);
}

/* A doorbell byte came on the line: take every frame waiting in h2g. */
void mbox_drain(struct agent *a)
{
	struct agent_mbox *m = &a->mbox;
	uint8_t buf[4096];
	size_t off;
	int32_t n;

	while ((n = kf_ring_get(&m->h2g, buf, sizeof(buf))) > 0) {
		m->on = true;		/* this host speaks mailbox: answer the same way */
		m->dirty = true;	/* room freed: the host may have more queued */
		for (off = 0; off < (size_t)n; )
			off += frame_feed(a, &m->dec, buf + off, n - off, "mailbox: ");
	}
	if (n < 0)
		agent_log("mailbox: h2g indices out of bounds");
}
