"""Image archives: `docker save` / `docker load` (docker-archive) and OCI image layouts.

`save` writes the docker-archive layout dockerd 20.10 writes, byte for byte where it matters (the
v1 layer ids are the same digests dockerd computes, so an image saved by hatoba and by docker gives
the same member names)::

    <v1 layer id>/VERSION, json, layer.tar   one directory per layer (a repeated layer is a symlink)
    <config hex>.json                         the image config, exactly as stored (its digest is the id)
    manifest.json                             [{"Config", "RepoTags", "Layers"}]
    repositories                              {"name": {"tag": "<top v1 layer id>"}}

`save(..., fmt="oci")` writes what newer dockerd writes instead: the same `manifest.json` and
`repositories` next to an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), which
both `docker load` and OCI tools (`skopeo copy oci-archive:`) read.

`load` reads either layout from a tar stream (itself possibly gzip/bzip2/xz-compressed); layers may
be plain or gzip (what `ImageStore.add_layer` reads). Archive members are never extracted by name: small files are read into memory,
large ones go straight into the content store, and layers are unpacked by the snapshotter's
`apply_layer`, which refuses path escapes. Member names that are absolute or climb out with `..`,
and symlinks that point outside the archive, are refused before anything is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from hatoba.errors import InvalidParameter, NotFound
from hatoba.golang import unix_seconds
from hatoba.humanize import progress_string
from hatoba.images import gojson, mediatypes, reference
from hatoba.images.store import Image, ImageStore
from hatoba.schema import image as image_schema
from hatoba.storage.content import InvalidDigest, parse_digest
from hatoba.storage.layers import LayerError
from hatoba.storage.leases import Lease
from hatoba.storage.snapshots import chain_ids

Emit = Callable[[dict[str, Any]], None]

MANIFEST = "manifest.json"
REPOSITORIES = "repositories"
OCI_LAYOUT = "oci-layout"
OCI_INDEX = "index.json"
OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}'

ANN_REF_NAME = "org.opencontainers.image.ref.name"
ANN_IMAGE_NAME = "io.containerd.image.name"

_SMALL = 1 << 20          # members up to this size are kept in memory while reading an archive
_MEMORY_CAP = 64 << 20    # ... up to this much in total; the rest goes to the content store
_MAX_LINKS = 16


class ArchiveError(InvalidParameter):
    """The archive is malformed, inconsistent or unsafe."""


# ---------------------------------------------------------------------------------------------------------
# save


def resolve(store: ImageStore, names: list[str]) -> list[tuple[Image, list[str]]]:
    """The images `docker save NAME...` exports, each with the familiar tags to record, in order.

    A bare repository name exports every tag of it, `name:tag` that tag, an id (full, short or
    `sha256:` prefixed) the image without tags — as dockerd's tarexporter resolves them.
    """
    order: list[str] = []
    refs: dict[str, list[str]] = {}

    def add(img: Image, ref: str | None = None) -> None:
        if img.id not in refs:
            order.append(img.id)
            refs[img.id] = []
        if ref and ref not in refs[img.id]:
            refs[img.id].append(ref)

    for name in names:
        if reference.is_id(name) or name.startswith("sha256:"):
            add(store.get(name))
            continue
        r = reference.parse(name, default_tag=None)
        if r.digest:
            img = store.lookup(name)
            if img is None:
                raise NotFound("reference does not exist")
            add(img)
            continue
        if r.tag is None:
            with store._lock:
                tagged = sorted((t, iid) for t, iid in store.tags.items() if t.rsplit(":", 1)[0] == r.repository)
            if tagged:
                for t, iid in tagged:
                    add(store.images[iid], t)
                continue
            img = store.lookup(name)
            if img is None:
                raise NotFound(f"No such image: {name}")
            add(img)
            continue
        fam = r.familiar()
        with store._lock:
            iid = store.tags.get(fam)
        if iid is None:
            raise NotFound("reference does not exist")
        add(store.images[iid], fam)
    return [(store.images[i], refs[i]) for i in order]


def v1_layer_ids(config: dict[str, Any]) -> list[tuple[str, bytes]]:
    """[(v1 id hex, layer `json` bytes)] per layer, as dockerd 20.10's `docker save` computes them."""
    diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
    chains = chain_ids(diff_ids)
    os_name = config.get("os", "")
    top = gojson.v1_image({k: v for k, v in config.items() if k not in ("id", "parent")})
    out: list[tuple[str, bytes]] = []
    parent: str | None = None
    for i, chain in enumerate(chains):
        if i == len(chains) - 1:
            v1 = dict(top)
        else:
            v1 = {"created": gojson.EPOCH_TIME, "container_config": gojson.container_config({})}
        keyed = {**v1, "layer_id": chain}
        if parent:
            keyed["parent"] = "sha256:" + parent
        v1_id = hashlib.sha256(gojson.dumps(dict(sorted(keyed.items())))).hexdigest()
        doc: dict[str, Any] = {"id": v1_id}
        if parent:
            doc["parent"] = parent
        doc.update(v1)
        if os_name:
            doc["os"] = os_name
        out.append((v1_id, gojson.dumps(doc)))
        parent = v1_id
    return out


