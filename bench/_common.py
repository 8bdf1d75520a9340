"""Shared helpers for the benchmarks in bench/: a private hatobad, statistics and clean-up.

Not a test module. Every script starts its own hatobad (own tmp dir, socket, data root, exec root,
pidfile and cgroup parent `/hatoba-bench-<rand>`), so it never touches a system daemon, and removes
everything again on exit: the daemon (stopped by its pid), containers, mounts, conmon processes,
the cgroup parent in every hierarchy and the tmp dir.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

BIN = os.path.dirname(sys.executable)
HATOBA = os.path.join(BIN, "hatoba")
HATOBAD = os.path.join(BIN, "hatobad")
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else (shutil.which("docker") or "docker")
RUNC = shutil.which("runc") or "/usr/sbin/runc"
CGROUP_BASE = "/sys/fs/cgroup"


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root (sudo .venv/bin/python bench/...)")


def ensure_bytecode() -> None:
    """Byte-compile hatoba as scripts/setup.sh does, so CLI start-up is measured as installed.

    With PYTHONDONTWRITEBYTECODE set and a module edited since the last compile, every CLI run
    would otherwise recompile it from source and the benchmark would measure the compiler.
    """
    import hatoba

    pkg = os.path.dirname(os.path.abspath(hatoba.__file__))
    subprocess.run([sys.executable, "-m", "compileall", "-q", pkg], check=False, stdout=subprocess.DEVNULL)


# ---- statistics --------------------------------------------------------------------------------------

def quantile(xs: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), q in [0, 1]."""
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "median": statistics.median(xs) if xs else float("nan"),
            "p25": quantile(xs, 0.25), "p75": quantile(xs, 0.75), "min": min(xs) if xs else float("nan")}


def fmt_row(label: str, s: dict[str, float], floor: float | None = None, width: int = 44) -> str:
    ratio = f"{s['median'] / floor:5.2f}x" if floor else "   - "
    return (f"{label:<{width}} {s['median']:8.1f} {s['p25']:8.1f} - {s['p75']:<8.1f} {s['min']:8.1f}"
            f"   {ratio}")


def table_header(width: int = 44) -> str:
    return f"{'case':<{width}} {'median':>8} {'p25':>8} - {'p75':<8} {'min':>8}   ratio"


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> tuple[float, int, bytes]:
    """Wall time (ms) of one process from spawn to exit; returns (ms, returncode, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    return (time.perf_counter() - t0) * 1000.0, p.returncode, p.stderr


def machine_line() -> str:
    load = os.getloadavg()
    cpus = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}  kernel {platform.release()}  {cpus} CPU  "
            f"{mem_kb / 1048576:.1f} GiB  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


# ---- memory ------------------------------------------------------------------------------------------

def smaps_rollup(pid: int) -> dict[str, int]:
    """kB figures from /proc/<pid>/smaps_rollup (Rss, Pss, Pss_Anon, Private_*, ...)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# ---- cgroups -----------------------------------------------------------------------------------------

def cgroup_hierarchies() -> list[str]:
    """Every mounted cgroup hierarchy directory under /sys/fs/cgroup (v1 controllers and unified)."""
    out = []
    for name in sorted(os.listdir(CGROUP_BASE)):
        p = os.path.join(CGROUP_BASE, name)
        if os.path.isdir(p) and not os.path.islink(p):
            out.append(p)
    if os.path.exists(os.path.join(CGROUP_BASE, "cgroup.controllers")):  # pure v2
        out.append(CGROUP_BASE)
    return out


def remove_cgroup_tree(parent: str) -> list[str]:
    """rmdir `parent` (and anything under it, deepest first) in every hierarchy; returns what is left."""
    left = []
    for h in cgroup_hierarchies():
        top = os.path.join(h, parent.lstrip("/"))
        if not os.path.isdir(top):
            continue
        dirs = [root for root, _, _ in os.walk(top)]
        for d in sorted(dirs, key=len, reverse=True):
            for _ in range(20):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # a just-exited task may still be charged to it
            else:
                left.append(d)
    return left


# ---- a private hatobad -------------------------------------------------------------------------------

