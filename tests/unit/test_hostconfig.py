"""hatoba.engine.hostconfig: defaults and dockerd's create-time validation. Messages marked (dockerd)
were recorded from the reference dockerd 20.10; the others are refused here at create where dockerd
refuses them only at start (its start-time or runc's or the docker CLI's words)."""

from __future__ import annotations

from typing import Any

import pytest

from hatoba.engine import hostconfig
from hatoba.errors import InvalidParameter, NotFound
from hatoba.schema import engine

FACTS = hostconfig.HostFacts(ncpu=2, cpus="0-1", mems="0", cpu_realtime=False)


def _create(body: dict[str, Any], log_opts: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    doc = engine.container_create({"Image": "busybox", **body})
    cfg = {k: v for k, v in doc.items() if k not in ("HostConfig", "NetworkingConfig")}
    hostconfig.validate_config(cfg)
    return hostconfig.build(doc["HostConfig"], config=cfg, log_opts=log_opts or {}, default_runtime="runc",
                            valid_runtime=lambda n: n in ("runc", "crun"), facts=FACTS)


DOCKERD = [  # (body, message) as the reference dockerd answers
    ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "invalid restart policy 'sometimes'"),
    ({"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}},
     "maximum retry count cannot be negative"),
    ({"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
     "can't create 'AutoRemove' container with restart policy"),
    ({"HostConfig": {"CapAdd": ["FOO"]}}, 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    ({"HostConfig": {"CapDrop": ["cap_bar"]}}, 'invalid CapDrop: unknown capability: "CAP_BAR"'),
    ({"HostConfig": {"Tmpfs": {"x": ""}}}, "invalid mount path: 'x' mount path must be absolute"),
    ({"HostConfig": {"Tmpfs": {"/": ""}}}, "invalid specification: destination can't be '/'"),
    ({"HostConfig": {"LogConfig": {"Type": "asdf"}}}, 'error looking up logging plugin asdf: plugin "asdf" not found'),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"foo": "bar"}}}},
     "unknown log opt 'foo' for json-file log driver"),
    ({"HostConfig": {"LogConfig": {"Type": "local", "Config": {"foo": "bar"}}}}, "unknown log opt 'foo' for log driver local"),
    ({"HostConfig": {"Memory": 1000}}, "Minimum memory limit allowed is 6MB"),
    ({"HostConfig": {"Memory": -5}}, "Minimum memory limit allowed is 6MB"),
    ({"HostConfig": {"Memory": 10000000, "MemorySwap": 5000000}},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"HostConfig": {"MemorySwap": 50000000}},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"HostConfig": {"MemoryReservation": 1000}}, "Minimum memory reservation allowed is 6MB"),
    ({"HostConfig": {"Memory": 10000000, "MemoryReservation": 20000000}},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"HostConfig": {"NanoCpus": 1000, "CpuPeriod": 100000}}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"HostConfig": {"NanoCpus": 1000, "CpuQuota": 100000}}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"HostConfig": {"NanoCpus": 1000000000000}}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"HostConfig": {"NanoCpus": -1}}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"HostConfig": {"CpuPeriod": 10}}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"HostConfig": {"CpuQuota": 10}}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"HostConfig": {"CpusetCpus": "abc"}}, "Invalid value abc for cpuset cpus: invalid format: abc"),
    ({"HostConfig": {"CpusetCpus": "0-200"}}, "Requested CPUs are not available - requested 0-200, available: 0-1"),
    ({"HostConfig": {"CpusetMems": "5"}}, "Requested memory nodes are not available - requested 5, available: 0"),
    ({"HostConfig": {"CpusetMems": "x"}}, "Invalid value x for cpuset mems: invalid format: x"),
    ({"HostConfig": {"OomScoreAdj": 5000}}, "Invalid value 5000, range for oom score adj is [-1000, 1000]"),
    ({"HostConfig": {"ShmSize": -1}}, "SHM size can not be less than 0"),
    ({"HostConfig": {"MemorySwappiness": 200}}, "Invalid value: 200, valid memory swappiness range is 0-100"),
    ({"HostConfig": {"KernelMemory": 1000}}, "Minimum kernel memory limit allowed is 6MB"),
    ({"HostConfig": {"IOMaximumIOps": 5}}, "Invalid QoS settings: linux does not support configuration of maximum IOPs"),
    ({"HostConfig": {"IOMaximumBandwidth": 5}},
     "Invalid QoS settings: linux does not support configuration of maximum bandwidth"),
    ({"HostConfig": {"Isolation": "hyperv"}}, "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    ({"HostConfig": {"PortBindings": {"abc/tcp": [{"HostPort": "80"}]}}}, 'invalid port specification: "abc"'),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "abc"}]}}}, 'invalid port specification: "abc"'),
    ({"HostConfig": {"CgroupnsMode": "bogus"}}, "invalid cgroup namespace mode: bogus"),
    ({"HostConfig": {"ExtraHosts": ["foo"]}}, 'bad format for add-host: "foo"'),
    ({"HostConfig": {"ExtraHosts": ["foo:bar"]}}, 'invalid IP address in add-host: "bar"'),
    ({"WorkingDir": "relative"}, "the working directory 'relative' is invalid, it needs to be an absolute path"),
    ({"StopSignal": "SIGBOGUS"}, "Invalid signal: SIGBOGUS"),
    ({"Healthcheck": {"Interval": 5}}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Timeout": 5}}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"StartPeriod": 5}}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
    ({"Env": ["=foo"]}, "invalid environment variable: =foo"),
    ({"Env": [""]}, "invalid environment variable: "),
    ({"HostConfig": {"NetworkMode": "container:"}}, "Invalid network mode: invalid container format container:<name|id>"),
    ({"Hostname": "x", "HostConfig": {"UTSMode": "host"}}, "conflicting options: hostname and the UTS mode"),
    ({"HostConfig": {"NetworkMode": "host", "Links": ["a:b"]}},
     "conflicting options: host type networking can't be used with links. This would result in undefined behavior"),
    ({"Hostname": "x", "HostConfig": {"NetworkMode": "container:abc"}}, "conflicting options: hostname and the network mode"),
    ({"HostConfig": {"Runtime": "bogus"}}, "Unknown runtime specified bogus"),
    ({"HostConfig": {"SecurityOpt": ["bogus"]}}, 'invalid --security-opt 1: "bogus"'),
    ({"HostConfig": {"StorageOpt": {"size": "1G"}}}, "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"),
]

AT_CREATE = [  # dockerd takes these at create and fails at start; refused at create here
    ({"HostConfig": {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 2}]}}, "invalid ulimit type: bogus"),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 2}]}},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 2"),
    ({"HostConfig": {"Tmpfs": {"/x": "bogus"}}}, 'Invalid tmpfs option ["bogus"]'),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "abc"}}}}, "invalid size: 'abc'"),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-file": "0"}}}}, "max-file cannot be less than 1"),
    ({"HostConfig": {"LogConfig": {"Config": {"max-file": "x"}}}}, 'strconv.Atoi: parsing "x": invalid syntax'),
    ({"HostConfig": {"LogConfig": {"Config": {"compress": "true"}}}},
     "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ({"HostConfig": {"BlkioWeight": 5}}, "Range of blkio weight is from 10 to 1000"),
    ({"HostConfig": {"Devices": [{"PathOnHost": "/dev/nonexist", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]}},
     'error gathering device information while adding custom device "/dev/nonexist": no such file or directory'),
    ({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "xyz"}]}},
     "invalid device mode: xyz"),
    ({"HostConfig": {"IpcMode": "bogus"}}, "invalid IPC mode: bogus"),
    ({"HostConfig": {"PidMode": "bogus"}}, "invalid PID mode: bogus"),
    ({"HostConfig": {"UTSMode": "bogus"}}, "invalid UTS mode: bogus"),
    ({"HostConfig": {"Sysctls": {"kernel.bogus": "1"}}}, 'sysctl "kernel.bogus" is not in a separate kernel namespace'),
    ({"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"}},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"HostConfig": {"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"}},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"HostConfig": {"Dns": ["notanip"]}}, "notanip is not an ip address"),
    ({"HostConfig": {"DeviceCgroupRules": ["bogus"]}}, "invalid device cgroup format 'bogus'"),
    ({"HostConfig": {"CpuRealtimeRuntime": 1000}}, "Your kernel does not support CPU real-time scheduler"),
]


