"""`docker commit`: a new image from a container's changes.

As dockerd does it (daemon/commit.go, image.NewChildImage): the running container is paused unless
asked not to be; its upper dir becomes one new layer (none when nothing changed: the history entry is
then an `empty_layer`); the new config is the container's config (or the one the client sent) with
the `--change` instructions applied and the container's config merged in where left empty; the
history gets `{created, author, created_by: the container's Cmd joined by spaces, comment}`; the
image records `container`, `container_config` and `author`, and the image it came from as Parent.

Mount points the runtime creates in the rootfs (/etc/hosts, /etc/hostname, /etc/resolv.conf,
/proc, /sys, /dev…) live in dockerd's separate "init" layer, so they are left out of the new layer.

Crash safety: the pause is the runtime's freeze only, never recorded as the container's state (a
crash mid-commit must not leave a container that looks paused by its user; the start-up
reconciliation thaws a container that is frozen but not paused). A container that is no longer
running when the commit starts is committed without a pause. The layer blob and the image config
are written under a lease (`ImageStore.lease`): a failed commit removes them, a crashed one leaves
them to the collection at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tarfile
import tempfile
import time
from typing import IO, Any

from hatoba import __version__
from hatoba.engine.health import merge_config as merge_healthcheck
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound
from hatoba.golang import rfc3339
from hatoba.images import changes as changes_mod
from hatoba.images import gojson, reference
from hatoba.images.store import ImageStore
from hatoba.runtime.conmon import OCIRuntimeError
from hatoba.storage import layers as layers_mod

log = logging.getLogger(__name__)

# dockerd's init layer (daemon/initlayer): created for every container, never part of a commit
INIT_LAYER_PATHS = {"dev", "dev/pts", "dev/shm", "proc", "sys", ".dockerenv", "etc/resolv.conf", "etc/hosts",
                    "etc/hostname", "dev/console", "etc/mtab"}
CONFIG_KEYS = [k for k, _ in gojson.CONTAINER_CONFIG_FIELDS]


def parse_repo_tag(repo: str, tag: str) -> str | None:
    """httputils.RepoTagReference: the `repo`/`tag` query of POST /commit as one reference (or None)."""
    if not repo:
        return None
    r = reference.parse(repo, default_tag=None)
    if r.digest:
        raise InvalidParameter("cannot commit to digest reference")
    if tag:
        full = f"{r.full_repository}:{tag}"
        reference.parse(full)
        return full
    return f"{r.full_repository}:{r.tag or 'latest'}"


def merge(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """dockerd's commit merge(): fill what the (changed) config leaves empty from the container's."""
    cfg = dict(user)
    if not cfg.get("User"):
        cfg["User"] = image.get("User", "")
    if not cfg.get("ExposedPorts"):
        cfg["ExposedPorts"] = image.get("ExposedPorts")
    elif image.get("ExposedPorts"):
        cfg["ExposedPorts"] = {**image["ExposedPorts"], **cfg["ExposedPorts"]}
    if not cfg.get("Env"):
        cfg["Env"] = image.get("Env")
    else:
        keys = {e.split("=", 1)[0] for e in cfg["Env"]}
        cfg["Env"] = list(cfg["Env"]) + [e for e in image.get("Env") or [] if e.split("=", 1)[0] not in keys]
    labels = dict(cfg.get("Labels") or {})
    for k, v in (image.get("Labels") or {}).items():
        labels.setdefault(k, v)
    cfg["Labels"] = labels
    if not cfg.get("Entrypoint"):
        if not cfg.get("Cmd"):
            cfg["Cmd"] = image.get("Cmd")
            if image.get("ArgsEscaped"):
                cfg["ArgsEscaped"] = image["ArgsEscaped"]
        if cfg.get("Entrypoint") is None:
            cfg["Entrypoint"] = image.get("Entrypoint")
    if image.get("Healthcheck"):
        cfg["Healthcheck"] = merge_healthcheck(cfg.get("Healthcheck"), image["Healthcheck"])
    if not cfg.get("WorkingDir"):
        cfg["WorkingDir"] = image.get("WorkingDir", "")
    if not cfg.get("Volumes"):
        cfg["Volumes"] = image.get("Volumes")
    elif image.get("Volumes"):
        cfg["Volumes"] = {**cfg["Volumes"], **image["Volumes"]}
    if not cfg.get("StopSignal"):
        cfg["StopSignal"] = image.get("StopSignal", "")
    return cfg


def _hidden_paths(snapshots: Any, cid: str) -> set[str]:
    """Init-layer mount points the runtime added to the container's upper dir."""
    try:
        changed = snapshots.changes(cid)
    except NotImplementedError:
        return set()
    return {p.lstrip("/") for p, kind in changed if kind == layers_mod.CHANGE_ADD and p.lstrip("/") in INIT_LAYER_PATHS}


