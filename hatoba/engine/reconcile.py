"""Start-up reconciliation: make the runtime's state agree with the database before live-restore.

A hatobad killed in the middle of things leaves work half-done outside its database: `runc init`
processes of containers whose start never completed (waiting on their exec fifo, their conmon
perhaps gone with the daemon), their cgroups, mounted overlays, conmon processes, a container
frozen by a commit, bundles and directories of containers whose create never got recorded, blobs
and unpacked layers an operation wrote but never recorded an image for. `reconcile` runs once at
daemon start, before `Containers.restore` re-adopts anything (and before the API serves), while
the data-root lock guarantees that no other daemon owns any of it:

- A container the DB says is running and whose conmon still runs (`Runtime.conmon_alive`) is
  kept for live-restore; if runc shows it paused but the DB does not (the freeze of an interrupted
  commit), it is thawed. One the DB says is running whose conmon is gone is left to `restore`
  (it reaps it with its exit code).
- Everything else the runtime has is an orphan: runc state of a container the DB says is not
  running, or that the DB does not know (`runc delete --force`, after a thaw); conmon processes
  whose command line names a bundle under our exec root (killed by pid after checking their
  command line again, through a pidfd); cgroups below the daemon's cgroup parents of containers
  this daemon knows (its DB, runc state, directories; a parent such as the default /hatoba may be
  shared with another daemon, whose containers are not ours) are thawed, emptied and removed;
  overlay mounts are unmounted. Containers whose start was interrupted stay in the DB as
  Created/Exited containers (Pid 0, not paused) that `start` and `rm -f` handle.
- Directories of containers the DB does not know (data root, overlay, exec root, exit files) are
  removed, and an overlay probe the snapshotter was running (mounted) when the daemon died.
- Leases of the previous run are expired and blobs/unpacked layers that no image, container or
  live lease uses are collected (`ImageStore.gc_layers`); from then on the image store keeps the
  layers of existing containers (`ImageStore.chains_in_use`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from hatoba.runtime import cgroups
from hatoba.runtime.conmon import OCIRuntimeError, Runtime
from hatoba.storage.mount import mountpoints, umount

if TYPE_CHECKING:
    from hatoba.engine.container import Manager

log = logging.getLogger("hatoba.engine")

_ID = re.compile(r"[0-9a-f]{64}")
CONMON_GRACE = 2.0  # seconds an orphan conmon gets to exit by itself once its container is gone


async def reconcile(containers: Manager) -> None:
    """Kill and remove what the runtime has that the database does not run; see the module docstring."""
    docs = {d["Id"]: d for d in containers.db.all("containers")}
    live: dict[str, int] = {}   # DB-running containers whose conmon survived → conmon pid
    reaped: set[str] = set()    # DB-running containers whose conmon is gone: restore reaps them
    for cid, doc in docs.items():
        if doc["State"].get("Running"):
            pid = Runtime.conmon_alive(containers.bundle(cid))
            if pid:
                live[cid] = pid
            else:
                reaped.add(cid)
    keep = set(live) | reaped
    orphans = await _runtime_state(containers, docs, live, reaped)
    orphans |= await _conmons(containers, live)
    # a cgroup parent may be shared with another daemon (the default /hatoba): only ids this daemon
    # knows (its DB, runc state or directories under its roots) are its own
    ours = set(docs) | orphans
    for d in (containers.exec_root, containers.data_root, containers.snapshots.root):
        ours |= _ids_in(os.path.join(d, "containers"))
    orphans |= await asyncio.to_thread(_cgroups, containers, docs, keep, ours)
    orphans |= await asyncio.to_thread(_storage, containers, docs, keep)
    for cid in sorted(orphans):
        log.info("reconcile: removed what was left of %s%s", cid[:12], "" if cid in docs else " (unknown)")
    _fix_records(containers, docs, keep)
    await asyncio.to_thread(_collect, containers, docs)


# ---- runc ------------------------------------------------------------------------------------------


def _runtimes(containers: Manager, docs: dict[str, dict]) -> list[Runtime]:
    """The runtime drivers whose state roots may hold our containers (one per runtime name)."""
    names = {containers.default_runtime}
    names.update((d.get("HostConfig") or {}).get("Runtime") or containers.default_runtime for d in docs.values())
    with contextlib.suppress(FileNotFoundError):
        for e in os.scandir(containers.exec_root):
            if e.is_dir(follow_symlinks=False) and e.name not in ("containers", "exits") and any(
                    _ID.fullmatch(n) for n in os.listdir(e.path)):
                names.add(e.name)
    out: dict[str, Runtime] = {}
    for name in sorted(names):
        rt = containers.rt(SimpleNamespace(host_config={"Runtime": name}))  # type: ignore[arg-type]
        out.setdefault(rt.runc_root, rt)
    return list(out.values())


async def _runtime_state(containers: Manager, docs: dict[str, dict], live: dict[str, int],
                         reaped: set[str]) -> set[str]:
    orphans = set()
    for rt in _runtimes(containers, docs):
        try:
            ids = [n for n in os.listdir(rt.runc_root) if _ID.fullmatch(n)]
        except FileNotFoundError:
            continue
        for cid in ids:
            try:
                state = await rt.state(cid)
            except (OCIRuntimeError, ValueError) as e:
                log.warning("reconcile: runc state %s: %s", cid[:12], e)
                state = {"status": "unknown"}
            if state is None:
                continue
            status = state.get("status", "")
            doc = docs.get(cid)
            if cid in live:
                if status == "paused" and doc and not doc["State"].get("Paused"):
                    log.info("reconcile: thawing %s, frozen by an interrupted commit", cid[:12])
                    await _try(rt.resume(cid), "resume", cid)
                elif status == "running" and doc and doc["State"].get("Paused"):
                    doc["State"].update({"Paused": False, "Status": "running"})
                    containers.db.put_container(cid, doc["Name"], doc)
                continue
            if cid in reaped:
                if status == "paused":
                    await _try(rt.resume(cid), "resume", cid)
                continue
            if status == "paused":
                await _try(rt.resume(cid), "resume", cid)
            await _try(rt.delete(cid, force=True), "delete", cid)
            orphans.add(cid)
    return orphans


async def _try(aw: Any, what: str, cid: str) -> None:
    try:
        await aw
    except OCIRuntimeError as e:
        if not (e.not_found or e.not_running):
            log.warning("reconcile: runc %s %s: %s", what, cid[:12], e.message)


# ---- conmon ----------------------------------------------------------------------------------------


def _conmon_argv(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if state == b"Z" or not argv or b"conmon" not in os.path.basename(argv[0]):
        return None
    return argv


def _ours(argv: list[bytes], containers_dir: bytes) -> tuple[str, str] | None:
    """(container id, bundle) when this conmon's bundle (-b) is one of ours: a container's bundle or
    one of its exec dirs under `<exec-root>/containers`."""
    try:
        bundle = argv[argv.index(b"-b") + 1]
    except (ValueError, IndexError):
        return None
    rel = os.path.relpath(os.path.normpath(bundle), containers_dir).split(b"/")
    if rel[0] == b".." or not _ID.fullmatch(rel[0].decode(errors="replace")):
        return None
    if len(rel) == 1 or (len(rel) == 3 and rel[1] == b"exec"):
        return rel[0].decode(), bundle.decode(errors="replace")
    return None


def _find_conmons(exec_root: str) -> dict[int, tuple[str, str, list[bytes]]]:
    containers_dir = os.fsencode(os.path.join(os.path.realpath(exec_root), "containers"))
    plain = os.fsencode(os.path.join(exec_root, "containers"))
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = _conmon_argv(int(name))
        if argv is None:
            continue
        found = _ours(argv, containers_dir) or (_ours(argv, plain) if plain != containers_dir else None)
        if found:
            out[int(name)] = (*found, argv)
    return out


def _kill_verified(pid: int, argv: list[bytes]) -> bool:
    """SIGKILL `pid` if it still is the process with this command line (checked through a pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if _conmon_argv(pid) != argv:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


async def _conmons(containers: Manager, live: dict[str, int]) -> set[str]:
    """Orphan conmons (neither a live container's nor one of its execs'): given a moment to exit
    now that their container is gone, then killed."""
    found = await asyncio.to_thread(_find_conmons, containers.exec_root)
    orphans = {pid: v for pid, v in found.items()
               if not (v[0] in live and (live[v[0]] == pid or v[1] != containers.bundle(v[0])))}
    deadline = time.monotonic() + CONMON_GRACE
    while orphans and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        orphans = {pid: v for pid, v in orphans.items() if _conmon_argv(pid) == v[2]}
    for pid, (cid, bundle, argv) in orphans.items():
        if _kill_verified(pid, argv):
            log.info("reconcile: killed orphan conmon %d of %s (%s)", pid, cid[:12], bundle)
    return {v[0] for v in found.values() if v[0] not in live}


# ---- cgroups and storage ---------------------------------------------------------------------------


def _cgroup_path(parent: str, cid: str) -> str:
    parent = parent.rstrip("/")
    return f"{parent if parent.startswith('/') else '/' + parent}/{cid}"


def _cgroups(containers: Manager, docs: dict[str, dict], keep: set[str], ours: set[str]) -> set[str]:
    parents = {containers.cgroup_parent}
    parents.update(p for d in docs.values() if (p := (d.get("HostConfig") or {}).get("CgroupParent")))
    orphans = set()
    for parent in parents:
        for cid in cgroups.child_ids(parent):
            if cid in keep or cid not in ours:
                continue
            path = _cgroup_path(parent, cid)
            cgroups.thaw(path)
            for _ in range(50):
                procs = cgroups.pids(path)
                if not procs:
                    break
                for pid in procs:  # in a cgroup below our parent: ours
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.02)
            if not cgroups.remove_cgroup(path, retries=50, delay=0.02):
                log.warning("reconcile: cannot remove cgroup %s", path)
            orphans.add(cid)
    return orphans


