// SPDX-License-Identifier: GPL-2.0-only
/* stats_cli_test.c - `kfork stats`: kfork.ko's module-wide live templates and clones, beside the per-template lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "kselftest_harness.h"
#include "lib/internal.h"

#define TINY_BIN	"build/tests/tiny.bin"

/* Runs cmd; its stdout into out; returns the exit status. */
static int sh(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	int st;

	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(kmod) {
	char path[64];
	struct kf_template *tmpl;
	struct kf_clone *clones[2];
	const char *skip;
	char out[65536];
};

FIXTURE_SETUP(kmod)
{
	struct kf_build_opts opts = { .kind = KF_KIND_TINY, .kernel = TINY_BIN };

	self->tmpl = NULL;
	self->skip = NULL;
	if (access("/dev/kfork", R_OK | W_OK))
		self->skip = "/dev/kfork not available (kfork.ko not loaded)";
	else if (access(TINY_BIN, R_OK))
		self->skip = TINY_BIN " not built (run make)";
	if (self->skip)
		return;
	snprintf(self->path, sizeof(self->path), "/tmp/kfork-stats-cli-%d.tmpl", getpid());
	ASSERT_EQ(0, kf_template_build(&opts, self->path)) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_template_open(self->path, KF_BACKEND_KMOD, &self->tmpl))
		TH_LOG("%s", kf_last_error());
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, kf_spawn(self->tmpl, &self->clones[i])) TH_LOG("%s", kf_last_error());
	}
}

FIXTURE_TEARDOWN(kmod)
{
	if (self->skip)
		return;
	for (int i = 0; i < 2; i++)
		kf_destroy(self->clones[i]);
	kf_template_close(self->tmpl);
	/* Nothing a failed test had kfork.ko keep outlives it. */
	if (system("build/kfork template unload --all >/dev/null 2>&1") == -1)
		perror("system");
	unlink(self->path);
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

#define NEED_KMOD() do { if (self->skip) SKIP(return, "%s", self->skip); } while (0)

/* This process holds one template and two clones; nobody else in the lab holds any. */
TEST_F(kmod, stats_shows_module_totals_and_the_open_template)
{
	NEED_KMOD();
	ASSERT_EQ(0, sh("build/kfork stats", self->out, sizeof(self->out)));
	EXPECT_TRUE(starts_with(self->out, "kfork.ko: 1 live templates, 2 live clones; since loaded: "))
		TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, " resets\ntemplate ")) TH_LOG("%s", self->out);
	ASSERT_EQ(0, sh("build/kfork stats --json", self->out, sizeof(self->out)));
	EXPECT_TRUE(starts_with(self->out, "{\"live_templates\":1,\"live_clones\":2,\"templates\":[{\"template\":"))
		TH_LOG("%s", self->out);
}

TEST_F(kmod, stats_after_close_says_none_is_open)
{
	NEED_KMOD();
	for (int i = 0; i < 2; i++)
		kf_destroy(self->clones[i]);
	kf_template_close(self->tmpl);
	self->skip = "closed";	/* nothing left for the teardown */
	unlink(self->path);
	/* kf_destroy() tears clones down on a library thread: give it a moment. */
	for (int tries = 0; tries < 50; tries++) {
		ASSERT_EQ(0, sh("build/kfork stats", self->out, sizeof(self->out)));
		if (starts_with(self->out, "kfork.ko: 0 live templates, 0 live clones;"))
			break;
		usleep(100000);
	}
	EXPECT_TRUE(starts_with(self->out, "kfork.ko: 0 live templates, 0 live clones; since loaded: "))
		TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, " resets\n"
		     "no template is open or kept now (templates appear here while a process holds one open or kfork.ko keeps one)\n"))
		TH_LOG("%s", self->out);
}

static long long since_loaded(const char *json, const char *key)
{
	char pat[64];
	const char *p = strstr(json, "\"since_loaded\":");

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = p ? strstr(p, pat) : NULL;
	return p ? atoll(p + strlen(pat)) : -1;
}