class PrivateDaemon:
    """hatobad on its own socket, data root, exec root, pidfile and cgroup parent."""

    def __init__(self, tag: str = "bench", base: str = "/tmp", pythonpath: str | None = None):
        """`pythonpath`: run hatobad and the CLI from another checkout (a 'before' figure)."""
        self.root = tempfile.mkdtemp(prefix=f"hatoba-{tag}-", dir=base)
        self.sock = os.path.join(self.root, "hatoba.sock")
        self.host = f"unix://{self.sock}"
        self.data_root = os.path.join(self.root, "data")
        self.exec_root = os.path.join(self.root, "run")
        self.pidfile = os.path.join(self.root, "hatobad.pid")
        self.logfile = os.path.join(self.root, "hatobad.log")
        self.cgroup_parent = f"/hatoba-{tag}-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, HATOBA_HOST=self.host, DOCKER_HOST=self.host,
                        DOCKER_CONFIG=os.path.join(self.root, "docker-config"))
        self.env.pop("DOCKER_CONTEXT", None)
        if pythonpath:
            self.env["PYTHONPATH"] = os.path.abspath(pythonpath)
            subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(pythonpath, "hatoba")],
                           check=False, stdout=subprocess.DEVNULL)
        os.makedirs(self.env["DOCKER_CONFIG"], exist_ok=True)
        with open(os.path.join(self.root, "daemon.json"), "w") as f:
            f.write("{}\n")

    def __enter__(self) -> PrivateDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def start(self, log_level: str = "warn") -> None:
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [HATOBAD, "-H", self.host, "--data-root", self.data_root, "--exec-root", self.exec_root,
             "--pidfile", self.pidfile, "--cgroup-parent", self.cgroup_parent,
             "--config-file", os.path.join(self.root, "daemon.json"), "--log-level", log_level],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)
        log.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hatobad exited: " + self.log_tail())
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError("hatobad did not come up: " + self.log_tail())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ping(self) -> bool:
        try:
            return self.api("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def api(self, method: str, path: str, body: object = None, timeout: float = 60) -> tuple[int, object]:
        sock_path = self.sock

        class Conn(http.client.HTTPConnection):
            def connect(inner) -> None:  # noqa: N805
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(sock_path)
                inner.sock = s

        c = Conn("localhost", timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, (json.loads(raw) if raw.strip() else None)
        except ValueError:
            return r.status, raw

    def hatoba(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([HATOBA, *args], capture_output=True, timeout=timeout, env=self.env,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"hatoba {' '.join(args)} -> {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p

    def bootstrap(self, name: str = "busybox") -> None:
        p = self.hatoba("image", "bootstrap", name, timeout=300, check=False)
        if p.returncode != 0 and ":" not in name:  # recipes may be keyed by name:tag only
            p = self.hatoba("image", "bootstrap", f"{name}:latest", timeout=300, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"hatoba image bootstrap {name} -> {p.returncode}: "
                               f"{p.stderr.decode(errors='replace')}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.logfile, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def container_ids(self) -> list[str]:
        status, body = self.api("GET", "/containers/json?all=1")
        if status != 200 or not isinstance(body, list):
            return []
        return [c["Id"] for c in body]

    def remove_all(self) -> None:
        for cid in self.container_ids():
            with contextlib.suppress(OSError):
                self.api("DELETE", f"/containers/{cid}?force=1")

    def conmon_pids(self) -> dict[str, int]:
        """container id → conmon pid, from `<exec-root>/containers/<id>/conmon.pid` (live ones only)."""
        out = {}
        d = os.path.join(self.exec_root, "containers")
        for cid in os.listdir(d) if os.path.isdir(d) else []:
            try:
                with open(os.path.join(d, cid, "conmon.pid")) as f:
                    pid = int(f.read().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"conmon" not in f.read().split(b"\0")[0]:
                        continue
            except (OSError, ValueError):
                continue
            out[cid] = pid
        return out

    def stray_conmons(self) -> list[int]:
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"conmon" in cmd.split(b"\0")[0] and self.root.encode() in cmd:
                out.append(int(pid))
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc and self.proc.poll() is None:
                self.remove_all()
        self.stop()
        for pid in self.stray_conmons():  # only conmons whose command line names our private root
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(self.root)), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False, stderr=subprocess.DEVNULL)
        left = remove_cgroup_tree(self.cgroup_parent)
        if left:
            print(f"warning: cgroups left behind: {left}", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)
