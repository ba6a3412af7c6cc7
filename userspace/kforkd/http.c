// SPDX-License-Identifier: GPL-2.0-only
/* http.c - kforkd's HTTP front (libmicrohttpd): listening sockets, auth, body cap, routes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "kforkd.h"

/* One server per listening socket: TCP, Unix, or both. */
static struct MHD_Daemon *servers[2];
static unsigned int n_servers;
static struct kforkd_config *config;
static _Atomic int stopping;
/* Requests begun and not yet completed (response sent or connection gone). */
static _Atomic int in_flight;

/* What one request has sent so far. */
struct request_ctx {
	char *body;
	size_t len;
	int too_big;
	int answered;
};

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int status,
				    char *text, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!text)
		return MHD_NO;	/* out of memory: MHD closes the connection */
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"kforkd\"");
	if (status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
	if (stopping)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Consumes v. */
static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned int status, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	char *line = NULL;

	json_decref(v);
	if (text && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	free(text);
	return respond_text(conn, status, line, "application/json");
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned int status,
				     enum kforkd_outcome outcome, const char *msg)
{
	kforkd_metrics_outcome(outcome);
	return respond_json(conn, status, kforkd_error_json(msg));
}

static json_t *body_parse(struct request_ctx *ctx, struct kforkd_error *err)
{
	json_error_t jerr;
	json_t *v = json_loadb(ctx->body ? ctx->body : "", ctx->len,
			       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

	if (!v) {
		err->status = 400;
		snprintf(err->msg, sizeof(err->msg), "invalid JSON (line %d, column %d): %s",
			 jerr.line, jerr.column, jerr.text);
	}
	return v;
}

static enum MHD_Result refuse_submit(struct MHD_Connection *conn, int err, unsigned int n)
{
	char msg[128];

	if (err == -ESHUTDOWN)
		return respond_error(conn, 503, KFORKD_BUSY, "kforkd is shutting down");
	snprintf(msg, sizeof(msg), "busy: the queue (--queue %u) has no room for %u more request%s",
		 config->queue, n, n == 1 ? "" : "s");
	return respond_error(conn, 503, KFORKD_BUSY, msg);
}

static enum MHD_Result route_exec(struct MHD_Connection *conn, struct request_ctx *ctx)
{
	struct kforkd_error err = { 0 };
	enum kforkd_outcome outcome;
	struct kforkd_job *job;
	unsigned int status;
	json_t *body, *res;
	int rc;

	body = body_parse(ctx, &err);
	if (!body)
		return respond_error(conn, err.status, KFORKD_BAD_REQUEST, err.msg);
	job = kforkd_job_parse(config, body, &err);
	json_decref(body);
	if (!job)
		return respond_error(conn, err.status,
				     err.status == 500 ? KFORKD_INTERNAL : KFORKD_BAD_REQUEST, err.msg);
	rc = kforkd_queue_submit(&job, 1);
	if (rc) {
		kforkd_job_put(job);
		return refuse_submit(conn, rc, 1);
	}
	kforkd_queue_wait(job);
	res = kforkd_job_result(job, &outcome, &status);
	kforkd_job_put(job);
	kforkd_metrics_outcome(outcome);
	return respond_json(conn, status, res);
}

static void jobs_put(struct kforkd_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kforkd_job_put(jobs[i]);
	free(jobs);
}

/* Every job or an error for the whole batch, naming the request at fault. */
static struct kforkd_job **batch_parse(json_t *body, size_t *n, struct kforkd_error *err)
{
	struct kforkd_job **jobs;
	size_t i;

	err->status = 400;
	if (!json_is_array(body) || !json_array_size(body) || json_array_size(body) > config->max_batch) {
		snprintf(err->msg, sizeof(err->msg), "a batch is a JSON array of 1 to %u exec requests",
			 config->max_batch);
		return NULL;
	}
	*n = json_array_size(body);
	jobs = calloc(*n, sizeof(*jobs));
	if (!jobs) {
		err->status = 500;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	for (i = 0; i < *n; i++) {
		jobs[i] = kforkd_job_parse(config, json_array_get(body, i), err);
		if (!jobs[i]) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "request %zu of the batch: %.200s", i, err->msg);
			memcpy(err->msg, msg, sizeof(msg));
			jobs_put(jobs, i);
			return NULL;
		}
	}
	return jobs;
}

static enum MHD_Result route_batch(struct MHD_Connection *conn, struct request_ctx *ctx)
{
	struct kforkd_error err = { 0 };
	struct kforkd_job **jobs;
	json_t *body, *out;
	size_t n = 0;
	int rc;

	body = body_parse(ctx, &err);
	if (!body)
		return respond_error(conn, err.status, KFORKD_BAD_REQUEST, err.msg);
	jobs = batch_parse(body, &n, &err);
	json_decref(body);
	if (!jobs)
		return respond_error(conn, err.status,
				     err.status == 500 ? KFORKD_INTERNAL : KFORKD_BAD_REQUEST, err.msg);
	rc = kforkd_queue_submit(jobs, n);
	if (rc) {
		jobs_put(jobs, n);
		return refuse_submit(conn, rc, n);
	}
	out = json_array();
	for (size_t i = 0; i < n; i++) {
		enum kforkd_outcome outcome;
		unsigned int status;

		kforkd_queue_wait(jobs[i]);
		json_array_append_new(out, kforkd_job_result(jobs[i], &outcome, &status));
		kforkd_metrics_outcome(outcome);
	}
	jobs_put(jobs, n);
	return respond_json(conn, 200, out);
}

static enum MHD_Result route_health(struct MHD_Connection *conn)
{
	unsigned int depth, running;
	json_t *names = json_array();

	kforkd_queue_stats(&depth, &running);
	for (unsigned int i = 0; i < config->n_templates; i++)
		json_array_append_new(names, json_string(config->templates[i].name));
	return respond_json(conn, stopping ? 503 : 200,
			    json_pack("{s:s,s:o,s:i,s:i,s:i,s:I}", "status", stopping ? "stopping" : "ok",
				      "templates", names, "workers", (int)config->workers,
				      "queue_depth", (int)depth, "running", (int)running,
				      "live_clones", (json_int_t)kforkd_metrics_live_clones()));
}

static enum MHD_Result route_metrics(struct MHD_Connection *conn)
{
	unsigned int depth, running;

	kforkd_queue_stats(&depth, &running);
	return respond_text(conn, 200, kforkd_metrics_text(depth, running, config->workers),
			    "text/plain; version=0.0.4");
}

enum route { ROUTE_NONE, ROUTE_EXEC, ROUTE_BATCH, ROUTE_HEALTH, ROUTE_METRICS };

static const struct {
	const char *path;
	const char *method;
	enum route route;
} routes[] = {
	{ "/v1/exec", "POST", ROUTE_EXEC },
	{ "/v1/exec/batch", "POST", ROUTE_BATCH },
	{ "/v1/health", "GET", ROUTE_HEALTH },
	{ "/v1/metrics", "GET", ROUTE_METRICS },
};

/* The route, or ROUTE_NONE with *wrong_method set if the path exists. */
static enum route route_find(const char *url, const char *method, int *wrong_method)
{
	*wrong_method = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(url, routes[i].path))
			continue;
		if (!strcmp(method, routes[i].method))
			return routes[i].route;
		*wrong_method = 1;
	}
	return ROUTE_NONE;
}

