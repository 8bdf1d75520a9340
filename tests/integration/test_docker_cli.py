"""The real docker CLI against hatobad: the getting-started workflow and the traced error paths.

Expected outputs follow /work/shared/reference/cli-traces/ (docker 28; trace numbers in the docstrings).
Where the CLI's own text depends on its version (how it shows a daemon's error, its API version, the
`run` error trailer), the expectation is read from the CLI under test (conftest.DockerCLI): the suite
passes with docker 28 and with Debian 12's docker.io 20.10 (HATOBA_TEST_DOCKER=/usr/bin/docker).
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import tarfile
import threading
import time
import uuid

import pytest
from conftest import DOCKER

TICKER = 'i=0; while true; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 1; done'
SHORT_ID = re.compile(r"[0-9a-f]{12}")
LONG_ID = re.compile(r"[0-9a-f]{64}")
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _rm(daemon, *names: str) -> None:
    daemon.docker("rm", "-f", *names)


def _run_d(daemon, name: str, *cmd: str) -> str:
    p = daemon.docker("run", "-d", "--name", name, "busybox", *cmd, check=True)
    cid = p.stdout.decode().strip()
    assert LONG_ID.fullmatch(cid), p.stdout
    return cid


def _shown(p: subprocess.CompletedProcess) -> tuple[int, bytes, bytes]:
    return p.returncode, p.stdout, p.stderr


def _same_as_dockerd(daemon, docker_cli, args: tuple[str, ...], status: int, message: str) -> None:
    """`docker args` against hatobad prints what this CLI prints when dockerd answers `status`
    {"message": message} (a daemon error's text is the CLI's, and differs between CLI versions)."""
    assert _shown(daemon.docker(*args)) == _shown(docker_cli.expect(*args, status=status, message=message))


def _until(pred, timeout: float = 10.0, step: float = 0.1):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


class Lines:
    """Reads a Popen pipe line by line in a thread, so the test can wait with a deadline."""

    def __init__(self, pipe):
        self.q: queue.Queue[bytes | None] = queue.Queue()
        self.t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.t.start()

    def _pump(self, pipe) -> None:
        for line in iter(pipe.readline, b""):
            self.q.put(line)
        self.q.put(None)

    def take(self, n: int, timeout: float = 15.0) -> list[str]:
        out: list[str] = []
        deadline = time.time() + timeout
        while len(out) < n:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            out.append(line.decode().rstrip("\n"))
        return out

    def rest(self, timeout: float = 10.0) -> list[str]:
        self.t.join(timeout)
        out = []
        while not self.q.empty():
            line = self.q.get()
            if line is not None:
                out.append(line.decode().rstrip("\n"))
        return out


def _popen(daemon, *args: str) -> subprocess.Popen:
    return subprocess.Popen([DOCKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon.env)


def _reap(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait(10)


# ---- run ------------------------------------------------------------------------------------------

def test_run_foreground(daemon):
    """03: create, attach, wait?condition=removed, start; output then exit status."""
    p = daemon.docker("run", "--rm", "busybox", "echo", "hello")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"hello\n", b"")
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")


def test_run_detached(daemon):
    """04: run -d prints the full ID (and hangs up the next-exit waiter, which the daemon must survive)."""
    name = _name("rund")
    try:
        cid = _run_d(daemon, name, "sleep", "30")
        p = daemon.docker("inspect", "-f", "{{.Id}} {{.State.Status}} {{.Name}}", name)
        assert p.stdout.decode() == f"{cid} running /{name}\n"
        assert daemon.ping()
        p = daemon.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}")
        assert p.stdout.decode() == cid + "\n"
    finally:
        _rm(daemon, name)


def test_run_interactive_piped_stdin(daemon):
    """19: stdin written before start, half-closed; stdout and stderr stay separate; exit 7."""
    script = b"echo line one\necho to-stderr >&2\ncat /etc/hostname\nexit 7\n"
    p = daemon.docker("run", "-i", "--rm", "busybox", "sh", input=script)
    assert p.returncode == 7, p.stderr
    out = p.stdout.decode().split("\n")
    assert out[0] == "line one" and SHORT_ID.fullmatch(out[1]) and out[2:] == [""], p.stdout
    assert p.stderr == b"to-stderr\n"


# ---- logs / attach ----------------------------------------------------------------------------------

def test_logs_and_follow(daemon):
    """09, 10: logs demultiplexes stdout/stderr; -f --tail 2 -t streams timestamped lines and ends with the
    container."""
    name = _name("ticker")
    try:
        _run_d(daemon, name, "sh", "-c", TICKER)
        assert _until(lambda: b"tick 2" in daemon.docker("logs", name).stdout)
        p = daemon.docker("logs", name)
        assert p.returncode == 0
        outs, errs = p.stdout.decode().splitlines(), p.stderr.decode().splitlines()
        assert outs[:3] == ["tick 0", "tick 1", "tick 2"], outs
        assert errs[:2] == ["err 0", "err 1"], errs
        p = daemon.docker("logs", "--tail", "1", name)
        assert len(p.stdout.decode().splitlines()) + len(p.stderr.decode().splitlines()) == 1

        f = _popen(daemon, "logs", "-f", "--tail", "2", "-t", name)
        try:
            out = Lines(f.stdout)
            lines = out.take(3)
            assert len(lines) == 3, lines
            for line in lines:
                assert re.fullmatch(TS + r" tick \d+", line), line
            nums = [int(x.rsplit(" ", 1)[1]) for x in lines]
            assert nums == list(range(nums[0], nums[0] + 3)), nums
            st = daemon.docker("stop", "-t", "1", name)
            assert (st.returncode, st.stdout) == (0, f"{name}\n".encode())
            assert f.wait(10) == 0  # the follow ends by itself when the container stops
            err = f.stderr.read().decode().splitlines()
            assert err and all(re.fullmatch(TS + r" err \d+", x) for x in err), err
        finally:
            _reap(f)
        p = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert p.stdout == b"exited 137\n"
        # logs of a stopped container still work, -f returns at once
        p = daemon.docker("logs", "-f", "--tail", "1", name, timeout=10)
        assert p.returncode == 0
    finally:
        _rm(daemon, name)


def test_attach_notty_sigint(daemon):
    """21: attach to a non-TTY ticker, Ctrl-C is proxied as kill?signal=INT; the CLI exits with the
    container's status."""
    name = _name("attach")
    try:
        _run_d(daemon, name, "sh", "-c", TICKER)
        a = _popen(daemon, "attach", name)
        try:
            out = Lines(a.stdout)
            lines = out.take(2)
            assert len(lines) == 2 and all(re.fullmatch(r"tick \d+", x) for x in lines), lines
            assert a.poll() is None
            a.send_signal(signal.SIGINT)
            assert a.wait(10) == 130
        finally:
            _reap(a)
        p = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert p.stdout == b"exited 130\n"
    finally:
        _rm(daemon, name)


