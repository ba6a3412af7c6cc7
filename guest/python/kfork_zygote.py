# SPDX-License-Identifier: GPL-2.0-only
# kfork_zygote.py - warm Python interpreter: forks a child per EXEC, or runs it in place (session).
#
# Started by kfork-agent as `python3 -s -B kfork_zygote.py FD`; FD is an
# AF_UNIX SOCK_SEQPACKET socket to the agent (one message per record):
#
#   zygote -> agent  b"R"                              warmed up, serving
#   agent -> zygote  mode + code bytes + SCM_RIGHTS    one exec; the fds are its
#                    [stdin, stdout, stderr]            stdio pipe ends
#   zygote -> agent  b"P" + s32 pid                    child forked
#   zygote -> agent  b"W" + s32 pid + s32 status       child reaped, raw wait status
#
# Mode b"F": a forked child runs the code in a fresh __main__ module, exactly
# as `python3 file.py`; the zygote blocks in waitpid meanwhile. Mode b"S"
# (session): the zygote runs it itself, in one __main__ kept across such
# execs, with fds 0-2 and sys.std* pointed at the exec's pipes and put back
# after; "P" names the zygote, "W" carries the status the code would have
# exited with. Code that ends the interpreter (os._exit, a signal) ends the
# session: the agent reports that status. Integers are native byte order.
# Code is source bytes (compile() honours a coding cookie).

import array
import builtins
import gc
import io
import linecache
import os
import signal
import socket
import struct
import sys
import traceback
import types

# What a typical sandbox exec reaches for: imported once here, shared
# copy-on-write by every child (and every clone of the frozen template).
WARM_MODULES = (
    "abc", "argparse", "base64", "bisect", "collections", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "hashlib", "heapq", "itertools", "json", "math", "operator", "pathlib",
    "pprint", "random", "re", "shutil", "statistics", "string", "subprocess",
    "tempfile", "textwrap", "time", "typing", "unicodedata", "uuid",
)

MAX_CODE = 65536
SOURCE_NAME = "<kfork>"

# The session's __main__ and how many execs it ran (each gets its own source name,
# so a traceback through a function defined in an earlier exec shows that line).
session_main = None
session_execs = 0
zygote_pid = os.getpid()


def warm():
    for name in WARM_MODULES:
        try:
            __import__(name)
        except ImportError as e:
            print(f"kfork_zygote: warm import {name}: {e}", file=sys.stderr)
    # Objects that exist now are never collected in a child: keeps their
    # pages shared instead of dirtied by the collector's bookkeeping.
    gc.collect()
    gc.freeze()


def std_streams(fds):
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
    for fd in set(fds):
        if fd > 2:
            os.close(fd)
    # Same encodings and buffering Python picks for pipes, except stdout is
    # line-buffered so output streams back as it is produced.
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)),
        encoding="utf-8", errors="surrogateescape")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding="utf-8", errors="surrogateescape", line_buffering=True)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8", errors="backslashreplace", line_buffering=True)


def exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xff
    print(code, file=sys.stderr)
    return 1


def run_code(code, namespace, source_name):
    """Run code in namespace; its exit status, as the process would have exited."""
    text = code.decode("utf-8", "replace")
    linecache.cache[source_name] = (len(text), None, text.splitlines(True), source_name)
    try:
        exec(compile(code, source_name, "exec"), namespace)
        return 0
    except SystemExit as e:
        return exit_code(e)
    except BaseException as e:
        # Start the traceback at the user's code, not at this frame.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        return 1


def flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def run_in_place(code, fds):
    """Session exec: run code in this process; returns its wait status."""
    global session_main, session_execs
    saved_fds = [os.dup(fd) for fd in (0, 1, 2)]  # non-inheritable, like every fd we open
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_argv = sys.argv
    status = 1
    try:
        std_streams(fds)
        if session_main is None:
            session_main = types.ModuleType("__main__")
            session_main.__builtins__ = builtins
        sys.modules["__main__"] = session_main
        sys.argv = [""]
        session_execs += 1
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status = run_code(code, session_main.__dict__, f"<kfork-{session_execs}>")
        if os.getpid() != zygote_pid:
            # A child the code forked came back here: it ends as a forked exec's
            # would, and never serves the agent's socket beside us.
            flush_std()
            os._exit(status & 0xff)
    finally:
        flush_std()
        # Our copies of the pipe ends go here: the agent sees EOF once the
        # code's own children have let go of them too.
        for target, fd in enumerate(saved_fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = saved_streams
        sys.argv = saved_argv
    return (status & 0xff) << 8


def run_child(sock, code, fds):
    """Runs in the forked child; never returns."""
    status = 1
    try:
        sock.close()
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        std_streams(fds)
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        sys.argv = [""]
        status = run_code(code, main.__dict__, SOURCE_NAME)
    finally:
        flush_std()
        os._exit(status)


def serve(sock):
    fd_size = array.array("i").itemsize
    while True:
        msg, anc, flags, _ = sock.recvmsg(1 + MAX_CODE + 1, socket.CMSG_SPACE(3 * fd_size))
        if not msg and not anc:
            return  # agent closed its end
        mode, code = msg[:1], msg[1:]
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fd_size])
        if (len(fds) != 3 or mode not in (b"F", b"S") or
                flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC)):
            print(f"kfork_zygote: bad request ({len(msg)} bytes, {len(fds)} fds)",
                  file=sys.stderr)
            for fd in fds:
                os.close(fd)
            continue
        if mode == b"S":
            sock.send(b"P" + struct.pack("=i", os.getpid()))
            status = run_in_place(code, list(fds))
            sock.send(b"W" + struct.pack("=ii", os.getpid(), status))
            continue
        pid = os.fork()
        if pid == 0:
            run_child(sock, code, list(fds))
        for fd in fds:
            os.close(fd)
        sock.send(b"P" + struct.pack("=i", pid))
        _, status = os.waitpid(pid, 0)
        sock.send(b"W" + struct.pack("=ii", pid, status))


def main():
    if len(sys.argv) != 2:
        print("usage: kfork_zygote.py FD", file=sys.stderr)
        sys.exit(2)
    sock = socket.socket(fileno=int(sys.argv[1]))
    warm()
    sock.send(b"R")
    serve(sock)


if __name__ == "__main__":
    main()
