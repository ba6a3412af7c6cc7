// SPDX-License-Identifier: GPL-2.0-only
/* tiny_clone.c - a program outside the tree: built against an installed libkfork with pkg-config, runs one clone. */
#include <stdio.h>
#include <string.h>

#include <kfork.h>

/*
 * Names libkfork's internals once exported (before its version script and
 * partial link): a program may have its own, linked statically or not.
 */
int vm_create(void);
int state_save(void);
int uart_init(void);

int vm_create(void)
{
	return 0;
}

int state_save(void)
{
	return 0;
}

int uart_init(void)
{
	return 0;
}

/* tiny_clone TEMPLATE: spawn one clone, run "echo hi", print what came back. */
int main(int argc, char **argv)
{
	struct kf_exec_req req = { .lang = KF_EXEC_SH, .code = "echo hi", .code_len = 7,
				   .timeout_ms = 60000 };
	struct kf_exec_result res = { 0 };
	struct kf_template *tmpl;
	struct kf_clone *clone;
	const char *version;
	int err;

	if (argc != 2 || vm_create() || state_save() || uart_init()) {
		fprintf(stderr, "usage: tiny_clone TEMPLATE\n");
		return 2;
	}
	if (kf_version(&version) != KF_VERSION || strcmp(version, KF_VERSION_STRING)) {
		fprintf(stderr, "tiny_clone: library %s, headers " KF_VERSION_STRING "\n", version);
		return 1;
	}
	err = kf_template_open(argv[1], KF_BACKEND_AUTO, &tmpl);
	if (err) {
		fprintf(stderr, "tiny_clone: %s\n", kf_last_error());
		return 1;
	}
	err = kf_spawn(tmpl, &clone);
	if (err) {
		fprintf(stderr, "tiny_clone: %s\n", kf_last_error());
		kf_template_close(tmpl);
		return 1;
	}
	err = kf_exec(clone, &req, &res);
	if (err)
		fprintf(stderr, "tiny_clone: %s\n", kf_last_error());
	else
		printf("libkfork %s, clone %llu: %s", version,
		       (unsigned long long)kf_clone_id(clone), res.out ? res.out : "");
	kf_exec_result_free(&res);
	kf_destroy(clone);
	kf_template_close(tmpl);
	return err || res.exit_code ? 1 : 0;
}
