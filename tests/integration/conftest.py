"""Integration fixtures: a real hatobad on a private socket, data root, exec root, cgroup parent,
bridge name and nft table name; the docker CLI under test.

`daemon` (session) starts hatobad and bootstraps busybox and hello-world once. The autouse
`no_leaks` fixture fails any test after which something of that daemon is left behind (see
`LeakCheck`) or the daemon died, hangs, was restarted other than through `Daemon.restart` /
`Daemon.down`, or wrote a Python traceback to its log; it cleans up what it found so the next test
starts clean. At the end of the session the same is checked once more after hatobad stopped.

`docker_cli` (session) is the docker CLI the tests drive: `HATOBA_TEST_DOCKER` if set, else
`docker` on PATH (scripts/setup.sh installs Debian's docker.io CLI where there is none). Texts that
depend on its version are read from the CLI itself, see `DockerCLI`.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

BIN = os.path.dirname(sys.executable)
HATOBA = os.path.join(BIN, "hatoba")
HATOBAD = os.path.join(BIN, "hatobad")
DOCKER = os.environ.get("HATOBA_TEST_DOCKER") or shutil.which("docker") or "/usr/bin/docker"
TRACEBACK = "Traceback (most recent call last)"
CGROUP_ROOT = "/sys/fs/cgroup"


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or os.path.exists(f"/usr/sbin/{tool}")


pytestmark = pytest.mark.integration
if os.geteuid() != 0 or not _have("runc") or not _have("conmon"):
    # scripts/test.sh (--require-host, --strict-skips) turns this into a failure
    pytest.skip("integration tests need root, runc and conmon", allow_module_level=True)


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup v1 hierarchy and cgroup2 mount under /sys/fs/cgroup (the unified
    hierarchy of a hybrid host is one of them; on a v2 host /sys/fs/cgroup itself), one per hierarchy."""
    out: list[str] = []
    seen: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if not right or len(fields) < 5 or right.split()[0] not in ("cgroup", "cgroup2"):
                continue
            mp = fields[4].replace("\\040", " ")
            key = fields[2]  # major:minor: co-mounted or bind-mounted hierarchies count once
            if (mp == CGROUP_ROOT or mp.startswith(CGROUP_ROOT + "/")) and key not in seen:
                seen.add(key)
                out.append(mp)
    return out


