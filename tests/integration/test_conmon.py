"""Integration tests of hatoba.runtime.conmon against real conmon 2.1.6 + runc 1.1.5.

Each test builds a tiny busybox rootfs and a hand-written OCI config.json in a fresh temporary
directory, runs containers with cgroupsPath ``/hatoba-unittest/<id>``, and on teardown deletes
them with runc, checks (by pid) that no conmon it started survives, removes the cgroup
directories and the temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import resource
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hatoba.runtime import logs, runcexec
from hatoba.runtime.conmon import Created, OCIRuntimeError, Runtime

RUNC = "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "hatoba-unittest"
APPLETS = ("sh", "echo", "cat", "sleep", "stty", "tty", "true", "printf", "ls")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(os.path.exists(p) for p in (RUNC, CONMON, BUSYBOX)),
        reason="needs root, runc, conmon and a static /bin/busybox",
    ),
]

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]
ENV = ["PATH=/bin", "HOME=/root", "TERM=xterm"]


def _rlimits() -> list[dict[str, Any]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(1024, hard if hard != resource.RLIM_INFINITY else 1024)
    return [{"type": "RLIMIT_NOFILE", "hard": n, "soft": n}]


def oci_config(cid: str, args: list[str], *, tty: bool = False) -> dict[str, Any]:
    """A minimal OCI runtime config for a busybox rootfs."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ENV,
            "cwd": "/",
            "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
            "rlimits": _rlimits(),
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "hatoba-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "cgroupsPath": f"/{CGROUP_PARENT}/{cid}",
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def exec_process(args: list[str], *, tty: bool = False) -> dict[str, Any]:
    return {
        "terminal": tty,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ENV,
        "cwd": "/",
        "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    }


def _is_conmon(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0]
    except OSError:
        return False
    return b"conmon" in argv0


@dataclass
class Ctr:
    cid: str
    bundle: str
    log: str
    exits: str
    persist: str


@dataclass
class Env:
    root: str
    rt: Runtime
    cids: list[str] = field(default_factory=list)
    conmon_pids: list[int] = field(default_factory=list)

    def bundle(self, args: list[str], *, tty: bool = False) -> Ctr:
        cid = "hut-" + uuid.uuid4().hex[:12]
        bundle = os.path.join(self.root, "bundles", cid)
        rootfs = os.path.join(bundle, "rootfs")
        for d in ("bin", "etc", "proc", "dev", "sys", "tmp", "root"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in APPLETS:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(rootfs, "etc", "group"), "w") as f:
            f.write("root:x:0:\ntty:x:5:\n")
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(oci_config(cid, args, tty=tty), f)
        self.cids.append(cid)
        ctr_dir = os.path.join(self.root, "ctr", cid)
        os.makedirs(ctr_dir)
        return Ctr(
            cid=cid,
            bundle=bundle,
            log=os.path.join(ctr_dir, "ctr.log"),
            exits=os.path.join(self.root, "exits"),
            persist=os.path.join(ctr_dir, "persist"),
        )

    async def create(
        self, c: Ctr, *, tty: bool = False, stdin: bool = False, exit_command: list[str] | None = None
    ) -> Created:
        created = await self.rt.create(
            c.cid,
            c.bundle,
            tty=tty,
            stdin=stdin,
            log_path=c.log,
            exit_dir=c.exits,
            persist_dir=c.persist,
            exit_command=exit_command,
        )
        self.conmon_pids.append(created.conmon_pid)
        return created

    async def wait_exit(self, c: Ctr, created: Created, timeout: float = 15.0) -> int:
        await asyncio.wait_for(self.rt.watch(created.conmon_pid), timeout)
        code = Runtime.read_exit_code(c.exits, c.cid)
        assert code is not None, "conmon exited without an exit file"
        return code


async def _teardown(env: Env) -> list[str]:
    problems: list[str] = []
    for cid in env.cids:
        try:
            await env.rt.delete(cid, force=True)
        except OCIRuntimeError as e:
            problems.append(f"runc delete {cid}: {e.message}")
    for pid in env.conmon_pids:
        if not _is_conmon(pid):
            continue
        # A conmon may still be draining after runc delete --force; give it a moment, then kill.
        try:
            await asyncio.wait_for(env.rt.watch(pid), 5.0)
        except TimeoutError:
            problems.append(f"conmon {pid} survived its container")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(env.rt.watch(pid), 2.0)
    return problems


def _remove_cgroups(cids: list[str]) -> list[str]:
    left: list[str] = []
    for cid in cids:
        for d in glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}/{cid}"):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                left.append(f"{d}: {e}")
    for d in glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}"):
        with contextlib.suppress(OSError):  # busy if a concurrent run still uses it
            os.rmdir(d)
    return left