def filter_layer(src: IO[bytes], dst: IO[bytes], hidden: set[str]) -> int:
    """Copy the layer tar `src` to `dst` without `hidden` paths (and their children), nor the
    directories that were in the diff only because of them. Returns how many members were kept."""
    src.seek(0)
    with tarfile.open(fileobj=src, mode="r:") as tf:
        members = tf.getmembers()

        def under_hidden(name: str) -> bool:
            return any(name == h or name.startswith(h + "/") for h in hidden)

        names = [m.name.rstrip("/") for m in members]
        dropped = {n for n in names if under_hidden(n)}
        ancestors = sorted({a for h in hidden for a in _ancestors(h)}, key=lambda a: -a.count("/"))
        for a in ancestors:
            below = [n for n in names if n.startswith(a + "/")]
            if any(under_hidden(n) for n in below) and all(n in dropped for n in below):
                dropped.add(a)
        kept = 0
        with tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as out:
            for m, n in zip(members, names, strict=True):
                if n in dropped:
                    continue
                out.addfile(m, tf.extractfile(m) if m.isreg() else None)
                kept += 1
    return kept


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _count_members(f: IO[bytes]) -> int:
    f.seek(0)
    with tarfile.open(fileobj=f, mode="r:") as tf:
        return len(tf.getmembers())


def _write_layer(images: ImageStore, snapshots: Any, cid: str) -> str | None:
    """The container's changes as a layer in the content store: its diff id, None when empty."""
    tmpdir = os.path.join(images.content.root, "ingest")
    with tempfile.TemporaryFile(dir=tmpdir) as raw:
        try:
            snapshots.diff(cid, raw)
        except NotImplementedError:
            raise HatobaError(f"commit is not supported with the {snapshots.driver} storage driver") from None
        hidden = _hidden_paths(snapshots, cid)
        if hidden:
            with tempfile.TemporaryFile(dir=tmpdir) as filtered:
                if filter_layer(raw, filtered, hidden) == 0:
                    return None
                filtered.seek(0)
                diff_id = images.add_layer(filtered)
        else:
            if _count_members(raw) == 0:
                return None
            raw.seek(0)
            diff_id = images.add_layer(raw)
    return diff_id


async def commit(containers: Any, images: ImageStore, name: str, *, ref: str | None = None, author: str = "",
                 comment: str = "", changes: list[str] | None = None, pause: bool = True,
                 config: dict[str, Any] | None = None) -> str:
    """Commit container `name`; returns the new image id. `ref` is an already validated reference."""
    c = containers.get(name)
    if c.state.get("Dead"):
        raise Conflict(f"You cannot commit container {c.id} which is Dead")
    if c.removing:
        raise Conflict(f"You cannot commit container {c.id} which is being removed")
    lines = [ln for ch in changes or [] for ln in ch.split("\n") if ln.strip()]
    base = config if config else c.config
    new_cfg = merge(changes_mod.apply({k: base.get(k) for k in CONFIG_KEYS if k in base}, lines), c.config)
    parent = images.images.get(c.image_id)
    if parent is None:
        raise NotFound(f"No such image: {c.image_id}")
    with images.lease(f"commit {c.id[:12]}"):
        frozen = await _freeze(containers, c) if pause else False
        try:
            diff_id = await asyncio.to_thread(_write_layer, images, containers.snapshots, c.id)
        finally:
            if frozen:
                await _thaw(containers, c)
        img = await asyncio.to_thread(_create, images, parent.config, c, new_cfg, diff_id, author, comment)
    images.set_parent(img.id, parent.id)
    fam = None
    if ref:
        fam = images.tag(img.id, ref)
        containers.events.emit("image", "tag", img.id, {"name": fam})
    containers.events.emit("container", "commit", c.id,
                           c.event_attrs(comment=comment, imageID=img.id, imageRef=fam or ""))
    return img.id


async def _freeze(containers: Any, c: Any) -> bool:
    """Freeze a running container for the commit (dockerd's pause, with its events, but not recorded
    as the container's state); False when there is nothing to freeze: paused by its user, or no
    longer running (it exited as the commit started)."""
    if not c.running or c.state.get("Paused"):
        return False
    try:
        await containers.rt(c).pause(c.id)
    except OCIRuntimeError as e:
        if e.not_running or e.not_found or not c.running:
            return False
        raise HatobaError(f"Error pausing container {c.id}: {e.message}") from None
    containers.events.emit("container", "pause", c.id, c.event_attrs())
    return True


async def _thaw(containers: Any, c: Any) -> None:
    try:
        await containers.rt(c).resume(c.id)
    except OCIRuntimeError as e:
        if not (e.not_running or e.not_found):
            log.warning("unpause of %s after commit failed: %s", c.id[:12], e.message)
        return
    containers.events.emit("container", "unpause", c.id, c.event_attrs())


def _create(images: ImageStore, parent_cfg: dict[str, Any], c: Any, new_cfg: dict[str, Any], diff_id: str | None,
            author: str, comment: str) -> Any:
    now = rfc3339(time.time())
    rootfs = dict(parent_cfg.get("rootfs") or {"type": "layers", "diff_ids": []})
    diff_ids = list(rootfs.get("diff_ids") or [])
    if diff_id:
        diff_ids.append(diff_id)
    hist = {"created": now, "author": author, "created_by": " ".join(c.config.get("Cmd") or []),
            "comment": comment, "empty_layer": diff_id is None}
    doc = {
        "created": now, "container": c.id, "container_config": c.config, "docker_version": __version__,
        "author": author, "config": new_cfg, "architecture": parent_cfg.get("architecture") or "amd64",
        "variant": parent_cfg.get("variant", ""), "os": parent_cfg.get("os") or "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": list(parent_cfg.get("history") or []) + [hist],
    }
    for k in ("os.version", "os.features"):
        if parent_cfg.get(k):
            doc[k] = parent_cfg[k]
    raw = gojson.image_config(doc)
    return images.create(json.loads(raw), raw=raw)
