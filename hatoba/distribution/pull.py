"""`docker pull`: resolve the manifest, download missing layers (3 at a time), extract them in order.

Each layer blob is downloaded into the content store's ingest area (resuming with Range requests
after a dropped connection), hashed on the way, and only renamed into the store once its digest
checks out. Extraction (gzip, zstd or plain, sniffed) of a layer starts as soon as all layers below
it are unpacked, while its own blob is still downloading: the extractor reads the ingest file as it
grows (`_Tail`) and only sees its end once the download has been verified and committed. The
snapshotter unpacks into a staging directory and shows a layer only once it is completely
unpacked, so a digest mismatch or a failed download just discards the staging directory; a download
that has to start over (no Range support) falls back to extracting the committed blob. The image
record is written last, so a crash at any point leaves a store with nothing half-done in it. Blobs and
layers are held by the pull's lease (`ImageStore.lease`) until then; what a crash leaves unreferenced
is collected at the next start.

Messages are dockerd's: `Pulling from`, `Already exists`, `Pulling fs layer`, `Waiting`,
`Downloading`, `Verifying Checksum`, `Download complete`, `Extracting`, `Pull complete`,
`Digest: …`, `Status: Downloaded newer image for …` / `Status: Image is up to date for …`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import IO

import aiohttp

from hatoba.distribution import manifest as mf
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig
from hatoba.distribution.client import Registry, RegistryError
from hatoba.distribution.service import Service
from hatoba.errors import HatobaError, InvalidParameter, NotFound
from hatoba.images.reference import Reference
from hatoba.schema import image as image_schema
from hatoba.storage.snapshots import chain_ids


@dataclass
class PullResult:
    image_id: str
    digest: str
    updated: bool


def repo_name(ref: Reference) -> str:
    """The name in "Pulling from NAME": the path in the registry, without docker.io's `library/`."""
    return ref.path[len("library/"):] if ref.path.startswith("library/") else ref.path


async def pull(svc: Service, ref: Reference, auth: AuthConfig | None, out: pg.Output, *,
               platform: str | None = None, all_tags: bool = False) -> list[PullResult]:
    """Pull `ref` (every tag of its repository with all_tags); ends with the Status line."""
    want = mf.parse_platform(platform)
    results: list[PullResult] = []
    async with svc.session() as session:
        endpoints = await svc.endpoints_for(session, ref.domain, pull=True)
        if all_tags and not ref.digest:
            reg = await _first_working(svc, session, ref, auth, endpoints)
            tags = sorted(await reg.tags())
            if not tags:
                raise NotFound(f"no tags found for {ref.repository}")
            for t in tags:
                r = Reference(ref.domain, ref.path, t, None)
                results.append(await _pull_one(svc, reg, r, want, out))
            name = ref.repository
        else:
            last: Exception | None = None
            for i, ep in enumerate(endpoints):
                reg = await svc.registry(session, ref, auth, "pull", endpoint=ep)
                try:
                    results.append(await _pull_one(svc, reg, ref, want, out))
                    break
                except (RegistryError, aiohttp.ClientError) as e:
                    if i == len(endpoints) - 1 or out.sent:
                        raise
                    last = e  # a mirror failed: fall back to the next endpoint
            else:  # pragma: no cover - the loop either breaks or raises
                raise last or HatobaError("pull failed")
            name = ref.familiar()
    updated = any(r.updated for r in results)
    out.send(pg.status(f"Status: {'Downloaded newer image' if updated else 'Image is up to date'} for {name}"))
    return results


async def _first_working(svc: Service, session: aiohttp.ClientSession, ref: Reference, auth: AuthConfig | None,
                         endpoints: list) -> Registry:
    for i, ep in enumerate(endpoints):
        reg = await svc.registry(session, ref, auth, "pull", endpoint=ep)
        try:
            await reg.challenges()
            return reg
        except RegistryError:
            if i == len(endpoints) - 1:
                raise
    raise HatobaError("no registry endpoint")  # pragma: no cover