/* Before the body: route, token and declared length, so a refusal costs no upload. */
static enum MHD_Result request_begin(struct MHD_Connection *conn, const char *url,
				     const char *method, struct request_ctx *ctx)
{
	const char *auth, *clen;
	int wrong_method;
	enum route r = route_find(url, method, &wrong_method);

	if (r == ROUTE_NONE) {
		ctx->answered = 1;
		if (wrong_method)
			return respond_error(conn, 405, KFORKD_BAD_REQUEST, "method not allowed here");
		return respond_error(conn, 404, KFORKD_BAD_REQUEST,
				     "no such endpoint (POST /v1/exec, POST /v1/exec/batch, GET /v1/health, GET /v1/metrics)");
	}
	if (r == ROUTE_HEALTH)
		return MHD_YES;
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!kforkd_token_ok(config, auth)) {
		ctx->answered = 1;
		return respond_error(conn, 401, KFORKD_UNAUTHORIZED,
				     auth ? "unauthorized: wrong bearer token" :
					    "unauthorized: send Authorization: Bearer <token>");
	}
	clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen && strtoull(clen, NULL, 10) > config->max_body) {
		ctx->answered = 1;
		return respond_error(conn, 413, KFORKD_BAD_REQUEST, "request body larger than --max-body");
	}
	return MHD_YES;
}

/* Keeps at most max_body bytes; past that, the rest is read and dropped. */
static int request_append(struct request_ctx *ctx, const char *data, size_t len)
{
	char *p;

	if (ctx->too_big || len > config->max_body - ctx->len) {
		ctx->too_big = 1;
		return 0;
	}
	p = realloc(ctx->body, ctx->len + len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p + ctx->len, data, len);
	ctx->body = p;
	ctx->len += len;
	return 0;
}

static enum MHD_Result request_end(struct MHD_Connection *conn, const char *url,
				   const char *method, struct request_ctx *ctx)
{
	int wrong_method;

	ctx->answered = 1;
	if (ctx->too_big)
		return respond_error(conn, 413, KFORKD_BAD_REQUEST, "request body larger than --max-body");
	switch (route_find(url, method, &wrong_method)) {
	case ROUTE_EXEC: return route_exec(conn, ctx);
	case ROUTE_BATCH: return route_batch(conn, ctx);
	case ROUTE_HEALTH: return route_health(conn);
	case ROUTE_METRICS: return route_metrics(conn);
	default: return MHD_NO;
	}
}

