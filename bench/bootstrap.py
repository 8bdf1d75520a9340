"""Benchmark: `hatoba image bootstrap debian:bookworm-slim` (and other recipes), end to end.

Each run is the wall time of the `hatoba image bootstrap NAME` process against a private hatobad:
the archive's Release date, mmdebstrap (apt update, download, unpack, configure, tar), hatoba's
tar filter, the layer's ingestion (sha256 + fsync) and unpacking, the image record and its tags.
The mmdebstrap phases are taken from the progress lines. It also checks that every run of a recipe
gave the same image id (reproducible while the archive is unchanged).

Usage:  sudo .venv/bin/python bench/bootstrap.py [--n 3] [--names debian:bookworm-slim,python:3.11-slim,redis]
Target: debian:bookworm-slim median <= 40 s. Needs mmdebstrap and http://deb.debian.org.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import PrivateDaemon, ensure_bytecode, machine_line, need_root  # noqa: E402

TARGET_S = 40.0
PHASES = ["running apt-get update", "downloading packages", "extracting archives", "installing essential packages",
          "installing remaining packages", "creating tarball", "success in"]


def phases(out: str) -> dict[str, float]:
    got: dict[str, float] = {}
    for m in re.finditer(r"^\[\s*([\d.]+)s\] (.*)$", out, re.M):
        for p in PHASES:
            if m.group(2).startswith(p) and p not in got:
                got[p] = float(m.group(1))
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--names", default="debian:bookworm-slim")
    a = ap.parse_args()
    need_root()
    ensure_bytecode()
    print(machine_line())
    with PrivateDaemon("bench-bootstrap") as d:
        d.start()
        for name in a.names.split(","):
            times: list[float] = []
            ids: set[str] = set()
            for i in range(a.n):
                t0 = time.perf_counter()
                p = d.hatoba("image", "bootstrap", name, timeout=600)
                took = time.perf_counter() - t0
                out = p.stdout.decode()
                m = re.search(r"^Bootstrapped \S+: (sha256:[0-9a-f]{64})$", out, re.M)
                ids.add(m.group(1) if m else "?")
                size = re.search(r"^Layer \w+: ([\d.]+ MB)", out, re.M)
                ph = phases(out)
                steps = "  ".join(f"{k.split()[1 if k.startswith('installing') else 0]}@{v:.1f}" for k, v in ph.items())
                print(f"{name} run {i + 1}: {took:5.1f} s  ({size.group(1) if size else '?'})  {steps}  "
                      f"load {os.getloadavg()[0]:.2f}")
                times.append(took)
            med = statistics.median(times)
            print(f"{name}: median {med:.1f} s, min {min(times):.1f} s over {len(times)} runs; "
                  f"{'same image id every run' if len(ids) == 1 else f'{len(ids)} different ids: {sorted(ids)}'}")
            if name == "debian:bookworm-slim":
                print(f"target: median <= {TARGET_S:.0f} s -> {med:.1f} s, {'MET' if med <= TARGET_S else 'NOT MET'}")


if __name__ == "__main__":
    main()