def test_attach_ends_with_container(daemon):
    """`docker attach` returns the exit status once the container exits by itself."""
    name = _name("attach2")
    try:
        _run_d(daemon, name, "sh", "-c", "sleep 1; echo bye; exit 6")
        p = daemon.docker("attach", name, timeout=20)
        assert (p.returncode, p.stdout) == (6, b"bye\n"), p.stderr
    finally:
        _rm(daemon, name)


# ---- exec ----------------------------------------------------------------------------------------

def test_exec(daemon, docker_cli):
    """23, 24, 25: exec exit codes and separated streams, -i with piped stdin, -d."""
    name = _name("exec")
    try:
        cid = _run_d(daemon, name, "sleep", "60")
        p = daemon.docker("exec", name, "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")
        p = daemon.docker("exec", name, "true")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        p = daemon.docker("exec", name, "cat", "/etc/hostname")
        assert p.stdout.decode() == cid[:12] + "\n"
        p = daemon.docker("exec", "-i", name, "sh", "-c", "cat; echo done", input=b"hello via stdin\n")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"hello via stdin\ndone\n", b"")
        p = daemon.docker("exec", "-e", "FOO=bar", "-w", "/tmp", name, "sh", "-c", 'echo "$FOO $(pwd)"')
        assert p.stdout == b"bar /tmp\n"
        p = daemon.docker("exec", "-d", name, "sh", "-c", "sleep 0.3; echo bg > /tmp/bg")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        assert _until(lambda: daemon.docker("exec", name, "cat", "/tmp/bg").stdout == b"bg\n")
        # a missing binary: the error comes through the stream, the status from exec inspect
        p = daemon.docker("exec", name, "nosuchcmd")
        assert p.returncode == 127, p
        assert p.stdout.startswith(b"OCI runtime exec failed: ")
        assert b'"nosuchcmd": executable file not found in $PATH' in p.stdout
        assert p.stderr == b""
        p = daemon.docker("exec", name, "/etc/passwd")
        assert p.returncode == 126 and b"permission denied" in p.stdout, p
        _same_as_dockerd(daemon, docker_cli, ("exec", "nosuchcontainer", "true"), 404,
                         "No such container: nosuchcontainer")
        daemon.docker("kill", name, check=True)
        _same_as_dockerd(daemon, docker_cli, ("exec", name, "true"), 409, f"Container {cid} is not running")
    finally:
        _rm(daemon, name)


