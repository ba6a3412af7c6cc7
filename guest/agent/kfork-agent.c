// SPDX-License-Identifier: GPL-2.0-only
/* kfork-agent.c - guest PID 1: sets the guest up, sends READY, then serves frames on ttyS0. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define TTY_PATH		"/dev/ttyS0"
#define KIND_PATH		"/etc/kfork-kind"
#define GUEST_PYTHON		"/usr/bin/python3"
#define GUEST_ZYGOTE		"/usr/lib/kfork/kfork_zygote.py"
/* SYSLOG_ACTION_CONSOLE_LEVEL; level 1: only KERN_EMERG reaches the console */
#define KLOG_CONSOLE_LEVEL	8
#define KLOG_QUIET		1

static struct agent agent;

void agent_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* fd 2 is /dev/kmsg in the guest (one record per write), stderr in tests. */
	if (write(2, "kfork-agent: ", 13) < 0 || write(2, line, n) < 0)
		return;
}

/* PID 1 must never exit (the kernel would panic): say why on the line, park. */
static void __attribute__((noreturn, format(printf, 2, 3)))
agent_fatal(struct agent *a, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, fd = a->link_fd;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (a->test_mode) {
		agent_log("fatal: %.*s", n, line);
		exit(1);
	}
	if (fd < 0)
		fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		link_write_all(fd, "\nkfork-agent: fatal: ", 21);
		link_write_all(fd, line, n);
		link_write_all(fd, "\n", 1);
	}
	for (;;)
		pause();
}

static void guest_mount(struct agent *a, const char *fs, const char *dir,
			unsigned long flags, const char *opts)
{
	mkdir(dir, 0755);
	if (mount(fs, dir, fs, flags, opts) < 0 && errno != EBUSY)
		agent_fatal(a, "mount %s on %s: %s", fs, dir, strerror(errno));
}

static void guest_stdio_redirect(struct agent *a)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (null < 0)
		agent_fatal(a, "open /dev/null: %s", strerror(errno));
	dup2(null, 0);
	dup2(null, 1);
	dup2(kmsg >= 0 ? kmsg : null, 2);
	close(null);
	if (kmsg >= 0)
		close(kmsg);
}

static void guest_setup(struct agent *a)
{
	int fd;

	guest_mount(a, "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	guest_mount(a, "sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	guest_mount(a, "devtmpfs", "/dev", MS_NOSUID, "mode=0755");
	guest_mount(a, "tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
	/* printk on the console would land in the middle of frames */
	if (klogctl(KLOG_CONSOLE_LEVEL, NULL, KLOG_QUIET) < 0)
		agent_fatal(a, "klogctl(CONSOLE_LEVEL): %s", strerror(errno));
	/* The console may still be fd 0-2: no user output may reach the line. */
	guest_stdio_redirect(a);

	fd = link_tty_open(TTY_PATH);
	if (fd < 0)
		agent_fatal(a, "open %s in raw mode: %s", TTY_PATH, strerror(-fd));
	a->link_fd = fd;

	clearenv();
	setenv("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", 1);
	setenv("HOME", "/tmp", 1);
	setenv("TMPDIR", "/tmp", 1);
	setenv("LANG", "C.UTF-8", 1);
	if (chdir("/tmp") < 0)
		agent_fatal(a, "chdir /tmp: %s", strerror(errno));
}

static void guest_read_kind(struct agent *a)
{
	ssize_t n;
	int fd;

	fd = open(KIND_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		agent_fatal(a, "open %s: %s", KIND_PATH, strerror(errno));
	n = read(fd, a->kind, sizeof(a->kind) - 1);
	close(fd);
	if (n < 0)
		agent_fatal(a, "read %s: %s", KIND_PATH, strerror(errno));
	a->kind[n] = 0;
	a->kind[strcspn(a->kind, " \t\r\n")] = 0;
}

static int signals_setup(struct agent *a)
{
	sigset_t chld;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		return -errno;
	a->sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	return a->sig_fd < 0 ? -errno : 0;
}

/* Reap every child: as PID 1 that includes orphans reparented to us. */
static void children_reap(struct agent *a)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == a->zygote.pid)
			zygote_lost(a, status);
		else if (a->exec.running && a->exec.lang == KF_LANG_SH &&
			 pid == a->exec.pid && !a->exec.exited)
			exec_child_exited(a, status);
	}
}

