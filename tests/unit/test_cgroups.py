"""Unit tests of hatoba.runtime.cgroups: fake v1 trees, cgroup v2 trees recorded from a real cgroup2
mount or written in the kernel documentation's formats (data/cgroup-v2/README.md), plus one real
cgroup v1 round trip.

The real test creates ``/hatoba-unittest-<rand>`` in the pids, cpu, cpuacct, memory and blkio
hierarchies, moves a ``sleep`` child into pids/cpu/cpuacct only, and always removes everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from hatoba.runtime import cgroups

# --------------------------------------------------------------------------- fake trees


def write(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def fake_v1(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    hier = {
        "memory": ["memory"],
        "cpu,cpuacct": ["cpu", "cpuacct"],
        "pids": ["pids"],
        "blkio": ["blkio"],
        "systemd": ["name=systemd"],
        "unified": [""],
    }
    for d in hier:
        (root / d).mkdir(parents=True)
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(
        cgroups, "_mountinfo_hierarchies", lambda: [(str(root / d), ctrls) for d, ctrls in hier.items()]
    )
    return root


def populate_v1(root, rel: str = "hatoba/c1") -> None:
    m = root / "memory" / rel
    write(m / "memory.usage_in_bytes", "331776\n")
    write(m / "memory.max_usage_in_bytes", "4358144\n")
    write(m / "memory.limit_in_bytes", "67108864\n")
    write(m / "memory.failcnt", "0\n")
    write(
        m / "memory.stat",
        "cache 0\nrss 53248\nshmem 0\nswap 0\nhierarchical_memory_limit 67108864\n"
        "total_rss 53248\ntotal_swap 0\nworkingset_refault_anon 0\n",
    )
    write(m / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    c = root / "cpu,cpuacct" / rel
    write(c / "cpuacct.usage", "21585551\n")
    write(c / "cpuacct.usage_percpu", "19336655 2248896 \n")
    write(c / "cpuacct.stat", "user 1\nsystem 2\n")
    write(c / "cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 12345\n")
    p = root / "pids" / rel
    write(p / "pids.current", "1\n")
    write(p / "pids.max", "max\n")
    b = root / "blkio" / rel
    write(
        b / "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n",
    )
    write(b / "blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 0\n8:0 Total 1\nTotal 1\n")
    write(b / "blkio.bfq.io_service_bytes_recursive", "Total 0\n")


def test_paths_v1(fake_v1) -> None:
    paths = cgroups.cgroup_v1_paths("/hatoba/c1")
    assert paths["memory"] == str(fake_v1 / "memory" / "hatoba" / "c1")
    assert paths["cpu"] == paths["cpuacct"] == str(fake_v1 / "cpu,cpuacct" / "hatoba" / "c1")
    assert paths["name=systemd"] == str(fake_v1 / "systemd" / "hatoba" / "c1")
    assert paths["unified"] == str(fake_v1 / "unified" / "hatoba" / "c1")
    assert len(cgroups.cgroup_dirs("/hatoba/c1")) == 6


def test_read_stats_v1(fake_v1) -> None:
    populate_v1(fake_v1)
    s = cgroups.read_stats("/hatoba/c1")
    tck = os.sysconf("SC_CLK_TCK")
    assert s["memory_stats"] == {
        "usage": 331776,
        "max_usage": 4358144,
        "stats": {"cache": 0, "hierarchical_memory_limit": 67108864, "rss": 53248, "total_rss": 53248},
        "limit": 67108864,
    }
    cpu = s["cpu_stats"]
    assert cpu["cpu_usage"] == {
        "total_usage": 21585551,
        "percpu_usage": [19336655, 2248896],
        "usage_in_kernelmode": 2 * 1_000_000_000 // tck,
        "usage_in_usermode": 1 * 1_000_000_000 // tck,
    }
    assert cpu["throttling_data"] == {"periods": 10, "throttled_periods": 3, "throttled_time": 12345}
    assert cpu["online_cpus"] >= 1
    assert cpu["system_cpu_usage"] > 0
    assert s["pids_stats"] == {"current": 1}
    blk = s["blkio_stats"]
    assert blk["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 0},
        {"major": 8, "minor": 0, "op": "Total", "value": 4096},
    ]
    assert blk["io_serviced_recursive"][0] == {"major": 8, "minor": 0, "op": "Read", "value": 1}
    assert blk["sectors_recursive"] == []
    assert not cgroups.oom_killed("/hatoba/c1")


def test_unlimited_memory_reports_machine_memory(fake_v1) -> None:
    populate_v1(fake_v1)
    write(fake_v1 / "memory" / "hatoba" / "c1" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(fake_v1 / "memory" / "hatoba" / "c1" / "memory.failcnt", "7\n")
    write(fake_v1 / "pids" / "hatoba" / "c1" / "pids.max", "50\n")
    s = cgroups.read_stats("/hatoba/c1")
    assert s["memory_stats"]["limit"] == cgroups.machine_memory()
    assert s["memory_stats"]["failcnt"] == 7
    assert s["pids_stats"] == {"current": 1, "limit": 50}


def test_oom_killed_v1(fake_v1) -> None:
    populate_v1(fake_v1)
    write(
        fake_v1 / "memory" / "hatoba" / "c1" / "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    assert cgroups.oom_killed("/hatoba/c1")
    assert not cgroups.oom_killed("/hatoba/missing")


def test_missing_cgroup_reads_as_empty(fake_v1) -> None:
    s = cgroups.read_stats("/hatoba/gone", pids=[1, 2])
    assert s["memory_stats"] == {}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert s["pids_stats"] == {"current": 2}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == []
    assert not cgroups.cgroup_exists("/hatoba/gone")


def test_exists_and_remove_v1(fake_v1) -> None:
    populate_v1(fake_v1)
    # the fake files are regular files, so rmdir would fail: make empty leaf dirs instead
    for d in cgroups.cgroup_dirs("/hatoba/c2"):
        os.makedirs(d)
    assert cgroups.cgroup_exists("/hatoba/c2")
    assert cgroups.remove_cgroup("/hatoba/c2")
    assert not cgroups.cgroup_exists("/hatoba/c2")
    assert cgroups.remove_cgroup("/hatoba/c2")  # missing is fine
    assert not cgroups.remove_cgroup("/hatoba/c1", retries=0)  # not empty (regular files inside)
    with pytest.raises(ValueError):
        cgroups.remove_cgroup("/")


# --------------------------------------------------------------------------- cgroup v2 (recorded trees)

DATA = os.path.join(os.path.dirname(__file__), "data", "cgroup-v2")
REC_ID = "3f0c1b9e2d4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e"  # recorded/: no controllers
RUN_ID = "1d7f5e3c9b2a4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"  # documented/: no limits
OOM_ID = "2e8a6f4d0c3b5f7a91a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"  # documented/: limits, OOM
DOCKERD_V2_MEMORY_KEYS = {  # dockerd 20.10's statsV2 map (containerd/cgroups v1.0 v2.MemoryStat)
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
    "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
}


def _mountinfo(tmp_path, name: str, root) -> str:
    """A copy of a recorded mountinfo with /sys/fs/cgroup moved to ``root``."""
    with open(os.path.join(DATA, name)) as f:
        text = f.read().replace(" /sys/fs/cgroup", " " + str(root))
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def v2_host(tmp_path, monkeypatch):
    """A cgroup v2 host: documented/ as /sys/fs/cgroup, with recorded/'s container cgroup added."""
    root = tmp_path / "cgroup"
    shutil.copytree(os.path.join(DATA, "documented"), root)
    shutil.copytree(os.path.join(DATA, "recorded", "hatoba", REC_ID), root / "hatoba" / REC_ID)
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(cgroups, "MOUNTINFO", _mountinfo(tmp_path, "mountinfo-v2", root))
    return root


