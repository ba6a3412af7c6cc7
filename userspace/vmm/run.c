// SPDX-License-Identifier: LGPL-2.1-or-later
/* run.c - runs a vCPU, dispatches its exits, and enforces deadlines with a kick signal. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kfork.h"
#include "lib/error.h"
#include "proto/kf_mbox.h"
#include "vmm/run.h"

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT", [KVM_EXIT_MMIO] = "MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN", [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY", [KVM_EXIT_INTR] = "INTR",
	[KVM_EXIT_SET_TPR] = "SET_TPR", [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	[KVM_EXIT_S390_SIEIC] = "S390_SIEIC", [KVM_EXIT_S390_RESET] = "S390_RESET",
	[KVM_EXIT_DCR] = "DCR", [KVM_EXIT_NMI] = "NMI",
	[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR", [KVM_EXIT_OSI] = "OSI",
	[KVM_EXIT_PAPR_HCALL] = "PAPR_HCALL", [KVM_EXIT_S390_UCONTROL] = "S390_UCONTROL",
	[KVM_EXIT_WATCHDOG] = "WATCHDOG", [KVM_EXIT_S390_TSCH] = "S390_TSCH",
	[KVM_EXIT_EPR] = "EPR", [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
};

static const char *exit_name(uint32_t reason)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	return "?";
}

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* --- deadline kick: a per-thread timer that interrupts KVM_RUN -------------- */

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static pthread_key_t kick_key;	/* set once a thread has a timer: deletes it at thread exit */
static __thread int kick_ready;
static __thread timer_t kick_timer;

static void kick_handler(int sig)
{
	(void)sig;	/* only there to make KVM_RUN return -EINTR */
}

/*
 * fork() copies the forking thread's kick_ready but not its POSIX timer: the
 * child's only thread must create its own (timer_settime on the inherited
 * id fails with EINVAL, or arms an unrelated timer of the child's).
 */
static void kick_forget_after_fork(void)
{
	kick_ready = 0;
}

/* A POSIX timer outlives its thread: without this every exec thread would leak one. */
static void kick_thread_exit(void *arg)
{
	(void)arg;
	if (kick_ready)
		timer_delete(kick_timer);
	kick_ready = 0;
}

static void kick_install(void)
{
	int sig = SIGRTMIN + KF_KICK_SIGNAL_OFFSET;
	struct sigaction old, sa = { .sa_handler = kick_handler };

	if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
		sigemptyset(&sa.sa_mask);
		sigaction(sig, &sa, NULL);	/* no SA_RESTART: KVM_RUN must return */
	}
	pthread_atfork(NULL, NULL, kick_forget_after_fork);
	pthread_key_create(&kick_key, kick_thread_exit);
}

#define KICK_PERIOD_NS	(10 * 1000000ull)

/* First kick at the deadline (0: none) or after one period when polling, whichever is first. */
static int kick_arm(uint64_t deadline_ns, int poll)
{
	struct itimerspec its = { 0 };
	uint64_t now = vm_now_ns();
	uint64_t delta = deadline_ns > now ? deadline_ns - now : 1;

	if (poll && (!deadline_ns || delta > KICK_PERIOD_NS))
		delta = KICK_PERIOD_NS;
	if (!kick_ready) {
		struct sigevent sev = {
			.sigev_notify = SIGEV_THREAD_ID,
			.sigev_signo = SIGRTMIN + KF_KICK_SIGNAL_OFFSET,
		};

		pthread_once(&kick_once, kick_install);
		sev._sigev_un._tid = syscall(SYS_gettid);
		if (timer_create(CLOCK_MONOTONIC, &sev, &kick_timer) < 0)
			return kf_fail(-errno, "timer_create for the exec deadline");
		kick_ready = 1;
		pthread_setspecific(kick_key, &kick_ready);	/* any non-NULL value */
	}
	/* Re-fire every 10 ms in case a kick lands between exits, not in KVM_RUN. */
	its.it_value.tv_sec = delta / 1000000000ull;
	its.it_value.tv_nsec = delta % 1000000000ull;
	its.it_interval.tv_nsec = KICK_PERIOD_NS;
	if (timer_settime(kick_timer, 0, &its, NULL) < 0)
		return kf_fail(-errno, "timer_settime for the exec deadline");
	return 0;
}

