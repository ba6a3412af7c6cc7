# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox.py - Template, Sandbox and Result: libkfork's templates, clones and execs as Python objects."""
from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional, Union

from . import _lib
from .errors import InvalidArgumentError, KforkError, check, error_from

#: A streaming callback: called with each chunk of output as the guest sends it.
OutputCallback = Callable[[bytes], None]

_BACKENDS = {"auto": _lib.KF_BACKEND_AUTO, "user": _lib.KF_BACKEND_USER, "kmod": _lib.KF_BACKEND_KMOD}
_LANGS = {"sh": _lib.KF_EXEC_SH, "python": _lib.KF_EXEC_PYTHON}
_SESSION_STATES = {_lib.KF_SESSION_NONE: "none", _lib.KF_SESSION_ACTIVE: "active",
                   _lib.KF_SESSION_LOST: "lost"}


def _path_arg(path: Union[str, "os.PathLike[str]", bytes]) -> bytes:
    return os.fsencode(path)


def _name(s: Optional[bytes]) -> str:
    return s.decode() if s else "?"


@dataclass(frozen=True)
class Result:
    """What one Sandbox.run() produced.

    ``exit_code`` is 0..255 (128 + signal if killed), ``signal`` non-zero if
    the code was killed by one, ``timed_out`` True if the timeout hit (the
    output is then what came before it, and the sandbox needs reset()).
    ``exec_ns`` runs from the call to the exit status, ``first_byte_ns`` to the
    first byte of output, ``exits`` counts KVM_RUN returns during the run.
    """

    stdout: bytes
    stderr: bytes
    exit_code: int
    signal: int
    timed_out: bool
    exec_ns: int
    first_byte_ns: int
    exits: int

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        """stderr decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stderr.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """True if the code exited 0 within its timeout."""
        return self.exit_code == 0 and not self.timed_out and not self.signal


class Template:
    """A frozen guest loaded from a template file (kf_template_open).

    ``backend`` is "auto" (kfork.ko if /dev/kfork exists, else user; the
    KFORK_BACKEND environment variable overrides), "user" or "kmod". Use it as
    a context manager, or call close(); sandboxes spawned from it stay usable
    after close() (libkfork counts references), until they are closed too.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], backend: str = "auto") -> None:
        self._ptr: Optional[_lib.TemplateP] = None
        if backend not in _BACKENDS:
            raise InvalidArgumentError(22, f"backend {backend!r}: not one of {', '.join(_BACKENDS)}",
                                       "kf_template_open")
        self.path = os.fspath(path)
        self._live = 0
        self._live_lock = threading.Lock()
        lib = _lib.lib()
        ptr = _lib.TemplateP()
        check(lib.kf_template_open(_path_arg(path), _BACKENDS[backend], ctypes.byref(ptr)),
              "kf_template_open")
        self._ptr = ptr

    def _handle(self) -> _lib.TemplateP:
        if self._ptr is None:
            raise ValueError("template is closed")
        return self._ptr

    @property
    def kind(self) -> str:
        """"minimal", "python" or "tiny"."""
        lib = _lib.lib()
        return _name(lib.kf_kind_name(lib.kf_template_kind(self._handle())))

    @property
    def backend(self) -> str:
        """The backend actually in use: "user" or "kmod"."""
        lib = _lib.lib()
        return _name(lib.kf_backend_name(lib.kf_template_backend(self._handle())))

    @property
    def mem_size(self) -> int:
        """Guest RAM in bytes."""
        return int(_lib.lib().kf_template_mem_size(self._handle()))

    @property
    def is_persistent(self) -> bool:
        """True if kfork.ko keeps this template (attached to, or persisted by this process)."""
        return _lib.lib().kf_template_is_persistent(self._handle()) == 1

    @property
    def live_sandboxes(self) -> int:
        """How many sandboxes spawned from this object are not closed yet."""
        return self._live

    def persist(self) -> None:
        """Have kfork.ko keep this template after the process closes it (kmod backend).

        Later Template() opens of the same file by the same user attach to it
        in one ioctl. Raises AlreadyExistsError (EEXIST) if it is kept
        already, NotSupportedError (EOPNOTSUPP) on the user backend. Undo
        with kfork.unpersist(path).
        """
        check(_lib.lib().kf_template_persist(self._handle()), "kf_template_persist")

    def spawn(self) -> "Sandbox":
        """A new sandbox: a copy-on-write clone of the template (kf_spawn)."""
        return Sandbox._spawn(self)

    def spawn_batch(self, n: int) -> List["Sandbox"]:
        """n new sandboxes.

        libkfork has no batch call: this spawns them one after another in a
        loop. If any spawn fails, the ones already spawned are closed and the
        error is raised, so nothing leaks.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        out: List[Sandbox] = []
        try:
            for _ in range(n):
                out.append(self.spawn())
        except BaseException:
            for sb in out:
                sb.close()
            raise
        return out

    def _ref(self, delta: int) -> None:
        with self._live_lock:
            self._live += delta

    def close(self) -> None:
        """Release this process's reference (kf_template_close); idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            _lib.lib().kf_template_close(ptr)

    def __enter__(self) -> "Template":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) is not None and _lib is not None:
            self.close()

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<kfork.Template {self.path!r} closed>"
        return f"<kfork.Template {self.path!r} kind={self.kind} backend={self.backend}>"


