// SPDX-License-Identifier: GPL-2.0-only
/* sandbox_test.c - kf_sandbox_thread(): what a confined thread may still do, and what kills it. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfork.h"
#include "kselftest_harness.h"

#define TINY_BIN	"build/tests/tiny.bin"

/* Exit codes of the children, so a failure says which step broke. */
enum { OK = 0, E_OPEN = 10, E_SANDBOX, E_SPAWN, E_EXEC, E_OUTPUT, E_RESET, E_TIMEOUT,
       E_FORK, E_FORBIDDEN_RAN, E_NNP, E_THREAD };

static const char *kvm_missing(void)
{
	if (access("/dev/kvm", R_OK | W_OK))
		return "/dev/kvm not available";
	if (access(TINY_BIN, R_OK))
		return TINY_BIN " not built (run make)";
	return NULL;
}

/* Runs fn in a child; returns its wait status. The filter must not reach the harness. */
static int in_child(int (*fn)(void *arg), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

/* One exec in a fresh clone, expecting "echo" back on stdout; 0 or an E_ code. */
static int echo_in(struct kf_template *tmpl, const char *word, unsigned int timeout_ms)
{
	char code[64];
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .timeout_ms = timeout_ms };
	struct kf_exec_result res;
	struct kf_clone *clone;
	char want[64];
	int ret = OK;

	snprintf(code, sizeof(code), "echo %s", word);
	snprintf(want, sizeof(want), "%s\n", word);
	req.code = code;
	req.code_len = strlen(code);
	if (kf_spawn(tmpl, &clone))
		return E_SPAWN;
	if (kf_exec(clone, &req, &res)) {
		fprintf(stderr, "# %s\n", kf_last_error());
		ret = E_EXEC;
	} else if (!res.out || strcmp(res.out, want)) {
		ret = E_OUTPUT;
	}
	kf_exec_result_free(&res);
	kf_destroy(clone);
	return ret;
}

FIXTURE(tiny) {
	char path[64];
	const char *skip;
};

FIXTURE_SETUP(tiny)
{
	struct kf_build_opts opts = { .kind = KF_KIND_TINY, .kernel = TINY_BIN };

	self->skip = kvm_missing();
	snprintf(self->path, sizeof(self->path), "/tmp/kfork-sandbox-test-%d.tmpl", getpid());
	if (self->skip)
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, kf_template_build(&opts, self->path)) TH_LOG("%s", kf_last_error());
}

FIXTURE_TEARDOWN(tiny)
{
	if (!self->skip)
		unlink(self->path);
}

#define NEED_KVM() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

TEST(unknown_flags_are_einval_and_load_nothing)
{
	EXPECT_EQ(-EINVAL, kf_sandbox_thread(1u << 31));
	EXPECT_NE(NULL, strstr(kf_last_error(), "unknown flags"));
	EXPECT_EQ(-EINVAL, kf_sandbox_thread(~0u));
	/* Nothing was loaded: this thread is as free as before. */
	EXPECT_EQ(0, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	EXPECT_EQ(0, prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
}

/* Everything a run does after the template is open: spawn, exec with a deadline, reset, destroy. */
static int confined_clone_work(void *arg)
{
	const char *path = arg;
	struct kf_exec_req spin = { .lang = KF_EXEC_SH, .code = "spin", .code_len = 4,
				    .timeout_ms = 200 };
	struct kf_exec_result res;
	struct kf_template *tmpl;
	struct kf_clone *clone;
	int ret;

	if (kf_template_open(path, KF_BACKEND_USER, &tmpl))
		return E_OPEN;
	if (kf_sandbox_thread(0))
		return E_SANDBOX;
	for (int i = 0; i < 3; i++) {
		ret = echo_in(tmpl, "confined", 30000);
		if (ret)
			return ret;
	}
	if (kf_spawn(tmpl, &clone))
		return E_SPAWN;
	if (kf_exec(clone, &spin, &res) != -ETIMEDOUT)
		return E_TIMEOUT;
	kf_exec_result_free(&res);
	if (kf_reset(clone))
		return E_RESET;
	kf_destroy(clone);
	ret = echo_in(tmpl, "after-reset", 30000);
	if (ret)
		return ret;
	printf("# stdout still works\n");
	fflush(stdout);
	kf_template_close(tmpl);
	return OK;
}

TEST_F(tiny, confined_thread_spawns_execs_resets_destroys)
{
	int st;

	NEED_KVM();
	st = in_child(confined_clone_work, self->path);
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("child killed by signal %d", WTERMSIG(st));
	EXPECT_EQ(OK, WEXITSTATUS(st));
}

/* Clone work first, then one forbidden call: it must never return. */
static int confined_then_forbidden(void *arg)
{
	int (*forbidden)(void) = arg;
	struct kf_template *tmpl;
	int ret;

	if (kf_template_open(getenv("SANDBOX_TEST_TMPL"), KF_BACKEND_USER, &tmpl))
		return E_OPEN;
	if (kf_sandbox_thread(0))
		return E_SANDBOX;
	ret = echo_in(tmpl, "before", 30000);
	if (ret)
		return ret;
	forbidden();
	return E_FORBIDDEN_RAN;
}

static int call_open(void)
{
	return open("/etc/hostname", O_RDONLY);
}

/* Confined, then open a file: refused with EACCES, and the process lives on. */
static int confined_then_open(void *arg)
{
	const char *path = arg;
	struct kf_template *tmpl;
	int fd;

	if (kf_template_open(path, KF_BACKEND_USER, &tmpl))
		return E_OPEN;
	if (kf_sandbox_thread(0))
		return E_SANDBOX;
	fd = call_open();
	if (fd >= 0)
		return E_FORBIDDEN_RAN;
	if (errno != EACCES)
		return E_NNP;
	kf_template_close(tmpl);
	return OK;
}

static int call_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0);
}

