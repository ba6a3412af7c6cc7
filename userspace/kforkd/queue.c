// SPDX-License-Identifier: GPL-2.0-only
/* queue.c - the bounded queue of exec jobs and the worker threads that run each in a fresh clone. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include "kforkd.h"

/*
 * One lock for the queue and every job's state. A job is owned by its HTTP
 * request and, while queued or running, by the queue too (refs); the waiter
 * sleeps on done_cv until the worker, or shutdown, marks it done.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t work_cv;		/* workers: a job was queued, or stop */
	pthread_cond_t done_cv;		/* waiters: a job finished; shutdown: running dropped */
	struct kforkd_job *head, *tail;
	unsigned int depth, running, capacity;
	int stopping;			/* no new jobs */
	int stop_workers;		/* workers exit once idle */
	uint64_t deadline_ns;		/* while stopping: when shutdown cancels what is left */
	pthread_t *threads;
	struct kforkd_job **current;	/* per worker: the job it runs, or NULL */
	unsigned int n_threads;
	struct kforkd_config *cfg;
} q = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work_cv = PTHREAD_COND_INITIALIZER,
	.done_cv = PTHREAD_COND_INITIALIZER,
};

uint64_t kforkd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void job_free(struct kforkd_job *job)
{
	kf_exec_result_free(&job->res);
	free(job->code);
	free(job->stdin_data);
	free(job);
}

void kforkd_job_put(struct kforkd_job *job)
{
	int last;

	if (!job)
		return;
	pthread_mutex_lock(&q.lock);
	last = --job->refs == 0;
	pthread_mutex_unlock(&q.lock);
	if (last)
		job_free(job);
}

/* Spawn, exec, destroy: nothing of one request is left for the next. */
static void worker_run(struct kforkd_job *job, uint64_t deadline_ns)
{
	struct kf_exec_req req = {
		.lang = job->lang, .code = job->code, .code_len = job->code_len,
		.stdin_data = job->stdin_data, .stdin_len = job->stdin_len,
		.timeout_ms = job->timeout_ms, .max_output = q.cfg->max_output,
		.max_dirty = q.cfg->max_dirty,
	};
	struct kf_clone *clone;
	uint64_t t0 = kforkd_now_ns();

	/* Started during shutdown: it may not outlast the grace period. */
	if (deadline_ns) {
		uint64_t left_ms = deadline_ns > t0 ? (deadline_ns - t0) / 1000000 : 0;

		if (left_ms < req.timeout_ms)
			req.timeout_ms = left_ms ? left_ms : 1;
	}
	job->queue_us = (t0 - job->t_received_ns) / 1000;
	job->err = kf_spawn(job->tmpl->tmpl, &clone);
	job->spawn_us = (kforkd_now_ns() - t0) / 1000;
	if (job->err) {
		snprintf(job->errmsg, sizeof(job->errmsg), "kf_spawn of template %s: %s",
			 job->tmpl->name, kf_last_error());
		return;
	}
	kforkd_metrics_clones(1);
	job->err = kf_exec(clone, &req, &job->res);
	if (job->err && job->err != -ETIMEDOUT && job->err != -EMSGSIZE && job->err != -EDQUOT)
		snprintf(job->errmsg, sizeof(job->errmsg), "kf_exec in a clone of template %s: %s",
			 job->tmpl->name, kf_last_error());
	kf_destroy(clone);
	kforkd_metrics_clones(-1);
	job->total_us = (kforkd_now_ns() - job->t_received_ns) / 1000;
	kforkd_metrics_latency(job->spawn_us, job->total_us);
}

