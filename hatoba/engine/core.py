"""The engine's wiring: the stores, the runtime and the managers, created in order for one data root.

Start-up order: metadata DB → content store/snapshots/images → runtime → containers → execs.
`hatoba.daemon` (the process entry point) builds an `Engine` and serves the API over it.
"""

from __future__ import annotations

import os
import subprocess

from hatoba.db import Database
from hatoba.engine.config import DaemonConfig
from hatoba.engine.containers import Containers
from hatoba.engine.events import Events
from hatoba.engine.execs import Execs
from hatoba.engine.images import ImageService
from hatoba.engine.registry import RegistryService
from hatoba.engine.system import SystemService
from hatoba.images.store import ImageStore
from hatoba.runtime.conmon import Runtime
from hatoba.storage.content import ContentStore
from hatoba.storage.snapshots import Snapshotter


def _version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "unknown"


class Engine:
    """One daemon's engine: the stores, the runtime, the managers, and the API backends
    (`containers`, `execs`, `image_service`, `registry`, `system`)."""

    def __init__(self, config: DaemonConfig):
        self.config = config
        os.makedirs(config.data_root, mode=0o711, exist_ok=True)
        os.makedirs(config.exec_root, mode=0o711, exist_ok=True)
        self.db = Database(os.path.join(config.data_root, "hatoba.db"))
        self.daemon_id = self.db.get_kv("daemon_id") or ""
        if not self.daemon_id:
            self.daemon_id = os.urandom(16).hex()
            self.db.set_kv("daemon_id", self.daemon_id)
        self.content = ContentStore(os.path.join(config.data_root, "content"))
        self.content.cleanup_ingest()
        self.snapshots = Snapshotter(os.path.join(config.data_root, "overlay"))
        self.snapshots.cleanup()  # staging dirs of extractions a crash interrupted
        self.images = ImageStore(self.db, self.content, self.snapshots)
        runc = config.runtime_path(None)
        self.runtime = Runtime(runc=runc, conmon=config.conmon, runc_root=os.path.join(config.exec_root, "runc"))
        self.runc_version = _version_of([runc, "--version"])
        self.conmon_version = _version_of([config.conmon, "--version"])
        self.events = Events()
        self.containers = Containers(db=self.db, images=self.images, snapshots=self.snapshots,
                                     runtime=self.runtime, events=self.events, data_root=config.data_root,
                                     exec_root=config.exec_root, cgroup_parent=config.cgroup_parent,
                                     log_opts=config.log_opts, default_runtime=config.default_runtime,
                                     runtime_paths=config.runtimes, log_driver=config.log_driver)
        self.execs = Execs(self.containers)
        self.containers.health.use_exec(self.execs.run_capture)  # health probes run through exec
        self.containers.on_remove.append(self.execs.forget_container)  # exec records go with their container
        self.image_service = ImageService(self.images, self.containers, self.events)
        self.registry = RegistryService(self.images, self.events, config)
        self.system = SystemService(config=config, containers=self.containers, images=self.images,
                                    events=self.events, daemon_id=self.daemon_id, runc_version=self.runc_version,
                                    conmon_version=self.conmon_version)

    def backends(self) -> dict[str, object]:
        """The API routers' backends, by the names `api.server.make_app` takes."""
        return {"containers": self.containers, "execs": self.execs, "images": self.image_service,
                "registry": self.registry, "system": self.system}
