// SPDX-License-Identifier: GPL-2.0-only
/* unload_test.c - rmmod kfork with a live clone is refused, then works; runs after kmod_test. */
#include <errno.h>
#include <fcntl.h>
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

/* rmmod is refused while a clone is alive, then works; the module is loaded again. */
TEST(unload_refused_with_live_clones)
{
	const char *kmod = getenv("KFORK_KMOD");
	struct kf_template *tmpl = NULL;
	struct kfork_spawn sp;
	int ko, ret, tfd;

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
	if (ret == 0) {
		ko = open(kmod + 7, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, ko);
		EXPECT_EQ(0, syscall(SYS_finit_module, ko, "", 0)) TH_LOG("%s", strerror(errno));
		close(ko);
	}
}

TEST_HARNESS_MAIN