def _denied(e: RegistryError, ref: Reference) -> HatobaError:
    if e.registry_status in (401, 403) and "no basic auth credentials" not in e.message:
        return HatobaError(f"pull access denied for {ref.repository}, repository does not exist or may require "
                           f"'docker login': {e.message}")
    return e


async def _pull_one(svc: Service, reg: Registry, ref: Reference, want: mf.Platform | None,
                    out: pg.Output) -> PullResult:
    images = svc.images
    tag_or_digest = ref.digest or ref.tag or "latest"
    try:
        head = ref.digest or await reg.head_manifest(tag_or_digest, mf.ACCEPT)
        known = images.dist.image_for_digest(f"{ref.repository}@{head}") if head and want is None else None
        if known and known in images.images:  # what the tag points to is here already
            out.send(pg.status(f"Pulling from {repo_name(ref)}", tag_or_digest))
            return await _recorded(svc, ref, known, head, out)  # type: ignore[arg-type]
        body, ctype, digest = await reg.get_manifest(head or tag_or_digest, mf.ACCEPT)
    except RegistryError as e:
        raise _denied(e, ref) from None
    m = mf.parse(body, ctype, ref.familiar())
    if m.is_index:
        entry = mf.select(m, want)
        body2, ctype2, _ = await reg.get_manifest(entry.digest, mf.ACCEPT)
        m = mf.parse(body2, ctype2 or entry.media_type, ref.familiar())
        if m.is_index:
            raise mf.ManifestError(f"nested manifest index in {ref.familiar()} is not supported")
    assert m.config is not None
    out.send(pg.status(f"Pulling from {repo_name(ref)}", tag_or_digest))

    iid = m.config.digest
    if iid not in images.images:
        raw_cfg = await reg.get_blob_bytes(m.config.digest)
        try:
            cfg = image_schema.decode_config(raw_cfg)
        except InvalidParameter as e:
            raise mf.ManifestError(f"invalid image config {m.config.digest}: {e.message}") from None
        mf.check_config_platform(cfg, want, ref.familiar())
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(m.layers):
            raise mf.ManifestError(f"{ref.familiar()}: the manifest has {len(m.layers)} layers but the image "
                                   f"config {len(diff_ids)}")
        for layer in m.layers:
            mf.check_media_type(layer.media_type)
        # held from before the first download until the image is recorded; a failed pull keeps what
        # it got for a retry (collected at the next image removal or daemon start if none comes)
        with images.lease(f"pull {ref.familiar()}", keep=True) as lease:
            lease.content(*diff_ids, *(x.digest for x in m.layers))
            lease.snapshot(*chain_ids(diff_ids))
            await _layers(svc, reg, m.layers, diff_ids, out)
            await asyncio.to_thread(images.create, cfg, None, raw_cfg)
    return await _recorded(svc, ref, iid, digest, out)


async def _recorded(svc: Service, ref: Reference, iid: str, digest: str, out: pg.Output) -> PullResult:
    """Tag the image (unless pulled by digest), record its repo digest, say "Digest: …"."""
    images = svc.images
    if ref.tag and not ref.digest:
        fam = ref.familiar()
        updated = images.tags.get(fam) != iid
        if updated:
            await asyncio.to_thread(images.tag, iid, fam)
    else:
        updated = f"{ref.repository}@{digest}" not in images.dist.repo_digests(iid)
    images.dist.set_repo_digest(f"{ref.repository}@{digest}", iid)
    out.send(pg.status(f"Digest: {digest}"))
    return PullResult(iid, digest, updated)


