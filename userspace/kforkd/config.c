// SPDX-License-Identifier: GPL-2.0-only
/* config.c - kforkd's command line, its templates and the bearer token file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kforkd.h"

static const char usage_text[] =
	"usage: kforkd --template NAME=PATH [--template ...] (--listen ADDR:PORT | --socket PATH) [options]\n"
	"\n"
	"Runs code in clones of kfork templates for HTTP clients (kforkd(8)).\n"
	"\n"
	"  --template NAME=PATH   a template file, opened once at start (repeatable, up to 16)\n"
	"  --listen ADDR:PORT     TCP on a loopback address (127.0.0.1:8080, [::1]:8080; port 0 picks one)\n"
	"  --listen-any           allow --listen on a non-loopback address\n"
	"  --socket PATH          a Unix socket (mode 0660)\n"
	"  --token-file FILE      require \"Authorization: Bearer <token>\" (FILE: mode 0600 or 0400)\n"
	"  --workers N            worker threads, one clone each at a time (default 4)\n"
	"  --queue N              requests waiting for a worker before 503 (default 64)\n"
	"  --max-connections N    open connections (default 256)\n"
	"  --max-batch N          requests in one /v1/exec/batch (default 64)\n"
	"  --timeout-ms N         default timeout of a request (default 10000)\n"
	"  --max-timeout-ms N     cap on a request's timeout_ms (default 60000)\n"
	"  --max-body BYTES       request body cap, 413 past it (default 1048576)\n"
	"  --max-output BYTES     stdout + stderr cap per request (default 1048576)\n"
	"  --max-dirty PAGES      guest pages a request may copy (default 0: no limit)\n"
	"  --grace-ms N           on SIGTERM, how long requests under way may finish (default 10000)\n"
	"  --backend user|kmod    force a backend (default: kmod if /dev/kfork exists)\n"
	"  --no-sandbox           do not put worker threads under seccomp (kf_sandbox_thread)\n"
	"  --help                 this text\n";

static void __attribute__((noreturn)) usage_exit(int help)
{
	fputs(usage_text, help ? stdout : stderr);
	exit(help ? 0 : 2);
}

static void __attribute__((noreturn, format(printf, 1, 2))) config_die(const char *fmt, ...)
{
	va_list ap;

	fputs("kforkd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* All of the text, decimal, in [min, max]. */
static unsigned long long parse_num(const char *opt, const char *text, unsigned long long min,
				    unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*text < '0' || *text > '9')
		goto bad;
	v = strtoull(text, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	return v;
bad:
	config_die("%s %s: expected a whole number from %llu to %llu", opt, text, min, max);
}

static void config_add_template(struct kforkd_config *cfg, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct kforkd_template *t;
	size_t len;

	if (!eq || eq == arg || !eq[1])
		config_die("--template %s: expected NAME=PATH", arg);
	len = eq - arg;
	if (len >= sizeof(t->name))
		config_die("--template %s: the name is longer than %zu bytes", arg, sizeof(t->name) - 1);
	for (size_t i = 0; i < len; i++) {
		char c = arg[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			config_die("--template %s: a name is letters, digits, '-', '_' and '.'", arg);
	}
	if (cfg->n_templates == KFORKD_MAX_TEMPLATES)
		config_die("--template: at most %d templates", KFORKD_MAX_TEMPLATES);
	t = &cfg->templates[cfg->n_templates];
	memcpy(t->name, arg, len);
	t->name[len] = 0;
	if (kforkd_config_template(cfg, t->name))
		config_die("--template %s: the name %s is given twice", arg, t->name);
	t->path = eq + 1;
	cfg->n_templates++;
}

enum {
	OPT_TEMPLATE = 256, OPT_LISTEN, OPT_LISTEN_ANY, OPT_SOCKET, OPT_TOKEN_FILE, OPT_WORKERS,
	OPT_QUEUE, OPT_MAX_CONN, OPT_MAX_BATCH, OPT_TIMEOUT, OPT_MAX_TIMEOUT, OPT_MAX_BODY,
	OPT_MAX_OUTPUT, OPT_MAX_DIRTY, OPT_GRACE, OPT_BACKEND, OPT_NO_SANDBOX, OPT_HELP,
};

static const struct option options[] = {
	{ "template", required_argument, NULL, OPT_TEMPLATE },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "listen-any", no_argument, NULL, OPT_LISTEN_ANY },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
	{ "max-timeout-ms", required_argument, NULL, OPT_MAX_TIMEOUT },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "max-dirty", required_argument, NULL, OPT_MAX_DIRTY },
	{ "grace-ms", required_argument, NULL, OPT_GRACE },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void config_defaults(struct kforkd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 4;
	cfg->queue = 64;
	cfg->max_connections = 256;
	cfg->max_batch = 64;
	cfg->default_timeout_ms = 10000;
	cfg->max_timeout_ms = 60000;
	cfg->grace_ms = 10000;
	cfg->max_body = 1 << 20;
	cfg->max_output = 1 << 20;
	cfg->sandbox = 1;
	cfg->backend = KF_BACKEND_AUTO;
}