class _Stream:
    """The on_output callback of one run: collects both streams, calls the user's, keeps the first exception."""

    def __init__(self, on_stdout: Optional[OutputCallback], on_stderr: Optional[OutputCallback]) -> None:
        self.callbacks = {_lib.STREAM_STDOUT: on_stdout, _lib.STREAM_STDERR: on_stderr}
        self.data = {_lib.STREAM_STDOUT: bytearray(), _lib.STREAM_STDERR: bytearray()}
        self.error: Optional[BaseException] = None
        self.cfunc = _lib.OutputFn(self._on_output)

    def _on_output(self, _arg: Optional[int], stream: int, buf: Optional[int], length: int) -> None:
        # An exception must not unwind through C: keep it for after kf_exec returns.
        try:
            chunk = ctypes.string_at(buf, length) if length else b""
            self.data.get(stream, self.data[_lib.STREAM_STDERR]).extend(chunk)
            cb = self.callbacks.get(stream)
            if cb is not None and self.error is None:
                cb(chunk)
        except BaseException as e:  # noqa: BLE001 - re-raised by Sandbox.run
            if self.error is None:
                self.error = e


class Sandbox:
    """One clone of a Template: run code in it, reset it, close it.

    Use it as a context manager: it is closed when the block ends, whether by
    an exception or not. One thread at a time per sandbox; different sandboxes
    run in parallel from different threads (calls release the GIL).

    By default every Python run starts from the template's interpreter, so
    nothing carries over between runs. A *session* (python templates) is a
    notebook-style live interpreter instead, like a stateful code
    interpreter: ``run("x = 41", session=True)`` starts it, and every later
    Python run shares its globals (``run("print(x + 1)")`` prints 42) until
    reset(), which brings back the template's fresh interpreter.
    """

    def __init__(self) -> None:
        raise TypeError("use Template.spawn()")

    @classmethod
    def _spawn(cls, template: Template) -> "Sandbox":
        self = cls.__new__(cls)
        self._ptr = None
        self.template = template
        lib = _lib.lib()
        ptr = _lib.CloneP()
        check(lib.kf_spawn(template._handle(), ctypes.byref(ptr)), "kf_spawn")
        self._ptr = ptr
        self._id = int(lib.kf_clone_id(ptr))
        # Cached: the sandbox outlives a closed Template object (libkfork keeps a reference).
        self._kind = template.kind
        template._ref(1)
        return self

    def _handle(self) -> _lib.CloneP:
        if self._ptr is None:
            raise ValueError("sandbox is closed")
        return self._ptr

    @property
    def kind(self) -> str:
        """The template's kind: "minimal", "python" or "tiny"."""
        return self._kind

    @property
    def id(self) -> int:
        """The clone's id, unique per template (the guest sees it too)."""
        return self._id

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._ptr is None

    @property
    def spawn_ns(self) -> int:
        """Nanoseconds the last spawn or reset took."""
        return int(_lib.lib().kf_clone_spawn_ns(self._handle()))

    @property
    def session_state(self) -> str:
        """The session (kf_session_state): "none", "active" or "lost".

        "lost": a run ended the session's interpreter (os._exit, a signal);
        Python runs raise SessionLostError until reset().
        """
        return _SESSION_STATES[int(_lib.lib().kf_session_state(self._handle()))]

    def start_session(self) -> "Sandbox":
        """Make later Python runs share one live interpreter, until reset() (kf_session_begin).

        Doing nothing if a session is active already. Raises NotSupportedError
        if the template is not a python one, SessionLostError if the session
        was lost, BusyError if the sandbox needs reset() after a timeout.
        sh runs are refused while a session is active. Returns the sandbox.
        """
        check(_lib.lib().kf_session_begin(self._handle()), "kf_session_begin")
        return self

    def run(self, code: Union[str, bytes], stdin: Optional[Union[str, bytes]] = None,
            timeout: Optional[float] = None, lang: Optional[Union[str, int]] = None,
            on_stdout: Optional[OutputCallback] = None,
            on_stderr: Optional[OutputCallback] = None,
            max_output: Optional[int] = None, max_dirty: Optional[int] = None,
            session: Optional[bool] = None) -> Result:
        """Run code in the sandbox and wait for it to exit (kf_exec).

        ``lang`` is "python" or "sh" (or the raw enum kf_exec_lang number);
        None means "python" for a python template, "sh" otherwise. ``timeout``
        is in seconds (None or 0: none); when it hits, the Result has
        timed_out set and the sandbox must be reset() before the next run.
        ``on_stdout`` / ``on_stderr`` get each chunk of output as it arrives,
        in the thread calling run(); the Result still holds all of it. An
        exception raised by a callback stops further callbacks and is raised
        again once the run is over. A non-zero exit code is not an error:
        it is in the Result. KforkError is raised when the sandbox failed.
        ``max_output`` (bytes of stdout + stderr) and ``max_dirty`` (guest
        pages newly copied from the template) stop the sandbox past them:
        KforkError with EMSGSIZE or EDQUOT, and it must be reset() or closed.

        ``session``: None runs as the sandbox is (in its session if one was
        started); True starts a session first if none is active
        (start_session()); False insists on a fresh interpreter and raises
        ValueError if a session is active. In a session, sys.exit(N) and
        exceptions end only the run (exit code N, 1); code that ends the
        interpreter (os._exit, a signal) returns that exit code and loses the
        session: later Python runs raise SessionLostError until reset(). A
        timeout or a limit needs reset() as always, which ends the session.
        """
        handle = self._handle()
        if session:
            self.start_session()
        elif session is not None and self.session_state == "active":
            raise ValueError(f"sandbox {self._id} is in a session: reset() ends it")
        code_b = code.encode() if isinstance(code, str) else bytes(code)
        stdin_b = stdin.encode() if isinstance(stdin, str) else (bytes(stdin) if stdin is not None else None)
        if lang is None:
            lang_n = _lib.KF_EXEC_PYTHON if self._kind == "python" else _lib.KF_EXEC_SH
        elif isinstance(lang, str):
            if lang not in _LANGS:
                raise InvalidArgumentError(22, f"exec on clone {self._id}: language {lang!r} is not "
                                           f"one of {', '.join(_LANGS)}", "kf_exec")
            lang_n = _LANGS[lang]
        else:
            lang_n = int(lang)
        timeout_ms = 0
        if timeout:
            if timeout < 0:
                raise ValueError("timeout must be >= 0")
            timeout_ms = max(1, min(int(timeout * 1000), 0xFFFFFFFF))

        stream = _Stream(on_stdout, on_stderr) if (on_stdout or on_stderr) else None
        stdin_buf = ctypes.create_string_buffer(stdin_b, len(stdin_b)) if stdin_b else None
        req = _lib.ExecReq(lang=lang_n, code=code_b, code_len=len(code_b),
                           stdin_data=ctypes.cast(stdin_buf, ctypes.c_void_p) if stdin_buf else None,
                           stdin_len=len(stdin_b) if stdin_b else 0, timeout_ms=timeout_ms,
                           on_output=stream.cfunc if stream else _lib.OutputFn(), arg=None,
                           max_output=max_output or 0, max_dirty=max_dirty or 0)
        res = _lib.ExecResult()
        lib = _lib.lib()
        ret = lib.kf_exec(handle, ctypes.byref(req), ctypes.byref(res))
        # kf_last_error() is per thread: build the exception before anything else calls in.
        err = None if ret == 0 or res.timed_out else _exec_error(ret)
        try:
            if stream is not None:
                out = bytes(stream.data[_lib.STREAM_STDOUT])
                errb = bytes(stream.data[_lib.STREAM_STDERR])
            else:
                out = ctypes.string_at(res.out, res.out_len) if res.out else b""
                errb = ctypes.string_at(res.err, res.err_len) if res.err else b""
            result = Result(stdout=out, stderr=errb, exit_code=res.exit_code, signal=res.signal,
                            timed_out=bool(res.timed_out), exec_ns=res.exec_ns,
                            first_byte_ns=res.first_byte_ns, exits=res.exits)
        finally:
            lib.kf_exec_result_free(ctypes.byref(res))
        # The CFUNCTYPE object (stream.cfunc) lived until here, past the call.
        if stream is not None and stream.error is not None:
            raise stream.error
        if err is not None:
            raise err
        return result

    def reset(self) -> None:
        """Return the sandbox to the template's state in place, with a fresh seed (kf_reset)."""
        check(_lib.lib().kf_reset(self._handle()), "kf_reset")

    def close(self) -> None:
        """Destroy the clone (kf_destroy); idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            _lib.lib().kf_destroy(ptr)
            self.template._ref(-1)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) is not None:
            self.close()

    def __repr__(self) -> str:
        return f"<kfork.Sandbox id={self._id}{' closed' if self._ptr is None else ''}>"


def _exec_error(ret: int) -> KforkError:
    return error_from(ret, "kf_exec")


def unpersist(path: Optional[Union[str, "os.PathLike[str]"]] = None) -> int:
    """Stop kfork.ko keeping the template of file path (kf_template_unpersist).

    Returns 1 for a path (raises TemplateNotFoundError if it was not kept);
    with path None, drops all of this user's kept templates and returns how many.
    """
    ret = check(_lib.lib().kf_template_unpersist(_path_arg(path) if path is not None else None),
                "kf_template_unpersist")
    return ret if path is None else 1
