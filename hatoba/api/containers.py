"""Container and exec routes of the Engine API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shlex
import tempfile
import time
from typing import Any

from aiohttp import web

from hatoba.api.hijack import finish, hijack
from hatoba.api.server import Router, json_body, json_response, qbool, qfilters, qint, read_json
from hatoba.engine import views
from hatoba.engine.attach import AttachSession
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound
from hatoba.runtime import cgroups, logs
from hatoba.storage import archive as archive_mod
from hatoba.storage import layers


def _eng(request: web.Request) -> Any:
    return request.app["engine"]


def _id(request: web.Request) -> str:
    return request["params"]["id"]


async def create(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    c, warnings = await _eng(request).containers.create(body, request.query.get("name"))
    return json_response({"Id": c.id, "Warnings": warnings}, status=201)


async def list_(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    out = views.list_containers(eng.containers, all_=qbool(request, "all"), limit=qint(request, "limit", -1) or -1,
                                size=qbool(request, "size"), filters=qfilters(request), now=time.time())
    return json_response(out)


async def inspect(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    return json_response(views.inspect(eng.containers, c, size=qbool(request, "size")))


async def start(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.start(_id(request))
    return web.Response(status=204)


async def stop(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.stop(_id(request), qint(request, "t"), request.query.get("signal"))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.restart(_id(request), qint(request, "t"))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.kill(_id(request), request.query.get("signal"))
    return web.Response(status=204)


async def pause(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.pause(_id(request))
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.unpause(_id(request))
    return web.Response(status=204)


async def rename(request: web.Request) -> web.StreamResponse:
    await _eng(request).containers.rename(_id(request), request.query.get("name", ""))
    return web.Response(status=204)


async def update(request: web.Request) -> web.StreamResponse:
    warnings = await _eng(request).containers.update(_id(request), await read_json(request))
    return json_response({"Warnings": warnings})


async def remove(request: web.Request) -> web.StreamResponse:
    if qbool(request, "link"):
        raise InvalidParameter("legacy links are not supported yet")
    await _eng(request).containers.remove(_id(request), force=qbool(request, "force"), volumes=qbool(request, "v"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response(await _eng(request).containers.prune(qfilters(request)))


async def wait(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    cond = request.query.get("condition") or "not-running"
    if cond not in ("not-running", "next-exit", "removed"):
        raise InvalidParameter(f"invalid condition: \"{cond}\"")
    fut = eng.containers.waiter(c, cond)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    code = await fut
    with contextlib.suppress(ConnectionError):
        # Always null, as in the traces (03, 19): a non-null Error makes the docker CLI print
        # "Error waiting for container: …" after a failed start it has already reported.
        await resp.write(json_body({"Error": None, "StatusCode": code}))
        await resp.write_eof()
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    stdin, stdout, stderr = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    stream, with_logs = qbool(request, "stream"), qbool(request, "logs")
    conn = hijack(request)
    eng.events.emit("container", "attach", c.id, c.event_attrs())
    if with_logs or c.running:
        # Let the client parse the 101 before stream bytes follow: docker-py reads the response head
        # through a buffered file, then the raw socket, and loses bytes that arrived with the head.
        # (dockerd's log-driver read leaves such a gap in practice.)
        await asyncio.sleep(0.02)
    if with_logs:
        for r in _read_logs(eng, c, stdout=stdout, stderr=stderr)[0]:
            conn.write(r.data if c.tty else logs.frame(r.stream, r.data))
    if not stream:
        return await finish(conn)
    sess = AttachSession(conn, tty=c.tty, stdin=stdin and bool(c.config.get("OpenStdin")), stdout=stdout,
                         stderr=stderr, stdin_once=bool(c.config.get("StdinOnce")))
    if c.running:
        try:
            sock = await eng.runtime.open_attach(eng.containers.bundle(c))
        except OSError:
            return await finish(conn)
        sess.connect(sock)
    else:
        c.pending_attach.append(sess)
    await asyncio.wait([sess.done, conn.lost], return_when=asyncio.FIRST_COMPLETED)
    if sess in c.pending_attach:
        c.pending_attach.remove(sess)
    if sess.connected and not sess.done.done():
        await sess.done  # the client went away: the session closes the conmon socket and ends
    return await finish(conn)


async def resize(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    h, w = qint(request, "h", 0) or 0, qint(request, "w", 0) or 0
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.tty:
        await eng.runtime.resize_async(eng.containers.bundle(c), h, w)
    return web.Response(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})


# ---- logs -----------------------------------------------------------------------------------------

def _log_paths(eng: Any, c: Any) -> list[str]:
    return logs.rotated_paths(eng.containers.log_path(c))


def _read_logs(eng: Any, c: Any, *, stdout: bool, stderr: bool, since_ns: int = 0, until_ns: int = 0,
               tail: int | None = None) -> tuple[list[logs.LogRecord], int]:
    paths = _log_paths(eng, c)
    offset = logs.complete_size(paths[-1]) if os.path.exists(paths[-1]) else 0
    recs = logs.read_records([p for p in paths if os.path.exists(p)], limit=offset)
    return logs.select(recs, stdout=stdout, stderr=stderr, since_ns=since_ns, until_ns=until_ns, tail=tail), offset


def _time_ns(v: str | None) -> int:
    if not v:
        return 0
    try:
        return int(float(v) * 1e9)
    except ValueError:
        raise InvalidParameter(f"invalid value for time: {v}") from None


async def container_logs(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not stdout and not stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    follow, ts = qbool(request, "follow"), qbool(request, "timestamps")
    tail_s = request.query.get("tail", "all")
    tail = None if tail_s in ("all", "") else max(0, int(tail_s)) if tail_s.lstrip("-").isdigit() else None
    since, until = _time_ns(request.query.get("since")), _time_ns(request.query.get("until"))
    paths = _log_paths(eng, c)
    offset = logs.complete_size(paths[-1]) if paths else 0
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    def render(r: logs.LogRecord) -> bytes:
        data = (logs.format_timestamp(r.time_ns).encode() + b" " + r.data) if ts else r.data
        return data if c.tty else logs.frame(r.stream, data)

    try:
        for piece in logs.framed(paths, limit=offset, stdout=stdout, stderr=stderr, since_ns=since, until_ns=until,
                                 tail=tail, timestamps=ts, tty=c.tty):
            await resp.write(piece)
        if follow and c.running and not until:
            stop = eng.containers.waiter(c, "next-exit")
            async for r in logs.follow(_log_paths(eng, c)[-1], offset, stop=stop):
                if (r.stream == "stdout" and stdout) or (r.stream == "stderr" and stderr):
                    if since and r.time_ns < since:
                        continue
                    await resp.write(render(r))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


# ---- top, changes, stats, export, archive -----------------------------------------------------------

async def top(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    pids = set(await eng.containers.rt(c).ps(c.id))
    args = shlex.split(request.query.get("ps_args") or "-ef")
    proc = await asyncio.create_subprocess_exec("ps", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise HatobaError(f"Error running ps: exit status {proc.returncode}: {err.decode().strip()}")
    lines = out.decode().splitlines()
    if not lines:
        return json_response({"Titles": [], "Processes": []})
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise HatobaError("Couldn't find PID field in ps output") from None
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            procs.append(fields)
    return json_response({"Titles": titles, "Processes": procs})


async def changes(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    out = _hide_mountpoints(eng.containers.snapshots.changes(c.id))
    return json_response([{"Path": p, "Kind": k} for p, k in out] or None)


# Bind-mount targets the runtime creates in the rootfs; dockerd keeps them in an "init" layer, so
# they (and a parent directory changed only by them) never show up in `docker diff`.
_MOUNTPOINTS = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv"}


def _hide_mountpoints(out: list[tuple[str, int]]) -> list[tuple[str, int]]:
    hidden = [p for p, k in out if p in _MOUNTPOINTS and k == layers.CHANGE_ADD]
    if not hidden:
        return out
    keep = [(p, k) for p, k in out if p not in hidden]
    for parent in {os.path.dirname(p) for p in hidden}:
        if not any(p.startswith(parent + "/") for p, _ in keep):
            keep = [(p, k) for p, k in keep if not (p == parent and k == layers.CHANGE_MODIFY)]
    return keep


@contextlib.asynccontextmanager
async def _rootfs(eng: Any, c: Any):  # type: ignore[no-untyped-def]
    snaps = eng.containers.snapshots
    if snaps.is_mounted(c.id):
        yield snaps.rootfs_path(c.id)
        return
    path = snaps.mount(c.id, c.chain)
    try:
        yield path
    finally:
        if not c.running:
            snaps.unmount(c.id)


async def _stream_file_from_thread(request: web.Request, resp: web.StreamResponse, producer: Any) -> None:
    """Run producer(fileobj) in a thread writing into a temp file, then stream the file."""
    with tempfile.TemporaryFile() as tmp:
        await asyncio.to_thread(producer, tmp)
        tmp.seek(0)
        await resp.prepare(request)
        while True:
            chunk = tmp.read(1 << 20)
            if not chunk:
                break
            await resp.write(chunk)
        await resp.write_eof()


async def export(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    async with _rootfs(eng, c) as root:
        await _stream_file_from_thread(request, resp, lambda f: layers.tar_dir(root, f))
    eng.events.emit("container", "export", c.id, c.event_attrs())
    return resp


def _stat_header(st: dict) -> str:
    return base64.b64encode(json.dumps(st, separators=(",", ":")).encode()).decode()


async def archive_head(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    path = request.query.get("path", "")
    async with _rootfs(eng, c) as root:
        try:
            st = archive_mod.stat_path(root, path)
        except FileNotFoundError:
            return web.Response(status=404, headers={"Content-Type": "application/json"})
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("path is required")
    async with _rootfs(eng, c) as root:
        try:
            st = archive_mod.stat_path(root, path)
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {path} in container {c.name}") from None
        resp = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                           "X-Docker-Container-Path-Stat": _stat_header(st)})
        resp.enable_chunked_encoding()
        await _stream_file_from_thread(request, resp, lambda f: archive_mod.archive_path(root, path, f))
    return resp


async def archive_put(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("path is required")
    no_overwrite = qbool(request, "noOverwriteDirNonDir")
    with tempfile.TemporaryFile() as tmp:
        async for chunk in request.content.iter_chunked(1 << 20):
            tmp.write(chunk)
        tmp.seek(0)
        async with _rootfs(eng, c) as root:
            try:
                await asyncio.to_thread(archive_mod.extract_archive, root, path, tmp, no_overwrite)
            except FileNotFoundError:
                raise NotFound(f"Could not find the file {path} in container {c.name}") from None
            except NotADirectoryError:
                raise InvalidParameter(f"extraction point is not a directory: {path}") from None
            except archive_mod.ArchiveError as e:
                raise InvalidParameter(str(e)) from None
    return web.Response(status=200)


def _stats_doc(eng: Any, c: Any, prev: dict | None) -> dict:
    now = time.time()
    from hatoba.images.store import rfc3339

    if c.running:
        s = cgroups.read_stats(eng.containers.cgroups_path(c))
    else:
        s = {"memory_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
             "pids_stats": {}, "blkio_stats": {}}
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    doc = {"read": rfc3339(now), "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
           "pids_stats": s.get("pids_stats", {}), "blkio_stats": s.get("blkio_stats", {}),
           "num_procs": 0, "storage_stats": {}, "cpu_stats": s.get("cpu_stats", empty_cpu),
           "precpu_stats": prev["cpu_stats"] if prev else empty_cpu, "memory_stats": s.get("memory_stats", {}),
           "name": "/" + c.name, "id": c.id}
    return doc


async def stats(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    c = eng.containers.get(_id(request))
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    if not stream:
        prev = None
        if not one_shot and c.running:
            prev = _stats_doc(eng, c, None)
            await asyncio.sleep(0.5)  # dockerd waits for its 1 s collector tick; 0.5 s gives precpu_stats too
        return json_response(_stats_doc(eng, c, prev))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    prev = None
    try:
        while True:
            doc = _stats_doc(eng, c, prev)
            await resp.write(json_body(doc))
            prev = doc
            if not c.running:
                break
            await asyncio.sleep(1)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


# ---- exec -------------------------------------------------------------------------------------------

async def exec_create(request: web.Request) -> web.StreamResponse:
    eid = _eng(request).execs.create(_id(request), await read_json(request))
    return json_response({"Id": eid}, status=201)


async def exec_start(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    eid = _id(request)
    body = await read_json(request)
    e = eng.execs.get(eid)
    if e.started:
        raise Conflict(f"Error: Exec command {eid} has already run")
    if body.get("Detach"):
        await eng.execs.start(eid, detach=True, tty=body.get("Tty"), client=None)
        return web.Response(status=200, headers={"Content-Type": "application/json"})
    extra = b"Api-Version: 1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\n"
    conn = hijack(request, extra)
    try:
        await eng.execs.start(eid, detach=False, tty=body.get("Tty"), client=conn)
    except HatobaError as err:
        conn.write(err.message.encode() + b"\r\n")
    return await finish(conn)


async def exec_inspect(request: web.Request) -> web.StreamResponse:
    return json_response(_eng(request).execs.get(_id(request)).inspect())


async def exec_resize(request: web.Request) -> web.StreamResponse:
    await _eng(request).execs.resize(_id(request), qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
    return web.Response(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})


def register(r: Router) -> None:
    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("POST", "/containers/prune", prune)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/update", update)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("GET", "/containers/{id}/logs", container_logs)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/stats", stats)
    r.add("GET", "/containers/{id}/export", export)
    r.add("HEAD", "/containers/{id}/archive", archive_head)
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("DELETE", "/containers/{id}", remove)
    r.add("POST", "/containers/{id}/exec", exec_create)
    r.add("POST", "/exec/{id}/start", exec_start)
    r.add("GET", "/exec/{id}/json", exec_inspect)
    r.add("POST", "/exec/{id}/resize", exec_resize)
