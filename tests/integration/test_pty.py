"""Interactive sessions driven through a real pseudo-terminal: run -it, attach, exec -it, detach keys.

Each CLI (hatoba's own and the real docker CLI, both against hatobad) runs as the session leader of a
fresh pty whose slave is its controlling terminal, exactly as under a terminal emulator. The test reads
the master side with a deadline on every read, resizes by setting the master's window size (and sending
SIGWINCH), and checks what the shell inside the container sees (traces 18, 20 and 22).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator

import pytest

CLIS = {"hatoba": os.path.join(os.path.dirname(sys.executable), "hatoba"),  # as in conftest
        "docker": shutil.which("docker") or "/usr/local/bin/docker"}
PROMPT = rb"# "
CTRL_P, CTRL_Q = b"\x10", b"\x11"


def _set_ctty() -> None:
    # start_new_session already made the child a session leader; adopt the pty slave (fd 0) as its tty
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Term:
    """A CLI process on its own pty; every read has a deadline, close() kills it by pid."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100):
        self.argv = argv
        self.master, slave = pty.openpty()
        self._winsize(rows, cols)
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                         start_new_session=True, preexec_fn=_set_ctty, close_fds=True)
        finally:
            os.close(slave)
        os.set_blocking(self.master, False)
        self.buf = bytearray()
        self.pos = 0
        self.eof = False

    def _winsize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    # ---- I/O ----------------------------------------------------------------------------------------
    def _fill(self, timeout: float) -> None:
        if self.eof:
            time.sleep(min(timeout, 0.05))
            return
        r, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not r:
            return
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave fd is closed (the CLI exited)
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def expect(self, pattern: bytes, timeout: float = 20) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or (self.eof and self.proc.poll() is not None):
                raise AssertionError(f"{self.argv[0]}: no {pattern!r} within {timeout}s "
                                     f"(exited={self.proc.poll()}); output after the last match: "
                                     f"{bytes(self.buf[self.pos:])[-3000:]!r}")
            self._fill(min(left, 0.25))

    def wait_raw(self, timeout: float = 20) -> None:
        """Wait until the CLI has put the terminal in raw mode (input typed earlier is cooked)."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & (termios.ICANON | termios.ECHO):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{self.argv[0]} never set the terminal raw (exited={self.proc.poll()}): "
                                     f"{bytes(self.buf)[-3000:]!r}")
            self._fill(0.02)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def line(self, text: str) -> None:
        """Type a command line the way a terminal does (raw mode: Enter is CR)."""
        self.send(text.encode() + b"\r")

    def resize(self, rows: int, cols: int) -> None:
        self._winsize(rows, cols)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGWINCH)

    def stty_size(self) -> tuple[int, int]:
        self.line("stty size")
        m = self.expect(rb"\n(\d+) (\d+)\r?\n")
        return int(m.group(1)), int(m.group(2))

    def await_size(self, rows: int, cols: int, timeout: float = 10) -> None:
        """After a resize: it reaches the container asynchronously (SIGWINCH → API → conmon), so poll."""
        deadline = time.monotonic() + timeout
        size = self.stty_size()
        while size != (rows, cols) and time.monotonic() < deadline:
            time.sleep(0.2)
            size = self.stty_size()
        assert size == (rows, cols), (size, self.rest)

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv[0]} did not exit within {timeout}s; output after the last "
                                     f"match: {bytes(self.buf[self.pos:])[-3000:]!r}")
            self._fill(min(left, 0.1))
        # collect what is still buffered in the pty
        end = time.monotonic() + 1
        while not self.eof and time.monotonic() < end:
            self._fill(0.05)
        return self.proc.returncode

    @property
    def rest(self) -> bytes:
        return bytes(self.buf[self.pos:])

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(OSError):
            os.close(self.master)


@contextlib.contextmanager
def term(daemon, cli: str, *args: str, rows: int = 30, cols: int = 100) -> Iterator[Term]:
    t = Term([CLIS[cli], *args], daemon.env, rows, cols)
    try:
        t.wait_raw()
        yield t
    finally:
        t.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _remove(daemon, *names: str) -> None:
    for n in names:
        daemon.api("DELETE", f"/containers/{n}?force=1")


def _state(daemon, name: str) -> str | None:
    status, body = daemon.api("GET", f"/containers/{name}/json")
    if status == 404:
        return None
    assert status == 200, body
    return body["State"]["Status"]  # type: ignore[index]


def _wait_state(daemon, name: str, want: str | None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(daemon, name) == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}: state {_state(daemon, name)!r}, wanted {want!r}")


def _start_detached_tty(daemon, name: str) -> None:
    p = daemon.docker("run", "-dit", "--name", name, "busybox", "sh", timeout=60)
    assert p.returncode == 0, p.stderr
    _wait_state(daemon, name, "running")


def _interact(t: Term, *, rows: int = 30, cols: int = 100) -> None:
    """The common shell checks: arithmetic, tty name, initial size, size after a resize."""
    t.expect(PROMPT)
    t.line("echo hello-$((6*7))")
    t.expect(rb"hello-42\r?\n")
    t.line("tty")
    t.expect(rb"\n/dev/pts/\d+\r?\n")
    size = t.stty_size()
    assert size == (rows, cols), (size, t.rest)
    t.resize(40, 120)
    t.await_size(40, 120)


# ---- run -it ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_run_it(daemon, cli):
    name = _name(f"pty-run-{cli}")
    try:
        with term(daemon, cli, "run", "-it", "--name", name, "busybox", "sh") as t:
            _interact(t)
            t.line("tty")
            t.expect(rb"\n/dev/pts/0\r?\n")
            t.line("exit 5")
            assert t.wait() == 5, t.rest
        assert _state(daemon, name) == "exited", daemon.log_tail()
        status, body = daemon.api("GET", f"/containers/{name}/json")
        assert body["State"]["ExitCode"] == 5  # type: ignore[index]
        assert body["Config"]["Tty"] and body["Config"]["OpenStdin"] and body["Config"]["StdinOnce"]  # type: ignore[index]
    finally:
        _remove(daemon, name)


# ---- detach keys, then attach again -----------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_run_it_rm_detach_and_reattach(daemon, cli):
    name = _name(f"pty-detach-{cli}")
    try:
        with term(daemon, cli, "run", "-it", "--rm", "--name", name, "busybox", "sh") as t:
            t.expect(PROMPT)
            t.line("echo before-$((1+1))")
            t.expect(rb"before-2\r?\n")
            t.send(CTRL_P + CTRL_Q)
            # docker run: the escape sequence ends the session quietly with status 0
            assert t.wait() == 0, t.rest
            assert b"read escape sequence" not in t.rest, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
        # the shell survived the detach: its stdin was not closed
        p = daemon.hatoba("exec", name, "sh", "-c", "echo alive")
        assert p.returncode == 0 and p.stdout == b"alive\n", p
        with term(daemon, cli, "attach", name) as t:
            t.line("echo again-$((2+2))")
            t.expect(rb"again-4\r?\n")
            t.line("exit 2")
            assert t.wait() == 2, t.rest
        _wait_state(daemon, name, None)  # --rm removed it
    finally:
        _remove(daemon, name)


@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_attach_dit_detach(daemon, cli):
    name = _name(f"pty-attach-{cli}")
    try:
        _start_detached_tty(daemon, name)
        with term(daemon, cli, "attach", name) as t:
            t.line("echo attached-$((3*3))")
            t.expect(rb"attached-9\r?\n")
            size = t.stty_size()
            assert size == (30, 100), (size, t.rest)
            t.resize(33, 111)
            t.await_size(33, 111)
            t.send(CTRL_P + CTRL_Q)
            # trace 20: docker attach reports the escape sequence and exits 1
            assert t.wait() == 1, t.rest
            assert b"read escape sequence" in t.rest, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
        with term(daemon, cli, "attach", name) as t:
            t.line("echo back-$((4*4))")
            t.expect(rb"back-16\r?\n")
            t.line("exit 2")
            assert t.wait() == 2, t.rest
        assert _state(daemon, name) == "exited", daemon.log_tail()
    finally:
        _remove(daemon, name)


# ---- exec -it ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_exec_it(daemon, cli):
    name = _name(f"pty-exec-{cli}")
    try:
        p = daemon.hatoba("run", "-d", "--name", name, "busybox", "sleep", "300")
        assert p.returncode == 0, p.stderr
        with term(daemon, cli, "exec", "-it", name, "sh", rows=25, cols=90) as t:
            _interact(t, rows=25, cols=90)
            t.line("exit 4")
            assert t.wait() == 4, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
        # a second exec session in the same container, left by Ctrl-D (EOF on the shell's tty)
        with term(daemon, cli, "exec", "-it", name, "sh") as t:
            t.expect(PROMPT)
            t.send(b"\x04")
            assert t.wait() == 0, t.rest
    finally:
        _remove(daemon, name)


@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_exec_it_detach(daemon, cli):
    name = _name(f"pty-execdetach-{cli}")
    try:
        p = daemon.hatoba("run", "-d", "--name", name, "busybox", "sleep", "300")
        assert p.returncode == 0, p.stderr
        with term(daemon, cli, "exec", "-it", name, "sh") as t:
            t.expect(PROMPT)
            t.line("echo in-exec-$((5*5))")
            t.expect(rb"in-exec-25\r?\n")
            t.send(CTRL_P + CTRL_Q)
            # docker exec treats the escape sequence as an error: message and status 1
            assert t.wait() == 1, t.rest
            assert b"read escape sequence" in t.rest, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
    finally:
        _remove(daemon, name)


@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_start_ai(daemon, cli):
    name = _name(f"pty-start-{cli}")
    try:
        p = daemon.docker("create", "-it", "--name", name, "busybox", "sh")
        assert p.returncode == 0, p.stderr
        with term(daemon, cli, "start", "-ai", name) as t:
            t.expect(PROMPT)
            t.line("echo started-$((7*7))")
            t.expect(rb"started-49\r?\n")
            t.send(CTRL_P + CTRL_Q)
            assert t.wait() == 0, t.rest  # start -a: a quiet detach, like run
            assert b"read escape sequence" not in t.rest, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
        with term(daemon, cli, "start", "-ai", name) as t:  # already running: just attaches
            t.line("echo restarted-$((8*8))")
            t.expect(rb"restarted-64\r?\n")
            t.line("exit 3")
            assert t.wait() == 3, t.rest
        assert _state(daemon, name) == "exited", daemon.log_tail()
    finally:
        _remove(daemon, name)


@pytest.mark.parametrize("cli", ["hatoba", "docker"])
def test_exec_it_into_tty_container(daemon, cli):
    name = _name(f"pty-exectty-{cli}")
    try:
        _start_detached_tty(daemon, name)
        with term(daemon, cli, "exec", "-it", name, "sh") as t:
            t.expect(PROMPT)
            t.line("tty")
            t.expect(rb"\n/dev/pts/\d+\r?\n")
            assert t.stty_size() == (30, 100)
            t.line("exit 4")
            assert t.wait() == 4, t.rest
        assert _state(daemon, name) == "running", daemon.log_tail()
    finally:
        _remove(daemon, name)


def test_resize_burst_ends_at_last_size(daemon):
    """Back-to-back resizes (a window being dragged) must leave the last size, not the first one."""
    name = _name("pty-burst")
    try:
        _start_detached_tty(daemon, name)
        for rows in range(20, 32):
            status, body = daemon.api("POST", f"/containers/{name}/resize?h={rows}&w={rows + 60}")
            assert status == 200, body
        p = daemon.hatoba("exec", name, "sh", "-c", "stty size < /proc/1/fd/0")
        assert p.stdout == b"31 91\n", p
        eid = daemon.api("POST", f"/containers/{name}/exec",
                         {"Cmd": ["sleep", "30"], "Tty": True, "AttachStdout": False})[1]["Id"]  # type: ignore[index]
        status, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True, "Tty": True})
        assert status == 200, body
        for rows in range(20, 32):
            status, body = daemon.api("POST", f"/exec/{eid}/resize?h={rows}&w={rows + 40}")
            assert status == 200, body
        pid = daemon.api("GET", f"/exec/{eid}/json")[1]["Pid"]  # type: ignore[index]
        with open(f"/proc/{pid}/fd/0", "rb") as tty:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(tty, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        assert (rows, cols) == (31, 71)
    finally:
        _remove(daemon, name)