def _tracebacks(text: str) -> list[str]:
    """Each ``Traceback (most recent call last)`` block of a log, up to its exception line."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if TRACEBACK not in lines[i]:
            i += 1
            continue
        block = [lines[i]]
        i += 1
        while i < len(lines) and len(block) < 300:
            line = lines[i]
            block.append(line)
            i += 1
            if not line.strip() or line.startswith((" ", "\t")):
                continue
            break  # the exception line ends the block
        out.append("\n".join(block))
    return out


class Daemon:
    """A running hatobad and helpers to drive it.

    Names this daemon owns, all derived from `tag` (8 hex digits): the cgroup parent
    ``/hatoba-test-<tag>``; the bridge ``hbt-<tag>`` (`bridge`, also the prefix of every other
    interface of this daemon: `net_prefix`) and the nftables table ``hatoba_t<tag>`` (`nft_table`,
    also the prefix of any further table). The leak checks count as this daemon's: interfaces whose
    name or ifalias starts with `net_prefix` or that are enslaved to `bridge`, and tables whose name
    starts with `nft_table`. (When hatobad grows its bridge/nft options, `start` passes these.)
    """

    def __init__(self, root: str, extra_hosts: list[str] | None = None):
        self.root = root
        self.extra_hosts = list(extra_hosts or [])  # further -H listeners (e.g. tcp://127.0.0.1:PORT)
        self.tag = uuid.uuid4().hex[:8]
        self.sock = os.path.join(root, "hatoba.sock")
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "run")
        self.pidfile = os.path.join(root, "hatobad.pid")
        self.log_path = os.path.join(root, "hatobad.log")
        self.cgroup_parent = f"/hatoba-test-{self.tag}"
        self.bridge = self.net_prefix = f"hbt-{self.tag}"  # 12 characters of IFNAMSIZ's 15
        self.nft_table = f"hatoba_t{self.tag}"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, HATOBA_HOST=self.host, DOCKER_HOST=self.host)
        self.env.pop("DOCKER_CONTEXT", None)
        self.sanctioned_restarts = 0  # restarts through restart()/down() or by the leak check
        self.log_seen = 0  # bytes of the log already searched for tracebacks
        self.unattributed: list[str] = []  # tracebacks logged outside any test (reported at the end)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HATOBAD, "-H", self.host, *[a for h in self.extra_hosts for a in ("-H", h)],
             "--data-root", self.data_root, "--exec-root", self.exec_root, "--pidfile", self.pidfile, "--cgroup-parent", self.cgroup_parent,
             "--config-file", os.path.join(self.root, "daemon.json"), "--log-level", "debug"],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hatobad exited: " + self.log_tail())
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError("hatobad did not come up: " + self.log_tail())

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 15 s: status -9); returns the exit status (None if it was not
        running)."""
        if not self.proc or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        # a killed daemon leaves its socket and pidfile behind, as after a crash

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @contextlib.contextmanager
    def down(self, how: str = "term") -> Iterator[None]:
        """Deliberately take hatobad down for the ``with`` block and start it again at its end (also on
        error). ``how``: ``"term"`` (SIGTERM; it must exit 0) or ``"kill9"`` (a crash). This and
        `restart` are the only ways a test may stop the session daemon: `no_leaks` fails a test after
        which hatobad is dead, or is another process than before without one of them."""
        if how not in ("term", "kill9"):
            raise ValueError(f"how must be 'term' or 'kill9', not {how!r}")
        assert self.alive(), "hatobad had already exited before the deliberate restart:\n" + self.log_tail()
        self.sanctioned_restarts += 1
        status = None
        if how == "kill9":
            self.kill9()
        else:
            status = self.stop()
        try:
            assert how == "kill9" or status == 0, f"hatobad exited with {status} on SIGTERM:\n" + self.log_tail()
            yield
        finally:
            self.start()

    def restart(self, how: str = "term", during_downtime: Callable[[], object] | None = None) -> tuple[float, float]:
        """Take hatobad down (see `down`), run ``during_downtime``, bring it back. Returns (the time it
        went down, the time the new daemon started coming up)."""
        with self.down(how):
            went_down = time.time()
            if during_downtime:
                during_downtime()
            up = time.time()
        return went_down, up

    def ping(self, timeout: float = 5) -> bool:
        try:
            return self.api("GET", "/_ping", timeout=timeout)[0] == 200
        except OSError:
            return False

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def new_tracebacks(self) -> list[str]:
        """Tracebacks logged since the last call (or since the start)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_seen)
                data = f.read()
        except OSError:
            return []
        self.log_seen += len(data)
        return _tracebacks(data.decode(errors="replace"))

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
        # bytes are sent as they are (bodies JSON cannot express: 1e400, NaN, not JSON at all)
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
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

    def conmons(self) -> dict[int, str]:
        """pid → container id (conmon's ``-c``) of this daemon's live conmon processes."""
        out = {}
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
            argv = cmd.split(b"\0")
            if b"conmon" in os.path.basename(argv[0]) and self.root.encode() in cmd and state != "Z":
                cid = argv[argv.index(b"-c") + 1].decode() if b"-c" in argv[:-1] else "?"
                out[int(pid)] = cid
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

    def cgroup_parent_dirs(self) -> list[str]:
        """This daemon's cgroup parent in every hierarchy: v1 controllers, the hybrid host's unified
        hierarchy or the v2 root (directories need not exist)."""
        return [os.path.join(mp, self.cgroup_parent.lstrip("/")) for mp in cgroup_mounts()]

    def cgroups(self) -> set[str]:
        out = set()
        for d in self.cgroup_parent_dirs():
            if os.path.isdir(d):
                out.update(os.path.join(d, x) for x in os.listdir(d) if os.path.isdir(os.path.join(d, x)))
        return out

    def remove_cgroup_parent(self) -> list[str]:
        """rmdir the cgroup parent everywhere; returns the directories that could not be removed."""
        left = []
        for d in self.cgroup_parent_dirs():
            for top, _dirs, _files in os.walk(d, topdown=False):
                try:
                    os.rmdir(top)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(top)
        return left

    def state_dirs(self) -> dict[str, set[str]]:
        """Per-container state on disk: kind → container ids that have one."""
        where = {
            "runc state": os.path.join(self.exec_root, "runc"),
            "bundle": os.path.join(self.exec_root, "containers"),
            "exit file": os.path.join(self.exec_root, "exits"),
            "container dir": os.path.join(self.data_root, "containers"),
            "overlay dir": os.path.join(self.data_root, "overlay", "containers"),
        }
        out = {}
        for kind, d in where.items():
            try:
                out[kind] = set(os.listdir(d))
            except FileNotFoundError:
                out[kind] = set()
        return out

    def state_path(self, kind: str, cid: str) -> str:
        return {
            "runc state": os.path.join(self.exec_root, "runc", cid),
            "bundle": os.path.join(self.exec_root, "containers", cid),
            "exit file": os.path.join(self.exec_root, "exits", cid),
            "container dir": os.path.join(self.data_root, "containers", cid),
            "overlay dir": os.path.join(self.data_root, "overlay", "containers", cid),
        }[kind]

    def staging(self) -> set[str]:
        """Entries of the snapshotter's staging directory (layers being unpacked)."""
        try:
            return set(os.listdir(os.path.join(self.data_root, "overlay", "tmp")))
        except FileNotFoundError:
            return set()

    def links(self) -> dict[str, str]:
        """name → kind of this daemon's network interfaces in the host namespace (`ip -j -d link`)."""
        out = {}
        data = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, check=True,
                                         timeout=30).stdout or b"[]")
        for link in data:
            name = link.get("ifname", "")
            if (name.startswith(self.net_prefix) or link.get("master") == self.bridge
                    or (link.get("ifalias") or "").startswith(self.net_prefix)):
                out[name] = (link.get("linkinfo") or {}).get("info_kind") or link.get("link_type", "?")
        return out

    def nft_tables(self) -> set[tuple[str, str]]:
        """(family, name) of this daemon's nftables tables (`nft -j list tables`)."""
        data = json.loads(subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, check=True,
                                         timeout=30).stdout or b"{}")
        return {(t["table"]["family"], t["table"]["name"]) for t in data.get("nftables", [])
                if "table" in t and t["table"]["name"].startswith(self.nft_table)}


