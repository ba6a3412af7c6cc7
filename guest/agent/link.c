// SPDX-License-Identifier: GPL-2.0-only
/* link.c - the agent's side of the serial line: raw tty setup and whole-frame writes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"

/* The link fd is non-blocking (reads must never stall the poll loop), so a
 * full tty or socket buffer shows up as EAGAIN: wait for room, never drop. */
int link_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

int link_send(struct agent *a, uint8_t type, const void *payload, uint32_t len)
{
	static uint8_t frame[KF_FRAME_MAX_LEN];
	size_t n = kf_frame_encode(frame, type, payload, len);

	if (!n)
		return -EMSGSIZE;
	if (a->mbox.on)
		return mbox_send(a, frame, n);
	return link_write_all(a->link_fd, frame, n);
}

int link_send_error(struct agent *a, uint32_t code, const char *fmt, ...)
{
	struct {
		struct kf_msg_error hdr;
		char text[512];
	} __attribute__((packed)) msg = { .hdr.code = code };
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg.text, sizeof(msg.text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg.text))
		n = sizeof(msg.text) - 1;
	return link_send(a, KF_MSG_ERROR, &msg, sizeof(msg.hdr) + n);
}

/* 115200 8N1, raw, no flow control: frames are binary and XON/XOFF bytes
 * or a missing CTS must never stall or alter them. */
int link_tty_open(const char *path)
{
	struct termios tio;
	int fd;

	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &tio) < 0)
		goto fail;
	cfmakeraw(&tio);
	tio.c_iflag &= ~(IXON | IXOFF | IXANY);
	tio.c_cflag &= ~CRTSCTS;
	tio.c_cflag |= CLOCAL | CREAD;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (cfsetispeed(&tio, B115200) < 0 || cfsetospeed(&tio, B115200) < 0)
		goto fail;
	if (tcsetattr(fd, TCSANOW, &tio) < 0)
		goto fail;
	tcflush(fd, TCIFLUSH);
	return fd;
fail: {
		int err = -errno;

		close(fd);
		return err;
	}
}
