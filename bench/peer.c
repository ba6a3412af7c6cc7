// SPDX-License-Identifier: GPL-2.0-only
/* peer.c - the peer: Debian's QEMU restoring the same guest from its own migration snapshot, timed to the agent's answer. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "proto/kf_proto.h"

/*
 *   kfork-bench peer -K VMLINUX -I INITRD -k minimal|python [-n SAMPLES] [-m MiB]
 *                    [-M MACHINE] [-q QEMU] [-w WORKDIR]
 * Once: boot the guest with `QEMU -enable-kvm`, wait for the agent's READY
 * frame on the serial port, stop, `migrate exec:cat > FILE`, quit. Then per
 * sample: start QEMU with `-incoming exec:cat FILE` (autostart: it resumes by
 * itself once the stream is loaded; QMP says when), send the same INIT and
 * EXEC frames libkfork sends, and time
 *   restore   QEMU fork+exec -> VM running again (QMP status "running")
 *   ttfr      QEMU fork+exec -> EXIT frame of the answer (the result in hand)
 *   first     QEMU fork+exec -> first serial byte after the request
 * QEMU's start-up (loading its libraries) is part of the peer's cost, as it
 * is for anyone who restores a snapshot this way.
 */

struct peer {
	const char *qemu, *kernel, *initrd, *kind, *machine, *workdir;
	int n, mem_mib;
	char snap[256], sock[256], log[256];
};

struct qemu {
	pid_t pid;
	int ser_in, ser_out, qmp;
	char qbuf[8192];
	size_t qlen;
	uint8_t sbuf[4096];	/* serial bytes read, not yet decoded */
	size_t slen, soff;
	struct kf_decoder *dec;
};

#define PEER_CMDLINE "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check tsc=reliable"

static void peer_kill(struct qemu *q)
{
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
		q->pid = 0;
	}
	if (q->ser_in >= 0)
		close(q->ser_in);
	if (q->ser_out >= 0)
		close(q->ser_out);
	if (q->qmp >= 0)
		close(q->qmp);
	q->ser_in = q->ser_out = q->qmp = -1;
}