def test_exec_background_child_keeps_stdout(daemon):
    """A command that leaves a child holding its stdout: the exec ends about 2 s after the command
    (as with dockerd), with the command's status, not when the child ends."""
    name = _name("execbg")
    try:
        _run_d(daemon, name, "sleep", "60")
        for script, status in (("sleep 30 & echo bg", 0), ("sleep 30 & echo bg; exit 4", 4)):
            t0 = time.monotonic()
            p = daemon.docker("exec", name, "sh", "-c", script)
            assert (p.returncode, p.stdout) == (status, b"bg\n") and time.monotonic() - t0 < 10, p
            p = daemon.hatoba("exec", name, "sh", "-c", script)
            assert (p.returncode, p.stdout) == (status, b"bg\n") and time.monotonic() - t0 < 20, p
    finally:
        _rm(daemon, name)


# ---- filesystem: cp, diff, export ---------------------------------------------------------------------

def test_cp(daemon, docker_cli, tmp_path):
    """36, 37: cp out (file into a dir, dir into a dir, file to a new name) and in (file, dir to a new
    name, dir into an existing dir)."""
    name = _name("cp")
    try:
        _run_d(daemon, name, "sh", "-c", "mkdir -p /tmp/newdir/sub && echo f > /tmp/newdir/f && "
                                         "echo g > /tmp/newdir/sub/g && exec sleep 60")
        assert _until(lambda: daemon.docker("exec", name, "test", "-f", "/tmp/newdir/sub/g").returncode == 0)
        passwd = daemon.docker("exec", name, "cat", "/etc/passwd", check=True).stdout
        x = tmp_path / "x"
        x.mkdir()
        p = daemon.docker("cp", f"{name}:/etc/passwd", f"{x}/")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        assert (x / "passwd").read_bytes() == passwd
        p = daemon.docker("cp", f"{name}:/tmp/newdir", f"{x}/")
        assert p.returncode == 0, p.stderr
        assert (x / "newdir" / "f").read_bytes() == b"f\n"
        assert (x / "newdir" / "sub" / "g").read_bytes() == b"g\n"
        p = daemon.docker("cp", f"{name}:/etc/passwd", f"{x}/pw-copy")
        assert p.returncode == 0 and (x / "pw-copy").read_bytes() == passwd
        _same_as_dockerd(daemon, docker_cli, ("cp", f"{name}:/nonexistent", f"{x}/"), 404,
                         f"Could not find the file /nonexistent in container {name}")

        hostdir = tmp_path / "hostdir"
        (hostdir / "sub").mkdir(parents=True)
        (hostdir / "a.txt").write_text("hi\n")
        (hostdir / "sub" / "b.txt").write_text("deep\n")
        p = daemon.docker("cp", str(hostdir / "a.txt"), f"{name}:/tmp/")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        assert daemon.docker("exec", name, "cat", "/tmp/a.txt").stdout == b"hi\n"
        p = daemon.docker("cp", str(hostdir), f"{name}:/tmp/newname")
        assert p.returncode == 0, p.stderr
        found = daemon.docker("exec", name, "find", "/tmp/newname").stdout.decode().split()
        assert sorted(found) == ["/tmp/newname", "/tmp/newname/a.txt", "/tmp/newname/sub",
                                 "/tmp/newname/sub/b.txt"]
        assert daemon.docker("exec", name, "cat", "/tmp/newname/sub/b.txt").stdout == b"deep\n"
        # the destination exists now: the directory goes inside it
        p = daemon.docker("cp", str(hostdir), f"{name}:/tmp/newname")
        assert p.returncode == 0, p.stderr
        assert daemon.docker("exec", name, "cat", "/tmp/newname/hostdir/a.txt").stdout == b"hi\n"
        # stdin/stdout tar streams
        p = daemon.docker("cp", f"{name}:/tmp/a.txt", "-")
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
            assert t.getnames() == ["a.txt"]
            assert t.extractfile("a.txt").read() == b"hi\n"  # type: ignore[union-attr]
    finally:
        _rm(daemon, name)


