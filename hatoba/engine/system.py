"""System information as the API reports it: version, info (read from the host, not assumed),
`system df`, and the event stream with its filters and time window."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from hatoba import __version__
from hatoba.engine import views
from hatoba.engine.events import matches
from hatoba.runtime import cgroups

if TYPE_CHECKING:
    from hatoba.engine.config import DaemonConfig
    from hatoba.engine.container import Manager
    from hatoba.engine.events import Events
    from hatoba.images.store import ImageStore

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
LOG_DRIVERS = ["json-file", "local", "none"]

_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def backing_filesystem(path: str) -> str:
    """The filesystem type under `path`, in dockerd's words (`extfs`, `xfs`, `btrfs`, `tmpfs`…)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                mnt = pre.split()[4].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, post.split()[0]
    except OSError:
        return "unknown"
    return _FS_NAMES.get(fstype, fstype)


def ipv4_forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _bridge_nf(name: str) -> bool:
    try:
        with open(f"/proc/sys/net/bridge/{name}") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


class SystemService:
    """The system router's backend."""

    def __init__(self, *, config: DaemonConfig, containers: Manager, images: ImageStore, events: Events,
                 daemon_id: str, runc_version: str, conmon_version: str):
        self.config = config
        self.containers = containers
        self.images = images
        self.event_source = events
        self.daemon_id = daemon_id
        self.runc_version = runc_version
        self.conmon_version = conmon_version

    def version(self) -> dict[str, Any]:
        kernel = platform.release()
        return {
            "Platform": {"Name": "hatoba"},
            "Components": [
                {"Name": "Engine", "Version": __version__, "Details": {
                    "ApiVersion": API_VERSION, "Arch": arch(), "BuildTime": "", "Experimental": "false",
                    "GitCommit": "", "GoVersion": "python" + platform.python_version(), "KernelVersion": kernel,
                    "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}},
                {"Name": "runc", "Version": self.runc_version, "Details": {"GitCommit": ""}},
                {"Name": "conmon", "Version": self.conmon_version, "Details": {"GitCommit": ""}},
            ],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
            "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": arch(),
            "KernelVersion": kernel, "BuildTime": "",
        }

    def info(self) -> dict[str, Any]:
        cfg = self.config
        cs = list(self.containers.by_id.values())
        running = sum(1 for c in cs if c.running and not c.paused)
        paused = sum(1 for c in cs if c.paused)
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        v2 = cgroups.is_unified()
        runtimes = {name: {"path": path} for name, path in (cfg.runtimes or {}).items()}
        runtimes.setdefault("runc", {"path": cfg.runtime_path("runc")})
        warnings = []
        if not ipv4_forwarding():
            warnings.append("WARNING: IPv4 forwarding is disabled")
        if not cgroups.swap_limit_supported():
            warnings.append("WARNING: No swap limit support")
        return {
            "ID": self.daemon_id, "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": len(cs) - running - paused, "Images": len(self.images.images),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", backing_filesystem(cfg.data_root)], ["Supports d_type", "true"],
                             ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": None,
                        "Log": LOG_DRIVERS},
            "MemoryLimit": True, "SwapLimit": cgroups.swap_limit_supported(), "KernelMemory": False,
            "KernelMemoryTCP": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
            "PidsLimit": True, "IPv4Forwarding": ipv4_forwarding(),
            "BridgeNfIptables": _bridge_nf("bridge-nf-call-iptables"),
            "BridgeNfIp6tables": _bridge_nf("bridge-nf-call-ip6tables"), "Debug": cfg.log_level == "debug",
            "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": not v2,
            "NGoroutines": len(asyncio.all_tasks()),
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "LoggingDriver": getattr(cfg, "log_driver", "json-file") or "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if v2 else "1",
            "NEventsListener": len(self.event_source.subscribers), "KernelVersion": platform.release(),
            "OperatingSystem": os_name(), "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                               "AllowNondistributableArtifactsHostnames": [],
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                               "Mirrors": list(getattr(cfg, "registry_mirrors", None) or [])},
            "NCPU": os.cpu_count(), "MemTotal": mem, "GenericResources": None, "DockerRootDir": cfg.data_root,
            "HttpProxy": os.environ.get("HTTP_PROXY", ""), "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
            "NoProxy": os.environ.get("NO_PROXY", ""), "Name": platform.node(), "Labels": [],
            "ExperimentalBuild": False, "ServerVersion": __version__, "Runtimes": runtimes,
            "DefaultRuntime": cfg.default_runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                      "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": warnings or None,
        }

    def df(self) -> dict[str, Any]:
        now = time.time()
        counts: dict[str, int] = {}
        for c in self.containers.by_id.values():
            counts[c.image_id] = counts.get(c.image_id, 0) + 1
        imgs = []
        layers_size = 0
        seen: set[str] = set()
        for img in list(self.images.images.values()):
            imgs.append(self.images.summary(img, counts.get(img.id, 0)))
            for d in img.diff_ids:
                if d not in seen:
                    seen.add(d)
                    layers_size += self.images.layer_size(d)  # pulled layers have no plain blob
        cs = [views.summary(self.containers, c, now, size=True) for c in list(self.containers.by_id.values())]
        return {"LayersSize": layers_size, "Images": imgs, "Containers": cs, "Volumes": [], "BuildCache": []}

    async def events(self, *, since: float | None, until: float | None,
                     filters: dict[str, list[str]]) -> AsyncIterator[dict[str, Any]]:
        """Past events in [since, until] from the history, then live ones until `until`."""
        ev_src = self.event_source
        q = ev_src.subscribe()
        try:
            if since is not None:
                for ev in list(ev_src.history):
                    t = ev["timeNano"] / 1e9
                    if t < since or (until is not None and t > until):
                        continue
                    if matches(ev, filters):
                        yield ev
            if until is not None and until <= time.time():
                return
            while True:
                timeout = None if until is None else max(0.0, until - time.time())
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    return
                if matches(ev, filters):
                    yield ev
        finally:
            ev_src.unsubscribe(q)
