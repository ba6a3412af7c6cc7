// SPDX-License-Identifier: GPL-2.0-only
/* stats.c - `kfork stats` and `kfork events`: kfork.ko's generic-netlink family, read with libnl-genl. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "../../kmod/uapi/kfork.h"
#include "cli/cli.h"
#include "cli/stats.h"

static const char *const event_names[] = {
	[KFORK_EVENT_SPAWN] = "spawn", [KFORK_EVENT_RESET] = "reset",
	[KFORK_EVENT_DESTROY] = "destroy",
};
_Static_assert(sizeof(event_names) / sizeof(event_names[0]) == KFORK_EVENT_DESTROY + 1,
	       "event_names covers KFORK_EVENT_*");

static struct nla_policy stats_policy[KFORK_A_MAX + 1] = {
	[KFORK_A_TMPL_ID] = { .type = NLA_U64 }, [KFORK_A_MEM_SIZE] = { .type = NLA_U64 },
	[KFORK_A_SPAWNS] = { .type = NLA_U64 }, [KFORK_A_SPAWN_FAILURES] = { .type = NLA_U64 },
	[KFORK_A_RESETS] = { .type = NLA_U64 }, [KFORK_A_LIVE_CLONES] = { .type = NLA_U32 },
	[KFORK_A_MAX_CLONES] = { .type = NLA_U32 }, [KFORK_A_PAGES_SHARED] = { .type = NLA_U64 },
	[KFORK_A_PAGES_COPIED] = { .type = NLA_U64 }, [KFORK_A_POOL_READY] = { .type = NLA_U32 },
	[KFORK_A_POOL_HITS] = { .type = NLA_U64 }, [KFORK_A_FAILURES] = { .type = NLA_NESTED },
	[KFORK_A_FAILURE] = { .type = NLA_NESTED }, [KFORK_A_FAIL_ERRNO] = { .type = NLA_U32 },
	[KFORK_A_FAIL_COUNT] = { .type = NLA_U64 }, [KFORK_A_EVENT] = { .type = NLA_U32 },
	[KFORK_A_CLONE_ID] = { .type = NLA_U64 }, [KFORK_A_ERRNO] = { .type = NLA_U32 },
	[KFORK_A_NS] = { .type = NLA_U64 }, [KFORK_A_PAGES] = { .type = NLA_U64 },
	[KFORK_A_PERSISTENT] = { .type = NLA_FLAG },
};

static uint64_t get_u64(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u64(tb[a]) : 0;
}

static uint32_t get_u32(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u32(tb[a]) : 0;
}

struct stats_ctx {
	int json, count;
	json_t *templates;	/* --json: the array the objects go into */
};

static int stats_print(struct nl_msg *msg, void *arg)
{
	struct stats_ctx *ctx = arg;
	struct nlattr *tb[KFORK_A_MAX + 1], *f;
	json_t *failures = NULL;
	int rem, first = 1;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, KFORK_A_MAX, stats_policy) < 0)
		return NL_SKIP;
	if (ctx->json)
		failures = json_object();
	else
		printf("template %" PRIu64 "%s: mem %" PRIu64 " B, spawns %" PRIu64
		       " (failed %" PRIu64 "), resets %" PRIu64 ", live clones %u/%u,"
		       " pages shared %" PRIu64 ", copied %" PRIu64 ", pool %u ready, %" PRIu64
		       " hits; failures by errno:",
		       get_u64(tb, KFORK_A_TMPL_ID), tb[KFORK_A_PERSISTENT] ? " (kept)" : "",
		       get_u64(tb, KFORK_A_MEM_SIZE), get_u64(tb, KFORK_A_SPAWNS), get_u64(tb, KFORK_A_SPAWN_FAILURES),
		       get_u64(tb, KFORK_A_RESETS), get_u32(tb, KFORK_A_LIVE_CLONES),
		       get_u32(tb, KFORK_A_MAX_CLONES), get_u64(tb, KFORK_A_PAGES_SHARED),
		       get_u64(tb, KFORK_A_PAGES_COPIED), get_u32(tb, KFORK_A_POOL_READY),
		       get_u64(tb, KFORK_A_POOL_HITS));
	if (tb[KFORK_A_FAILURES]) {
		nla_for_each_nested(f, tb[KFORK_A_FAILURES], rem) {
			struct nlattr *fb[KFORK_A_MAX + 1];
			char key[16];
			uint32_t e;

			if (nla_parse_nested(fb, KFORK_A_MAX, f, stats_policy) < 0)
				continue;
			e = get_u32(fb, KFORK_A_FAIL_ERRNO);
			snprintf(key, sizeof(key), "%u", e);
			if (ctx->json)
				json_object_set_new(failures, key,
						    json_integer(get_u64(fb, KFORK_A_FAIL_COUNT)));
			else
				printf(" %s %" PRIu64, e ? strerrorname_np(e) ?: "?" : "other",
				       get_u64(fb, KFORK_A_FAIL_COUNT));
			first = 0;
		}
	}
	if (ctx->json)
		/* json_int_t is long long: u64 counters past 2^63 do not happen. */
		json_array_append_new(ctx->templates, json_pack(
			"{s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			"template", (json_int_t)get_u64(tb, KFORK_A_TMPL_ID),
			"persistent", tb[KFORK_A_PERSISTENT] != NULL,
			"mem_size", (json_int_t)get_u64(tb, KFORK_A_MEM_SIZE),
			"spawns", (json_int_t)get_u64(tb, KFORK_A_SPAWNS),
			"spawn_failures", (json_int_t)get_u64(tb, KFORK_A_SPAWN_FAILURES),
			"resets", (json_int_t)get_u64(tb, KFORK_A_RESETS),
			"live_clones", (json_int_t)get_u32(tb, KFORK_A_LIVE_CLONES),
			"max_clones", (json_int_t)get_u32(tb, KFORK_A_MAX_CLONES),
			"pages_shared", (json_int_t)get_u64(tb, KFORK_A_PAGES_SHARED),
			"pages_copied", (json_int_t)get_u64(tb, KFORK_A_PAGES_COPIED),
			"pool_ready", (json_int_t)get_u32(tb, KFORK_A_POOL_READY),
			"pool_hits", (json_int_t)get_u64(tb, KFORK_A_POOL_HITS),
			"failures", failures));
	else
		printf("%s\n", first ? " none" : "");
	ctx->count++;
	return NL_OK;
}