async def _layers(svc: Service, reg: Registry, layers: tuple[mf.Descriptor, ...], diff_ids: list[str],
                  out: pg.Output) -> None:
    images = svc.images
    chains = chain_ids(diff_ids)
    todo: list[int] = []
    for i, (layer, chain) in enumerate(zip(layers, chains, strict=True)):
        if images.snapshots.has_layer(chain):
            out.send(pg.layer("Already exists", pg.short(layer.digest)))
        else:
            todo.append(i)
    if not todo:
        return
    for i in todo:
        out.send(pg.layer("Pulling fs layer", pg.short(layers[i].digest)))
    sem = asyncio.Semaphore(svc.max_concurrent_downloads)
    for n, i in enumerate(todo):
        if n >= svc.max_concurrent_downloads:
            out.send(pg.layer("Waiting", pg.short(layers[i].digest)))
    tails = {i: _Tail(pg.short(layers[i].digest), out, layers[i].size) for i in todo}

    async def fetch(i: int) -> None:
        layer = layers[i]
        try:
            if images.content.has(layer.digest) or images.content.has(diff_ids[i]):
                out.send(pg.layer("Download complete", pg.short(layer.digest)))
                return
            async with sem:
                await _download(svc, reg, layer, out, tails[i])
        finally:
            tails[i].fail(_NotStreamed())  # unless it has been finished: nothing more will come

    tasks = {i: asyncio.ensure_future(fetch(i)) for i in todo}
    try:
        for i in todo:
            parent = chains[i - 1] if i else None
            if not tasks[i].done():  # unpack while the blob downloads
                ext = asyncio.ensure_future(asyncio.to_thread(_extract, svc, layers[i], diff_ids[i], chains[i],
                                                              parent, out, tails[i]))
                ext.add_done_callback(_retrieved)  # not awaited when the pull is cancelled
                await asyncio.wait([tasks[i]])
                if tasks[i].exception() is not None:  # the unpacking sees the failure and gives up too
                    with contextlib.suppress(BaseException):
                        await ext
                    await tasks[i]  # raises
                try:
                    await ext
                except _NotStreamed:  # the download started over, or another pull had it
                    await asyncio.to_thread(_extract, svc, layers[i], diff_ids[i], chains[i], parent, out)
            else:
                await tasks[i]
                await asyncio.to_thread(_extract, svc, layers[i], diff_ids[i], chains[i], parent, out)
            images.dist.add_source(layers[i].digest, reg.domain, reg.repo)
            out.send(pg.layer("Pull complete", pg.short(layers[i].digest)))
    finally:
        for tail in tails.values():
            tail.fail(_NotStreamed())  # a still running unpack of a cancelled pull stops
        for t in tasks.values():
            if not t.done():
                t.cancel()
        for t in tasks.values():
            with contextlib.suppress(BaseException):
                await t


async def _download(svc: Service, reg: Registry, layer: mf.Descriptor, out: pg.Output,
                    tail: _Tail | None = None) -> None:
    """Download one blob into the content store, once even when several pulls want it.

    `tail`, if given, learns of every byte written to the ingest file, and is finished once the blob
    is verified and committed, or failed."""
    content = svc.images.content
    inflight = svc.downloads.get(layer.digest)
    if inflight is not None:
        await asyncio.shield(inflight)
        out.send(pg.layer("Download complete", pg.short(layer.digest)))
        return
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    svc.downloads[layer.digest] = fut
    sid = pg.short(layer.digest)
    try:
        if layer.urls and layer.media_type == mf.DOCKER_FOREIGN_LAYER:
            raise RegistryError(f"foreign layer {layer.digest} (from {layer.urls[0]}) is not downloaded by hatoba")
        part = content.ingest_path("pull-" + layer.digest.split(":", 1)[1])
        meter = pg.Meter(out, "Downloading", sid, layer.size)

        def on_data(n: int) -> None:
            meter.update(n)
            if tail is not None:
                tail.grow(part, n)

        def on_restart() -> None:
            meter.reset(0)
            if tail is not None:
                tail.fail(_NotStreamed())

        try:
            got, size = await reg.download(layer.digest, part, on_data, on_restart=on_restart)
            meter.done()
            out.send(pg.layer("Verifying Checksum", sid))
            if got != layer.digest or (layer.size >= 0 and size != layer.size):
                raise RegistryError(f"filesystem layer verification failed for digest {layer.digest}")
            await asyncio.to_thread(content.commit, part, layer.digest)
        except BaseException as e:
            if tail is not None:
                tail.fail(e if isinstance(e, Exception) else HatobaError("download cancelled"))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        out.send(pg.layer("Download complete", sid))
        if tail is not None:
            tail.finish()
        fut.set_result(None)
    except BaseException as e:
        fut.set_exception(e if isinstance(e, Exception) else HatobaError("download cancelled"))
        fut.exception()  # mark retrieved: waiters re-raise it themselves
        raise
    finally:
        svc.downloads.pop(layer.digest, None)


