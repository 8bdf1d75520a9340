"""The container manager: every container's record, by id and name, and the operations on it.

`Containers` owns the in-memory records (written through to SQLite on every change) and composes
the lifecycle (`lifecycle`: start, stop, kill, pause), the exit handling (`monitor`: reaping,
restart policies, live-restore) and the API-facing reads (`views`, `logs`, `stats`, `top`,
`rootfs`, `attach`). The runtime layer (conmon + runc) does the process work; this decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal as _signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO

from hatoba.db import Database
from hatoba.engine import attach as attach_mod
from hatoba.engine import health as healthcheck
from hatoba.engine import hostconfig, mounts, names, rootfs, stats, top, views
from hatoba.engine import logs as logs_mod
from hatoba.engine.container import Container, new_state
from hatoba.engine.events import Events
from hatoba.engine.lifecycle import Lifecycle, make_volume_mountpoints
from hatoba.engine.monitor import Monitor
from hatoba.errors import Conflict, InvalidParameter, NotFound
from hatoba.golang import rfc3339, unix_seconds
from hatoba.images.store import ImageStore
from hatoba.runtime.conmon import OCIRuntimeError, Runtime
from hatoba.runtime.spec import DEFAULT_PATH
from hatoba.storage.snapshots import Snapshotter, chain_ids

CONFIG_KEYS = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
               "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild",
               "Labels", "StopSignal", "StopTimeout", "Shell"]


def merge_image_config(body: dict[str, Any], image_cfg: dict[str, Any], image_name: str) -> dict[str, Any]:
    """The container's Config: the request's, with the image's defaults where it leaves them out."""
    cfg: dict[str, Any] = {k: body.get(k) for k in CONFIG_KEYS if k in body}
    defaults = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
                "Cmd": None, "Image": image_name, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                "OnBuild": None, "Labels": {}}
    for k, v in defaults.items():
        if cfg.get(k) is None:
            cfg[k] = v
    img_env = [e for e in image_cfg.get("Env") or [] if isinstance(e, str)]
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
    healthcheck.set_config(cfg, image_cfg)  # the request's Healthcheck over the image's
    return cfg