struct events_ctx {
	int json;
	long seen;
};

static int event_print(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KFORK_A_MAX + 1];
	struct events_ctx *ctx = arg;
	int json = ctx->json;
	const char *name;
	uint32_t ev, err;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, KFORK_A_MAX, stats_policy) < 0)
		return NL_SKIP;
	ev = get_u32(tb, KFORK_A_EVENT);
	err = get_u32(tb, KFORK_A_ERRNO);
	name = ev < sizeof(event_names) / sizeof(event_names[0]) && event_names[ev] ?
	       event_names[ev] : "unknown";
	if (json)
		json_print(json_pack("{s:s, s:I, s:I, s:i, s:I, s:I, s:I}", "event", name,
				     "template", (json_int_t)get_u64(tb, KFORK_A_TMPL_ID),
				     "clone", (json_int_t)get_u64(tb, KFORK_A_CLONE_ID),
				     "errno", (int)err, "ns", (json_int_t)get_u64(tb, KFORK_A_NS),
				     "pages", (json_int_t)get_u64(tb, KFORK_A_PAGES),
				     "live_clones", (json_int_t)get_u32(tb, KFORK_A_LIVE_CLONES)),
			   stdout);
	else
		printf("%-7s template %" PRIu64 " clone %" PRIu64 " errno %u %" PRIu64
		       " ns pages %" PRIu64 " live %u\n", name,
		       get_u64(tb, KFORK_A_TMPL_ID), get_u64(tb, KFORK_A_CLONE_ID), err,
		       get_u64(tb, KFORK_A_NS), get_u64(tb, KFORK_A_PAGES),
		       get_u32(tb, KFORK_A_LIVE_CLONES));
	fflush(stdout);
	ctx->seen++;
	return NL_OK;
}

/* Connects and resolves the family; prints why not (module not loaded) and returns NULL. */
static struct nl_sock *kfork_nl_open(int *family)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk) {
		fprintf(stderr, "kfork: nl_socket_alloc: out of memory\n");
		return NULL;
	}
	err = genl_connect(sk);
	if (err < 0) {
		fprintf(stderr, "kfork: genl_connect: %s\n", nl_geterror(err));
		goto free_sock;
	}
	*family = genl_ctrl_resolve(sk, KFORK_GENL_NAME);
	if (*family < 0) {
		fprintf(stderr, "kfork: generic netlink family '%s': %s (is kfork.ko loaded?)\n",
			KFORK_GENL_NAME, nl_geterror(*family));
		goto free_sock;
	}
	return sk;

free_sock:
	nl_socket_free(sk);
	return NULL;
}

