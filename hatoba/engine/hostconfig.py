"""A container's HostConfig at create: dockerd's defaults, and dockerd's create-time validation of HostConfig
and Config, so that a bad value is refused at create (400) and never reaches start.

Pure functions over documents already typed by `hatoba.schema.engine` (no None fields, right Python
types); the only I/O is reading host facts (CPU count, cpusets, whether a device path exists).
Messages are dockerd 20.10's (runconfig, daemon/container.go verifyContainerSettings, daemon_unix.go
verifyPlatformContainerResources/verifyPlatformContainerSettings); a few checks dockerd only makes at
start (IPC/PID/UTS modes, ulimits, tmpfs options, sysctls, devices, DNS addresses) are made here with
the words dockerd, runc or the docker CLI use for them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from hatoba.engine import signals
from hatoba.errors import InvalidParameter, NotFound
from hatoba.runtime import spec as _spec

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
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
# HostConfig fields without a default that a container keeps when given
EXTRA_KEYS = ("Mounts", "Tmpfs", "Sysctls", "Init", "StorageOpt", "Annotations")

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024
MIN_DURATION_NS = 1_000_000  # container.MinimumDuration (1ms)
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
NETWORK_MODES = ("default", "bridge", "none", "host")
_JSON_FILE_OPTS = frozenset({"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex",
                             "tag"})
# log driver -> the options it takes (None: any, as dockerd's "none" driver)
LOG_DRIVERS: dict[str, frozenset[str] | None] = {
    "json-file": _JSON_FILE_OPTS, "k8s-file": _JSON_FILE_OPTS,
    "local": frozenset({"max-file", "max-size", "compress"}), "none": None,
}
_ULIMITS = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                      "rss", "rtprio", "rttime", "sigpending", "stack"})
# sysctls runc allows in a container's own IPC namespace
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})


@dataclass(frozen=True)
class HostFacts:
    """What the host offers, as dockerd's sysinfo reads it."""

    ncpu: int
    cpus: str  # the cpuset available to containers, e.g. "0-1"
    mems: str  # memory nodes, e.g. "0"
    cpu_realtime: bool
    cgroup_v2: bool = False  # a unified hierarchy: dockerd's default cgroup namespace is then private


def _read_first(paths: tuple[str, ...], default: str) -> str:
    for p in paths:
        try:
            with open(p) as f:
                v = f.read().strip()
        except OSError:
            continue
        if v:
            return v
    return default


@cache
def host_facts() -> HostFacts:
    try:
        ncpu = len(os.sched_getaffinity(0))
    except OSError:
        ncpu = os.cpu_count() or 1
    cpus = _read_first(("/sys/fs/cgroup/cpuset/cpuset.effective_cpus", "/sys/fs/cgroup/cpuset/cpuset.cpus",
                        "/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online"), f"0-{ncpu - 1}")
    mems = _read_first(("/sys/fs/cgroup/cpuset/cpuset.effective_mems", "/sys/fs/cgroup/cpuset/cpuset.mems",
                        "/sys/fs/cgroup/cpuset.mems.effective", "/sys/devices/system/node/online"), "0")
    rt = os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_period_us") or os.path.exists(
        "/sys/fs/cgroup/cpu,cpuacct/cpu.rt_period_us")
    return HostFacts(ncpu=ncpu, cpus=cpus, mems=mems, cpu_realtime=rt,
                     cgroup_v2=os.path.exists("/sys/fs/cgroup/cgroup.controllers"))


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return list(v)
    return v


def _bad(msg: str) -> InvalidParameter:
    return InvalidParameter(msg)


# ---- the build ---------------------------------------------------------------------------------

