"""Build an OCI runtime ``config.json`` (runtime-spec 1.0.2) with Docker's defaults.

``build_spec(...)`` turns a Docker ``HostConfig`` dict plus the values the engine has already
worked out (rootfs, argv, env, resolved user, hostname, netns, prepared mounts) into the dict runc
reads. What it reproduces from dockerd 20.10:

* capabilities: Docker's 14 default caps in bounding/effective/permitted (inheritable and ambient
  empty, as dockerd does since CVE-2022-24769), ``CapAdd``/``CapDrop`` with or without ``CAP_``
  and with ``ALL``; ``Privileged`` gives every capability. Capabilities this daemon itself lacks in
  its bounding set (here CAP_SYS_RESOURCE) are dropped, since runc could not grant them anyway.
* default mounts (/proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue, /dev/shm sized by
  ``ShmSize``), masked and read-only paths, device cgroup rules, namespaces, seccomp (Docker's
  default profile, ``seccomp=unconfined`` or a custom JSON profile), ``no-new-privileges``,
  ``systempaths=unconfined``, ``Tmpfs``, ``Devices``, ``DeviceCgroupRules``, ``Sysctls``,
  ``ReadonlyRootfs``, ``OomScoreAdj``, ``IpcMode``/``PidMode``/``UTSMode``/``CgroupnsMode``.
* resources: memory (limit, swap, reservation, swappiness, OOM killer), CPU (shares, CFS
  quota/period, ``NanoCpus``, cpuset, realtime), pids, block I/O weight and throttles.
* rlimits: there is no CAP_SYS_RESOURCE here, so every requested limit is clamped to this
  process's current hard limit (or ``hard_rlimits``). By default ``RLIMIT_NOFILE`` is set to
  soft = hard = the daemon's hard limit, which is what a Docker container inherits from dockerd.

Not done here (the engine's job or not supported): ``Init`` (``--init``: the engine mounts the init
binary and puts it in front of ``args``); AppArmor and SELinux labels (no LSM here); user namespaces; ``PATH``,
``HOSTNAME`` and ``TERM`` are expected in ``env`` already (``PATH``/``HOME`` are added only if
missing). Joining another container's namespaces (``container:<id>`` modes) needs the engine to
pass the namespace file paths in ``namespace_paths``.

``resources_for_update(body)`` converts a ``POST /containers/{id}/update`` body into the JSON for
``runc update -r -``. ``validate_host_config(hc)`` gives Docker's create-time errors and warnings.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import resource
import stat
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hatoba.runtime import cgroups as _cgroups
from hatoba.runtime import seccomp as _seccomp

if TYPE_CHECKING:
    from hatoba.runtime.users import ResolvedUser

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_CAPABILITIES",
    "ALL_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "DEFAULT_SHM_SIZE",
    "OCI_VERSION",
    "SpecError",
    "SecurityOptions",
    "build_spec",
    "resources_for_update",
    "tweak_capabilities",
    "normalize_capability",
    "parse_security_opts",
    "merge_tmpfs_options",
    "parse_device_cgroup_rule",
    "validate_host_config",
]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Index = capability number (linux/capability.h).
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# dockerd 20.10 (what `docker inspect` shows in HostConfig.MaskedPaths / ReadonlyPaths).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

RLIM_INFINITY = 2**64 - 1
LINUX_MIN_CPU_SHARES = 2
LINUX_MAX_CPU_SHARES = 262144
LINUX_MIN_MEMORY = 6 * 1024 * 1024
CFS_DEFAULT_PERIOD = 100000


class SpecError(ValueError):
    """Invalid container configuration (Docker answers these with HTTP 400 at create time)."""


# --------------------------------------------------------------------------- host facts


@functools.lru_cache(maxsize=1)
def _host_bounding_caps() -> frozenset[str]:
    """Capabilities in this process's bounding set (all known ones if unreadable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return frozenset(c for i, c in enumerate(ALL_CAPABILITIES) if mask & (1 << i))
    except OSError:
        pass
    return frozenset(ALL_CAPABILITIES)