static void *worker_main(void *arg)
{
	unsigned int self = (unsigned int)(uintptr_t)arg;

	if (q.cfg->sandbox && kf_sandbox_thread(0)) {
		fprintf(stderr, "kforkd: kf_sandbox_thread: %s\n", kf_last_error());
		abort();	/* the daemon refused to start: main checked it once already */
	}
	pthread_mutex_lock(&q.lock);
	for (;;) {
		struct kforkd_job *job;
		uint64_t deadline;
		int last;

		while (!q.head && !q.stop_workers)
			pthread_cond_wait(&q.work_cv, &q.lock);
		if (!q.head)
			break;
		job = q.head;
		q.head = job->next;
		if (!q.head)
			q.tail = NULL;
		q.depth--;
		q.running++;
		job->state = JOB_RUNNING;
		q.current[self] = job;
		deadline = q.stopping ? q.deadline_ns : 0;
		pthread_mutex_unlock(&q.lock);

		worker_run(job, deadline);

		/*
		 * The queue's reference goes before the waiter can see DONE, so
		 * the waiter frees the job, off this thread, unless it gave up
		 * on it (shutdown); see main() on malloc and seccomp.
		 */
		pthread_mutex_lock(&q.lock);
		last = --job->refs == 0;
		job->state = JOB_DONE;
		q.current[self] = NULL;
		q.running--;
		pthread_cond_broadcast(&q.done_cv);
		if (last) {
			pthread_mutex_unlock(&q.lock);
			job_free(job);
			pthread_mutex_lock(&q.lock);
		}
	}
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

int kforkd_queue_start(struct kforkd_config *cfg)
{
	sigset_t all, old;
	int err = 0;

	q.cfg = cfg;
	q.capacity = cfg->queue;
	q.threads = calloc(cfg->workers, sizeof(*q.threads));
	q.current = calloc(cfg->workers, sizeof(*q.current));
	if (!q.threads || !q.current) {
		free(q.threads);
		free(q.current);
		return -ENOMEM;
	}
	/* Workers take no process signal but libkfork's own kick (SIGRTMIN + 3). */
	sigfillset(&all);
	sigdelset(&all, SIGRTMIN + KF_KICK_SIGNAL_OFFSET);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; q.n_threads < cfg->workers; q.n_threads++) {
		err = -pthread_create(&q.threads[q.n_threads], NULL, worker_main,
				       (void *)(uintptr_t)q.n_threads);
		if (err)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fprintf(stderr, "kforkd: starting worker %u: %s\n", q.n_threads, strerror(-err));
		kforkd_queue_shutdown(0);
	}
	return err;
}

int kforkd_queue_submit(struct kforkd_job **jobs, unsigned int n)
{
	pthread_mutex_lock(&q.lock);
	if (q.stopping) {
		pthread_mutex_unlock(&q.lock);
		return -ESHUTDOWN;
	}
	/* Room: --queue waiting, plus a worker for each that is idle now. */
	if (q.depth + n > q.capacity + (q.n_threads - q.running)) {
		pthread_mutex_unlock(&q.lock);
		return -EBUSY;
	}
	for (unsigned int i = 0; i < n; i++) {
		jobs[i]->refs++;
		jobs[i]->state = JOB_QUEUED;
		jobs[i]->next = NULL;
		if (q.tail)
			q.tail->next = jobs[i];
		else
			q.head = jobs[i];
		q.tail = jobs[i];
		q.depth++;
	}
	pthread_cond_broadcast(&q.work_cv);
	pthread_mutex_unlock(&q.lock);
	return 0;
}

void kforkd_queue_wait(struct kforkd_job *job)
{
	pthread_mutex_lock(&q.lock);
	while (job->state != JOB_DONE && !job->cancelled)
		pthread_cond_wait(&q.done_cv, &q.lock);
	pthread_mutex_unlock(&q.lock);
}

void kforkd_queue_stats(unsigned int *depth, unsigned int *running)
{
	pthread_mutex_lock(&q.lock);
	*depth = q.depth;
	*running = q.running;
	pthread_mutex_unlock(&q.lock);
}

/* Under q.lock: jobs still queued are dropped, running ones abandoned to their workers. */
static unsigned int queue_cancel_locked(void)
{
	struct kforkd_job *job, *next;
	unsigned int n = q.running;

	for (job = q.head; job; job = next) {
		next = job->next;
		job->cancelled = 1;
		job->state = JOB_DONE;
		job->refs--;	/* the queue's reference; the waiter still holds one */
		n++;
	}
	q.head = q.tail = NULL;
	q.depth = 0;
	for (unsigned int i = 0; i < q.n_threads; i++)
		if (q.current[i])
			q.current[i]->cancelled = 1;
	/*
	 * A running exec cannot be interrupted through libkfork's API: its
	 * client is answered now; the worker destroys the clone when the exec
	 * ends (its timeout, capped by --max-timeout-ms, bounds that).
	 */
	return n;
}

unsigned int kforkd_queue_shutdown(unsigned int grace_ms)
{
	struct timespec ts;
	unsigned int cancelled = 0;
	int rc = 0;

	pthread_mutex_lock(&q.lock);
	q.stopping = 1;
	q.deadline_ns = kforkd_now_ns() + grace_ms * 1000000ull;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace_ms / 1000;
	ts.tv_nsec += (grace_ms % 1000) * 1000000l;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	while ((q.head || q.running) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q.done_cv, &q.lock, &ts);
	if (q.head || q.running)
		cancelled = queue_cancel_locked();
	q.stop_workers = 1;
	pthread_cond_broadcast(&q.work_cv);
	pthread_cond_broadcast(&q.done_cv);
	pthread_mutex_unlock(&q.lock);
	for (unsigned int i = 0; i < q.n_threads; i++)
		pthread_join(q.threads[i], NULL);
	free(q.threads);
	free(q.current);
	q.threads = NULL;
	q.current = NULL;
	q.n_threads = 0;
	return cancelled;
}