static void msg_init(struct agent *a, const uint8_t *p, uint32_t len)
{
	struct {
		struct rand_pool_info info;
		uint8_t bytes[KF_SEED_LEN];
	} entropy;
	struct kf_msg_init m;
	struct timespec ts;
	char id[24];
	int fd;

	if (len != sizeof(m)) {
		link_send_error(a, KF_ERR_BAD_MSG, "INIT: payload is %u bytes, expected %zu",
				len, sizeof(m));
		return;
	}
	memcpy(&m, p, sizeof(m));
	if (m.pad || m.wall_nsec >= 1000000000u || m.wall_sec > INT64_MAX) {
		link_send_error(a, KF_ERR_BAD_MSG, "INIT: non-zero pad or bad wall clock");
		goto wipe;
	}

	entropy.info.entropy_count = KF_SEED_LEN * 8;
	entropy.info.buf_size = KF_SEED_LEN;
	memcpy(entropy.bytes, m.seed, KF_SEED_LEN);
	fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		link_send_error(a, KF_ERR_INIT, "INIT: open /dev/urandom: %s", strerror(errno));
		goto wipe;
	}
	if (ioctl(fd, RNDADDENTROPY, &entropy) < 0) {
		link_send_error(a, KF_ERR_INIT, "INIT: RNDADDENTROPY on /dev/urandom: %s",
				strerror(errno));
		goto close_random;
	}
	if (ioctl(fd, RNDRESEEDCRNG) < 0) {
		link_send_error(a, KF_ERR_INIT, "INIT: RNDRESEEDCRNG on /dev/urandom: %s",
				strerror(errno));
		goto close_random;
	}

	/* --no-clock (tests on a host): INIT_OK then means seed applied, clock untouched. */
	if (!a->no_clock) {
		ts.tv_sec = m.wall_sec;
		ts.tv_nsec = m.wall_nsec;
		if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
			link_send_error(a, KF_ERR_INIT, "INIT: clock_settime(CLOCK_REALTIME): %s",
					strerror(errno));
			goto close_random;
		}
	} else {
		agent_log("INIT: clock left unchanged (--no-clock)");
	}
	snprintf(id, sizeof(id), "%" PRIu64, m.clone_id);
	setenv("KFORK_CLONE_ID", id, 1);
	link_send(a, KF_MSG_INIT_OK, NULL, 0);

close_random:
	close(fd);
wipe:
	explicit_bzero(&entropy, sizeof(entropy));
	explicit_bzero(&m, sizeof(m));
}

static void msg_exec(struct agent *a, const uint8_t *p, uint32_t len)
{
	struct kf_msg_exec m;

	if (len < sizeof(m)) {
		link_send_error(a, KF_ERR_BAD_MSG, "EXEC: payload is %u bytes, header needs %zu",
				len, sizeof(m));
		return;
	}
	memcpy(&m, p, sizeof(m));
	if (m.lang >= KF_LANG_MAX) {
		link_send_error(a, KF_ERR_BAD_MSG, "EXEC: unknown language %u", m.lang);
		return;
	}
	if (m.pad[0] || m.pad[1] || m.pad[2]) {
		link_send_error(a, KF_ERR_BAD_MSG, "EXEC: non-zero pad");
		return;
	}
	if (m.code_len != len - sizeof(m)) {
		link_send_error(a, KF_ERR_BAD_MSG, "EXEC: code_len %u but %zu code bytes follow",
				m.code_len, len - sizeof(m));
		return;
	}
	if (a->exec.running) {
		link_send_error(a, KF_ERR_BUSY, "EXEC: another exec is running");
		return;
	}
	exec_start(a, m.lang, p + sizeof(m), m.code_len);
}

static void frame_dispatch(struct agent *a, const struct kf_decoder *dec)
{
	const uint8_t *p = kf_decoder_payload(dec);
	uint32_t len = dec->len;

	switch (dec->type) {
	case KF_MSG_INIT:
		msg_init(a, p, len);
		break;
	case KF_MSG_EXEC:
		msg_exec(a, p, len);
		break;
	case KF_MSG_STDIN:
		exec_feed_stdin(a, p, len);
		break;
	case KF_MSG_PING:
		link_send(a, KF_MSG_PONG, NULL, 0);
		break;
	default:
		link_send_error(a, KF_ERR_BAD_TYPE, "unexpected message type %u", dec->type);
		break;
	}
}

size_t frame_feed(struct agent *a, struct kf_decoder *dec, const uint8_t *buf, size_t len,
		  const char *where)
{
	size_t used;

	switch (kf_decoder_feed(dec, buf, len, &used)) {
	case KF_DEC_FRAME:
		frame_dispatch(a, dec);
		break;
	case KF_DEC_ERROR:
		link_send_error(a, KF_ERR_BAD_FRAME, "%s%s", where, dec->error);
		break;
	case KF_DEC_MORE:
		break;
	}
	return used;
}

static void link_read(struct agent *a)
{
	uint8_t buf[4096];
	size_t off = 0;
	ssize_t n;

	n = read(a->link_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* A socket peer hanging up ends a test; a tty never reads EOF. */
		if (a->test_mode)
			exit(0);
		agent_log("read %s: %s", TTY_PATH, n ? strerror(errno) : "EOF");
		return;
	}
	while (off < (size_t)n) {
		size_t chunk = n - off;

		/* Between frames, a doorbell byte means "frames wait in the mailbox". */
		if (a->mbox.mapped && kf_decoder_idle(&a->dec)) {
			if (buf[off] == KF_MBOX_DOORBELL) {
				mbox_drain(a);
				off++;
				continue;
			}
			chunk = 1;	/* byte by byte until a frame starts */
		}
		off += frame_feed(a, &a->dec, buf + off, chunk, "");
	}
}

enum { PFD_LINK, PFD_SIGNAL, PFD_ZYGOTE, PFD_STDOUT, PFD_STDERR, PFD_STDIN, PFD_COUNT };