class Containers(Lifecycle, Monitor):
    """The container manager: owns every Container and drives the runtime for them."""

    def __init__(self, *, db: Database, images: ImageStore, snapshots: Snapshotter, runtime: Runtime,
                 events: Events, data_root: str, exec_root: str, cgroup_parent: str,
                 runtime_paths: dict[str, str] | None = None, log_opts: dict[str, str] | None = None,
                 default_runtime: str = "runc", log_driver: str = "json-file"):
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
        self.log_driver = log_driver
        self.by_id: dict[str, Container] = {}
        self.by_name: dict[str, str] = {}
        self.health = healthcheck.HealthChecks(events=events, save=self._save)  # probes; core wires its exec
        self.on_remove: list[Callable[[str], None]] = []  # called with the id of a removed container
        for d in (os.path.join(data_root, "containers"), os.path.join(exec_root, "containers"),
                  os.path.join(exec_root, "exits")):
            os.makedirs(d, mode=0o700, exist_ok=True)

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

    def _save(self, c: Container) -> None:
        self.db.put_container(c.id, c.name, c.doc())

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

    # ---- create ---------------------------------------------------------------------------------

    def _host_config(self, hc_in: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The stored HostConfig: defaults, dockerd's create-time checks, then hatoba's own (mounts, init)."""
        warnings = hostconfig.validate_config(config)
        hc, more = hostconfig.build(hc_in, config=config, log_opts=self.log_opts,
                                    default_runtime=self.default_runtime, valid_runtime=self.valid_runtime,
                                    default_log_driver=self.log_driver)
        warnings += more
        mode = hc.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            self.get(mode.split(":", 1)[1])  # dockerd: 404 No such container
        mounts.parse(hc)  # refuse bad binds now, not at start
        if hc.get("Init"):
            self.init_binary()
        return hc, warnings

    async def create(self, body: dict[str, Any], name: str | None) -> tuple[Container, list[str]]:
        """`body` is a validated create document (`hatoba.schema.engine.container_create`)."""
        image_name = body.get("Image") or ""
        if not image_name:
            raise InvalidParameter("config cannot be empty in order to create a container")
        healthcheck.validate_config(body.get("Healthcheck"))  # dockerd's checks, before the image lookup
        img = self.images.get(image_name)
        config_in = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        host_config, warnings = self._host_config(body.get("HostConfig") or {}, config_in)
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
        anon = [v for v in (body.get("Volumes") or {}) if not any(
            b.split(":")[1:2] == [v] for b in host_config.get("Binds") or [])]
        if anon:
            warnings.append(f"Anonymous volumes are not supported yet; {', '.join(sorted(anon))} stay in the "
                            "container's own filesystem.")
        config = merge_image_config(config_in, img.config.get("config") or {}, image_name)
        argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        if not argv:
            raise InvalidParameter("No command specified")
        cid = os.urandom(32).hex()
        if not config.get("Hostname"):
            config["Hostname"] = cid[:12]
        doc = {"Id": cid, "Name": name, "Created": rfc3339(time.time()), "Path": argv[0], "Args": argv[1:],
               "Config": config, "HostConfig": host_config, "Image": img.id, "State": new_state(),
               "Chain": chain_ids(img.diff_ids)}
        c = Container(doc)
        os.makedirs(self.data_dir(c), mode=0o700, exist_ok=True)
        os.makedirs(self.persist_dir(c), mode=0o700, exist_ok=True)
        try:
            self.snapshots.prepare(cid, c.chain)
            if config.get("Volumes"):
                rootfs = self.snapshots.mount(cid, c.chain)
                try:
                    make_volume_mountpoints(rootfs, config, mounts.parse(host_config))
                finally:
                    self.snapshots.unmount(cid)
        except BaseException:
            self.snapshots.remove(cid)
            shutil.rmtree(self.data_dir(c), ignore_errors=True)
            raise
        self.by_id[cid] = c
        self.by_name[name] = cid
        self._save(c)
        self.events.emit("container", "create", cid, c.event_attrs())
        return c, warnings

    # ---- remove / rename / update ---------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False, link: bool = False) -> None:
        c = self.get(ref)
        if link:
            raise InvalidParameter("legacy links are not supported yet")
        if c.state.get("Restarting") and not force:
            raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the container before "
                           "attempting removal or force remove")
        if c.running and not force:
            if c.paused:
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
                if c.paused:
                    with contextlib.suppress(OCIRuntimeError):
                        await self.rt(c).resume(c.id)
                await self.wait_exit(c, 10)
        except BaseException:
            c.removing = False
            raise
        if c.monitor and not c.monitor.done():
            c.monitor.cancel()
        self.health.stop(c)
        if c.running:  # it did not exit in time: take its runtime state down before the files go
            await self._release(c, runc=True)
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
        for hook in self.on_remove:
            hook(c.id)
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
        """`body` is a validated update document (`hatoba.schema.engine.container_update`)."""
        from hatoba.runtime.spec import resources_for_update

        c = self.get(ref)
        hc, warnings = hostconfig.validate_update(body, c.host_config)
        changes = {k: v for k, v in body.items() if k != "RestartPolicy" and v not in (None, 0, "")}
        if c.running and changes:
            try:
                await self.rt(c).update(c.id, resources_for_update(changes))
            except OCIRuntimeError as e:
                raise InvalidParameter(f"Cannot update container {c.id}: {e.message}") from None
        c.host_config.update(changes)
        if body.get("RestartPolicy") is not None:
            c.host_config["RestartPolicy"] = hc["RestartPolicy"]
        self._save(c)
        self.events.emit("container", "update", c.id, c.event_attrs())
        return warnings

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for k in filters:
            if k not in ("label", "label!", "until"):
                raise InvalidParameter(f"Invalid filter '{k}'")
        until = _parse_until(filters["until"][0]) if filters.get("until") else None
        deleted, reclaimed = [], 0
        for c in list(self.by_id.values()):
            if c.running or c.state.get("Restarting") or c.removing:
                continue
            if not views.labels_match(c.config.get("Labels") or {}, filters.get("label", []),
                                      filters.get("label!", [])):
                continue
            if until is not None and unix_seconds(c.created) >= until:
                continue
            reclaimed += self.snapshots.upper_size(c.id)
            await self.remove(c.id)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- API reads and streams (the containers router's backend) ---------------------------------

    def list(self, *, all_: bool, limit: int, size: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        return views.list_containers(self, all_=all_, limit=limit, size=size, filters=filters, now=time.time())

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        return views.inspect(self, self.get(ref), size=size)

    def wait(self, ref: str, condition: str) -> asyncio.Future:
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f'invalid condition: "{condition}"')
        return self.waiter(self.get(ref), condition)

    async def attach(self, ref: str, upgrade: Callable[[], Awaitable[attach_mod.ClientStream]], *, stdin: bool,
                     stdout: bool, stderr: bool, stream: bool, logs: bool,
                     detach_keys: str | None) -> attach_mod.ClientStream:
        return await attach_mod.attach(self, self.get(ref), upgrade, stdin=stdin, stdout=stdout, stderr=stderr,
                                       stream=stream, logs=logs, detach_keys=detach_keys)

    async def resize(self, ref: str, h: int, w: int) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.tty:
            await self.rt(c).resize_async(self.bundle(c), h, w)

    async def logs(self, ref: str, opts: logs_mod.LogOptions) -> AsyncIterator[bytes]:
        """`docker logs` as it goes on the wire."""
        return await logs_mod.stream(self, self.get(ref), opts)

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        return await top.top(self, self.get(ref), ps_args)

    async def changes(self, ref: str) -> list[dict[str, Any]] | None:
        return await rootfs.changes(self, self.get(ref))

    async def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        c = self.get(ref)
        if stream:
            return stats.stream(self, c)

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield await stats.one(self, c, one_shot=one_shot)

        return one()

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        return await rootfs.export(self, self.get(ref))

    async def archive_stat(self, ref: str, path: str) -> dict[str, Any]:
        return await rootfs.stat(self, self.get(ref), path)

    async def archive_get(self, ref: str, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        return await rootfs.get(self, self.get(ref), path)

    async def archive_put(self, ref: str, path: str, body: BinaryIO, *, no_overwrite_dir_non_dir: bool) -> None:
        await rootfs.put(self, self.get(ref), path, body, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir)

    # ---- log rotation ---------------------------------------------------------------------------

    async def rotate_logs_forever(self, interval: float = 1.0) -> None:
        from hatoba.engine import logrotate

        await logrotate.rotate_forever(self, interval)


def _parse_until(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        try:
            return unix_seconds(s)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={s}'") from None
