"""Containers: the record, its lifecycle (create, start, stop, kill, remove, restart policies),
exit reaping and live-restore after a daemon restart.

Each container is a `Container` in memory, written through to SQLite on every state change.
The runtime layer (conmon + runc) does the process work; this module decides what happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal as _signal
import time
from typing import Any

from hatoba.db import Database
from hatoba.engine import mounts, names
from hatoba.engine.events import Events
from hatoba.engine.reconcile import reconcile
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound, NotModified
from hatoba.images.store import ImageStore, rfc3339
from hatoba.runtime import cgroups, logs
from hatoba.runtime.conmon import OCIRuntimeError, Runtime
from hatoba.runtime.spec import DEFAULT_PATH, build_spec
from hatoba.runtime.users import UserError, resolve_user, secure_join
from hatoba.storage.snapshots import Snapshotter, chain_ids

log = logging.getLogger("hatoba.engine")

ZERO_TIME = "0001-01-01T00:00:00Z"

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 67108864, "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0,
    "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
    "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                    "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
}

CONFIG_KEYS = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
               "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild",
               "Labels", "StopSignal", "StopTimeout", "Shell"]

SIGNALS = {s.name[3:]: int(s) for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def parse_signal(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    """Signal names with or without SIG, or numbers; InvalidParameter otherwise."""
    if sig is None or sig == "":
        return default
    if isinstance(sig, int):
        return sig
    s = sig.upper()
    if s.isdigit():
        n = int(s)
        if n <= 0 or n > 64:
            raise InvalidParameter(f"Invalid signal: {sig}")
        return n
    s = s[3:] if s.startswith("SIG") else s
    if s in SIGNALS:
        return SIGNALS[s]
    if s.startswith("RTMIN+") or s.startswith("RTMAX-"):
        base = _signal.SIGRTMIN if s.startswith("RTMIN") else _signal.SIGRTMAX
        off = int(s[6:])
        return base + off if s.startswith("RTMIN") else base - off
    raise InvalidParameter(f"Invalid signal: {sig}")


class Container:
    """One container's persisted record plus its live, unpersisted companions."""

    def __init__(self, doc: dict[str, Any]):
        self.id: str = doc["Id"]
        self.name: str = doc["Name"]
        self.created: str = doc["Created"]
        self.path: str = doc["Path"]
        self.args: list[str] = doc["Args"]
        self.config: dict[str, Any] = doc["Config"]
        self.host_config: dict[str, Any] = doc["HostConfig"]
        self.image_id: str = doc["Image"]
        self.state: dict[str, Any] = doc["State"]
        self.restart_count: int = doc.get("RestartCount", 0)
        self.manual_stop: bool = doc.get("ManualStop", False)
        self.chain: list[str] = doc.get("Chain", [])
        self.conmon_pid: int = doc.get("ConmonPid", 0)
        self.has_been_started: bool = doc.get("HasBeenStarted", False)
        # live only
        self.lock = asyncio.Lock()
        self.pending_attach: list[Any] = []
        self.exit_waiters: list[asyncio.Future] = []
        self.remove_waiters: list[asyncio.Future] = []
        self.monitor: asyncio.Task | None = None
        self.exec_ids: set[str] = set()
        self.removing = False
        self.restarting_task: asyncio.Task | None = None

    def doc(self) -> dict[str, Any]:
        return {"Id": self.id, "Name": self.name, "Created": self.created, "Path": self.path, "Args": self.args,
                "Config": self.config, "HostConfig": self.host_config, "Image": self.image_id,
                "State": self.state, "RestartCount": self.restart_count, "ManualStop": self.manual_stop,
                "Chain": self.chain, "ConmonPid": self.conmon_pid, "HasBeenStarted": self.has_been_started}

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def event_attrs(self, **extra: Any) -> dict[str, str]:
        attrs = {"image": self.config.get("Image", ""), "name": self.name}
        for k, v in (self.config.get("Labels") or {}).items():
            attrs.setdefault(k, v)
        attrs.update({k: str(v) for k, v in extra.items()})
        return attrs


def _new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
            "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