static int call_fork(void)
{
	return fork() == 0 ? 0 : 1;	/* a child that ran would exit 0 */
}

static int call_ioctl_other(void)
{
	/* Not one of the KVM requests: FIONREAD on stdin. */
	int n;

	return ioctl(0, FIONREAD, &n);
}

static int call_mmap_exec(void)
{
	return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
	       MAP_FAILED;
}

/* getpid through the 32-bit ABI: allowed natively, must not be a way around the list. */
static int call_int80_getpid(void)
{
	long ret = 20;	/* __NR_getpid on i386 */

	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	return (int)ret;
}

static int call_execve(void)
{
	char *const argv[] = { "/bin/true", NULL };

	return execv("/bin/true", argv);
}

TEST_F(tiny, forbidden_calls_kill_the_process_with_sigsys)
{
	static const struct { const char *name; int (*fn)(void); } calls[] = {
		{ "socket", call_socket }, { "fork", call_fork },
		{ "ioctl(FIONREAD)", call_ioctl_other }, { "execve", call_execve },
		{ "mmap(PROT_EXEC)", call_mmap_exec }, { "int 0x80 getpid", call_int80_getpid },
	};

	NEED_KVM();
	setenv("SANDBOX_TEST_TMPL", self->path, 1);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		int st = in_child(confined_then_forbidden, (void *)calls[i].fn);

		EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
			TH_LOG("%s: status %#x (exited %d)", calls[i].name, st,
			       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
}

TEST_F(tiny, opening_a_file_fails_with_eacces)
{
	NEED_KVM();
	EXPECT_EQ(OK, in_child(confined_then_open, (void *)self->path));
}

static int pipes[2][2];

/* Confined, say so on pipe 0, wait for pipe 1 to close: read and write are allowed. */
static int confined_and_waiting(void *arg)
{
	char c = 'r';

	if (kf_sandbox_thread(0))
		return E_SANDBOX;
	if (write(pipes[0][1], &c, 1) != 1)
		return E_NNP;
	while (read(pipes[1][0], &c, 1) > 0)
		;
	return OK;
}

/* Seen from outside (/proc/PID/status): no_new_privs set, a seccomp filter on. */
TEST(proc_status_shows_no_new_privs_and_a_filter)
{
	char path[64], buf[4096], c;
	pid_t pid;
	ssize_t n;
	int fd, st;

	ASSERT_EQ(0, pipe(pipes[0]));
	ASSERT_EQ(0, pipe(pipes[1]));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipes[1][1]);
		_exit(confined_and_waiting(NULL));
	}
	close(pipes[1][0]);
	ASSERT_EQ(1, read(pipes[0][0], &c, 1));
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = 0;
	EXPECT_NE(NULL, strstr(buf, "NoNewPrivs:\t1\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "Seccomp:\t2\n")) TH_LOG("%s", buf);
	close(pipes[1][1]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == OK) TH_LOG("status %#x", st);
	/* Per thread: the harness's own thread is untouched. */
	EXPECT_EQ(0, prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
}

static void *sandbox_me(void *arg)
{
	unsigned int flags = *(unsigned int *)arg;

	return (void *)(long)kf_sandbox_thread(flags);
}

/* Sandbox another thread (with flags), then try open from this one. */
static int other_thread_then_open(void *arg)
{
	pthread_t t;
	void *ret;
	int fd;

	if (pthread_create(&t, NULL, sandbox_me, arg) || pthread_join(t, &ret))
		return E_THREAD;
	if (ret)
		return E_SANDBOX;
	fd = open("/etc/hostname", O_RDONLY);
	if (fd < 0)
		return E_OPEN;
	close(fd);
	return OK;
}

/*
 * glibc itself opens a file under the sandbox: the first time a thread's own
 * malloc arena gives memory back, it reads /proc/sys/vm/overcommit_memory.
 * That open must fail, not kill the process (kforkd's workers met it).
 */
static void *sandboxed_malloc_churn(void *arg)
{
	void *blocks[64];

	(void)arg;
	if (kf_sandbox_thread(0))
		return (void *)1L;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 64; i++)
			blocks[i] = malloc(64 << 10);
		for (int i = 63; i >= 0; i--)
			free(blocks[i]);
	}
	return NULL;
}