@dataclass
class _Member:
    name: str
    kind: str                       # "dir", "file", "symlink"
    mtime: float = 0.0
    data: bytes | None = None
    opener: Callable[[], IO[bytes]] | None = None
    size: int = 0
    linkname: str = ""


class _Plan:
    def __init__(self) -> None:
        self.members: dict[str, _Member] = {}
        self._spooled: list[IO[bytes]] = []

    def dir(self, name: str, mtime: float) -> None:
        self.members.setdefault(name, _Member(name, "dir", mtime))

    def file(self, name: str, data: bytes, mtime: float) -> None:
        self.members[name] = _Member(name, "file", mtime, data=data, size=len(data))

    def layer(self, store: ImageStore, name: str, diff_id: str, mtime: float) -> None:
        size = _layer_size(store, diff_id)
        if size > 0:
            self.members[name] = _Member(name, "file", mtime, opener=lambda: _open_layer(store, diff_id), size=size)
            return
        tmp = tempfile.TemporaryFile()  # size unknown: spool the uncompressed tar once
        self._spooled.append(tmp)
        with _open_layer(store, diff_id) as f:
            while chunk := f.read(1 << 20):
                tmp.write(chunk)
        size = tmp.tell()
        self.members[name] = _Member(name, "file", mtime, opener=lambda: _Unclosed(tmp), size=size)

    def symlink(self, name: str, target: str, mtime: float) -> None:
        self.members[name] = _Member(name, "symlink", mtime, linkname=target)

    def write(self, out: IO[bytes]) -> None:
        try:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 20) as tf:
                for m in sorted(self.members.values(), key=lambda m: m.name.split("/")):
                    ti = tarfile.TarInfo(m.name)
                    ti.mtime = int(m.mtime)
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    if m.kind == "dir":
                        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                        tf.addfile(ti)
                    elif m.kind == "symlink":
                        ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, m.linkname
                        tf.addfile(ti)
                    else:
                        ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, m.size
                        if m.data is not None:
                            tf.addfile(ti, io.BytesIO(m.data))
                        else:
                            assert m.opener is not None
                            with m.opener() as f:
                                tf.addfile(ti, f)
        finally:
            for tmp in self._spooled:
                tmp.close()


class _Unclosed:
    """A spooled temp file handed out once per member write, rewound and left open."""

    def __init__(self, f: IO[bytes]):
        self._f = f
        f.seek(0)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def __enter__(self) -> _Unclosed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _open_layer(store: ImageStore, diff_id: str) -> IO[bytes]:
    opener = getattr(store, "open_layer", None)
    return opener(diff_id) if opener is not None else store.content.open(diff_id)