/* Module-wide counts from /dev/kfork's KFORK_GET_CAPS; prints why not and returns -1. */
static int module_totals(struct kfork_caps *caps)
{
	int fd = open(KFORK_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "kfork: open %s: %s (is kfork.ko loaded?)\n", KFORK_DEVICE,
			strerror(errno));
		return -1;
	}
	memset(caps, 0, sizeof(*caps));
	caps->size = sizeof(*caps);
	if (ioctl(fd, KFORK_GET_CAPS, caps)) {
		fprintf(stderr, "kfork: KFORK_GET_CAPS on %s: %s\n", KFORK_DEVICE, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Live objects, then (modules that count them) every user's totals since the module loaded. */
static void print_module_totals(const struct kfork_caps *caps)
{
	printf("kfork.ko: %llu live templates, %llu live clones",
	       (unsigned long long)caps->live_templates, (unsigned long long)caps->live_clones);
	if (caps->caps & KFORK_CAP_TOTALS)
		printf("; since loaded: %llu templates, %llu spawns (%llu failed), %llu resets",
		       (unsigned long long)caps->templates_total,
		       (unsigned long long)caps->spawns_total,
		       (unsigned long long)caps->spawn_failures_total,
		       (unsigned long long)caps->resets_total);
	printf("\n");
}

static const char stats_usage[] =
	"usage: kfork stats [--json]\n"
	"  kfork.ko's counters: live templates and clones module-wide (KFORK_GET_CAPS), then\n"
	"  spawns, resets, pages and failures by errno of every template registered with it\n"
	"  (generic netlink); needs kfork.ko loaded\n"
	"  --json       one object: {\"live_templates\", \"live_clones\", \"templates\": [...],\n"
	"               \"since_loaded\": {\"templates\", \"spawns\", \"spawn_failures\", \"resets\"}}\n"
	"  -h, --help   this text\n";

int cmd_stats(int argc, char **argv)
{
	struct stats_ctx ctx = { 0 };
	struct kfork_caps caps;
	struct nl_sock *sk;
	int family, err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctx.json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			usage_exit(stats_usage, 1);
		else
			usage_exit(stats_usage, 0);
	}
	if (module_totals(&caps))
		return CLI_EXIT_ERROR;
	sk = kfork_nl_open(&family);
	if (!sk)
		return CLI_EXIT_ERROR;
	if (ctx.json)
		ctx.templates = json_array();
	else
		print_module_totals(&caps);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, stats_print, &ctx);
	err = genl_send_simple(sk, family, KFORK_CMD_GET_STATS, KFORK_GENL_VERSION, NLM_F_DUMP);
	if (err >= 0)
		err = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (err < 0) {
		json_decref(ctx.templates);
		fprintf(stderr, "kfork: KFORK_CMD_GET_STATS: %s\n", nl_geterror(err));
		return CLI_EXIT_ERROR;
	}
	if (ctx.json)
		json_print(json_pack("{s:I, s:I, s:o, s:o}",
				     "live_templates", (json_int_t)caps.live_templates,
				     "live_clones", (json_int_t)caps.live_clones,
				     "templates", ctx.templates,
				     "since_loaded", !(caps.caps & KFORK_CAP_TOTALS) ? json_null() :
				     json_pack("{s:I, s:I, s:I, s:I}",
					       "templates", (json_int_t)caps.templates_total,
					       "spawns", (json_int_t)caps.spawns_total,
					       "spawn_failures", (json_int_t)caps.spawn_failures_total,
					       "resets", (json_int_t)caps.resets_total)), stdout);
	else if (!ctx.count)
		/* A template lives as long as a process holds it open: after `kfork run`, none. */
		printf("no template is open or kept now (templates appear here while a process holds one open or kfork.ko keeps one)\n");
	return CLI_EXIT_OK;
}

static volatile sig_atomic_t events_stop;

static void events_on_signal(int sig)
{
	(void)sig;
	events_stop = 1;
}

static const char events_usage[] =
	"usage: kfork events [--json] [--count N]\n"
	"  kfork.ko's spawn, reset and destroy events, one line each as they happen, until\n"
	"  N events (1 or more) or a signal; needs kfork.ko loaded\n"
	"  --json       one JSON object per line\n"
	"  -h, --help   this text\n";

/* Prints each event as it arrives; N events, or until a signal. */
int cmd_events(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = events_on_signal };
	struct events_ctx ctx = { 0 };
	int family, grp, err = 0;
	struct nl_sock *sk;
	long count = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctx.json = 1;
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = (long)parse_count("--count", argv[++i], 1, 1000000000);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			usage_exit(events_usage, 1);
		else
			usage_exit(events_usage, 0);
	}
	sk = kfork_nl_open(&family);
	if (!sk)
		return CLI_EXIT_ERROR;
	grp = genl_ctrl_resolve_grp(sk, KFORK_GENL_NAME, KFORK_GENL_MCGRP_EVENTS);
	if (grp < 0 || (err = nl_socket_add_membership(sk, grp)) < 0) {
		fprintf(stderr, "kfork: join group %s/%s: %s\n", KFORK_GENL_NAME,
			KFORK_GENL_MCGRP_EVENTS, nl_geterror(grp < 0 ? grp : err));
		nl_socket_free(sk);
		return CLI_EXIT_ERROR;
	}
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, event_print, &ctx);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Tells a waiting script (or test) that the membership is in place. */
	fprintf(stderr, "kfork: listening on %s/%s\n", KFORK_GENL_NAME, KFORK_GENL_MCGRP_EVENTS);
	/* libnl retries on EINTR: poll, so a signal ends the loop. */
	while (!events_stop && (count < 0 || ctx.seen < count)) {
		struct pollfd pfd = { .fd = nl_socket_get_fd(sk), .events = POLLIN };

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		err = nl_recvmsgs_default(sk);
		if (err < 0) {
			fprintf(stderr, "kfork: receiving events: %s\n", nl_geterror(err));
			break;
		}
	}
	nl_socket_free(sk);
	return err < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
