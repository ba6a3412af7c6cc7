#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""test_kfork.py - the kfork Python package against the tiny guest, reported as TAP for tests/tap.sh.

    python3 tests/python/test_kfork.py [NAME...]     (from the tree root; make check runs it
                                                      as build/tests/host/python_test)

Cases that need a clone SKIP with the reason when /dev/kvm is not usable here.
Exit status: 0 if nothing failed, 1 otherwise.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
from typing import List, Optional, Tuple

TREE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TREE, "python"))
# The Pythons this starts must not leave __pycache__ in the tree either.
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

import kfork  # noqa: E402

KVM_SKIP: Optional[str] = None
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    KVM_SKIP = "/dev/kvm not available: no clone can run here"
TMPDIR = tempfile.mkdtemp(prefix="kfork-python-test-")
_TINY: Optional[str] = None


def tiny_template() -> str:
    """A tiny-guest template file, built once per run with the tree's CLI."""
    global _TINY
    if _TINY is None:
        path = os.path.join(TMPDIR, "tiny.tmpl")
        p = subprocess.run([os.path.join(TREE, "build", "kfork"), "template", "build", "--kind", "tiny",
                            "-o", path], capture_output=True, text=True, timeout=120)
        if p.returncode:
            raise AssertionError(f"kfork template build --kind tiny: {p.stderr.strip()}")
        _TINY = path
    return _TINY


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(limit: float = 10.0) -> int:
    """open_fds() once it held still for 0.5 s: kf_destroy closes a clone's fds off-thread, later."""
    deadline = time.monotonic() + limit
    last, since = open_fds(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = open_fds()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return last


class NoKvm(unittest.TestCase):
    """What works without a clone: library lookup, errors, install."""

    def test_library_is_the_trees_and_new_enough(self) -> None:
        ver, path = kfork.library_version()
        self.assertEqual(os.path.join(TREE, "build", "lib", "libkfork.so.1"), path)
        self.assertGreaterEqual(tuple(int(x) for x in ver.split(".")), kfork._lib.REQUIRED_VERSION)

    def test_kfork_lib_env_that_is_wrong_is_a_clear_error(self) -> None:
        code = "import kfork\ntry:\n    kfork.Template('x')\nexcept kfork.LibraryError as e:\n    print(e)\n"
        env = dict(os.environ, KFORK_LIB="/nonexistent/libkfork.so.1",
                   PYTHONPATH=os.path.join(TREE, "python"))
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(0, p.returncode, p.stderr)
        self.assertIn("cannot load libkfork", p.stdout)
        self.assertIn("KFORK_LIB", p.stdout)

    def test_bad_template_path_is_enoent(self) -> None:
        with self.assertRaises(FileNotFoundError) as cm:
            kfork.Template(os.path.join(TMPDIR, "no-such.tmpl"))
        e = cm.exception
        self.assertIsInstance(e, kfork.KforkError)
        self.assertEqual(errno.ENOENT, e.errno)
        self.assertEqual("kf_template_open", e.call)
        self.assertIn("no-such.tmpl", e.strerror)

    def test_garbage_template_file_is_refused(self) -> None:
        path = os.path.join(TMPDIR, "garbage.tmpl")
        with open(path, "wb") as f:
            f.write(b"this is not a template" * 100)
        with self.assertRaises(kfork.KforkError) as cm:
            kfork.Template(path)
        self.assertNotEqual(0, cm.exception.errno)
        self.assertIn("garbage.tmpl", cm.exception.strerror)

    def test_bad_backend_name_is_einval(self) -> None:
        with self.assertRaises(kfork.InvalidArgumentError) as cm:
            kfork.Template(os.path.join(TMPDIR, "no-such.tmpl"), backend="qemu")
        self.assertEqual(errno.EINVAL, cm.exception.errno)
        self.assertIsInstance(cm.exception, ValueError)

    def test_make_install_puts_the_package_where_python3_finds_it(self) -> None:
        dest = os.path.join(TMPDIR, "stage")
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        p = subprocess.run(["make", "-s", "install", "PREFIX=/usr", f"DESTDIR={dest}"], cwd=TREE, env=env,
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(0, p.returncode, p.stderr)
        pkg = os.path.join(dest, "usr/lib/python3/dist-packages/kfork")
        for name in ("__init__.py", "_lib.py", "errors.py", "sandbox.py"):
            self.assertTrue(os.path.isfile(os.path.join(pkg, name)), f"{pkg}/{name} not installed")
        # As installed: the staged package, finding the staged library through KFORK_LIB.
        code = "import kfork; v, p = kfork.library_version(); print(kfork.__file__); print(p)"
        env = dict(os.environ, PYTHONPATH=os.path.dirname(pkg),
                   KFORK_LIB=os.path.join(dest, "usr/lib/libkfork.so.1"))
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(0, p.returncode, p.stderr)
        self.assertEqual([os.path.join(pkg, "__init__.py"), os.path.join(dest, "usr/lib/libkfork.so.1")],
                         p.stdout.split())
        self.assertFalse(os.path.exists(os.path.join(pkg, "__pycache__")))
        # ... and that directory is one Debian's own python3 searches.
        if os.access("/usr/bin/python3", os.X_OK):
            p = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.path)"],
                               capture_output=True, text=True, timeout=60)
            self.assertIn("'/usr/lib/python3/dist-packages'", p.stdout)


