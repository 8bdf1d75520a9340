"""Benchmark: `hatoba ps` with 100 created containers (plus, by default, 10 running ones).

Creates N containers with `hatoba create busybox true` (created, never started) and R running
`busybox sleep 3600` ones, then times, interleaved, over --runs iterations:
  hatoba ps -a              every container (N + R rows)
  hatoba ps                 running ones only (R rows)
  docker ps -a              the real docker CLI against the same hatobad (for comparison)
  API GET /containers/json?all=1   the daemon's share alone (raw socket, no CLI start-up)
and removes everything again.

Usage:  sudo .venv/bin/python bench/ps_100.py [--containers 100] [--running 10] [--runs 20]
Target: `hatoba ps -a` median <= 80 ms with 100 containers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    DOCKER,
    HATOBA,
    PrivateDaemon,
    ensure_bytecode,
    fmt_row,
    machine_line,
    need_root,
    summary,
    table_header,
    timed,
)

TARGET_MS = 80.0


def rows(d: PrivateDaemon, *args: str) -> int:
    out = d.hatoba("ps", *args).stdout.decode().splitlines()
    return max(0, len(out) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--containers", type=int, default=100, help="created (not started) containers (default 100)")
    ap.add_argument("--running", type=int, default=10, help="running `sleep` containers as well (default 10)")
    ap.add_argument("--runs", type=int, default=20, help="timed runs of each command (default 20)")
    a = ap.parse_args()
    need_root()
    ensure_bytecode()

    with PrivateDaemon("bench") as d:
        d.start()
        d.bootstrap("busybox")
        print(f"{machine_line()}\nhatobad pid {d.pid}, root {d.root}, cgroup parent {d.cgroup_parent}")
        t0 = time.perf_counter()
        create_ms = []
        for _ in range(a.containers):
            ms, rc, err = timed([HATOBA, "create", "busybox", "true"], env=d.env)
            if rc != 0:
                raise SystemExit(f"hatoba create failed: {err.decode(errors='replace')}")
            create_ms.append(ms)
        for _ in range(a.running):
            d.hatoba("run", "-d", "busybox", "sleep", "3600")
        print(f"set-up: {a.containers} x `hatoba create` (median {statistics.median(create_ms):.1f} ms each) "
              f"+ {a.running} x `hatoba run -d busybox sleep 3600` in {time.perf_counter() - t0:.1f} s")
        n_all, n_running = rows(d, "-a"), rows(d)
        print(f"rows: ps -a {n_all} (expected {a.containers + a.running}), ps {n_running} (expected {a.running})")

        cases = [
            ("hatoba ps -a", lambda: timed([HATOBA, "ps", "-a"], env=d.env)),
            ("hatoba ps", lambda: timed([HATOBA, "ps"], env=d.env)),
        ]
        if os.path.exists(DOCKER):
            cases.append(("docker ps -a (docker CLI -> hatobad)", lambda: timed([DOCKER, "ps", "-a"], env=d.env)))

        def api_list() -> tuple[float, int, bytes]:
            t = time.perf_counter()
            status, _ = d.api("GET", "/v1.41/containers/json?all=1")
            return (time.perf_counter() - t) * 1000, 0 if status == 200 else status, b""

        cases.append(("API GET /containers/json?all=1 (no CLI)", api_list))
        for _, fn in cases:  # warm-up
            fn()
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        for i in range(a.runs):
            k = i % len(cases)
            for name, fn in cases[k:] + cases[:k]:
                ms, rc, err = fn()
                if rc != 0:
                    raise SystemExit(f"{name} failed: rc={rc} {err.decode(errors='replace')}")
                times[name].append(ms)

        print()
        print(table_header() + "   (ms)")
        for name, _ in cases:
            print(fmt_row(name, summary(times[name])))
        med = statistics.median(times["hatoba ps -a"])
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"target: hatoba ps -a median <= {TARGET_MS:.0f} ms with {n_all} containers -> {med:.1f} ms, "
              f"{'MET' if med <= TARGET_MS else 'NOT MET'}")

        t0 = time.perf_counter()
        ids = d.container_ids()
        for i in range(0, len(ids), 50):
            subprocess.run([HATOBA, "rm", "-f", *ids[i:i + 50]], env=d.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        left = d.container_ids()
        print(f"removed {len(ids) - len(left)} containers in {time.perf_counter() - t0:.1f} s"
              + (f"; {len(left)} left" if left else ""))


if __name__ == "__main__":
    main()
