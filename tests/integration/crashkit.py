"""Helpers for the crash and private-state tests: a private hatobad that a test may kill -9, and a
checker that the store it leaves behind is consistent (after a restart) and that nothing leaked.

Not a test module: `test_crash.py` and `test_private_state.py` import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def new_daemon(cls: Any, prefix: str = "hatoba-crash-") -> Any:
    """A private hatobad (its own root, socket, data root, exec root, cgroup parent) with busybox."""
    root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    d = cls(root)
    d.start()
    p = d.hatoba("image", "bootstrap", "busybox", timeout=120)
    assert p.returncode == 0, p.stderr
    return d


def destroy_daemon(d: Any) -> None:
    """Tear a private daemon down and remove everything it had, whatever state it is in."""
    try:
        if not d.ping():
            d.start()
        d.remove_all()
    except Exception:  # noqa: BLE001 - best effort, the checks ran before
        pass
    d.stop()
    for m in sorted(d.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    for pid in d.conmons():
        os.kill(pid, signal.SIGKILL)
    runc_root = os.path.join(d.exec_root, "runc")
    if os.path.isdir(runc_root):
        for cid in os.listdir(runc_root):
            subprocess.run(["runc", "--root", runc_root, "delete", "--force", cid], capture_output=True, check=False)
    for pid in procs_in_cgroup_parent(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    for g in sorted(d.cgroups(), key=len, reverse=True):
        try:
            os.rmdir(g)
        except OSError:
            pass
    d.remove_cgroup_parent()
    shutil.rmtree(d.root, ignore_errors=True)


def procs_in_cgroup_parent(d: Any) -> set[int]:
    """Processes in a cgroup below the daemon's cgroup parent (any hierarchy)."""
    want = d.cgroup_parent.rstrip("/") + "/"
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                lines = f.read().splitlines()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(line.split(":", 2)[2].startswith(want) for line in lines if line.count(":") >= 2):
            out.add(int(pid))
    return out


def runc_ids(d: Any) -> dict[str, str]:
    """runc's containers under the daemon's exec root: id → status."""
    root = os.path.join(d.exec_root, "runc")
    if not os.path.isdir(root):
        return {}
    p = subprocess.run(["runc", "--root", root, "list", "--format", "json"], capture_output=True, check=True)
    return {c["id"]: c["status"] for c in json.loads(p.stdout or b"null") or []}


def runc_status(d: Any, cid: str) -> str | None:
    return runc_ids(d).get(cid)


def kill9_and_restart(d: Any) -> None:
    d.kill9()
    d.start()


def blobs(d: Any) -> set[str]:
    path = os.path.join(d.data_root, "content", "blobs", "sha256")
    return {"sha256:" + n for n in os.listdir(path)}


def layer_dirs(d: Any) -> set[str]:
    path = os.path.join(d.data_root, "overlay", "layers")
    return {"sha256:" + n for n in os.listdir(path)}


def check_images(d: Any) -> None:
    """Images list/df answer 200; no blob and no unpacked layer that no image (or container) uses."""
    status, imgs = d.api("GET", "/images/json?all=1")
    assert status == 200, imgs
    status, df = d.api("GET", "/system/df")
    assert status == 200, df
    ids, diff_ids, chains = set(), set(), set()
    for img in imgs:  # type: ignore[union-attr]
        status, doc = d.api("GET", f"/images/{img['Id']}/json")
        assert status == 200, doc
        ids.add(doc["Id"])
        diff_ids.update(doc["RootFS"]["Layers"])
        chains.update(chain_ids(doc["RootFS"]["Layers"]))
    stray = blobs(d) - ids - diff_ids
    assert not stray, f"blobs nothing references: {sorted(stray)}"
    stray = layer_dirs(d) - chains
    assert not stray, f"unpacked layers nothing uses: {sorted(stray)}"
    for sub in ("content/ingest", "overlay/tmp"):
        left = os.listdir(os.path.join(d.data_root, sub))
        assert not left, f"{sub} not emptied: {left}"


def check_runtime_matches(d: Any) -> None:
    """runc state, cgroups, conmon processes and mounts belong to running containers only."""
    running = {cid for cid, c in d.containers().items() if c["State"] in ("running", "paused")}
    for cid, status in runc_ids(d).items():
        assert cid in running, f"runc has {cid[:12]} ({status}) that the daemon does not run"
    cg = {os.path.basename(g) for g in d.cgroups()}
    assert cg <= running, f"cgroups of containers not running: {sorted(x[:12] for x in cg - running)}"
    assert len(d.conmons()) <= len(running), f"stray conmon processes: {sorted(d.conmons())}"
    mounts = {m for m in d.mounts() if not any(r in m for r in running)}
    assert not mounts, f"mounts of containers not running: {sorted(mounts)}"


def check_consistent(d: Any) -> None:
    """After a crash and a restart: every container inspects, starts and is removed; nothing is left."""
    check_runtime_matches(d)
    check_images(d)
    for cid, c in d.containers().items():
        status, doc = d.api("GET", f"/containers/{cid}/json")
        assert status == 200, (cid, doc)
        if c["State"] not in ("running", "paused", "restarting"):
            status, body = d.api("POST", f"/containers/{cid}/start")
            assert status == 204, (cid[:12], c["State"], status, body)
            status, doc = d.api("GET", f"/containers/{cid}/json")
            assert status == 200, doc
        status, body = d.api("DELETE", f"/containers/{cid}?force=1")
        assert status == 204, (cid[:12], status, body)
    assert d.containers() == {}
    deadline = time.time() + 10
    while True:
        left = {"runc": runc_ids(d), "cgroups": d.cgroups(), "conmons": d.conmons(), "mounts": d.mounts(),
                "processes": procs_in_cgroup_parent(d),
                "bundles": os.listdir(os.path.join(d.exec_root, "containers")),
                "container dirs": os.listdir(os.path.join(d.data_root, "containers")),
                "overlay dirs": os.listdir(os.path.join(d.data_root, "overlay", "containers"))}
        left = {k: v for k, v in left.items() if v}
        if not left:
            break
        if time.time() > deadline:
            raise AssertionError(f"left behind after removing every container: {left}")
        time.sleep(0.1)
    check_images(d)
    assert "Traceback" not in d.log_tail(1 << 20), d.log_tail(3000)
