"""Benchmark: `run --rm busybox true`, end to end, against the bare `runc run` floor.

Cases, interleaved in one loop (the order is rotated every iteration so none always goes first):
  (a) `hatoba run --rm busybox true`             wall time of the hatoba CLI process
  (b) `docker run --rm busybox true`             the real docker CLI, DOCKER_HOST = the same hatobad
  (c) `runc run` of `true`                       bare floor: busybox rootfs bundle, no conmon, no daemon
  (d) `docker run --rm busybox true` on dockerd  only with --dockerd unix:///path (reference only)

Usage:  sudo .venv/bin/python bench/run_rm.py [--n 30] [--warmup 2] [--dockerd unix:///tmp/ref-docker.sock]
Target: (a) median <= 150 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    DOCKER,
    HATOBA,
    RUNC,
    PrivateDaemon,
    ensure_bytecode,
    fmt_row,
    machine_line,
    need_root,
    summary,
    table_header,
    timed,
)

TARGET_MS = 150.0
BUSYBOX = "/bin/busybox"


def runc_spec(args: list[str], cgroups_path: str) -> dict:
    """The config.json that `runc spec` writes, with a non-terminal `true` and an explicit cgroupsPath."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


class RuncFloor:
    """A plain busybox rootfs bundle and a private runc --root, all in one tmp dir."""

    def __init__(self, cgroup_parent: str):
        self.dir = tempfile.mkdtemp(prefix="hatoba-bench-runc-", dir="/tmp")
        self.bundle = os.path.join(self.dir, "bundle")
        self.state = os.path.join(self.dir, "state")
        self.cgroup_parent = cgroup_parent  # <parent>/floor-<rand>; removed with the daemon's parent
        rootfs = os.path.join(self.bundle, "rootfs")
        for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("true", "sh", "sleep"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        os.makedirs(self.state)
        self.n = 0

    def run_once(self) -> tuple[float, int, bytes]:
        self.n += 1
        cid = f"floor-{uuid.uuid4().hex[:8]}"
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(runc_spec(["true"], f"{self.cgroup_parent}/{cid}"), f)
        return timed([RUNC, "--root", self.state, "run", "--bundle", self.bundle, cid])

    def cleanup(self) -> None:
        # `runc run` deletes its container on exit; anything left (a failed run) is force-deleted
        for cid in os.listdir(self.state) if os.path.isdir(self.state) else []:
            subprocess.run([RUNC, "--root", self.state, "delete", "--force", cid], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def dockerd_env(host: str) -> dict[str, str] | None:
    """Environment for the docker CLI against a reference dockerd, or None if it is not usable."""
    env = dict(os.environ, DOCKER_HOST=host)
    env.pop("DOCKER_CONTEXT", None)
    p = subprocess.run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=env, capture_output=True,
                       timeout=20)
    if p.returncode != 0:
        print(f"note: reference dockerd at {host} not reachable, case (d) skipped: "
              f"{p.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return None
    q = subprocess.run([DOCKER, "image", "inspect", "busybox"], env=env, capture_output=True, timeout=20)
    if q.returncode != 0:
        print(f"note: no busybox image in the reference dockerd at {host}, case (d) skipped "
              "(import one, see bench/README.md)", file=sys.stderr)
        return None
    print(f"reference dockerd {p.stdout.decode().strip()} at {host}")
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="measured iterations (default 30)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured iterations first (default 2)")
    ap.add_argument("--dockerd", help="unix:///path of a reference dockerd (optional, never required)")
    ap.add_argument("--no-docker-cli", action="store_true", help="skip case (b)")
    ap.add_argument("--base", help="a checkout of an earlier hatoba: case (e) runs its hatobad and CLI beside")
    a = ap.parse_args()
    need_root()
    ensure_bytecode()

    with PrivateDaemon("bench") as d, contextlib.ExitStack() as stack:
        floor = RuncFloor(d.cgroup_parent)
        try:
            d.start()
            d.bootstrap("busybox")
            base = None
            if a.base:
                base = stack.enter_context(PrivateDaemon("bench-base", pythonpath=a.base))
                base.start()
                base.bootstrap("busybox")
            ref_env = dockerd_env(a.dockerd) if a.dockerd else None

            cases: list[tuple[str, object]] = [
                ("(a) hatoba run --rm busybox true", lambda: timed([HATOBA, "run", "--rm", "busybox", "true"],
                                                                   env=d.env)),
            ]
            if not a.no_docker_cli and os.path.exists(DOCKER):
                cases.append(("(b) docker CLI -> hatobad run --rm", lambda: timed(
                    [DOCKER, "run", "--rm", "busybox", "true"], env=d.env)))
            cases.append(("(c) runc run true (floor)", floor.run_once))
            if base is not None:
                cases.append(("(e) base hatoba run --rm busybox true", lambda: timed(
                    [HATOBA, "run", "--rm", "busybox", "true"], env=base.env)))
            if ref_env is not None:
                cases.append(("(d) docker CLI -> dockerd run --rm", lambda: timed(
                    [DOCKER, "run", "--rm", "busybox", "true"], env=ref_env)))

            times: dict[str, list[float]] = {name: [] for name, _ in cases}
            fails: dict[str, list[str]] = {name: [] for name, _ in cases}
            print(f"{machine_line()}\nhatobad pid {d.pid}, root {d.root}, cgroup parent {d.cgroup_parent}")
            print(f"{a.warmup} warm-up + {a.n} measured iterations, interleaved ...", flush=True)
            for i in range(a.warmup + a.n):
                k = i % len(cases)
                for name, fn in cases[k:] + cases[:k]:
                    ms, rc, err = fn()  # type: ignore[operator]
                    if i < a.warmup:
                        continue
                    if rc == 0:
                        times[name].append(ms)
                    else:
                        fails[name].append(f"rc={rc}: {err.decode(errors='replace').strip()[:200]}")
            left = d.container_ids()

            floor_name = "(c) runc run true (floor)"
            floor_med = summary(times[floor_name])["median"] if times[floor_name] else None
            print()
            print(table_header() + "   (ms; ratio = median / runc floor median)")
            for name, _ in cases:
                if times[name]:
                    print(fmt_row(name, summary(times[name]), floor_med))
                else:
                    print(f"{name:<44} (no successful runs)")
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            a_med = summary(times[cases[0][0]])["median"] if times[cases[0][0]] else float("inf")
            verdict = "MET" if a_med <= TARGET_MS else "NOT MET"
            print(f"target: (a) median <= {TARGET_MS:.0f} ms -> {a_med:.1f} ms, {verdict}")
            for name, errs in fails.items():
                if errs:
                    print(f"failures in {name}: {len(errs)}; first: {errs[0]}")
            if left:
                print(f"warning: {len(left)} containers left behind by run --rm: {[c[:12] for c in left]}")
        finally:
            floor.cleanup()


if __name__ == "__main__":
    main()
