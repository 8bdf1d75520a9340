#!/usr/bin/env python3
"""Generate hatoba/schema/data/engine-api.json from Docker's swagger (Engine API v1.41).

The swagger says which fields each request body has and their JSON types; Go's structs (what dockerd
really decodes into) differ in a few ways, kept by hand in the tables below: the Go type names that
dockerd's messages quote, integer widths, strslice fields (a string means ["..."]), embedded structs
(ContainerConfigWrapper, UpdateConfig) and fields dockerd 20.10 (or a later API hatoba serves) decodes
but the swagger omits.

The output is compact: {"structs": {Name: {"go": GoType, "fields": {JSONName: Type}}}, "roots": {...}}
where Type is "string" | "bool" | "int" | "int64" | "uint16" | ... | "any" | "strslice" | "empty"
(struct {}) | "base:go.Name" (a named scalar) | {"slice": T, "go"?} | {"array": T, "len": n} |
{"map": T, "go"?} | {"struct": Name}. Embedded structs are flattened (Go promotes their fields, and its
messages name the outer struct).

Usage: python3 scripts/gen_engine_schema.py [swagger.yaml] > hatoba/schema/data/engine-api.json
(PyYAML is needed here only, never at run time.)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CANDIDATES = [os.path.join(_ROOT, up, "shared", "reference", "engine-api", "swagger-v1.41.yaml")
               for up in ("..", os.path.join("..", ".."))]
SWAGGER = next((p for p in _CANDIDATES if os.path.exists(p)), _CANDIDATES[0])

# swagger definition (or inline object path) -> (our struct name, Go type dockerd's messages quote)
STRUCTS = {
    "ContainerConfig": ("Config", "container.Config"),
    "HostConfig": ("HostConfig", "container.HostConfig"),
    "Resources": ("Resources", "container.Resources"),
    "HostConfig.LogConfig": ("LogConfig", "container.LogConfig"),
    "RestartPolicy": ("RestartPolicy", "container.RestartPolicy"),
    "Resources.BlkioWeightDevice[]": ("WeightDevice", "blkiodev.WeightDevice"),
    "ThrottleDevice": ("ThrottleDevice", "blkiodev.ThrottleDevice"),
    "DeviceMapping": ("DeviceMapping", "container.DeviceMapping"),
    "DeviceRequest": ("DeviceRequest", "container.DeviceRequest"),
    "Resources.Ulimits[]": ("Ulimit", "units.Ulimit"),
    "Mount": ("Mount", "mount.Mount"),
    "Mount.BindOptions": ("BindOptions", "mount.BindOptions"),
    "Mount.VolumeOptions": ("VolumeOptions", "mount.VolumeOptions"),
    "Mount.VolumeOptions.DriverConfig": ("Driver", "mount.Driver"),
    "Mount.TmpfsOptions": ("TmpfsOptions", "mount.TmpfsOptions"),
    "HealthConfig": ("HealthConfig", "container.HealthConfig"),
    "NetworkingConfig": ("NetworkingConfig", "network.NetworkingConfig"),
    "EndpointSettings": ("EndpointSettings", "network.EndpointSettings"),
    "EndpointIPAMConfig": ("EndpointIPAMConfig", "network.EndpointIPAMConfig"),
    "PortBinding": ("PortBinding", "nat.PortBinding"),
    "AuthConfig": ("AuthConfig", "types.AuthConfig"),
}

# Go's field types where the swagger's differ (checked against dockerd 20.10's messages)
FIELDS: dict[str, Any] = {
    "Config.ExposedPorts": {"map": "empty", "go": "nat.PortSet"},
    "Config.Volumes": {"map": "empty"},
    "Config.Cmd": "strslice", "Config.Entrypoint": "strslice", "Config.Shell": "strslice",
    "Config.StopTimeout": "int",
    "HostConfig.NetworkMode": "string:container.NetworkMode",
    "HostConfig.PortBindings": {"map": {"slice": {"struct": "PortBinding"}}, "go": "nat.PortMap"},
    "HostConfig.CapAdd": "strslice", "HostConfig.CapDrop": "strslice",
    "HostConfig.CgroupnsMode": "string:container.CgroupnsMode",
    "HostConfig.IpcMode": "string:container.IpcMode", "HostConfig.PidMode": "string:container.PidMode",
    "HostConfig.Cgroup": "string:container.CgroupSpec", "HostConfig.UTSMode": "string:container.UTSMode",
    "HostConfig.UsernsMode": "string:container.UsernsMode",
    "HostConfig.Isolation": "string:container.Isolation",
    "HostConfig.OomScoreAdj": "int", "HostConfig.ConsoleSize": {"array": "uint", "len": 2},
    "Resources.CpuShares": "int64", "Resources.BlkioWeight": "uint16",
    "Resources.BlkioWeightDevice": {"slice": {"struct": "WeightDevice"}, "go": "[]*blkiodev.WeightDevice"},
    "Resources.BlkioDeviceReadBps": {"slice": {"struct": "ThrottleDevice"}, "go": "[]*blkiodev.ThrottleDevice"},
    "Resources.BlkioDeviceWriteBps": {"slice": {"struct": "ThrottleDevice"}, "go": "[]*blkiodev.ThrottleDevice"},
    "Resources.BlkioDeviceReadIOps": {"slice": {"struct": "ThrottleDevice"}, "go": "[]*blkiodev.ThrottleDevice"},
    "Resources.BlkioDeviceWriteIOps": {"slice": {"struct": "ThrottleDevice"}, "go": "[]*blkiodev.ThrottleDevice"},
    "Resources.Ulimits": {"slice": {"struct": "Ulimit"}, "go": "[]*units.Ulimit"},
    "Resources.IOMaximumIOps": "uint64", "Resources.IOMaximumBandwidth": "uint64",
    "WeightDevice.Weight": "uint16", "ThrottleDevice.Rate": "uint64",
    "Ulimit.Soft": "int64", "Ulimit.Hard": "int64",
    "DeviceRequest.Count": "int",
    "Mount.Type": "string:mount.Type", "Mount.Consistency": "string:mount.Consistency",
    "BindOptions.Propagation": "string:mount.Propagation",
    "TmpfsOptions.Mode": "uint32:fs.FileMode", "TmpfsOptions.SizeBytes": "int64",
    "HealthConfig.Interval": "int64:time.Duration", "HealthConfig.Timeout": "int64:time.Duration",
    "HealthConfig.StartPeriod": "int64:time.Duration", "HealthConfig.Retries": "int",
    "NetworkingConfig.EndpointsConfig": {"map": {"struct": "EndpointSettings"},
                                         "go": "map[string]*network.EndpointSettings"},
    "EndpointSettings.IPPrefixLen": "int", "EndpointSettings.GlobalIPv6PrefixLen": "int",
}

# fields Go decodes that the swagger lacks (struct -> {field: type})
EXTRA: dict[str, dict[str, Any]] = {
    "AuthConfig": {"auth": "string", "identitytoken": "string", "registrytoken": "string"},
    "HostConfig": {"Annotations": {"map": "string"}},  # API 1.43; hatoba keeps it
}

# request bodies that are not swagger definitions (Go structs of dockerd 20.10, plus ConsoleSize
# of API 1.42 which hatoba honours)
INLINE: dict[str, dict[str, Any]] = {
    "ExecConfig": {"go": "types.ExecConfig", "fields": {
        "User": "string", "Privileged": "bool", "Tty": "bool", "ConsoleSize": {"array": "uint", "len": 2},
        "AttachStdin": "bool", "AttachStderr": "bool", "AttachStdout": "bool", "Detach": "bool",
        "DetachKeys": "string", "Env": {"slice": "string"}, "WorkingDir": "string", "Cmd": {"slice": "string"}}},
    "ExecStartCheck": {"go": "types.ExecStartCheck", "fields": {
        "Detach": "bool", "Tty": "bool", "ConsoleSize": {"array": "uint", "len": 2}}},
}


def _type(node: dict[str, Any], path: str, defs: dict[str, Any], out: dict[str, Any]) -> Any:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in STRUCTS:
            _struct(name, defs[name], defs, out)
            return {"struct": STRUCTS[name][0]}
        return _type(defs[name], name, defs, out)
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(_fields(part, path, defs, out))
        return merged
    t = node.get("type")
    if t == "string":
        return "string"
    if t == "boolean":
        return "bool"
    if t == "integer":
        return "int64" if node.get("format") == "int64" else "int"
    if t == "number":
        return "float64"
    if t == "array":
        return {"slice": _type(node.get("items") or {}, path + "[]", defs, out)}
    if t == "object" or "properties" in node:
        if "properties" in node:
            if path not in STRUCTS:
                raise SystemExit(f"no Go name for inline struct {path}")
            _struct(path, node, defs, out)
            return {"struct": STRUCTS[path][0]}
        add = node.get("additionalProperties")
        if isinstance(add, dict):
            if add.get("type") == "object" and add.get("enum") == [{}]:
                return {"map": "empty"}
            return {"map": _type(add, path + "{}", defs, out)}
        return "any"
    return "any"


def _fields(node: dict[str, Any], path: str, defs: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return _fields(defs[name], name, defs, out)
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(_fields(part, path, defs, out))
        return merged
    ours = STRUCTS.get(path, (path, ""))[0]
    fields = {}
    for k, v in (node.get("properties") or {}).items():
        fields[k] = _type(v, f"{path}.{k}", defs, out)
        fields[k] = FIELDS.get(f"{ours}.{k}", fields[k])
    for k, v in EXTRA.get(ours, {}).items():
        fields[k] = v
    return fields


def _struct(path: str, node: dict[str, Any], defs: dict[str, Any], out: dict[str, Any]) -> None:
    name, go = STRUCTS[path]
    if name in out:
        return
    out[name] = {"go": go, "fields": {}}
    out[name]["fields"] = _fields(node, path, defs, out)


def generate(swagger_path: str) -> dict[str, Any]:
    with open(swagger_path) as f:
        defs = yaml.safe_load(f)["definitions"]
    structs: dict[str, Any] = {}
    for name in ("ContainerConfig", "HostConfig", "Resources", "NetworkingConfig", "AuthConfig", "RestartPolicy"):
        _struct(name, defs[name], defs, structs)
    # Go: HostConfig embeds Resources (swagger: allOf), plus Resources' own fields
    hc = structs["HostConfig"]["fields"]
    for k, v in structs["Resources"]["fields"].items():
        hc.setdefault(k, FIELDS.get(f"Resources.{k}", v))
    res = structs["Resources"]["fields"]
    for k in list(res):
        res[k] = FIELDS.get(f"Resources.{k}", res[k])
    res.pop("Init", None)  # in Go it is a HostConfig field
    # runconfig.ContainerConfigWrapper: embeds *Config and (deprecated, top-level) *HostConfig
    wrapper = dict(structs["Config"]["fields"])
    for k, v in hc.items():
        wrapper.setdefault(k, v)
    wrapper.update({"HostConfig": {"struct": "HostConfig"}, "Cpuset": "string",
                    "NetworkingConfig": {"struct": "NetworkingConfig"}})
    structs["ContainerConfigWrapper"] = {"go": "runconfig.ContainerConfigWrapper", "fields": wrapper}
    # container.UpdateConfig: embeds Resources, plus RestartPolicy
    upd = dict(res)
    upd["RestartPolicy"] = {"struct": "RestartPolicy"}
    structs["UpdateConfig"] = {"go": "container.UpdateConfig", "fields": upd}
    structs.update(INLINE)
    del structs["Resources"]
    return {"source": "swagger-v1.41.yaml + scripts/gen_engine_schema.py overrides",
            "structs": dict(sorted(structs.items()))}


if __name__ == "__main__":
    doc = generate(sys.argv[1] if len(sys.argv) > 1 else SWAGGER)
    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
