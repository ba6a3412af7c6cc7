// SPDX-License-Identifier: GPL-2.0-only
/* fuzz_test.c - make check's share of fuzzing: replay every seed and kept crash, then fuzz each target briefly. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

/*
 * The targets are tests/fuzz/<name>_fuzz.c, built into build/fuzz/ by
 * tests/fuzz/fuzz.mk when clang's libFuzzer is installed; without it every
 * test here skips and says so. Run from the tree root (tests/run.sh does).
 * Each target gets two tests:
 *   replay: every seed in tests/fuzz/corpus/<name>/ and every input that
 *           ever crashed it (tests/fuzz/crashes/<name>/) runs clean;
 *   fuzz:   KFORK_FUZZ_SECONDS (default 10, at most 10) of coverage-guided
 *           fuzzing from those inputs finds no crash, leak (LeakSanitizer),
 *           UB (UBSan, fatal), timeout (10 s per input) or 2 GiB of RSS.
 * libFuzzer's log goes to build/fuzz/test/<name>.log; its seed is printed
 * so a failing run can be repeated (build/fuzz/<name>_fuzz -seed=N ...).
 * Adds about 4 x 11 s to make check.
 */

#define FUZZ_DIR	"build/fuzz"
#define LOG_DIR		FUZZ_DIR "/test"
#define MAX_ARGS	512
#define RUN_LIMIT_S	60	/* a replay or fuzz run that takes longer has hung */

struct fuzz_run {
	const char *argv[MAX_ARGS];
	int argc;
	char *owned[MAX_ARGS];
	int nowned;
};

static int fuzz_seconds(void)
{
	const char *s = getenv("KFORK_FUZZ_SECONDS");
	int n = s ? atoi(s) : 10;

	return n < 1 ? 1 : n > 10 ? 10 : n;
}

static void run_add(struct fuzz_run *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s || r->argc >= MAX_ARGS - 1)
		abort();
	r->owned[r->nowned++] = s;
	r->argv[r->argc++] = s;
	r->argv[r->argc] = NULL;
}

static void run_free(struct fuzz_run *r)
{
	for (int i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	r->nowned = r->argc = 0;
}

/* Every regular file of dir as an input argument; returns how many (0 if no dir). */
static int run_add_files(struct fuzz_run *r, const char *dir)
{
	struct dirent **names;
	int n, added = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		char path[1024];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && !stat(path, &st) && S_ISREG(st.st_mode)) {
			run_add(r, "%s", path);
			added++;
		}
		free(names[i]);
	}
	free(names);
	return added;
}