static void config_option(struct kforkd_config *cfg, int opt, const char *name)
{
	switch (opt) {
	case OPT_TEMPLATE: config_add_template(cfg, optarg); break;
	case OPT_LISTEN: cfg->listen = optarg; break;
	case OPT_LISTEN_ANY: cfg->listen_any = 1; break;
	case OPT_SOCKET: cfg->socket_path = optarg; break;
	case OPT_TOKEN_FILE: cfg->token_file = optarg; break;
	case OPT_WORKERS: cfg->workers = parse_num(name, optarg, 1, 1024); break;
	case OPT_QUEUE: cfg->queue = parse_num(name, optarg, 1, 1000000); break;
	case OPT_MAX_CONN: cfg->max_connections = parse_num(name, optarg, 1, 100000); break;
	case OPT_MAX_BATCH: cfg->max_batch = parse_num(name, optarg, 1, 100000); break;
	case OPT_TIMEOUT: cfg->default_timeout_ms = parse_num(name, optarg, 1, 86400000); break;
	case OPT_MAX_TIMEOUT: cfg->max_timeout_ms = parse_num(name, optarg, 1, 86400000); break;
	case OPT_MAX_BODY: cfg->max_body = parse_num(name, optarg, 1, 1ull << 30); break;
	case OPT_MAX_OUTPUT: cfg->max_output = parse_num(name, optarg, 1, KF_EXEC_OUTPUT_MAX); break;
	case OPT_MAX_DIRTY: cfg->max_dirty = parse_num(name, optarg, 0, 1ull << 40); break;
	case OPT_GRACE: cfg->grace_ms = parse_num(name, optarg, 0, 86400000); break;
	case OPT_BACKEND:
		if (!strcmp(optarg, "user"))
			cfg->backend = KF_BACKEND_USER;
		else if (!strcmp(optarg, "kmod"))
			cfg->backend = KF_BACKEND_KMOD;
		else
			config_die("--backend %s: expected user or kmod", optarg);
		break;
	case OPT_NO_SANDBOX: cfg->sandbox = 0; break;
	case OPT_HELP: usage_exit(1);
	default: usage_exit(0);
	}
}

void kforkd_config_parse(struct kforkd_config *cfg, int argc, char **argv)
{
	int opt, idx;

	config_defaults(cfg);
	while ((opt = getopt_long(argc, argv, "", options, &idx)) != -1) {
		char name[32] = "option";

		for (const struct option *o = options; o->name; o++)
			if (o->val == opt)
				snprintf(name, sizeof(name), "--%s", o->name);
		config_option(cfg, opt, name);
	}
	if (optind < argc)
		config_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!cfg->n_templates)
		config_die("no --template NAME=PATH given (see --help)");
	if (!cfg->listen && !cfg->socket_path)
		config_die("neither --listen ADDR:PORT nor --socket PATH given (see --help)");
	if (cfg->default_timeout_ms > cfg->max_timeout_ms)
		cfg->default_timeout_ms = cfg->max_timeout_ms;
}

struct kforkd_template *kforkd_config_template(struct kforkd_config *cfg, const char *name)
{
	for (unsigned int i = 0; i < cfg->n_templates; i++)
		if (!strcmp(cfg->templates[i].name, name))
			return &cfg->templates[i];
	return NULL;
}

/* The token is one line of printable ASCII without spaces; a final newline is allowed. */
static int token_parse(struct kforkd_config *cfg, const char *buf, size_t n)
{
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (!n) {
		fprintf(stderr, "kforkd: --token-file %s is empty\n", cfg->token_file);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (buf[i] <= ' ' || buf[i] > '~') {
			fprintf(stderr, "kforkd: --token-file %s: the token must be one line of printable "
				"ASCII without spaces\n", cfg->token_file);
			return -EINVAL;
		}
	}
	memcpy(cfg->token, buf, n);
	cfg->token[n] = 0;
	cfg->token_len = n;
	return 0;
}

int kforkd_config_load_token(struct kforkd_config *cfg)
{
	char buf[KFORKD_TOKEN_MAX + 3];
	struct stat st;
	ssize_t n;
	int fd, err;

	if (!cfg->token_file)
		return 0;
	fd = open(cfg->token_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		fprintf(stderr, "kforkd: --token-file %s: %s\n", cfg->token_file, strerror(errno));
		goto out;
	}
	err = -EPERM;
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "kforkd: --token-file %s is not a regular file\n", cfg->token_file);
		goto out;
	}
	if (st.st_mode & 077) {
		fprintf(stderr, "kforkd: --token-file %s is mode %04o: group and others may read or "
			"write it; chmod 600 it\n", cfg->token_file, st.st_mode & 07777);
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		fprintf(stderr, "kforkd: --token-file %s belongs to uid %u, neither this user nor root\n",
			cfg->token_file, st.st_uid);
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		err = -errno;
		fprintf(stderr, "kforkd: reading --token-file %s: %s\n", cfg->token_file, strerror(errno));
		goto out;
	}
	err = -EINVAL;
	if ((size_t)n > KFORKD_TOKEN_MAX + 2) {
		fprintf(stderr, "kforkd: --token-file %s: the token is longer than %d bytes\n",
			cfg->token_file, KFORKD_TOKEN_MAX);
		goto out;
	}
	err = token_parse(cfg, buf, n);
out:
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, sizeof(buf));
	return err;
}

/* Time depends on the longer length only, never on where the first difference is. */
static int const_time_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen > blen ? alen : blen;
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < alen ? a[i] : 0;
		unsigned char y = i < blen ? b[i] : 0;

		diff |= x ^ y;
	}
	return diff == 0;
}

int kforkd_token_ok(const struct kforkd_config *cfg, const char *authorization)
{
	static const char scheme[] = "Bearer ";
	size_t len;

	if (!cfg->token_len)
		return 1;
	if (!authorization || strncasecmp(authorization, scheme, sizeof(scheme) - 1))
		return 0;
	authorization += sizeof(scheme) - 1;
	len = strnlen(authorization, KFORKD_TOKEN_MAX + 1);
	return const_time_eq(authorization, len, cfg->token, cfg->token_len);
}
