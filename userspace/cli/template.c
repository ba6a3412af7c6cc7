// SPDX-License-Identifier: GPL-2.0-only
/* template.c - kfork template load / unload: templates kfork.ko keeps between processes. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kfork.h"
#include "cli/cli.h"
#include "cli/template.h"

static const char load_usage[] =
	"usage: kfork template load FILE...\n"
	"  have kfork.ko keep each template, so that every later kfork run (or libkfork\n"
	"  program) of yours attaches to it instead of loading the file; one clone runs a\n"
	"  trivial program first, so the module knows the pages a run touches. Kept until\n"
	"  kfork template unload or the module is unloaded; the memory stays charged to\n"
	"  you (RLIMIT_MEMLOCK). A file rebuilt in place is a new template: load it again.\n"
	"  -h, --help   this text\n";

static const char unload_usage[] =
	"usage: kfork template unload FILE... | --all\n"
	"  stop keeping templates in kfork.ko; clones and programs using them go on\n"
	"  -a, --all    every template kfork.ko keeps for you (root: for everyone)\n"
	"  -h, --help   this text\n";

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int template_args(int argc, char **argv, const char *usage, const char *shortopts,
			 int *all)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'a': *all = 1; break;
		case 'h': usage_exit(usage, 1);
		default: usage_exit(usage, 0);
		}
	}
	return optind;
}

int cmd_template_load(int argc, char **argv)
{
	int all = 0, first = template_args(argc, argv, load_usage, "h", &all);

	if (first == argc)
		die("template load needs a template FILE (kfork template load --help)");
	for (int i = first; i < argc; i++) {
		struct kf_template *tmpl;
		struct timespec t0;
		int err;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		err = kf_template_open(argv[i], KF_BACKEND_KMOD, &tmpl);
		if (err)
			die("%s", kf_last_error());
		if (kf_template_is_persistent(tmpl)) {
			fprintf(stderr, "kfork: %s: kept in kfork.ko already\n", argv[i]);
			kf_template_close(tmpl);
			continue;
		}
		err = kf_template_persist(tmpl);
		if (err)
			die("%s", kf_last_error());
		fprintf(stderr, "kfork: %s: kept in kfork.ko (%llu MiB of guest memory, %.0f ms)\n",
			argv[i], (unsigned long long)(kf_template_mem_size(tmpl) >> 20), ms_since(&t0));
		kf_template_close(tmpl);
	}
	return CLI_EXIT_OK;
}

int cmd_template_unload(int argc, char **argv)
{
	int all = 0, first = template_args(argc, argv, unload_usage, "ah", &all), n;

	if (all) {
		if (first != argc)
			die("template unload: --all takes no FILE (kfork template unload --help)");
		n = kf_template_unpersist(NULL);
		if (n < 0)
			die("%s", kf_last_error());
		fprintf(stderr, "kfork: %d template%s no longer kept\n", n, n == 1 ? "" : "s");
		return CLI_EXIT_OK;
	}
	if (first == argc)
		die("template unload needs a template FILE or --all (kfork template unload --help)");
	for (int i = first; i < argc; i++) {
		if (kf_template_unpersist(argv[i]) < 0)
			die("%s", kf_last_error());
		fprintf(stderr, "kfork: %s: no longer kept in kfork.ko\n", argv[i]);
	}
	return CLI_EXIT_OK;
}