class Containers:
    """The container manager: owns every Container and drives the runtime for them."""

    def __init__(self, *, db: Database, images: ImageStore, snapshots: Snapshotter, runtime: Runtime,
                 events: Events, data_root: str, exec_root: str, cgroup_parent: str,
                 runtime_paths: dict[str, str] | None = None, log_opts: dict[str, str] | None = None,
                 default_runtime: str = "runc"):
        self.db = db
        self.images = images
        self.snapshots = snapshots
        self.runtime = runtime  # the default runtime's driver; rt(c) picks a container's own
        self.default_runtime = default_runtime
        self.runtime_paths = runtime_paths or {}
        self._runtimes: dict[str, Runtime] = {}
        self.events = events
        self.data_root = data_root
        self.exec_root = exec_root
        self.cgroup_parent = cgroup_parent.rstrip("/") or "/hatoba"
        self.log_opts = log_opts or {}
        self.by_id: dict[str, Container] = {}
        self.by_name: dict[str, str] = {}
        os.makedirs(os.path.join(data_root, "containers"), exist_ok=True)
        os.makedirs(os.path.join(exec_root, "containers"), exist_ok=True)
        os.makedirs(os.path.join(exec_root, "exits"), exist_ok=True)

    # ---- paths ----------------------------------------------------------------------------------

    def data_dir(self, c: Container | str) -> str:
        return os.path.join(self.data_root, "containers", c if isinstance(c, str) else c.id)

    def bundle(self, c: Container | str) -> str:
        return os.path.join(self.exec_root, "containers", c if isinstance(c, str) else c.id)

    def log_path(self, c: Container) -> str:
        return os.path.join(self.data_dir(c), "container.log")

    def persist_dir(self, c: Container) -> str:
        return os.path.join(self.data_dir(c), "userdata")

    def cgroups_path(self, c: Container) -> str:
        parent = (c.host_config.get("CgroupParent") or self.cgroup_parent).rstrip("/")
        if not parent.startswith("/"):
            parent = "/" + parent
        return f"{parent}/{c.id}"

    def rt(self, c: Container) -> Runtime:
        """The runtime driver of a container (`--runtime`); each runtime keeps its own state root."""
        name = c.host_config.get("Runtime") or self.default_runtime
        if name == self.default_runtime:
            return self.runtime
        r = self._runtimes.get(name)
        if r is None:
            path = self.runtime_paths.get(name) or shutil.which(name) or name
            r = Runtime(runc=path, conmon=self.runtime.conmon, runc_root=os.path.join(self.exec_root, name))
            self._runtimes[name] = r
        return r

    def valid_runtime(self, name: str) -> bool:
        return name == self.default_runtime or name in self.runtime_paths or shutil.which(name) is not None

    # ---- lookup ---------------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name (with or without /), or unique id prefix, as dockerd resolves."""
        if ref in self.by_id:
            return self.by_id[ref]
        name = ref[1:] if ref.startswith("/") else ref
        if name in self.by_name:
            return self.by_id[self.by_name[name]]
        if ref:
            found = [c for cid, c in self.by_id.items() if cid.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def using_image(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.running) for c in self.by_id.values() if c.image_id == image_id]

    # ---- load / live-restore --------------------------------------------------------------------

    async def restore(self) -> None:
        """Load every container; re-adopt the running ones whose conmon survived; reap the rest."""
        await reconcile(self)  # first: orphans of a crash killed and removed, frozen commits thawed
        for doc in self.db.all("containers"):
            c = Container(doc)
            self.by_id[c.id] = c
            self.by_name[c.name] = c.id
        to_start = []
        for c in list(self.by_id.values()):
            if c.running or c.state.get("Restarting"):
                pid = Runtime.conmon_alive(self.bundle(c))
                if pid and c.running:
                    c.conmon_pid = pid
                    c.monitor = asyncio.ensure_future(self._monitor(c, pid))
                    continue
                if not c.running:  # it was waiting out its restart back-off: that exit is handled already
                    c.restarting_task = asyncio.ensure_future(self._restart_later(c, 0))
                    continue
                code = Runtime.read_exit_code(os.path.join(self.exec_root, "exits"), c.id)
                try:  # it exited while no daemon watched: conmon wrote the exit file at that time
                    finished = os.stat(os.path.join(self.exec_root, "exits", c.id)).st_mtime
                except OSError:
                    finished = None
                await self._handle_exit(c, 137 if code is None else code, finished)
            rp = c.host_config.get("RestartPolicy") or {}
            policy, maxc = rp.get("Name", "no"), int(rp.get("MaximumRetryCount") or 0)
            on_failure = (policy == "on-failure" and not c.manual_stop and c.state.get("ExitCode", 0) != 0
                          and (maxc == 0 or c.restart_count < maxc))
            if (not c.running and not c.state.get("Restarting") and c.id in self.by_id and c.has_been_started
                    and (policy == "always" or (policy == "unless-stopped" and not c.manual_stop) or on_failure)):
                to_start.append(c)
        for c in to_start:
            try:
                await self.start(c.id)
            except HatobaError as e:
                log.warning("restart of %s after daemon start failed: %s", c.id[:12], e.message)

    # ---- create ---------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any], name: str | None) -> tuple[Container, list[str]]:
        image_name = body.get("Image") or ""
        if not image_name:
            raise InvalidParameter("config cannot be empty in order to create a container")
        img = self.images.get(image_name)
        if name:
            if not names.valid_name(name):
                raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
            if name in self.by_name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{self.by_name[name]}". You have to remove (or rename) that container to be able '
                               "to reuse that name.")
        else:
            name = names.generate(lambda n: n in self.by_name)
        hc_in = body.get("HostConfig") or {}
        host_config = dict(HOST_CONFIG_DEFAULTS)
        for k, v in hc_in.items():
            if k in host_config or k in ("Mounts", "Tmpfs", "Sysctls", "Init", "StorageOpt", "Annotations"):
                host_config[k] = v
        if not host_config.get("NetworkMode"):
            host_config["NetworkMode"] = "default"
        rp = host_config.get("RestartPolicy") or {}
        rp_name = rp.get("Name") or "no"
        if rp_name not in ("no", "always", "on-failure", "unless-stopped"):
            raise InvalidParameter(f"invalid restart policy '{rp_name}'")
        if rp_name != "on-failure" and rp.get("MaximumRetryCount"):
            raise InvalidParameter(f"maximum retry count cannot be used with restart policy '{rp_name}'")
        if host_config.get("AutoRemove") and rp_name != "no":
            raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
        host_config["RestartPolicy"] = {"Name": rp_name, "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0)}
        if host_config.get("ShmSize", 0) in (0, None):
            host_config["ShmSize"] = 67108864
        if host_config.get("Memory") and host_config["Memory"] < 6 * 1024 * 1024:
            raise InvalidParameter("Minimum memory limit allowed is 6MB")
        mode = host_config.get("NetworkMode")
        if mode not in ("default", "bridge", "none", "host") and not str(mode).startswith("container:"):
            raise NotFound(f"network {mode} not found")
        runtime_name = host_config.get("Runtime") or self.default_runtime
        if not self.valid_runtime(runtime_name):
            raise InvalidParameter(f"unknown or invalid runtime name: {runtime_name}")
        host_config["Runtime"] = runtime_name
        log_cfg = host_config.get("LogConfig") or {}
        if (log_cfg.get("Type") or "json-file") not in ("json-file", "local", "k8s-file"):
            raise InvalidParameter(f"logging driver {log_cfg.get('Type')!r} is not supported (json-file only)")
        log_opts = {**self.log_opts, **(log_cfg.get("Config") or {})}
        try:
            if log_opts.get("max-size"):
                logs.parse_size(log_opts["max-size"])
            if log_opts.get("max-file") and int(log_opts["max-file"]) < 1:
                raise ValueError
        except ValueError:
            raise InvalidParameter(f"invalid log options: {log_opts}") from None
        host_config["LogConfig"] = {"Type": "json-file", "Config": log_opts}
        warnings: list[str] = []
        mounts.parse(host_config)  # refuse bad binds now, not at start
        anon = [v for v in (body.get("Volumes") or {}) if not any(
            b.split(":")[1:2] == [v] for b in host_config.get("Binds") or [])]
        if anon:
            warnings.append(f"Anonymous volumes are not supported yet; {', '.join(sorted(anon))} stay in the "
                            "container's own filesystem.")
        if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
            warnings.append("Published ports are discarded: port publishing needs the bridge network, which this "
                            "hatoba does not have yet.")
        config = self._merge_config(body, img.config.get("config") or {}, image_name)
        entry = list(config.get("Entrypoint") or [])
        cmd = list(config.get("Cmd") or [])
        argv = entry + cmd
        if not argv:
            raise InvalidParameter("No command specified")
        cid = os.urandom(32).hex()
        if not config.get("Hostname"):
            config["Hostname"] = cid[:12]
        doc = {"Id": cid, "Name": name, "Created": rfc3339(time.time()), "Path": argv[0], "Args": argv[1:],
               "Config": config, "HostConfig": host_config, "Image": img.id, "State": _new_state(),
               "Chain": chain_ids(img.diff_ids)}
        c = Container(doc)
        os.makedirs(self.persist_dir(c), exist_ok=True)
        self.snapshots.prepare(cid, c.chain)
        self.by_id[cid] = c
        self.by_name[name] = cid
        self._save(c)
        self.events.emit("container", "create", cid, c.event_attrs())
        return c, warnings

    def _merge_config(self, body: dict, image_cfg: dict, image_name: str) -> dict:
        cfg: dict[str, Any] = {k: body.get(k) for k in CONFIG_KEYS if k in body}
        defaults = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
                    "Cmd": None, "Image": image_name, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                    "OnBuild": None, "Labels": {}}
        for k, v in defaults.items():
            if cfg.get(k) is None:
                cfg[k] = v
        # image defaults (dockerd's merge)
        img_env = list(image_cfg.get("Env") or [])
        user_env = list(cfg.get("Env") or [])
        keys = {e.split("=", 1)[0] for e in user_env}
        cfg["Env"] = [e for e in img_env if e.split("=", 1)[0] not in keys] + user_env
        if not cfg["Env"]:
            cfg["Env"] = [f"PATH={DEFAULT_PATH}"]
        if not cfg.get("Entrypoint"):
            if image_cfg.get("Entrypoint") and not body.get("Entrypoint") == [""]:
                cfg["Entrypoint"] = image_cfg.get("Entrypoint")
                if not cfg.get("Cmd"):
                    cfg["Cmd"] = image_cfg.get("Cmd")
            elif not cfg.get("Cmd"):
                cfg["Cmd"] = image_cfg.get("Cmd")
            if cfg.get("Entrypoint") == [""]:
                cfg["Entrypoint"] = None
        for k in ("User", "WorkingDir", "StopSignal"):
            if not cfg.get(k) and image_cfg.get(k):
                cfg[k] = image_cfg[k]
        if image_cfg.get("ExposedPorts"):
            cfg["ExposedPorts"] = {**image_cfg["ExposedPorts"], **(cfg.get("ExposedPorts") or {})}
        if image_cfg.get("Volumes"):
            cfg["Volumes"] = {**image_cfg["Volumes"], **(cfg.get("Volumes") or {})}
        labels = dict(image_cfg.get("Labels") or {})
        labels.update(cfg.get("Labels") or {})
        cfg["Labels"] = labels
        return cfg

    def _save(self, c: Container) -> None:
        self.db.put_container(c.id, c.name, c.doc())

    # ---- start ----------------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with c.lock:
            try:
                await self._start_locked(c)
            except HatobaError as e:
                if c.host_config.get("AutoRemove") and not isinstance(e, NotModified):
                    asyncio.ensure_future(self._auto_remove(c))  # dockerd removes it; `run --rm` waits for that
                raise

    async def _start_locked(self, c: Container) -> None:
        if c.state.get("Paused"):
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.running:
            raise NotModified("container already started")
        if c.removing:
            raise Conflict("container is marked for removal and cannot be started")
        bundle = self.bundle(c)
        os.makedirs(bundle, exist_ok=True)
        for stale in ("attach", "ctl", "winsz", "pidfile", "conmon.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(bundle, stale))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.exec_root, "exits", c.id))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.persist_dir(c), "oom"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.persist_dir(c), "exit"))
        rootfs = self.snapshots.mount(c.id, c.chain)
        try:
            spec = self._spec(c, rootfs)
        except HatobaError:
            self.snapshots.unmount(c.id)
            raise
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        log_path = self.log_path(c)
        try:
            created = await self.rt(c).create(
                c.id, bundle, tty=c.tty, stdin=bool(c.config.get("OpenStdin")), log_path=log_path,
                exit_dir=os.path.join(self.exec_root, "exits"), persist_dir=self.persist_dir(c),
                # like dockerd: only a non-TTY StdinOnce container loses stdin when its attach ends
                leave_stdin_open=c.tty or not c.config.get("StdinOnce"))
        except OCIRuntimeError as e:
            self.snapshots.unmount(c.id)
            msg = e.message
            code = 127 if ("executable file not found" in msg or "no such file or directory" in msg) else (
                126 if "permission denied" in msg else 128)
            c.state.update({"Status": "created" if not c.has_been_started else "exited", "ExitCode": code,
                            "Error": msg})
            self._save(c)
            await self._fail_pending_attach(c)
            err = HatobaError(f"failed to create shim task: OCI runtime create failed: {msg}: unknown")
            if code in (126, 127):
                err.status = 400
            raise err from None
        c.conmon_pid = created.conmon_pid
        for sess in c.pending_attach:
            try:
                sock = await self.runtime.open_attach(bundle)
                sess.connect(sock)
            except OSError as e:
                log.warning("attach to %s failed: %s", c.id[:12], e)
                sess.fail()
        c.pending_attach.clear()
        try:
            await self.rt(c).start(c.id)
        except OCIRuntimeError as e:
            await self.rt(c).delete(c.id, force=True)
            self.snapshots.unmount(c.id)
            c.state.update({"ExitCode": 128, "Error": e.message})
            self._save(c)
            raise HatobaError(f"OCI runtime start failed: {e.message}: unknown") from None
        c.state.update({"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                        "OOMKilled": False, "Dead": False, "Pid": created.pid, "ExitCode": 0, "Error": "",
                        "StartedAt": rfc3339(time.time())})
        c.has_been_started = True
        c.manual_stop = False
        self._save(c)
        c.monitor = asyncio.ensure_future(self._monitor(c, created.conmon_pid))
        self.events.emit("container", "start", c.id, c.event_attrs())

    async def _fail_pending_attach(self, c: Container) -> None:
        for sess in c.pending_attach:
            sess.fail()
        c.pending_attach.clear()

    def _spec(self, c: Container, rootfs: str) -> dict[str, Any]:
        cfg, hc = c.config, c.host_config
        try:
            user = resolve_user(rootfs, cfg.get("User") or "")
        except UserError as e:
            raise HatobaError(str(e)) from None
        env = list(cfg.get("Env") or [])
        keys = {e.split("=", 1)[0] for e in env}
        if "PATH" not in keys:
            env.insert(0, f"PATH={DEFAULT_PATH}")
        if "HOSTNAME" not in keys:
            env.insert(1, f"HOSTNAME={cfg.get('Hostname')}")
        if c.tty and "TERM" not in keys:
            env.append("TERM=xterm")
        if "HOME" not in keys:
            env.append(f"HOME={user.home or '/'}")
        mode = hc.get("NetworkMode") or "default"
        netns: str | None = None
        if mode == "host":
            netns = "host"
        elif mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            netns = f"/proc/{other.state['Pid']}/ns/net"
        binds = mounts.parse(hc)
        mounts.prepare_sources(binds)
        extra = self._etc_mounts(c, mode) + [m.oci() for m in binds]
        cwd = cfg.get("WorkingDir") or "/"
        if cwd != "/":
            target = secure_join(rootfs, cwd)  # resolved inside the rootfs: image symlinks cannot lead out
            if not os.path.lexists(target):
                os.makedirs(target, exist_ok=True)
                os.chown(target, user.uid, user.gid)
        return build_spec(rootfs=rootfs, args=[c.path, *c.args], env=env, cwd=cwd, user=user,
                          hostname=cfg.get("Hostname") or c.id[:12], tty=c.tty, host_config=hc,
                          cgroups_path=self.cgroups_path(c), netns=netns, extra_mounts=extra,
                          readonly_rootfs=bool(hc.get("ReadonlyRootfs")), stop_signal=cfg.get("StopSignal"))

    def _etc_mounts(self, c: Container, mode: str) -> list[dict[str, Any]]:
        d = self.data_dir(c)
        hostname = c.config.get("Hostname") or c.id[:12]
        dom = c.config.get("Domainname")
        with open(os.path.join(d, "hostname"), "w") as f:
            f.write(hostname + "\n")
        if mode == "host":
            shutil.copyfile("/etc/hosts", os.path.join(d, "hosts"))
        else:
            lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                     "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
                     "ff02::2\tip6-allrouters"]
            for h in c.host_config.get("ExtraHosts") or []:
                host, _, ip = h.partition(":")
                lines.append(f"{ip}\t{host}")
            lines.append(f"127.0.1.1\t{hostname}.{dom} {hostname}" if dom else f"127.0.1.1\t{hostname}")
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write("\n".join(lines) + "\n")
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(_resolv_conf(c.host_config, host_mode=(mode == "host")))
        opts = ["rbind", "rprivate"]
        return [{"destination": f"/etc/{n}", "type": "bind", "source": os.path.join(d, n), "options": list(opts)}
                for n in ("resolv.conf", "hostname", "hosts")]

    # ---- exit -----------------------------------------------------------------------------------

    async def _monitor(self, c: Container, conmon_pid: int) -> None:
        try:
            await self.runtime.watch(conmon_pid)
        except asyncio.CancelledError:
            return
        code = Runtime.read_exit_code(os.path.join(self.exec_root, "exits"), c.id)
        if code is None:
            code = 137
        async with c.lock:
            if c.conmon_pid != conmon_pid or not c.running:
                return
            await self._handle_exit(c, code)

    async def _handle_exit(self, c: Container, code: int, finished: float | None = None) -> None:
        oom = Runtime.oom_killed(self.persist_dir(c)) or (code == 137 and cgroups.oom_killed(self.cgroups_path(c)))
        try:
            await self.rt(c).delete(c.id, force=True)
        except OCIRuntimeError as e:
            log.warning("runc delete %s: %s", c.id[:12], e.message)
        with contextlib.suppress(OSError):
            cgroups.remove_cgroup(self.cgroups_path(c))
        self.snapshots.unmount(c.id)
        c.state.update({"Status": "exited", "Running": False, "Paused": False, "Restarting": False, "Pid": 0,
                        "ExitCode": code, "OOMKilled": oom, "FinishedAt": rfc3339(finished or time.time())})
        c.conmon_pid = 0
        self._save(c)
        if oom:
            self.events.emit("container", "oom", c.id, c.event_attrs())
        self.events.emit("container", "die", c.id, c.event_attrs(exitCode=code))
        for fut in c.exit_waiters:
            if not fut.done():
                fut.set_result(code)
        c.exit_waiters.clear()
        if self._should_restart(c, code):
            c.restart_count += 1
            c.state.update({"Restarting": True, "Status": "restarting"})
            self._save(c)
            delay = min(0.1 * (2 ** min(c.restart_count - 1, 10)), 60.0)
            c.restarting_task = asyncio.ensure_future(self._restart_later(c, delay))
            return
        if c.host_config.get("AutoRemove"):
            asyncio.ensure_future(self._auto_remove(c))

    def _should_restart(self, c: Container, code: int) -> bool:
        if c.manual_stop or c.removing:
            return False
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name", "no")
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and code != 0:
            maxc = int(rp.get("MaximumRetryCount") or 0)
            return maxc == 0 or c.restart_count < maxc
        return False

    async def _restart_later(self, c: Container, delay: float) -> None:
        await asyncio.sleep(delay)
        if c.id not in self.by_id or c.manual_stop or not c.state.get("Restarting"):
            return
        async with c.lock:
            if c.running:
                return
            try:
                await self._start_locked(c)
            except HatobaError as e:
                c.state.update({"Restarting": False, "Status": "exited", "Error": e.message})
                self._save(c)

    async def _auto_remove(self, c: Container) -> None:
        try:
            await self.remove(c.id, force=True)
        except NotFound:
            pass

    # ---- stop / kill / restart ------------------------------------------------------------------

    async def wait_exit(self, c: Container, timeout: float | None) -> int | None:
        if not c.running:
            return c.state.get("ExitCode", 0)
        fut = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.get("Restarting") and not c.running:
            c.manual_stop = True
            c.state.update({"Restarting": False, "Status": "exited"})
            self._save(c)
            self.events.emit("container", "stop", c.id, c.event_attrs())
            return
        if not c.running:
            raise NotModified("container already stopped")
        c.manual_stop = True
        self._save(c)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        stop_sig = parse_signal(sig or c.config.get("StopSignal") or "TERM", _signal.SIGTERM)
        if c.state.get("Paused"):
            await self.unpause(c.id)
        await self._signal(c, stop_sig)
        code = await self.wait_exit(c, timeout if timeout >= 0 else None)
        if code is None:
            await self._signal(c, _signal.SIGKILL)
            await self.wait_exit(c, None)
        self.events.emit("container", "stop", c.id, c.event_attrs())

    async def _signal(self, c: Container, sig: int) -> None:
        self.events.emit("container", "kill", c.id, c.event_attrs(signal=sig))
        try:
            await self.rt(c).kill(c.id, sig, all_procs=(sig == _signal.SIGKILL))
        except OCIRuntimeError as e:
            if "not running" not in e.message and "does not exist" not in e.message:
                raise HatobaError(f"Cannot kill container: {c.id}: {e.message}") from None

    async def kill(self, ref: str, sig: str | None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        if not c.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signum in (_signal.SIGKILL, parse_signal(c.config.get("StopSignal") or "TERM", _signal.SIGTERM)):
            c.manual_stop = True  # as dockerd: a kill is a manual stop, the restart policy does not apply
            self._save(c)
        if c.state.get("Paused") and signum == _signal.SIGKILL:
            await self._signal(c, signum)
            await self.rt(c).resume(c.id)
        else:
            await self._signal(c, signum)
        if signum == _signal.SIGKILL:
            await self.wait_exit(c, 5)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        if c.running:
            await self.stop(ref, timeout)
        async with c.lock:
            if not c.running:
                await self._start_locked(c)
        self.events.emit("container", "restart", c.id, c.event_attrs())

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.get("Paused"):
            raise Conflict(f"Container {c.id} is already paused")
        await self.rt(c).pause(c.id)
        c.state.update({"Paused": True, "Status": "paused"})
        self._save(c)
        self.events.emit("container", "pause", c.id, c.event_attrs())

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.state.get("Paused"):
            raise Conflict(f"Container {c.id} is not paused")
        await self.rt(c).resume(c.id)
        c.state.update({"Paused": False, "Status": "running"})
        self._save(c)
        self.events.emit("container", "unpause", c.id, c.event_attrs())

    # ---- remove / rename / update ---------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if c.running and not force:
            if c.state.get("Paused"):
                raise Conflict(f"You cannot remove a paused container {c.id}. Unpause and then stop the container "
                               "before attempting removal or force remove")
            raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before attempting "
                           "removal or force remove")
        if c.removing:
            raise Conflict(f"removal of container {c.id[:12]} is already in progress")
        c.removing = True
        if c.restarting_task:
            c.restarting_task.cancel()
        try:
            if c.running:
                await self._signal(c, _signal.SIGKILL)
                if c.state.get("Paused"):
                    with contextlib.suppress(OCIRuntimeError):
                        await self.rt(c).resume(c.id)
                await self.wait_exit(c, 10)
        except BaseException:
            c.removing = False
            raise
        if c.monitor and not c.monitor.done():
            c.monitor.cancel()
        self.snapshots.remove(c.id)
        shutil.rmtree(self.data_dir(c), ignore_errors=True)
        shutil.rmtree(self.bundle(c), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.exec_root, "exits", c.id))
        self.db.delete_container(c.id)
        self.by_id.pop(c.id, None)
        if self.by_name.get(c.name) == c.id:
            del self.by_name[c.name]
        self.events.emit("container", "destroy", c.id, c.event_attrs())
        for fut in c.remove_waiters:
            if not fut.done():
                fut.set_result(c.state.get("ExitCode", 0))

    async def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        new = (new or "").lstrip("/")
        if not new:
            raise InvalidParameter("Neither old nor new names may be empty")
        if not names.valid_name(new):
            raise InvalidParameter(f"Error when allocating new name: Invalid container name ({new}), only "
                                   "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        if new in self.by_name:
            raise Conflict(f'Error when allocating new name: Conflict. The container name "/{new}" is already in '
                           f'use by container "{self.by_name[new]}". You have to remove (or rename) that container '
                           "to be able to reuse that name.")
        old = c.name
        del self.by_name[old]
        c.name = new
        self.by_name[new] = c.id
        self._save(c)
        self.events.emit("container", "rename", c.id, c.event_attrs(oldName="/" + old))

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        from hatoba.runtime.spec import resources_for_update

        c = self.get(ref)
        keys = ["Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
                "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight"]
        changes = {k: body[k] for k in keys if body.get(k) not in (None, 0, "")}
        if c.running and changes:
            try:
                await self.rt(c).update(c.id, resources_for_update(changes))
            except OCIRuntimeError as e:
                raise HatobaError(f"Cannot update container {c.id}: {e.message}") from None
        c.host_config.update(changes)
        rp = body.get("RestartPolicy")
        if rp and rp.get("Name"):
            if c.host_config.get("AutoRemove") and rp["Name"] != "no":
                raise InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for the container")
            c.host_config["RestartPolicy"] = {"Name": rp["Name"], "MaximumRetryCount": rp.get("MaximumRetryCount", 0)}
        self._save(c)
        self.events.emit("container", "update", c.id, c.event_attrs())
        return []

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted, reclaimed = [], 0
        until = filters.get("until")
        for c in list(self.by_id.values()):
            if c.running or c.state.get("Restarting"):
                continue
            if not _label_match(c.config.get("Labels") or {}, filters.get("label", [])):
                continue
            if until:
                from hatoba.images.store import parse_rfc3339
                lim = _parse_until(until[0])
                if parse_rfc3339(c.created) >= lim:
                    continue
            reclaimed += self.snapshots.upper_size(c.id) if hasattr(self.snapshots, "upper_size") else 0
            await self.remove(c.id)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- log rotation ---------------------------------------------------------------------------

    async def rotate_logs_forever(self, interval: float = 1.0) -> None:
        """json-file's max-size/max-file: conmon writes the log, this rotates it when it grows too big."""
        while True:
            await asyncio.sleep(interval)
            for c in list(self.by_id.values()):
                if c.running:
                    self.rotate_log_if_needed(c)

    def rotate_log_if_needed(self, c: Container) -> bool:
        opts = (c.host_config.get("LogConfig") or {}).get("Config") or {}
        if not opts.get("max-size"):
            return False
        try:
            limit = logs.parse_size(opts["max-size"])
            size = os.stat(self.log_path(c)).st_size
        except (OSError, ValueError):
            return False
        if size < limit:
            return False
        logs.rotate(self.log_path(c), max(1, int(opts.get("max-file") or 1)))
        self.rt(c).reopen_log(self.bundle(c))
        return True

    # ---- waiting --------------------------------------------------------------------------------

    def waiter(self, c: Container, condition: str) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if condition == "removed":
            c.remove_waiters.append(fut)
        elif condition == "next-exit" or c.running or c.state.get("Restarting"):
            c.exit_waiters.append(fut)
        else:
            fut.set_result(c.state.get("ExitCode", 0))
        return fut


def _label_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def _parse_until(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        from hatoba.images.store import parse_rfc3339
        return parse_rfc3339(s)


def _resolv_conf(hc: dict[str, Any], host_mode: bool) -> str:
    try:
        with open("/etc/resolv.conf") as f:
            host = f.read()
    except OSError:
        host = ""
    ns, search, opts = [], [], []
    for line in host.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            ns.append(parts[1])
        elif parts[0] == "search":
            search = parts[1:]
        elif parts[0] == "options":
            opts = parts[1:]
    if not host_mode:
        ns = [n for n in ns if not n.startswith("127.") and n != "::1"] or ["8.8.8.8", "8.8.4.4"]
    ns = list(hc.get("Dns") or []) or ns
    search = list(hc.get("DnsSearch") or []) or search
    opts = list(hc.get("DnsOptions") or []) or opts
    out = [f"nameserver {n}" for n in ns]
    if search:
        out.append("search " + " ".join(search))
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"
