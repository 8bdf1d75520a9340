"""Benchmark: the CLI, `exec` and `logs` targets, each beside the docker CLI in one interleaved loop.

Sections (the order of the cases is rotated every iteration; every figure is the wall time of one
CLI process, from spawn to exit, with its stdout read through a pipe):
  ps       `hatoba ps -a` and `hatoba version` on an empty private hatobad, beside the docker CLI
           against the same hatobad, and the bare interpreter (`python -sSP -c pass`).
           Targets: <= 1.2 x the docker CLI.
  exec     `hatoba exec ID true` in a running `sleep`, beside `docker exec` against the same
           hatobad, `docker exec` against the reference dockerd (--dockerd), and the floor,
           `runc exec ID true` on hatoba's runc root.  Target: <= 0.8 x docker -> dockerd.
  logs     `logs ID` of a container that printed 100,000 lines of 60 bytes (the shared harness's
           awk script), checked (line count, last line) on every run: hatoba, docker -> hatobad,
           docker -> dockerd.  Target: <= 0.6 x docker -> dockerd.

The ratio column is the median of the per-iteration ratios to the section's reference case, so
both processes of a pair ran within the same second.  Containers created on the reference
dockerd are named `hatoba-bench-<rand>-*` and removed at the end.

Usage:  sudo .venv/bin/python bench/cli_speed.py [--runs 20] [--log-runs 8] [--only ps,exec,logs]
                                                  [--dockerd unix:///tmp/dref/docker.sock]
        (before/after) --src DIR --cli PROG: run hatobad and the CLI from another checkout
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    BIN,
    DOCKER,
    HATOBA,
    RUNC,
    PrivateDaemon,
    ensure_bytecode,
    machine_line,
    need_root,
    quantile,
)

LOG_LINES = 100_000
LOG_SCRIPT = (f"awk 'BEGIN{{for(i=1;i<={LOG_LINES};i++) printf \"hatoba-bench line %06d "
              "abcdefghijklmnopqrstuvwxyz0123456789\\n\", i}'")
LOG_LAST = b"hatoba-bench line %06d abcdefghijklmnopqrstuvwxyz0123456789" % LOG_LINES
DEFAULT_DOCKERD = "unix:///tmp/dref/docker.sock"

Case = tuple[str, Callable[[], float]]


def run_timed(argv: list[str], env: dict[str, str] | None = None, check_logs: bool = False) -> float:
    """Wall time (ms) of one process, its stdout read through a pipe; raises on failure."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    ms = (time.perf_counter() - t0) * 1000.0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}")
    lines = p.stdout.count(b"\n")
    if check_logs and (lines != LOG_LINES or not p.stdout.rstrip(b"\n").endswith(LOG_LAST)):
        raise RuntimeError(f"{' '.join(argv)}: {lines} lines, want {LOG_LINES}")
    return ms