class LeakCheck:
    """What `no_leaks` checks around one test: taken before it, `run()` after it.

    `run()` returns the problems it found, each a line of text, and cleans up what it found so the
    next test starts clean: containers the test left (force-removed), mounts under the daemon's
    root, conmon processes of containers that are not running, cgroups under the daemon's cgroup
    parent in any hierarchy (v1, unified, v2) other than running containers', new named network
    namespaces, runc state of containers that are not running, bundles / exit files / container
    and overlay directories of containers that no longer exist, entries left in the snapshotter's
    staging directory, new interfaces and nft tables of the daemon (`Daemon.links`,
    `Daemon.nft_tables`), tracebacks in the daemon's log, and the daemon itself: dead, not
    answering /_ping, or replaced by another process without `Daemon.restart`/`Daemon.down`
    (each also restarts it).
    """

    RUNNING = ("running", "paused", "restarting")

    def __init__(self, d: Daemon):
        self.d = d
        for tb in d.new_tracebacks():  # logged between tests: the session's
            d.unattributed.append(tb)
        self.pid = d.proc.pid if d.proc else None
        self.sanctioned = d.sanctioned_restarts
        self.containers = set(d.containers())
        self.netns = d.netns()
        self.links = set(d.links())
        self.tables = d.nft_tables()
        self.staging = d.staging()

    def _revive(self) -> None:
        d = self.d
        if d.alive():
            d.kill9()
        d.sanctioned_restarts += 1
        d.start()

    def run(self, settle: float = 5.0) -> list[str]:
        d = self.d
        problems: list[str] = []
        # the daemon itself first: everything below asks it
        if not d.alive():
            status = d.proc.returncode if d.proc else None
            how = f"killed by signal {-status}" if status is not None and status < 0 else f"status {status}"
            problems.append(f"hatobad exited during the test ({how}); restarted for the next test")
            self._revive()
        elif not d.ping():
            problems.append("hatobad does not answer /_ping; killed and restarted for the next test")
            self._revive()
        elif d.proc and d.proc.pid != self.pid and d.sanctioned_restarts == self.sanctioned:
            problems.append("hatobad was restarted during the test without Daemon.restart()/Daemon.down()")
            d.sanctioned_restarts += 1  # reported once
        for tb in d.new_tracebacks():
            problems.append("traceback in hatobad's log:\n" + tb)

        containers = d.containers()
        left = [c for c in containers if c not in self.containers]
        if left:
            problems.append(f"containers left behind: {[c[:12] for c in left]}")
            for cid in left:
                d.api("DELETE", f"/containers/{cid}?force=1")
        # give exits that are in flight a moment to be reaped
        deadline = time.time() + settle
        while True:
            containers = d.containers()
            running = {cid for cid, c in containers.items() if c["State"] in self.RUNNING}
            found = self._probe(set(containers), running)
            if not any(found.values()) or time.time() >= deadline:
                break
            time.sleep(0.1)
        problems += self._report_and_clean(found)
        return problems

    def _probe(self, existing: set[str], running: set[str]) -> dict[str, object]:
        d = self.d
        state = d.state_dirs()
        stale: dict[str, set[str]] = {}
        for kind, ids in state.items():
            keep = running if kind == "runc state" else existing
            if ids - keep:
                stale[kind] = ids - keep
        return {
            "mounts": {m for m in d.mounts() if not any(r in m for r in running)},
            "conmons": {pid: cid for pid, cid in d.conmons().items() if cid not in running},
            "cgroups": {g for g in d.cgroups() if os.path.basename(g) not in running},
            "netns": d.netns() - self.netns,
            "state": stale,
            "staging": d.staging() - self.staging,
            "links": {n: k for n, k in d.links().items() if n not in self.links},
            "tables": d.nft_tables() - self.tables,
        }

    def _report_and_clean(self, found: dict) -> list[str]:
        d = self.d
        problems = []
        if found["mounts"]:
            problems.append(f"mounts left behind: {sorted(found['mounts'])}")
            for m in sorted(found["mounts"], key=len, reverse=True):
                subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        if found["conmons"]:
            problems.append("conmon processes left behind (pid: container): "
                            f"{ {p: c[:12] for p, c in sorted(found['conmons'].items())} }")
            for pid in found["conmons"]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if found["cgroups"]:
            problems.append(f"cgroups left behind: {sorted(found['cgroups'])}")
            for g in found["cgroups"]:
                for top, _dirs, _files in os.walk(g, topdown=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(top)
        if found["netns"]:
            problems.append(f"network namespaces left behind: {sorted(found['netns'])}")
            for ns in found["netns"]:
                subprocess.run(["umount", ns], check=False, capture_output=True)
                with contextlib.suppress(OSError):
                    os.unlink(ns)
        for kind, ids in sorted(found["state"].items()):
            problems.append(f"{kind} of containers that are gone or not running: {sorted(i[:12] for i in ids)}")
            for cid in ids:
                path = d.state_path(kind, cid)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        if found["staging"]:
            problems.append(f"layer staging entries left behind: {sorted(found['staging'])}")
            for e in found["staging"]:
                shutil.rmtree(os.path.join(d.data_root, "overlay", "tmp", e), ignore_errors=True)
        if found["links"]:
            problems.append(f"network interfaces left behind: {found['links']}")
            for name in found["links"]:
                subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
        if found["tables"]:
            problems.append(f"nftables tables left behind: {sorted(found['tables'])}")
            for family, name in found["tables"]:
                subprocess.run(["nft", "delete", "table", family, name], check=False, capture_output=True)
        return problems


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    root = tempfile.mkdtemp(prefix="hatoba-test-", dir="/tmp")
    d = Daemon(root)
    d.start()
    problems: list[str] = []
    try:
        for name in ("busybox", "hello-world"):
            p = d.hatoba("image", "bootstrap", name, timeout=120)
            assert p.returncode == 0, p.stderr
        yield d
    finally:
        try:
            d.remove_all()
        except Exception as e:  # noqa: BLE001 - reported below, the checks still run
            problems.append(f"could not remove the containers at the end: {e!r}")
        status = d.stop()
        if status not in (0, None):
            problems.append(f"hatobad exited with status {status} on SIGTERM at the end of the session")
        problems += _session_leftovers(d)
        shutil.rmtree(root, ignore_errors=True)
    if problems:
        pytest.fail("at the end of the session:\n" + "\n".join(problems) + "\n--- hatobad log tail ---\n"
                    + d.log_tail(2000), pytrace=False)


def _session_leftovers(d: Daemon) -> list[str]:
    """After hatobad stopped with no containers: nothing of it may be left. Its own bridge and nft
    table are removed without complaint (a daemon keeps them across restarts, as dockerd keeps docker0)."""
    problems = []
    mounts = d.mounts()
    if mounts:
        problems.append(f"mounts left behind: {sorted(mounts)}")
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
    conmons = d.conmons()
    if conmons:
        problems.append(f"conmon processes left behind: {sorted(conmons)}")
        for pid in conmons:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    links = d.links()
    extra = {n: k for n, k in links.items() if n != d.bridge}
    if extra:
        problems.append(f"network interfaces left behind: {extra}")
    for name in sorted(links, key=lambda n: n == d.bridge):  # the bridge last
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
    tables = d.nft_tables()
    extra_t = {t for t in tables if t[1] != d.nft_table}
    if extra_t:
        problems.append(f"nftables tables left behind: {sorted(extra_t)}")
    for family, name in tables:
        subprocess.run(["nft", "delete", "table", family, name], check=False, capture_output=True)
    stuck = d.remove_cgroup_parent()
    if stuck:
        problems.append(f"cgroups that could not be removed: {stuck}")
    tracebacks = d.unattributed + d.new_tracebacks()
    for tb in tracebacks:
        problems.append("traceback in hatobad's log outside any test:\n" + tb)
    return problems


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves anything of the daemon behind or harms the daemon (see `LeakCheck`)."""
    if "daemon" not in request.fixturenames:
        yield
        return
    d: Daemon = request.getfixturevalue("daemon")
    if not d.alive() or not d.ping():  # the test before failed for it (or the session's setup did)
        if d.alive():
            d.kill9()
        d.sanctioned_restarts += 1
        d.start()
    check = LeakCheck(d)
    yield
    problems = check.run()
    if problems:
        pytest.fail("\n".join(problems) + "\n--- hatobad log tail ---\n" + d.log_tail(2000), pytrace=False)


# ---- the docker CLI under test -------------------------------------------------------------------------


class _StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StubServer

    def _reply(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        if urlsplit(self.path).path.endswith("/_ping"):
            status, body, ctype = 200, b"OK", "text/plain; charset=utf-8"
        else:
            status, body, ctype = self.server.status, self.server.body, "application/json"
        self.send_response(status)
        for k, v in (("Api-Version", "1.41"), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                     ("Content-Type", ctype), ("Content-Length", str(len(body)))):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _StubServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, status: int, body: bytes):
        self.status, self.body = status, body
        super().__init__(path, _StubHandler)


class DockerCLI:
    """The docker CLI under test, and the texts that depend on its version, read from the CLI itself.

    `expect(*args, status=, message=)` runs the CLI against a stub daemon that answers /_ping as an
    API 1.41 daemon and every other request with ``status`` and ``{"message": message}`` (or with
    ``body`` as JSON): it is what this CLI prints when a daemon gives that answer (docker 28 prints
    "Error response from daemon: <message>" where 20.10 rewrites some 404s as "Error: No such
    container: …", and so on). A test then asserts that hatobad makes the CLI print the same.
    """

    def __init__(self, path: str):
        self.path = path

    @functools.cached_property
    def client(self) -> dict:
        with tempfile.TemporaryDirectory(prefix="hatoba-cli-") as tmp:
            env = self._env(os.path.join(tmp, "nothing.sock"))
            p = subprocess.run([self.path, "version", "--format", "{{json .Client}}"], capture_output=True,
                               env=env, timeout=30)
        return json.loads(p.stdout)

    @property
    def version(self) -> str:
        return self.client["Version"]

    @property
    def api_version(self) -> str:
        """The highest API version this CLI speaks (it negotiates down to the daemon's)."""
        return self.client.get("DefaultAPIVersion") or self.client["ApiVersion"]

    def api_version_line(self, server: str = "1.41") -> str:
        """`docker version`'s client line, e.g. `` API version:       1.41 (downgraded from 1.50)``."""
        note = f" (downgraded from {self.api_version})" if self.api_version != server else ""
        return f" API version:       {server}{note}\n"

    @functools.cached_property
    def run_error_trailer(self) -> str:
        """What `docker run` prints after a daemon's error line (28: blank line + "Run 'docker run
        --help' for more information"; 20.10: "See 'docker run --help'.")."""
        err = self.expect("run", "--name", "x", "busybox", "true", status=409, message="Conflict").stderr.decode()
        first, _, rest = err.partition("\n")
        assert first.startswith("docker: Error response from daemon: Conflict"), err
        return rest

    def expect(self, *args: str, status: int = 404, message: str = "", body: object = None,
               input: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        raw = json.dumps({"message": message} if body is None else body).encode() + b"\n"
        with tempfile.TemporaryDirectory(prefix="hatoba-cli-") as tmp:
            sock = os.path.join(tmp, "stub.sock")
            server = _StubServer(sock, status, raw)
            t = threading.Thread(target=server.serve_forever, daemon=True)
            t.start()
            try:
                return subprocess.run([self.path, *args], input=input, capture_output=True, timeout=timeout,
                                      env=self._env(sock), cwd=tmp)
            finally:
                server.shutdown()
                server.server_close()
                t.join(10)

    @staticmethod
    def _env(sock: str) -> dict[str, str]:
        """The environment `Daemon.docker` uses, with the stub as the daemon."""
        env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
        env.pop("DOCKER_CONTEXT", None)
        return env


@pytest.fixture(scope="session")
def docker_cli() -> DockerCLI:
    if not os.path.exists(DOCKER):
        pytest.fail(f"no docker CLI at {DOCKER} (scripts/setup.sh installs Debian's docker.io CLI)")
    return DockerCLI(DOCKER)

