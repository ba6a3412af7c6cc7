# SPDX-License-Identifier: LGPL-2.1-or-later
"""kfork - spawn copy-on-write KVM sandboxes from a frozen guest and run code in them.

    import kfork

    with kfork.Template("python.tmpl") as t, t.spawn() as sb:
        r = sb.run("print(1+1)")
        assert r.text == "2\\n" and r.exit_code == 0
        sb.run("x = 41", session=True)          # a session: one live interpreter
        assert sb.run("print(x + 1)").text == "42\\n"

A thin ctypes binding of libkfork (kfork.h); the library is looked up in
$KFORK_LIB, then the build tree this package sits in (../../build/lib), then
the system (libkfork.so.1). Failures raise KforkError (an OSError) carrying
the errno and libkfork's message.
"""
from __future__ import annotations

from typing import Tuple

from . import _lib
from .errors import (AlreadyExistsError, BusyError, InvalidArgumentError, KforkError, LibraryError,
                     NotSupportedError, OutOfMemoryError, PermissionDeniedError, ProtocolError,
                     SessionLostError, TemplateNotFoundError, TooBigError)
from .sandbox import OutputCallback, Result, Sandbox, Template, unpersist

__version__ = "0.3.0"

__all__ = [
    "Template", "Sandbox", "Result", "OutputCallback", "unpersist", "library_version",
    "KforkError", "LibraryError", "TemplateNotFoundError", "InvalidArgumentError",
    "PermissionDeniedError", "AlreadyExistsError", "BusyError", "ProtocolError",
    "NotSupportedError", "TooBigError", "OutOfMemoryError", "SessionLostError",
]


def library_version() -> Tuple[str, str]:
    """(version string of the loaded libkfork, its path)."""
    import ctypes

    lib = _lib.lib()
    s = ctypes.c_char_p()
    lib.kf_version(ctypes.byref(s))
    return (s.value or b"").decode(), lib._name