@functools.lru_cache(maxsize=1)
def _cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return len(ALL_CAPABILITIES) - 1


@functools.lru_cache(maxsize=1)
def _swap_limit_supported() -> bool:
    return _cgroups.swap_limit_supported()  # cached: the host does not change under a daemon


@functools.lru_cache(maxsize=1)
def _seccomp_supported() -> bool:
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1048576


def _online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- capabilities


def normalize_capability(name: str) -> str:
    """``net_admin`` / ``CAP_NET_ADMIN`` → ``CAP_NET_ADMIN``; ``all`` → ``ALL``; unknown → SpecError."""
    n = name.strip().upper()
    if n == "ALL":
        return "ALL"
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPABILITIES:
        raise SpecError(f'unknown capability: "{n}"')
    return n


def _known_caps() -> list[str]:
    """All capabilities the running kernel knows (Docker's GetAllCapabilities)."""
    return list(ALL_CAPABILITIES[: _cap_last_cap() + 1])


def tweak_capabilities(
    cap_add: Iterable[str] | None, cap_drop: Iterable[str] | None, privileged: bool = False
) -> list[str]:
    """Docker's TweakCapabilities: the container's capability list, in Docker's order."""
    if privileged:
        return _known_caps()
    adds = [normalize_capability(c) for c in (cap_add or [])]
    drops = [normalize_capability(c) for c in (cap_drop or [])]
    if not adds and not drops:
        return list(DEFAULT_CAPABILITIES)
    caps: list[str]
    if "ALL" in adds:
        caps = [c for c in _known_caps() if c not in drops]
    elif "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
        caps += adds
    out: list[str] = []
    for c in caps:
        if c not in out:
            out.append(c)
    return out


# --------------------------------------------------------------------------- security opts


class SecurityOptions:
    """Parsed ``HostConfig.SecurityOpt``."""

    def __init__(self) -> None:
        self.seccomp: str | None = None  # None = default profile, "unconfined", or JSON text
        self.no_new_privileges = False
        self.systempaths_unconfined = False
        self.apparmor: str | None = None
        self.labels: list[str] = []

    def __repr__(self) -> str:
        return (
            f"SecurityOptions(seccomp={'<json>' if self.seccomp and self.seccomp.lstrip().startswith('{') else self.seccomp!r}, "
            f"no_new_privileges={self.no_new_privileges}, systempaths_unconfined={self.systempaths_unconfined})"
        )


def _parse_bool(v: str) -> bool:
    t = v.strip().lower()
    if t in ("1", "t", "true"):
        return True
    if t in ("0", "f", "false"):
        return False
    raise SpecError(f"invalid --security-opt 2: {v!r}")


def parse_security_opts(opts: Iterable[str] | None) -> SecurityOptions:
    """Parse SecurityOpt entries the way dockerd's parseSecurityOpt does."""
    so = SecurityOptions()
    for opt in opts or []:
        if opt == "no-new-privileges":
            so.no_new_privileges = True
            continue
        if opt == "disable":
            so.labels.append("disable")
            continue
        if "=" in opt:
            key, val = opt.split("=", 1)
        elif ":" in opt:
            key, val = opt.split(":", 1)
        else:
            raise SpecError(f'invalid --security-opt 1: "{opt}"')
        if key == "label":
            so.labels.append(val)
        elif key == "apparmor":
            so.apparmor = val
        elif key == "seccomp":
            so.seccomp = val
        elif key == "no-new-privileges":
            so.no_new_privileges = _parse_bool(val)
        elif key == "systempaths":
            if val != "unconfined":
                raise SpecError(f'invalid --security-opt 2: "{opt}"')
            so.systempaths_unconfined = True
        else:
            raise SpecError(f'invalid --security-opt 2: "{opt}"')
    return so


# --------------------------------------------------------------------------- mounts

