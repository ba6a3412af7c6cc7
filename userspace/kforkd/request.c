// SPDX-License-Identifier: GPL-2.0-only
/* request.c - exec requests from JSON into jobs, results back into JSON, base64 both ways. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kforkd.h"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *kforkd_base64_encode(const void *in, size_t len)
{
	const unsigned char *p = in;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned int v = p[i] << 16;

		if (i + 1 < len)
			v |= p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64_chars[(v >> 18) & 63];
		*o++ = b64_chars[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? p - b64_chars : -1;
}

int kforkd_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
	unsigned char *buf, *o;
	size_t pad = 0;

	if (len % 4)
		return -EINVAL;
	if (len && in[len - 1] == '=')
		pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	o = buf;
	for (size_t i = 0; i < len; i += 4) {
		int last = i + 4 == len, v[4];
		unsigned int w = 0;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_value(in[i + k]);
			if (v[k] < 0 && !(last && k >= 4 - (int)pad))
				goto bad;
			w = w << 6 | (v[k] < 0 ? 0 : v[k]);
		}
		/* Bits below the last byte must be zero: one text per byte string. */
		if ((last && pad == 1 && (w & 0xff)) || (last && pad == 2 && (w & 0xffff)))
			goto bad;
		*o++ = w >> 16;
		if (!last || pad < 2)
			*o++ = w >> 8;
		if (!last || pad < 1)
			*o++ = w;
	}
	*o = 0;
	*out = (char *)buf;
	*out_len = o - buf;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

static struct kforkd_job *job_fail(struct kforkd_job *job, struct kforkd_error *err,
				   unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct kforkd_job *job_fail(struct kforkd_job *job, struct kforkd_error *err,
				   unsigned int status, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	kforkd_job_put(job);
	return NULL;
}

/* A string field as bytes: decoded from base64 if asked. 0, or -EINVAL with err filled. */
static int job_bytes(json_t *obj, const char *key, enum kforkd_encoding enc, char **out,
		     size_t *out_len, struct kforkd_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t len;

	if (!json_is_string(v)) {
		err->status = 400;
		snprintf(err->msg, sizeof(err->msg), "\"%s\" must be a string", key);
		return -EINVAL;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (enc == KFORKD_BASE64) {
		if (kforkd_base64_decode(s, len, out, out_len)) {
			err->status = 400;
			snprintf(err->msg, sizeof(err->msg), "\"%s\" is not valid base64 (RFC 4648, padded)", key);
			return -EINVAL;
		}
		return 0;
	}
	*out = malloc(len + 1);
	if (!*out) {
		err->status = 500;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -ENOMEM;
	}
	memcpy(*out, s, len + 1);
	*out_len = len;
	return 0;
}

static const char *const known_keys[] = {
	"template", "code", "stdin", "timeout_ms", "lang", "encoding", NULL,
};

static const char *job_unknown_key(json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		int known = 0;

		for (int i = 0; known_keys[i]; i++)
			known |= !strcmp(key, known_keys[i]);
		if (!known)
			return key;
	}
	return NULL;
}

static int job_options(struct kforkd_config *cfg, struct kforkd_job *job, json_t *obj,
		       struct kforkd_error *err)
{
	json_t *v;

	err->status = 400;
	v = json_object_get(obj, "encoding");
	if (v && (!json_is_string(v) || (strcmp(json_string_value(v), "utf-8") &&
					 strcmp(json_string_value(v), "base64")))) {
		snprintf(err->msg, sizeof(err->msg), "\"encoding\" must be \"utf-8\" or \"base64\"");
		return -EINVAL;
	}
	job->encoding = v && !strcmp(json_string_value(v), "base64") ? KFORKD_BASE64 : KFORKD_UTF8;
	v = json_object_get(obj, "lang");
	job->lang = job->tmpl->default_lang;
	if (v) {
		const char *lang = json_is_string(v) ? json_string_value(v) : "";

		if (!strcmp(lang, "sh")) {
			job->lang = KF_EXEC_SH;
		} else if (!strcmp(lang, "python") && job->tmpl->has_python) {
			job->lang = KF_EXEC_PYTHON;
		} else {
			snprintf(err->msg, sizeof(err->msg), "\"lang\" must be \"sh\"%s for template %s",
				 job->tmpl->has_python ? " or \"python\"" : "", job->tmpl->name);
			return -EINVAL;
		}
	}
	v = json_object_get(obj, "timeout_ms");
	job->timeout_ms = cfg->default_timeout_ms;
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			snprintf(err->msg, sizeof(err->msg), "\"timeout_ms\" must be a whole number >= 1");
			return -EINVAL;
		}
		/* Capped, not refused: the client asked for at most that long. */
		job->timeout_ms = json_integer_value(v) > cfg->max_timeout_ms ?
				  cfg->max_timeout_ms : json_integer_value(v);
	}
	return 0;
}

struct kforkd_job *kforkd_job_parse(struct kforkd_config *cfg, json_t *obj, struct kforkd_error *err)
{
	struct kforkd_job *job = calloc(1, sizeof(*job));
	const char *key;
	json_t *v;

