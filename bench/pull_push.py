"""Benchmark: `hatoba push` and `hatoba pull` of a python-sized single-layer image, loopback registry.

A private hatobad (see _common.py) and Debian's `docker-registry` on 127.0.0.1 (its own config and
storage, as tests/integration/test_registry.py runs it). The layer mimics python:3.11-slim's: about
150 MB and 7,000 entries (copied from the host's /usr/lib/python3.11, /usr/lib/python3, zoneinfo,
perl modules and a few shared libraries), or any tar given with --layer.

Rounds (default 3). Each round imports a *variant* of the layer (the same tar plus one small file,
so a new layer that push really has to compress and upload), then times:
  push             `hatoba push`                  compress (hatoba's threaded gzip) + upload
  pull (fresh)     `hatoba pull` into a second private hatobad that never had the image
  pull (after rmi) `hatoba rmi` then `hatoba pull` on the daemon that pushed it (the issue's recipe)
  floor            `tar -xzf` of the pushed blob (GNU tar + gzip, two processes) into a new directory
Every pull is of a layer pushed in the same run; all images are removed at the end only.

The file system matters more than anything here. The root file system of these machines is ext4
*without a journal*: allocating an inode skips the inodes of its block group freed in the last 60 s
(360 s while their inode-table block is dirty) and rescans them for every new file, so creating
7,000 files where 7,000 were just deleted (rmi then pull, or a test suite's clean-up) costs 0.2 to
0.5 ms per file instead of about 10 µs, for any extractor, tar included. hatoba's snapshotter marks
its staging directory `chattr +T` (see `spread_subdirs`), so each layer is unpacked in a block group
of its own; the floor's directories get the same treatment, so that the two compare. --probe prints
the cost of creating a file in a plain directory beside the data roots (those files stay until the
end), to show the state of the file system.
Usage:  sudo .venv/bin/python bench/pull_push.py [--rounds 3] [--base /var/tmp] [--layer file.tar]
Targets (issue 3): pull <= 2.6 s, push <= 3 s.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HATOBA, PrivateDaemon, ensure_bytecode, machine_line, need_root, timed  # noqa: E402

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
PULL_TARGET, PUSH_TARGET = 2.6, 3.0
# what goes into the layer: a Python installation and the usual data files, then big shared libraries
SOURCES = ["usr/lib/python3.11", "usr/lib/python3", "usr/share/zoneinfo", "usr/share/perl",
           "usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "usr/lib/x86_64-linux-gnu/libcrypto.so.3",
           "usr/lib/x86_64-linux-gnu/libicudata.so.72.1"]


def spread_subdirs(path: str) -> None:
    """chattr +T, as hatoba.storage.snapshots.spread_subdirs (copied: the bench also runs old trees)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(4)
        fcntl.ioctl(fd, 0x80086601, buf)  # FS_IOC_GETFLAGS
        fcntl.ioctl(fd, 0x40086602, (int.from_bytes(buf, sys.byteorder) | 0x20000).to_bytes(4, sys.byteorder))
    except OSError as e:
        print(f"note: chattr +T {path}: {e}")
    finally:
        os.close(fd)


