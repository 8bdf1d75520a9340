"""Benchmark: memory overhead per running container (conmon + the daemon's own growth).

Starts M `busybox sleep 3600` containers with `hatoba run -d` and reports:
  * conmon: RSS, PSS, anonymous PSS and private memory from /proc/<pid>/smaps_rollup, for the conmon
    pids read from `<exec-root>/containers/<id>/conmon.pid` (median, min, max over the M conmons);
  * hatobad: RSS / PSS / anonymous memory before and after, and the growth per container;
  * the total per-container overhead (conmon PSS + daemon RSS growth), against the target <= 3 MB.
The container's own process (`sleep`) is the workload, not overhead, and is not counted.
Then removes the containers and reports what the daemon gives back.

Usage:  sudo .venv/bin/python bench/memory.py [--m 20]
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
    HATOBA,
    PrivateDaemon,
    ensure_bytecode,
    machine_line,
    need_root,
    smaps_rollup,
)

TARGET_MB = 3.0


def daemon_mem(pid: int) -> dict[str, int]:
    """kB: Rss, Pss, Anonymous (private anon pages), from smaps_rollup."""
    s = smaps_rollup(pid)
    return {"Rss": s.get("Rss", 0), "Pss": s.get("Pss", 0), "Anonymous": s.get("Anonymous", 0)}


def settle(pid: int, seconds: float = 1.0) -> dict[str, int]:
    time.sleep(seconds)  # let in-flight monitors and event-loop callbacks finish
    return daemon_mem(pid)


def mb(kb: float) -> str:
    return f"{kb / 1024:6.2f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=20, help="running containers (default 20)")
    a = ap.parse_args()
    need_root()
    ensure_bytecode()

    with PrivateDaemon("bench") as d:
        d.start()
        d.bootstrap("busybox")
        print(f"{machine_line()}\nhatobad pid {d.pid}, root {d.root}, cgroup parent {d.cgroup_parent}")
        # warm every code path once (lazy imports, caches) so the growth below is per-container state
        for _ in range(2):
            cid = d.hatoba("run", "-d", "busybox", "sleep", "3600").stdout.decode().strip()
            d.hatoba("rm", "-f", cid)
        base = settle(d.pid)

        ids = []
        for _ in range(a.m):
            ids.append(d.hatoba("run", "-d", "busybox", "sleep", "3600").stdout.decode().strip())
        after = settle(d.pid)
        conmons = d.conmon_pids()
        missing = [c[:12] for c in ids if c not in conmons]
        if missing:
            print(f"warning: no live conmon found for {missing}")
        per = []
        for cid in ids:
            pid = conmons.get(cid)
            if pid is None:
                continue
            s = smaps_rollup(pid)
            per.append({"Rss": s.get("Rss", 0), "Pss": s.get("Pss", 0), "Pss_Anon": s.get("Pss_Anon", 0),
                        "Private": s.get("Private_Clean", 0) + s.get("Private_Dirty", 0)})

        print(f"\n{len(per)} running containers (busybox sleep 3600); figures per conmon process (kB):")
        print(f"{'':14}{'median':>10}{'min':>10}{'max':>10}")
        for k in ("Rss", "Pss", "Pss_Anon", "Private"):
            xs = [p[k] for p in per]
            print(f"conmon {k:<8}{statistics.median(xs):10.0f}{min(xs):10d}{max(xs):10d}")

        grow = {k: (after[k] - base[k]) / a.m for k in base}
        print("\nhatobad (kB):  before -> after, growth per container")
        for k in ("Rss", "Pss", "Anonymous"):
            print(f"  {k:<10}{base[k]:8d} -> {after[k]:8d}   {grow[k]:8.1f}")

        conmon_pss = statistics.median([p["Pss"] for p in per])
        total = conmon_pss + max(grow["Rss"], 0.0)
        print(f"\nper-container overhead = conmon PSS {mb(conmon_pss)} + hatobad RSS growth {mb(max(grow['Rss'], 0))}"
              f" = {mb(total)}")
        print(f"  (conmon RSS instead of PSS: {mb(statistics.median([p['Rss'] for p in per]) + max(grow['Rss'], 0))};"
              f" conmon private only: {mb(statistics.median([p['Private'] for p in per]) + max(grow['Rss'], 0))})")
        print(f"target: <= {TARGET_MB:.0f} MB per container -> {total / 1024:.2f} MB, "
              f"{'MET' if total / 1024 <= TARGET_MB else 'NOT MET'}")

        for i in range(0, len(ids), 50):
            subprocess.run([HATOBA, "rm", "-f", *ids[i:i + 50]], env=d.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        gone = settle(d.pid)
        print(f"after removing them: hatobad Rss {gone['Rss']} kB ({gone['Rss'] - base['Rss']:+d} kB vs before), "
              f"live conmons {len(d.conmon_pids())}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
