// SPDX-License-Identifier: GPL-2.0-only
/* netlink.c - generic netlink family "kfork": per-template stats (dump) and an events group. */
#include <linux/list.h>
#include <linux/spinlock.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <net/netlink.h>

#include "internal.h"

enum { KFORK_MCGRP_EVENTS };

/*
 * Events carry every tenant's clone ids and timings: only an administrator
 * (CAP_NET_ADMIN) may listen. The stats dump shows a caller the templates its
 * own euid registered, and all of them to CAP_SYS_ADMIN (SECURITY.md).
 */
static const struct genl_multicast_group kfork_mcgrps[] = {
	[KFORK_MCGRP_EVENTS] = { .name = KFORK_GENL_MCGRP_EVENTS,
				 .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static const struct nla_policy kfork_nl_policy[KFORK_A_MAX + 1] = {
	[KFORK_A_TMPL_ID] = { .type = NLA_U64 },
};

static int kfork_nl_dump_stats(struct sk_buff *skb, struct netlink_callback *cb);

static const struct genl_small_ops kfork_nl_ops[] = {
	{
		.cmd = KFORK_CMD_GET_STATS,
		.validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP,
		.dumpit = kfork_nl_dump_stats,
	},
};

static struct genl_family kfork_genl_family __ro_after_init = {
	.name = KFORK_GENL_NAME,
	.version = KFORK_GENL_VERSION,
	.maxattr = KFORK_A_MAX,
	.policy = kfork_nl_policy,
	.module = THIS_MODULE,
	.small_ops = kfork_nl_ops,
	.n_small_ops = ARRAY_SIZE(kfork_nl_ops),
	.resv_start_op = KFORK_CMD_EVENT + 1,
	.mcgrps = kfork_mcgrps,
	.n_mcgrps = ARRAY_SIZE(kfork_mcgrps),
};

static int kfork_nl_put_u64(struct sk_buff *skb, int type, u64 v)
{
	return nla_put_u64_64bit(skb, type, v, KFORK_A_PAD);
}

static int kfork_nl_put_failures(struct sk_buff *skb, struct kfork_template *tmpl)
{
	struct nlattr *list, *one;
	int e;

	list = nla_nest_start(skb, KFORK_A_FAILURES);
	if (!list)
		return -EMSGSIZE;
	for (e = 0; e < KFORK_FAIL_ERRNO_SLOTS; e++) {
		u64 n = atomic64_read(&tmpl->failures[e]);

		if (!n)
			continue;
		one = nla_nest_start(skb, KFORK_A_FAILURE);
		if (!one || nla_put_u32(skb, KFORK_A_FAIL_ERRNO, e) ||
		    kfork_nl_put_u64(skb, KFORK_A_FAIL_COUNT, n))
			return -EMSGSIZE;
		nla_nest_end(skb, one);
	}
	nla_nest_end(skb, list);
	return 0;
}

/* Called under kfork_templates_lock: nothing here sleeps. */
static int kfork_nl_put_template(struct sk_buff *skb, struct netlink_callback *cb,
				 struct kfork_template *tmpl)
{
	void *hdr;
	u32 ready;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &kfork_genl_family, NLM_F_MULTI, KFORK_CMD_GET_STATS);
	if (!hdr)
		return -EMSGSIZE;
	spin_lock(&tmpl->pool_lock);
	ready = tmpl->pool_ready;
	spin_unlock(&tmpl->pool_lock);
	if (kfork_nl_put_u64(skb, KFORK_A_TMPL_ID, tmpl->id) ||
	    kfork_nl_put_u64(skb, KFORK_A_MEM_SIZE, tmpl->mem_size) ||
	    kfork_nl_put_u64(skb, KFORK_A_SPAWNS, atomic64_read(&tmpl->spawns)) ||
	    kfork_nl_put_u64(skb, KFORK_A_SPAWN_FAILURES, atomic64_read(&tmpl->spawn_failures)) ||
	    kfork_nl_put_u64(skb, KFORK_A_RESETS, atomic64_read(&tmpl->resets)) ||
	    nla_put_u32(skb, KFORK_A_LIVE_CLONES, atomic_read(&tmpl->live_clones)) ||
	    nla_put_u32(skb, KFORK_A_MAX_CLONES, tmpl->max_clones) ||
	    kfork_nl_put_u64(skb, KFORK_A_PAGES_SHARED, READ_ONCE(tmpl->mem->f_mapping->nrpages)) ||
	    kfork_nl_put_u64(skb, KFORK_A_PAGES_COPIED, atomic64_read(&tmpl->pages_copied)) ||
	    nla_put_u32(skb, KFORK_A_POOL_READY, ready) ||
	    kfork_nl_put_u64(skb, KFORK_A_POOL_HITS, atomic64_read(&tmpl->pool_hits)) ||
	    (kfork_template_is_persistent(tmpl) && nla_put_flag(skb, KFORK_A_PERSISTENT)) ||
	    kfork_nl_put_failures(skb, tmpl)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* cb->args[0]: the id of the last template sent; templates are listed in id order. */
static int kfork_nl_dump_stats(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct sock *sk = NETLINK_CB(cb->skb).sk;
	bool all = netlink_capable(cb->skb, CAP_SYS_ADMIN);
	kuid_t uid = sock_i_uid(sk);
	struct kfork_template *tmpl;
	int err = 0;

	spin_lock(&kfork_templates_lock);
	list_for_each_entry(tmpl, &kfork_templates, node) {
		if (tmpl->id <= cb->args[0])
			continue;
		if (!all && !uid_eq(tmpl->owner, uid))
			continue;
		err = kfork_nl_put_template(skb, cb, tmpl);
		if (err)
			break;
		cb->args[0] = tmpl->id;
	}
	spin_unlock(&kfork_templates_lock);
	/* A template too big for an empty message would loop forever: report it. */
	if (err && !skb->len)
		return err;
	return skb->len;
}

/* One event to the "events" group; free when nobody listens. Process context. */
void kfork_netlink_event(struct kfork_template *tmpl, u32 event, u64 clone_id, int err,
			 u64 ns, u64 pages)
{
	struct sk_buff *skb;
	void *hdr;

	if (!genl_has_listeners(&kfork_genl_family, &init_net, KFORK_MCGRP_EVENTS))
		return;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &kfork_genl_family, 0, KFORK_CMD_EVENT);
	if (!hdr)
		goto free_skb;
	if (nla_put_u32(skb, KFORK_A_EVENT, event) ||
	    kfork_nl_put_u64(skb, KFORK_A_TMPL_ID, tmpl->id) ||
	    kfork_nl_put_u64(skb, KFORK_A_CLONE_ID, clone_id) ||
	    nla_put_u32(skb, KFORK_A_ERRNO, -err) ||
	    kfork_nl_put_u64(skb, KFORK_A_NS, ns) ||
	    kfork_nl_put_u64(skb, KFORK_A_PAGES, pages) ||
	    nla_put_u32(skb, KFORK_A_LIVE_CLONES, atomic_read(&tmpl->live_clones)))
		goto free_skb;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&kfork_genl_family, skb, 0, KFORK_MCGRP_EVENTS, GFP_KERNEL);
	return;

free_skb:
	nlmsg_free(skb);
}

int kfork_netlink_init(void)
{
	return genl_register_family(&kfork_genl_family);
}

void kfork_netlink_exit(void)
{
	genl_unregister_family(&kfork_genl_family);
}
