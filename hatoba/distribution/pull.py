"""`docker pull`: resolve the manifest, download missing layers (3 at a time), extract them in order.

Each layer blob is downloaded into the content store's ingest area (resuming with Range requests
after a dropped connection), hashed on the way, and only renamed into the store once its digest
checks out. Extraction (gzip, zstd or plain, sniffed) starts as soon as a layer and all below it
are there; the snapshotter only shows a layer once it is completely unpacked. The image record is
written last, so a crash at any point leaves a store with nothing half-done in it.

Messages are dockerd's: `Pulling from`, `Already exists`, `Pulling fs layer`, `Waiting`,
`Downloading`, `Verifying Checksum`, `Download complete`, `Extracting`, `Pull complete`,
`Digest: …`, `Status: Downloaded newer image for …` / `Status: Image is up to date for …`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from typing import IO

import aiohttp

from hatoba.distribution import manifest as mf
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig
from hatoba.distribution.client import Registry, RegistryError
from hatoba.distribution.service import Service
from hatoba.errors import HatobaError, NotFound
from hatoba.images.compression import Prefetch, open_decompressed
from hatoba.images.reference import Reference
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
            cfg = json.loads(raw_cfg)
        except ValueError:
            raise mf.ManifestError(f"invalid image config {m.config.digest}") from None
        mf.check_config_platform(cfg, want, ref.familiar())
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(m.layers):
            raise mf.ManifestError(f"{ref.familiar()}: the manifest has {len(m.layers)} layers but the image "
                                   f"config {len(diff_ids)}")
        for layer in m.layers:
            mf.check_media_type(layer.media_type)
        svc.pin(*diff_ids, *(x.digest for x in m.layers), *chain_ids(diff_ids))
        try:
            await _layers(svc, reg, m.layers, diff_ids, out)
            await asyncio.to_thread(images.create, cfg, None, raw_cfg)
        finally:
            svc.unpin(*diff_ids, *(x.digest for x in m.layers), *chain_ids(diff_ids))
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

    async def fetch(i: int) -> None:
        layer = layers[i]
        if images.content.has(layer.digest) or images.content.has(diff_ids[i]):
            out.send(pg.layer("Download complete", pg.short(layer.digest)))
            return
        async with sem:
            await _download(svc, reg, layer, out)

    tasks = {i: asyncio.ensure_future(fetch(i)) for i in todo}
    try:
        for i in todo:
            await tasks[i]
            parent = chains[i - 1] if i else None
            await asyncio.to_thread(_extract, svc, layers[i], diff_ids[i], chains[i], parent, out)
            images.dist.add_source(layers[i].digest, reg.domain, reg.repo)
            out.send(pg.layer("Pull complete", pg.short(layers[i].digest)))
    finally:
        for t in tasks.values():
            if not t.done():
                t.cancel()
        for t in tasks.values():
            with contextlib.suppress(BaseException):
                await t


async def _download(svc: Service, reg: Registry, layer: mf.Descriptor, out: pg.Output) -> None:
    """Download one blob into the content store, once even when several pulls want it."""
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
        try:
            got, size = await reg.download(layer.digest, part, meter.update, on_restart=lambda: meter.reset(0))
            meter.done()
            out.send(pg.layer("Verifying Checksum", sid))
            if got != layer.digest or (layer.size >= 0 and size != layer.size):
                raise RegistryError(f"filesystem layer verification failed for digest {layer.digest}")
            await asyncio.to_thread(content.commit, part, layer.digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        out.send(pg.layer("Download complete", sid))
        fut.set_result(None)
    except BaseException as e:
        fut.set_exception(e if isinstance(e, Exception) else HatobaError("download cancelled"))
        fut.exception()  # mark retrieved: waiters re-raise it themselves
        raise
    finally:
        svc.downloads.pop(layer.digest, None)


class _Counting:
    def __init__(self, f: IO[bytes], meter: pg.Meter):
        self._f, self._m = f, meter

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self._m.update(len(data))
        return data


def _extract(svc: Service, layer: mf.Descriptor, diff_id: str, chain: str, parent: str | None,
             out: pg.Output) -> None:
    """Unpack one downloaded layer (worker thread) and remember blob → diff id."""
    images = svc.images
    sid = pg.short(layer.digest)
    if images.content.has(layer.digest):
        size = images.content.size(layer.digest)
        meter = pg.Meter(out, "Extracting", sid, size)
        with images.content.open(layer.digest) as raw:
            src = Prefetch(open_decompressed(_Counting(raw, meter)))
            try:
                _, tar_size = images.snapshots.add_layer(chain, parent, src)
            finally:
                src.close()
        meter.done()
        if tar_size < 0:
            tar_size = images.layer_size(diff_id)
        images.dist.add_blob(layer.digest, diff_id, layer.media_type or mf.DOCKER_LAYER, size, tar_size)
    else:  # the uncompressed tar of this diff id is in the store already
        with images.open_layer(diff_id) as f:
            images.snapshots.add_layer(chain, parent, f)