_TMPFS_DATA_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}
# flag option → collision key; both members of a pair share the key; all propagation modes share one.
_FLAG_KEYS: dict[str, str] = {}
for _pair in (
    ("ro", "rw"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("exec", "noexec"),
    ("sync", "async"),
    ("dirsync",),
    ("remount",),
    ("mand", "nomand"),
    ("atime", "noatime"),
    ("diratime", "nodiratime"),
    ("bind",),
    ("rbind",),
    ("relatime", "norelatime"),
    ("strictatime", "nostrictatime"),
):
    for _o in _pair:
        _FLAG_KEYS[_o] = _pair[0]
for _o in ("unbindable", "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave"):
    _FLAG_KEYS[_o] = "<propagation>"


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Docker's MergeTmpfsOptions: later options win over earlier conflicting ones."""
    seen: set[str] = set()
    out: list[str] = []
    for opt in reversed(options):
        if opt in ("defaults", ""):
            continue
        if opt in _FLAG_KEYS:
            key = "flag:" + _FLAG_KEYS[opt]
        else:
            k, sep, _ = opt.partition("=")
            if not sep or k not in _TMPFS_DATA_KEYS:
                raise SpecError(f'Invalid tmpfs option ["{opt}"]')
            key = "data:" + k
        if key not in seen:
            seen.add(key)
            out.insert(0, opt)
    return out


def _default_mounts(shm_size: int, privileged: bool, ipc_mode: str) -> list[dict[str, Any]]:
    ro = [] if privileged else ["ro"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", *ro],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": [*ro, "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    if ipc_mode == "host":
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "bind",
                "source": "/dev/shm",
                "options": ["rbind", "nosuid", "noexec", "nodev"],
            }
        )
    elif ipc_mode != "none":
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"],
            }
        )
    return mounts


def _clean_dest(p: str) -> str:
    """Absolute, normalised path ("" → "/")."""
    return os.path.normpath("/" + p.lstrip("/")) if p.strip("/") else "/"


def _mount_depth(m: dict[str, Any]) -> int:
    d = _clean_dest(m.get("destination", ""))
    return 0 if d == "/" else d.count("/")


# --------------------------------------------------------------------------- devices

_DEV_RULE_RE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def parse_device_cgroup_rule(rule: str) -> dict[str, Any]:
    """``"c 1:3 mr"`` → an OCI ``linux.resources.devices`` entry."""
    m = _DEV_RULE_RE.match(rule.strip())
    if not m:
        raise SpecError(f"invalid device cgroup format '{rule}'")
    out: dict[str, Any] = {"allow": True, "type": m.group(1)}
    if m.group(2) != "*":
        out["major"] = int(m.group(2))
    if m.group(3) != "*":
        out["minor"] = int(m.group(3))
    out["access"] = m.group(4)
    return out


def _default_device_rules() -> list[dict[str, Any]]:
    def c(
        major: int | None, minor: int | None, access: str = "rwm", allow: bool = True, t: str = "c"
    ) -> dict:
        d: dict[str, Any] = {"allow": allow, "type": t}
        if major is not None:
            d["major"] = major
        if minor is not None:
            d["minor"] = minor
        d["access"] = access
        return d

    return [
        {"allow": False, "access": "rwm"},
        c(1, 3),  # /dev/null
        c(1, 5),  # /dev/zero
        c(1, 7),  # /dev/full
        c(1, 8),  # /dev/random
        c(1, 9),  # /dev/urandom
        c(5, 0),  # /dev/tty
        c(5, 1),  # /dev/console
        c(5, 2),  # /dev/ptmx
        c(136, None),  # /dev/pts/*
        c(10, 229, allow=False),  # /dev/fuse (dockerd denies it explicitly)
        # mknod of any device; after the deny above: the v1 devices emulator cannot punch a
        # hole into a wildcard rule (runc appends the same two rules itself).
        c(None, None, "m"),
        c(None, None, "m", t="b"),
    ]


