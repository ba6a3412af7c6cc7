/* SPDX-License-Identifier: GPL-2.0-only */
/* stats.h - `kfork stats` and `kfork events`: kfork.ko's netlink statistics and events. */
#ifndef KF_CLI_STATS_H
#define KF_CLI_STATS_H

int cmd_stats(int argc, char **argv);
int cmd_events(int argc, char **argv);

#endif