static void kick_disarm(void)
{
	struct itimerspec its = { 0 };

	if (kick_ready)
		timer_settime(kick_timer, 0, &its, NULL);
}

/* --- exits -------------------------------------------------------------------- */

int vm_uart_sync_irq(struct vm *vm)
{
	int level = uart_irq_level(&vm->uart);

	vm->uart.regs.irq_level = level;
	return vm_irq_line(vm, UART_COM1_IRQ, level);
}

static int vm_handle_io(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t size = run->io.size, count = run->io.count;
	uint16_t port = run->io.port;

	/* data_offset comes from the kernel but stays bounded by the mapping. */
	if (run->io.data_offset > (uint64_t)vm->run_size ||
	    (uint64_t)size * count > vm->run_size - run->io.data_offset)
		return kf_reject(-EIO, "%s: bad I/O exit", vm->name);
	if (port < UART_COM1_BASE || port >= UART_COM1_BASE + UART_NR_PORTS || size != 1) {
		/* No device here: reads float high, writes vanish. */
		if (run->io.direction == KVM_EXIT_IO_IN)
			memset(data, 0xff, (size_t)size * count);
		return 0;
	}
	for (uint32_t i = 0; i < count; i++) {
		int changed = uart_io(&vm->uart, port - UART_COM1_BASE,
				      run->io.direction == KVM_EXIT_IO_OUT, data + i);

		if (changed) {
			int err = vm_irq_line(vm, UART_COM1_IRQ, vm->uart.regs.irq_level);

			if (err)
				return err;
		}
	}
	return 0;
}

static int vm_handle_exit(struct vm *vm)
{
	struct kvm_run *run = vm->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return vm_handle_io(vm);
	case KVM_EXIT_MMIO:
		/* No MMIO devices but the mailbox doorbell: reads see zeros, writes vanish. */
		if (!run->mmio.is_write) {
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
			return 0;
		}
		if (vm->doorbell && (run->mmio.phys_addr & ~(VM_PAGE_SIZE - 1)) == KF_MBOX_DOORBELL_GPA)
			return vm->doorbell(vm->doorbell_arg);
		return 0;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		return kf_reject(-EFAULT, "%s: guest shut down (triple fault)", vm->name);
	case KVM_EXIT_HLT:
		return kf_reject(-EFAULT, "%s: guest halted", vm->name);
	case KVM_EXIT_FAIL_ENTRY:
		return kf_reject(-EFAULT, "%s: KVM_RUN entry failed, reason %#llx", vm->name,
			       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	case KVM_EXIT_INTERNAL_ERROR:
		return kf_reject(-EFAULT, "%s: KVM internal error, suberror %u", vm->name,
			       run->internal.suberror);
	default:
		return kf_reject(-EFAULT, "%s: unexpected exit %s (%u)", vm->name,
			       exit_name(run->exit_reason), run->exit_reason);
	}
}

int vm_run(struct vm *vm, uint64_t deadline_ns, int (*done)(void *arg), void *arg)
{
	int kick = deadline_ns || vm->poll;
	int err = 0;

	if (kick) {
		err = kick_arm(deadline_ns, vm->poll);
		if (err)
			return err;
	}
	for (;;) {
		if (deadline_ns && vm_now_ns() >= deadline_ns) {
			err = -ETIMEDOUT;
			break;
		}
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				err = kf_fail(-errno, "KVM_RUN on %s", vm->name);
				break;
			}
			err = vm_drain_coalesced(vm);
			if (err || done(arg))
				break;
			continue;
		}
		vm->exits++;
		/* Buffered THR writes happened before this exit: replay them first. */
		err = vm_drain_coalesced(vm);
		if (!err)
			err = vm_handle_exit(vm);
		if (err)
			break;
		if (done(arg))
			break;
	}
	if (kick)
		kick_disarm();
	return err;
}