static enum MHD_Result request_handle(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct request_ctx *ctx = *con_cls;

	(void)cls;
	(void)version;
	if (!ctx) {
		ctx = calloc(1, sizeof(*ctx));
		if (!ctx)
			return MHD_NO;
		*con_cls = ctx;
		in_flight++;
		return request_begin(conn, url, method, ctx);
	}
	if (ctx->answered) {
		*upload_data_size = 0;	/* refused already: drop the rest */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (request_append(ctx, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return request_end(conn, url, method, ctx);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request_ctx *ctx = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!ctx)
		return;
	free(ctx->body);
	free(ctx);
	*con_cls = NULL;
	in_flight--;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

/* "HOST:PORT" or "[HOST]:PORT", numeric only. */
static int listen_resolve(const char *spec, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	char host[64];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hlen;

	if (!colon || !colon[1])
		return -EINVAL;
	hlen = colon - spec;
	if (*h == '[') {
		if (hlen < 2 || spec[hlen - 1] != ']')
			return -EINVAL;
		h++;
		hlen -= 2;
	}
	if (!hlen || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	return getaddrinfo(host, colon + 1, &hints, res) ? -EINVAL : 0;
}

static void print_bound(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		fprintf(stderr, "kforkd: listening on %s:%d\n", host, port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		fprintf(stderr, "kforkd: listening on [%s]:%d\n", host, port);
	}
}

static int listen_tcp(const struct kforkd_config *cfg)
{
	struct addrinfo *ai = NULL;
	int fd = -1, one = 1, err;

	if (listen_resolve(cfg->listen, &ai)) {
		fprintf(stderr, "kforkd: --listen %s: expected a numeric ADDR:PORT (127.0.0.1:8080, [::1]:8080)\n",
			cfg->listen);
		return -EINVAL;
	}
	err = -EPERM;
	if (!is_loopback(ai->ai_addr) && !cfg->listen_any) {
		fprintf(stderr, "kforkd: --listen %s is not a loopback address: add --listen-any to serve "
			"other hosts (and put TLS in front: kforkd speaks plain HTTP)\n", cfg->listen);
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
		err = -errno;
		fprintf(stderr, "kforkd: --listen %s: %s\n", cfg->listen, strerror(errno));
		goto out;
	}
	print_bound(fd);
	freeaddrinfo(ai);
	return fd;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
}

static int listen_unix(const struct kforkd_config *cfg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (strlen(cfg->socket_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "kforkd: --socket %s: longer than %zu bytes\n", cfg->socket_path,
			sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, cfg->socket_path);
	/* A stale socket of an earlier run goes; anything else at the path stays. */
	if (!lstat(cfg->socket_path, &st) && S_ISSOCK(st.st_mode))
		unlink(cfg->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    chmod(cfg->socket_path, 0660) || listen(fd, 128)) {
		err = -errno;
		fprintf(stderr, "kforkd: --socket %s: %s\n", cfg->socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	fprintf(stderr, "kforkd: listening on %s\n", cfg->socket_path);
	return fd;
}

static int server_start(int fd)
{
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	d = MHD_start_daemon(flags, 0, NULL, NULL, request_handle, NULL,
			     MHD_OPTION_LISTEN_SOCKET, fd,
			     MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, config->max_connections,
			     MHD_OPTION_CONNECTION_TIMEOUT, 120u,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "kforkd: MHD_start_daemon failed\n");
		close(fd);
		return -EIO;
	}
	servers[n_servers++] = d;
	return 0;
}

int kforkd_http_start(struct kforkd_config *cfg)
{
	int fd, err;

	config = cfg;
	if (cfg->listen) {
		fd = listen_tcp(cfg);
		if (fd < 0)
			return fd;
		err = server_start(fd);
		if (err)
			return err;
	}
	if (cfg->socket_path) {
		fd = listen_unix(cfg);
		if (fd < 0)
			goto fail;
		err = server_start(fd);
		if (err)
			goto fail;
	}
	return 0;
fail:
	kforkd_http_stop();
	return fd < 0 ? fd : err;
}

void kforkd_http_quiesce(void)
{
	stopping = 1;
	for (unsigned int i = 0; i < n_servers; i++) {
		MHD_socket fd = MHD_quiesce_daemon(servers[i]);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
	if (config && config->socket_path)
		unlink(config->socket_path);
}

void kforkd_http_stop(void)
{
	/* Answers already decided (results, 503s) get out before connections close. */
	for (int i = 0; i < 500 && in_flight > 0; i++)
		usleep(10000);
	for (unsigned int i = 0; i < n_servers; i++)
		MHD_stop_daemon(servers[i]);
	n_servers = 0;
}