def interleave(title: str, cases: list[Case], ref: str, runs: int, warmup: int = 1,
               targets: tuple[tuple[str, str, float], ...] = ()) -> dict[str, list[float]]:
    """Run the cases `runs` times in rotated order; print median, p25-p75, min and the paired ratio
    to `ref`, then each target (case, reference case, limit) as a paired ratio."""
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for i in range(runs + warmup):
        k = i % len(cases)
        for name, fn in cases[k:] + cases[:k]:
            ms = fn()
            if i >= warmup:
                times[name].append(ms)
    print(f"\n## {title}  ({runs} runs; load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    print(f"{'case (ms)':<40} {'median':>8} {'p25':>8} - {'p75':<8} {'min':>8}   ratio to {ref}")
    for name, _ in cases:
        xs = times[name]
        print(f"{name:<40} {statistics.median(xs):8.1f} {quantile(xs, 0.25):8.1f} - {quantile(xs, 0.75):<8.1f} "
              f"{min(xs):8.1f}   {paired(xs, times[ref]):.2f}")
    for name, other, limit in targets:
        got = paired(times[name], times[other])
        print(f"target: {name} <= {limit} x {other}: {got:.2f} -> {'MET' if got <= limit else 'NOT MET'}")
    return times


def paired(xs: list[float], ys: list[float]) -> float:
    """Median of the per-iteration ratios x/y."""
    return statistics.median(x / y for x, y in zip(xs, ys, strict=True))


def launcher_python(prog: str) -> str:
    """The interpreter on the `#!` line of a Python program (the venv's if there is none)."""
    try:
        with open(prog, "rb") as f:
            first = f.readline().decode(errors="replace")
    except OSError:
        first = ""
    return first[2:].split()[0] if first.startswith("#!") and "python" in first else os.path.join(BIN, "python")


def docker_env(host: str) -> dict[str, str]:
    env = dict(os.environ, DOCKER_HOST=host)
    env.pop("DOCKER_CONTEXT", None)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per case for ps/version and exec")
    ap.add_argument("--log-runs", type=int, default=8, help="timed runs per case for logs")
    ap.add_argument("--only", default="ps,exec,logs", help="sections to run (ps, exec, logs)")
    ap.add_argument("--dockerd", default=DEFAULT_DOCKERD, help="the reference dockerd (exec and logs)")
    ap.add_argument("--src", help="run hatobad and the CLI from this checkout (PYTHONPATH), for a 'before' figure")
    ap.add_argument("--cli", default=HATOBA, help="the hatoba program to time (default: the venv's)")
    a = ap.parse_args()
    need_root()
    only = set(a.only.split(","))
    if a.src:
        os.environ["PYTHONPATH"] = os.path.abspath(a.src)
    ensure_bytecode()
    have_docker = os.path.exists(DOCKER)
    dockerd = a.dockerd if have_docker and a.dockerd.startswith("unix://") and os.path.exists(a.dockerd[7:]) else None
    ref_env = docker_env(dockerd) if dockerd else None
    token = f"hatoba-bench-{uuid.uuid4().hex[:8]}"
    ref_ids: list[str] = []
    print(machine_line())
    print(f"hatoba CLI {a.cli}{' (PYTHONPATH ' + a.src + ')' if a.src else ''}; docker CLI "
          f"{DOCKER if have_docker else 'missing'}; reference dockerd {dockerd or 'none'}")

    with PrivateDaemon("bench") as d:
        d.start()
        d.bootstrap("busybox")
        h_env, dh_env = d.env, docker_env(d.host)
        hatoba = a.cli
        interp = launcher_python(hatoba)
        try:
            if "ps" in only:
                cases: list[Case] = [
                    ("hatoba ps -a", lambda: run_timed([hatoba, "ps", "-a"], h_env)),
                    ("hatoba version", lambda: run_timed([hatoba, "version"], h_env)),
                    (f"{os.path.basename(interp)} -sSP -c pass (interpreter)",
                     lambda: run_timed([interp, "-sSP", "-c", "pass"])),
                ]
                targets: tuple[tuple[str, str, float], ...] = ()
                ref = "hatoba ps -a"
                if have_docker:
                    cases += [("docker ps -a (-> hatobad)", lambda: run_timed([DOCKER, "ps", "-a"], dh_env)),
                              ("docker version (-> hatobad)", lambda: run_timed([DOCKER, "version"], dh_env))]
                    ref = "docker ps -a (-> hatobad)"
                    targets = (("hatoba ps -a", ref, 1.2), ("hatoba version", "docker version (-> hatobad)", 1.2))
                interleave("ps -a on an empty daemon, version", cases, ref, a.runs, targets=targets)

            if "exec" in only:
                cid = d.hatoba("run", "-d", "busybox", "sleep", "3600").stdout.decode().split()[-1]
                runc_root = os.path.join(d.exec_root, "runc")
                cases = [
                    ("hatoba exec ID true", lambda: run_timed([hatoba, "exec", cid, "true"], h_env)),
                    ("runc exec ID true (floor)", lambda: run_timed([RUNC, "--root", runc_root, "exec", cid, "true"])),
                ]
                if have_docker:
                    cases.append(("docker exec (-> hatobad)", lambda: run_timed([DOCKER, "exec", cid, "true"], dh_env)))
                ref = "hatoba exec ID true"
                if ref_env:
                    rid = subprocess.run([DOCKER, "run", "-d", "--name", f"{token}-exec", "busybox", "sleep", "3600"],
                                         env=ref_env, capture_output=True, check=True).stdout.decode().split()[-1]
                    ref_ids.append(rid)
                    ref = "docker exec (-> dockerd)"
                    cases.append((ref, lambda: run_timed([DOCKER, "exec", rid, "true"], ref_env)))
                interleave("exec ID true", cases, ref, a.runs,
                           targets=(("hatoba exec ID true", ref, 0.8),) if ref_env else ())

            if "logs" in only:
                lid = d.hatoba("run", "-d", "busybox", "sh", "-c", LOG_SCRIPT).stdout.decode().split()[-1]
                d.hatoba("wait", lid, timeout=300)
                cases = [("hatoba logs ID", lambda: run_timed([hatoba, "logs", lid], h_env, check_logs=True))]
                if have_docker:
                    cases.append(("docker logs (-> hatobad)",
                                  lambda: run_timed([DOCKER, "logs", lid], dh_env, check_logs=True)))
                ref = "hatoba logs ID"
                if ref_env:
                    rid = subprocess.run([DOCKER, "run", "-d", "--name", f"{token}-logs", "busybox", "sh", "-c",
                                          LOG_SCRIPT], env=ref_env, capture_output=True,
                                         check=True).stdout.decode().split()[-1]
                    ref_ids.append(rid)
                    subprocess.run([DOCKER, "wait", rid], env=ref_env, capture_output=True, check=True, timeout=300)
                    ref = "docker logs (-> dockerd)"
                    cases.append((ref, lambda: run_timed([DOCKER, "logs", rid], ref_env, check_logs=True)))
                interleave(f"logs ID ({LOG_LINES} lines)", cases, ref, a.log_runs,
                           targets=(("hatoba logs ID", ref, 0.6),) if ref_env else ())
        finally:
            if ref_ids and ref_env:
                subprocess.run([DOCKER, "rm", "-f", *ref_ids], env=ref_env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