/* Runs it with output to log; returns the exit status, 128+signal, or -1 if it hung. */
static int run_wait(struct fuzz_run *r, const char *log)
{
	time_t start = time(NULL);
	int status, fd;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(r->argv[0], (char **)r->argv);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (time(NULL) - start > RUN_LIMIT_S) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(50 * 1000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void log_tail(const char *log)
{
	char line[512];
	long lines = 0, skip;
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		lines++;
	rewind(f);
	skip = lines > 30 ? lines - 30 : 0;
	while (fgets(line, sizeof(line), f))
		if (skip-- <= 0)
			fprintf(stderr, "#   | %s", line);
	fclose(f);
}

/* The first "key<value>" number in log, or -1. */
static long log_number(const char *log, const char *key)
{
	char line[512];
	long v = -1;
	FILE *f = fopen(log, "r");

	if (!f)
		return -1;
	while (v < 0 && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, key);

		if (p)
			v = strtol(p + strlen(key), NULL, 10);
	}
	fclose(f);
	return v;
}

/* Lines of log that start with prefix. */
static int log_count(const char *log, const char *prefix)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(log, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, prefix, strlen(prefix));
	fclose(f);
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

FIXTURE(target) {
	char bin[256], log[256], corpus[256], crashes[256];
	int present;
};

FIXTURE_VARIANT(target) {
	const char *name;
};

FIXTURE_VARIANT_ADD(target, proto) { .name = "proto" };
FIXTURE_VARIANT_ADD(target, mbox) { .name = "mbox" };
FIXTURE_VARIANT_ADD(target, tplfile) { .name = "tplfile" };
FIXTURE_VARIANT_ADD(target, state) { .name = "state" };

FIXTURE_SETUP(target)
{
	const char *n = variant->name;

	snprintf(self->bin, sizeof(self->bin), FUZZ_DIR "/%s_fuzz", n);
	snprintf(self->log, sizeof(self->log), LOG_DIR "/%s.log", n);
	snprintf(self->corpus, sizeof(self->corpus), "tests/fuzz/corpus/%s", n);
	snprintf(self->crashes, sizeof(self->crashes), "tests/fuzz/crashes/%s", n);
	self->present = access(self->bin, X_OK) == 0;
	if (!self->present)
		SKIP(return, "%s not built: clang's libFuzzer is absent "
		     "(apt-get install clang-14 libclang-rt-14-dev, then make)", self->bin);
	mkdir(FUZZ_DIR, 0755);
	mkdir(LOG_DIR, 0755);
}

FIXTURE_TEARDOWN(target)
{
}

TEST_F(target, replays_every_seed_and_kept_crash)
{
	struct fuzz_run r = { .argc = 0 };
	int seeds, crashes, rc;

	if (!self->present)
		return;	/* 6.1's SKIP() in the setup does not stop the body */
	run_add(&r, "%s", self->bin);
	run_add(&r, "-timeout=10");
	run_add(&r, "-rss_limit_mb=2048");
	seeds = run_add_files(&r, self->corpus);
	crashes = run_add_files(&r, self->crashes);
	ASSERT_LT(0, seeds) TH_LOG("no seeds in %s: run from the tree root", self->corpus);
	rc = run_wait(&r, self->log);
	TH_LOG("%s: %d seeds, %d kept crash inputs, exit %d", variant->name, seeds, crashes, rc);
	if (rc)
		log_tail(self->log);
	EXPECT_EQ(0, rc);
	/* libFuzzer ran each one: "Executed <file> in N ms" per input. */
	EXPECT_EQ(seeds + crashes, log_count(self->log, "Executed "));
	run_free(&r);
}

TEST_F(target, fuzzes_clean_from_the_seeds)
{
	struct fuzz_run r = { .argc = 0 };
	char work[] = LOG_DIR "/work-XXXXXX";
	long execs;
	int rc;

	if (!self->present)
		return;
	ASSERT_NE(NULL, mkdtemp(work));
	run_add(&r, "%s", self->bin);
	run_add(&r, "-max_total_time=%d", fuzz_seconds());
	run_add(&r, "-timeout=10");
	run_add(&r, "-rss_limit_mb=2048");
	run_add(&r, "-max_len=65536");
	run_add(&r, "-print_final_stats=1");
	run_add(&r, "-artifact_prefix=%s/", work);
	run_add(&r, "%s", work);	/* new inputs land here, not in the tree */
	run_add(&r, "%s", self->corpus);
	if (access(self->crashes, F_OK) == 0)
		run_add(&r, "%s", self->crashes);
	rc = run_wait(&r, self->log);
	execs = log_number(self->log, "stat::number_of_executed_units: ");
	TH_LOG("%s: %d s, seed %ld, %ld inputs run, cov %ld, exit %d", variant->name,
	       fuzz_seconds(), log_number(self->log, "INFO: Seed: "), execs,
	       log_number(self->log, "DONE   cov: "), rc);
	if (rc) {
		log_tail(self->log);
		TH_LOG("crash input (if any) is in %s; keep it in %s/ once fixed", work,
		       self->crashes);
	} else {
		nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	EXPECT_EQ(0, rc);
	EXPECT_LT(0, execs);
	run_free(&r);
}

TEST_HARNESS_MAIN
