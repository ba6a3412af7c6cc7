/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lab_template.h - lab tests' templates: built once per lab boot into /tmp (a
 * fresh tmpfs each boot), under a lock, by whichever test needs one first.
 */
#ifndef KFORK_LAB_TEMPLATE_H
#define KFORK_LAB_TEMPLATE_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "kfork.h"

#define LAB_TEMPLATE_LOCK	"/tmp/kfork-e2e.lock"

/*
 * Builds opts into path unless a previous test did: 0, or -1 with the reason
 * on stderr. Concurrent callers serialise on LAB_TEMPLATE_LOCK, so a template
 * is never read half-written.
 */
static inline int lab_template_build_once(const struct kf_build_opts *opts, const char *path)
{
	int lock, err = 0;

	lock = open(LAB_TEMPLATE_LOCK, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX)) {
		perror("# " LAB_TEMPLATE_LOCK);
		if (lock >= 0)
			close(lock);
		return -1;
	}
	if (access(path, R_OK))
		err = kf_template_build(opts, path);
	close(lock);
	if (err) {
		fprintf(stderr, "# kf_template_build %s: %s\n", path, kf_last_error());
		return -1;
	}
	return 0;
}

#endif /* KFORK_LAB_TEMPLATE_H */