class Registry:
    """docker-registry on a free loopback port with its storage under `base`."""

    def __init__(self, base: str):
        self.dir = tempfile.mkdtemp(prefix="hatoba-bench-reg-", dir=base)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        with open(os.path.join(self.dir, "config.yml"), "w") as f:
            f.write("\n".join(["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                               f"    rootdirectory: {self.dir}/data", "http:", f"  addr: {self.host}"]) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", os.path.join(self.dir, "config.yml")], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not come up")

    def blob(self, digest: str) -> str:
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_layer(path: str) -> None:
    names = [p for p in SOURCES if os.path.exists("/" + p)]
    if not names:
        sys.exit("none of the layer's source directories exist here: pass --layer")
    subprocess.run(["tar", "--numeric-owner", "-C", "/", "-cf", path, *names], check=True,
                   stderr=subprocess.DEVNULL)


def layer_stats(path: str) -> tuple[int, int]:
    with tarfile.open(path) as t:
        return os.path.getsize(path), sum(1 for _ in t)


def make_variant(base_tar: str, dest: str, n: int) -> None:
    """`base_tar` plus one small member: a new layer with (almost) the same content."""
    shutil.copyfile(base_tar, dest)
    with tarfile.open(dest, "a") as t:
        data = f"bench variant {n} {time.time()}\n".encode()
        ti = tarfile.TarInfo(f"etc/bench-variant-{n}")
        ti.size, ti.mode, ti.mtime = len(data), 0o644, int(time.time())
        t.addfile(ti, io.BytesIO(data))


def probe(dir_: str, n: int = 1000) -> float:
    """µs to create one empty file in a new directory under `dir_` (kept until the end)."""
    d = tempfile.mkdtemp(prefix="probe-", dir=dir_)
    os.chmod(d, 0o700)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    t = time.perf_counter()
    for i in range(n):
        os.close(os.open(f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd))
    os.close(fd)
    return (time.perf_counter() - t) / n * 1e6


def layer_digest(ref: str) -> str:
    """The compressed digest hatoba pushed for the image's only layer (from the registry manifest)."""
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    req = urllib.request.Request(f"http://{ref.split('/', 1)[0]}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["layers"][0]["digest"]


def stat_line(label: str, xs: list[float], target: float | None = None) -> str:
    if not xs:
        return f"{label:<34} (no successful run)"
    med = statistics.median(xs)
    verdict = "" if target is None else ("  target met" if med <= target else f"  target {target} s missed")
    return f"{label:<34} median {med:6.2f} s   min {min(xs):6.2f}   all {' '.join(f'{x:.2f}' for x in xs)}{verdict}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", default="/var/tmp", help="where the daemons, registry and files live (default "
                    "/var/tmp; /tmp is where test suites create and delete the most)")
    ap.add_argument("--layer", help="use this (uncompressed) layer tar instead of building one")
    ap.add_argument("--probe", action="store_true", help="report the cost of a file create before each pull")
    args = ap.parse_args()
    need_root()
    ensure_bytecode()
    print(machine_line())
    work = tempfile.mkdtemp(prefix="hatoba-bench-pull-", dir=args.base)
    spread_subdirs(work)  # the floor's directories, like hatoba's staging directories
    probe_root = tempfile.mkdtemp(prefix="hatoba-bench-probe-", dir=args.base)  # a plain directory
    reg = Registry(args.base)
    pusher = PrivateDaemon("bench", base=args.base)
    fresh = PrivateDaemon("bench", base=args.base)
    res: dict[str, list[float]] = {"push": [], "pull (fresh)": [], "pull (after rmi)": [], "floor": []}
    try:
        base_tar = args.layer or os.path.join(work, "layer.tar")
        if not args.layer:
            build_layer(base_tar)
        size, entries = layer_stats(base_tar)
        print(f"layer: {size / 1e6:.1f} MB uncompressed, {entries} entries")
        reg.start()
        pusher.start()
        fresh.start()
        refs = []
        for r in range(args.rounds):
            var = os.path.join(work, f"variant-{r}.tar")
            make_variant(base_tar, var, r)
            ref = f"{reg.host}/bench/python:v{r}"
            pusher.hatoba("import", "-c", 'CMD ["python3"]', var, ref, timeout=300)
            os.unlink(var)
            ms, rc, err = timed([HATOBA, "push", ref], env=pusher.env, timeout=300)
            if rc != 0:
                raise RuntimeError(f"push failed: {err.decode(errors='replace')}")
            res["push"].append(ms / 1000)
            refs.append(ref)
            print(f"round {r}: push {ms / 1000:.2f} s", flush=True)
        for r, ref in enumerate(refs):
            blob = reg.blob(layer_digest(ref))
            if r == 0:
                print(f"pushed blob: {os.path.getsize(blob) / 1e6:.1f} MB (gzip)")
            # pull (fresh): the second daemon never had this image
            if args.probe:
                print(f"round {r}: file create {probe(probe_root):.0f} us", flush=True)
            ms, rc, err = timed([HATOBA, "pull", ref], env=fresh.env, timeout=300)
            if rc != 0:
                raise RuntimeError(f"pull failed: {err.decode(errors='replace')}")
            res["pull (fresh)"].append(ms / 1000)
            line = f"round {r}: pull (fresh) {ms / 1000:.2f} s"
            # floor: tar -xzf of the same blob, beside the data root
            dest = tempfile.mkdtemp(prefix="floor-", dir=work)
            t = time.perf_counter()
            subprocess.run(["tar", "-xzf", blob, "-C", dest], check=True)
            res["floor"].append(time.perf_counter() - t)
            line += f", floor tar -xzf {res['floor'][-1]:.2f} s"
            # pull (after rmi): the recipe, on the daemon that pushed it
            pusher.hatoba("rmi", ref)
            ms, rc, err = timed([HATOBA, "pull", ref], env=pusher.env, timeout=300)
            if rc != 0:
                raise RuntimeError(f"pull failed: {err.decode(errors='replace')}")
            res["pull (after rmi)"].append(ms / 1000)
            print(line + f", pull (after rmi) {ms / 1000:.2f} s", flush=True)
        # what was pulled is what was pushed: same image id on both daemons
        for ref in refs:
            a, b = pusher.api("GET", f"/images/{ref}/json")[1], fresh.api("GET", f"/images/{ref}/json")[1]
            assert isinstance(a, dict) and isinstance(b, dict) and a["Id"] == b["Id"], (a, b)
        print(machine_line())
        print(stat_line("push", res["push"], PUSH_TARGET))
        print(stat_line("pull (fresh)", res["pull (fresh)"], PULL_TARGET))
        print(stat_line("pull (after rmi)", res["pull (after rmi)"], PULL_TARGET))
        print(stat_line("floor: tar -xzf of the blob", res["floor"]))
    finally:
        for d in (fresh, pusher):
            d.cleanup()
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(probe_root, ignore_errors=True)


if __name__ == "__main__":
    main()
