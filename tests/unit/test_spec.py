"""Unit tests of hatoba.runtime.spec (OCI config.json with Docker's defaults)."""

from __future__ import annotations

import json
import os
import resource
from typing import Any

import pytest

from hatoba.runtime import spec as spec_mod
from hatoba.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_PATH,
    DEFAULT_READONLY_PATHS,
    SpecError,
    build_spec,
    merge_tmpfs_options,
    parse_device_cgroup_rule,
    parse_security_opts,
    resources_for_update,
    tweak_capabilities,
    validate_host_config,
)
from hatoba.runtime.users import ResolvedUser

ROOT = ResolvedUser(uid=0, gid=0, additional_gids=[], home="/root")
DOCKER_CAPS = [
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
]


@pytest.fixture(autouse=True)
def _host(monkeypatch) -> None:
    """Make host facts deterministic: every capability available, swap accounting on, seccomp on."""
    monkeypatch.setattr(spec_mod, "_host_bounding_caps", lambda: frozenset(ALL_CAPABILITIES))
    monkeypatch.setattr(spec_mod, "_cap_last_cap", lambda: 40)
    monkeypatch.setattr(spec_mod, "_swap_limit_supported", lambda: True)
    monkeypatch.setattr(spec_mod, "_seccomp_supported", lambda: True)
    monkeypatch.setattr(spec_mod, "_nr_open", lambda: 1048576)


def mk(host_config: dict | None = None, **kw: Any) -> dict:
    args: dict[str, Any] = dict(
        rootfs="/var/lib/hatoba/c/rootfs",
        args=["sh", "-c", "true"],
        env=["PATH=/bin", "FOO=bar"],
        cwd="/",
        user=ROOT,
        hostname="abc123",
        tty=False,
        host_config=host_config or {},
        cgroups_path="/hatoba/abc123",
        netns=None,
        extra_mounts=[],
        hard_rlimits={"nofile": 20000, "RLIMIT_NPROC": 5000, "core": 0},
        arch="x86_64",
    )
    args.update(kw)
    s = build_spec(**args)
    json.dumps(s)  # always serialisable
    return s


def mount(s: dict, dest: str) -> dict | None:
    found = [m for m in s["mounts"] if m["destination"] == dest]
    assert len(found) <= 1
    return found[0] if found else None


def ns_types(s: dict) -> list[str]:
    return [n["type"] for n in s["linux"]["namespaces"]]


# --------------------------------------------------------------------------- basics


