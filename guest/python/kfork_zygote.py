# SPDX-License-Identifier: GPL-2.0-only
# kfork_zygote.py - warm Python interpreter: forks one child per EXEC, already imported and ready.
#
# Started by kfork-agent as `python3 -s -B kfork_zygote.py FD`; FD is an
# AF_UNIX SOCK_SEQPACKET socket to the agent (one message per record):
#
#   zygote -> agent  b"R"                              warmed up, serving
#   agent -> zygote  code bytes + SCM_RIGHTS           one exec; the fds are the
#                    [stdin, stdout, stderr]            child's stdio pipe ends
#   zygote -> agent  b"P" + s32 pid                    child forked
#   zygote -> agent  b"W" + s32 pid + s32 status       child reaped, raw wait status
#
# Integers are native byte order. One exec at a time: the zygote blocks in
# waitpid while a child runs. Code is source bytes (compile() honours a coding
# cookie); it runs in a fresh __main__ module, exactly as `python3 file.py`.

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


def run_child(sock, code, fds):
    """Runs in the forked child; never returns."""
    status = 1
    try:
        sock.close()
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        std_streams(fds)
        text = code.decode("utf-8", "replace")
        linecache.cache[SOURCE_NAME] = (len(text), None,
                                        text.splitlines(True), SOURCE_NAME)
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        sys.argv = [""]
        try:
            exec(compile(code, SOURCE_NAME, "exec"), main.__dict__)
            status = 0
        except SystemExit as e:
            status = exit_code(e)
        except BaseException as e:
            # Start the traceback at the user's code, not at this frame.
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)
            status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(status)


def serve(sock):
    fd_size = array.array("i").itemsize
    while True:
        code, anc, flags, _ = sock.recvmsg(MAX_CODE + 1, socket.CMSG_SPACE(3 * fd_size))
        if not code and not anc:
            return  # agent closed its end
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fd_size])
        if len(fds) != 3 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            print(f"kfork_zygote: bad request ({len(code)} bytes, {len(fds)} fds)",
                  file=sys.stderr)
            for fd in fds:
                os.close(fd)
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
