"""`docker push`: layers (5 at a time), then the config, then the manifest.

For each layer (its diff id), blobs it is known as (pulled, or compressed by an earlier push) are
checked with HEAD (`Layer already exists`) or mounted from another repository of the same registry
(`Mounted from …`). Otherwise the local compressed blob is uploaded, or the layer is compressed
first (pigz-style gzip level 1, see `hatoba.storage.compression`) and the blob kept in the content
store with its diff id, so the next push sends the very same bytes. Uploads: one PUT for small
blobs; one streamed PATCH then PUT ?digest= for layers (or Content-Range PATCHes in "chunked" mode).

The manifest is Docker schema 2 when every layer is gzip, else OCI (zstd or plain layers).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator

from hatoba.distribution import manifest as mf
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig
from hatoba.distribution.client import Registry
from hatoba.distribution.service import Service
from hatoba.errors import HatobaError
from hatoba.images import mediatypes
from hatoba.images.distmeta import LayerBlob
from hatoba.images.reference import Reference
from hatoba.storage.compression import gzip_compress

_GZIP_TYPES = mediatypes.GZIP_LAYER_TYPES


def tags_to_push(svc: Service, ref: Reference) -> list[Reference]:
    """Every local tag of the repository of `ref`."""
    out = []
    for fam in sorted(svc.images.tags):
        repo, _, t = fam.rpartition(":")
        if repo == ref.repository:
            out.append(Reference(ref.domain, ref.path, t, None))
    return out


async def push(svc: Service, ref: Reference, tag: str | None, auth: AuthConfig | None, out: pg.Output, *,
               all_tags: bool = False) -> list[dict]:
    """Push one tag (or every tag of the repository); returns the aux records."""
    out.send(pg.status(f"The push refers to repository [{ref.full_repository}]"))
    if all_tags:
        refs = tags_to_push(svc, ref)
    else:
        r = Reference(ref.domain, ref.path, tag or ref.tag or "latest", None)
        refs = [r] if r.familiar() in svc.images.tags else []
    if not refs:
        raise HatobaError(f"An image does not exist locally with the tag: {ref.repository}")
    results = []
    async with svc.session() as session:
        reg = await svc.registry(session, ref, auth, "pull,push")
        for r in refs:
            results.append(await _push_tag(svc, reg, r, out))
    return results


async def _push_tag(svc: Service, reg: Registry, ref: Reference, out: pg.Output) -> dict:
    images = svc.images
    img = images.images[images.tags[ref.familiar()]]
    diff_ids = img.diff_ids
    for d in reversed(diff_ids):
        out.send(pg.layer("Preparing", pg.short(d)))
    sem = asyncio.Semaphore(svc.max_concurrent_uploads)
    if len(set(diff_ids)) > svc.max_concurrent_uploads:
        for d in list(reversed(diff_ids))[svc.max_concurrent_uploads:]:
            out.send(pg.layer("Waiting", pg.short(d)))
    done: dict[str, asyncio.Future[LayerBlob]] = {}

    async def one(diff_id: str) -> LayerBlob:
        async with sem:
            return await _push_layer(svc, reg, diff_id, out)

    for d in reversed(diff_ids):
        if d not in done:
            done[d] = asyncio.ensure_future(one(d))
    try:
        blobs = [await done[d] for d in diff_ids]
    finally:
        for f in done.values():
            if not f.done():
                f.cancel()
        for f in done.values():
            with contextlib.suppress(BaseException):
                await f
    raw_cfg = images.content.read(img.id)
    gz = all(b.media_type in _GZIP_TYPES for b in blobs)
    cfg_desc = mf.Descriptor(mf.DOCKER_CONFIG if gz else mf.OCI_CONFIG, img.id, len(raw_cfg))
    if await reg.blob_size(img.id) is None:
        loc = await reg.start_upload()
        await reg.upload(loc, img.id, len(raw_cfg), _no_chunks, mode="monolithic",
                         read_range=lambda off, n: raw_cfg[off:off + n])
    layer_descs = [mf.Descriptor(_layer_type(b.media_type, gz), b.digest, b.size) for b in blobs]
    body = mf.build(cfg_desc, layer_descs, oci=not gz)
    digest = await reg.put_manifest(ref.tag or "latest", body, mf.DOCKER_MANIFEST if gz else mf.OCI_MANIFEST)
    expected = "sha256:" + hashlib.sha256(body).hexdigest()
    digest = digest or expected
    images.dist.set_repo_digest(f"{ref.repository}@{digest}", img.id)
    out.send(pg.status(f"{ref.tag}: digest: {digest} size: {len(body)}"))
    aux = {"Tag": ref.tag, "Digest": digest, "Size": len(body)}
    out.send({"progressDetail": {}, "aux": aux})
    return aux


def _layer_type(mt: str, schema2: bool) -> str:
    if schema2:
        return mf.DOCKER_FOREIGN_LAYER if mt == mf.DOCKER_FOREIGN_LAYER else mf.DOCKER_LAYER
    return {mf.DOCKER_LAYER: mf.OCI_LAYER_GZIP, mf.DOCKER_FOREIGN_LAYER: mf.OCI_LAYER_GZIP}.get(mt, mt)


async def _no_chunks() -> AsyncIterator[bytes]:
    if False:  # pragma: no cover - an empty async generator
        yield b""


async def _push_layer(svc: Service, reg: Registry, diff_id: str, out: pg.Output) -> LayerBlob:
    images = svc.images
    sid = pg.short(diff_id)
    known = sorted(images.dist.blobs_for(diff_id), key=lambda b: b.media_type not in _GZIP_TYPES)
    for b in known:
        if await reg.blob_size(b.digest) is not None:
            images.dist.add_source(b.digest, reg.domain, reg.repo)
            out.send(pg.layer("Layer already exists", sid))
            return b
    loc: str | None = None
    for b in known:
        for src in images.dist.sources(b.digest, reg.domain):
            if src == reg.repo:
                continue
            mounted, loc2 = await reg.mount(b.digest, src)
            if mounted:
                images.dist.add_source(b.digest, reg.domain, reg.repo)
                out.send(pg.layer(f"Mounted from {src}", sid))
                return b
            loc = loc or loc2
    local = [b for b in known if images.content.has(b.digest)]
    if local:
        blob = local[0]
    else:
        blob = await asyncio.to_thread(_compress, svc, diff_id)
        if await reg.blob_size(blob.digest) is not None:
            images.dist.add_source(blob.digest, reg.domain, reg.repo)
            out.send(pg.layer("Layer already exists", sid))
            return blob
    loc = loc or await reg.start_upload()
    meter = pg.Meter(out, "Pushing", sid, blob.size)
    path = images.content.path(blob.digest)

    async def chunks() -> AsyncIterator[bytes]:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    return
                meter.update(len(chunk))
                yield chunk

    def read_range(off: int, n: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(off)
            data = f.read(n)
        meter.update(len(data))
        return data

    mode = "monolithic" if blob.size <= svc.monolithic_limit else svc.upload_mode
    await reg.upload(loc, blob.digest, blob.size, chunks, mode=mode, chunk_size=svc.upload_chunk_size,
                     read_range=read_range)
    meter.done()
    images.dist.add_source(blob.digest, reg.domain, reg.repo)
    out.send(pg.layer("Pushed", sid))
    return blob


def _compress(svc: Service, diff_id: str) -> LayerBlob:
    """Compress a layer into a new content-store blob and remember it for the next push (worker thread)."""
    images = svc.images
    content = images.content
    part = content.ingest_path("push-" + secrets.token_hex(8))
    h = hashlib.sha256()
    size = 0
    try:
        with images.open_layer(diff_id) as src, open(part, "wb") as f:
            def write(b: bytes) -> None:
                nonlocal size
                f.write(b)
                h.update(b)
                size += len(b)

            tar_size = gzip_compress(src, write, level=1)
        digest = "sha256:" + h.hexdigest()
        with images.lease(f"push {diff_id[7:19]}", keep=True) as lease:  # held until distmeta knows it
            content.commit(part, digest, claim=lease.content)
            images.dist.add_blob(digest, diff_id, mf.DOCKER_LAYER, size, tar_size)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise
    return LayerBlob(digest, diff_id, mf.DOCKER_LAYER, size, tar_size)