/* Totals since the module loaded count every spawn and failure, each exactly once. */
TEST_F(kmod, stats_totals_count_spawns_and_failures)
{
	struct kf_clone *c[2];
	long long spawns, failed, templates;

	NEED_KMOD();
	ASSERT_EQ(0, sh("build/kfork stats --json", self->out, sizeof(self->out)));
	spawns = since_loaded(self->out, "spawns");
	failed = since_loaded(self->out, "spawn_failures");
	templates = since_loaded(self->out, "templates");
	ASSERT_LE(2, spawns) TH_LOG("%s", self->out);	/* the fixture's two */
	ASSERT_LE(1, templates);
	ASSERT_EQ(0, kf_spawn(self->tmpl, &c[0])) TH_LOG("%s", kf_last_error());
	ASSERT_EQ(0, kf_spawn(self->tmpl, &c[1])) TH_LOG("%s", kf_last_error());
	/* A template capped at one live clone: its second spawn fails (ENOSPC). */
	{
		struct kfork_template_create args = {
			.size = sizeof(args), .max_clones = 1,
		};
		struct kf_template *u = NULL;
		struct kfork_spawn sp[2];
		int dev, tfd;

		ASSERT_EQ(0, kf_template_open(self->path, KF_BACKEND_USER, &u));
		args.mem_fd = u->memfd;
		args.mem_size = u->mem_size;
		args.state_ptr = (uintptr_t)u->state.buf;
		args.state_len = u->state.len;
		dev = open("/dev/kfork", O_RDWR | O_CLOEXEC);
		tfd = ioctl(dev, KFORK_TEMPLATE_CREATE, &args);
		close(dev);
		ASSERT_LE(0, tfd);
		for (int i = 0; i < 2; i++) {
			memset(&sp[i], 0, sizeof(sp[i]));
			sp[i].size = sizeof(sp[i]);
		}
		ASSERT_EQ(0, ioctl(tfd, KFORK_SPAWN, &sp[0]));
		EXPECT_EQ(-1, ioctl(tfd, KFORK_SPAWN, &sp[1]));
		EXPECT_EQ(ENOSPC, errno);
		munmap((void *)(uintptr_t)sp[0].run_addr, sp[0].run_size);
		munmap((void *)(uintptr_t)sp[0].mem_addr, sp[0].mem_size);
		munmap((void *)(uintptr_t)sp[0].scratch_addr, sp[0].scratch_size);
		close(sp[0].vcpu_fd);
		close(sp[0].vm_fd);
		close(sp[0].clone_fd);
		close(tfd);
		kf_template_close(u);
	}
	ASSERT_EQ(0, sh("build/kfork stats --json", self->out, sizeof(self->out)));
	EXPECT_EQ(spawns + 3, since_loaded(self->out, "spawns")) TH_LOG("%s", self->out);
	EXPECT_EQ(failed + 1, since_loaded(self->out, "spawn_failures")) TH_LOG("%s", self->out);
	EXPECT_EQ(templates + 1, since_loaded(self->out, "templates")) TH_LOG("%s", self->out);
	kf_destroy(c[0]);
	kf_destroy(c[1]);
}

/* kfork template load: later runs attach (kept), stats say so, unload ends it. */
TEST_F(kmod, template_load_makes_runs_attach_until_unload)
{
	char cmd[256];

	NEED_KMOD();
	snprintf(cmd, sizeof(cmd), "build/kfork template load %s", self->path);
	ASSERT_EQ(0, sh(cmd, self->out, sizeof(self->out)));
	ASSERT_EQ(0, sh(cmd, self->out, sizeof(self->out)));	/* kept already: fine */
	snprintf(cmd, sizeof(cmd), "build/kfork run -t %s --json -- 'echo hi'", self->path);
	ASSERT_EQ(0, sh(cmd, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "\"stdout\":\"hi\\n\"")) TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, "\"kept\":true")) TH_LOG("%s", self->out);
	ASSERT_EQ(0, sh("build/kfork stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, " (kept): ")) TH_LOG("%s", self->out);
	snprintf(cmd, sizeof(cmd), "build/kfork template unload %s", self->path);
	ASSERT_EQ(0, sh(cmd, self->out, sizeof(self->out)));
	EXPECT_EQ(125, sh(cmd, self->out, sizeof(self->out)));
	snprintf(cmd, sizeof(cmd), "build/kfork run -t %s --json -- 'echo hi'", self->path);
	ASSERT_EQ(0, sh(cmd, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "\"kept\":false")) TH_LOG("%s", self->out);
	ASSERT_EQ(0, sh("build/kfork stats", self->out, sizeof(self->out)));
	EXPECT_EQ(NULL, strstr(self->out, "(kept)")) TH_LOG("%s", self->out);
}

TEST_HARNESS_MAIN