def test_diff(daemon):
    """35: A/C/D lines; the runtime's bind-mount targets (/etc/hostname, ...) are not changes."""
    name = _name("diff")
    try:
        _run_d(daemon, name, "sh", "-c", "mkdir -p /tmp/newdir && touch /tmp/newdir/f && echo changed > /etc/motd"
                                         " && rm /etc/group && exec sleep 60")
        assert _until(lambda: daemon.docker("exec", name, "test", "-f", "/etc/motd").returncode == 0)
        p = daemon.docker("diff", name)
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.decode().splitlines()) == ["A /etc/motd", "A /tmp/newdir", "A /tmp/newdir/f",
                                                          "C /etc", "C /tmp", "D /etc/group"]
    finally:
        _rm(daemon, name)
    name = _name("diff0")
    try:
        daemon.docker("run", "--name", name, "busybox", "true", check=True)
        p = daemon.docker("diff", name)
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    finally:
        _rm(daemon, name)


def test_export(daemon, tmp_path):
    """38: export streams the container's filesystem as a tar."""
    name = _name("export")
    try:
        _run_d(daemon, name, "sh", "-c", "echo marker > /root-marker; exec sleep 60")
        assert _until(lambda: daemon.docker("exec", name, "test", "-f", "/root-marker").returncode == 0)
        p = daemon.docker("export", name, timeout=120)
        assert p.returncode == 0 and p.stderr == b""
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
            names = t.getnames()
            assert "bin/busybox" in names and "etc/passwd" in names
            assert t.extractfile("root-marker").read() == b"marker\n"  # type: ignore[union-attr]
        out = tmp_path / "e.tar"
        p = daemon.docker("export", "-o", str(out), name, timeout=120)
        assert p.returncode == 0
        with tarfile.open(out) as t:
            assert "bin/busybox" in t.getnames()
    finally:
        _rm(daemon, name)


# ---- inspect, top, stats ---------------------------------------------------------------------------

def test_inspect_top_stats(daemon):
    """12, 14, 71: client-side templates over /json, ps columns, one stats sample with real memory."""
    name = _name("insp")
    try:
        cid = _run_d(daemon, name, "sleep", "60")
        p = daemon.docker("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", name)
        assert p.stdout == f"running /{name} busybox\n".encode()
        p = daemon.docker("inspect", "-f", "{{json .Config.Cmd}} {{.Config.Tty}} {{.HostConfig.AutoRemove}}", name)
        assert p.stdout == b'["sleep","60"] false false\n'
        p = daemon.docker("container", "inspect", "--format", "{{.Id}}", cid[:12])
        assert p.stdout.decode() == cid + "\n"

        p = daemon.docker("top", name)
        assert p.returncode == 0, p.stderr
        rows = p.stdout.decode().splitlines()
        assert rows[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert len(rows) == 2 and rows[1].split()[0] == "root" and rows[1].endswith("sleep 60"), rows

        p = daemon.docker("stats", "--no-stream", name, timeout=30)
        assert p.returncode == 0, p.stderr
        rows = p.stdout.decode().splitlines()
        assert re.split(r"\s{2,}", rows[0].strip()) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                                        "NET I/O", "BLOCK I/O", "PIDS"], rows
        assert len(rows) == 2
        cols = re.split(r"\s{2,}", rows[1].strip())
        assert cols[0] == cid[:12] and cols[1] == name, cols
        assert re.fullmatch(r"\d+\.\d\d%", cols[2]), cols
        usage, limit = cols[3].split(" / ")
        assert re.fullmatch(r"[\d.]+(KiB|MiB)", usage), usage  # not 0B
        assert re.fullmatch(r"[\d.]+(MiB|GiB)", limit), limit
        assert cols[7] == "1"
        p = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name, timeout=30)
        assert p.stdout == f"{name} 1\n".encode()
    finally:
        _rm(daemon, name)


# ---- state changes -------------------------------------------------------------------------------