def _device_from_stat(path_in_container: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "path": path_in_container,
        "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _devices_from_path(on_host: str, in_container: str, perms: str) -> tuple[list[dict], list[dict]]:
    """Docker's DevicesFromPath: one device, or every device under a directory."""
    if not perms or any(ch not in "rwm" for ch in perms):
        raise SpecError(f"invalid device cgroup permissions: {perms!r}")
    resolved = os.path.realpath(on_host)
    try:
        st = os.stat(resolved)
    except OSError as e:
        raise SpecError(
            f'error gathering device information while adding custom device "{on_host}": {e.strerror or e}'
        ) from e
    in_container = in_container or on_host
    devs: list[dict] = []
    rules: list[dict] = []
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d = _device_from_stat(in_container, st)
        devs.append(d)
    elif stat.S_ISDIR(st.st_mode):
        for dirpath, _dirs, files in os.walk(resolved):
            for fn in sorted(files):
                p = os.path.join(dirpath, fn)
                try:
                    fst = os.lstat(p)
                except OSError:
                    continue
                if not (stat.S_ISCHR(fst.st_mode) or stat.S_ISBLK(fst.st_mode)):
                    continue
                rel = os.path.relpath(p, resolved)
                devs.append(_device_from_stat(os.path.join(in_container, rel), fst))
        if not devs:
            raise SpecError(
                f'error gathering device information while adding custom device "{on_host}": no devices found'
            )
    else:
        raise SpecError(
            f'error gathering device information while adding custom device "{on_host}": not a device node'
        )
    for d in devs:
        rules.append(
            {"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"], "access": perms}
        )
    return devs, rules


