"""Engine API request bodies, validated and normalised as dockerd 20.10 decodes them.

Each validator takes the decoded document (`jsonload.decode`; None for an empty body) and returns the
normalised document, or raises InvalidParameter with dockerd's message. Types are Docker's swagger
with Go's differences (see scripts/gen_engine_schema.py and `gotypes`).
"""

from __future__ import annotations

from typing import Any

from hatoba.errors import InvalidParameter
from hatoba.schema.gotypes import engine_types

# fields of the deprecated top-level HostConfig that dockerd copies into HostConfig when that one
# leaves them at zero (runconfig's getHostConfig)
_MERGED_FROM_TOP = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")


def container_create(doc: Any) -> dict[str, Any]:
    """POST /containers/create: runconfig.ContainerConfigWrapper.

    Returns the container Config's fields at the top level plus "HostConfig" (always a dict; the
    deprecated top-level HostConfig fields folded in as dockerd does, NetworkMode "default" when blank)
    and "NetworkingConfig" when given.
    """
    if doc is None:
        raise InvalidParameter("Config cannot be empty in order to create a container")
    types = engine_types()
    w = types.decode(doc, "ContainerConfigWrapper")
    config_fields = types.structs["Config"]["fields"]
    fold = {k.casefold() for k in config_fields}
    if not any(k in config_fields or k.casefold() in fold for k in doc):
        # Go leaves the embedded *Config nil when no Config field is named (even `{"HostConfig":{}}`)
        raise InvalidParameter("Config cannot be empty in order to create a container")
    out: dict[str, Any] = {k: v for k, v in w.items() if k in config_fields}
    top = {k: v for k, v in w.items() if k not in config_fields
           and k not in ("HostConfig", "Cpuset", "NetworkingConfig")}
    inner = w.get("HostConfig")
    if inner is None:
        hc = top if top else None
    else:
        hc = dict(inner)
        for k in _MERGED_FROM_TOP:
            if top.get(k) and not hc.get(k):
                hc[k] = top[k]
    if hc is not None:
        if w.get("Cpuset") and not hc.get("CpusetCpus"):
            hc["CpusetCpus"] = w["Cpuset"]
        if not hc.get("NetworkMode"):
            hc["NetworkMode"] = "default"
    out["HostConfig"] = hc if hc is not None else {}
    if "NetworkingConfig" in w:
        out["NetworkingConfig"] = w["NetworkingConfig"]
    return out


def container_update(doc: Any) -> dict[str, Any]:
    """POST /containers/{id}/update: container.UpdateConfig (Resources and RestartPolicy)."""
    return {} if doc is None else engine_types().decode(doc, "UpdateConfig")


def exec_create(doc: Any) -> dict[str, Any]:
    """POST /containers/{id}/exec: types.ExecConfig; an empty Cmd is refused as dockerd's router does."""
    out = {} if doc is None else engine_types().decode(doc, "ExecConfig")
    if not out.get("Cmd"):
        raise InvalidParameter("No exec command specified")
    return out


def exec_start(doc: Any) -> dict[str, Any]:
    """POST /exec/{id}/start: types.ExecStartCheck."""
    return {} if doc is None else engine_types().decode(doc, "ExecStartCheck")


def commit_config(doc: Any) -> dict[str, Any] | None:
    """POST /commit body: the container Config (dockerd decodes the whole ContainerConfigWrapper, so its
    messages name that struct); None for an empty body."""
    if doc is None:
        return None
    types = engine_types()
    w = types.decode(doc, "ContainerConfigWrapper")
    config_fields = types.structs["Config"]["fields"]
    return {k: v for k, v in w.items() if k in config_fields}


def auth_config(doc: Any) -> dict[str, Any]:
    """POST /auth: types.AuthConfig, keys as Go names them (username, password, serveraddress, ...)."""
    return {} if doc is None else engine_types().decode(doc, "AuthConfig")


ROOTS = ("ContainerConfigWrapper", "UpdateConfig", "ExecConfig", "ExecStartCheck", "AuthConfig")


def prepare() -> None:
    """Compile every body schema now (about 0.2 s) instead of on the first request of each kind."""
    types = engine_types()
    for root in ROOTS:
        types.decode({}, root)
