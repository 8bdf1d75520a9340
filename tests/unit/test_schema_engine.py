"""Engine API body validation (hatoba.schema.engine, gotypes, jsonload): dockerd 20.10's messages, recorded
from the reference daemon, and property tests (any document validates to well-typed output or raises
InvalidParameter; the fast and the slow path agree)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatoba.errors import InvalidParameter
from hatoba.schema import engine, jsonload
from hatoba.schema.gotypes import INT_RANGES, engine_types

# (body of POST /containers/create, dockerd 20.10.24's message), recorded against the reference daemon
CREATE_ERRORS = [
    ('{"Image":"busybox","Labels":{"a":5}}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Labels of type string'),
    ('{"Image":"busybox","Labels":["a"]}',
     'json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Labels of type map[string]string'),
    ('{"Image":"busybox","ExposedPorts":["80/tcp"]}',
     'json: cannot unmarshal array into Go struct field ContainerConfigWrapper.ExposedPorts of type nat.PortSet'),
    ('{"Image":"busybox","ExposedPorts":{"80/tcp":5}}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.ExposedPorts of type struct {}'),
    ('{"Image":"busybox","Tty":"yes"}',
     'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool'),
    ('{"Image":"busybox","User":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.User of type string'),
    ('{"Image":"busybox","HostConfig":{"Dns":"1.1.1.1"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Dns of type []string'),
    ('{"Image":"busybox","StopTimeout":1.5}',
     'json: cannot unmarshal number 1.5 into Go struct field ContainerConfigWrapper.StopTimeout of type int'),
    ('{"Image":"busybox","StopTimeout":99999999999999999999}',
     'json: cannot unmarshal number 99999999999999999999 into Go struct field ContainerConfigWrapper.StopTimeout of type int'),
    ('{"Image":"busybox","Env":"x"}',
     'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string'),
    ('{"Image":"busybox","Env":[5]}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Env of type string'),
    ('{"Image":"busybox","HostConfig":{"Tmpfs":["/x"]}}',
     'json: cannot unmarshal array into Go struct field HostConfig.HostConfig.Tmpfs of type map[string]string'),
    ('{"Image":"busybox","HostConfig":{"Ulimits":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Ulimits of type []*units.Ulimit'),
    ('{"Image":"busybox","HostConfig":{"Ulimits":[5]}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Ulimits of type units.Ulimit'),
    ('{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":"x"}]}}',
     'json: cannot unmarshal string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64'),
    ('{"Image":"busybox","WorkingDir":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.WorkingDir of type string'),
    ('{"Image":"busybox","Entrypoint":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Entrypoint of type string'),
    ('{"Image":"busybox","HostConfig":{"Binds":[5]}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Binds of type string'),
    ('{"Image":"busybox","HostConfig":{"RestartPolicy":"always"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.RestartPolicy of type container.RestartPolicy'),
    ('{"Image":"busybox","HostConfig":{"Mounts":[5]}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Mounts of type mount.Mount'),
    ('{"Image":"busybox","HostConfig":{"LogConfig":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.LogConfig of type container.LogConfig'),
    ('{"Image":"busybox","HostConfig":{"NetworkMode":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.NetworkMode of type container.NetworkMode'),
    ('{"Image":"busybox","HostConfig":{"ConsoleSize":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.ConsoleSize of type [2]uint'),
    ('{"Image":"busybox","HostConfig":{"ConsoleSize":[-1]}}',
     'json: cannot unmarshal number -1 into Go struct field HostConfig.HostConfig.ConsoleSize of type uint'),
    ('{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":5}]}}}',
     'json: cannot unmarshal number into Go struct field PortBinding.HostConfig.PortBindings.HostPort of type string'),
    ('{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":5}}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.PortBindings of type []nat.PortBinding'),
    ('{"Image":"busybox","HostConfig":{"BlkioWeightDevice":[{"Weight":-1}]}}',
     'json: cannot unmarshal number -1 into Go struct field WeightDevice.HostConfig.BlkioWeightDevice.Weight of type uint16'),
    ('{"Image":"busybox","HostConfig":{"BlkioDeviceReadBps":[{"Rate":-1}]}}',
     'json: cannot unmarshal number -1 into Go struct field ThrottleDevice.HostConfig.BlkioDeviceReadBps.Rate of type uint64'),
    ('{"Image":"busybox","HostConfig":{"Mounts":[{"TmpfsOptions":{"Mode":"x"}}]}}',
     'json: cannot unmarshal string into Go struct field TmpfsOptions.HostConfig.Mounts.TmpfsOptions.Mode of type fs.FileMode'),
    ('{"Image":"busybox","HostConfig":{"Mounts":[{"BindOptions":{"Propagation":5}}]}}',
     'json: cannot unmarshal number into Go struct field BindOptions.HostConfig.Mounts.BindOptions.Propagation of type mount.Propagation'),
    ('{"Image":"busybox","HostConfig":{"Mounts":[{"Type":5}]}}',
     'json: cannot unmarshal number into Go struct field Mount.HostConfig.Mounts.Type of type mount.Type'),
    ('{"Image":"busybox","HostConfig":{"MemorySwappiness":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.MemorySwappiness of type int64'),
    ('{"Image":"busybox","HostConfig":{"PidsLimit":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.PidsLimit of type int64'),
    ('{"Image":"busybox","HostConfig":{"OomKillDisable":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.OomKillDisable of type bool'),
    ('{"Image":"busybox","HostConfig":{"Init":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Init of type bool'),
    ('{"Image":"busybox","HostConfig":{"DeviceRequests":[{"Capabilities":[[5]]}]}}',
     'json: cannot unmarshal number into Go struct field DeviceRequest.HostConfig.DeviceRequests.Capabilities of type string'),
    ('{"Image":"busybox","HostConfig":{"IOMaximumIOps":-1}}',
     'json: cannot unmarshal number -1 into Go struct field HostConfig.HostConfig.IOMaximumIOps of type uint64'),
    ('{"Image":"busybox","HostConfig":{"CgroupnsMode":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.CgroupnsMode of type container.CgroupnsMode'),
    ('{"Image":"busybox","HostConfig":{"Isolation":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Isolation of type container.Isolation'),
    ('{"Image":"busybox","HostConfig":{"IpcMode":5,"PidMode":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.IpcMode of type container.IpcMode'),
    ('{"Image":"busybox","HostConfig":{"Cgroup":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Cgroup of type container.CgroupSpec'),
    ('{"Image":"busybox","HostConfig":{"UTSMode":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.UTSMode of type container.UTSMode'),
    ('{"Image":"busybox","HostConfig":{"UsernsMode":5}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.UsernsMode of type container.UsernsMode'),
    ('{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":5}]}}',
     'json: cannot unmarshal number into Go struct field DeviceMapping.HostConfig.Devices.PathOnHost of type string'),
    ('{"Image":"busybox","Healthcheck":{"Test":"x"}}',
     'json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Test of type []string'),
    ('{"Image":"busybox","Healthcheck":{"Interval":"x"}}',
     'json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of type time.Duration'),
    ('{"Image":"busybox","Healthcheck":{"Retries":"x"}}',
     'json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Retries of type int'),
    ('{"Image":"busybox","Healthcheck":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Healthcheck of type container.HealthConfig'),
    ('{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"x":{"IPAMConfig":{"IPv4Address":5}}}}}',
     'json: cannot unmarshal number into Go struct field EndpointIPAMConfig.NetworkingConfig.EndpointsConfig.IPAMConfig.IPv4Address of type string'),
    ('{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"x":5}}}',
     'json: cannot unmarshal number into Go struct field NetworkingConfig.NetworkingConfig.EndpointsConfig of type network.EndpointSettings'),
    ('{"Image":"busybox","NetworkingConfig":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.NetworkingConfig of type network.NetworkingConfig'),
    ('{"Image":"busybox","Volumes":["/x"]}',
     'json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Volumes of type map[string]struct {}'),
    ('{"Image":"busybox","Shell":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Shell of type string'),
    ('{"Image":"busybox","OnBuild":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.OnBuild of type []string'),
    ('{"Image":"busybox","Memory":"x"}',
     'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Memory of type int64'),
    ('{"Image":"busybox","Cpuset":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cpuset of type string'),
    ('{"Image":"busybox","HostConfig":{"CpuShares":1.0}}',
     'json: cannot unmarshal number 1.0 into Go struct field HostConfig.HostConfig.CpuShares of type int64'),
    ('{"Image":"busybox","HostConfig":{"CpuShares":1e2}}',
     'json: cannot unmarshal number 1e2 into Go struct field HostConfig.HostConfig.CpuShares of type int64'),
    ('{"Image":"busybox","HostConfig":{"Memory":-1.0E+2}}',
     'json: cannot unmarshal number -1.0E+2 into Go struct field HostConfig.HostConfig.Memory of type int64'),
    ('{"Image":"busybox","HostConfig":{"Memory":9223372036854775808}}',
     'json: cannot unmarshal number 9223372036854775808 into Go struct field HostConfig.HostConfig.Memory of type int64'),
    ('{"Image":"busybox","HostConfig":{"BlkioWeight":-1}}',
     'json: cannot unmarshal number -1 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16'),
    ('{"Image":"busybox","ArgsEscaped":"x"}',
     'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.ArgsEscaped of type bool'),
    ('{"Image":"busybox","MacAddress":5}',
     'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.MacAddress of type string'),
    ('{"Image":"busybox","HostConfig":{"Mounts":[{"VolumeOptions":{"DriverConfig":{"Options":{"a":1}}}}]}}',
     'json: cannot unmarshal number into Go struct field Driver.HostConfig.Mounts.VolumeOptions.DriverConfig.Options of type string'),
    ('{"Image":"busybox","HostConfig":{"StorageOpt":{"a":1}}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.StorageOpt of type string'),
    ('{"Image":"busybox","HostConfig":{"Sysctls":{"a":1}}}',
     'json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Sysctls of type string'),
    ('{"Image":"busybox","HostConfig":{"ShmSize":"x"}}',
     'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.ShmSize of type int64'),
    ('{"Image":"busybox","Cmd":[1,2]}',
     "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string"),
    ('{"Image":"busybox","Cmd":5}',
     "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string"),
    ('{"Image":"busybox","HostConfig":{"Memory":1e400}}',
     "json: cannot unmarshal number 1e400 into Go struct field HostConfig.HostConfig.Memory of type int64"),
    ('{"Image":"busybox","HostConfig":{"Memory":"lots"}}',
     "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"),
    ('{"Image":"busybox","HostConfig":{"BlkioWeight":99999}}',
     "json: cannot unmarshal number 99999 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16"),
    ('{"Image":5}', "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Image of type string"),
    ('{"HostConfig":"x"}',
     "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.HostConfig of type container.HostConfig"),
    ('[1]', "json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper"),
    ('5', "json: cannot unmarshal number into Go value of type runconfig.ContainerConfigWrapper"),
    # a strslice error aborts at once: it wins over an earlier plain type error
    ('{"HostConfig":{"Memory":"x"},"Cmd":5}',
     "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string"),
    # keys match case-insensitively; messages use the canonical name
    ('{"image":"busybox","cmd":"true","hostconfig":{"memory":"x"}}',
     "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"),
    ('{"Image":"busybox","Cmd":NaN}', "invalid character 'N' looking for beginning of value"),
    ('{"Image":"busybox","Memory":Infinity}', "invalid character 'I' looking for beginning of value"),
    ('{"Image":"busybox","HostConfig":{"Memory":-Infinity}}', "invalid character 'I' in numeric literal"),
    ('{"Image":"busybox",', "unexpected EOF"),
]

SYNTAX_ERRORS = [
    ('{"Image":"busybox","Cmd":["a"', "unexpected EOF"),
    ('{"Image":"busybox","Cmd":["a",]}', "invalid character ']' looking for beginning of value"),
    ('{"Image":"busybox",}', "invalid character '}' looking for beginning of object key string"),
    ('{"Image" "busybox"}', "invalid character '\"' after object key"),
    ('{"Image":"busybox" "Cmd":[]}', "invalid character '\"' after object key:value pair"),
    ('{"Image":"busybox","Cmd":["a" "b"]}', "invalid character '\"' after array element"),
    ('{"Image":tru}', "invalid character '}' in literal true (expecting 'e')"),
    ('{"Image":trux}', "invalid character 'x' in literal true (expecting 'e')"),
    ('{"Image":nul}', "invalid character '}' in literal null (expecting 'l')"),
    ('{"Image":-}', "invalid character '}' in numeric literal"),
    ('{"Image":-a}', "invalid character 'a' in numeric literal"),
    ('{"Image":01}', "invalid character '1' after object key:value pair"),
    ('{"Image":1.}', "invalid character '}' after decimal point in numeric literal"),
    ('{"Image":1.e5}', "invalid character 'e' after decimal point in numeric literal"),
    ('{"Image":1e}', "invalid character '}' in exponent of numeric literal"),
    ('{"Image":"a\\x"}', "invalid character 'x' in string escape code"),
    ('{"Image":"a\\u12"}', "invalid character '\"' in \\u hexadecimal character escape"),
    ('{"Image":"a\\u12G4"}', "invalid character 'G' in \\u hexadecimal character escape"),
    ("{'Image':1}", "invalid character '\\'' looking for beginning of object key string"),
    ('{Image:1}', "invalid character 'I' looking for beginning of object key string"),
    ('x', "invalid character 'x' looking for beginning of value"),
    ('{"Image":"busybox","Cmd":[-Infinity]}', "invalid character 'I' in numeric literal"),
    ('{"Image":"busybox","Cmd":[NaN]}', "invalid character 'N' looking for beginning of value"),
    (b'{"Image":"bu\x01sybox"}', "invalid character '\\x01' in string literal"),
    (b'\xef\xbb\xbf{"Image":"busybox"}', "invalid character '\u00ef' looking for beginning of value"),
    (b'{"Image":"busybox"\xff}', "invalid character '\u00ff' after object key:value pair"),
    ("[" * 100_000, "invalid character '[' exceeded max depth"),
    ('{"Image":"busybox","X":' + "[" * 10_001 + "]" * 10_001 + "}", "invalid character '[' exceeded max depth"),
]


def _raw(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode()


@pytest.mark.parametrize("body,message", CREATE_ERRORS)
def test_create_errors_match_dockerd(body: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.container_create(jsonload.decode(_raw(body)))
    assert e.value.message == message
    assert e.value.status == 400


@pytest.mark.parametrize("body,message", SYNTAX_ERRORS)
def test_syntax_errors_match_go(body: str | bytes, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        jsonload.decode(_raw(body))
    assert e.value.message == message


def test_decode_details() -> None:
    assert jsonload.decode(b"") is None
    assert jsonload.decode(b" \n\t") is None
    assert jsonload.decode(b'{"Image":"busybox"} trailing') == {"Image": "busybox"}  # Go's Decoder
    assert jsonload.decode(b'{"a":"\\ud800x"}') == {"a": "\ufffdx"}  # lone surrogate → U+FFFD
    assert jsonload.decode(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001F600"}
    assert jsonload.decode(b'{"a":"b\xffc"}') == {"a": "b\ufffdc"}
    doc = jsonload.decode(b'{"a":1e400,"b":-1.0E+2,"c":' + b"9" * 5000 + b"}")
    assert doc["a"].literal == "1e400" and math.isinf(doc["a"])
    assert doc["b"].literal == "-1.0E+2"
    assert doc["c"].literal == "9" * 5000


def test_create_normalises_like_dockerd() -> None:
    out = engine.container_create({"Image": "busybox", "Cmd": "echo hi", "Entrypoint": None,
                                   "HostConfig": {"CapAdd": "ALL", "Memory": None, "ConsoleSize": [3]}})
    assert out == {"Image": "busybox", "Cmd": ["echo hi"],
                   "HostConfig": {"CapAdd": ["ALL"], "ConsoleSize": [3, 0], "NetworkMode": "default"}}
    # keys in any case; unknown keys dropped; null elements are Go's zero values
    out = engine.container_create({"image": "busybox", "CMD": ["a", None], "Bogus": 1, "Env": [None]})
    assert out == {"Image": "busybox", "Cmd": ["a", ""], "Env": [""], "HostConfig": {}}
    # deprecated top-level HostConfig fields: used as the HostConfig when there is none
    out = engine.container_create({"Image": "busybox", "Binds": ["/a:/b"], "Memory": 8 << 20})
    assert out["HostConfig"] == {"Binds": ["/a:/b"], "Memory": 8 << 20, "NetworkMode": "default"}
    # ... and five of them fill the inner HostConfig's zero values
    out = engine.container_create({"Image": "busybox", "Memory": 8 << 20, "Binds": ["/a:/b"], "Cpuset": "0",
                                   "HostConfig": {"CpuShares": 5}})
    assert out["HostConfig"] == {"CpuShares": 5, "Memory": 8 << 20, "CpusetCpus": "0", "NetworkMode": "default"}
    for empty in (None, {}, {"HostConfig": {}}, {"Bogus": 1}):  # dockerd: no Config field named at all
        with pytest.raises(InvalidParameter, match="^Config cannot be empty in order to create a container$"):
            engine.container_create(empty)
    assert engine.container_create({"image": None}) == {"HostConfig": {}}  # named (null): Config exists


# the findings (each answered 500 or was stored and broke later reads)
FINDINGS = [
    {"Cmd": [1, 2]}, {"Labels": {"a": 5}}, {"ExposedPorts": ["80/tcp"]}, {"Tty": "yes"}, {"User": 5},
    {"HostConfig": {"Dns": "1.1.1.1"}}, {"StopTimeout": 1.5}, {"Env": "x"}, {"HostConfig": {"Tmpfs": ["/x"]}},
    {"HostConfig": {"Ulimits": "x"}}, {"HostConfig": {"BlkioWeight": 99999}}, {"WorkingDir": 5}, {"Cmd": 5},
    {"Entrypoint": 5}, {"Env": [5]}, {"HostConfig": "x"}, {"Image": 5}, {"Labels": ["a"]},
    {"HostConfig": {"Memory": "lots"}}, {"HostConfig": {"Binds": [5]}}, {"HostConfig": {"RestartPolicy": "always"}},
    {"HostConfig": {"Mounts": [5]}}, {"HostConfig": {"LogConfig": "x"}},
]


@pytest.mark.parametrize("body", FINDINGS)
def test_findings_are_400(body: dict) -> None:
    with pytest.raises(InvalidParameter):
        engine.container_create({"Image": "busybox", **body})


def test_findings_memory_and_stoptimeout_literals() -> None:
    for raw, lit, field in [(b'{"HostConfig":{"Memory":Infinity}}', None, None),
                            (b'{"StopTimeout":NaN}', None, None),
                            (b'{"HostConfig":{"Memory":1e400}}', "1e400", "HostConfig.HostConfig.Memory")]:
        with pytest.raises(InvalidParameter) as e:
            engine.container_create(jsonload.decode(raw))
        if lit:
            assert f"number {lit} into Go struct field {field} of type int64" in e.value.message


def test_cmd_string_is_one_argument() -> None:
    assert engine.container_create({"Image": "b", "Cmd": "true"})["Cmd"] == ["true"]


EXEC_ERRORS = [
    ({"Cmd": 5}, "json: cannot unmarshal number into Go struct field ExecConfig.Cmd of type []string"),
    ({"Cmd": "true"}, "json: cannot unmarshal string into Go struct field ExecConfig.Cmd of type []string"),
    ({"Cmd": []}, "No exec command specified"),
    (None, "No exec command specified"),
    ({"User": 5}, "json: cannot unmarshal number into Go struct field ExecConfig.User of type string"),
    ({"Cmd": ["true"], "Env": "x"}, "json: cannot unmarshal string into Go struct field ExecConfig.Env of type []string"),
    ({"Cmd": ["true"], "Tty": "x"}, "json: cannot unmarshal string into Go struct field ExecConfig.Tty of type bool"),
    ([1], "json: cannot unmarshal array into Go value of type types.ExecConfig"),
]


@pytest.mark.parametrize("body,message", EXEC_ERRORS)
def test_exec_create_errors(body: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.exec_create(body)
    assert e.value.message == message


def test_exec_create_ok() -> None:
    assert engine.exec_create({"cmd": ["true"], "detachkeys": "x"}) == {"Cmd": ["true"], "DetachKeys": "x"}


@pytest.mark.parametrize("body,message", [
    ({"Detach": "x"}, "json: cannot unmarshal string into Go struct field ExecStartCheck.Detach of type bool"),
    ({"Tty": 5}, "json: cannot unmarshal number into Go struct field ExecStartCheck.Tty of type bool"),
    ([1], "json: cannot unmarshal array into Go value of type types.ExecStartCheck"),
])
def test_exec_start_errors(body: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.exec_start(body)
    assert e.value.message == message


@pytest.mark.parametrize("body,message", [
    ({"Memory": "x"}, "json: cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64"),
    ({"RestartPolicy": "always"},
     "json: cannot unmarshal string into Go struct field UpdateConfig.RestartPolicy of type container.RestartPolicy"),
    ({"RestartPolicy": {"Name": 5}},
     "json: cannot unmarshal number into Go struct field RestartPolicy.RestartPolicy.Name of type string"),
    ({"BlkioWeight": 99999},
     "json: cannot unmarshal number 99999 into Go struct field UpdateConfig.BlkioWeight of type uint16"),
    ([1], "json: cannot unmarshal array into Go value of type container.UpdateConfig"),
])
def test_update_errors(body: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.container_update(body)
    assert e.value.message == message


@pytest.mark.parametrize("body,message", [
    ({"Cmd": 5}, "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string"),
    ({"Labels": [1]},
     "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Labels of type map[string]string"),
    ([1], "json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper"),
])
def test_commit_errors(body: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.commit_config(body)
    assert e.value.message == message


def test_commit_ok() -> None:
    assert engine.commit_config(None) is None
    assert engine.commit_config({"Cmd": "sh", "HostConfig": {"Memory": 1}}) == {"Cmd": ["sh"]}


@pytest.mark.parametrize("body,message", [
    ({"username": 5}, "json: cannot unmarshal number into Go struct field AuthConfig.username of type string"),
    ({"Username": 5}, "json: cannot unmarshal number into Go struct field AuthConfig.username of type string"),
    ({"serveraddress": 5}, "json: cannot unmarshal number into Go struct field AuthConfig.serveraddress of type string"),
    ({"identitytoken": 5}, "json: cannot unmarshal number into Go struct field AuthConfig.identitytoken of type string"),
    ([1], "json: cannot unmarshal array into Go value of type types.AuthConfig"),
])
def test_auth_errors(body: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        engine.auth_config(body)
    assert e.value.message == message


# ---- properties ----------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)

_types = engine_types()
_names = {root: sorted(_types.structs[root]["fields"]) for root in engine.ROOTS}


def _doc_for(root: str) -> st.SearchStrategy:
    """Objects whose keys are mostly the struct's fields (any case), with any values."""
    key = st.sampled_from(_names[root]) | st.sampled_from(_names[root]).map(str.lower) | st.text(max_size=6)
    return st.dictionaries(key, _json, max_size=6)