@unittest.skipIf(KVM_SKIP is not None, KVM_SKIP or "")
class Tiny(unittest.TestCase):
    """Clones of the tiny guest: its commands are echo/err/exit/cat/out/peek/poke/spin."""

    def setUp(self) -> None:
        self.tmpl = kfork.Template(tiny_template(), backend="user")
        self.addCleanup(self.tmpl.close)

    def test_template_properties(self) -> None:
        self.assertEqual("tiny", self.tmpl.kind)
        self.assertEqual("user", self.tmpl.backend)
        self.assertEqual(4 << 20, self.tmpl.mem_size)
        self.assertFalse(self.tmpl.is_persistent)

    def test_results_and_exit_codes(self) -> None:
        with self.tmpl.spawn() as sb:
            self.assertGreater(sb.id, 0)
            r = sb.run("echo hello")
            self.assertEqual(b"hello\n", r.stdout)
            self.assertEqual("hello\n", r.text)
            self.assertEqual(b"", r.stderr)
            self.assertEqual((0, 0, False, True), (r.exit_code, r.signal, r.timed_out, r.ok))
            self.assertGreater(r.exec_ns, 0)
            self.assertGreater(r.first_byte_ns, 0)
            self.assertLessEqual(r.first_byte_ns, r.exec_ns)
            self.assertGreater(r.exits, 0)
            r = sb.run("exit 3")
            self.assertEqual((3, b"", False), (r.exit_code, r.stdout, r.ok))
            r = sb.run("err oops")
            self.assertEqual(("", "oops\n"), (r.text, r.stderr_text))
            r = sb.run(b"no-such-command")
            self.assertEqual(127, r.exit_code)
            self.assertIn(b"unknown command", r.stderr)

    def test_stdin(self) -> None:
        data = bytes(range(256)) * 4
        with self.tmpl.spawn() as sb:
            self.assertEqual(data, sb.run("cat", stdin=data).stdout)
            self.assertEqual(b"text in\n", sb.run("cat", stdin="text in\n").stdout)
            self.assertEqual(b"", sb.run("cat").stdout)

    def test_max_output_stops_the_sandbox_with_emsgsize(self) -> None:
        with self.tmpl.spawn() as sb:
            with self.assertRaises(kfork.KforkError) as cm:
                sb.run("echo 0123456789", max_output=4)
            self.assertEqual(errno.EMSGSIZE, cm.exception.errno)
            self.assertIn("limit", str(cm.exception))
            sb.reset()
            self.assertEqual(b"ok\n", sb.run("echo ok", max_output=1000).stdout)

    def test_bad_language_is_einval(self) -> None:
        with self.tmpl.spawn() as sb:
            with self.assertRaises(kfork.InvalidArgumentError) as cm:
                sb.run("echo x", lang="ruby")
            self.assertEqual(errno.EINVAL, cm.exception.errno)
            # A number libkfork does not know: its own check and message.
            with self.assertRaises(kfork.InvalidArgumentError) as cm:
                sb.run("echo x", lang=7)
            self.assertEqual(errno.EINVAL, cm.exception.errno)
            self.assertEqual("kf_exec", cm.exception.call)
            self.assertIn("bad language", cm.exception.strerror)
            self.assertIn(f"clone {sb.id}", cm.exception.strerror)
            self.assertEqual(b"x\n", sb.run("echo x").stdout)

    def test_bad_code_carries_errno(self) -> None:
        with self.tmpl.spawn() as sb:
            with self.assertRaises(kfork.TooBigError) as cm:
                sb.run("echo " + "x" * 70000)
            self.assertEqual(errno.E2BIG, cm.exception.errno)
            self.assertIn("limit", cm.exception.strerror)
            # The tiny agent takes 255 bytes of code: it answers with an error frame.
            with self.assertRaises(kfork.ProtocolError) as cm:
                sb.run("echo " + "x" * 300)
            self.assertEqual(errno.EPROTO, cm.exception.errno)
            self.assertIn("EXEC code length", cm.exception.strerror)

    def test_session_needs_a_python_template(self) -> None:
        with self.tmpl.spawn() as sb:
            self.assertEqual("none", sb.session_state)
            with self.assertRaises(kfork.NotSupportedError) as cm:
                sb.start_session()
            self.assertEqual(errno.EOPNOTSUPP, cm.exception.errno)
            self.assertEqual("kf_session_begin", cm.exception.call)
            self.assertIn("sessions need a python template", cm.exception.strerror)
            with self.assertRaises(kfork.NotSupportedError):
                sb.run("echo x", session=True)
            self.assertEqual("none", sb.session_state)
            # session=False asks for a fresh interpreter: what a sandbox without a session has
            self.assertEqual(b"x\n", sb.run("echo x", session=False).stdout)

    def test_lost_interpreter_is_session_lost_error_until_reset(self) -> None:
        with self.tmpl.spawn() as sb:
            # The tiny guest plays an agent whose interpreter has ended (KF_ERR_SESSION = 7).
            with self.assertRaises(kfork.SessionLostError) as cm:
                sb.run("agenterr 7", lang="python")
            self.assertEqual(errno.ESRCH, cm.exception.errno)
            self.assertEqual("lost", sb.session_state)
            with self.assertRaises(kfork.SessionLostError) as cm:
                sb.run("echo x", lang="python")
            self.assertIn("kf_reset", cm.exception.strerror)
            with self.assertRaises(kfork.BusyError):
                sb.run("echo sh", lang="sh")
            sb.reset()
            self.assertEqual("none", sb.session_state)
            self.assertEqual(b"x\n", sb.run("echo x", lang="python").stdout)

    def test_reset_restores_memory(self) -> None:
        with self.tmpl.spawn() as sb:
            before = sb.run("peek 200000").stdout
            sb.run("poke 200000 c0ffee11")
            self.assertEqual(b"11eeffc0\n", sb.run("peek 200000").stdout)
            sb.reset()
            self.assertEqual(before, sb.run("peek 200000").stdout)
            self.assertNotEqual(b"11eeffc0\n", before)

    def test_timeout_sets_timed_out_then_reset(self) -> None:
        with self.tmpl.spawn() as sb:
            r = sb.run("spin", timeout=0.3)
            self.assertTrue(r.timed_out)
            self.assertFalse(r.ok)
            with self.assertRaises(kfork.BusyError) as cm:
                sb.run("echo again")
            self.assertEqual(errno.EBUSY, cm.exception.errno)
            self.assertIn("kf_reset", cm.exception.strerror)
            sb.reset()
            self.assertEqual(b"again\n", sb.run("echo again").stdout)

    def test_threads_run_in_parallel(self) -> None:
        n = 4
        boxes = self.tmpl.spawn_batch(n)
        self.assertEqual(n, self.tmpl.live_sandboxes)
        self.assertEqual(n, len({b.id for b in boxes}))
        results: List[Optional[Tuple[bytes, ...]]] = [None] * n
        errors: List[BaseException] = []

        def work(i: int) -> None:
            try:
                results[i] = tuple(boxes[i].run(f"echo {i}-{k}").stdout for k in range(5))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        # One more sandbox spins in its own thread: if a call held the GIL, nothing
        # else could finish until its timeout.
        spinner = self.tmpl.spawn()
        spin_done = threading.Event()
        st = threading.Thread(target=lambda: (spinner.run("spin", timeout=5), spin_done.set()))
        st.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        finished_during_spin = not spin_done.is_set()
        st.join(60)
        try:
            self.assertEqual([], errors)
            for i in range(n):
                self.assertEqual(tuple(f"{i}-{k}\n".encode() for k in range(5)), results[i])
            self.assertTrue(finished_during_spin, "execs in other threads waited for a spinning one")
            self.assertTrue(spin_done.is_set())
        finally:
            spinner.close()
            for b in boxes:
                b.close()
        self.assertEqual(0, self.tmpl.live_sandboxes)

    def test_context_manager_closes_on_error(self) -> None:
        # Warm up lazily created library state (reaper thread, signal handler) first.
        with self.tmpl.spawn() as sb:
            sb.run("echo warm")
        fds0 = settled_fds()
        with self.assertRaises(RuntimeError):
            with self.tmpl.spawn() as sb:
                self.assertEqual(1, self.tmpl.live_sandboxes)
                self.assertGreater(open_fds(), fds0)
                raise RuntimeError("user code failed")
        self.assertTrue(sb.closed)
        self.assertEqual(0, self.tmpl.live_sandboxes)
        with self.assertRaises(ValueError):
            sb.run("echo x")
        # kf_destroy tears down off the caller's thread: give it a moment.
        deadline = time.monotonic() + 10
        while open_fds() > fds0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(open_fds(), fds0, "a closed sandbox left file descriptors open")

    def test_spawn_batch_counts_and_closes(self) -> None:
        boxes = self.tmpl.spawn_batch(3)
        try:
            self.assertEqual(3, self.tmpl.live_sandboxes)
            self.assertEqual([b"%d\n" % b.id for b in boxes], [b.run("id").stdout for b in boxes])
        finally:
            for b in boxes:
                b.close()
        self.assertEqual(0, self.tmpl.live_sandboxes)
        self.assertEqual([], self.tmpl.spawn_batch(0))

    def test_streaming_callbacks_in_order(self) -> None:
        total = 3 * 4096 + 123
        want = bytes(ord("a") + i % 26 for i in range(total))
        chunks: List[bytes] = []
        errs: List[bytes] = []
        with self.tmpl.spawn() as sb:
            r = sb.run(f"out {total}", on_stdout=chunks.append, on_stderr=errs.append)
            self.assertEqual(0, r.exit_code)
            self.assertGreater(len(chunks), 1)
            self.assertEqual(want, b"".join(chunks))
            self.assertEqual(want, r.stdout)
            self.assertEqual([], errs)
            r = sb.run("err to stderr", on_stdout=chunks.append, on_stderr=errs.append)
            self.assertEqual([b"to stderr\n"], errs)
            self.assertEqual(b"to stderr\n", r.stderr)

    def test_callback_exception_is_raised_after_the_run(self) -> None:
        seen: List[bytes] = []

        def boom(chunk: bytes) -> None:
            seen.append(chunk)
            raise KeyError("from the callback")

        with self.tmpl.spawn() as sb:
            with self.assertRaises(KeyError):
                sb.run("out 10000", on_stdout=boom)
            self.assertEqual(1, len(seen), "callbacks went on after one raised")
            # The run itself completed: the sandbox is ready for the next one.
            self.assertEqual(b"next\n", sb.run("echo next").stdout)

    def test_sandbox_outlives_its_closed_template(self) -> None:
        t = kfork.Template(tiny_template(), backend="user")
        sb = t.spawn()
        t.close()
        with self.assertRaises(ValueError):
            t.spawn()
        try:
            self.assertEqual("tiny", sb.kind)
            self.assertEqual(b"still here\n", sb.run("echo still here").stdout)
            sb.reset()
            self.assertEqual(b"3\n", sb.run("echo 3").stdout)
        finally:
            sb.close()

    def test_persist_needs_kfork_ko(self) -> None:
        with self.assertRaises(kfork.NotSupportedError) as cm:
            self.tmpl.persist()
        self.assertEqual(errno.EOPNOTSUPP, cm.exception.errno)
        self.assertIn("kfork.ko", cm.exception.strerror)
        self.assertFalse(self.tmpl.is_persistent)