def test_pause_unpause(daemon, docker_cli):
    """55, 56: pause/unpause print the name; ps shows "(Paused)"; exec is refused while paused."""
    name = _name("pause")
    try:
        cid = _run_d(daemon, name, "sleep", "60")
        p = daemon.docker("pause", name)
        assert (p.returncode, p.stdout) == (0, f"{name}\n".encode())
        p = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Names}}|{{.Status}}|{{.State}}")
        assert re.fullmatch(rf"{name}\|Up (Less than a second|\d+ seconds?) \(Paused\)\|paused\n",
                            p.stdout.decode()), p.stdout
        assert daemon.docker("ps", "--filter", "status=paused", "-q").stdout.decode() == cid[:12] + "\n"
        p = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", name)
        assert p.stdout == b"paused true true\n"
        _same_as_dockerd(daemon, docker_cli, ("exec", name, "true"), 409,
                         f"Container {cid} is paused, unpause the container before exec")
        p = daemon.docker("unpause", name)
        assert (p.returncode, p.stdout) == (0, f"{name}\n".encode())
        p = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name)
        assert p.stdout == b"running false\n"
        p = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
        assert "Paused" not in p.stdout.decode() and p.stdout.startswith(b"Up ")
        _same_as_dockerd(daemon, docker_cli, ("unpause", name), 409, f"Container {cid} is not paused")
    finally:
        _rm(daemon, name)


def test_rename(daemon, docker_cli):
    """57: rename answers 204 and prints nothing; the old name is gone; a taken name is a conflict."""
    a, b, other = _name("ren-a"), _name("ren-b"), _name("ren-o")
    try:
        cid = _run_d(daemon, a, "sleep", "60")
        ocid = _run_d(daemon, other, "sleep", "60")
        p = daemon.docker("rename", a, b)
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        assert daemon.docker("inspect", "-f", "{{.Name}} {{.Id}}", b).stdout == f"/{b} {cid}\n".encode()
        p = daemon.docker("inspect", a)
        assert (p.returncode, p.stderr) == (1, f"Error: No such object: {a}\n".encode())
        assert daemon.docker("ps", "--filter", f"id={cid}", "--format", "{{.Names}}").stdout == f"{b}\n".encode()
        _same_as_dockerd(daemon, docker_cli, ("rename", b, other), 409,
                         f'Error when allocating new name: Conflict. The container name "/{other}" is already in use '
                         f'by container "{ocid}". You have to remove (or rename) that container to be able to reuse '
                         "that name.")
    finally:
        _rm(daemon, a, b, other)


def test_kill_signal_and_wait(daemon):
    """53, 54, 52: kill -s HUP reaches a trap; plain kill is SIGKILL; wait prints the status."""
    name = _name("kill")
    try:
        _run_d(daemon, name, "sh", "-c", 'trap "echo got HUP" HUP; echo ready; while true; do sleep 0.1; done')
        assert _until(lambda: daemon.docker("logs", name).stdout == b"ready\n")
        p = daemon.docker("kill", "-s", "HUP", name)
        assert (p.returncode, p.stdout) == (0, f"{name}\n".encode())
        assert _until(lambda: daemon.docker("logs", name).stdout == b"ready\ngot HUP\n"), \
            daemon.docker("logs", name).stdout
        p = daemon.docker("kill", "--signal", "SIGHUP", name)
        assert p.returncode == 0
        assert _until(lambda: daemon.docker("logs", name).stdout == b"ready\ngot HUP\ngot HUP\n")
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout == b"true\n"
        p = daemon.docker("kill", name)
        assert (p.returncode, p.stdout) == (0, f"{name}\n".encode())
        p = daemon.docker("wait", name, timeout=20)
        assert (p.returncode, p.stdout) == (0, b"137\n")
        p = daemon.docker("kill", name)
        assert p.returncode == 1 and b"is not running" in p.stderr, p.stderr
    finally:
        _rm(daemon, name)


def test_wait(daemon, docker_cli):
    """52: wait blocks until the exit and prints the code; several containers print one line each."""
    a, b = _name("wait-a"), _name("wait-b")
    try:
        _run_d(daemon, a, "sh", "-c", "sleep 1; exit 4")
        _run_d(daemon, b, "sh", "-c", "exit 2")
        t0 = time.time()
        p = daemon.docker("wait", a, b, timeout=20)
        assert (p.returncode, p.stdout) == (0, b"4\n2\n")
        assert time.time() - t0 > 0.5
        _same_as_dockerd(daemon, docker_cli, ("wait", "nosuchcontainer"), 404, "No such container: nosuchcontainer")
    finally:
        _rm(daemon, a, b)