@pytest.fixture
def hybrid_host(tmp_path, monkeypatch):
    """This machine's layout: v1 hierarchies plus recorded/ as the unified hierarchy."""
    root = tmp_path / "cgroup"
    shutil.copytree(os.path.join(DATA, "recorded"), root / "unified")
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"):
        (root / ctrl).mkdir()
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(cgroups, "MOUNTINFO", _mountinfo(tmp_path, "mountinfo-hybrid", root))
    return root


def test_v2_mountinfo_and_paths(v2_host) -> None:
    assert cgroups.is_unified()
    assert cgroups._mountinfo_hierarchies() == [(str(v2_host), [""])]
    assert cgroups.cgroup_v1_paths(f"/hatoba/{RUN_ID}") == {"unified": str(v2_host / "hatoba" / RUN_ID)}
    assert cgroups.cgroup_dirs(f"/hatoba/{RUN_ID}") == [str(v2_host / "hatoba" / RUN_ID)]
    assert cgroups.cgroup_exists(f"/hatoba/{RUN_ID}")
    assert not cgroups.cgroup_exists("/hatoba/gone")


def test_hybrid_mountinfo_and_unified_dir(hybrid_host) -> None:
    """On this machine's layout the container's cgroup also exists in the unified hierarchy (runc
    makes it there): it counts for cgroup_exists and is removed with the v1 ones."""
    assert not cgroups.is_unified()
    hier = dict(cgroups._mountinfo_hierarchies())
    assert hier[str(hybrid_host / "unified")] == [""]
    assert hier[str(hybrid_host / "systemd")] == ["name=systemd"]
    assert hier[str(hybrid_host / "memory")] == ["memory"]
    assert len(hier) == 10
    rel = f"/hatoba/{REC_ID}"
    paths = cgroups.cgroup_v1_paths(rel)
    assert paths["unified"] == str(hybrid_host / "unified" / "hatoba" / REC_ID)
    assert paths["cpu"] == str(hybrid_host / "cpu" / "hatoba" / REC_ID) != paths["cpuacct"]
    assert len(cgroups.cgroup_dirs(rel)) == 10
    assert cgroups.cgroup_exists(rel)  # only the unified one exists
    # stats come from the v1 hierarchies (none here: the controllers are not on the unified one)
    s = cgroups.read_stats(rel, pids=[1])
    assert s["memory_stats"] == {} and s["pids_stats"] == {"current": 1}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert not cgroups.oom_killed(rel)


