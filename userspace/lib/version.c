// SPDX-License-Identifier: LGPL-2.1-or-later
/* version.c - kf_version(): which libkfork a program is running against. */
#include <stddef.h>

#include "kfork.h"

unsigned int kf_version(const char **str)
{
	if (str)
		*str = KF_VERSION_STRING;
	return KF_VERSION;
}
