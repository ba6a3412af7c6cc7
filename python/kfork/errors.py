# SPDX-License-Identifier: LGPL-2.1-or-later
"""errors.py - the exceptions libkfork's -errno returns become, with kf_last_error()'s message."""
from __future__ import annotations

import errno as _errno
import os
from typing import Optional


class KforkError(OSError):
    """A libkfork call failed.

    ``errno`` is the positive errno the call returned (as -errno), ``strerror``
    the message kf_last_error() held right after it ("kf_spawn on clone 17:
    ..."), ``call`` the C function that failed.
    """

    def __init__(self, err: int, message: str, call: Optional[str] = None) -> None:
        super().__init__(err, message)
        self.call = call

    def __str__(self) -> str:
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"[{name}] {self.strerror}"


class LibraryError(KforkError):
    """libkfork could not be found, or is too old for this binding."""

    def __init__(self, message: str) -> None:
        super().__init__(_errno.ELIBACC, message)


class TemplateNotFoundError(KforkError, FileNotFoundError):
    """ENOENT: no such template file (or, for unpersist, no such kept template)."""


class InvalidArgumentError(KforkError, ValueError):
    """EINVAL: a bad argument (language, code, backend), or a template file that is not valid."""


class PermissionDeniedError(KforkError, PermissionError):
    """EPERM / EACCES: e.g. /dev/kvm or /dev/kfork not accessible to this user."""


class AlreadyExistsError(KforkError, FileExistsError):
    """EEXIST: e.g. persist() of a template kfork.ko keeps already."""


class BusyError(KforkError):
    """EBUSY: e.g. run() on a sandbox whose earlier run timed out, before reset()."""


class ProtocolError(KforkError):
    """EPROTO: the guest agent broke the protocol or reported an error."""


class NotSupportedError(KforkError):
    """EOPNOTSUPP / ENOTTY / ENODEV: e.g. persist() on the user backend, no kfork.ko."""


class TooBigError(KforkError):
    """E2BIG: e.g. code larger than one EXEC frame."""


class SessionLostError(KforkError):
    """ESRCH: the session's interpreter ended in an earlier run (os._exit, a signal); reset() first."""


class OutOfMemoryError(KforkError, MemoryError):
    """ENOMEM: e.g. the RLIMIT_MEMLOCK charge of a persistent template."""


_BY_ERRNO = {
    _errno.ENOENT: TemplateNotFoundError,
    _errno.EINVAL: InvalidArgumentError,
    _errno.EPERM: PermissionDeniedError,
    _errno.EACCES: PermissionDeniedError,
    _errno.EEXIST: AlreadyExistsError,
    _errno.EBUSY: BusyError,
    _errno.EPROTO: ProtocolError,
    _errno.EOPNOTSUPP: NotSupportedError,
    _errno.ENOTTY: NotSupportedError,
    _errno.ENODEV: NotSupportedError,
    _errno.E2BIG: TooBigError,
    _errno.ENOMEM: OutOfMemoryError,
    _errno.ESRCH: SessionLostError,
}


def error_from(ret: int, call: str) -> KforkError:
    """The exception for a libkfork call that returned ret (< 0); read in the failing thread."""
    from ._lib import last_error

    err = -ret
    msg = last_error() or f"{call}: {os.strerror(err)}"
    return _BY_ERRNO.get(err, KforkError)(err, msg, call)


def check(ret: int, call: str) -> int:
    """ret if it is >= 0; raises the matching KforkError otherwise."""
    if ret < 0:
        raise error_from(ret, call)
    return ret
