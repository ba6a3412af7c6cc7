// SPDX-License-Identifier: GPL-2.0-only
/* main.c - kforkd: opens the templates, starts workers and HTTP, waits for SIGTERM, shuts down cleanly. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kforkd.h"

/* One clone runs a trivial program: the template works, and its working set is warm. */
static int template_warm(struct kforkd_template *t)
{
	static const char py[] = "pass", sh[] = "exit 0";
	struct kf_exec_req req = { .lang = t->default_lang, .timeout_ms = 60000 };
	struct kf_exec_result res;
	struct kf_clone *clone;
	int err;

	req.code = t->default_lang == KF_EXEC_PYTHON ? py : sh;
	req.code_len = strlen(req.code);
	err = kf_spawn(t->tmpl, &clone);
	if (err) {
		fprintf(stderr, "kforkd: template %s (%s): kf_spawn: %s\n", t->name, t->path, kf_last_error());
		return err;
	}
	err = kf_exec(clone, &req, &res);
	if (err)
		fprintf(stderr, "kforkd: template %s (%s): a trivial exec failed: %s\n", t->name, t->path,
			kf_last_error());
	else if (res.exit_code)
		fprintf(stderr, "kforkd: template %s (%s): a trivial exec exited %d\n", t->name, t->path,
			res.exit_code);
	err = err ? err : res.exit_code ? -EPROTO : 0;
	kf_exec_result_free(&res);
	kf_destroy(clone);
	return err;
}

static int templates_open(struct kforkd_config *cfg)
{
	for (unsigned int i = 0; i < cfg->n_templates; i++) {
		struct kforkd_template *t = &cfg->templates[i];
		int err = kf_template_open(t->path, cfg->backend, &t->tmpl);

		if (err) {
			fprintf(stderr, "kforkd: template %s: %s\n", t->name, kf_last_error());
			return err;
		}
		t->has_python = kf_template_kind(t->tmpl) == KF_KIND_PYTHON;
		t->default_lang = t->has_python ? KF_EXEC_PYTHON : KF_EXEC_SH;
		err = template_warm(t);
		if (err)
			return err;
		fprintf(stderr, "kforkd: template %s: %s, %s backend%s\n", t->name, t->path,
			kf_backend_name(kf_template_backend(t->tmpl)),
			kf_template_is_persistent(t->tmpl) ? ", kept by kfork.ko" : "");
	}
	return 0;
}

static void templates_close(struct kforkd_config *cfg)
{
	for (unsigned int i = 0; i < cfg->n_templates; i++) {
		kf_template_close(cfg->templates[i].tmpl);
		cfg->templates[i].tmpl = NULL;
	}
}

static void *sandbox_probe(void *arg)
{
	*(int *)arg = kf_sandbox_thread(0);
	return NULL;
}

/* Workers abort if they cannot be sandboxed; find out before starting any. */
static int sandbox_check(const struct kforkd_config *cfg)
{
	pthread_t t;
	int err = 0;

	if (!cfg->sandbox)
		return 0;
	if (pthread_create(&t, NULL, sandbox_probe, &err))
		return -errno;
	pthread_join(t, NULL);
	if (err)
		fprintf(stderr, "kforkd: kf_sandbox_thread: %s (--no-sandbox runs workers without seccomp)\n",
			kf_last_error());
	return err;
}

static int signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	return pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int run(struct kforkd_config *cfg, const sigset_t *set)
{
	unsigned int cancelled;
	int sig = 0, err;

	err = templates_open(cfg);
	if (!err)
		err = sandbox_check(cfg);
	if (!err)
		err = kforkd_queue_start(cfg);
	if (err)
		return err;
	err = kforkd_http_start(cfg);
	if (err) {
		kforkd_queue_shutdown(0);
		return err;
	}
	fprintf(stderr, "kforkd: ready: %u template%s, %u workers, queue %u%s\n", cfg->n_templates,
		cfg->n_templates == 1 ? "" : "s", cfg->workers, cfg->queue,
		cfg->token_len ? ", bearer token required" : ", NO authentication (no --token-file)");
	while (sigwait(set, &sig))
		;
	fprintf(stderr, "kforkd: %s: no new connections; requests under way have %u ms\n",
		strsignal(sig), cfg->grace_ms);
	kforkd_http_quiesce();
	cancelled = kforkd_queue_shutdown(cfg->grace_ms);
	kforkd_http_stop();
	fprintf(stderr, "kforkd: stopped; %u request%s cancelled, %ld clones live\n", cancelled,
		cancelled == 1 ? "" : "s", kforkd_metrics_live_clones());
	return 0;
}

int main(int argc, char **argv)
{
	static struct kforkd_config cfg;
	sigset_t set;
	int err;

	/*
	 * One malloc arena for every thread. glibc shrinks a thread's own arena
	 * on free() and, the first time, opens /proc/sys/vm/overcommit_memory
	 * to decide how: in a worker under kf_sandbox_thread() that openat()
	 * kills the whole daemon with SIGSYS (seen in a test run). The main
	 * arena shrinks with brk() and never opens anything.
	 */
	mallopt(M_ARENA_MAX, 1);
	kforkd_config_parse(&cfg, argc, argv);
	if (kforkd_config_load_token(&cfg))
		return 1;
	if (signals_block(&set)) {
		perror("kforkd: pthread_sigmask");
		return 1;
	}
	err = run(&cfg, &set);
	templates_close(&cfg);
	explicit_bzero(cfg.token, sizeof(cfg.token));
	return err ? 1 : 0;
}
