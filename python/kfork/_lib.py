# SPDX-License-Identifier: LGPL-2.1-or-later
"""_lib.py - finds and loads libkfork.so with ctypes, declares the C types and prototypes of kfork.h."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Optional

#: The oldest libkfork this binding works with: 0.3.0 brought kf_session_begin & co.
REQUIRED_VERSION = (0, 3, 0)

KF_BACKEND_AUTO = 0
KF_BACKEND_USER = 1
KF_BACKEND_KMOD = 2

KF_KIND_MINIMAL = 0
KF_KIND_PYTHON = 1
KF_KIND_TINY = 2

KF_EXEC_SH = 0
KF_EXEC_PYTHON = 1

#: enum kf_session_state
KF_SESSION_NONE = 0
KF_SESSION_ACTIVE = 1
KF_SESSION_LOST = 2

#: The stream numbers kf_output_fn is called with.
STREAM_STDOUT = 1
STREAM_STDERR = 2


def version_code(major: int, minor: int, patch: int) -> int:
    """KF_VERSION_CODE(): major in bits 16-23, minor 8-15, patch 0-7."""
    return (major << 16) | (minor << 8) | patch


class _Template(ctypes.Structure):
    """struct kf_template: opaque."""


class _Clone(ctypes.Structure):
    """struct kf_clone: opaque."""


TemplateP = ctypes.POINTER(_Template)
CloneP = ctypes.POINTER(_Clone)

#: typedef void (*kf_output_fn)(void *arg, int stream, const void *buf, size_t len);
OutputFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)


class ExecReq(ctypes.Structure):
    """struct kf_exec_req."""

    _fields_ = [
        ("lang", ctypes.c_int),
        ("code", ctypes.c_char_p),
        ("code_len", ctypes.c_size_t),
        ("stdin_data", ctypes.c_void_p),
        ("stdin_len", ctypes.c_size_t),
        ("timeout_ms", ctypes.c_uint),
        ("on_output", OutputFn),
        ("arg", ctypes.c_void_p),
        ("max_output", ctypes.c_size_t),
        ("max_dirty", ctypes.c_uint64),
    ]


class ExecResult(ctypes.Structure):
    """struct kf_exec_result; out and err are malloc'd by libkfork (kf_exec_result_free)."""

    _fields_ = [
        ("exit_code", ctypes.c_int),
        ("signal", ctypes.c_int),
        ("timed_out", ctypes.c_int),
        ("out", ctypes.c_void_p),
        ("out_len", ctypes.c_size_t),
        ("err", ctypes.c_void_p),
        ("err_len", ctypes.c_size_t),
        ("exec_ns", ctypes.c_uint64),
        ("first_byte_ns", ctypes.c_uint64),
        ("exits", ctypes.c_uint64),
    ]


# (name, restype, argtypes) for every function the binding calls.
_PROTOTYPES = [
    ("kf_version", ctypes.c_uint, [ctypes.POINTER(ctypes.c_char_p)]),
    ("kf_last_error", ctypes.c_char_p, []),
    ("kf_backend_name", ctypes.c_char_p, [ctypes.c_int]),
    ("kf_kind_name", ctypes.c_char_p, [ctypes.c_int]),
    ("kf_template_open", ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(TemplateP)]),
    ("kf_template_close", None, [TemplateP]),
    ("kf_template_kind", ctypes.c_int, [TemplateP]),
    ("kf_template_backend", ctypes.c_int, [TemplateP]),
    ("kf_template_mem_size", ctypes.c_uint64, [TemplateP]),
    ("kf_template_persist", ctypes.c_int, [TemplateP]),
    ("kf_template_unpersist", ctypes.c_int, [ctypes.c_char_p]),
    ("kf_template_is_persistent", ctypes.c_int, [TemplateP]),
    ("kf_spawn", ctypes.c_int, [TemplateP, ctypes.POINTER(CloneP)]),
    ("kf_exec", ctypes.c_int, [CloneP, ctypes.POINTER(ExecReq), ctypes.POINTER(ExecResult)]),
    ("kf_exec_result_free", None, [ctypes.POINTER(ExecResult)]),
    ("kf_reset", ctypes.c_int, [CloneP]),
    ("kf_session_begin", ctypes.c_int, [CloneP]),
    ("kf_session_state", ctypes.c_int, [CloneP]),
    ("kf_destroy", None, [CloneP]),
    ("kf_clone_id", ctypes.c_uint64, [CloneP]),
    ("kf_clone_spawn_ns", ctypes.c_uint64, [CloneP]),
]


def _candidates() -> list[str]:
    """Where to look, in order: KFORK_LIB, the build tree this package sits in, the system."""
    env = os.environ.get("KFORK_LIB")
    if env:
        # Set explicitly: no silent fallback to another copy.
        return [env]
    out = []
    here = os.path.dirname(os.path.abspath(__file__))
    tree_lib = os.path.normpath(os.path.join(here, "..", "..", "build", "lib", "libkfork.so.1"))
    if os.path.exists(tree_lib):
        out.append(tree_lib)
    found = ctypes.util.find_library("kfork")
    if found:
        out.append(found)
    out.append("libkfork.so.1")
    return out


def _load() -> ctypes.CDLL:
    # Imported here: errors imports nothing from this module at load time.
    from .errors import LibraryError

    tried = []
    lib: Optional[ctypes.CDLL] = None
    for cand in _candidates():
        try:
            # CDLL (not PyDLL): every call releases the GIL while it runs.
            lib = ctypes.CDLL(cand)
            break
        except OSError as e:
            tried.append(f"{cand}: {e}")
    if lib is None:
        raise LibraryError("cannot load libkfork (set KFORK_LIB to its path, build the tree "
                           "with make, or install it): " + "; ".join(tried))
    try:
        for name, restype, argtypes in _PROTOTYPES:
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
    except AttributeError as e:
        raise LibraryError(f"{lib._name} is not a libkfork this binding can use: {e}") from None
    s = ctypes.c_char_p()
    have = lib.kf_version(ctypes.byref(s))
    if have < version_code(*REQUIRED_VERSION):
        raise LibraryError("%s is libkfork %s; the kfork Python package needs %d.%d.%d or newer"
                           % (lib._name, (s.value or b"?").decode(), *REQUIRED_VERSION))
    return lib


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded libkfork, loaded and checked on first use."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def last_error() -> str:
    """kf_last_error() of the calling thread: read it right after the call that failed."""
    msg = lib().kf_last_error()
    return msg.decode(errors="replace") if msg else ""