def test_controllers_and_swap_limit(v2_host) -> None:
    assert cgroups.available_controllers() == {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}
    assert cgroups.swap_limit_supported()
    (v2_host / "cgroup.controllers").write_text("cpuset cpu io pids\n")  # no memory controller
    assert not cgroups.swap_limit_supported()


def test_controllers_and_swap_limit_hybrid(hybrid_host) -> None:
    assert cgroups.available_controllers() == {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                               "blkio", "pids"}
    assert not cgroups.swap_limit_supported()  # no memory.memsw.* without swap accounting
    (hybrid_host / "memory" / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroups.swap_limit_supported()


def test_read_stats_v2_running(v2_host) -> None:
    s = cgroups.read_stats(f"/hatoba/{RUN_ID}")
    mem = s["memory_stats"]
    assert list(mem) == ["usage", "stats", "limit"]  # dockerd's field order, no max_usage, no failcnt
    assert mem["usage"] == 1015808
    assert mem["limit"] == cgroups.machine_memory()  # memory.max "max"
    assert set(mem["stats"]) == DOCKERD_V2_MEMORY_KEYS and list(mem["stats"]) == sorted(mem["stats"])
    assert {k: mem["stats"][k] for k in ("anon", "file", "active_anon", "inactive_file", "slab", "pgfault")} == {
        "anon": 196608, "file": 462848, "active_anon": 196608, "inactive_file": 462848, "slab": 141904,
        "pgfault": 1163}
    # keys the kernel renamed (workingset_refault → _anon/_file) read as 0, as in dockerd; new keys are not shown
    assert mem["stats"]["workingset_refault"] == 0 and "kernel" not in mem["stats"]
    cpu = s["cpu_stats"]
    assert cpu["cpu_usage"] == {"total_usage": 21357000, "usage_in_kernelmode": 17395000,
                                "usage_in_usermode": 3962000}  # no percpu_usage on v2
    assert cpu["throttling_data"] == {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > 0
    assert s["pids_stats"] == {"current": 1, "limit": 2**64 - 1}  # "max", as dockerd 20.10 reports it
    assert s["blkio_stats"] == {
        "io_service_bytes_recursive": [{"major": 254, "minor": 0, "op": "read", "value": 1187840},
                                       {"major": 254, "minor": 0, "op": "write", "value": 0}],
        "io_serviced_recursive": None, "io_queue_recursive": None, "io_service_time_recursive": None,
        "io_wait_time_recursive": None, "io_merged_recursive": None, "io_time_recursive": None,
        "sectors_recursive": None}
    assert not cgroups.oom_killed(f"/hatoba/{RUN_ID}")


def test_read_stats_v2_limits_and_oom(v2_host) -> None:
    s = cgroups.read_stats(f"/hatoba/{OOM_ID}")
    mem = s["memory_stats"]
    assert list(mem) == ["usage", "stats", "failcnt", "limit"]
    assert (mem["usage"], mem["failcnt"], mem["limit"]) == (67063808, 1, 67108864)
    assert mem["stats"]["anon"] == 66203648 and mem["stats"]["pgmajfault"] == 4
    assert s["cpu_stats"]["throttling_data"] == {"periods": 40, "throttled_periods": 12,
                                                 "throttled_time": 250316000}
    assert s["pids_stats"] == {"current": 4, "limit": 100}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 16, "op": "read", "value": 1459200},
        {"major": 8, "minor": 16, "op": "write", "value": 314773504},
        {"major": 8, "minor": 0, "op": "read", "value": 90430464},
        {"major": 8, "minor": 0, "op": "write", "value": 299008000},
    ]
    assert cgroups.oom_killed(f"/hatoba/{OOM_ID}")