static int peer_start(struct peer *p, int incoming, struct qemu *q)
{
	char mem[16], inc[300];
	const char *argv[40];
	int in[2], out[2], a = 0;
	char qmp[300];

	snprintf(mem, sizeof(mem), "%d", p->mem_mib);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", p->sock);
	snprintf(inc, sizeof(inc), "exec:cat %s", p->snap);
	argv[a++] = p->qemu;
	argv[a++] = "-M"; argv[a++] = p->machine;
	argv[a++] = "-enable-kvm";
	argv[a++] = "-cpu"; argv[a++] = "host";
	argv[a++] = "-m"; argv[a++] = mem;
	argv[a++] = "-smp"; argv[a++] = "1";
	argv[a++] = "-nodefaults"; argv[a++] = "-no-user-config";
	argv[a++] = "-display"; argv[a++] = "none";
	argv[a++] = "-serial"; argv[a++] = "stdio";
	argv[a++] = "-qmp"; argv[a++] = qmp;
	argv[a++] = "-kernel"; argv[a++] = p->kernel;
	argv[a++] = "-initrd"; argv[a++] = p->initrd;
	argv[a++] = "-append"; argv[a++] = PEER_CMDLINE;
	if (incoming) {
		argv[a++] = "-incoming";
		argv[a++] = inc;
	}
	argv[a] = NULL;

	*q = (struct qemu){ .ser_in = -1, .ser_out = -1, .qmp = -1, .dec = q->dec };
	unlink(p->sock);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	q->pid = fork();
	if (q->pid < 0)
		return -errno;
	if (q->pid == 0) {
		int log = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(in[0], 0);
		dup2(out[1], 1);
		if (log >= 0)
			dup2(log, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	q->ser_in = in[1];
	q->ser_out = out[0];
	kf_decoder_init(q->dec);
	return 0;
}

/* Reads one agent frame from the serial port; *first set to the arrival time of the first byte if 0. */
static int peer_frame(struct qemu *q, int timeout_ms, uint64_t *first)
{
	uint64_t deadline = bench_now_ns() + timeout_ms * 1000000ull;

	for (;;) {
		while (q->soff < q->slen) {
			size_t used;
			enum kf_dec_status st = kf_decoder_feed(q->dec, q->sbuf + q->soff,
								q->slen - q->soff, &used);

			q->soff += used;
			if (st == KF_DEC_FRAME)
				return q->dec->type;
		}
		{
			struct pollfd pfd = { .fd = q->ser_out, .events = POLLIN };
			int left = (int)((deadline - bench_now_ns()) / 1000000);
			ssize_t r;

			if ((int64_t)(deadline - bench_now_ns()) <= 0 || poll(&pfd, 1, left > 0 ? left : 0) <= 0)
				return -ETIMEDOUT;
			r = read(q->ser_out, q->sbuf, sizeof(q->sbuf));
			if (r <= 0)
				return -EPIPE;
			if (first && !*first)
				*first = bench_now_ns();
			q->slen = r;
			q->soff = 0;
		}
	}
}

static int peer_send(struct qemu *q, uint8_t type, const void *payload, uint32_t len)
{
	static uint8_t frame[KF_FRAME_HDR_LEN + 4096 + KF_FRAME_CRC_LEN];
	size_t n = kf_frame_encode(frame, type, payload, len);

	return n && write(q->ser_in, frame, n) == (ssize_t)n ? 0 : -EIO;
}

/* --- QMP: one JSON object per line -------------------------------------------- */

static int qmp_connect(struct peer *p, struct qemu *q, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = bench_now_ns() + timeout_ms * 1000000ull;

	if (strlen(p->sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, p->sock, strlen(p->sock) + 1);
	while (bench_now_ns() < deadline) {
		q->qmp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->qmp < 0)
			return -errno;
		if (!connect(q->qmp, (struct sockaddr *)&sa, sizeof(sa)))
			return 0;
		close(q->qmp);
		q->qmp = -1;
		if (waitpid(q->pid, NULL, WNOHANG) == q->pid) {
			q->pid = 0;
			return -ECHILD;
		}
		usleep(500);
	}
	return -ETIMEDOUT;
}

/* Next line from QMP into line (NUL-terminated). */
static int qmp_line(struct qemu *q, char *line, size_t size, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(q->qbuf, '\n', q->qlen);
		struct pollfd pfd = { .fd = q->qmp, .events = POLLIN };
		ssize_t r;

		if (nl) {
			size_t n = nl - q->qbuf + 1;

			snprintf(line, size, "%.*s", (int)n, q->qbuf);
			memmove(q->qbuf, q->qbuf + n, q->qlen - n);
			q->qlen -= n;
			return 0;
		}
		if (q->qlen == sizeof(q->qbuf))
			q->qlen = 0;	/* an over-long line: drop it */
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		r = read(q->qmp, q->qbuf + q->qlen, sizeof(q->qbuf) - q->qlen);
		if (r <= 0)
			return -EPIPE;
		q->qlen += r;
	}
}

/* Sends cmd, returns its reply line in reply (events before it are skipped, RESUME noted). */
static int qmp_cmd(struct qemu *q, const char *cmd, char *reply, size_t size, int *resumed)
{
	if (write(q->qmp, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		return -EIO;
	for (;;) {
		int err = qmp_line(q, reply, size, 60000);

		if (err)
			return err;
		if (resumed && strstr(reply, "\"RESUME\""))
			*resumed = 1;
		if (strstr(reply, "\"return\"") || strstr(reply, "\"error\""))
			return strstr(reply, "\"error\"") ? -EINVAL : 0;
	}
}

static int qmp_open(struct peer *p, struct qemu *q)
{
	char line[8192];
	int err = qmp_connect(p, q, 30000);

	if (!err)
		err = qmp_line(q, line, sizeof(line), 30000);	/* greeting */
	if (!err)
		err = qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}\n", line, sizeof(line), NULL);
	return err;
}

/* Waits until the restored VM runs (autostart after -incoming; `cont` if it stays paused). */
static int qmp_wait_running(struct qemu *q)
{
	uint64_t deadline = bench_now_ns() + 120000000000ull;
	char line[8192];
	int resumed = 0;

	while (bench_now_ns() < deadline) {
		int err = qmp_cmd(q, "{\"execute\":\"query-status\"}\n", line, sizeof(line), &resumed);

		if (err)
			return err;
		if (resumed || strstr(line, "\"running\": true"))
			return 0;
		if (strstr(line, "\"paused\"") || strstr(line, "\"prelaunch\"") ||
		    strstr(line, "\"postmigrate\"")) {
			err = qmp_cmd(q, "{\"execute\":\"cont\"}\n", line, sizeof(line), &resumed);
			if (err)
				return err;
			continue;
		}
		/* still "inmigrate": wait for RESUME or poll again in 2 ms */
		if (!qmp_line(q, line, sizeof(line), 2) && strstr(line, "\"RESUME\""))
			return 0;
	}
	return -ETIMEDOUT;
}

static void peer_quit(struct qemu *q)
{
	char line[1024];

	if (q->qmp >= 0)
		qmp_cmd(q, "{\"execute\":\"quit\"}\n", line, sizeof(line), NULL);
	for (int i = 0; i < 2000 && q->pid > 0; i++) {
		if (waitpid(q->pid, NULL, WNOHANG) == q->pid)
			q->pid = 0;
		else
			usleep(5000);
	}
	peer_kill(q);
}

/* Boots the guest to READY and writes its migration stream to p->snap. */
static int peer_snapshot(struct peer *p, struct qemu *q, double *boot_s, char *why, size_t len)
{
	uint64_t t0 = bench_now_ns();
	char line[8192];
	int type, err;

	err = peer_start(p, 0, q);
	if (err) {
		snprintf(why, len, "starting %s: %s", p->qemu, strerror(-err));
		return err;
	}
	err = qmp_open(p, q);
	if (err) {
		snprintf(why, len, "QMP of the booting QEMU: %s (see %s)", strerror(-err), p->log);
		goto fail;
	}
	do
		type = peer_frame(q, 180000, NULL);
	while (type > 0 && type != KF_MSG_READY);
	if (type < 0) {
		err = type;
		snprintf(why, len, "no READY frame from the agent in QEMU within 180 s: %s (see %s)",
			 strerror(-err), p->log);
		goto fail;
	}
	*boot_s = (bench_now_ns() - t0) / 1e9;
	if (qmp_cmd(q, "{\"execute\":\"stop\"}\n", line, sizeof(line), NULL))
		goto qmp_fail;
	snprintf(line, sizeof(line),
		 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > %s\"}}\n", p->snap);
	if (qmp_cmd(q, line, line, sizeof(line), NULL))
		goto qmp_fail;
	for (int i = 0; i < 6000; i++) {
		if (qmp_cmd(q, "{\"execute\":\"query-migrate\"}\n", line, sizeof(line), NULL))
			goto qmp_fail;
		if (strstr(line, "\"completed\""))
			break;
		if (strstr(line, "\"failed\""))
			goto qmp_fail;
		usleep(50000);
	}
	peer_quit(q);
	return 0;
qmp_fail:
	err = -EIO;
	snprintf(why, len, "QMP during the snapshot: %.300s", line);
fail:
	peer_kill(q);
	return err;
}

/* One restore -> answer; times in us from QEMU's fork. */
static int peer_sample(struct peer *p, struct qemu *q, int i, const char *code, uint8_t lang,
		       double us[4], long *kib, char *why, size_t len)
{
	struct kf_msg_init init = { .clone_id = i + 1 };
	uint8_t exec[sizeof(struct kf_msg_exec) + 64];
	struct kf_msg_exec *ex = (struct kf_msg_exec *)exec;
	uint64_t t0, t_run, first = 0, t_exit = 0, t_quit;
	long before = bench_mem_available_kib();
	struct timespec now;
	int type, err;

	t0 = bench_now_ns();
	err = peer_start(p, 1, q);
	if (!err)
		err = qmp_open(p, q);
	if (!err)
		err = qmp_wait_running(q);
	if (err) {
		snprintf(why, len, "restoring from %s: %s (see %s)", p->snap, strerror(-err), p->log);
		peer_kill(q);
		return err;
	}
	t_run = bench_now_ns();
	if (getrandom(init.seed, sizeof(init.seed), 0) < 0)
		memset(init.seed, i, sizeof(init.seed));
	clock_gettime(CLOCK_REALTIME, &now);
	init.wall_sec = now.tv_sec;
	init.wall_nsec = now.tv_nsec;
	*ex = (struct kf_msg_exec){ .lang = lang, .code_len = strlen(code) };
	memcpy(exec + sizeof(*ex), code, strlen(code));
	if (peer_send(q, KF_MSG_INIT, &init, sizeof(init)) ||
	    peer_send(q, KF_MSG_EXEC, exec, sizeof(*ex) + strlen(code))) {
		snprintf(why, len, "writing to QEMU's serial port failed");
		peer_kill(q);
		return -EIO;
	}
	while ((type = peer_frame(q, 60000, &first)) > 0) {
		if (type == KF_MSG_EXIT || type == KF_MSG_ERROR)
			break;
	}
	t_exit = bench_now_ns();
	*kib = before - bench_mem_available_kib();
	if (type != KF_MSG_EXIT) {
		snprintf(why, len, "no EXIT frame from the restored guest: %s",
			 type < 0 ? strerror(-type) : "agent sent ERROR");
		peer_kill(q);
		return -EIO;
	}
	peer_quit(q);
	t_quit = bench_now_ns();
	us[0] = (t_run - t0) / 1e3;
	us[1] = (first - t0) / 1e3;
	us[2] = (t_exit - t0) / 1e3;
	us[3] = (t_quit - t_exit) / 1e3;
	return 0;
}

int peer_main(int argc, char **argv, struct jw *w)
{
	struct peer p = { .qemu = "qemu-system-x86_64", .machine = "microvm", .workdir = "/tmp",
			  .n = 50, .mem_mib = 256 };
	struct series s[4] = { 0 }, kib = { 0 };
	static const char *const names[4] = { "restore_us", "first_byte_us", "ttfr_us", "quit_us" };
	struct qemu q = { .ser_in = -1, .ser_out = -1, .qmp = -1 };
	char why[768] = "";
	double boot_s = 0;
	uint64_t loop0;
	int opt, failed = 0;
	struct stat st;

	while ((opt = getopt(argc, argv, "K:I:k:n:m:M:q:w:")) != -1) {
		switch (opt) {
		case 'K': p.kernel = optarg; break;
		case 'I': p.initrd = optarg; break;
		case 'k': p.kind = optarg; break;
		case 'n': p.n = atoi(optarg); break;
		case 'm': p.mem_mib = atoi(optarg); break;
		case 'M': p.machine = optarg; break;
		case 'q': p.qemu = optarg; break;
		case 'w': p.workdir = optarg; break;
		default:
			fprintf(stderr, "usage: kfork-bench peer -K VMLINUX -I INITRD -k KIND [-n N] [-m MiB]"
				" [-M MACHINE] [-q QEMU] [-w DIR]\n");
			return -1;
		}
	}
	if (!p.kernel || !p.initrd || !p.kind) {
		fprintf(stderr, "kfork-bench peer: needs -K, -I and -k\n");
		return -1;
	}
	q.dec = malloc(sizeof(*q.dec));
	if (!q.dec)
		return -1;
	snprintf(p.snap, sizeof(p.snap), "%s/kfork-peer-%s.mig", p.workdir, p.kind);
	snprintf(p.sock, sizeof(p.sock), "%s/kfork-peer-%s.qmp", p.workdir, p.kind);
	snprintf(p.log, sizeof(p.log), "%s/kfork-peer-%s.log", p.workdir, p.kind);
	unlink(p.log);
	signal(SIGPIPE, SIG_IGN);

	jw_obj(w, NULL);
	jw_str(w, "section", "peer");
	jw_str(w, "kind", p.kind);
	jw_str(w, "machine", p.machine);
	jw_int(w, "mem_mib", p.mem_mib);
	if (access("/dev/kvm", R_OK | W_OK)) {
		jw_str(w, "unavailable", "no /dev/kvm here: QEMU -enable-kvm cannot run");
		goto out;
	}
	if (peer_snapshot(&p, &q, &boot_s, why, sizeof(why))) {
		jw_str(w, "unavailable", why);
		fprintf(stderr, "peer: %s\n", why);
		goto out;
	}
	jw_num(w, "boot_to_ready_s", boot_s);
	if (!stat(p.snap, &st))
		jw_int(w, "snapshot_bytes", st.st_size);
	loop0 = bench_now_ns();
	for (int i = 0; i < p.n; i++) {
		const char *code = strcmp(p.kind, "python") ? "echo hi" : "print(1+1)";
		long k = 0;
		double us[4];

		if (peer_sample(&p, &q, i, code, strcmp(p.kind, "python") ? KF_LANG_SH : KF_LANG_PYTHON,
				us, &k, why, sizeof(why))) {
			failed++;
			if (failed > 3 && failed > i / 2)
				break;
			continue;
		}
		for (int j = 0; j < 4; j++)
			series_add(&s[j], us[j]);
		series_add(&kib, k);
	}
	jw_int(w, "n", s[2].n);
	jw_int(w, "failed", failed);
	/* restore + answer + quit, one after another: the peer's 1-thread throughput */
	jw_num(w, "per_second", s[2].n / ((bench_now_ns() - loop0) / 1e9));
	jw_str(w, "last_error", failed ? why : NULL);
	jw_obj(w, "samples_us");
	for (int j = 0; j < 4; j++)
		jw_series(w, names[j], &s[j]);
	jw_obj_end(w);
	jw_series(w, "mem_available_drop_kib", &kib);
	fprintf(stderr, "peer: %s: boot to READY %.1f s; restore p50 %.0f us, TTFR p50 %.0f us p99 %.0f us, %d failed\n",
		p.kind, boot_s, series_pct(&s[0], .5), series_pct(&s[2], .5), series_pct(&s[2], .99), failed);
out:
	jw_obj_end(w);
	unlink(p.snap);
	unlink(p.sock);
	for (int j = 0; j < 4; j++)
		series_free(&s[j]);
	series_free(&kib);
	free(q.dec);
	return 0;
}