def _storage(containers: Manager, docs: dict[str, dict], keep: set[str]) -> set[str]:
    snaps = containers.snapshots
    orphans = set()
    with os.scandir(snaps.root) as it:  # the overlay probe of a daemon killed while it ran
        probes = [e.path for e in it if e.name.startswith(".overlay-probe-") and e.is_dir(follow_symlinks=False)]
    for probe in probes:
        real = os.path.realpath(probe)
        for mp in sorted((m for m in mountpoints() if m == real or m.startswith(real + "/")), key=len, reverse=True):
            umount(mp, detach=True)
        shutil.rmtree(probe, ignore_errors=True)
    overlay = os.path.join(snaps.root, "containers")
    for cid in _ids_in(overlay):
        if cid not in docs:
            try:
                snaps.remove(cid)
            except OSError as e:
                log.warning("reconcile: cannot remove the rootfs of %s: %s", cid[:12], e)
            orphans.add(cid)
        elif cid not in keep and snaps.is_mounted(cid):
            snaps.unmount(cid)
            orphans.add(cid)
    for base in (os.path.join(containers.data_root, "containers"), os.path.join(containers.exec_root, "containers")):
        for cid in _ids_in(base):
            if cid not in docs:
                shutil.rmtree(os.path.join(base, cid), ignore_errors=True)
                orphans.add(cid)
    exits = os.path.join(containers.exec_root, "exits")
    for cid in _ids_in(exits, dirs=False):
        if cid not in docs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(exits, cid))
    return orphans