def test_read_stats_v2_without_controllers(v2_host) -> None:
    """The recorded cgroup (no controller enabled): cpu.stat has only the usage keys, nothing else."""
    s = cgroups.read_stats(f"/hatoba/{REC_ID}", pids=[7, 8])
    assert s["memory_stats"] == {}
    assert s["cpu_stats"]["cpu_usage"] == {"total_usage": 384942000, "usage_in_kernelmode": 0,
                                           "usage_in_usermode": 384942000}
    assert s["cpu_stats"]["throttling_data"] == {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    assert s["pids_stats"] == {"current": 2}  # from the caller's pid list
    assert cgroups.read_stats(f"/hatoba/{REC_ID}")["pids_stats"] == {}
    assert set(s["blkio_stats"].values()) == {None}
    assert not cgroups.oom_killed(f"/hatoba/{REC_ID}")  # no memory.events


def test_read_stats_v2_missing_cgroup(v2_host) -> None:
    s = cgroups.read_stats("/hatoba/gone", pids=[1])
    assert s["memory_stats"] == {} and s["pids_stats"] == {"current": 1}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert not cgroups.oom_killed("/hatoba/gone")


def test_remove_v2_with_sub_cgroups(v2_host) -> None:
    """A container's own sub-cgroups (cgroupns=private, the v2 default) are removed first; a cgroup
    that cannot be removed (here: a regular file keeps it non-empty, as a process would) is reported."""
    leaf = v2_host / "hatoba" / "c3"
    (leaf / "init.scope").mkdir(parents=True)
    (leaf / "system.slice" / "a.service").mkdir(parents=True)
    assert cgroups.remove_cgroup("/hatoba/c3")
    assert not leaf.exists() and (v2_host / "hatoba").is_dir()
    (leaf / "busy").mkdir(parents=True)
    (leaf / "busy" / "cgroup.procs").write_text("1\n")
    assert not cgroups.remove_cgroup("/hatoba/c3", retries=0)
    assert (leaf / "busy").is_dir()
    assert cgroups.remove_cgroup("/hatoba/gone")
    with pytest.raises(ValueError):
        cgroups.remove_cgroup("/")


def test_system_cpu_usage_matches_proc_stat() -> None:
    with open("/proc/stat") as f:
        fields = f.readline().split()
    expected = sum(int(x) for x in fields[1:8]) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert abs(cgroups.system_cpu_usage() - expected) < 10 * 1_000_000_000  # a few ticks may pass


# --------------------------------------------------------------------------- real cgroup v1

REAL_CTRLS = ("memory", "pids", "cpu", "cpuacct", "blkio")


@pytest.mark.skipif(
    os.geteuid() != 0 or cgroups.is_unified() or not os.path.isdir("/sys/fs/cgroup/memory"),
    reason="needs root on a cgroup v1/hybrid host",
)
def test_real_cgroup_v1() -> None:
    rel = "/hatoba-unittest-" + uuid.uuid4().hex[:10]
    paths = cgroups.cgroup_v1_paths(rel)
    assert paths["memory"] == "/sys/fs/cgroup/memory" + rel
    made = []
    proc = None
    try:
        for c in REAL_CTRLS:
            if c in paths and not os.path.isdir(paths[c]):
                os.mkdir(paths[c])
                made.append(paths[c])
        assert cgroups.cgroup_exists(rel)
        with open(os.path.join(paths["memory"], "memory.limit_in_bytes"), "w") as f:
            f.write(str(64 * 1024 * 1024))
        with open(os.path.join(paths["pids"], "pids.max"), "w") as f:
            f.write("10")
        proc = subprocess.Popen(["sleep", "30"])
        for c in ("pids", "cpu", "cpuacct"):
            with open(os.path.join(paths[c], "cgroup.procs"), "w") as f:
                f.write(str(proc.pid))
        s = cgroups.read_stats(rel)
        assert s["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert "usage" in s["memory_stats"] and "max_usage" in s["memory_stats"]
        assert "total_rss" in s["memory_stats"]["stats"]
        assert s["pids_stats"] == {"current": 1, "limit": 10}
        assert isinstance(s["cpu_stats"]["cpu_usage"]["percpu_usage"], list)
        assert s["cpu_stats"]["online_cpus"] >= 1
        assert isinstance(s["blkio_stats"]["io_service_bytes_recursive"], list)
        assert not cgroups.oom_killed(rel)
        assert not cgroups.remove_cgroup(rel, retries=0)  # busy: the sleep is inside
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        ok = cgroups.remove_cgroup(rel)
        for d in made:  # belt and braces
            if os.path.isdir(d):
                os.rmdir(d)
    assert ok
    assert not cgroups.cgroup_exists(rel)