def test_defaults() -> None:
    s = mk()
    assert s["ociVersion"] == "1.0.2"
    assert s["root"] == {"path": "/var/lib/hatoba/c/rootfs", "readonly": False}
    assert s["hostname"] == "abc123"
    p = s["process"]
    assert p["terminal"] is False
    assert "consoleSize" not in p
    assert "apparmorProfile" not in p
    assert p["args"] == ["sh", "-c", "true"]
    assert p["env"] == ["PATH=/bin", "FOO=bar", "HOME=/root"]
    assert p["cwd"] == "/"
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert p["noNewPrivileges"] is False
    assert p["oomScoreAdj"] == 0
    caps = p["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        assert caps[k] == DOCKER_CAPS
    assert caps["inheritable"] == [] and caps["ambient"] == []
    lx = s["linux"]
    assert lx["cgroupsPath"] == "/hatoba/abc123"
    assert lx["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert lx["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    assert ns_types(s) == ["mount", "network", "uts", "pid", "ipc"]
    assert all("path" not in n for n in lx["namespaces"])
    assert lx["devices"] == []
    assert lx["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "sysctl" not in lx
    assert set(lx["resources"]) == {"devices"}
    assert "annotations" not in s


def test_default_capability_mask() -> None:
    mask = sum(1 << ALL_CAPABILITIES.index(c) for c in DEFAULT_CAPABILITIES)
    assert mask == 0xA80425FB


def test_env_path_added_and_cwd_normalised() -> None:
    s = mk(env=["A=1"], cwd="app/")
    assert s["process"]["env"] == ["PATH=" + DEFAULT_PATH, "A=1", "HOME=/root"]
    assert s["process"]["cwd"] == "/app"
    assert mk(cwd="")["process"]["cwd"] == "/"


def test_user_and_groups() -> None:
    u = ResolvedUser(uid=1000, gid=1000, additional_gids=[33, 1000, 29], home="/home/app")
    s = mk(user=u, env=["PATH=/bin", "HOME=/custom"])
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 33, 29]}
    assert s["process"]["env"] == ["PATH=/bin", "HOME=/custom"]


def test_tty_hostname_readonly_stop_signal() -> None:
    s = mk({"ReadonlyRootfs": True}, tty=True, stop_signal="SIGQUIT")
    assert s["process"]["terminal"] is True
    assert s["root"]["readonly"] is True
    assert s["annotations"] == {"org.opencontainers.image.stopSignal": "SIGQUIT"}
    assert mk(readonly_rootfs=True)["root"]["readonly"] is True


# --------------------------------------------------------------------------- capabilities


@pytest.mark.parametrize(
    ("add", "drop", "expected"),
    [
        (["NET_ADMIN"], None, DOCKER_CAPS + ["CAP_NET_ADMIN"]),
        (
            ["cap_net_admin", "CAP_SYS_TIME"],
            ["mknod", "CAP_NET_RAW"],
            [c for c in DOCKER_CAPS if c not in ("CAP_MKNOD", "CAP_NET_RAW")]
            + ["CAP_NET_ADMIN", "CAP_SYS_TIME"],
        ),
        (["chown"], ["ALL"], ["CAP_CHOWN"]),
        (None, ["all"], []),
        (["ALL"], ["MKNOD"], [c for c in ALL_CAPABILITIES if c != "CAP_MKNOD"]),
        (["CHOWN"], None, DOCKER_CAPS),  # already present: no duplicate
    ],
)
def test_cap_add_drop(add, drop, expected) -> None:
    s = mk({"CapAdd": add, "CapDrop": drop})
    caps = s["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == expected


def test_unknown_capability() -> None:
    with pytest.raises(SpecError, match='unknown capability: "CAP_BOGUS"'):
        tweak_capabilities(["bogus"], None)


def test_caps_missing_from_host_bounding_set_are_dropped(monkeypatch) -> None:
    monkeypatch.setattr(
        spec_mod,
        "_host_bounding_caps",
        lambda: frozenset(c for c in ALL_CAPABILITIES if c != "CAP_SYS_RESOURCE"),
    )
    s = mk({"Privileged": True})
    assert "CAP_SYS_RESOURCE" not in s["process"]["capabilities"]["bounding"]
    assert len(s["process"]["capabilities"]["bounding"]) == len(ALL_CAPABILITIES) - 1
    s = mk({"CapAdd": ["SYS_RESOURCE"]})
    assert s["process"]["capabilities"]["bounding"] == DOCKER_CAPS


def test_all_caps_limited_by_cap_last_cap(monkeypatch) -> None:
    monkeypatch.setattr(spec_mod, "_cap_last_cap", lambda: 37)
    s = mk({"Privileged": True})
    assert s["process"]["capabilities"]["bounding"] == list(ALL_CAPABILITIES[:38])


def test_seccomp_follows_caps() -> None:
    def has(s: dict, name: str) -> bool:
        return any(
            name in r["names"] and r["action"] == "SCMP_ACT_ALLOW" for r in s["linux"]["seccomp"]["syscalls"]
        )

    assert not has(mk(), "mount")
    assert has(mk({"CapAdd": ["SYS_ADMIN"]}), "mount")


# --------------------------------------------------------------------------- privileged / security opts


def test_privileged(monkeypatch) -> None:
    monkeypatch.setattr(
        spec_mod, "_host_devices", lambda: [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]
    )
    s = mk({"Privileged": True})
    assert s["process"]["capabilities"]["bounding"] == list(ALL_CAPABILITIES)
    lx = s["linux"]
    assert "seccomp" not in lx
    assert "maskedPaths" not in lx and "readonlyPaths" not in lx
    assert lx["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert lx["devices"] == [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]
    assert "ro" not in mount(s, "/sys")["options"]
    assert "ro" not in mount(s, "/sys/fs/cgroup")["options"]


def test_host_devices_real() -> None:
    devs = spec_mod._host_devices()
    paths = {d["path"] for d in devs}
    assert "/dev/null" in paths
    assert not any(p.startswith("/dev/pts/") for p in paths)
    null = next(d for d in devs if d["path"] == "/dev/null")
    assert (null["type"], null["major"], null["minor"]) == ("c", 1, 3)


def test_security_opts() -> None:
    s = mk(
        {"SecurityOpt": ["no-new-privileges", "seccomp=unconfined", "apparmor=unconfined", "label=disable"]}
    )
    assert s["process"]["noNewPrivileges"] is True
    assert "seccomp" not in s["linux"]
    assert "apparmorProfile" not in s["process"]
    assert mk({"SecurityOpt": ["no-new-privileges:true"]})["process"]["noNewPrivileges"] is True
    assert mk({"SecurityOpt": ["no-new-privileges=false"]})["process"]["noNewPrivileges"] is False
    assert "seccomp" not in mk({"SecurityOpt": ["seccomp:unconfined"]})["linux"]
    s = mk({"SecurityOpt": ["systempaths=unconfined"]})
    assert "maskedPaths" not in s["linux"] and "seccomp" in s["linux"]


def test_custom_seccomp() -> None:
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    s = mk({"SecurityOpt": ["seccomp=" + json.dumps(prof)]})
    assert s["linux"]["seccomp"] == prof
    with pytest.raises(SpecError, match="Decoding seccomp profile failed"):
        mk({"SecurityOpt": ["seccomp={bad"]})


def test_seccomp_unsupported_kernel(monkeypatch) -> None:
    monkeypatch.setattr(spec_mod, "_seccomp_supported", lambda: False)
    assert "seccomp" not in mk()["linux"]


def test_parse_security_opts_errors() -> None:
    with pytest.raises(SpecError, match="invalid --security-opt 1"):
        parse_security_opts(["bogus"])
    with pytest.raises(SpecError, match="invalid --security-opt 2"):
        parse_security_opts(["foo=bar"])
    with pytest.raises(SpecError):
        parse_security_opts(["no-new-privileges=maybe"])


def test_masked_paths_from_host_config() -> None:
    s = mk({"MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": []})
    assert s["linux"]["maskedPaths"] == ["/proc/kcore"]
    assert s["linux"]["readonlyPaths"] == []


# --------------------------------------------------------------------------- mounts


def test_default_mounts() -> None:
    s = mk()
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert mount(s, "/proc") == {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    }
    assert mount(s, "/dev")["options"] == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert mount(s, "/dev/pts")["options"] == [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ]
    assert mount(s, "/sys")["type"] == "sysfs" and "ro" in mount(s, "/sys")["options"]
    assert mount(s, "/sys/fs/cgroup")["type"] == "cgroup" and "ro" in mount(s, "/sys/fs/cgroup")["options"]
    assert mount(s, "/dev/mqueue")["type"] == "mqueue"
    assert mount(s, "/dev/shm") == {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
    }


def test_shm_size() -> None:
    assert "size=1048576" in mount(mk({"ShmSize": 1048576}), "/dev/shm")["options"]


def test_extra_mounts_override_and_sort() -> None:
    extra = [
        {"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind", "rprivate"]},
        {"destination": "/data/sub", "type": "bind", "source": "/a", "options": ["rbind"]},
        {"destination": "/data", "type": "bind", "source": "/b", "options": ["rbind"]},
        {"destination": "/dev/shm", "type": "bind", "source": "/var/lib/hatoba/shm/x", "options": ["rbind"]},
    ]
    s = mk(extra_mounts=extra)
    shm = [m for m in s["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [extra[3]]
    dests = [m["destination"] for m in s["mounts"]]
    assert dests.index("/data") < dests.index("/data/sub")
    assert dests[:6] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue"]
    assert "rootfsPropagation" not in s["linux"]
    s["mounts"][-1]["options"].append("changed")  # the caller's dicts are copies, not shared
    assert all("changed" not in m["options"] for m in extra)


def test_dev_mount_replaces_dev_defaults() -> None:
    s = mk(extra_mounts=[{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}])
    dests = [m["destination"] for m in s["mounts"]]
    assert dests == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_rootfs_propagation() -> None:
    s = mk(
        extra_mounts=[{"destination": "/m", "type": "bind", "source": "/m", "options": ["rbind", "rshared"]}]
    )
    assert s["linux"]["rootfsPropagation"] == "rshared"
    s = mk(
        extra_mounts=[{"destination": "/m", "type": "bind", "source": "/m", "options": ["rbind", "rslave"]}]
    )
    assert s["linux"]["rootfsPropagation"] == "rslave"


def test_tmpfs() -> None:
    s = mk({"Tmpfs": {"/run": "", "/tmp": "rw,exec,size=65536k", "/var/cache": "mode=700,size=1m,size=2m"}})
    assert mount(s, "/run") == {
        "destination": "/run",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["noexec", "nosuid", "nodev", "rprivate"],
    }
    assert mount(s, "/tmp")["options"] == ["nosuid", "nodev", "rprivate", "rw", "exec", "size=65536k"]
    assert mount(s, "/var/cache")["options"] == [
        "noexec",
        "nosuid",
        "nodev",
        "rprivate",
        "mode=700",
        "size=2m",
    ]
    with pytest.raises(SpecError, match="Invalid tmpfs option"):
        mk({"Tmpfs": {"/run": "bogus=1"}})


def test_merge_tmpfs_options() -> None:
    assert merge_tmpfs_options(["noexec", "rprivate", "exec", "shared", "defaults"]) == ["exec", "shared"]
    assert merge_tmpfs_options(["ro", "rw", "size=1", "uid=5", "size=2"]) == ["rw", "uid=5", "size=2"]


# --------------------------------------------------------------------------- devices


def test_default_device_rules() -> None:
    rules = mk()["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r.get("type"), r.get("major"), r.get("minor"), r["access"]) for r in rules if r["allow"]}
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)):
        assert ("c", major, minor, "rwm") in allowed
    assert ("c", 136, None, "rwm") in allowed
    assert ("c", None, None, "m") in allowed and ("b", None, None, "m") in allowed
    # the wildcard mknod rules come after the last deny (cgroup v1 cannot punch holes in wildcards)
    last_deny = max(i for i, r in enumerate(rules) if not r["allow"])
    wild = [i for i, r in enumerate(rules) if "major" not in r and r.get("type") in ("b", "c")]
    assert min(wild) > last_deny


def test_devices_and_cgroup_rules() -> None:
    s = mk(
        {
            "Devices": [
                {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}
            ],
            "DeviceCgroupRules": ["c 42:* rmw", "b 8:0 r"],
        }
    )
    lx = s["linux"]
    assert lx["devices"][0]["path"] == "/dev/mynull"
    assert (lx["devices"][0]["type"], lx["devices"][0]["major"], lx["devices"][0]["minor"]) == ("c", 1, 3)
    rules = lx["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules
    assert {"allow": True, "type": "c", "major": 42, "access": "rmw"} in rules
    assert {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"} in rules
    with pytest.raises(SpecError, match="error gathering device information"):
        mk({"Devices": [{"PathOnHost": "/nonexistent", "PathInContainer": "/x", "CgroupPermissions": "rwm"}]})
    with pytest.raises(SpecError, match="not a device node"):
        mk(
            {
                "Devices": [
                    {"PathOnHost": "/etc/hostname", "PathInContainer": "/x", "CgroupPermissions": "rwm"}
                ]
            }
        )


def test_parse_device_cgroup_rule() -> None:
    assert parse_device_cgroup_rule("a *:* rwm") == {"allow": True, "type": "a", "access": "rwm"}
    with pytest.raises(SpecError, match="invalid device cgroup format"):
        parse_device_cgroup_rule("x 1:2 r")


# --------------------------------------------------------------------------- namespaces


def test_netns() -> None:
    assert {"type": "network"} in mk(netns=None)["linux"]["namespaces"]
    assert "network" not in ns_types(mk(netns="host"))
    assert {"type": "network", "path": "/run/netns/x"} in mk(netns="/run/netns/x")["linux"]["namespaces"]


def test_host_modes() -> None:
    s = mk({"PidMode": "host", "UTSMode": "host", "IpcMode": "host"})
    assert ns_types(s) == ["mount", "network"]
    assert "hostname" not in s
    assert mount(s, "/dev/shm") == {
        "destination": "/dev/shm",
        "type": "bind",
        "source": "/dev/shm",
        "options": ["rbind", "nosuid", "noexec", "nodev"],
    }


def test_ipc_none_and_private() -> None:
    assert mount(mk({"IpcMode": "none"}), "/dev/shm") is None
    assert "ipc" in ns_types(mk({"IpcMode": "none"}))
    assert mount(mk({"IpcMode": "shareable"}), "/dev/shm")["type"] == "tmpfs"


def test_container_modes_need_paths() -> None:
    with pytest.raises(SpecError):
        mk({"PidMode": "container:abc"})
    s = mk(
        {"PidMode": "container:abc", "IpcMode": "container:abc"},
        namespace_paths={"pid": "/proc/42/ns/pid", "ipc": "/proc/42/ns/ipc"},
    )
    assert {"type": "pid", "path": "/proc/42/ns/pid"} in s["linux"]["namespaces"]
    assert {"type": "ipc", "path": "/proc/42/ns/ipc"} in s["linux"]["namespaces"]


def test_cgroupns() -> None:
    assert "cgroup" in ns_types(mk({"CgroupnsMode": "private"}))
    assert "cgroup" not in ns_types(mk({"CgroupnsMode": "host"}))


def test_sysctls() -> None:
    s = mk({"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": 1024}})
    assert s["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"}


# --------------------------------------------------------------------------- resources


def test_memory() -> None:
    m = mk({"Memory": 64 << 20})["linux"]["resources"]["memory"]
    assert m == {"limit": 64 << 20, "swap": 128 << 20}
    m = mk({"Memory": 64 << 20, "MemorySwap": -1, "MemoryReservation": 32 << 20})["linux"]["resources"][
        "memory"
    ]
    assert m == {"limit": 64 << 20, "swap": -1, "reservation": 32 << 20}
    m = mk({"Memory": 64 << 20, "MemorySwap": 100 << 20, "MemorySwappiness": 10, "OomKillDisable": True})
    assert m["linux"]["resources"]["memory"] == {
        "limit": 64 << 20,
        "swap": 100 << 20,
        "swappiness": 10,
        "disableOOMKiller": True,
    }
    assert "memory" not in mk({"Memory": 0, "MemorySwap": 0, "MemorySwappiness": -1})["linux"]["resources"]


def test_memory_without_swap_accounting(monkeypatch) -> None:
    monkeypatch.setattr(spec_mod, "_swap_limit_supported", lambda: False)
    assert mk({"Memory": 64 << 20, "MemorySwap": 200 << 20})["linux"]["resources"]["memory"] == {
        "limit": 64 << 20
    }


def test_cpu() -> None:
    c = mk({"NanoCpus": 1_500_000_000})["linux"]["resources"]["cpu"]
    assert c == {"period": 100000, "quota": 150000}
    c = mk({"CpuShares": 512, "CpuQuota": 50000, "CpuPeriod": 100000, "CpusetCpus": "0", "CpusetMems": "0"})
    assert c["linux"]["resources"]["cpu"] == {
        "shares": 512,
        "period": 100000,
        "quota": 50000,
        "cpus": "0",
        "mems": "0",
    }
    assert mk({"CpuShares": 1})["linux"]["resources"]["cpu"] == {"shares": 2}
    assert mk({"CpuShares": 10**7})["linux"]["resources"]["cpu"] == {"shares": 262144}


def test_pids_and_blkio() -> None:
    r = mk({"PidsLimit": 50, "BlkioWeight": 300})["linux"]["resources"]
    assert r["pids"] == {"limit": 50}
    assert r["blockIO"] == {"weight": 300}
    assert "pids" not in mk({"PidsLimit": 0})["linux"]["resources"]
    assert "pids" not in mk({"PidsLimit": -1})["linux"]["resources"]
    assert "pids" not in mk({"PidsLimit": None})["linux"]["resources"]


def test_blkio_throttle_needs_block_device() -> None:
    with pytest.raises(SpecError):
        mk({"BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1024}]})


# --------------------------------------------------------------------------- rlimits


def rl(s: dict) -> dict[str, tuple[int, int]]:
    return {r["type"]: (r["soft"], r["hard"]) for r in s["process"]["rlimits"]}


def test_rlimit_default_nofile_is_daemon_hard_limit() -> None:
    assert rl(mk()) == {"RLIMIT_NOFILE": (20000, 20000)}


def test_rlimit_default_from_getrlimit() -> None:
    s = mk(hard_rlimits=None)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = min(hard if hard != resource.RLIM_INFINITY else 2**64 - 1, 1048576)
    assert rl(s)["RLIMIT_NOFILE"] == (expected, expected)


def test_ulimits_clamped() -> None:
    s = mk(
        {
            "Ulimits": [
                {"Name": "nofile", "Soft": 1048576, "Hard": 1048576},
                {"Name": "nproc", "Soft": 100, "Hard": 200},
                {"Name": "core", "Soft": -1, "Hard": -1},
                {"Name": "memlock", "Soft": 9000, "Hard": 8000},
            ]
        },
        hard_rlimits={"nofile": 20000, "nproc": 5000, "core": 0, "memlock": -1},
    )
    assert rl(s) == {
        "RLIMIT_NOFILE": (20000, 20000),
        "RLIMIT_NPROC": (100, 200),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_MEMLOCK": (8000, 8000),
    }
    assert rl(mk({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]}))["RLIMIT_NOFILE"] == (
        1024,
        4096,
    )


def test_ulimit_unknown() -> None:
    with pytest.raises(SpecError, match="invalid ulimit type"):
        mk({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})


def test_oom_score_adj() -> None:
    assert mk({"OomScoreAdj": 500})["process"]["oomScoreAdj"] == 500


def test_init_ignored() -> None:
    assert mk({"Init": True})["process"]["args"] == ["sh", "-c", "true"]


# --------------------------------------------------------------------------- update / validation


def test_resources_for_update() -> None:
    assert resources_for_update({}) == {}
    assert resources_for_update({"Memory": 0, "CpuShares": 0, "RestartPolicy": {"Name": "always"}}) == {}
    r = resources_for_update(
        {
            "Memory": 128 << 20,
            "MemorySwap": 256 << 20,
            "MemoryReservation": 64 << 20,
            "CpuShares": 512,
            "CpuQuota": 20000,
            "CpuPeriod": 100000,
            "CpusetCpus": "0-1",
            "CpusetMems": "0",
            "PidsLimit": 10,
        }
    )
    assert r == {
        "memory": {"limit": 128 << 20, "reservation": 64 << 20, "swap": 256 << 20},
        "cpu": {"shares": 512, "period": 100000, "quota": 20000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 10},
    }
    assert resources_for_update({"NanoCpus": 500_000_000}) == {"cpu": {"period": 100000, "quota": 50000}}
    assert resources_for_update({"PidsLimit": 0}) == {"pids": {"limit": -1}}
    assert resources_for_update({"MemorySwap": -1}) == {"memory": {"swap": -1}}
    # no implicit 2x swap on update
    assert resources_for_update({"Memory": 64 << 20}) == {"memory": {"limit": 64 << 20}}
    with pytest.raises(SpecError, match="Conflicting options"):
        resources_for_update({"NanoCpus": 1_000_000_000, "CpuQuota": 1000})
    with pytest.raises(SpecError, match="update the memoryswap at the same time"):
        resources_for_update({"Memory": 512 << 20}, current={"Memory": 64 << 20, "MemorySwap": 128 << 20})
    assert resources_for_update({"Memory": 100 << 20}, current={"Memory": 64 << 20, "MemorySwap": 128 << 20})


def test_validate_host_config() -> None:
    assert validate_host_config({}) == []
    assert validate_host_config({"Memory": 64 << 20}) == []
    for hc, msg in [
        ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be larger"),
        ({"MemorySwap": 32 << 20}, "You should always set the Memory limit"),
        ({"Memory": 64 << 20, "MemoryReservation": 128 << 20}, "can not be less than memory reservation"),
        ({"NanoCpus": 1, "CpuPeriod": 1000}, "Nano CPUs and CPU Period"),
        ({"NanoCpus": 10**15}, "Range of CPUs is from 0.01"),
        ({"CpuPeriod": 10}, "CPU cfs period"),
        ({"CapAdd": ["nope"]}, 'invalid CapAdd: unknown capability: "CAP_NOPE"'),
        ({"SecurityOpt": ["what"]}, "invalid --security-opt"),
        ({"Tmpfs": {"rel": ""}}, "mount path must be absolute"),
        ({"DeviceCgroupRules": ["c 1:1"]}, "invalid device cgroup format"),
        ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}, "soft limit must be less than or equal"),
        ({"OomScoreAdj": 5000}, "range for oom score adj"),
    ]:
        with pytest.raises(SpecError, match=msg):
            validate_host_config(hc)
    w = validate_host_config({"OomKillDisable": True})
    assert w and "OOM killer is disabled" in w[0]


def test_spec_is_deterministic() -> None:
    assert mk({"Memory": 64 << 20}) == mk({"Memory": 64 << 20})
    assert os.path.isabs(mk()["process"]["cwd"])
