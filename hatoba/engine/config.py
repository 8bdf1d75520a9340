"""Daemon configuration: command-line flags merged over a daemon.json subset.

Every daemon.json key is read or refused: `debug` sets the debug log level, `live-restore` must be
true (hatoba always keeps containers running across daemon restarts), `log-driver` is the default log
driver of new containers (json-file, local, none or k8s-file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from hatoba.engine import hostconfig

DEFAULT_SOCKET = "unix:///run/hatoba/hatoba.sock"


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: str = "/var/lib/hatoba"
    exec_root: str = "/run/hatoba"
    pidfile: str = ""
    log_level: str = "info"
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    runtimes: dict[str, str] = field(default_factory=dict)
    default_runtime: str = field(default_factory=lambda: _default_runtime())
    conmon: str = "/usr/bin/conmon"
    cgroup_parent: str = "/hatoba"
    log_opts: dict[str, str] = field(default_factory=dict)
    log_driver: str = "json-file"  # the default for containers created without a LogConfig.Type
    group: str = ""
    bootstrap_missing_images: bool = False  # pulls of recipe names fall back to `image bootstrap`

    def runtime_path(self, name: str | None) -> str:
        name = name or self.default_runtime
        if name in self.runtimes:
            return self.runtimes[name]
        for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
        return name

    def resolved_pidfile(self) -> str:
        return self.pidfile or os.path.join(self.exec_root, "hatobad.pid")


def _default_runtime() -> str:
    """runc; crun where cgroup v2 is unified (crun refuses v1/hybrid hosts) and installed."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
            if os.access(os.path.join(d, "crun"), os.X_OK):
                return "crun"
    return "runc"


_FILE_KEYS = {
    "hosts": "hosts", "data-root": "data_root", "exec-root": "exec_root", "pidfile": "pidfile",
    "log-level": "log_level", "tls": "tls", "tlsverify": "tlsverify", "tlscacert": "tlscacert",
    "tlscert": "tlscert", "tlskey": "tlskey", "default-runtime": "default_runtime",
    "cgroup-parent": "cgroup_parent", "log-opts": "log_opts", "group": "group",
    "bootstrap-missing-images": "bootstrap_missing_images",
}


LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
LOG_DRIVERS = tuple(hostconfig.LOG_DRIVERS)  # one list: what create accepts


def check_log_driver(name: str) -> str:
    """A log driver hatoba has (dockerd's message otherwise)."""
    if name not in LOG_DRIVERS:
        raise ValueError(f"logger: no log driver named '{name}' is registered")
    return name


def load_file(cfg: DaemonConfig, path: str) -> None:
    """Apply a daemon.json; unknown keys are an error, as with dockerd."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError("the configuration file is not a JSON object")
    for k, v in doc.items():
        if k == "runtimes":
            if not isinstance(v, dict) or not all(isinstance(s, dict) for s in v.values()):
                raise ValueError('"runtimes" must map names to {"path": ...}')
            cfg.runtimes = {name: spec.get("path", name) for name, spec in v.items()}
        elif k == "debug":
            if not isinstance(v, bool):
                raise ValueError(f'"debug" must be true or false, not {json.dumps(v)}')
        elif k == "live-restore":
            if v is not True:
                raise ValueError(f'"live-restore": {json.dumps(v)} is not supported: hatoba always keeps containers '
                                 "running across daemon restarts (live-restore); remove the key or set it to true")
        elif k == "log-driver":
            if not isinstance(v, str):
                raise ValueError(f'"log-driver" must be a string, not {json.dumps(v)}')
            cfg.log_driver = check_log_driver(v)
        elif k in ("insecure-registries", "registry-mirrors", "max-concurrent-downloads", "max-concurrent-uploads"):
            setattr(cfg, k.replace("-", "_"), v)
        elif k in _FILE_KEYS:
            setattr(cfg, _FILE_KEYS[k], v)
        else:
            raise ValueError(f"the following directives don't match any configuration option: {k}")
    if cfg.log_level not in LOG_LEVELS:
        raise ValueError(f"invalid log level: {cfg.log_level}")
    if not isinstance(cfg.hosts, list) or not all(isinstance(h, str) for h in cfg.hosts):
        raise ValueError('"hosts" must be a list of strings')
    if doc.get("debug") is True:
        cfg.log_level = "debug"  # as dockerd: debug wins over log-level