def test_rm_force(daemon, docker_cli):
    """17, 78, 83: rm of a running container is refused, rm -f kills and removes it."""
    name, stopped = _name("rmf"), _name("rms")
    try:
        cid = _run_d(daemon, name, "sleep", "60")
        _same_as_dockerd(daemon, docker_cli, ("rm", name), 409, f"You cannot remove a running container {cid}. "
                         "Stop the container before attempting removal or force remove")
        p = daemon.docker("rm", "-f", name)
        assert (p.returncode, p.stdout, p.stderr) == (0, f"{name}\n".encode(), b"")
        p = daemon.docker("inspect", name)
        assert (p.returncode, p.stdout, p.stderr) == (1, b"[]\n", f"Error: No such object: {name}\n".encode())
        daemon.docker("create", "--name", stopped, "busybox", "true", check=True)
        p = daemon.docker("rm", stopped)
        assert (p.returncode, p.stdout) == (0, f"{stopped}\n".encode())
        _same_as_dockerd(daemon, docker_cli, ("rm", "nosuchcontainer"), 404, "No such container: nosuchcontainer")
        # with -f docker 28 reports the 404 but does not fail
        _same_as_dockerd(daemon, docker_cli, ("rm", "-f", "nosuchcontainer"), 404,
                         "No such container: nosuchcontainer")
    finally:
        _rm(daemon, name, stopped)


# ---- events --------------------------------------------------------------------------------------

def test_events_bounded(daemon):
    """51: a since/until query replays past events for one container, in order, then exits."""
    name = _name("evtest")
    since = int(time.time())
    daemon.docker("run", "--rm", "--name", name, "busybox", "true", check=True)
    time.sleep(max(0.0, since + 2 - time.time()))
    until = int(time.time())
    p = daemon.docker("events", "--since", str(since), "--until", str(until), "--filter", "type=container",
                      "--filter", f"container={name}", "--format", "{{.Time}} {{.Action}} {{.Actor.Attributes.name}}",
                      timeout=20)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert [x.split(" ", 1)[1] for x in lines] == [f"{a} {name}" for a in
                                                   ("create", "attach", "start", "die", "destroy")], lines
    assert all(since <= int(x.split()[0]) <= until for x in lines), lines
    # the relative form the trace used; and the default format
    p = daemon.docker("events", "--since", "2m", "--until", "0s", "--filter", f"container={name}", timeout=20)
    assert p.returncode == 0
    rows = p.stdout.decode().splitlines()
    assert len(rows) == 5
    assert re.fullmatch(TS + rf" container create [0-9a-f]{{64}} \(.*image=busybox, name={name}.*\)", rows[0]), rows[0]
    assert re.fullmatch(TS + rf" container die [0-9a-f]{{64}} \(exitCode=0, image=busybox, name={name}.*\)",
                        rows[3]), rows[3]
    # a filter that matches nothing gives nothing
    p = daemon.docker("events", "--since", str(since), "--until", str(until), "--filter", "container=nosuch")
    assert (p.returncode, p.stdout) == (0, b"")