@pytest.mark.parametrize("body,message", DOCKERD + AT_CREATE)
def test_refused_at_create(body: dict, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        _create(body)
    assert e.value.message == message and e.value.status == 400


@pytest.mark.parametrize("body", [
    {"HostConfig": {"RestartPolicy": {"Name": "", "MaximumRetryCount": 3}}},
    {"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "no"}}},
    {"HostConfig": {"CapAdd": "ALL"}}, {"HostConfig": {"CapAdd": ["all", "net_admin"]}},
    {"HostConfig": {"LogConfig": {"Type": "none", "Config": {"foo": "bar"}}}},
    {"HostConfig": {"LogConfig": {"Type": "k8s-file"}}}, {"HostConfig": {"LogConfig": {"Type": "local"}}},
    {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-file": "2", "max-size": "10m", "compress": "true"}}}},
    {"HostConfig": {"MemorySwappiness": -1}}, {"HostConfig": {"PidsLimit": -5}},
    {"HostConfig": {"ExtraHosts": ["foo:host-gateway", "bar:::1", "baz:10.0.0.1"]}},
    {"HostConfig": {"PortBindings": {"80/xyz": [{"HostPort": "80"}], "81/tcp": [{"HostPort": "8000-8010"}, {}]}}},
    {"StopSignal": "99"}, {"StopSignal": "SIGRTMIN+3"}, {"StopSignal": "term"},
    {"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "5", "kernel.shmmax": "1"}}},
    {"HostConfig": {"IpcMode": "shareable", "PidMode": "container:abc", "UTSMode": "host"}},
    {"HostConfig": {"Tmpfs": {"/run": "rw,noexec,size=64m"}}},
    {"HostConfig": {"CpusetCpus": "0,1", "CpusetMems": "0", "NanoCpus": 1500000000}},
    {"HostConfig": {"Dns": ["1.1.1.1", "::1"]}},
    {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000, "Retries": 0}},
    {"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]}},
])
def test_accepted(body: dict) -> None:
    _create(body)


def test_defaults_and_coercions() -> None:
    hc, warnings = _create({})
    assert hc["ShmSize"] == 64 << 20 and hc["NetworkMode"] == "default" and hc["Runtime"] == "runc"
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["MaskedPaths"] is not hostconfig.HOST_CONFIG_DEFAULTS["MaskedPaths"]  # a copy
    assert warnings == []
    hc, _ = _create({"HostConfig": {"MemorySwappiness": -1, "RestartPolicy": {"Name": ""}, "ShmSize": 0}})
    assert hc["MemorySwappiness"] is None and hc["RestartPolicy"]["Name"] == "no" and hc["ShmSize"] == 64 << 20
    hc, _ = _create({"HostConfig": {"Init": True, "Sysctls": {"net.core.somaxconn": "1"}, "Bogus": 1}})
    assert hc["Init"] is True and "Bogus" not in hc
    # the daemon's log options apply under the default driver, the container's win
    hc, _ = _create({"HostConfig": {"LogConfig": {"Config": {"max-file": "3"}}}},
                    log_opts={"max-size": "1m", "max-file": "2"})
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}}
    hc, _ = _create({"HostConfig": {"LogConfig": {"Type": "none"}}}, log_opts={"max-size": "1m"})
    assert hc["LogConfig"] == {"Type": "none", "Config": {}}


def test_warnings() -> None:
    _, w = _create({"HostConfig": {"OomKillDisable": True}})
    assert w == ["OOM killer is disabled for the container, but no memory limit is set, this can result in the "
                 "system running out of resources."]
    hc, w = _create({"HostConfig": {"CpuPercent": 50, "KernelMemory": 8 << 20}})
    assert hc["CpuPercent"] == 0
    assert "linux does not support CPU percent. Percent discarded." in w
    assert "Specifying a kernel memory limit is deprecated and will be removed in a future release." in w


def test_unknown_network_is_not_found() -> None:
    with pytest.raises(NotFound, match="network bogusnet not found"):
        _create({"HostConfig": {"NetworkMode": "bogusnet"}})


def test_update() -> None:
    current, _ = _create({"HostConfig": {"Memory": 64 << 20}})
    hc, _ = hostconfig.validate_update(engine.container_update({"MemorySwap": 128 << 20}), current)
    assert hc["MemorySwap"] == 128 << 20 and hc["Memory"] == 64 << 20
    hc, _ = hostconfig.validate_update(engine.container_update({"RestartPolicy": {"Name": "always"}}), current)
    assert hc["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    with pytest.raises(InvalidParameter, match="invalid restart policy 'x'"):
        hostconfig.validate_update({"RestartPolicy": {"Name": "x"}}, current)
    auto, _ = _create({"HostConfig": {"AutoRemove": True}})
    with pytest.raises(InvalidParameter, match="Restart policy cannot be updated because AutoRemove is enabled"):
        hostconfig.validate_update({"RestartPolicy": {"Name": "always"}}, auto)
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        hostconfig.validate_update({"Memory": 5}, current)


def test_parse_signal() -> None:
    import signal

    assert hostconfig.parse_signal("SIGTERM") == signal.SIGTERM == hostconfig.parse_signal("term")
    assert hostconfig.parse_signal("9") == 9 and hostconfig.parse_signal("RTMAX") == signal.SIGRTMAX
    for bad in ("0", "SIGBOGUS", "RTMIN+99", ""):
        with pytest.raises(InvalidParameter):
            hostconfig.parse_signal(bad)


def test_uint_list() -> None:
    assert hostconfig.parse_uint_list("0-2,4") == [(0, 2), (4, 4)]
    assert hostconfig.parse_uint_list("") == []
    for bad in ("a", "2-1", "1-", "-1-2", "1,,2"):
        with pytest.raises(ValueError, match="invalid format"):
            hostconfig.parse_uint_list(bad)


def test_host_facts() -> None:
    f = hostconfig.host_facts()
    assert f.ncpu >= 1 and hostconfig.parse_uint_list(f.cpus) and f.mems


def test_default_cgroupns_mode_follows_the_cgroup_version() -> None:
    import dataclasses

    from hatoba.engine.hostconfig import build, host_facts

    kw = {"log_opts": {}, "default_runtime": "runc", "valid_runtime": lambda n: True}
    for v2, want in ((False, "host"), (True, "private")):
        facts = dataclasses.replace(host_facts(), cgroup_v2=v2)
        assert build({}, facts=facts, **kw)[0]["CgroupnsMode"] == want
        assert build({"CgroupnsMode": "host"}, facts=facts, **kw)[0]["CgroupnsMode"] == "host"
