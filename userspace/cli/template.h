/* SPDX-License-Identifier: GPL-2.0-only */
/* template.h - kfork template load / unload: templates kfork.ko keeps between processes. */
#ifndef KF_CLI_TEMPLATE_H
#define KF_CLI_TEMPLATE_H

int cmd_template_load(int argc, char **argv);
int cmd_template_unload(int argc, char **argv);

#endif
