"""Unit tests of hatoba.runtime.cgroups: fake v1/v2 trees, plus one real cgroup v1 round trip.

The real test creates ``/hatoba-unittest-<rand>`` in the pids, cpu, cpuacct, memory and blkio
hierarchies, moves a ``sleep`` child into pids/cpu/cpuacct only, and always removes everything.
"""

from __future__ import annotations

import os
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


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    root = tmp_path / "cgroup2"
    write(root / "cgroup.controllers", "cpu io memory pids\n")
    d = root / "hatoba" / "c1"
    write(d / "memory.current", "1048576\n")
    write(d / "memory.max", "max\n")
    write(d / "memory.stat", "anon 4096\nfile 8192\n")
    write(d / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    write(
        d / "cpu.stat",
        "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n",
    )
    write(d / "pids.current", "3\n")
    write(d / "pids.max", "100\n")
    write(d / "io.stat", "8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(root))
    return root


def test_read_stats_v2(fake_v2) -> None:
    assert cgroups.is_unified()
    s = cgroups.read_stats("/hatoba/c1")
    assert s["memory_stats"] == {
        "usage": 1048576,
        "stats": {"anon": 4096, "file": 8192},
        "limit": cgroups.machine_memory(),
    }
    assert s["cpu_stats"]["cpu_usage"] == {
        "total_usage": 100000,
        "usage_in_kernelmode": 40000,
        "usage_in_usermode": 60000,
    }
    assert s["cpu_stats"]["throttling_data"] == {"periods": 5, "throttled_periods": 1, "throttled_time": 7000}
    assert s["pids_stats"] == {"current": 3, "limit": 100}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 512},
    ]
    assert not cgroups.oom_killed("/hatoba/c1")
    write(fake_v2 / "hatoba" / "c1" / "memory.events", "oom 1\noom_kill 1\n")
    assert cgroups.oom_killed("/hatoba/c1")
    assert cgroups.cgroup_dirs("/hatoba/c1") == [str(fake_v2 / "hatoba" / "c1")]
    assert cgroups.cgroup_exists("/hatoba/c1")


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