def _layer_size(store: ImageStore, diff_id: str) -> int:
    if store.content.has(diff_id):
        return store.content.size(diff_id)
    sizer = getattr(store, "layer_size", None)
    return int(sizer(diff_id) or 0) if sizer is not None else 0


def _split_tag(fam: str) -> tuple[str, str]:
    r = reference.parse(fam)
    return r.repository, r.tag or "latest"


def save(store: ImageStore, images: list[tuple[Image, list[str]]], out: IO[bytes], *, fmt: str = "docker") -> None:
    """Write `images` (from :func:`resolve`) as a docker-archive (`fmt="docker"`) or as the
    docker-archive + OCI layout newer dockerd writes (`fmt="oci"`)."""
    if fmt not in ("docker", "oci"):
        raise InvalidParameter(f"unknown archive format {fmt!r} (docker or oci)")
    plan = _Plan()
    manifest: list[dict[str, Any]] = []
    repos: dict[str, dict[str, str]] = {}
    index: list[dict[str, Any]] = []
    saved_ids = {img.id for img, _ in images}
    layer_paths: dict[str, str] = {}   # diff id → member written for it
    for img, tags in images:
        diff_ids = img.diff_ids
        if not diff_ids:
            raise InvalidParameter("empty export - not implemented")
        created = unix_seconds(img.config.get("created"))
        raw = store.content.read(img.id)
        if fmt == "docker":
            layers = []
            for (v1_id, v1_json), diff_id in zip(v1_layer_ids(img.config), diff_ids, strict=True):
                layers.append(f"{v1_id}/layer.tar")
                if v1_id + "/" + "json" in plan.members:
                    continue
                plan.dir(v1_id, created)
                plan.file(f"{v1_id}/VERSION", b"1.0", created)
                plan.file(f"{v1_id}/json", v1_json, created)
                if diff_id in layer_paths:
                    plan.symlink(f"{v1_id}/layer.tar", "../" + layer_paths[diff_id], created)
                else:
                    plan.layer(store, f"{v1_id}/layer.tar", diff_id, created)
                    layer_paths[diff_id] = f"{v1_id}/layer.tar"
            plan.file(img.id[7:] + ".json", raw, created)
            item: dict[str, Any] = {"Config": img.id[7:] + ".json", "RepoTags": list(tags) or None, "Layers": layers}
            top = layers[-1].split("/")[0]
        else:
            plan.dir("blobs", 0)
            plan.dir("blobs/sha256", 0)
            layers = []
            descs = []
            for diff_id in diff_ids:
                path = "blobs/sha256/" + diff_id[7:]
                layers.append(path)
                if diff_id not in layer_paths:
                    plan.layer(store, path, diff_id, created)
                    layer_paths[diff_id] = path
                descs.append({"mediaType": mediatypes.OCI_LAYER, "digest": diff_id, "size": plan.members[path].size})
            plan.file("blobs/sha256/" + img.id[7:], raw, created)
            oci_manifest = gojson.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                                         "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": img.id, "size": len(raw)},
                                         "layers": descs})
            mdigest = "sha256:" + hashlib.sha256(oci_manifest).hexdigest()
            plan.file("blobs/sha256/" + mdigest[7:], oci_manifest, 0)
            desc = {"mediaType": mediatypes.OCI_MANIFEST, "digest": mdigest, "size": len(oci_manifest),
                    "platform": {"architecture": img.config.get("architecture", "amd64"),
                                 "os": img.config.get("os", "linux")}}
            for t in tags or [None]:
                d = dict(desc)
                if t:
                    d["annotations"] = {ANN_IMAGE_NAME: reference.parse(t).full_repository + ":" + _split_tag(t)[1],
                                        ANN_REF_NAME: _split_tag(t)[1]}
                index.append(d)
            item = {"Config": "blobs/sha256/" + img.id[7:], "RepoTags": list(tags) or None, "Layers": layers}
            top = diff_ids[-1][7:]
        for t in tags:
            name, tag = _split_tag(t)
            repos.setdefault(name, {})[tag] = top
        parent = getattr(img, "parent", "")
        if parent and parent in saved_ids:
            item["Parent"] = parent
        manifest.append(item)
    if repos:
        plan.file(REPOSITORIES, gojson.dumps({k: dict(sorted(v.items())) for k, v in sorted(repos.items())}) + b"\n",
                  0)
    plan.file(MANIFEST, gojson.dumps(manifest) + b"\n", 0)
    if fmt == "oci":
        plan.file(OCI_LAYOUT, OCI_LAYOUT_CONTENT, 0)
        plan.file(OCI_INDEX, gojson.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": index}), 0)
    plan.write(out)


# ---------------------------------------------------------------------------------------------------------
# load


@dataclass
class LoadResult:
    images: list[str] = field(default_factory=list)     # ids, in archive order
    tags: list[str] = field(default_factory=list)       # familiar tags set


def _clean_name(name: str, what: str = "member") -> str:
    """A member name relative to the archive root; refuses absolute names and `..` escapes."""
    if name.startswith("/"):
        raise ArchiveError(f"invalid archive: {what} {name!r} has an absolute path")
    norm = posixpath.normpath(name)
    if norm == "..":
        raise ArchiveError(f"invalid archive: {what} {name!r} is outside of the archive")
    if norm.startswith("../"):
        raise ArchiveError(f"invalid archive: {what} {name!r} is outside of the archive")
    return "" if norm == "." else norm


class _HashingReader:
    def __init__(self, f: IO[bytes]):
        self._f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class ProgressReader:
    """pkg/progress.Reader: reports `action` for `id` every 512 kB (or 1 %), at most 10 times a
    second, plus when the data is complete and at the end of the stream."""

    def __init__(self, f: IO[bytes], size: int, id: str, action: str, emit: Emit):
        self._f, self.size, self.id, self.action, self._emit = f, size, id, action, emit
        self.current = 0
        self._last_update = 0
        self._last_emit = 0.0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.current += len(data)
        every = 512 * 1024
        if self.size > 0:
            every = min(every, int(0.01 * self.size))
        if self.current - self._last_update > every or not data:
            self._update(last=not data)
            self._last_update = self.current
        return data

    def _update(self, last: bool) -> None:
        now = time.monotonic()
        if last or self.current == self.size or now - self._last_emit >= 0.1:
            self._last_emit = now
            self._emit({"status": self.action, "progressDetail": {"current": self.current, "total": self.size},
                        "progress": progress_string({"current": self.current, "total": self.size}),
                        "id": self.id})

    def finish(self) -> None:
        if self.current < self.size:
            self.current = self.size
            self._update(last=False)


class _Reader:
    """Archive members by name, read once from the tar stream."""

    def __init__(self, store: ImageStore):
        self.store = store
        self.mem: dict[str, bytes] = {}
        self.blobs: dict[str, tuple[str, str, int]] = {}   # name → (raw digest, stored digest, raw size)
        self.links: dict[str, str] = {}
        self._mem_total = 0
        self._layer_cache: dict[str, str] = {}

    def read_archive(self, fileobj: IO[bytes]) -> None:
        try:
            tf = tarfile.open(fileobj=fileobj, mode="r|*", errors="surrogateescape")  # type: ignore[call-overload]
        except tarfile.ReadError as e:
            raise ArchiveError(f"invalid archive: not a tar stream ({e})") from None
        except (EOFError, OSError) as e:
            raise ArchiveError(f"invalid archive: {e}") from None
        try:
            for m in tf:
                name = _clean_name(m.name)
                if not name:
                    continue
                if m.isdir():
                    continue
                if m.issym():
                    if m.linkname.startswith("/"):
                        raise ArchiveError(f"invalid archive: symlink {m.name!r} points to an absolute path")
                    target = posixpath.join(posixpath.dirname(name), m.linkname)
                    self.links[name] = _clean_name(target, f"symlink {m.name!r} target")
                elif m.islnk():
                    self.links[name] = _clean_name(m.linkname, f"hard link {m.name!r} target")
                elif m.isreg():
                    f = tf.extractfile(m)
                    assert f is not None
                    if m.size <= _SMALL and self._mem_total + m.size <= _MEMORY_CAP:
                        data = f.read()
                        if len(data) != m.size:
                            raise ArchiveError("invalid archive: unexpected end of data")
                        self.mem[name] = data
                        self._mem_total += len(data)
                    else:
                        hr = _HashingReader(f)
                        stored = self.store.add_layer(hr)  # decompresses gzip; stored under the diff id
                        self.blobs[name] = (hr.digest, stored, hr.size)
        except tarfile.TarError as e:
            raise ArchiveError(f"invalid archive: {e}") from None
        except EOFError:
            raise ArchiveError("invalid archive: unexpected end of data") from None
        finally:
            tf.close()

    def resolve(self, name: str) -> str:
        name = _clean_name(name, "reference")
        for _ in range(_MAX_LINKS):
            if name in self.mem or name in self.blobs:
                return name
            if name in self.links:
                name = self.links[name]
                continue
            raise ArchiveError(f"invalid archive: {name!r} is missing")
        raise ArchiveError(f"invalid archive: too many levels of symbolic links at {name!r}")

    def has(self, name: str) -> bool:
        try:
            self.resolve(name)
        except ArchiveError:
            return False
        return True

    def read(self, name: str) -> bytes:
        name = self.resolve(name)
        if name in self.mem:
            return self.mem[name]
        raw, stored, size = self.blobs[name]
        if raw != stored or size > 64 << 20:
            raise ArchiveError(f"invalid archive: {name!r} is not a metadata file")
        return self.store.content.read(stored)

    def raw_digest(self, name: str) -> str:
        name = self.resolve(name)
        if name in self.mem:
            return "sha256:" + hashlib.sha256(self.mem[name]).hexdigest()
        return self.blobs[name][0]

    def layer(self, name: str) -> str:
        """The diff id of the layer member `name` (stored in the content store)."""
        name = self.resolve(name)
        if name in self.blobs:
            return self.blobs[name][1]
        if name not in self._layer_cache:
            diff_id = self.store.add_layer(io.BytesIO(self.mem[name]))
            self._layer_cache[name] = diff_id
        return self._layer_cache[name]


@dataclass
class _ToLoad:
    raw: bytes
    config: dict[str, Any]
    tags: list[str]
    parent: str = ""


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise ArchiveError(f"invalid archive: {what} is not valid JSON: {e}") from None


def _config(raw: bytes, what: str) -> dict[str, Any]:
    """The image config as dockerd's image.NewFromJSON accepts it (its messages), normalised."""
    try:
        cfg = image_schema.decode_config(raw, check_digests=False)
    except InvalidParameter as e:
        raise ArchiveError(e.message) from None
    if cfg.get("os", "linux") != "linux":
        raise ArchiveError(f"invalid archive: os {cfg.get('os')!r} is not supported")
    return cfg


def _docker_items(rd: _Reader) -> list[_ToLoad]:
    manifest = _json(rd.read(MANIFEST), MANIFEST)
    if not isinstance(manifest, list):
        raise ArchiveError("invalid archive: manifest.json is not a list")
    out = []
    for item in manifest:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise ArchiveError("invalid archive: malformed manifest.json entry")
        raw = rd.read(item["Config"])
        cfg = _config(raw, item["Config"])
        diff_ids = list(cfg["rootfs"].get("diff_ids") or [])
        layers = list(item.get("Layers") or [])
        if len(layers) != len(diff_ids):
            raise ArchiveError(f"invalid manifest, layers length mismatch: expected {len(layers)}, "
                               f"got {len(diff_ids)}")
        done: list[str] = []
        for i, (path, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
            done.append(diff_id)
            if rd.store.snapshots.has_layer(chain_ids(done)[-1]):
                continue  # already unpacked here: dockerd does not even read the member then
            got = rd.layer(path)
            if got != diff_id:
                raise ArchiveError(f"invalid diffID for layer {i}: expected {json.dumps(diff_id)}, got "
                                   f"{json.dumps(got)}")
        tags = [t for t in (item.get("RepoTags") or []) if isinstance(t, str)]
        out.append(_ToLoad(raw, cfg, tags, str(item.get("Parent") or "")))
    return out


def _blob_path(digest: str) -> str:
    try:
        return "blobs/sha256/" + parse_digest(digest)
    except InvalidDigest:
        raise ArchiveError(f"invalid archive: unsupported digest {digest!r}") from None


def _verified_blob(rd: _Reader, digest: str) -> bytes:
    path = _blob_path(digest)
    data = rd.read(path)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ArchiveError(f"invalid archive: blob {digest} does not match its digest")
    return data


def _oci_name(ann: dict[str, str]) -> str | None:
    """The tag an index entry names: io.containerd.image.name, or a full ref in ref.name."""
    for key in (ANN_IMAGE_NAME, ANN_REF_NAME):
        name = ann.get(key) or ""
        if not name or ("/" not in name and ":" not in name):
            continue  # a bare tag such as "latest" names no repository
        try:
            r = reference.parse(name)
        except InvalidParameter:
            continue
        if not r.digest:
            return r.familiar()
    return None


def _host_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _oci_items(rd: _Reader) -> list[_ToLoad]:
    index = _json(rd.read(OCI_INDEX), OCI_INDEX)
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("invalid archive: index.json has no manifests")
    by_manifest: dict[str, _ToLoad] = {}
    order: list[str] = []

    def visit(desc: dict[str, Any], name: str | None, depth: int) -> None:
        if depth > 4:
            raise ArchiveError("invalid archive: indexes nested too deeply")
        mt = desc.get("mediaType", "")
        digest = str(desc.get("digest", ""))
        data = _verified_blob(rd, digest)
        doc = _json(data, digest)
        mt = mt or doc.get("mediaType", "")
        if mt in (mediatypes.OCI_INDEX, mediatypes.DOCKER_LIST) or "manifests" in doc:
            subs = [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
            fitting = [d for d in subs if (d.get("platform") or {}).get("os", "linux") == "linux"
                       and (d.get("platform") or {}).get("architecture", _host_arch()) == _host_arch()]
            if not fitting:
                raise ArchiveError(f"invalid archive: no linux/{_host_arch()} image in index {digest}")
            for d in fitting[:1]:
                visit(d, name or _oci_name(d.get("annotations") or {}), depth + 1)
            return
        if digest in by_manifest:
            if name and name not in by_manifest[digest].tags:
                by_manifest[digest].tags.append(name)
            return
        cfg_desc = doc.get("config") or {}
        raw = _verified_blob(rd, str(cfg_desc.get("digest", "")))
        cfg = _config(raw, "config " + str(cfg_desc.get("digest")))
        diff_ids = list(cfg["rootfs"].get("diff_ids") or [])
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        if len(layers) != len(diff_ids):
            raise ArchiveError(f"invalid manifest, layers length mismatch: expected {len(layers)}, "
                               f"got {len(diff_ids)}")
        done: list[str] = []
        for i, (ld, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
            lmt = str(ld.get("mediaType", ""))
            if "nondistributable" in lmt or "foreign" in lmt or ld.get("urls"):
                raise ArchiveError(f"invalid archive: foreign layer {ld.get('digest')} is not supported")
            path = _blob_path(str(ld.get("digest", "")))
            if rd.raw_digest(path) != ld.get("digest"):
                raise ArchiveError(f"invalid archive: layer blob {ld.get('digest')} does not match its digest")
            done.append(diff_id)
            if rd.store.snapshots.has_layer(chain_ids(done)[-1]):
                continue
            got = rd.layer(path)
            if got != diff_id:
                raise ArchiveError(f"invalid diffID for layer {i}: expected {json.dumps(diff_id)}, got "
                                   f"{json.dumps(got)}")
        by_manifest[digest] = _ToLoad(raw, cfg, [name] if name else [])
        order.append(digest)

    for desc in index["manifests"]:
        if isinstance(desc, dict):
            visit(desc, _oci_name(desc.get("annotations") or {}), 0)
    return [by_manifest[d] for d in order]


def _unpack(store: ImageStore, item: _ToLoad, lease: Lease, emit: Emit | None) -> None:
    """Unpack the image's layers that are not unpacked yet, reporting "Loading layer" progress."""
    diff_ids = list(item.config["rootfs"].get("diff_ids") or [])
    parent = None
    for diff_id, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
        if not store.snapshots.has_layer(chain):
            lease.snapshot(chain)
            with _open_layer(store, diff_id) as f:
                reader: Any = f
                if emit is not None:  # counts the uncompressed tar, whatever the archive held
                    size = _layer_size(store, diff_id)
                    reader = ProgressReader(f, size, diff_id[7:19], "Loading layer", emit)
                try:
                    store.snapshots.add_layer(chain, parent, reader)
                except LayerError as e:
                    raise ArchiveError(f"error loading layer {diff_id[7:19]}: {e}") from None
                if isinstance(reader, ProgressReader):
                    reader.finish()
        parent = chain


def load(store: ImageStore, fileobj: IO[bytes], emit: Emit, *, quiet: bool = False) -> LoadResult:
    """`docker load`: read a docker-archive or OCI layout tar stream into the store.

    `emit` gets dockerd's stream messages: "Loading layer" progress (unless `quiet`), then
    `{"stream": "Loaded image: name:tag\\n"}` per tag, or "Loaded image ID: sha256:…" lines when the
    (last) image has no tag."""
    rd = _Reader(store)
    result = LoadResult()
    # what the load stores is held until its images are recorded; what none of them uses (a failed
    # or partial load) is removed at the end
    with store.lease("load") as lease:
        rd.read_archive(fileobj)
        if rd.has(MANIFEST):
            items = _docker_items(rd)
        elif rd.has(OCI_INDEX):
            items = _oci_items(rd)
        elif rd.has(REPOSITORIES):
            raise ArchiveError("invalid archive: legacy image archives (without manifest.json) are not "
                               "supported")
        else:
            raise ArchiveError("invalid archive: no manifest.json or index.json found")
        ids_text = ""
        ref_count = 0
        for item in items:
            _unpack(store, item, lease, None if quiet else emit)
            img = store.create(item.config, raw=item.raw)
            ids_text += f"Loaded image ID: {img.id}\n"
            if item.parent and hasattr(store, "set_parent") and store.lookup(item.parent) is not None:
                store.set_parent(img.id, item.parent)
            ref_count = 0
            for t in item.tags:
                try:
                    r = reference.parse(t, default_tag=None)
                except InvalidParameter:
                    raise ArchiveError(f"invalid tag {json.dumps(t)}") from None
                if r.digest or r.tag is None:
                    raise ArchiveError(f"invalid tag {json.dumps(t)}")
                fam = r.familiar()
                prev = store.tags.get(fam)
                if prev and prev != img.id:
                    emit({"stream": f"The image {fam} already exists, renaming the old one with ID {prev} to "
                                    "empty string\n"})
                _tag_loaded(store, img.id, fam)
                emit({"stream": f"Loaded image: {fam}\n"})
                result.tags.append(fam)
                ref_count += 1
            result.images.append(img.id)
        if ref_count == 0 and ids_text:
            emit({"stream": ids_text})
    return result


def _tag_loaded(store: ImageStore, iid: str, fam: str) -> None:
    """Tag without touching Metadata.LastTagTime, as dockerd's load does."""
    try:
        store.tag(iid, fam, touch=False)  # type: ignore[call-arg]
    except TypeError:
        store.tag(iid, fam)