def test_events_live(daemon):
    """50: a live `docker events` sees create/start/kill/die/destroy as they happen and runs until stopped."""
    name = _name("evlive")
    ev = _popen(daemon, "events", "--since", str(int(time.time())), "--filter", f"container={name}",
                "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    try:
        out = Lines(ev.stdout)
        _run_d(daemon, name, "sleep", "60")
        assert out.take(2) == [f"container create {name}", f"container start {name}"]
        _rm(daemon, name)
        got = out.take(3)
        assert got == [f"container kill {name}", f"container die {name}", f"container destroy {name}"], got
        time.sleep(0.3)
        assert ev.poll() is None  # still streaming
        ev.send_signal(signal.SIGINT)
        assert ev.wait(10) in (130, -signal.SIGINT)  # docker 28 exits 130, 20.10 dies of the signal
    finally:
        _rm(daemon, name)
        _reap(ev)


# ---- listing -------------------------------------------------------------------------------------

def test_ps(daemon):
    """05, 06, 28: ps, ps -a, -q, --format and --filter."""
    run, ex = _name("psrun"), _name("psexit")
    try:
        rid = _run_d(daemon, run, "sleep", "60")
        eid = _run_d(daemon, ex, "sh", "-c", "exit 3")
        assert _until(lambda: daemon.docker("inspect", "-f", "{{.State.Status}}", ex).stdout == b"exited\n")

        p = daemon.docker("ps")
        rows = p.stdout.decode().splitlines()
        assert re.split(r"\s{2,}", rows[0].strip()) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                                        "PORTS", "NAMES"]
        mine = [r for r in rows[1:] if r.startswith(rid[:12])]
        assert len(mine) == 1 and mine[0].endswith(" " + run) and '"sleep 60"' in mine[0], rows
        assert re.search(r"\s(Up (Less than a second|\d+ seconds?))\s", mine[0]), mine[0]
        assert not any(r.startswith(eid[:12]) for r in rows)
        rows = daemon.docker("ps", "-a").stdout.decode().splitlines()
        row = next(r for r in rows if r.startswith(eid[:12]))
        assert re.search(r"\sExited \(3\) (Less than a second|\d+ seconds?) ago\s", row), row
        assert row.endswith(" " + ex)
        container_ls = daemon.docker("container", "ls").stdout.decode().splitlines()
        assert container_ls[0].split() == rows[0].split()  # padding follows the (time-dependent) contents
        assert sum(r.startswith(rid[:12]) for r in container_ls) == 1

        q = daemon.docker("ps", "-q").stdout.decode().split()
        assert rid[:12] in q and eid[:12] not in q and all(SHORT_ID.fullmatch(x) for x in q)
        qa = daemon.docker("ps", "-aq").stdout.decode().split()
        assert rid[:12] in qa and eid[:12] in qa
        assert daemon.docker("ps", "-a", "-q", "--no-trunc", "--filter", f"name={ex}").stdout.decode() == eid + "\n"

        p = daemon.docker("ps", "-a", "--filter", f"name={run}", "--format", "{{.Names}}\t{{.Image}}\t{{.Command}}")
        assert p.stdout.decode() == f'{run}\tbusybox\t"sleep 60"\n'
        p = daemon.docker("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
        assert ex in p.stdout.decode().split() and run not in p.stdout.decode().split()
        p = daemon.docker("ps", "-a", "--filter", "exited=3", "--filter", f"name={ex}", "--format", "{{.ID}}")
        assert p.stdout.decode() == eid[:12] + "\n"
    finally:
        _rm(daemon, run, ex)


def test_ps_status_filter_implies_all(daemon):
    """dockerd lists non-running containers when a status filter is given, even without -a."""
    ex = _name("psst")
    try:
        eid = _run_d(daemon, ex, "true")
        assert _until(lambda: daemon.docker("inspect", "-f", "{{.State.Status}}", ex).stdout == b"exited\n")
        p = daemon.docker("ps", "--filter", "status=exited", "--filter", f"name={ex}", "-q")
        assert p.stdout.decode() == eid[:12] + "\n"
    finally:
        _rm(daemon, ex)


def test_images(daemon):
    """26, 27: images table, --format, -q."""
    p = daemon.docker("images")
    assert p.returncode == 0
    rows = p.stdout.decode().splitlines()
    assert re.split(r"\s{2,}", rows[0].strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    bb = [re.split(r"\s{2,}", r.strip()) for r in rows[1:] if r.startswith("busybox ")]
    assert len(bb) == 1 and bb[0][1] == "latest" and SHORT_ID.fullmatch(bb[0][2]), rows
    assert re.fullmatch(r"[\d.]+(kB|MB)", bb[0][4]), bb
    assert daemon.docker("image", "ls").stdout == p.stdout
    p = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert {"busybox:latest", "hello-world:latest"} <= set(p.stdout.decode().split())
    full = daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", full)
    p = daemon.docker("images", "-q", "busybox")
    assert p.stdout.decode() == full[7:19] + "\n"
    p = daemon.docker("images", "--no-trunc", "--format", "{{.ID}}", "busybox")
    assert p.stdout.decode() == full + "\n"


def test_version_and_info(daemon, docker_cli):
    """01, 02: the CLI negotiates down to 1.41 and prints the server's fields."""
    p = daemon.docker("version")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert docker_cli.api_version_line("1.41") in out  # e.g. "1.41 (downgraded from 1.50)" for docker 28
    assert "\nServer:" in out and "  API version:      1.41 (minimum version 1.12)\n" in out
    p = daemon.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Server.Arch}}")
    assert p.stdout == b"1.41 linux amd64\n"
    p = daemon.docker("info")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "\nServer:\n Containers: " in out and "\n Swarm: inactive\n" in out and "\n Cgroup Driver: " in out
    name = _name("info")
    try:
        _run_d(daemon, name, "sleep", "60")
        p = daemon.docker("info", "--format", "{{.ContainersRunning}} {{.Swarm.LocalNodeState}} {{.OSType}}")
        assert p.stdout == b"1 inactive linux\n"
    finally:
        _rm(daemon, name)


