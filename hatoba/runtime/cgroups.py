"""Read a container's cgroup for ``docker stats`` and OOM detection; remove it afterwards; find,
thaw and empty the cgroups of orphans at daemon start.

``cgroups_path`` is the value given to runc as ``linux.cgroupsPath`` (e.g. ``/hatoba/<id>``,
cgroupfs driver). On a cgroup v1 or hybrid host every v1 hierarchy has its own directory
``<mountpoint>/<cgroups_path>``; controllers that share a hierarchy (``cpu,cpuacct``) share it.
Mount points are taken from ``/proc/self/mountinfo`` (falling back to ``/sys/fs/cgroup/<ctrl>``).
On a unified cgroup v2 host (``/sys/fs/cgroup/cgroup.controllers`` exists) there is one directory.

``read_stats`` returns the parts of Docker's stats JSON that come from cgroups, in dockerd 20.10's
shape: ``memory_stats``, ``cpu_stats``, ``pids_stats``, ``blkio_stats``. The engine adds ``read``,
``preread``, ``precpu_stats``, ``name``, ``id``, ``networks``, ``num_procs`` and ``storage_stats``.
On cgroup v2 that shape is dockerd 20.10's ``statsV2`` (through containerd/cgroups v1.0's v2
manager): ``memory_stats.stats`` holds a fixed set of 31 ``memory.stat`` keys (0 when the kernel does
not have one), ``failcnt`` is ``memory.events``' ``oom`` count, there is no ``max_usage`` and no
``percpu_usage``, an unlimited ``pids.max`` reads as 2**64-1, and only
``io_service_bytes_recursive`` is filled (``read``/``write`` per device from ``io.stat``).
The v2 paths are unit-tested on trees recorded from a real cgroup2 mount and written in the kernel
documentation's formats (tests/unit/data/cgroup-v2/).
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

__all__ = [
    "CGROUP_ROOT",
    "is_unified",
    "available_controllers",
    "swap_limit_supported",
    "cgroup_v1_paths",
    "cgroup_dirs",
    "read_stats",
    "oom_killed",
    "remove_cgroup",
    "cgroup_exists",
    "system_cpu_usage",
    "machine_memory",
    "child_ids",
    "pids",
    "thaw",
]

CGROUP_ROOT = "/sys/fs/cgroup"
MOUNTINFO = "/proc/self/mountinfo"
_MAX_UINT64 = (1 << 64) - 1
_V1_CONTROLLERS = (
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
)

# The memory.stat keys dockerd 20.10 reports for cgroup v1 (containerd's v1 metrics set).
_V1_MEMORY_KEYS = (
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
)
_V1_MEMORY_TOTAL_KEYS = (
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
)
# The memory.stat keys dockerd 20.10 reports on cgroup v2 (containerd/cgroups v1.0 v2 MemoryStat).
_V2_MEMORY_KEYS = (
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
)
_BLKIO_KEYS = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)


# --------------------------------------------------------------------------- discovery


def is_unified(root: str | None = None) -> bool:
    """True on a pure cgroup v2 host."""
    return os.path.exists(os.path.join(root or CGROUP_ROOT, "cgroup.controllers"))


def available_controllers() -> set[str]:
    """Controllers the host offers: on cgroup v2 the root's ``cgroup.controllers``; on a v1 or hybrid
    host the mounted v1 controllers."""
    if is_unified():
        return set((_read(os.path.join(CGROUP_ROOT, "cgroup.controllers")) or "").split())
    return {c for _mp, ctrls in _mountinfo_hierarchies() for c in ctrls if c and not c.startswith("name=")}


def swap_limit_supported() -> bool:
    """Can memory+swap limits be set (dockerd's ``SwapLimit``)? On cgroup v2 when the memory controller
    is available (dockerd 20.10 assumes swap accounting there); on v1 when the memory hierarchy has
    ``memory.memsw.limit_in_bytes`` (swap accounting enabled)."""
    if is_unified():
        return "memory" in available_controllers()
    d = cgroup_v1_paths("/").get("memory")
    return d is not None and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))


def _mountinfo_hierarchies() -> list[tuple[str, list[str]]]:
    """[(mountpoint, [controllers or 'name=x' or '' for cgroup2])] from /proc/self/mountinfo."""
    out: list[tuple[str, list[str]]] = []
    try:
        with open(MOUNTINFO) as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fs = right.split()
        if not fs:
            continue
        fields = left.split()
        if len(fields) < 5:
            continue
        mp = fields[4].replace("\\040", " ")
        if fs[0] == "cgroup" and len(fs) >= 3:
            opts = [o for o in fs[2].split(",") if o in _V1_CONTROLLERS or o.startswith("name=")]
            out.append((mp, opts))
        elif fs[0] == "cgroup2":
            out.append((mp, [""]))
    return out


def _rel(cgroups_path: str) -> str:
    return cgroups_path.strip("/")


def cgroup_v1_paths(cgroups_path: str) -> dict[str, str]:
    """Controller name → absolute directory of this cgroup in each v1 hierarchy.

    Keys are controller names (``memory``, ``cpu``, ``cpuacct``, ``pids``, ``blkio``, ``freezer``,
    ``cpuset``, ``devices`` …) plus ``name=systemd``-style named hierarchies and ``unified`` for a
    hybrid host's cgroup2 mount. Directories need not exist.
    """
    rel = _rel(cgroups_path)
    out: dict[str, str] = {}
    for mp, ctrls in _mountinfo_hierarchies():
        if not mp.startswith(CGROUP_ROOT):
            continue
        for c in ctrls:
            key = c or "unified"
            out.setdefault(key, os.path.join(mp, rel))
    if not out or not any(c in out for c in ("memory", "cpu", "pids")):
        for c in ("memory", "cpu", "cpuacct", "pids", "blkio", "freezer", "cpuset", "devices"):
            d = os.path.join(CGROUP_ROOT, c)
            if os.path.isdir(d):
                out.setdefault(c, os.path.join(d, rel))
    return out


def cgroup_dirs(cgroups_path: str) -> list[str]:
    """Every distinct directory (one per hierarchy) that holds this cgroup."""
    if is_unified():
        return [os.path.join(CGROUP_ROOT, _rel(cgroups_path))]
    seen: list[str] = []
    for d in cgroup_v1_paths(cgroups_path).values():
        real = os.path.realpath(os.path.dirname(d.rstrip("/"))) + "/" + os.path.basename(d.rstrip("/"))
        if real not in seen:
            seen.append(real)
    return seen


# --------------------------------------------------------------------------- file helpers


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    t = _read(path)
    if t is None:
        return None
    t = t.strip()
    if t == "max":
        return None
    try:
        return int(t)
    except ValueError:
        return None


def _read_kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    t = _read(path)
    if not t:
        return out
    for line in t.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def system_cpu_usage() -> int:
    """Host CPU time in ns as Docker computes it: first 7 fields of /proc/stat's ``cpu`` line."""
    t = _read("/proc/stat") or ""
    for line in t.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            if len(parts) < 8:
                break
            ticks = sum(int(x) for x in parts[1:8])
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def machine_memory() -> int:
    """MemTotal in bytes."""
    t = _read("/proc/meminfo") or ""
    for line in t.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _online_cpus() -> int:
    try:
        return int(os.sysconf("SC_NPROCESSORS_ONLN"))
    except (OSError, ValueError):
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- stats v1


def _blkio_v1_file(d: str, name: str) -> list[dict[str, Any]] | None:
    """Parse a blkio ``<maj>:<min> <Op> <value>`` file; None if the file is missing."""
    t = _read(os.path.join(d, name))
    if t is None:
        return None
    out = []
    for line in t.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            maj, _, mnr = parts[0].partition(":")
            try:
                out.append({"major": int(maj), "minor": int(mnr), "op": parts[1], "value": int(parts[2])})
            except ValueError:
                continue
        elif len(parts) == 2 and ":" in parts[0]:  # sectors / time files: "<maj>:<min> <value>"
            maj, _, mnr = parts[0].partition(":")
            try:
                out.append({"major": int(maj), "minor": int(mnr), "op": "", "value": int(parts[1])})
            except ValueError:
                continue
    return out


def _blkio_v1(d: str | None) -> dict[str, Any]:
    stats: dict[str, Any] = {k: [] for k in _BLKIO_KEYS}
    if not d or not os.path.isdir(d):
        return stats
    # Like runc: the CFQ files first; if they are absent or empty, BFQ, then the throttle files.
    cfq = {k: _blkio_v1_file(d, "blkio." + k) for k in _BLKIO_KEYS}
    if any(v for v in cfq.values()):
        for k, v in cfq.items():
            stats[k] = v or []
        return stats
    bfq = {
        k: _blkio_v1_file(d, "blkio.bfq." + k)
        for k in ("io_service_bytes_recursive", "io_serviced_recursive")
    }
    if any(v for v in bfq.values()):
        for k, v in bfq.items():
            stats[k] = v or []
        return stats
    for k in ("io_service_bytes_recursive", "io_serviced_recursive"):
        stats[k] = _blkio_v1_file(d, "blkio.throttle." + k) or []
    return stats


def _memory_v1(d: str | None) -> dict[str, Any]:
    if not d or not os.path.isdir(d):
        return {}
    raw = _read_kv(os.path.join(d, "memory.stat"))
    stats = {k: raw[k] for k in (*_V1_MEMORY_KEYS, *_V1_MEMORY_TOTAL_KEYS) if k in raw}
    limit = _read_int(os.path.join(d, "memory.limit_in_bytes")) or 0
    mm = machine_memory()
    if mm and (limit == 0 or limit > mm):
        limit = mm
    out: dict[str, Any] = {
        "usage": _read_int(os.path.join(d, "memory.usage_in_bytes")) or 0,
        "max_usage": _read_int(os.path.join(d, "memory.max_usage_in_bytes")) or 0,
        "stats": dict(sorted(stats.items())),
    }
    failcnt = _read_int(os.path.join(d, "memory.failcnt")) or 0
    if failcnt:  # omitempty in Docker's MemoryStats
        out["failcnt"] = failcnt
    out["limit"] = limit
    return out


def _cpu_v1(cpuacct: str | None, cpu: str | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    throttling = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    if cpuacct and os.path.isdir(cpuacct):
        usage["total_usage"] = _read_int(os.path.join(cpuacct, "cpuacct.usage")) or 0
        per = (_read(os.path.join(cpuacct, "cpuacct.usage_percpu")) or "").split()
        try:
            usage["percpu_usage"] = [int(x) for x in per]
        except ValueError:
            pass
        st = _read_kv(os.path.join(cpuacct, "cpuacct.stat"))
        tck = os.sysconf("SC_CLK_TCK")
        usage["usage_in_kernelmode"] = st.get("system", 0) * 1_000_000_000 // tck
        usage["usage_in_usermode"] = st.get("user", 0) * 1_000_000_000 // tck
        # key order as Docker prints it
        usage = {
            k: usage[k]
            for k in ("total_usage", "percpu_usage", "usage_in_kernelmode", "usage_in_usermode")
            if k in usage
        }
    if cpu and os.path.isdir(cpu):
        st = _read_kv(os.path.join(cpu, "cpu.stat"))
        throttling = {
            "periods": st.get("nr_periods", 0),
            "throttled_periods": st.get("nr_throttled", 0),
            "throttled_time": st.get("throttled_time", 0),
        }
    return {
        "cpu_usage": usage,
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": _online_cpus(),
        "throttling_data": throttling,
    }


def _pids_stats(d: str | None, pids: list | None, unified: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = _read_int(os.path.join(d, "pids.current")) if d else None
    if cur is None and pids is not None:
        cur = len(pids)
    if cur is not None:
        out["current"] = cur
    if d:
        lim = _read_int(os.path.join(d, "pids.max"))
        if lim:
            out["limit"] = lim
    return out


# --------------------------------------------------------------------------- stats v2


def _memory_v2(d: str) -> dict[str, Any]:
    usage = _read_int(os.path.join(d, "memory.current"))
    if usage is None:  # no memory controller in this cgroup
        return {}
    raw = _read_kv(os.path.join(d, "memory.stat"))
    limit = _read_int(os.path.join(d, "memory.max")) or 0  # "max" reads as None: no limit
    mm = machine_memory()
    if mm and (limit == 0 or limit > mm):
        limit = mm
    out: dict[str, Any] = {"usage": usage, "stats": {k: raw.get(k, 0) for k in sorted(_V2_MEMORY_KEYS)}}
    oom = _read_kv(os.path.join(d, "memory.events")).get("oom", 0)
    if oom:  # dockerd: Failcnt = memory.events "oom" (omitempty)
        out["failcnt"] = oom
    out["limit"] = limit
    return out


def _cpu_v2(d: str) -> dict[str, Any]:
    cst = _read_kv(os.path.join(d, "cpu.stat"))  # without the cpu controller only the usage keys exist
    return {
        "cpu_usage": {
            "total_usage": cst.get("usage_usec", 0) * 1000,
            "usage_in_kernelmode": cst.get("system_usec", 0) * 1000,
            "usage_in_usermode": cst.get("user_usec", 0) * 1000,
        },
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": _online_cpus(),
        "throttling_data": {
            "periods": cst.get("nr_periods", 0),
            "throttled_periods": cst.get("nr_throttled", 0),
            "throttled_time": cst.get("throttled_usec", 0) * 1000,
        },
    }


def _pids_v2(d: str, pids: list | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = _read_int(os.path.join(d, "pids.current"))
    if cur is None and pids is not None:
        cur = len(pids)
    if cur:
        out["current"] = cur
    lim = _read(os.path.join(d, "pids.max"))
    if lim is not None:
        lim = lim.strip()
        value = _MAX_UINT64 if lim == "max" else (int(lim) if lim.isdigit() else 0)
        if value:
            out["limit"] = value
    return out


def _blkio_v2(d: str) -> dict[str, Any]:
    """io.stat's ``<maj>:<min> rbytes=… wbytes=… rios=… …`` lines as read/write byte entries."""
    blk: dict[str, Any] = {k: None for k in _BLKIO_KEYS}
    entries = []
    for line in (_read(os.path.join(d, "io.stat")) or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        maj, _, mnr = parts[0].partition(":")
        if not (maj.isdigit() and mnr.isdigit()):
            continue
        kv = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            if v.isdigit():
                kv[k] = int(v)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            entries.append({"major": int(maj), "minor": int(mnr), "op": op, "value": kv.get(key, 0)})
    blk["io_service_bytes_recursive"] = entries or None  # Go's nil slice: null
    return blk


def _read_stats_v2(d: str, pids: list | None) -> dict[str, Any]:
    return {
        "memory_stats": _memory_v2(d),
        "cpu_stats": _cpu_v2(d),
        "pids_stats": _pids_v2(d, pids),
        "blkio_stats": _blkio_v2(d),
    }


# --------------------------------------------------------------------------- public


def read_stats(cgroups_path: str, pids: list | None = None) -> dict[str, Any]:
    """Docker stats JSON parts for the cgroup (missing files read as zeros / empty).

    ``pids`` (the container's process ids, if the caller knows them) is only used as a fallback
    for ``pids_stats.current`` when no pids controller is available.
    """
    if is_unified():
        return _read_stats_v2(os.path.join(CGROUP_ROOT, _rel(cgroups_path)), pids)
    paths = cgroup_v1_paths(cgroups_path)
    return {
        "memory_stats": _memory_v1(paths.get("memory")),
        "cpu_stats": _cpu_v1(paths.get("cpuacct"), paths.get("cpu")),
        "pids_stats": _pids_stats(paths.get("pids"), pids, False),
        "blkio_stats": _blkio_v1(paths.get("blkio")),
    }


def oom_killed(cgroups_path: str) -> bool:
    """True if the kernel OOM-killed a process in this cgroup (``oom_kill`` counter > 0)."""
    if is_unified():
        ev = _read_kv(os.path.join(CGROUP_ROOT, _rel(cgroups_path), "memory.events"))
        return ev.get("oom_kill", 0) > 0
    d = cgroup_v1_paths(cgroups_path).get("memory")
    if not d:
        return False
    return _read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0) > 0


def cgroup_exists(cgroups_path: str) -> bool:
    """True if the cgroup directory exists in any hierarchy."""
    return any(os.path.isdir(d) for d in cgroup_dirs(cgroups_path))


def _child_cgroups(d: str) -> list[str]:
    """Sub-cgroups below ``d``, deepest first (a container may have made its own, e.g. with a
    private cgroup namespace)."""
    out: list[str] = []
    for top, _dirs, _files in os.walk(d, topdown=False):
        if top != d:
            out.append(top)
    return out


def _rmdir(d: str, retries: int, delay: float) -> bool:
    for attempt in range(retries + 1):
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno == errno.EBUSY and attempt < retries:
                time.sleep(delay)
                continue
            return e.errno in (errno.ENOENT, errno.ENOTDIR)
    return False


def remove_cgroup(cgroups_path: str, retries: int = 10, delay: float = 0.01) -> bool:
    """rmdir the cgroup's directory, and any sub-cgroups below it first, in every hierarchy;
    missing ones are fine.

    Retries briefly on EBUSY (a just-exited task can linger). Returns True when every directory is
    gone; False if some are still busy (processes left inside). Refuses the cgroup root itself.
    """
    if not _rel(cgroups_path):
        raise ValueError("refusing to remove the root cgroup")
    ok = True
    for d in cgroup_dirs(cgroups_path):
        if not os.path.isdir(d):
            continue
        for child in _child_cgroups(d):
            ok = _rmdir(child, retries, delay) and ok
        ok = _rmdir(d, retries, delay) and ok
    return ok


# --------------------------------------------------------------------------- orphans (start-up reconciliation)


def child_ids(parent: str) -> set[str]:
    """Names of the container cgroups (64 hex digits) below `parent` in any hierarchy."""
    out: set[str] = set()
    for d in cgroup_dirs(parent):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        out.update(n for n in names if len(n) == 64 and all(c in "0123456789abcdef" for c in n)
                   and os.path.isdir(os.path.join(d, n)))
    return out


def pids(cgroups_path: str) -> set[int]:
    """Processes in the cgroup (any hierarchy)."""
    out: set[int] = set()
    for d in cgroup_dirs(cgroups_path):
        text = _read(os.path.join(d, "cgroup.procs")) or ""
        out.update(int(x) for x in text.split() if x.isdigit())
    return out


def thaw(cgroups_path: str) -> None:
    """Unfreeze the cgroup (a frozen process cannot die of SIGKILL)."""
    if is_unified():
        targets = [(os.path.join(CGROUP_ROOT, _rel(cgroups_path), "cgroup.freeze"), "0")]
    else:
        paths = cgroup_v1_paths(cgroups_path)
        targets = [(os.path.join(paths["freezer"], "freezer.state"), "THAWED")] if "freezer" in paths else []
        if "unified" in paths:
            targets.append((os.path.join(paths["unified"], "cgroup.freeze"), "0"))
    for path, value in targets:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError:
            pass