def _check(v: object, t: object) -> None:
    """Assert a normalised value has the Python type its Go type maps to."""
    if isinstance(t, str):
        base = t.split(":", 1)[0]
        if base == "string":
            assert isinstance(v, str)
        elif base == "bool":
            assert isinstance(v, bool)
        elif base in INT_RANGES:
            lo, hi = INT_RANGES[base]
            assert type(v) is int and lo <= v <= hi
        elif base == "strslice":
            assert isinstance(v, list) and all(isinstance(x, str) for x in v)
        elif base == "empty":
            assert v == {}
        return
    assert isinstance(t, dict)
    if "struct" in t:
        fields = _types.structs[t["struct"]]["fields"]
        assert isinstance(v, dict)
        for k, x in v.items():
            assert k in fields and x is not None
            _check(x, fields[k])
    elif "slice" in t or "array" in t:
        assert isinstance(v, list)
        if "array" in t:
            assert len(v) == t["len"]
        for x in v:
            _check(x, t.get("slice") or t.get("array"))
    else:
        assert isinstance(v, dict)
        for x in v.values():
            _check(x, t["map"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(engine.ROOTS).flatmap(lambda r: st.tuples(st.just(r), _doc_for(r) | _json)))
def test_any_document_validates_or_is_invalid_parameter(case: tuple[str, object]) -> None:
    root, doc = case
    try:
        out = _types.decode(doc, root)
    except InvalidParameter as e:
        assert e.message.startswith("json: cannot unmarshal ")
        return
    _check(out, {"struct": root})
    assert out == _types.decode_slow(doc, root)
    json.dumps(out, allow_nan=False)  # storable


def _valid(t: object, depth: int = 0) -> st.SearchStrategy:
    """Documents of Go type t (canonical keys, some nulls): both paths must give the same result."""
    if isinstance(t, str):
        base = t.split(":", 1)[0]
        if base == "string":
            return st.text(max_size=5)
        if base == "bool":
            return st.booleans()
        if base in INT_RANGES:
            lo, hi = INT_RANGES[base]
            return st.integers(min_value=lo, max_value=hi)
        if base == "strslice":
            return st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=3)
        return st.just({})
    assert isinstance(t, dict)
    if depth > 4:
        return st.just(None)
    if "struct" in t:
        fields = _types.structs[t["struct"]]["fields"]
        return st.fixed_dictionaries({}, optional={k: st.none() | _valid(ft, depth + 1) for k, ft in fields.items()})
    if "slice" in t or "array" in t:
        return st.lists(_valid(t.get("slice") or t.get("array"), depth + 1), max_size=3)
    return st.dictionaries(st.text(max_size=4), _valid(t["map"], depth + 1), max_size=3)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(engine.ROOTS).flatmap(lambda r: st.tuples(st.just(r), _valid({"struct": r}))))