	if (!job)
		return job_fail(job, err, 500, "out of memory");
	job->refs = 1;
	job->t_received_ns = kforkd_now_ns();
	if (!json_is_object(obj))
		return job_fail(job, err, 400, "an exec request must be a JSON object");
	key = job_unknown_key(obj);
	if (key)
		return job_fail(job, err, 400, "unknown field \"%.64s\"", key);
	v = json_object_get(obj, "template");
	if (!json_is_string(v))
		return job_fail(job, err, 400, "\"template\" (a string) is missing");
	job->tmpl = kforkd_config_template(cfg, json_string_value(v));
	if (!job->tmpl)
		return job_fail(job, err, 404, "no template named \"%.64s\"", json_string_value(v));
	if (!json_object_get(obj, "code"))
		return job_fail(job, err, 400, "\"code\" (a string) is missing");
	/* These fill err themselves. */
	if (job_options(cfg, job, obj, err) ||
	    job_bytes(obj, "code", job->encoding, &job->code, &job->code_len, err))
		goto drop;
	if (!job->code_len)
		return job_fail(job, err, 400, "\"code\" is empty");
	if (json_object_get(obj, "stdin") && !json_is_null(json_object_get(obj, "stdin")) &&
	    job_bytes(obj, "stdin", job->encoding, &job->stdin_data, &job->stdin_len, err))
		goto drop;
	return job;
drop:
	kforkd_job_put(job);
	return NULL;
}

json_t *kforkd_error_json(const char *msg)
{
	return json_pack("{s:s}", "error", msg);
}

/* Output as the request's encoding asks, or base64 if it is not valid UTF-8. */
static int result_output(json_t *o, const struct kforkd_job *job)
{
	const struct kf_exec_result *r = &job->res;
	json_t *out = NULL, *err = NULL;
	char *b_out, *b_err;

	if (job->encoding == KFORKD_UTF8) {
		/* json_stringn() checks UTF-8 and refuses what is not. */
		out = json_stringn(r->out ? r->out : "", r->out_len);
		err = json_stringn(r->err ? r->err : "", r->err_len);
		if (out && err) {
			json_object_set_new(o, "stdout", out);
			json_object_set_new(o, "stderr", err);
			return json_object_set_new(o, "encoding", json_string("utf-8"));
		}
		json_decref(out);
		json_decref(err);
	}
	b_out = kforkd_base64_encode(r->out ? r->out : "", r->out_len);
	b_err = kforkd_base64_encode(r->err ? r->err : "", r->err_len);
	if (!b_out || !b_err) {
		free(b_out);
		free(b_err);
		return -1;
	}
	json_object_set_new(o, "stdout", json_string(b_out));
	json_object_set_new(o, "stderr", json_string(b_err));
	free(b_out);
	free(b_err);
	return json_object_set_new(o, "encoding", json_string("base64"));
}

static json_t *result_error(const struct kforkd_job *job, enum kforkd_outcome *outcome,
			    unsigned int *status)
{
	char msg[600];

	if (job->cancelled) {
		*outcome = KFORKD_BUSY;
		*status = 503;
		return kforkd_error_json("kforkd is shutting down: the request was cancelled and its clone destroyed");
	}
	*outcome = KFORKD_INTERNAL;
	*status = 500;
	snprintf(msg, sizeof(msg), "%s", job->errmsg);
	return kforkd_error_json(msg);
}

json_t *kforkd_job_result(const struct kforkd_job *job, enum kforkd_outcome *outcome,
			  unsigned int *status)
{
	const char *limit = NULL;
	int timed_out, exit_code;
	json_t *o;

	/* Cancelled: the worker may still be writing the rest, so read nothing else. */
	if (job->cancelled)
		return result_error(job, outcome, status);
	timed_out = job->err == -ETIMEDOUT;
	exit_code = job->res.exit_code;
	if ((job->err && job->err != -ETIMEDOUT && job->err != -EMSGSIZE &&
			       job->err != -EDQUOT))
		return result_error(job, outcome, status);
	if (job->err == -EMSGSIZE)
		limit = "output";
	else if (job->err == -EDQUOT)
		limit = "memory";
	/* As kfork run and timeout(1) say it: 124 timed out, 123 past a limit. */
	if (timed_out)
		exit_code = 124;
	else if (limit)
		exit_code = 123;
	o = json_pack("{s:i,s:i,s:b,s:s?,s:I,s:I,s:I,s:I,s:i}",
		      "exit_code", exit_code, "signal", job->res.signal, "timed_out", timed_out,
		      "limit", limit, "spawn_us", (json_int_t)job->spawn_us,
		      "exec_us", (json_int_t)(job->res.exec_ns / 1000),
		      "queue_us", (json_int_t)job->queue_us, "total_us", (json_int_t)job->total_us,
		      "timeout_ms", (int)job->timeout_ms);
	if (!o || result_output(o, job)) {
		json_decref(o);
		*outcome = KFORKD_INTERNAL;
		*status = 500;
		return kforkd_error_json("out of memory");
	}
	*status = 200;
	*outcome = timed_out ? KFORKD_TIMEOUT : (exit_code || limit) ? KFORKD_CODE_ERROR : KFORKD_OK;
	return o;
}