def _ids_in(path: str, dirs: bool = True) -> set[str]:
    try:
        with os.scandir(path) as it:
            return {e.name for e in it if _ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False) == dirs}
    except FileNotFoundError:
        return set()


def _fix_records(containers: Manager, docs: dict[str, dict], keep: set[str]) -> None:
    """A container whose start was interrupted: not running, no pid, not paused."""
    for cid, doc in docs.items():
        st = doc["State"]
        if cid in keep or st.get("Running") or not (st.get("Paused") or st.get("Pid")):
            continue
        st.update({"Paused": False, "Pid": 0})
        if st.get("Status") in ("running", "paused"):
            st["Status"] = "exited" if doc.get("HasBeenStarted") else "created"
        containers.db.put_container(cid, doc["Name"], doc)


def _collect(containers: Manager, docs: dict[str, dict]) -> None:
    images = containers.images
    for lease in images.leases.expire_all():
        held = ", ".join(f"{len(v)} {k}" for k, v in lease["resources"].items() if v) or "nothing"
        log.info("reconcile: %r was interrupted (held %s)", lease.get("what"), held)
    doc_chains = {ch for d in docs.values() for ch in d.get("Chain") or []}
    images.chains_in_use = lambda: doc_chains
    blobs, layers = images.gc_layers()
    if blobs or layers:
        log.info("reconcile: collected %d blobs and %d unpacked layers nothing uses", blobs, layers)
    images.chains_in_use = lambda: {ch for c in containers.by_id.values() for ch in c.chain}