static int thread_arena_trims_under_the_sandbox(void *arg)
{
	pthread_t t;
	void *ret;

	(void)arg;
	if (pthread_create(&t, NULL, sandboxed_malloc_churn, NULL) || pthread_join(t, &ret))
		return E_THREAD;
	return ret ? E_SANDBOX : OK;
}

TEST(glibc_opening_a_file_in_a_sandboxed_thread_does_not_kill_the_process)
{
	int st = in_child(thread_arena_trims_under_the_sandbox, NULL);

	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == OK)
		TH_LOG("status %#x (signal %d)", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

TEST(one_thread_by_default_every_thread_with_all_threads)
{
	unsigned int one = 0, all = KF_SANDBOX_ALL_THREADS;
	int st;

	st = in_child(other_thread_then_open, &one);
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("signal %d", WTERMSIG(st));
	EXPECT_EQ(OK, WEXITSTATUS(st));
	/* Every thread confined: this one's open fails too (EACCES, not SIGSYS). */
	st = in_child(other_thread_then_open, &all);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == E_OPEN) TH_LOG("status %#x", st);
}

/*
 * POSIX timers do not survive fork(): a child whose thread-local state says
 * the exec-deadline timer exists would arm a timer that is not its own.
 */
static int exec_fork_exec(void *arg)
{
	const char *path = arg;
	struct kf_exec_req spin = { .lang = KF_EXEC_SH, .code = "spin", .code_len = 4,
				    .timeout_ms = 200 };
	struct kf_exec_result res;
	struct kf_template *tmpl;
	struct kf_clone *clone;
	int ret, st;
	pid_t pid;

	if (kf_template_open(path, KF_BACKEND_USER, &tmpl))
		return E_OPEN;
	ret = echo_in(tmpl, "parent", 30000);	/* creates this thread's kick timer */
	if (ret)
		return ret;
	pid = fork();
	if (pid < 0)
		return E_FORK;
	if (pid == 0) {
		ret = echo_in(tmpl, "child", 30000);
		if (ret)
			_exit(ret);
		/* The deadline must still fire in the child. */
		if (kf_spawn(tmpl, &clone))
			_exit(E_SPAWN);
		ret = kf_exec(clone, &spin, &res);
		if (ret != -ETIMEDOUT)
			fprintf(stderr, "# child spin: %d %s\n", ret, kf_last_error());
		_exit(ret == -ETIMEDOUT ? OK : E_TIMEOUT);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return E_FORK;
	if (WEXITSTATUS(st))
		return WEXITSTATUS(st);
	return echo_in(tmpl, "parent-again", 30000);
}

TEST_F(tiny, exec_deadline_works_in_a_forked_child)
{
	int st;

	NEED_KVM();
	st = in_child(exec_fork_exec, self->path);
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("signal %d", WTERMSIG(st));
	EXPECT_EQ(OK, WEXITSTATUS(st));
}

static int count_posix_timers(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/timers", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "ID:", 3);
	fclose(f);
	return n;
}

static void *timed_exec_thread(void *arg)
{
	return (void *)(long)echo_in(arg, "thread", 30000);
}

/* Each thread that ran an exec with a deadline had a kick timer: it must go with the thread. */
static int threads_leave_no_timers(void *arg)
{
	struct kf_template *tmpl;
	int before;

	if (kf_template_open(arg, KF_BACKEND_USER, &tmpl))
		return E_OPEN;
	before = count_posix_timers();
	if (before < 0)
		return E_OPEN;
	for (int i = 0; i < 4; i++) {
		pthread_t t;
		void *ret;

		if (pthread_create(&t, NULL, timed_exec_thread, tmpl) || pthread_join(t, &ret))
			return E_THREAD;
		if (ret)
			return (int)(long)ret;
	}
	if (count_posix_timers() != before) {
		fprintf(stderr, "# POSIX timers: %d before, %d after 4 exec threads\n", before,
			count_posix_timers());
		return E_TIMEOUT;
	}
	return OK;
}

TEST_F(tiny, exec_threads_leave_no_posix_timers_behind)
{
	int st;

	NEED_KVM();
	if (access("/proc/self/timers", R_OK))
		SKIP(return, "/proc/self/timers not available (CONFIG_CHECKPOINT_RESTORE off)");
	st = in_child(threads_leave_no_timers, self->path);
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("signal %d", WTERMSIG(st));
	EXPECT_EQ(OK, WEXITSTATUS(st));
}

TEST_HARNESS_MAIN