class TapResult(unittest.TestResult):
    """Prints one TAP line per case, kselftest style, as each ends."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.failed = 0

    def _line(self, test: unittest.TestCase, status: str) -> None:
        self.n += 1
        print(f"{status} {self.n} {test.id().split('.', 1)[-1]}", flush=True)

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._line(test, "ok")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self.n += 1
        print(f"ok {self.n} {test.id().split('.', 1)[-1]} # SKIP {reason}", flush=True)

    def _fail(self, test: unittest.TestCase, err: tuple) -> None:
        self.failed += 1
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print(f"# {line}")
        self._line(test, "not ok")

    def addFailure(self, test: unittest.TestCase, err: tuple) -> None:  # type: ignore[override]
        self._fail(test, err)

    def addError(self, test: unittest.TestCase, err: tuple) -> None:  # type: ignore[override]
        self._fail(test, err)


def main(argv: List[str]) -> int:
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in (NoKvm, Tiny):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    if argv:
        suite = unittest.TestSuite(t for t in suite if t.id().split(".")[-1] in argv)
    print("TAP version 13")
    print(f"1..{suite.countTestCases()}", flush=True)
    result = TapResult()
    try:
        suite.run(result)
    finally:
        subprocess.run(["rm", "-rf", TMPDIR], check=False)
    print(f"# python_test: {result.n - result.failed} of {result.n} not failed")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