def test_fast_and_slow_paths_agree(case: tuple[str, dict]) -> None:
    root, doc = case
    out = _types.decode(doc, root)
    assert out == _types.decode_slow(doc, root)
    _check(out, {"struct": root})


@settings(max_examples=300)
@given(st.binary(max_size=64) | _json.map(lambda d: json.dumps(d).encode()))
def test_jsonload_never_raises_anything_else(raw: bytes) -> None:
    try:
        doc = jsonload.decode(raw)
    except InvalidParameter:
        return
    json.dumps(doc, allow_nan=True)


@given(_json)
def test_jsonload_roundtrip(doc: object) -> None:
    assert jsonload.decode(json.dumps(doc).encode()) == doc


def test_committed_schema_is_generated_from_the_swagger() -> None:
    """hatoba/schema/data/engine-api.json is scripts/gen_engine_schema.py's output for Docker's swagger."""
    import importlib.util
    import os

    pytest.importorskip("yaml")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("gen_engine_schema", os.path.join(root, "scripts", "gen_engine_schema.py"))
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    if not os.path.exists(gen.SWAGGER):
        pytest.skip("the swagger (../shared/reference) is not here")
    with open(os.path.join(root, "hatoba", "schema", "data", "engine-api.json")) as f:
        assert json.load(f) == gen.generate(gen.SWAGGER)
