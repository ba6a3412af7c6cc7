/* SPDX-License-Identifier: GPL-2.0-only */
/* kforkd.h - what kforkd's parts share: configuration, jobs and their queue, metrics, the HTTP front. */
#ifndef KFORKD_H
#define KFORKD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kfork.h"

#define KFORKD_MAX_TEMPLATES	16
#define KFORKD_TOKEN_MAX	4096

/* --- configuration (config.c) ------------------------------------------ */

struct kforkd_template {
	char name[64];
	const char *path;
	struct kf_template *tmpl;
	enum kf_exec_lang default_lang;
	int has_python;
};

struct kforkd_config {
	const char *listen;		/* "127.0.0.1:PORT", "[::1]:PORT" or NULL */
	const char *socket_path;	/* Unix socket or NULL */
	int listen_any;			/* allow a non-loopback --listen */
	const char *token_file;
	char token[KFORKD_TOKEN_MAX + 1];
	size_t token_len;		/* 0: no authentication */
	unsigned int workers;
	unsigned int queue;
	unsigned int max_connections;
	unsigned int max_batch;
	unsigned int default_timeout_ms;
	unsigned int max_timeout_ms;
	unsigned int grace_ms;
	size_t max_body;
	size_t max_output;
	uint64_t max_dirty;
	int sandbox;			/* seccomp on worker threads (kf_sandbox_thread) */
	enum kf_backend backend;
	struct kforkd_template templates[KFORKD_MAX_TEMPLATES];
	unsigned int n_templates;
};

/* Parses argv into cfg; prints usage and exits on --help or a bad option. */
void kforkd_config_parse(struct kforkd_config *cfg, int argc, char **argv);
/* Reads cfg->token_file (refused if group/other may read or write it). 0 or -errno, message on stderr. */
int kforkd_config_load_token(struct kforkd_config *cfg);
struct kforkd_template *kforkd_config_template(struct kforkd_config *cfg, const char *name);
/* 1 if the header value is "Bearer <token>", compared in constant time. */
int kforkd_token_ok(const struct kforkd_config *cfg, const char *authorization);

/* --- metrics (metrics.c) ------------------------------------------------ */

enum kforkd_outcome {
	KFORKD_OK,		/* the code ran and exited 0 */
	KFORKD_CODE_ERROR,	/* it ran and exited non-zero, or hit a limit */
	KFORKD_TIMEOUT,
	KFORKD_BAD_REQUEST,	/* 400, 404, 405, 413 */
	KFORKD_UNAUTHORIZED,
	KFORKD_BUSY,		/* 503: queue full or shutting down */
	KFORKD_INTERNAL,	/* 500: spawn or exec failed */
	KFORKD_OUTCOME_MAX,
};

void kforkd_metrics_outcome(enum kforkd_outcome outcome);
void kforkd_metrics_latency(uint64_t spawn_us, uint64_t total_us);
void kforkd_metrics_clones(int delta);
long kforkd_metrics_live_clones(void);
/* The Prometheus text exposition; malloc'd. */
char *kforkd_metrics_text(unsigned int queue_depth, unsigned int running, unsigned int workers);

/* --- jobs and their parsing (request.c) ---------------------------------- */

enum kforkd_encoding { KFORKD_UTF8, KFORKD_BASE64 };

enum kforkd_job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct kforkd_job {
	/* Set by the parser, read-only afterwards. */
	struct kforkd_template *tmpl;
	enum kf_exec_lang lang;
	enum kforkd_encoding encoding;
	char *code;
	size_t code_len;
	char *stdin_data;
	size_t stdin_len;
	unsigned int timeout_ms;
	uint64_t t_received_ns;
	/* Set by the worker, under the queue's lock once state is JOB_DONE. */
	enum kforkd_job_state state;
	int err;			/* kf_exec() or kf_spawn() result */
	int cancelled;			/* shutdown gave up on it: the client got 503 */
	char errmsg[512];
	struct kf_exec_result res;
	uint64_t spawn_us, queue_us, total_us;
	/* Two owners, the HTTP request and the queue; the last put frees it. */
	int refs;
	struct kforkd_job *next;
};

struct kforkd_error {
	unsigned int status;	/* HTTP status */
	char msg[256];
};

/*
 * Parses one exec request object into a new job (refs = 1), or fills err
 * (400 or 404) and returns NULL.
 */
struct kforkd_job *kforkd_job_parse(struct kforkd_config *cfg, json_t *obj, struct kforkd_error *err);
/* The JSON result of a finished job; *outcome says how to count it. */
json_t *kforkd_job_result(const struct kforkd_job *job, enum kforkd_outcome *outcome,
			  unsigned int *status);
json_t *kforkd_error_json(const char *msg);
/* Strict base64 (RFC 4648, padded, no white space). 0 or -EINVAL. */
int kforkd_base64_decode(const char *in, size_t len, char **out, size_t *out_len);
char *kforkd_base64_encode(const void *in, size_t len);

/* --- the queue and its workers (queue.c) --------------------------------- */

/* Starts cfg->workers threads. 0 or -errno. */
int kforkd_queue_start(struct kforkd_config *cfg);
/*
 * Queues all n jobs or none: -EBUSY if they do not fit (--queue waiting
 * beyond the idle workers),
 * -ESHUTDOWN once shutdown began. Each queued job gains a reference.
 */
int kforkd_queue_submit(struct kforkd_job **jobs, unsigned int n);
/* Waits until the job is done or cancelled by shutdown. */
void kforkd_queue_wait(struct kforkd_job *job);
void kforkd_job_put(struct kforkd_job *job);
void kforkd_queue_stats(unsigned int *depth, unsigned int *running);
/*
 * Refuses new jobs, lets queued and running ones finish for grace_ms, then
 * cancels the rest (their clients get 503), joins the workers (each destroys
 * its clone first). Returns the number of jobs cancelled.
 */
unsigned int kforkd_queue_shutdown(unsigned int grace_ms);

/* --- HTTP (http.c) ------------------------------------------------------ */

int kforkd_http_start(struct kforkd_config *cfg);
/* Stops accepting connections; requests under way go on. */
void kforkd_http_quiesce(void);
/* Closes every connection and stops the server threads. */
void kforkd_http_stop(void);

uint64_t kforkd_now_ns(void);

#endif
