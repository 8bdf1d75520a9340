"""Engine API views of containers: `GET /containers/{id}/json` and `GET /containers/json` shapes, filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hatoba.engine.container import Container
from hatoba.engine.health import health_status, validate_health_filter
from hatoba.errors import HatobaError, InvalidParameter
from hatoba.golang import unix_seconds
from hatoba.humanize import status_text

if TYPE_CHECKING:
    from hatoba.engine.container import Manager


def _network_settings(c: Container, full: bool) -> dict[str, Any]:
    mode = c.host_config.get("NetworkMode") or "default"
    nets: dict[str, Any] = {}
    if mode in ("host", "none"):
        nets[mode] = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
                      "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                      "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    if not full:
        return {"Networks": nets}
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": nets}


def inspect(mgr: Manager, c: Container, size: bool = False) -> dict[str, Any]:
    d = mgr.data_dir(c)
    up = mgr.snapshots.upper_dir(c.id)
    lowers = [mgr.snapshots.layer_path(x) for x in reversed(c.chain)]
    out: dict[str, Any] = {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args, "State": dict(c.state),
        "Image": c.image_id, "ResolvConfPath": f"{d}/resolv.conf", "HostnamePath": f"{d}/hostname",
        "HostsPath": f"{d}/hosts", "Name": "/" + c.name,
        "LogPath": "" if (c.host_config.get("LogConfig") or {}).get("Type") == "none" else mgr.log_path(c),
        "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux", "MountLabel": "",
        "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": sorted(c.exec_ids) or None,
        "HostConfig": c.host_config,
        "GraphDriver": {"Data": {"LowerDir": ":".join(lowers), "MergedDir": up.rsplit("/", 1)[0] + "/merged",
                                 "UpperDir": up, "WorkDir": up.rsplit("/", 1)[0] + "/work"}, "Name": "overlay2"},
        "Mounts": _mounts(c), "Config": c.config, "NetworkSettings": _network_settings(c, True),
    }
    if size:
        out["SizeRw"] = mgr.snapshots.upper_size(c.id)
        out["SizeRootFs"] = out["SizeRw"] + mgr.images.images[c.image_id].size if c.image_id in mgr.images.images else 0
    return out


def _mounts(c: Container) -> list[dict[str, Any]]:
    from hatoba.engine import mounts

    try:
        return [m.inspect() for m in mounts.parse(c.host_config)]
    except HatobaError:
        return []


def command_string(c: Container) -> str:
    """dockerd's form: args containing a space are wrapped in single quotes, nothing else is escaped."""
    if not c.args:
        return c.path
    return c.path + " " + " ".join(f"'{a}'" if " " in a else a for a in c.args)


def state_name(c: Container) -> str:
    s = c.state
    if s.get("Restarting"):
        return "restarting"
    if s.get("Paused"):
        return "paused"
    if s.get("Running"):
        return "running"
    if c.removing:
        return "removing"
    if s.get("Dead"):
        return "dead"
    if not c.has_been_started and s.get("StartedAt", "").startswith("0001"):
        return "created"
    return "exited"


def _status_text(c: Container, now: float) -> str:
    s = c.state
    return status_text(state_name(c), exit_code=s.get("ExitCode", 0), started=unix_seconds(s.get("StartedAt")),
                       finished=unix_seconds(s.get("FinishedAt")), now=now,
                       health=health_status(s))  # "(healthy)", "(health: starting)"


def summary(mgr: Manager, c: Container, now: float, size: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.config.get("Image", ""), "ImageID": c.image_id,
        "Command": command_string(c), "Created": int(unix_seconds(c.created)), "Ports": [],
        "Labels": c.config.get("Labels") or {}, "State": state_name(c), "Status": _status_text(c, now),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "default")},
        "NetworkSettings": _network_settings(c, False), "Mounts": _mounts(c),
    }
    if size:
        out["SizeRw"] = mgr.snapshots.upper_size(c.id)
        img = mgr.images.images.get(c.image_id)
        out["SizeRootFs"] = out["SizeRw"] + (img.size if img else 0)
    return out


FILTER_KEYS = {"id", "name", "label", "status", "ancestor", "exited", "before", "since", "volume", "network",
               "health", "isolation", "publish", "expose", "is-task"}
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def list_containers(mgr: Manager, *, all_: bool, limit: int, size: bool, filters: dict[str, list[str]],
                    now: float) -> list[dict[str, Any]]:
    for k in filters:
        if k not in FILTER_KEYS:
            raise InvalidParameter(f"invalid filter '{k}'")
    for st in filters.get("status", []):
        if st not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={st}'")
    validate_health_filter(filters.get("health", []))
    cs = sorted(mgr.by_id.values(), key=lambda c: c.created, reverse=True)
    if filters.get("status") or filters.get("exited"):
        all_ = True
    before = since = None
    if filters.get("before"):
        before = mgr.get(filters["before"][0]).created
    if filters.get("since"):
        since = mgr.get(filters["since"][0]).created
    ancestors: set[str] = set()
    for a in filters.get("ancestor", []):
        img = mgr.images.lookup(a)
        if img is not None:
            ancestors.add(img.id)
    out = []
    for c in cs:
        st = state_name(c)
        if not all_ and st not in ("running", "paused", "restarting") and limit <= 0 and before is None and since is None:
            continue
        if before is not None and c.created >= before:
            continue
        if since is not None and c.created <= since:
            continue
        if filters.get("id") and not any(c.id.startswith(v) for v in filters["id"]):
            continue
        if filters.get("name") and not any(_name_match(c.name, v) for v in filters["name"]):
            continue
        if filters.get("status") and st not in filters["status"]:
            continue
        if filters.get("health") and health_status(c.state) not in filters["health"]:
            continue
        if filters.get("exited"):
            if st != "exited" or str(c.state.get("ExitCode", 0)) not in filters["exited"]:
                continue
        if filters.get("ancestor") and c.image_id not in ancestors and c.config.get("Image") not in filters["ancestor"]:
            continue
        if (filters.get("label") or filters.get("label!")) and not labels_match(
                c.config.get("Labels") or {}, filters.get("label", []), filters.get("label!", [])):
            continue
        out.append(summary(mgr, c, now, size))
        if limit > 0 and len(out) >= limit:
            break
    return out


def labels_match(labels: dict[str, str], wanted: list[str], unwanted: tuple[str, ...] | list[str] = ()) -> bool:
    """Docker's `label=k[=v]` (all must match) and `label!=k[=v]` (none may match) filters."""
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    for w in unwanted:
        k, eq, v = w.partition("=")
        if k in labels and (not eq or labels[k] == v):
            return False
    return True


def _name_match(name: str, pattern: str) -> bool:
    import re

    pattern = pattern.lstrip("/")
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name