@pytest.fixture
def env() -> Iterator[Env]:
    root = tempfile.mkdtemp(prefix="hatoba-conmon-test-")
    e = Env(root=root, rt=Runtime(runc=RUNC, conmon=CONMON, runc_root=os.path.join(root, "runc")))
    try:
        yield e
    finally:
        problems = asyncio.run(_teardown(e))
        problems += _remove_cgroups(e.cids)
        shutil.rmtree(root, ignore_errors=True)
        assert not os.path.exists(root)
        assert not problems, problems


async def _read_attach(sock: socket.socket, timeout: float = 15.0) -> list[tuple[int, bytes]]:
    """Read conmon attach packets until EOF: [(stream id, data)]."""
    loop = asyncio.get_running_loop()
    packets: list[tuple[int, bytes]] = []

    async def run() -> None:
        while True:
            pkt = await loop.sock_recv(sock, 8193)
            if not pkt:
                return
            packets.append((pkt[0], pkt[1:]))

    await asyncio.wait_for(run(), timeout)
    return packets


def _read_or_empty(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _stream_bytes(packets: list[tuple[int, bytes]], stream_id: int) -> bytes:
    return b"".join(d for s, d in packets if s == stream_id)


# --------------------------------------------------------------------------- (a) detached


def test_detached_logs_and_exit_code(env: Env) -> None:
    async def body() -> None:
        c = env.bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
        marker = os.path.join(env.root, "exit-command-ran")
        t0 = time.perf_counter()
        created = await env.create(c, exit_command=["/bin/sh", "-c", f"echo {c.cid} > {marker}"])
        latency = (time.perf_counter() - t0) * 1000
        print(f"create -> pid latency: {latency:.1f} ms")
        assert created.pid > 0 and created.conmon_pid > 0
        assert Runtime.conmon_alive(c.bundle) == created.conmon_pid
        st = await env.rt.state(c.cid)
        assert st is not None and st["status"] == "created" and st["pid"] == created.pid
        done = env.rt.watch(created.conmon_pid)
        await env.rt.start(c.cid)
        await asyncio.wait_for(done, 15)
        assert Runtime.read_exit_code(c.exits, c.cid) == 7
        assert Runtime.read_exit_code(c.persist, "exit") == 7
        assert not Runtime.oom_killed(c.persist)
        assert Runtime.conmon_alive(c.bundle) is None
        with open(marker) as f:  # conmon waits for its exit command before exiting
            assert f.read().strip() == c.cid
        recs = list(logs.read_records([c.log]))
        assert [(r.stream, r.data) for r in recs] == [("stdout", b"out\n"), ("stderr", b"err\n")] or [
            (r.stream, r.data) for r in recs
        ] == [("stderr", b"err\n"), ("stdout", b"out\n")]
        now = time.time_ns()
        assert all(now - 60 * 10**9 < r.time_ns <= now for r in recs)
        out = logs.select(recs, stdout=True, stderr=False)
        assert [logs.frame(r.stream, r.data) for r in out] == [b"\x01\x00\x00\x00\x00\x00\x00\x04out\n"]
        st = await env.rt.state(c.cid)
        assert st is not None and st["status"] == "stopped"
        await env.rt.delete(c.cid)
        assert await env.rt.state(c.cid) is None
        await env.rt.delete(c.cid)  # tolerated: does not exist

    asyncio.run(body())


# --------------------------------------------------------------------------- (b) attach + stdin


def test_attach_stdin_before_start(env: Env) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        c = env.bundle(["sh"])
        created = await env.create(c, stdin=True)
        sock = await env.rt.open_attach(c.bundle)
        try:
            await env.rt.start(c.cid)
            await loop.sock_sendall(sock, b"echo hi\necho oops >&2\nexit 3\n")
            sock.shutdown(socket.SHUT_WR)
            packets = await _read_attach(sock)
        finally:
            sock.close()
        assert {s for s, _ in packets} <= {2, 3}
        assert _stream_bytes(packets, 2) == b"hi\n"
        assert _stream_bytes(packets, 3) == b"oops\n"
        assert await env.wait_exit(c, created) == 3
        await env.rt.delete(c.cid)

    asyncio.run(body())


def test_stdin_half_close_gives_eof(env: Env) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        c = env.bundle(["cat"])
        created = await env.create(c, stdin=True)
        sock = await env.rt.open_attach(c.bundle)
        try:
            await env.rt.start(c.cid)
            await loop.sock_sendall(sock, b"line one\nno newline")
            sock.shutdown(socket.SHUT_WR)
            packets = await _read_attach(sock)
        finally:
            sock.close()
        assert _stream_bytes(packets, 2) == b"line one\nno newline"
        assert await env.wait_exit(c, created) == 0
        recs = list(logs.read_records([c.log]))
        assert b"".join(r.data for r in recs) == b"line one\nno newline"
        assert recs[-1].data == b"no newline"
        await env.rt.delete(c.cid)

    asyncio.run(body())


# --------------------------------------------------------------------------- (c) TTY + resize


def test_tty_resize(env: Env) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        c = env.bundle(["sh", "-c", "read x; stty size; tty; exit 0"], tty=True)
        created = await env.create(c, tty=True, stdin=True)
        sock = await env.rt.open_attach(c.bundle)
        try:
            env.rt.resize(c.bundle, 40, 100)  # applied by conmon while runc start runs
            await env.rt.start(c.cid)
            await loop.sock_sendall(sock, b"go\n")
            packets = await _read_attach(sock)
        finally:
            sock.close()
        assert {s for s, _ in packets} == {2}
        out = _stream_bytes(packets, 2)
        assert b"40 100\r\n" in out, out
        assert b"/dev/pts/0" in out, out
        assert await env.wait_exit(c, created) == 0
        recs = list(logs.read_records([c.log]))
        assert any(r.data == b"40 100\r\n" for r in recs), recs
        env.rt.resize(c.bundle, 10, 10)  # conmon gone: ENXIO is ignored
        await env.rt.delete(c.cid)

    asyncio.run(body())


# --------------------------------------------------------------------------- (d) failing create


def test_failing_create(env: Env) -> None:
    async def body() -> None:
        c = env.bundle(["/nonexistent"])
        with pytest.raises(OCIRuntimeError) as ei:
            await env.create(c)
        msg = ei.value.message
        print("create error:", msg)
        assert 'exec: "/nonexistent"' in msg
        assert "no such file or directory" in msg
        assert "level=" not in msg and "time=" not in msg and '\\"' not in msg
        pid = int(Path(c.bundle, "conmon.pid").read_text())
        env.conmon_pids.append(pid)
        assert not _is_conmon(pid), "conmon survived a failed create"
        assert Runtime.conmon_alive(c.bundle) is None
        assert await env.rt.state(c.cid) is None
        assert Runtime.read_exit_code(c.exits, c.cid) is None

    asyncio.run(body())


def test_runc_errors(env: Env) -> None:
    async def body() -> None:
        with pytest.raises(OCIRuntimeError) as ei:
            await env.rt.start("hut-does-not-exist")
        assert ei.value.message == "container does not exist"
        assert ei.value.not_found
        assert await env.rt.state("hut-does-not-exist") is None
        await env.rt.delete("hut-does-not-exist", force=True)

    asyncio.run(body())


# --------------------------------------------------------------------------- (e') direct exec


def test_exec_attached_without_conmon(env: Env) -> None:
    """attached=True without a TTY: `runc exec` in the foreground, stdio relayed in conmon's format."""

    async def body() -> None:
        c = env.bundle(["sleep", "30"])
        await env.create(c)
        await env.rt.start(c.cid)
        loop = asyncio.get_running_loop()
        n = 0

        async def run(args: list[str], stdin: bytes | None = None) -> tuple[int, bytes, bytes, int]:
            nonlocal n
            n += 1
            exec_dir = os.path.join(env.root, "exec", f"direct{n}")
            ex = await env.rt.exec(c.cid, exec_dir, exec_process(args), tty=False, stdin=stdin is not None,
                                   attached=True)
            assert ex.conmon_pid == 0 and ex.sock is not None and ex.pid > 0
            if stdin is not None:
                await loop.sock_sendall(ex.sock, stdin)
                ex.sock.shutdown(socket.SHUT_WR)
            packets = await _read_attach(ex.sock)
            code = await asyncio.wait_for(ex.wait(), 15)
            ex.close()
            return code, _stream_bytes(packets, 2), _stream_bytes(packets, 3), max((len(d) for _, d in packets),
                                                                                   default=0)

        code, out, err, _ = await run(["sh", "-c", "echo eout; echo eerr >&2; exit 5"])
        assert (code, out, err) == (5, b"eout\n", b"eerr\n")
        # stdin, closed by shutdown(SHUT_WR)
        code, out, _, _ = await run(["sh", "-c", "cat; echo done"], stdin=b"hello\n")
        assert (code, out) == (0, b"hello\ndone\n")
        # 1 MiB of output arrives whole, in packets of at most 8192 bytes
        code, out, _, biggest = await run(["sh", "-c", "i=0; while [ $i -lt 16384 ]; do "
                                                       "echo 0123456789012345678901234567890123456789012345678901234567890123456789012; "
                                                       "i=$((i+1)); done"])
        assert code == 0 and len(out) == 16384 * 74 and biggest <= 8192
        # killed by a signal: 128 + signal, as conmon reports it
        code, _, _, _ = await run(["sh", "-c", "kill -9 $$"])
        assert code == 137
        # a background child keeping stdout open holds the session for IO_GRACE at most (as dockerd),
        # with the exit status of the process itself; runc is not left behind
        for script, want in (("sleep 20 & echo bg", 0), ("sleep 20 & echo bg; exit 3", 3)):
            t0 = time.perf_counter()
            code, out, _, _ = await run(["sh", "-c", script])
            took = time.perf_counter() - t0
            assert (code, out) == (want, b"bg\n") and runcexec.IO_GRACE <= took < runcexec.IO_GRACE + 5, took
        await asyncio.sleep(0.2)
        runcs = [p for p in glob.glob("/proc/[0-9]*/cmdline") if c.cid.encode() in _read_or_empty(p)
                 and b"runc" in _read_or_empty(p).split(b"\0")[0]]
        assert runcs == []
        # a missing binary: runc's message, nothing left running
        with pytest.raises(OCIRuntimeError) as ei:
            await env.rt.exec(c.cid, os.path.join(env.root, "exec", "direct-nope"), exec_process(["/nope"]),
                              tty=False, stdin=False, attached=True)
        assert '"/nope"' in ei.value.message, ei.value.message
        await env.rt.kill(c.cid, signal.SIGKILL, all_procs=True)

    asyncio.run(body())


# --------------------------------------------------------------------------- (e) exec + lifecycle


def test_exec_and_lifecycle(env: Env) -> None:
    async def body() -> None:
        c = env.bundle(["sleep", "30"])
        created = await env.create(c)
        await env.rt.start(c.cid)
        st = await env.rt.state(c.cid)
        assert st is not None and st["status"] == "running"
        assert created.pid in await env.rt.ps(c.cid)

        # non-TTY exec: separate streams, exit code 5
        exec_dir = os.path.join(env.root, "exec", "sess1")
        ex = await env.rt.exec(
            c.cid,
            exec_dir,
            exec_process(["sh", "-c", "echo eout; echo eerr >&2; exit 5"]),
            tty=False,
            stdin=False,
        )
        env.conmon_pids.append(ex.conmon_pid)
        assert ex.pid > 0 and ex.sock is not None
        packets = await _read_attach(ex.sock)
        assert _stream_bytes(packets, 2) == b"eout\n"
        assert _stream_bytes(packets, 3) == b"eerr\n"
        assert await asyncio.wait_for(ex.wait(), 15) == 5
        assert await ex.wait() == 5
        ex.close()
        await asyncio.wait_for(env.rt.watch(ex.conmon_pid), 5)
        assert Runtime.read_exit_code(os.path.join(exec_dir, "exits"), c.cid) == 5

        # TTY exec with stdin
        exec_dir2 = os.path.join(env.root, "exec", "sess2")
        ex2 = await env.rt.exec(
            c.cid,
            exec_dir2,
            exec_process(["sh", "-c", "read x; tty; stty size; exit 4"], tty=True),
            tty=True,
            stdin=True,
        )
        env.conmon_pids.append(ex2.conmon_pid)
        assert ex2.sock is not None
        ex2.resize(25, 80)
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().sock_sendall(ex2.sock, b"go\n")
        out2 = _stream_bytes(await _read_attach(ex2.sock), 2)
        assert b"/dev/pts/" in out2 and b"25 80" in out2, out2
        assert await asyncio.wait_for(ex2.wait(), 15) == 4
        ex2.close()

        # exec of a missing binary fails with runc's message
        with pytest.raises(OCIRuntimeError) as ei:
            await env.rt.exec(
                c.cid,
                os.path.join(env.root, "exec", "sess3"),
                exec_process(["/nope"]),
                tty=False,
                stdin=False,
            )
        assert '"/nope"' in ei.value.message
        pid3 = int(Path(env.root, "exec", "sess3", "conmon.pid").read_text())
        env.conmon_pids.append(pid3)
        await asyncio.wait_for(env.rt.watch(pid3), 5)

        # pause / resume / update
        await env.rt.pause(c.cid)
        st = await env.rt.state(c.cid)
        assert st is not None and st["status"] == "paused"
        await env.rt.resume(c.cid)
        st = await env.rt.state(c.cid)
        assert st is not None and st["status"] == "running"
        await env.rt.update(c.cid, {"pids": {"limit": 50}})
        with open(f"/sys/fs/cgroup/pids/{CGROUP_PARENT}/{c.cid}/pids.max") as f:
            assert f.read().strip() == "50"

        # kill + delete
        await env.rt.kill(c.cid, signal.SIGKILL)
        assert await env.wait_exit(c, created) == 137
        with pytest.raises(OCIRuntimeError) as ei:
            await env.rt.kill(c.cid, signal.SIGTERM)
        assert ei.value.not_running, ei.value.message
        await env.rt.delete(c.cid)
        assert await env.rt.state(c.cid) is None

    asyncio.run(body())


# --------------------------------------------------------------------------- (f) log rotation


def test_log_rotation_and_follow(env: Env) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        c = env.bundle(["sh", "-c", "echo one; printf 'par'; read x; echo tial; echo two >&2"])
        created = await env.create(c, stdin=True)
        exited = env.rt.watch(created.conmon_pid)
        followed: list[logs.LogRecord] = []

        async def follower() -> None:
            async for rec in logs.follow(c.log, 0, stop=exited):
                followed.append(rec)

        ftask = asyncio.create_task(follower())
        sock = await env.rt.open_attach(c.bundle)
        try:
            await env.rt.start(c.cid)
            deadline = loop.time() + 10
            while b"par" not in Path(c.log).read_bytes():
                assert loop.time() < deadline, "container output never reached the log"
                await asyncio.sleep(0.01)
            logs.rotate(c.log, 3)
            env.rt.reopen_log(c.bundle)
            await loop.sock_sendall(sock, b"\n")
            sock.shutdown(socket.SHUT_WR)
            await _read_attach(sock)
        finally:
            sock.close()
        await asyncio.wait_for(exited, 15)
        await asyncio.wait_for(ftask, 5)
        assert Runtime.read_exit_code(c.exits, c.cid) == 0
        paths = logs.rotated_paths(c.log)
        assert paths == [c.log + ".1", c.log]
        old = [r.data for r in logs.read_records([c.log + ".1"])]
        assert old[0] == b"one\n"
        new = [r.data for r in logs.read_records([c.log])]
        assert new[-1] == b"two\n"
        allrecs = list(logs.read_records(paths))
        assert [(r.stream, r.data) for r in allrecs] == [
            ("stdout", b"one\n"),
            ("stdout", b"partial\n"),
            ("stderr", b"two\n"),
        ]
        assert [(r.stream, r.data) for r in followed] == [(r.stream, r.data) for r in allrecs]
        await env.rt.delete(c.cid)

    asyncio.run(body())
