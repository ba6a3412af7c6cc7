// SPDX-License-Identifier: GPL-2.0-only
/* unload_test.c - rmmod kfork with a live clone is refused, then works; runs after kmod_test. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../kmod/uapi/kfork.h"
#include "kfork.h"
#include "kselftest_harness.h"
#include "lib/internal.h"

#define TPL_PATH	"/tmp/kfork-unload-test-tiny.tmpl"

static long shmem_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Shmem: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int module_load(const char *kmod)
{
	int ko = open(kmod + 7, O_RDONLY | O_CLOEXEC), ret;

	if (ko < 0)
		return -1;
	ret = syscall(SYS_finit_module, ko, "", 0);
	close(ko);
	return ret;
}

/* rmmod is refused while a clone is alive, then works; the module is loaded again. */
TEST(unload_refused_with_live_clones)
{
	const char *kmod = getenv("KFORK_KMOD");
	struct kf_template *tmpl = NULL;
	struct kfork_spawn sp;
	int ret, tfd;

	if (access(KFORK_DEVICE, R_OK | W_OK) || access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kfork or /dev/kvm: kfork.ko not loaded (run under make lab)");
	if (!kmod || strncmp(kmod, "loaded:", 7))
		SKIP(return, "KFORK_KMOD does not name the loaded module (not in the lab)");
	{
		struct kf_build_opts opts = { .kind = KF_KIND_TINY,
					      .kernel = "build/tests/tiny.bin" };

		ASSERT_EQ(0, kf_template_build(&opts, TPL_PATH)) TH_LOG("%s", kf_last_error());
	}
	ASSERT_EQ(0, kf_template_open(TPL_PATH, KF_BACKEND_KMOD, &tmpl));
	memset(&sp, 0, sizeof(sp));
	sp.size = sizeof(sp);
	ASSERT_EQ(0, ioctl(tmpl->kmod_fd, KFORK_SPAWN, &sp));
	tfd = tmpl->kmod_fd;
	tmpl->kmod_fd = -1;
	kf_template_close(tmpl);
	close(tfd);	/* only the clone fd pins the module now */
	EXPECT_EQ(-1, syscall(SYS_delete_module, "kfork", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY) TH_LOG("%s", strerror(errno));
	/* The VM outlives its link to the module: still runnable after the clone fd goes. */
	close(sp.clone_fd);
	ret = syscall(SYS_delete_module, "kfork", O_NONBLOCK);
	EXPECT_EQ(0, ret) TH_LOG("delete_module: %s", strerror(errno));
	EXPECT_EQ(0, ioctl(sp.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) < 0);
	munmap((void *)(uintptr_t)sp.run_addr, sp.run_size);
	munmap((void *)(uintptr_t)sp.mem_addr, sp.mem_size);
	if (sp.scratch_addr)
		munmap((void *)(uintptr_t)sp.scratch_addr, sp.scratch_size);
	close(sp.vcpu_fd);
	close(sp.vm_fd);
	if (ret == 0)
		EXPECT_EQ(0, module_load(kmod)) TH_LOG("%s", strerror(errno));
}

/*
 * Kept templates do not pin the module: rmmod frees them with it, and their
 * memory (a 4 MiB tiny template of 1024 resident shmem pages each) comes back.
 */
TEST(unload_frees_kept_templates)
{
	const char *kmod = getenv("KFORK_KMOD");
	struct kfork_template_key k = { .size = sizeof(k) };
	struct kf_template *user = NULL;
	long before, kept, after = 0;
	int fd[4], ret;

	if (access(KFORK_DEVICE, R_OK | W_OK) || access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kfork or /dev/kvm: kfork.ko not loaded (run under make lab)");
	if (!kmod || strncmp(kmod, "loaded:", 7))
		SKIP(return, "KFORK_KMOD does not name the loaded module (not in the lab)");
	ASSERT_EQ(0, kf_template_open(TPL_PATH, KF_BACKEND_USER, &user)) TH_LOG("%s", kf_last_error());
	before = shmem_kb();
	for (int i = 0; i < 4; i++) {
		struct kfork_template_create args = {
			.size = sizeof(args), .mem_fd = user->memfd, .mem_size = user->mem_size,
			.state_ptr = (uintptr_t)user->state.buf, .state_len = user->state.len,
		};
		int dev = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, dev);
		fd[i] = ioctl(dev, KFORK_TEMPLATE_CREATE, &args);
		close(dev);
		ASSERT_LE(0, fd[i]) TH_LOG("%s", strerror(errno));
		k.key[0] = i + 1;
		ASSERT_EQ(0, ioctl(fd[i], KFORK_TEMPLATE_PERSIST, &k)) TH_LOG("%s", strerror(errno));
	}
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	kept = shmem_kb();
	EXPECT_LE(before + 4 * (long)(user->mem_size >> 10) * 9 / 10, kept);
	ret = -1;
	for (int i = 0; i < 50 && ret; i++) {	/* the closes' fputs may still be running */
		ret = syscall(SYS_delete_module, "kfork", O_NONBLOCK);
		if (ret)
			usleep(20000);
	}
	ASSERT_EQ(0, ret) TH_LOG("delete_module: %s", strerror(errno));
	for (int i = 0; i < 100; i++) {
		after = shmem_kb();
		if (after < kept - 4 * 4096 * 9 / 10)
			break;
		usleep(20000);
	}
	EXPECT_GT(kept - 4 * 4096 * 9 / 10, after)
		TH_LOG("Shmem %ld kB before, %ld kept, %ld after rmmod", before, kept, after);
	kf_template_close(user);
	ASSERT_EQ(0, module_load(kmod)) TH_LOG("%s", strerror(errno));
}

TEST_HARNESS_MAIN