# ---- errors --------------------------------------------------------------------------------------

def test_inspect_missing(daemon, docker_cli):
    """82: probes every object kind, prints [] and `Error: No such object`."""
    p = daemon.docker("inspect", "nosuchthing")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"[]\n", b"Error: No such object: nosuchthing\n")
    _same_as_dockerd(daemon, docker_cli, ("container", "inspect", "nosuchthing"), 404,
                     "No such container: nosuchthing")
    # the daemon text is dockerd's (trace 82: GET /images/nosuchthing/json)
    _same_as_dockerd(daemon, docker_cli, ("image", "inspect", "nosuchthing"), 404,
                     "no such image: nosuchthing: No such image: nosuchthing:latest")


def test_error_texts(daemon, docker_cli):
    """80, 81, 83, 85: error messages and exit statuses."""
    name = _name("conflict")
    try:
        cid = _run_d(daemon, name, "sleep", "60")
        p = daemon.docker("run", "-d", "--name", name, "busybox", "true")
        assert (p.returncode, p.stdout) == (125, b"")
        _same_as_dockerd(daemon, docker_cli, ("run", "-d", "--name", name, "busybox", "true"), 409,
                         f'Conflict. The container name "/{name}" is already in use by container "{cid}". You have '
                         "to remove (or rename) that container to be able to reuse that name.")
        _same_as_dockerd(daemon, docker_cli, ("rm", name), 409, f"You cannot remove a running container {cid}. "
                         "Stop the container before attempting removal or force remove")
    finally:
        _rm(daemon, name)
    p = daemon.docker("run", "--rm", "busybox:doesnotexist")
    assert p.returncode == 125
    err = p.stderr.decode()
    assert err.startswith("Unable to find image 'busybox:doesnotexist' locally\n"
                          "docker: Error response from daemon: "), err
    trailer = docker_cli.run_error_trailer
    assert err.endswith("\n" + trailer), err
    assert err.count("\n") == 2 + trailer.count("\n")
    _same_as_dockerd(daemon, docker_cli, ("stop", "nosuchcontainer"), 404, "No such container: nosuchcontainer")
    _same_as_dockerd(daemon, docker_cli, ("start", "nosuchcontainer"), 404, "No such container: nosuchcontainer")
    p = daemon.docker("run", "--rm", "busybox", "nosuchcommand")
    assert p.returncode == 127
    # docker 20.10 sometimes logs its own wait being cancelled first (a race in the CLI, also against dockerd)
    err = re.sub(rb'^time="[^"]*" level=error msg="error waiting for container: context canceled"\n', b"", p.stderr)
    assert err.startswith(b"docker: Error response from daemon: ") and b"executable file not found" in err, p.stderr


@pytest.mark.parametrize("cmd", [("logs",), ("top",), ("pause",), ("diff",), ("export",), ("port",)])
def test_missing_container(daemon, docker_cli, cmd):
    p = daemon.docker(*cmd, "nosuchcontainer")
    assert p.returncode == 1
    _same_as_dockerd(daemon, docker_cli, (*cmd, "nosuchcontainer"), 404, "No such container: nosuchcontainer")


def test_cli_host_env(daemon):
    """The CLI really talks to our socket (not a default daemon)."""
    assert daemon.env["DOCKER_HOST"].startswith("unix://")
    assert os.path.exists(daemon.sock)
    p = daemon.docker("version", "--format", "{{.Server.Version}}")
    assert p.returncode == 0 and p.stdout.strip()
