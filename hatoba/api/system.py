"""System routes: _ping, version, info, events, system df, auth, and the object stubs the CLI probes."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time

from aiohttp import web

from hatoba import __version__
from hatoba.api.server import (
    API_VERSION,
    MIN_API_VERSION,
    Router,
    error_response,
    json_body,
    json_response,
    qfilters,
)
from hatoba.engine.events import matches
from hatoba.errors import InvalidParameter


async def ping(request: web.Request) -> web.StreamResponse:
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
    body = b"" if request.method == "HEAD" else b"OK"
    # an empty body already gives Content-Length: 0 (aiohttp refuses an explicit content_length here)
    return web.Response(body=body, headers=headers, content_type="text/plain", charset="utf-8")


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


async def version(request: web.Request) -> web.StreamResponse:
    eng = request.app["engine"]
    kernel = platform.release()
    return json_response({
        "Platform": {"Name": "hatoba"},
        "Components": [
            {"Name": "Engine", "Version": __version__, "Details": {
                "ApiVersion": API_VERSION, "Arch": _arch(), "BuildTime": "", "Experimental": "false",
                "GitCommit": "", "GoVersion": "python" + platform.python_version(), "KernelVersion": kernel,
                "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}},
            {"Name": "runc", "Version": eng.runc_version, "Details": {"GitCommit": ""}},
            {"Name": "conmon", "Version": eng.conmon_version, "Details": {"GitCommit": ""}},
        ],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
        "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": _arch(), "KernelVersion": kernel,
        "BuildTime": "",
    })


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


async def info(request: web.Request) -> web.StreamResponse:
    eng = request.app["engine"]
    cs = list(eng.containers.by_id.values())
    running = sum(1 for c in cs if c.running and not c.state.get("Paused"))
    paused = sum(1 for c in cs if c.state.get("Paused"))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return json_response({
        "ID": eng.daemon_id, "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": len(cs) - running - paused, "Images": len(eng.images.images), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
        "IPv4Forwarding": True, "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True, "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if v2 else "1",
        "NEventsListener": len(eng.events.subscribers), "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": os.cpu_count(), "MemTotal": mem, "GenericResources": None, "DockerRootDir": eng.config.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": platform.node(), "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"runc": {"path": eng.config.runtime_path("runc")}}, "DefaultRuntime": eng.config.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": None,
    })


def _time_param(v: str | None) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        from hatoba.images.store import parse_rfc3339
        try:
            return parse_rfc3339(v)
        except ValueError:
            raise InvalidParameter(f"invalid timestamp: {v}") from None


async def events(request: web.Request) -> web.StreamResponse:
    eng = request.app["engine"]
    filters = qfilters(request)
    since = _time_param(request.query.get("since"))
    until = _time_param(request.query.get("until"))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    q = eng.events.subscribe()
    try:
        if since is not None:
            for ev in list(eng.events.history):
                t = ev["timeNano"] / 1e9
                if t < since or (until is not None and t > until):
                    continue
                if matches(ev, filters):
                    await resp.write(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
        if until is not None and until <= time.time():
            await resp.write_eof()
            return resp
        await resp.write(b"")
        while True:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                ev = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                break
            if matches(ev, filters):
                await resp.write(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
        await resp.write_eof()
    finally:
        eng.events.unsubscribe(q)
    return resp


async def system_df(request: web.Request) -> web.StreamResponse:
    eng = request.app["engine"]
    from hatoba.engine import views

    now = time.time()
    imgs = []
    counts: dict[str, int] = {}
    for c in eng.containers.by_id.values():
        counts[c.image_id] = counts.get(c.image_id, 0) + 1
    layers_size = 0
    seen: set[str] = set()
    for img in eng.images.images.values():
        imgs.append(eng.images.summary(img, counts.get(img.id, 0)))
        for d in img.diff_ids:
            if d not in seen:
                seen.add(d)
                layers_size += eng.images.layer_size(d)  # pulled layers have no plain blob
    cs = [views.summary(eng.containers, c, now, size=True) for c in eng.containers.by_id.values()]
    return json_response({"LayersSize": layers_size, "Images": imgs, "Containers": cs, "Volumes": [],
                          "BuildCache": []})


async def not_found_network(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"network {request['params']['id']} not found")


async def networks(request: web.Request) -> web.StreamResponse:
    return json_response([])


async def not_found_volume(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"get {request['params']['name']}: no such volume")


async def volumes(request: web.Request) -> web.StreamResponse:
    return json_response({"Volumes": [], "Warnings": None})


async def not_found_plugin(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"plugin \"{request['params']['name']}\" not found")


def register(r: Router) -> None:
    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    r.add("GET", "/events", events)
    r.add("GET", "/system/df", system_df)
    r.add("GET", "/networks", networks)
    r.add("GET", "/networks/{id}", not_found_network)
    r.add("GET", "/volumes", volumes)
    r.add("GET", "/volumes/{name}", not_found_volume)
    r.add("GET", "/plugins/{name:.+}/json", not_found_plugin)


__all__ = ["register", "json_body"]
