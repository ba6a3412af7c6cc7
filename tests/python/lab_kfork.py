#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""lab_kfork.py - the kfork Python package with a python-kind template; run by tests/lab/python_binding_test.

    python3 -B tests/python/lab_kfork.py CASE TEMPLATE     CASE: run-user | run-kmod | persist-attach | session

Prints what it checked and exits 0, or raises (exit status 1).
"""
from __future__ import annotations

import errno
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import kfork  # noqa: E402


def run_one(path: str, backend: str) -> None:
    with kfork.Template(path, backend=backend) as t, t.spawn() as sb:
        assert (t.kind, t.backend) == ("python", backend), (t.kind, t.backend)
        r = sb.run("print(1+1)")
        assert (r.stdout, r.exit_code) == (b"2\n", 0), r
        r = sb.run("import sys; print('to err', file=sys.stderr); sys.exit(3)")
        assert (r.stderr, r.exit_code) == (b"to err\n", 3), r
        r = sb.run("echo $((6*7))", lang="sh")
        assert r.stdout == b"42\n", r
        # README's examples, as written there.
        r = sb.run("cat", stdin=b"hi", lang="sh")
        assert r.stdout == b"hi", r
        chunks: list[bytes] = []
        r = sb.run("for i in range(3): print(i)", on_stdout=chunks.append)
        assert b"".join(chunks) == r.stdout == b"0\n1\n2\n", (chunks, r)
        r = sb.run("while True: pass", timeout=1)
        assert r.timed_out, r
        sb.reset()
        r = sb.run("print(1+1)")
        assert r.text == "2\n", r
        boxes = t.spawn_batch(2)
        try:
            assert [b.run("print(1+1)").text for b in boxes] == ["2\n", "2\n"]
        finally:
            for b in boxes:
                b.close()
        print(f"{backend}: print(1+1) -> 2, sys.exit(3) -> 3, sh, stdin, streaming, timeout + reset, "
              "spawn_batch")


def session(path: str) -> None:
    with kfork.Template(path, backend="user") as t, t.spawn() as sb:
        assert sb.session_state == "none"
        r = sb.run("x = 41", session=True)
        assert (r.exit_code, sb.session_state) == (0, "active"), r
        assert sb.run("print(x + 1)").text == "42\n"
        r = sb.run("import sys; x += 1; sys.exit(3)")
        assert r.exit_code == 3 and sb.session_state == "active", r
        chunks: list[bytes] = []
        r = sb.run("print(x, input())", stdin="in", on_stdout=chunks.append)
        assert r.stdout == b"".join(chunks) == b"42 in\n", (r, chunks)
        try:
            sb.run("print(1)", session=False)
            raise AssertionError("session=False ran in a session")
        except ValueError:
            pass
        try:
            sb.run("echo hi", lang="sh")
            raise AssertionError("sh ran in a session")
        except kfork.NotSupportedError as e:
            assert e.errno == errno.EOPNOTSUPP, e
        r = sb.run("import os; os._exit(5)")
        assert (r.exit_code, sb.session_state) == (5, "lost"), r
        try:
            sb.run("print(x)")
            raise AssertionError("a lost session ran code")
        except kfork.SessionLostError as e:
            assert e.errno == errno.ESRCH, e
        sb.reset()
        assert sb.session_state == "none"
        r = sb.run("print('x' in globals())", session=True)
        assert r.text == "False\n", r
    print("session: x = 41 -> print(x + 1) -> 42, sys.exit(3) keeps it, stdin + streaming, "
          "session=False and sh refused, os._exit(5) -> 5 and SessionLostError, reset -> fresh")


def persist_attach(path: str) -> None:
    try:
        kfork.unpersist(path)
    except kfork.TemplateNotFoundError:
        pass
    with kfork.Template(path, backend="kmod") as t:
        assert not t.is_persistent
        t.persist()
        assert t.is_persistent
        try:
            t.persist()
            raise AssertionError("a second persist() succeeded")
        except kfork.AlreadyExistsError as e:
            assert e.errno == errno.EEXIST, e
    try:
        # A new open of the same file attaches to what kfork.ko keeps.
        with kfork.Template(path, backend="kmod") as t, t.spawn() as sb:
            assert t.is_persistent, "reopen did not attach"
            r = sb.run("print(1+1)")
            assert (r.stdout, r.exit_code) == (b"2\n", 0), r
    finally:
        assert kfork.unpersist(path) == 1
    try:
        kfork.unpersist(path)
        raise AssertionError("unpersist of a template no longer kept succeeded")
    except kfork.TemplateNotFoundError as e:
        assert e.errno == errno.ENOENT, e
    with kfork.Template(path, backend="kmod") as t:
        assert not t.is_persistent, "still attached after unpersist"
    print("persist -> attach on reopen -> print(1+1) -> unpersist -> ENOENT the second time")


def main(argv: list[str]) -> int:
    case, path = argv
    if case == "run-user":
        run_one(path, "user")
    elif case == "run-kmod":
        run_one(path, "kmod")
    elif case == "persist-attach":
        persist_attach(path)
    elif case == "session":
        session(path)
    else:
        raise SystemExit(f"unknown case {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