def _retrieved(t: asyncio.Future) -> None:
    if not t.cancelled():
        t.exception()


class _NotStreamed(HatobaError):
    """The layer could not be unpacked while downloading: unpack the committed blob instead."""

    def __init__(self) -> None:
        super().__init__("layer not streamed")


class _HeldMeter(pg.Meter):
    """A meter that stays silent until released, then reports where it is: "Extracting" progress
    of a layer unpacked while it downloads only shows after its "Download complete", as dockerd's."""

    def __init__(self, out: pg.Output, action: str, id: str, total: int):
        super().__init__(out, action, id, total)
        self._lock = threading.Lock()
        self._held = True

    def _emit(self, now: float) -> None:
        with self._lock:
            if not self._held:
                super()._emit(now)

    def release(self) -> None:
        with self._lock:
            self._held = False
            if self.current:
                super()._emit(time.monotonic())


class _Tail:
    """Reader of a blob's ingest file while the download appends to it (read in a worker thread).

    `read` waits for bytes that the download has written; it ends (b"") only after `finish`, i.e.
    once the whole blob is verified, and raises the error given to `fail`. Both are called from
    the event loop; whichever comes first wins."""

    def __init__(self, sid: str, out: pg.Output, size: int):
        self.meter = _HeldMeter(out, "Extracting", sid, size)
        self._cond = threading.Condition()
        self._path: str | None = None
        self._written = 0
        self._pos = 0
        self._end: BaseException | bool = False  # True: finished; an exception: failed
        self._fd = -1

    def grow(self, path: str, n: int) -> None:
        with self._cond:
            self._path = path
            self._written += n
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            if self._end is not False:
                return  # failed already (the download started over): that unpacking is abandoned
            self._end = True
            self._cond.notify_all()
        self.meter.release()

    def fail(self, e: BaseException) -> None:
        with self._cond:
            if self._end is False:
                self._end = e
                self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while self._pos >= self._written and self._end is False:
                self._cond.wait()
            end = self._end
            if isinstance(end, _NotStreamed):
                raise _NotStreamed()
            if isinstance(end, BaseException):  # the pull reports the download's own error
                raise HatobaError(f"download failed: {end}")
            avail = self._written - self._pos
            path = self._path
        if avail <= 0:
            return b""  # finished
        if self._fd < 0:
            assert path is not None
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # stays valid when committed (renamed)
        data = os.pread(self._fd, avail if n is None or n < 0 else min(n, avail), self._pos)
        if not data:
            raise _NotStreamed()  # emptied under us: the download started over
        self._pos += len(data)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _Counting:
    def __init__(self, f: IO[bytes], meter: pg.Meter):
        self._f, self._m = f, meter

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self._m.update(len(data))
        return data


def _extract(svc: Service, layer: mf.Descriptor, diff_id: str, chain: str, parent: str | None,
             out: pg.Output, tail: _Tail | None = None) -> None:
    """Unpack one layer (worker thread) and remember blob → diff id: from `tail` while it downloads,
    else from the content store."""
    images = svc.images
    sid = pg.short(layer.digest)
    if tail is not None or images.content.has(layer.digest):
        size = layer.size if tail is not None else images.content.size(layer.digest)
        meter = tail.meter if tail is not None else pg.Meter(out, "Extracting", sid, size)
        raw: IO[bytes] = tail if tail is not None else images.content.open(layer.digest)  # type: ignore[assignment]
        try:
            _, tar_size = images.snapshots.add_layer(chain, parent, _Counting(raw, meter))  # any compression
        finally:
            raw.close()
        meter.done()
        if tar_size < 0:
            tar_size = images.layer_size(diff_id)
        images.dist.add_blob(layer.digest, diff_id, layer.media_type or mf.DOCKER_LAYER, size, tar_size)
    else:  # the uncompressed tar of this diff id is in the store already
        with images.open_layer(diff_id) as f:
            images.snapshots.add_layer(chain, parent, f)
