"""Integration fixtures: a real hatobad on a private socket, data root, exec root and cgroup parent.

`daemon` (session) starts hatobad and bootstraps busybox and hello-world once. The autouse
`no_leaks` fixture fails any test that leaves containers, mounts, cgroups, network namespaces or
conmon processes behind (and cleans them up so the next test starts clean).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

BIN = os.path.dirname(sys.executable)
HATOBA = os.path.join(BIN, "hatoba")
HATOBAD = os.path.join(BIN, "hatobad")
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or os.path.exists(f"/usr/sbin/{tool}")


pytestmark = pytest.mark.integration
if os.geteuid() != 0 or not _have("runc") or not _have("conmon"):
    pytest.skip("integration tests need root, runc and conmon", allow_module_level=True)


class Daemon:
    """A running hatobad and helpers to drive it."""

    def __init__(self, root: str):
        self.root = root
        self.sock = os.path.join(root, "hatoba.sock")
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "run")
        self.pidfile = os.path.join(root, "hatobad.pid")
        self.cgroup_parent = f"/hatoba-test-{uuid.uuid4().hex[:8]}"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, HATOBA_HOST=self.host, DOCKER_HOST=self.host)
        self.env.pop("DOCKER_CONTEXT", None)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        log = open(os.path.join(self.root, "hatobad.log"), "ab")
        self.proc = subprocess.Popen(
            [HATOBAD, "-H", self.host, "--data-root", self.data_root, "--exec-root", self.exec_root,
             "--pidfile", self.pidfile, "--cgroup-parent", self.cgroup_parent,
             "--config-file", os.path.join(self.root, "daemon.json"), "--log-level", "debug"],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hatobad exited: " + self.log_tail())
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError("hatobad did not come up: " + self.log_tail())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        # a killed daemon leaves its socket and pidfile behind, as after a crash

    def ping(self) -> bool:
        try:
            return self.api("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(os.path.join(self.root, "hatobad.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # ---- clients ------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: object = None, timeout: float = 30) -> tuple[int, object]:
        """One raw HTTP request over the socket (no library in between); returns (status, parsed body)."""
        import http.client

        class Conn(http.client.HTTPConnection):
            def connect(inner) -> None:  # noqa: N805
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(self.sock)
                inner.sock = s

        c = Conn("localhost", timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw) if raw.strip() else None
        except ValueError:
            return r.status, raw

    def hatoba(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run([HATOBA, *args], input=input, capture_output=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"hatoba {' '.join(args)} → {p.returncode}\n{p.stdout!r}\n{p.stderr!r}")
        return p

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run([DOCKER, *args], input=input, capture_output=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} → {p.returncode}\n{p.stdout!r}\n{p.stderr!r}")
        return p

    def containers(self) -> dict[str, dict]:
        status, body = self.api("GET", "/containers/json?all=1")
        assert status == 200, body
        return {c["Id"]: c for c in body}  # type: ignore[union-attr]

    def remove_all(self) -> None:
        for cid in self.containers():
            self.api("DELETE", f"/containers/{cid}?force=1")

    # ---- leak probes --------------------------------------------------------------------------------
    def mounts(self) -> set[str]:
        with open("/proc/self/mountinfo") as f:
            return {line.split()[4] for line in f if self.root in line.split()[4]}

    def conmons(self) -> set[int]:
        out = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"conmon" in cmd.split(b"\0")[0] and self.root.encode() in cmd and state != "Z":
                out.add(int(pid))
        return out

    def netns(self) -> set[str]:
        """Named network namespaces of this daemon (bind mounts under /run/netns or its exec root)."""
        out = set()
        for d in ("/run/netns", os.path.join(self.exec_root, "netns")):
            try:
                out.update(os.path.join(d, n) for n in os.listdir(d) if "hatoba" in n or d != "/run/netns")
            except OSError:
                pass
        return out

    def cgroups(self) -> set[str]:
        out = set()
        base = "/sys/fs/cgroup"
        for ctrl in os.listdir(base):
            d = os.path.join(base, ctrl, self.cgroup_parent.lstrip("/"))
            if os.path.isdir(d):
                out.update(os.path.join(d, x) for x in os.listdir(d) if os.path.isdir(os.path.join(d, x)))
        return out

    def remove_cgroup_parent(self) -> None:
        base = "/sys/fs/cgroup"
        for ctrl in os.listdir(base):
            d = os.path.join(base, ctrl, self.cgroup_parent.lstrip("/"))
            if os.path.isdir(d) and not os.path.islink(os.path.join(base, ctrl)):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    root = tempfile.mkdtemp(prefix="hatoba-test-", dir="/tmp")
    d = Daemon(root)
    d.start()
    try:
        for name in ("busybox", "hello-world"):
            p = d.hatoba("image", "bootstrap", name, timeout=120)
            assert p.returncode == 0, p.stderr
        yield d
    finally:
        try:
            d.remove_all()
        except Exception:  # noqa: BLE001 - best effort before the leak checks below
            pass
        d.stop()
        leftovers = d.mounts()
        for m in sorted(leftovers, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        for pid in d.conmons():
            os.kill(pid, signal.SIGKILL)
        d.remove_cgroup_parent()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves containers, mounts, conmon processes or cgroups behind."""
    if "daemon" not in request.fixturenames:
        yield
        return
    d: Daemon = request.getfixturevalue("daemon")
    if not d.ping():
        d.start()
    before = set(d.containers())
    netns_before = d.netns()
    yield
    if not d.ping():
        d.start()
    problems = []
    left = [c for c in d.containers() if c not in before]
    if left:
        problems.append(f"containers left behind: {[c[:12] for c in left]}")
        for cid in left:
            d.api("DELETE", f"/containers/{cid}?force=1")
    # give exits that are in flight a moment to be reaped
    deadline = time.time() + 5
    running = {cid for cid, c in d.containers().items() if c["State"] in ("running", "paused", "restarting")}
    while time.time() < deadline:
        mounts = {m for m in d.mounts() if not any(r in m for r in running)}
        conmons = d.conmons()
        cgroups = {g for g in d.cgroups() if os.path.basename(g) not in running}
        netns = d.netns() - netns_before
        if not mounts and len(conmons) <= len(running) and not cgroups and not netns:
            break
        time.sleep(0.1)
    else:
        if mounts:
            problems.append(f"mounts left behind: {sorted(mounts)}")
        if len(conmons) > len(running):
            problems.append(f"conmon processes left behind: {sorted(conmons)}")
        if cgroups:
            problems.append(f"cgroups left behind: {sorted(cgroups)}")
        if netns:
            problems.append(f"network namespaces left behind: {sorted(netns)}")
    if problems:
        pytest.fail("; ".join(problems) + "\n--- hatobad log tail ---\n" + d.log_tail(2000))
