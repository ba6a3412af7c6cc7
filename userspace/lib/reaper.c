// SPDX-License-Identifier: LGPL-2.1-or-later
/* reaper.c - one background thread that tears clones down off the caller's critical path. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "lib/internal.h"

static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static struct kf_clone *reap_list;
static int reaper_started;

static void *reaper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reap_lock);
	for (;;) {
		struct kf_clone *clone;

		while (!reap_list)
			pthread_cond_wait(&reap_cond, &reap_lock);
		clone = reap_list;
		reap_list = clone->reap_next;
		pthread_mutex_unlock(&reap_lock);
		clone_teardown(clone);
		pthread_mutex_lock(&reap_lock);
	}
	return NULL;
}

void reaper_push(struct kf_clone *clone)
{
	pthread_t thread;
	sigset_t all, old;

	pthread_mutex_lock(&reap_lock);
	if (!reaper_started) {
		/* The reaper must never take the caller's signals (e.g. the exec kick). */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		if (pthread_create(&thread, NULL, reaper_main, NULL) == 0) {
			pthread_detach(thread);
			reaper_started = 1;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (!reaper_started) {
		/* No thread: tear down inline rather than leak. */
		pthread_mutex_unlock(&reap_lock);
		clone_teardown(clone);
		return;
	}
	clone->reap_next = reap_list;
	reap_list = clone;
	pthread_cond_signal(&reap_cond);
	pthread_mutex_unlock(&reap_lock);
}
