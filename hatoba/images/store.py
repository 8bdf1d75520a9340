"""Local images: records, tags, layers, and the Engine API views of them.

An image is its config blob (its id is the config's sha256) plus the layers its
`rootfs.diff_ids` name. Layer tars are kept uncompressed in the content store under their
diff id and unpacked once per chain id by the snapshotter; images sharing a layer share it.
A layer pulled from a registry is kept only as its compressed blob instead (`distmeta` maps its
diff id to that blob): read layers through `open_layer`/`layer_size`, never the content store.

Blobs and unpacked layers are written under a lease (`lease`, see `hatoba.storage.leases`): an
operation holds what it writes until the image record that references it is committed.
`gc_layers` removes what no image, container (`chains_in_use`) or live lease uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from hatoba.db import Database
from hatoba.errors import Conflict, InvalidParameter, NotFound
from hatoba.golang import rfc3339, unix_seconds
from hatoba.images import reference
from hatoba.images.distmeta import DistributionMetadata
from hatoba.schema import image as image_schema
from hatoba.storage import leases as leases_mod
from hatoba.storage.compression import CompressionError, Decompressing
from hatoba.storage.content import ContentStore
from hatoba.storage.layers import LayerError
from hatoba.storage.leases import CONTENT, SNAPSHOT, Lease, Leases
from hatoba.storage.snapshots import Snapshotter, chain_ids

_EPOCH_ZERO = "0001-01-01T00:00:00Z"


class Image:
    """One image record (config parsed, plus bookkeeping)."""

    __slots__ = ("id", "config", "size", "last_tag_time", "parent")

    def __init__(self, id: str, config: dict, size: int, last_tag_time: str = _EPOCH_ZERO, parent: str = ""):
        self.id = id
        self.config = config
        self.size = size
        self.last_tag_time = last_tag_time
        self.parent = parent  # the image a commit was made from (docker's Parent), "" if none

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids") or [])

    @property
    def created(self) -> float:
        return unix_seconds(self.config.get("created"))

    def doc(self) -> dict:
        doc = {"id": self.id, "size": self.size, "last_tag_time": self.last_tag_time}
        if self.parent:
            doc["parent"] = self.parent
        return doc


class ImageStore:
    """Images, tags and layers on disk and in the metadata DB."""

    def __init__(self, db: Database, content: ContentStore, snapshots: Snapshotter):
        self.db = db
        self.content = content
        self.snapshots = snapshots
        self.dist = DistributionMetadata(db)
        self.leases = Leases(db)
        # chain ids containers are made of (the engine sets it): kept even when their image is gone
        self.chains_in_use: Callable[[], Iterable[str]] = lambda: ()
        self._lock = threading.RLock()
        self.images: dict[str, Image] = {}
        self.tags: dict[str, str] = {}
        for doc in db.all("images"):
            try:
                cfg = json.loads(content.read(doc["id"]))
            except (OSError, ValueError):
                continue
            self.images[doc["id"]] = Image(doc["id"], image_schema.sanitize(cfg), doc.get("size", 0),
                                           doc.get("last_tag_time", _EPOCH_ZERO), doc.get("parent", ""))
        for ref, iid in db.rows("SELECT ref, image_id FROM tags"):
            if iid in self.images:
                self.tags[ref] = iid

    # ---- lookup -------------------------------------------------------------------------------

    def get(self, name: str) -> Image:
        """Resolve a tag, a full or short id; NotFound with Docker's text otherwise."""
        img = self.lookup(name)
        if img is None:
            raise NotFound(f"No such image: {name}")
        return img

    def lookup(self, name: str) -> Image | None:
        with self._lock:
            if name.startswith("sha256:") and name in self.images:
                return self.images[name]
            hexpart = name[7:] if name.startswith("sha256:") else name
            if len(hexpart) == 64 and ("sha256:" + hexpart) in self.images:
                return self.images["sha256:" + hexpart]
            try:
                ref = reference.parse(name)
            except InvalidParameter:
                ref = None
            if ref is not None and not ref.digest:
                iid = self.tags.get(ref.familiar())
                if iid:
                    return self.images[iid]
            if 1 <= len(hexpart) < 64 and all(c in "0123456789abcdef" for c in hexpart):
                found = [i for i in self.images if i[7:].startswith(hexpart)]
                if len(found) == 1:
                    return self.images[found[0]]
            return None

    def tags_of(self, iid: str) -> list[str]:
        with self._lock:
            return sorted(r for r, i in self.tags.items() if i == iid)

    # ---- leases -------------------------------------------------------------------------------

    @contextmanager
    def lease(self, what: str, *, keep: bool = False) -> Iterator[Lease]:
        """Hold what the block stores (and what it marks with `lease.content`/`lease.snapshot`) until
        it ends; then, unless `keep`, remove what of it no image ended up using (the blobs of a failed
        commit or a partial load). A pull keeps its downloaded layers for a retry (until the next
        collection: an image removal or the daemon's start)."""
        with self.leases.lease(what) as lease:
            try:
                yield lease
            finally:
                if not keep:
                    self.leases.release(lease)
                    self.gc_layers(only=lease.resources)

    @contextmanager
    def _leased(self, what: str) -> Iterator[Lease]:
        """The current operation's lease, or one for this call only (which keeps what it stored)."""
        lease = leases_mod.current()
        if lease is not None and not lease.released:
            yield lease
        else:
            with self.leases.lease(what) as lease:
                yield lease

    # ---- writing ------------------------------------------------------------------------------

    def add_layer(self, fileobj: IO[bytes]) -> str:
        """Store a layer tar (plain or gzip) and unpack it; returns its diff id."""
        with self._leased("add layer") as lease:
            digest, _ = self.content.ingest(_decompressed(fileobj), claim=lease.content)
        return digest

    def ensure_layers(self, diff_ids: list[str]) -> list[str]:
        """Unpack every layer of a chain that is not unpacked yet; returns the chain ids."""
        chains = chain_ids(diff_ids)
        with self._leased("unpack layers") as lease:
            lease.snapshot(*chains)
            self._unpack(diff_ids, chains)
        return chains

    def _unpack(self, diff_ids: list[str], chains: list[str]) -> None:
        parent = None
        for diff_id, chain in zip(diff_ids, chains, strict=True):
            if not self.snapshots.has_layer(chain):
                with self.open_layer(diff_id) as f:
                    self.snapshots.add_layer(chain, parent, f)
            parent = chain

    def open_layer(self, diff_id: str) -> IO[bytes]:
        """The layer's uncompressed tar: its plain blob, or a compressed blob it was pulled/pushed as."""
        if self.content.has(diff_id):
            return self.content.open(diff_id)
        for b in self.dist.blobs_for(diff_id):
            if self.content.has(b.digest):
                return _Closing(Decompressing(raw := self.content.open(b.digest)), raw)
        return self.content.open(diff_id)  # raises BlobNotFound

    def layer_size(self, diff_id: str) -> int:
        """Size of the layer's uncompressed tar (0 when unknown)."""
        if self.content.has(diff_id):
            return self.content.size(diff_id)
        return next((b.diff_size for b in self.dist.blobs_for(diff_id)), 0)

    def create(self, config: dict, tag: str | None = None, raw: bytes | None = None) -> Image:
        """Record an image from its config (its layers must be in the content store).

        `raw` is the config exactly as a registry or archive had it (the image id is its digest)."""
        raw = raw if raw is not None else json.dumps(config, separators=(",", ":")).encode()
        iid = "sha256:" + hashlib.sha256(raw).hexdigest()
        config = image_schema.sanitize(config)  # typed as Go reads it: the views can rely on it
        diff_ids = config.get("rootfs", {}).get("diff_ids") or []
        with self._leased("create image") as lease:
            lease.content(*diff_ids)
            self.ensure_layers(diff_ids)
            self.content.put_bytes(raw, claim=lease.content)
            size = sum(self.layer_size(d) for d in diff_ids)
            with self._lock:
                img = self.images.get(iid)
                if img is None:
                    img = Image(iid, config, size)
                    with self.db.tx() as c:
                        c.execute("INSERT OR REPLACE INTO images (id, doc) VALUES (?,?)",
                                  (iid, json.dumps(img.doc())))
                    self.images[iid] = img
        if tag:
            self.tag(iid, tag)
        return img

    def set_parent(self, iid: str, parent: str) -> None:
        """Record the image `iid` was committed from (shown as Parent; history walks it)."""
        with self._lock:
            img = self.images[iid]
            img.parent = parent
            with self.db.tx() as c:
                c.execute("UPDATE images SET doc=? WHERE id=?", (json.dumps(img.doc()), img.id))

    def parent_of(self, img: Image) -> str:
        """The parent id while that image still exists, else ""."""
        return img.parent if img.parent and img.parent in self.images else ""

    def tag(self, name: str, ref: str, *, touch: bool = True) -> str:
        """Point `ref` at the image; `touch` updates Metadata.LastTagTime (not done by `load`)."""
        img = self.get(name)
        r = reference.parse(ref)
        if r.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        fam = r.familiar()
        with self._lock:
            if touch:
                img.last_tag_time = rfc3339(time.time())
            with self.db.tx() as c:
                c.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?,?)", (fam, img.id))
                c.execute("UPDATE images SET doc=? WHERE id=?", (json.dumps(img.doc()), img.id))
            self.tags[fam] = img.id
        return fam

    def delete(self, name: str, *, force: bool, users: Callable[[str], list[tuple[str, bool]]]) -> list[dict]:
        """`docker rmi`: untag, or delete when no tag is left. users(id) → [(container id, running)]."""
        img = self.get(name)
        out: list[dict] = []
        tags = self.tags_of(img.id)
        by_ref = False
        try:
            r = reference.parse(name)
            by_ref = not reference.is_id(name) and r.familiar() in self.tags
        except InvalidParameter:
            pass
        using = users(img.id)
        if by_ref and (len(tags) > 1 or force and not using):
            fam = reference.parse(name).familiar()
            if len(tags) > 1:
                self._untag(fam)
                return [{"Untagged": fam}]
        if using:
            cid, running = using[0]
            if running or not force:
                what = "running" if running else "stopped"
                if by_ref and not running:
                    raise Conflict(f"conflict: unable to remove repository reference \"{name}\" (must force) - container {cid[:12]} is using its referenced image {img.id[7:19]}")
                raise Conflict(f"conflict: unable to delete {img.id[7:19]} (cannot be forced) - image is being used by {what} container {cid[:12]}" if running else
                               f"conflict: unable to delete {img.id[7:19]} (must be forced) - image is being used by stopped container {cid[:12]}")
        if any(i.parent == img.id for i in self.images.values()):
            # dockerd keeps a parent image while children exist: a reference is only untagged
            if by_ref:
                fam = reference.parse(name).familiar()
                self._untag(fam)
                return [{"Untagged": fam}]
            raise Conflict(f"conflict: unable to delete {img.id[7:19]} (cannot be forced) - image has dependent "
                           "child images")
        if not by_ref and len(tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {img.id[7:19]} (must be forced) - image is referenced in multiple repositories")
        for t in tags:
            self._untag(t)
            out.append({"Untagged": t})
        self._remove(img)
        out.append({"Deleted": img.id})
        return out

    def _untag(self, fam: str) -> None:
        with self._lock:
            with self.db.tx() as c:
                c.execute("DELETE FROM tags WHERE ref=?", (fam,))
            self.tags.pop(fam, None)

    def _remove(self, img: Image) -> None:
        with self._lock:
            with self.db.tx() as c:
                c.execute("DELETE FROM images WHERE id=?", (img.id,))
            del self.images[img.id]
            self.dist.forget_image(img.id)
            self.content.delete(img.id)
            self.gc_layers()

    def gc_layers(self, only: dict[str, set[str]] | None = None) -> tuple[int, int]:
        """Remove unpacked layers and blobs that no image, no container and no live lease uses: all
        of them, or of `only` ({CONTENT: digests, SNAPSHOT: chain ids}, what an ended lease held).
        Returns (blobs, layers) removed."""
        with self._lock, self.leases.lock:
            held = self.leases.held(CONTENT)
            keep_chains = set(self.chains_in_use()) | self.leases.held(SNAPSHOT)
            keep_blobs = set(self.images) | held
            for img in self.images.values():
                keep_chains.update(chain_ids(img.diff_ids))
                keep_blobs.update(img.diff_ids)
            for b in self.dist.all_blobs():
                if b.diff_id in keep_blobs or b.digest in held:
                    keep_blobs.add(b.digest)
                elif only is None or b.digest in only.get(CONTENT, ()):
                    self.dist.forget_blob(b.digest)
            if only is None:
                chains, blobs = list(self.snapshots.layers()), list(self.content.list())
            else:
                chains = [c for c in only.get(SNAPSHOT, ()) if self.snapshots.has_layer(c)]
                blobs = [d for d in only.get(CONTENT, ()) if self.content.has(d)]
            n_layers = n_blobs = 0
            for chain in chains:
                if chain not in keep_chains and self.snapshots.remove_layer(chain):
                    n_layers += 1
            for d in blobs:
                if d not in keep_blobs and self.content.delete(d):
                    n_blobs += 1
            return n_blobs, n_layers

    def layer_dirs(self, img: Image) -> list[str]:
        """Unpacked layer directories, bottom first."""
        return [self.snapshots.layer_path(c) for c in self.ensure_layers(img.diff_ids)]

    # ---- API views ----------------------------------------------------------------------------

    def summary(self, img: Image, containers: int = -1) -> dict[str, Any]:
        cfg = img.config.get("config") or {}
        return {
            "Containers": containers, "Created": int(img.created), "Id": img.id,
            "Labels": cfg.get("Labels") or None, "ParentId": self.parent_of(img), "RepoDigests": self.dist.repo_digests(img.id) or None,
            "RepoTags": self.tags_of(img.id) or None, "SharedSize": -1, "Size": img.size, "VirtualSize": img.size,
        }

    def inspect(self, img: Image) -> dict[str, Any]:
        c = img.config
        dirs = []
        try:
            chains = chain_ids(img.diff_ids)
        except ValueError:  # a diff id that is not a digest (stored before configs were validated)
            chains = []
        for x in chains:
            try:
                dirs.append(self.snapshots.layer_path(x))
            except KeyError:  # a layer missing on disk: inspect still answers
                continue
        return {
            "Id": img.id, "RepoTags": self.tags_of(img.id), "RepoDigests": self.dist.repo_digests(img.id),
            "Parent": self.parent_of(img), "Comment": _comment(c), "Created": c.get("created") or _EPOCH_ZERO,
            "Container": c.get("container", ""), "ContainerConfig": _config_view(c.get("container_config") or {}),
            "DockerVersion": c.get("docker_version", ""), "Author": c.get("author", ""),
            "Config": _config_view(c.get("config") or {}), "Architecture": c.get("architecture", "amd64"),
            "Os": c.get("os", "linux"), "Size": img.size, "VirtualSize": img.size,
            "GraphDriver": {"Data": {"LowerDir": ":".join(reversed(dirs[:-1])) or None,
                                     "MergedDir": None, "UpperDir": dirs[-1] if dirs else None, "WorkDir": None},
                            "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": img.last_tag_time},
        }

    def history(self, img: Image) -> list[dict[str, Any]]:
        hist = img.config.get("history") or []
        diffs = img.diff_ids
        out = []
        li = 0
        for h in hist:
            empty = h.get("empty_layer", False)
            size = 0
            if not empty and li < len(diffs):
                size = self.layer_size(diffs[li])
                li += 1
            out.append({"Comment": h.get("comment", ""), "Created": int(unix_seconds(h.get("created"))),
                        "CreatedBy": h.get("created_by", ""), "Id": "<missing>", "Size": size, "Tags": None})
        out.reverse()
        # dockerd fills in the ids (and tags) of the images along the Parent chain, one per entry
        cur: Image | None = img
        for item in out:
            if cur is None:
                break
            item["Id"] = cur.id
            item["Tags"] = self.tags_of(cur.id) or None
            cur = self.images.get(cur.parent) if cur.parent else None
        return out


class _Closing:
    """A decompressing reader that closes the underlying blob file with it."""

    def __init__(self, reader: IO[bytes], raw: IO[bytes]):
        self._r, self._raw = reader, raw

    def read(self, n: int = -1) -> bytes:
        return self._r.read(n)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _comment(config: dict) -> str:
    """Inspect's Comment: the config's, else the last history entry's (an import message, a commit -m)."""
    comment = config.get("comment") or ""
    hist = config.get("history") or []
    if not comment and hist:
        comment = hist[-1].get("comment") or ""
    return comment


def _config_view(cfg: dict) -> dict:
    keys = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
            "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
            "OnBuild", "Labels"]
    defaults: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                                "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                                "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                                "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
    out = {k: cfg.get(k, defaults[k]) for k in keys}
    for k in ("ExposedPorts", "StopSignal", "Healthcheck", "ArgsEscaped", "Shell"):
        if k in cfg:
            out[k] = cfg[k]
    return out


def _decompressed(f: IO[bytes]) -> Iterable[bytes]:
    """The uncompressed chunks of a plain or compressed layer tar (a CompressionError is the client's
    data: LayerError)."""
    try:
        yield from Decompressing(f).chunks()
    except CompressionError as e:
        raise LayerError(str(e)) from None


def default_config(diff_ids: list[str], *, cmd: list[str] | None, env: list[str] | None = None,
                   created: str | None = None, created_by: str = "", comment: str = "",
                   extra: dict | None = None) -> dict:
    """A minimal OCI/Docker image config for a rootfs made of the given layers."""
    created = created or rfc3339(time.time())
    cfg: dict[str, Any] = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                           "Cmd": cmd}
    if extra:
        cfg.update(extra)
    return {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux", "created": created, "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": created_by, **({"comment": comment} if comment else {})}],
    }