def build(hc_in: dict[str, Any] | None, *, config: dict[str, Any] | None = None, log_opts: dict[str, str],
          default_runtime: str, valid_runtime: Callable[[str], bool], default_log_driver: str = "json-file",
          facts: HostFacts | None = None) -> tuple[dict[str, Any], list[str]]:
    """The container's HostConfig (defaults merged, dockerd's coercions) and create warnings.

    `hc_in` is the "HostConfig" of `hatoba.schema.engine.container_create`; `config` its Config fields (for
    the checks that look at both, such as hostname vs. UTS mode). Raises InvalidParameter (NotFound for an
    unknown network) with dockerd's message. Bind mounts (`engine.mounts.parse`) are not checked here.
    """
    facts = facts or host_facts()
    config = config or {}
    hc: dict[str, Any] = {k: _copy(v) for k, v in HOST_CONFIG_DEFAULTS.items()}
    for k, v in (hc_in or {}).items():
        if v is not None and (k in hc or k in EXTRA_KEYS):
            hc[k] = _copy(v)
    if not hc.get("NetworkMode"):
        hc["NetworkMode"] = "default"
    warnings: list[str] = []

    # runconfig.DecodeConfig's checks
    _check_net_mode(config, hc)
    if hc.get("Isolation") not in ("", "default"):
        raise _bad(f'Invalid isolation: "{hc["Isolation"]}" - linux only supports \'default\'')
    if hc.get("IOMaximumBandwidth"):
        raise _bad("Invalid QoS settings: linux does not support configuration of maximum bandwidth")
    if hc.get("IOMaximumIOps"):
        raise _bad("Invalid QoS settings: linux does not support configuration of maximum IOPs")
    rt_period, rt_runtime = hc.get("CpuRealtimePeriod") or 0, hc.get("CpuRealtimeRuntime") or 0
    if (rt_period or rt_runtime) and not facts.cpu_realtime:
        raise _bad("Your kernel does not support CPU real-time scheduler")
    if rt_period and rt_runtime and rt_runtime > rt_period:
        raise _bad("cpu real-time runtime cannot be higher than cpu real-time period")

    # daemon/container.go validateHostConfig
    rp = hc.get("RestartPolicy") or {}
    if hc.get("AutoRemove") and rp.get("Name") not in (None, "", "no"):
        raise _bad("can't create 'AutoRemove' container with restart policy")
    for h in hc.get("ExtraHosts") or []:
        check_extra_host(h)
    check_port_bindings(hc.get("PortBindings") or {})
    hc["RestartPolicy"] = check_restart_policy(rp)

    # daemon_unix.go verifyPlatformContainerSettings / Resources (and hatoba's start-time checks)
    warnings += check_resources(hc, facts=facts, update=False)
    for dest in hc.get("Tmpfs") or {}:
        check_tmpfs_destination(dest)
    try:
        warnings += _spec.validate_host_config(hc)  # caps, security opts, tmpfs options, ulimits, OOM score
    except _spec.SpecError as e:
        raise _bad(str(e)) from None
    if hc.get("ShmSize", 0) < 0:
        raise _bad("SHM size can not be less than 0")
    runtime_name = hc.get("Runtime") or default_runtime
    if not valid_runtime(runtime_name):
        raise _bad(f"Unknown runtime specified {runtime_name}")
    hc["Runtime"] = runtime_name
    if not hc.get("CgroupnsMode"):  # dockerd's default: private on cgroup v2, host on v1
        hc["CgroupnsMode"] = "private" if facts.cgroup_v2 else "host"
    if hc.get("CgroupnsMode") not in ("", "private", "host"):
        raise _bad(f"invalid cgroup namespace mode: {hc['CgroupnsMode']}")
    _check_ns_modes(hc)
    _check_sysctls(hc)
    for d in hc.get("Dns") or []:
        check_ip(d)
    _check_devices(hc)
    _check_ulimits(hc)
    if hc.get("StorageOpt"):
        raise _bad("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    mode = hc["NetworkMode"]
    if mode not in NETWORK_MODES and not mode.startswith("container:"):
        raise NotFound(f"network {mode} not found")
    hc["LogConfig"] = check_log_config(hc.get("LogConfig") or {}, log_opts, default_log_driver)

    # adaptContainerSettings
    if not hc.get("ShmSize"):
        hc["ShmSize"] = DEFAULT_SHM_SIZE
    if hc.get("PortBindings") or hc.get("PublishAllPorts"):
        warnings.append("Published ports are discarded: port publishing needs the bridge network, which this "
                        "hatoba does not have yet.")
    return hc, warnings


def _check_net_mode(config: dict[str, Any], hc: dict[str, Any]) -> None:
    """runconfig's validateNetMode / validateNetContainerMode."""
    mode = hc.get("NetworkMode") or ""
    parts = mode.split(":")
    if parts[0] == "container" and (len(parts) < 2 or parts[1] == ""):
        raise _bad("Invalid network mode: invalid container format container:<name|id>")
    is_container = parts[0] == "container"
    if is_container:
        if config.get("Hostname"):
            raise _bad("conflicting options: hostname and the network mode")
        if hc.get("Links"):
            raise _bad("conflicting options: container type network can't be used with links. This would "
                       "result in undefined behavior")
        if hc.get("Dns"):
            raise _bad("conflicting options: dns and the network mode")
        if hc.get("ExtraHosts"):
            raise _bad("conflicting options: custom host-to-IP mapping and the network mode")
    if (is_container or mode == "host") and config.get("MacAddress"):
        raise _bad("conflicting options: mac-address and the network mode")
    if is_container and (hc.get("PortBindings") or hc.get("PublishAllPorts")):
        raise _bad("conflicting options: port publishing and the container type network mode")
    if is_container and config.get("ExposedPorts"):
        raise _bad("conflicting options: port exposing and the container type network mode")
    if hc.get("UTSMode") == "host" and config.get("Hostname"):
        raise _bad("conflicting options: hostname and the UTS mode")
    if mode == "host" and hc.get("Links"):
        raise _bad("conflicting options: host type networking can't be used with links. This would result in "
                   "undefined behavior")


def check_restart_policy(rp: dict[str, Any]) -> dict[str, Any]:
    """validateRestartPolicy; returns the policy as hatoba stores it ("" becomes "no")."""
    name = rp.get("Name") or ""
    count = rp.get("MaximumRetryCount") or 0
    if name in ("always", "unless-stopped", "no"):
        if count != 0:
            raise _bad(f"maximum retry count cannot be used with restart policy '{name}'")
    elif name == "on-failure":
        if count < 0:
            raise _bad("maximum retry count cannot be negative")
    elif name != "":
        raise _bad(f"invalid restart policy '{name}'")
    return {"Name": name or "no", "MaximumRetryCount": count if name == "on-failure" else 0}


def check_ip(value: str) -> str:
    """opts.ValidateIPAddress."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise _bad(f"{value} is not an ip address") from None


def check_extra_host(value: str) -> None:
    """opts.ValidateExtraHost: `host:ip` (or `host:host-gateway`)."""
    name, sep, ip = value.partition(":")
    if not sep or not name:
        raise _bad(f'bad format for add-host: "{value}"')
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            raise _bad(f'invalid IP address in add-host: "{ip}"') from None


def _port_number(s: str) -> bool:
    return s.isdigit() and s.isascii() and int(s) <= 65535


def _port_range(s: str) -> bool:
    if s == "":
        return True
    lo, sep, hi = s.partition("-")
    if not sep:
        return _port_number(s)
    return _port_number(lo) and _port_number(hi) and int(hi) >= int(lo)


def check_port_bindings(ports: dict[str, Any]) -> None:
    """validatePortBindings: `port[/proto]` keys, host ports as numbers or ranges."""
    for port, bindings in ports.items():
        port_str = port.split("/", 1)[0] if "/" in port else port
        if port_str and not _port_number(port_str):
            raise _bad(f'invalid port specification: "{port_str}"')
        for pb in bindings or []:
            host_port = pb.get("HostPort") or ""
            hp = host_port.split("/", 1)[0] if "/" in host_port else host_port
            if not _port_range(hp):
                raise _bad(f'invalid port specification: "{hp}"')


def parse_uint_list(value: str) -> list[tuple[int, int]]:
    """parsers.ParseUintList as ranges; ValueError("invalid format: …")."""
    if value == "":
        return []
    out = []
    for r in value.split(","):
        lo, sep, hi = r.partition("-")
        try:
            a = int(lo) if lo.strip("+-").isdigit() and lo.isascii() else int("x")
            b = (int(hi) if hi.strip("+-").isdigit() and hi.isascii() else int("x")) if sep else a
        except ValueError:
            raise ValueError(f"invalid format: {value}") from None
        if b < a:
            raise ValueError(f"invalid format: {value}")
        out.append((a, b))
    return out


def _available(requested: str, available: str) -> bool:
    have = set()
    for a, b in parse_uint_list(available):
        have.update(range(a, b + 1))
    for a, b in parse_uint_list(requested):
        if a < 0 or b > max(have, default=-1):
            return False
        if not all(i in have for i in range(a, b + 1)):
            return False
    return True


def check_resources(hc: dict[str, Any], *, facts: HostFacts | None = None, update: bool = False) -> list[str]:
    """verifyPlatformContainerResources (its OOM-kill warning and caps, ulimit, tmpfs option checks are in
    runtime.spec.validate_host_config, which `build` calls too); coerces
    MemorySwappiness -1 to None and CpuPercent to 0 as dockerd does. Returns warnings."""
    facts = facts or host_facts()
    warnings: list[str] = []
    if hc.get("MemorySwappiness") == -1:
        hc["MemorySwappiness"] = None
    mem, swap = hc.get("Memory") or 0, hc.get("MemorySwap") or 0
    if mem != 0 and mem < MIN_MEMORY:
        raise _bad("Minimum memory limit allowed is 6MB")
    if mem > 0 and swap > 0 and swap < mem:
        raise _bad("Minimum memoryswap limit should be larger than memory limit, see usage")
    if mem == 0 and swap > 0 and not update:
        raise _bad("You should always set the Memory limit when using Memoryswap limit, see usage")
    sw = hc.get("MemorySwappiness")
    if sw is not None and not 0 <= sw <= 100:
        raise _bad(f"Invalid value: {sw}, valid memory swappiness range is 0-100")
    res = hc.get("MemoryReservation") or 0
    if res > 0 and res < MIN_MEMORY:
        raise _bad("Minimum memory reservation allowed is 6MB")
    if mem > 0 and res > 0 and mem < res:
        raise _bad("Minimum memory limit can not be less than memory reservation limit, see usage")
    kmem = hc.get("KernelMemory") or 0
    if kmem > 0:
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in a future release.")
        if kmem < MIN_MEMORY:
            raise _bad("Minimum kernel memory limit allowed is 6MB")
    nano = hc.get("NanoCpus") or 0
    if nano > 0 and (hc.get("CpuPeriod") or 0) > 0:
        raise _bad("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and (hc.get("CpuQuota") or 0) > 0:
        raise _bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > facts.ncpu * 1_000_000_000:
        raise _bad(f"Range of CPUs is from 0.01 to {facts.ncpu}.00, as there are only {facts.ncpu} CPUs available")
    period, quota = hc.get("CpuPeriod") or 0, hc.get("CpuQuota") or 0
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise _bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise _bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (hc.get("CpuPercent") or 0) > 0:
        warnings.append("linux does not support CPU percent. Percent discarded.")
        hc["CpuPercent"] = 0
    for key, what, avail, label in (("CpusetCpus", "cpus", facts.cpus, "CPUs"),
                                    ("CpusetMems", "mems", facts.mems, "memory nodes")):
        v = hc.get(key) or ""
        try:
            ok = _available(v, avail)
        except ValueError as e:
            raise _bad(f"Invalid value {v} for cpuset {what}: {e}") from None
        if not ok:
            raise _bad(f"Requested {label} are not available - requested {v}, available: {avail}")
    bw = hc.get("BlkioWeight") or 0
    if bw > 0 and not 10 <= bw <= 1000:
        raise _bad("Range of blkio weight is from 10 to 1000")
    for wd in hc.get("BlkioWeightDevice") or []:
        w = wd.get("Weight") or 0
        if w > 0 and not 10 <= w <= 1000:
            raise _bad("Range of blkio weight is from 10 to 1000")
    if hc.get("IOMaximumBandwidth") or hc.get("IOMaximumIOps"):
        raise _bad("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
    return warnings


def check_tmpfs_destination(dest: str) -> None:
    """ValidateTmpfsMountDestination."""
    if os.path.normpath(dest.replace("\\", "/")) in ("/", "//"):
        raise _bad("invalid specification: destination can't be '/'")
    if not dest.replace("\\", "/").startswith("/"):
        raise _bad(f"invalid mount path: '{dest}' mount path must be absolute")


def _check_ns_modes(hc: dict[str, Any]) -> None:
    ipc = hc.get("IpcMode") or ""
    if not (ipc in ("", "none", "private", "shareable", "host") or (ipc.startswith("container:") and ipc[10:])):
        raise _bad(f"invalid IPC mode: {ipc}")
    pid = hc.get("PidMode") or ""
    if not (pid in ("", "host") or (pid.startswith("container:") and pid[10:])):
        raise _bad(f"invalid PID mode: {pid}")
    uts = hc.get("UTSMode") or ""
    if uts not in ("", "host"):
        raise _bad(f"invalid UTS mode: {uts}")


def _check_sysctls(hc: dict[str, Any]) -> None:
    """runc's validateSysctl: only namespaced sysctls, and not in a namespace shared with the host."""
    for name in hc.get("Sysctls") or {}:
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if hc.get("IpcMode") == "host":
                raise _bad(f'sysctl "{name}" is not allowed in the hosts ipc namespace')
            continue
        if name.startswith("net."):
            if hc.get("NetworkMode") == "host":
                raise _bad(f'sysctl "{name}" not allowed in host network namespace')
            continue
        if name in ("kernel.domainname", "kernel.hostname"):
            if hc.get("UTSMode") == "host":
                raise _bad(f'sysctl "{name}" is not allowed in the hosts uts namespace')
            continue
        raise _bad(f'sysctl "{name}" is not in a separate kernel namespace')


def _check_devices(hc: dict[str, Any]) -> None:
    for d in hc.get("Devices") or []:
        path = d.get("PathOnHost") or ""
        try:
            os.stat(path)
        except OSError as e:
            raise _bad(f'error gathering device information while adding custom device "{path}": '
                       f"{os.strerror(e.errno or 0).lower()}") from None
        perms = d.get("CgroupPermissions") or ""
        if any(c not in "rwm" for c in perms):
            raise _bad(f"invalid device mode: {perms}")


def _check_ulimits(hc: dict[str, Any]) -> None:
    """go-units ParseUlimit's rules for API ulimits."""
    for ul in hc.get("Ulimits") or []:
        name = ul.get("Name") or ""
        if name not in _ULIMITS:
            raise _bad(f"invalid ulimit type: {name}")
        soft, hard = ul.get("Soft") or 0, ul.get("Hard") or 0
        if soft > hard:
            raise _bad(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")


def _size(v: str) -> int:
    from hatoba.runtime.logs import parse_size

    return parse_size(v)


def check_log_config(lc: dict[str, Any], daemon_opts: dict[str, str], default_driver: str) -> dict[str, Any]:
    """mergeAndVerifyLogConfig and the driver's option checks: the container's LogConfig as stored."""
    driver = lc.get("Type") or default_driver
    opts = dict(lc.get("Config") or {})
    if driver == default_driver:
        opts = {**daemon_opts, **opts}
    if driver not in LOG_DRIVERS:
        raise _bad(f'error looking up logging plugin {driver}: plugin "{driver}" not found')
    allowed = LOG_DRIVERS[driver]
    if allowed is not None:
        for key in opts:
            if key not in allowed:
                if driver == "local":
                    raise _bad(f"unknown log opt '{key}' for log driver local")
                raise _bad(f"unknown log opt '{key}' for {driver} log driver")
        max_size = -1
        if "max-size" in opts:
            try:
                max_size = _size(opts["max-size"])
            except ValueError:
                raise _bad(f"invalid size: '{opts['max-size']}'") from None
            if max_size <= 0:
                raise _bad("max-size must be a positive number")
        max_file = 1
        if "max-file" in opts:
            v = opts["max-file"]
            if not (v.lstrip("+-").isdigit() and v.isascii()):
                raise _bad(f'strconv.Atoi: parsing "{v}": invalid syntax')
            max_file = int(v)
            if max_file < 1:
                raise _bad("max-file cannot be less than 1")
        if "compress" in opts:
            c = opts["compress"]
            if c not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"):
                raise _bad(f'strconv.ParseBool: parsing "{c}": invalid syntax')
            if c in ("1", "t", "T", "TRUE", "true", "True") and driver != "local" and (max_file < 2 or max_size == -1):
                raise _bad("compress cannot be true when max-file is less than 2 or max-size is not set")
    return {"Type": driver, "Config": opts}


# ---- Config ------------------------------------------------------------------------------------

def parse_signal(raw: str) -> int:
    """signal.ParseSignal as dockerd checks StopSignal at create: a name, or any non-zero number."""
    return signals.parse_signal(raw, default=None, platform=False)


def validate_config(config: dict[str, Any]) -> list[str]:
    """validateContainerConfig: WorkingDir absolute, StopSignal valid, Env entries named, Healthcheck
    durations. Returns warnings (none today)."""
    wd = config.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise _bad(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    for env in config.get("Env") or []:
        if env.split("=", 1)[0] == "":
            raise _bad("invalid environment variable: " + env)
    hc = config.get("Healthcheck")
    if hc:
        for key in ("Interval", "Timeout"):
            v = hc.get(key) or 0
            if v != 0 and v < MIN_DURATION_NS:
                raise _bad(f"{key} in Healthcheck cannot be less than 1ms")
        if (hc.get("Retries") or 0) < 0:
            raise _bad("Retries in Healthcheck cannot be negative")
        v = hc.get("StartPeriod") or 0
        if v != 0 and v < MIN_DURATION_NS:
            raise _bad("StartPeriod in Healthcheck cannot be less than 1ms")
    return []


def validate_update(update: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """POST /containers/{id}/update (a `schema.engine.container_update` document) against the container's
    HostConfig: the merged HostConfig and warnings, or InvalidParameter."""
    rp = update.get("RestartPolicy")
    if rp is not None and current.get("AutoRemove") and (rp.get("Name") or "no") != "no":
        raise _bad("Restart policy cannot be updated because AutoRemove is enabled for the container")
    hc = {**current, **{k: v for k, v in update.items() if k != "RestartPolicy"}}
    if rp is not None:
        hc["RestartPolicy"] = check_restart_policy(rp)
    warnings = check_resources(hc, update=True)
    return hc, warnings