static void __attribute__((noreturn)) agent_serve(struct agent *a)
{
	struct agent_exec *e = &a->exec;
	struct pollfd pfd[PFD_COUNT];

	for (;;) {
		/* Nothing may sit unseen in the mailbox while the agent sleeps. */
		mbox_flush(a);
		/* poll() ignores negative fds: idle channels simply drop out. */
		pfd[PFD_LINK] = (struct pollfd){ .fd = a->link_fd, .events = POLLIN };
		pfd[PFD_SIGNAL] = (struct pollfd){ .fd = a->sig_fd, .events = POLLIN };
		pfd[PFD_ZYGOTE] = (struct pollfd){ .fd = a->zygote.sock, .events = POLLIN };
		pfd[PFD_STDOUT] = (struct pollfd){ .fd = e->out_fd, .events = POLLIN };
		pfd[PFD_STDERR] = (struct pollfd){ .fd = e->err_fd, .events = POLLIN };
		pfd[PFD_STDIN] = (struct pollfd){ .fd = e->in_len ? e->in_fd : -1,
						   .events = POLLOUT };
		if (poll(pfd, PFD_COUNT, -1) < 0) {
			if (errno != EINTR)
				agent_fatal(a, "poll: %s", strerror(errno));
			continue;
		}
		if (pfd[PFD_STDOUT].revents)
			exec_poll_output(a, &e->out_fd, KF_MSG_STDOUT);
		if (pfd[PFD_STDERR].revents)
			exec_poll_output(a, &e->err_fd, KF_MSG_STDERR);
		if (pfd[PFD_STDIN].revents)
			exec_poll_stdin(a);
		if (pfd[PFD_ZYGOTE].revents)
			zygote_read(a);
		if (pfd[PFD_SIGNAL].revents)
			children_reap(a);
		if (pfd[PFD_LINK].revents)
			link_read(a);
		exec_finish_if_done(a);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kfork-agent                 (as the guest's /init)\n"
		"       kfork-agent --fd N [--kind minimal|python] [--python PATH]\n"
		"                   [--zygote PATH] [--no-clock]   (test mode on a host)\n");
	exit(2);
}

static void args_parse(struct agent *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'f' },
		{ "kind", required_argument, NULL, 'k' },
		{ "python", required_argument, NULL, 'p' },
		{ "zygote", required_argument, NULL, 'z' },
		{ "no-clock", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long fd;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			errno = 0;
			fd = strtol(optarg, &end, 10);
			if (errno || *end || fd < 0 || fd > INT32_MAX)
				usage();
			a->link_fd = fd;
			a->test_mode = true;
			break;
		case 'k':
			snprintf(a->kind, sizeof(a->kind), "%s", optarg);
			break;
		case 'p':
			a->python = optarg;
			break;
		case 'z':
			a->zygote_script = optarg;
			break;
		case 'c':
			a->no_clock = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

int main(int argc, char **argv)
{
	struct agent *a = &agent;
	int err;

	a->link_fd = -1;
	a->sig_fd = -1;
	a->zygote = (struct agent_zygote){ .pid = -1, .sock = -1 };
	a->exec = (struct agent_exec){ .out_fd = -1, .err_fd = -1, .in_fd = -1 };
	a->python = GUEST_PYTHON;
	a->zygote_script = GUEST_ZYGOTE;
	kf_decoder_init(&a->dec);

	/* The kernel passes its unknown boot parameters to init: only parse
	 * arguments when not PID 1. */
	if (getpid() != 1)
		args_parse(a, argc, argv);
	if (a->test_mode) {
		int fl = fcntl(a->link_fd, F_GETFL);

		if (fl < 0 || fcntl(a->link_fd, F_SETFL, fl | O_NONBLOCK) < 0)
			agent_fatal(a, "fcntl on --fd %d: %s", a->link_fd, strerror(errno));
		if (!a->kind[0])
			snprintf(a->kind, sizeof(a->kind), "minimal");
	} else if (getpid() == 1) {
		guest_setup(a);
		guest_read_kind(a);
	} else {
		usage();
	}

	err = signals_setup(a);
	if (err)
		agent_fatal(a, "signalfd for SIGCHLD: %s", strerror(-err));

	if (!strcmp(a->kind, "python")) {
		err = zygote_start(a);
		if (!err)
			err = zygote_warm(a);
		if (err)
			agent_fatal(a, "Python zygote (%s %s) failed to start: %s",
				    a->python, a->zygote_script, strerror(-err));
	} else if (strcmp(a->kind, "minimal")) {
		agent_fatal(a, "unknown template kind '%s' (want minimal or python)", a->kind);
	}

	/* Before READY: the template is frozen with the mailbox mapped and announced. */
	if (!a->test_mode) {
		err = mbox_open(a);
		if (err)
			agent_log("no mailbox, frames go on %s: %s", TTY_PATH, strerror(-err));
	}
	err = link_send(a, KF_MSG_READY, a->kind, strlen(a->kind));
	if (err)
		agent_fatal(a, "send READY: %s", strerror(-err));
	agent_serve(a);
}