_HOST_DEV_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def _host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every char/block device under /dev (what a privileged Docker container gets)."""
    out: list[dict[str, Any]] = []

    def walk(d: str) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name not in _HOST_DEV_SKIP_DIRS:
                        walk(e.path)
                    continue
                if e.name == "console":
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if st.st_rdev == 0:
                    continue
                out.append(_device_from_stat(e.path, st))

    walk(root)
    return out


def _blkio_device(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise SpecError(f"{path}: {e.strerror or e}") from e
    if not stat.S_ISBLK(st.st_mode):
        raise SpecError(f"{path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


# --------------------------------------------------------------------------- rlimits


def _rlimit_value(v: Any) -> int:
    v = int(v)
    if v < 0 or v >= RLIM_INFINITY:
        return RLIM_INFINITY
    return v


def _norm_rlimit_name(name: str) -> str:
    n = name.strip().upper()
    return n if n.startswith("RLIMIT_") else "RLIMIT_" + n


def _current_hard(name: str, hard_rlimits: dict[str, int] | None) -> int:
    if hard_rlimits:
        for k, v in hard_rlimits.items():
            if _norm_rlimit_name(k) == name:
                return _rlimit_value(v)
    num = getattr(resource, name, None)
    if num is None:
        raise SpecError(f"invalid ulimit type: {name[len('RLIMIT_') :].lower()}")
    hard = resource.getrlimit(num)[1]
    return RLIM_INFINITY if hard == resource.RLIM_INFINITY else _rlimit_value(hard)


def _rlimits(ulimits: list[dict] | None, hard_rlimits: dict[str, int] | None) -> list[dict[str, Any]]:
    requested: dict[str, tuple[int, int]] = {}
    for ul in ulimits or []:
        name = _norm_rlimit_name(str(ul.get("Name", "")))
        if getattr(resource, name, None) is None:
            raise SpecError(f"invalid ulimit type: {ul.get('Name')}")
        requested[name] = (_rlimit_value(ul.get("Soft", 0)), _rlimit_value(ul.get("Hard", 0)))
    if "RLIMIT_NOFILE" not in requested:
        h = _current_hard("RLIMIT_NOFILE", hard_rlimits)
        requested = {"RLIMIT_NOFILE": (h, h), **requested}
    out = []
    for name, (soft, hard) in requested.items():
        cap = _current_hard(name, hard_rlimits)
        if name == "RLIMIT_NOFILE":
            cap = min(cap, _nr_open())
        hard = min(hard, cap)
        soft = min(soft, hard)
        out.append({"type": name, "hard": hard, "soft": soft})
    return out


# --------------------------------------------------------------------------- resources


def _int(hc: dict, key: str) -> int:
    v = hc.get(key)
    if v is None or isinstance(v, bool):
        return 0
    try:
        return int(v)
    except (TypeError, ValueError) as e:
        raise SpecError(f"invalid {key}: {v!r}") from e


def _memory_resources(hc: dict, *, for_update: bool) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    limit = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    reservation = _int(hc, "MemoryReservation")
    if limit > 0:
        mem["limit"] = limit
    if reservation > 0:
        mem["reservation"] = reservation
    if _swap_limit_supported():
        if swap > 0 or swap == -1:
            mem["swap"] = swap
        elif swap == 0 and limit > 0 and not for_update:
            mem["swap"] = 2 * limit
    sw = hc.get("MemorySwappiness")
    if sw is not None and int(sw) >= 0:
        mem["swappiness"] = int(sw)
    if hc.get("OomKillDisable") and not for_update:
        mem["disableOOMKiller"] = True
    return mem


def _cpu_resources(hc: dict) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    shares = _int(hc, "CpuShares")
    if shares < 0:
        raise SpecError("shares: invalid argument")
    if shares:
        cpu["shares"] = max(LINUX_MIN_CPU_SHARES, min(LINUX_MAX_CPU_SHARES, shares))
    nano = _int(hc, "NanoCpus")
    if nano > 0:
        cpu["period"] = CFS_DEFAULT_PERIOD
        cpu["quota"] = nano * CFS_DEFAULT_PERIOD // 1_000_000_000
    if _int(hc, "CpuPeriod"):
        cpu["period"] = _int(hc, "CpuPeriod")
    if _int(hc, "CpuQuota"):
        cpu["quota"] = _int(hc, "CpuQuota")
    if _int(hc, "CpuRealtimePeriod"):
        cpu["realtimePeriod"] = _int(hc, "CpuRealtimePeriod")
    if _int(hc, "CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = _int(hc, "CpuRealtimeRuntime")
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    return cpu


def _blkio_resources(hc: dict) -> dict[str, Any]:
    blk: dict[str, Any] = {}
    w = _int(hc, "BlkioWeight")
    if w:
        blk["weight"] = w
    wd = []
    for e in hc.get("BlkioWeightDevice") or []:
        major, minor = _blkio_device(e["Path"])
        wd.append({"major": major, "minor": minor, "weight": int(e["Weight"])})
    if wd:
        blk["weightDevice"] = wd
    for key, oci in (
        ("BlkioDeviceReadBps", "throttleReadBpsDevice"),
        ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
        ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
        ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"),
    ):
        lst = []
        for e in hc.get(key) or []:
            major, minor = _blkio_device(e["Path"])
            lst.append({"major": major, "minor": minor, "rate": int(e["Rate"])})
        if lst:
            blk[oci] = lst
    return blk


def resources_for_update(update: dict, current: dict | None = None) -> dict[str, Any]:
    """``POST /containers/{id}/update`` body → LinuxResources JSON for ``runc update -r -``.

    Only keys with a non-zero value change anything (Docker's semantics). ``PidsLimit`` present
    and <= 0 means "unlimited" (-1). If ``current`` (the container's HostConfig) is given, Docker's
    memory/swap consistency check is applied.
    """
    hc = update or {}
    if _int(hc, "NanoCpus") and (_int(hc, "CpuQuota") or _int(hc, "CpuPeriod")):
        which = "CPU Quota" if _int(hc, "CpuQuota") else "CPU Period"
        raise SpecError(f"Conflicting options: Nano CPUs and {which} cannot both be set")
    if current is not None:
        new_mem = _int(hc, "Memory")
        cur_swap = _int(current, "MemorySwap")
        if new_mem > 0 and _int(hc, "MemorySwap") == 0 and cur_swap > 0 and new_mem > cur_swap:
            raise SpecError(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time"
            )
    out: dict[str, Any] = {}
    mem = _memory_resources(hc, for_update=True)
    mem.pop("swappiness", None)
    if mem:
        out["memory"] = mem
    cpu = _cpu_resources(hc)
    if cpu:
        out["cpu"] = cpu
    if hc.get("PidsLimit") is not None:
        lim = _int(hc, "PidsLimit")
        out["pids"] = {"limit": lim if lim > 0 else -1}
    w = _int(hc, "BlkioWeight")
    if w:
        out["blockIO"] = {"weight": w}
    return out


def validate_host_config(hc: dict) -> list[str]:
    """Docker's create-time checks: raises SpecError for errors, returns warnings."""
    warnings: list[str] = []
    mem = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    res = _int(hc, "MemoryReservation")
    if mem != 0 and mem < LINUX_MIN_MEMORY:
        raise SpecError("Minimum memory limit allowed is 6MB")
    if mem > 0 and swap != 0 and not _swap_limit_supported():
        warnings.append(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
            "Memory limited without swap."
        )
    if mem > 0 and swap > 0 and swap < mem:
        raise SpecError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if mem == 0 and swap > 0:
        raise SpecError("You should always set the Memory limit when using Memoryswap limit, see usage")
    sw = hc.get("MemorySwappiness")
    if sw is not None and int(sw) != -1 and not 0 <= int(sw) <= 100:
        raise SpecError(f"Invalid value: {sw}, valid memory swappiness range is 0-100")
    if res != 0 and res < LINUX_MIN_MEMORY:
        raise SpecError("Minimum memory reservation allowed is 6MB")
    if mem > 0 and res > 0 and mem < res:
        raise SpecError("Minimum memory limit can not be less than memory reservation limit, see usage")
    if hc.get("OomKillDisable") and mem == 0:
        warnings.append(
            "OOM killer is disabled for the container, but no memory limit is set, "
            "this can result in the system running out of resources."
        )
    nano = _int(hc, "NanoCpus")
    if nano:
        if _int(hc, "CpuPeriod"):
            raise SpecError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if _int(hc, "CpuQuota"):
            raise SpecError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        n = _online_cpus()
        if nano < 0 or nano > n * 1_000_000_000:
            raise SpecError(f"Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available")
    period = _int(hc, "CpuPeriod")
    if period and not 1000 <= period <= 1000000:
        raise SpecError(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    quota = _int(hc, "CpuQuota")
    if quota > 0 and quota < 1000:
        raise SpecError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if _int(hc, "CpuShares") < 0:
        raise SpecError("shares: invalid argument")
    osa = _int(hc, "OomScoreAdj")
    if osa < -1000 or osa > 1000:
        raise SpecError(f"Invalid value {osa}, range for oom score adj is [-1000, 1000]")
    for key in ("CapAdd", "CapDrop"):
        for c in hc.get(key) or []:
            try:
                normalize_capability(c)
            except SpecError as e:
                raise SpecError(f"invalid {key}: {e}") from e
    so = parse_security_opts(hc.get("SecurityOpt"))
    if so.seccomp not in (None, "unconfined", "builtin", ""):
        _seccomp.load_profile(so.seccomp, set(DEFAULT_CAPABILITIES))
    for dest, opts in (hc.get("Tmpfs") or {}).items():
        if not str(dest).startswith("/"):
            raise SpecError(
                f"invalid mount config for type \"tmpfs\": invalid mount path: '{dest}' mount path must be absolute"
            )
        merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", *(opts.split(",") if opts else [])])
    for r in hc.get("DeviceCgroupRules") or []:
        parse_device_cgroup_rule(r)
    for ul in hc.get("Ulimits") or []:
        if getattr(resource, _norm_rlimit_name(str(ul.get("Name", ""))), None) is None:
            raise SpecError(f"invalid ulimit type: {ul.get('Name')}")
        if _rlimit_value(ul.get("Soft", 0)) > _rlimit_value(ul.get("Hard", 0)):
            raise SpecError(
                f"ulimit soft limit must be less than or equal to hard limit: {ul.get('Soft')} > {ul.get('Hard')}"
            )
    return warnings


# --------------------------------------------------------------------------- namespaces


def _ns_mode(hc: dict, key: str) -> str:
    v = hc.get(key)
    return str(v) if v else ""


def _namespaces(
    hc: dict, netns: str | None, namespace_paths: dict[str, str] | None
) -> tuple[list[dict[str, Any]], bool]:
    """(namespaces, uts_is_host)."""
    paths = dict(namespace_paths or {})
    nss: list[dict[str, Any]] = [{"type": "mount"}]

    if "network" in paths:
        nss.append({"type": "network", "path": paths["network"]})
    elif netns is None:
        nss.append({"type": "network"})
    elif netns != "host":
        nss.append({"type": "network", "path": netns})

    def mode_ns(ns_type: str, mode: str) -> None:
        if ns_type in paths:
            nss.append({"type": ns_type, "path": paths[ns_type]})
        elif mode == "host":
            return
        elif mode.startswith("container:"):
            raise SpecError(f"{ns_type} namespace of {mode} needs namespace_paths[{ns_type!r}]")
        else:
            nss.append({"type": ns_type})

    uts = _ns_mode(hc, "UTSMode")
    mode_ns("uts", uts)
    mode_ns("pid", _ns_mode(hc, "PidMode"))
    mode_ns("ipc", _ns_mode(hc, "IpcMode"))
    if _ns_mode(hc, "CgroupnsMode") == "private" or "cgroup" in paths:
        nss.append({"type": "cgroup", **({"path": paths["cgroup"]} if "cgroup" in paths else {})})
    uts_host = uts == "host" and "uts" not in paths
    return nss, uts_host


# --------------------------------------------------------------------------- build_spec


def _env_has(env: list[str], key: str) -> bool:
    prefix = key + "="
    return any(e.startswith(prefix) for e in env)


def build_spec(
    *,
    rootfs: str,
    args: list[str],
    env: list[str],
    cwd: str,
    user: ResolvedUser,
    hostname: str,
    tty: bool,
    host_config: dict,
    cgroups_path: str,
    netns: str | None,
    extra_mounts: list[dict],
    hard_rlimits: dict[str, int] | None = None,
    readonly_rootfs: bool = False,
    stop_signal: str | None = None,
    namespace_paths: dict[str, str] | None = None,
    arch: str | None = None,
) -> dict[str, Any]:
    """Return the OCI runtime config (a JSON-able dict) for one container.

    ``netns``: ``None`` = new private network namespace (loopback only), ``"host"`` = share the
    host's, anything else = path of a namespace to join. ``namespace_paths`` maps namespace types
    (``pid``, ``ipc``, ``uts``, ``network``, ``cgroup``) to paths to join, for ``container:<id>``
    modes. ``extra_mounts`` are OCI mount dicts; one whose destination equals a default mount
    replaces it (and a mount on ``/dev`` replaces every default mount under ``/dev``).
    """
    hc = host_config or {}
    privileged = bool(hc.get("Privileged"))
    so = parse_security_opts(hc.get("SecurityOpt"))

    # capabilities
    caps = tweak_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), privileged)
    available = _host_bounding_caps()
    caps = [c for c in caps if c in available]

    # process
    env = list(env)
    if not _env_has(env, "PATH"):
        env.insert(0, "PATH=" + DEFAULT_PATH)
    if not _env_has(env, "HOME"):
        env.append("HOME=" + (user.home or "/"))
    gids: list[int] = []
    for g in [user.gid, *user.additional_gids]:
        if g not in gids:
            gids.append(g)
    process: dict[str, Any] = {
        "terminal": bool(tty),
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": gids},
        "args": list(args),
        "env": env,
        "cwd": _clean_dest(cwd or "/"),
        "capabilities": {
            "bounding": list(caps),
            "effective": list(caps),
            "permitted": list(caps),
            "inheritable": [],
            "ambient": [],
        },
        "rlimits": _rlimits(hc.get("Ulimits"), hard_rlimits),
        "noNewPrivileges": so.no_new_privileges,
        "oomScoreAdj": _int(hc, "OomScoreAdj"),
    }

    # namespaces
    namespaces, uts_host = _namespaces(hc, netns, namespace_paths)
    ipc_mode = _ns_mode(hc, "IpcMode")
    if ipc_mode.startswith("container:"):
        ipc_mode = "container"

    # mounts
    shm_size = _int(hc, "ShmSize") or DEFAULT_SHM_SIZE
    defaults = _default_mounts(shm_size, privileged, ipc_mode)
    user_mounts = [copy.deepcopy(m) for m in extra_mounts or []]
    for dest, data in (hc.get("Tmpfs") or {}).items():
        opts = ["noexec", "nosuid", "nodev", "rprivate"]
        if data:
            opts += str(data).split(",")
        user_mounts.append(
            {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": merge_tmpfs_options(opts)}
        )
    user_dests = {_clean_dest(m.get("destination", "")) for m in user_mounts}
    mounts = []
    for m in defaults:
        d = m["destination"]
        if d in user_dests:
            continue
        if d.startswith("/dev/") and "/dev" in user_dests:
            continue
        mounts.append(m)
    mounts += sorted(user_mounts, key=_mount_depth)

    # devices
    dev_rules = _default_device_rules()
    devices: list[dict[str, Any]] = []
    if privileged:
        devices = _host_devices()
        known = {d["path"] for d in devices}
        for dm in hc.get("Devices") or []:
            on_host = dm.get("PathOnHost", "")
            in_ctr = dm.get("PathInContainer") or on_host
            if on_host == in_ctr:
                continue
            ds, _ = _devices_from_path(on_host, in_ctr, "rwm")
            devices += [d for d in ds if d["path"] not in known]
        dev_rules = [{"allow": True, "access": "rwm"}]
    else:
        for dm in hc.get("Devices") or []:
            ds, rules = _devices_from_path(
                dm.get("PathOnHost", ""), dm.get("PathInContainer", ""), dm.get("CgroupPermissions") or "rwm"
            )
            devices += ds
            dev_rules += rules
        for r in hc.get("DeviceCgroupRules") or []:
            dev_rules.append(parse_device_cgroup_rule(r))

    # resources
    res: dict[str, Any] = {"devices": dev_rules}
    mem = _memory_resources(hc, for_update=False)
    if mem:
        res["memory"] = mem
    cpu = _cpu_resources(hc)
    if cpu:
        res["cpu"] = cpu
    pids_limit = _int(hc, "PidsLimit")
    if pids_limit > 0:
        res["pids"] = {"limit": pids_limit}
    blk = _blkio_resources(hc)
    if blk:
        res["blockIO"] = blk

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "devices": devices,
        "resources": res,
        "cgroupsPath": cgroups_path,
    }
    if not (privileged or so.systempaths_unconfined):
        masked = hc.get("MaskedPaths")
        ro_paths = hc.get("ReadonlyPaths")
        linux["maskedPaths"] = list(DEFAULT_MASKED_PATHS if masked is None else masked)
        linux["readonlyPaths"] = list(DEFAULT_READONLY_PATHS if ro_paths is None else ro_paths)
    sysctls = hc.get("Sysctls") or {}
    if sysctls:
        linux["sysctl"] = {str(k): str(v) for k, v in sysctls.items()}

    # seccomp
    if not privileged and so.seccomp != "unconfined" and _seccomp_supported():
        if so.seccomp in (None, "", "builtin"):
            linux["seccomp"] = _seccomp.docker_default_profile(set(caps), arch or _seccomp.native_arch())
        else:
            try:
                prof = _seccomp.load_profile(so.seccomp, set(caps), arch)
            except _seccomp.SeccompError as e:
                raise SpecError(str(e)) from e
            if prof is not None:
                linux["seccomp"] = prof

    # rootfs propagation (Docker makes the rootfs shared/slave when a bind mount needs it)
    props = {o for m in user_mounts for o in (m.get("options") or [])}
    if props & {"shared", "rshared"}:
        linux["rootfsPropagation"] = "rshared"
    elif props & {"slave", "rslave"}:
        linux["rootfsPropagation"] = "rslave"

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": bool(readonly_rootfs or hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
    }
    if hostname and not uts_host:
        spec["hostname"] = hostname
    if stop_signal:
        spec["annotations"] = {"org.opencontainers.image.stopSignal": stop_signal}
    return spec
