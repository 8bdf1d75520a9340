"""Image routes of the Engine API (local images: list, inspect, tag, delete, history, import, bootstrap)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from hatoba.api.server import Router, json_body, json_response, qbool, qfilters
from hatoba.errors import HatobaError, InvalidParameter, NotFound
from hatoba.images import bootstrap, changes, reference
from hatoba.images.store import default_config


def _eng(request: web.Request) -> Any:
    return request.app["engine"]


def _name(request: web.Request) -> str:
    return unquote(request["params"]["name"])


async def list_(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    filters = qfilters(request)
    show_all = qbool(request, "all")
    out = []
    refs = filters.get("reference", [])
    for img in sorted(eng.images.images.values(), key=lambda i: i.created, reverse=True):
        tags = eng.images.tags_of(img.id)
        if not tags and not show_all and filters.get("dangling") != ["false"] and False:
            continue
        if filters.get("dangling") == ["true"] and tags:
            continue
        if filters.get("dangling") == ["false"] and not tags:
            continue
        if refs:
            import fnmatch
            if not any(fnmatch.fnmatch(t, r) or fnmatch.fnmatch(t.rsplit(":", 1)[0], r) for t in tags for r in refs):
                continue
        if filters.get("label"):
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not all((w.partition("=")[0] in labels and (not w.partition("=")[1] or
                        labels[w.partition("=")[0]] == w.partition("=")[2])) for w in filters["label"]):
                continue
        out.append(eng.images.summary(img))
    return json_response(out)


async def inspect(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    name = _name(request)
    try:
        img = eng.images.get(name)
    except NotFound:
        # dockerd's LookupImage wraps the store's error: "no such image: x: No such image: x:latest"
        try:
            full = name if reference.is_id(name) or name.startswith("sha256:") else reference.familiar(name)
        except InvalidParameter:
            full = name
        raise NotFound(f"no such image: {name}: No such image: {full}") from None
    return json_response(eng.images.inspect(img))


async def history(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    return json_response(eng.images.history(eng.images.get(_name(request))))


async def tag(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    repo = request.query.get("repo", "")
    t = request.query.get("tag", "")
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    img = eng.images.get(_name(request))
    fam = eng.images.tag(img.id, f"{repo}:{t}" if t else repo)
    eng.events.emit("image", "tag", img.id, {"name": fam})
    return web.Response(status=201)


async def delete(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    name = _name(request)
    out = eng.images.delete(name, force=qbool(request, "force"), users=eng.containers.using_image)
    for item in out:
        if "Untagged" in item:
            eng.events.emit("image", "untag", eng.images.lookup(name).id if eng.images.lookup(name) else name,
                            {"name": item["Untagged"]})
        else:
            eng.events.emit("image", "delete", item["Deleted"], {"name": item["Deleted"]})
    return json_response(out)


async def _stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


def _msg(d: dict) -> bytes:
    return json.dumps(d, separators=(",", ":")).encode() + b"\r\n"


async def create(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    if request.query.get("fromSrc") is not None:
        return await _import(request, eng)
    from hatoba.api import distribution  # registry pulls: fromImage=

    return await distribution.pull(request)


async def _import(request: web.Request, eng: Any) -> web.StreamResponse:
    src = request.query.get("fromSrc")
    if src != "-":
        raise InvalidParameter("importing from a URL is not supported; send the tar in the request body")
    repo, t = request.query.get("repo", ""), request.query.get("tag", "")
    tag_ref = None
    if repo:
        tag_ref = f"{repo}:{t}" if t else repo
        reference.parse(tag_ref)
    change_list = request.query.getall("changes", [])
    message = request.query.get("message", "")
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        async for chunk in request.content.iter_chunked(1 << 20):
            tmp.write(chunk)
        tmp.seek(0)
        diff_id = await asyncio.to_thread(eng.images.add_layer, tmp)
    cfg = default_config([diff_id], cmd=None, created_by="", comment=message or "Imported from -")
    cfg["comment"] = message or "Imported from -"  # dockerd's import sets the image's Comment too
    cfg["config"] = changes.apply({"Env": None, "Cmd": None}, change_list)
    if not cfg["config"].get("Env"):
        cfg["config"].pop("Env", None)
    img = await asyncio.to_thread(eng.images.create, cfg, tag_ref)
    eng.events.emit("image", "import", img.id, {"name": img.id})
    resp = await _stream(request)
    await resp.write(_msg({"status": img.id}))
    await resp.write_eof()
    return resp


async def do_bootstrap(request: web.Request) -> web.StreamResponse:
    """hatoba's own endpoint: POST /hatoba/images/bootstrap?name=busybox — streams progress."""
    eng = _eng(request)
    name = request.query.get("name", "")
    recipe = bootstrap.recipe_for(name)
    if recipe is None:
        raise NotFound(f"no bootstrap recipe for {name!r}; known: {bootstrap.known()}")
    resp = await _stream(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def progress(line: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    task = asyncio.ensure_future(asyncio.to_thread(bootstrap.bootstrap, eng.images, name, progress))
    while not task.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await resp.write(_msg({"status": getter.result()}))
        else:
            getter.cancel()
    try:
        img = task.result()
    except HatobaError as e:
        await resp.write(_msg({"errorDetail": {"message": e.message}, "error": e.message}))
    except Exception as e:  # noqa: BLE001 - reported in-stream like a failed pull
        await resp.write(_msg({"errorDetail": {"message": str(e)}, "error": str(e)}))
    else:
        for tag in bootstrap.RECIPES[recipe].tags:
            eng.events.emit("image", "tag", img.id, {"name": tag})
        await resp.write(_msg({"status": f"Bootstrapped {recipe}: {img.id}"}))
    await resp.write_eof()
    return resp


async def prune(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    dangling_only = qfilters(request).get("dangling", ["true"]) != ["false"]
    used = {c.image_id for c in eng.containers.by_id.values()}
    deleted = []
    for img in list(eng.images.images.values()):
        if img.id in used or (dangling_only and eng.images.tags_of(img.id)):
            continue
        for item in eng.images.delete(img.id, force=True, users=eng.containers.using_image):
            deleted.append(item)
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": 0})


def register(r: Router) -> None:
    r.add("GET", "/images/json", list_)
    r.add("POST", "/images/create", create)
    r.add("POST", "/images/prune", prune)
    r.add("POST", "/hatoba/images/bootstrap", do_bootstrap)
    r.add("GET", "/images/{name:.+}/json", inspect)
    r.add("GET", "/images/{name:.+}/history", history)
    r.add("POST", "/images/{name:.+}/tag", tag)
    r.add("DELETE", "/images/{name:.+}", delete)


__all__ = ["register", "json_body"]
