"""JSON the way dockerd's Go code writes it, for image configs and archive metadata.

Image ids and the v1 layer ids of `docker save` archives are digests of JSON, so the bytes have to
match what dockerd would write: compact, `<`, `>`, `&`, U+2028 and U+2029 escaped, non-ASCII kept as
UTF-8, struct fields in Go declaration order with their `omitempty` rules, and the top-level keys
of an image config sorted (image.Image's MarshalJSON).
"""

from __future__ import annotations

import json
from typing import Any

# container.Config (API 1.41) in declaration order; True = `omitempty`
CONTAINER_CONFIG_FIELDS: list[tuple[str, bool]] = [
    ("Hostname", False), ("Domainname", False), ("User", False), ("AttachStdin", False),
    ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", True), ("Tty", False),
    ("OpenStdin", False), ("StdinOnce", False), ("Env", False), ("Cmd", False), ("Healthcheck", True),
    ("ArgsEscaped", True), ("Image", False), ("Volumes", False), ("WorkingDir", False), ("Entrypoint", False),
    ("NetworkDisabled", True), ("MacAddress", True), ("OnBuild", False), ("Labels", False),
    ("StopSignal", True), ("StopTimeout", True), ("Shell", True),
]
_ZERO: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                         "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
                         "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                         "OnBuild": None, "Labels": None}
_HEALTHCHECK_FIELDS = ["Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"]

# image.V1Image in declaration order; True = `omitempty` (created is a time.Time: always written)
V1_IMAGE_FIELDS: list[tuple[str, bool]] = [
    ("id", True), ("parent", True), ("comment", True), ("created", False), ("container", True),
    ("container_config", False), ("docker_version", True), ("author", True), ("config", True),
    ("architecture", True), ("variant", True), ("os", True),
]
HISTORY_FIELDS = ["created", "author", "created_by", "comment", "empty_layer"]
ZERO_TIME = "0001-01-01T00:00:00Z"
EPOCH_TIME = "1970-01-01T00:00:00Z"


def dumps(obj: Any) -> bytes:
    """encoding/json Marshal: compact, HTML-safe escapes, UTF-8."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return s.encode()


def _empty(v: Any) -> bool:
    return v is None or v is False or v == 0 and not isinstance(v, bool) or v == "" or v == [] or v == {}


def container_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """A container.Config as Go marshals it (field order, omitempty; unknown keys dropped)."""
    cfg = cfg or {}
    out: dict[str, Any] = {}
    for key, omit in CONTAINER_CONFIG_FIELDS:
        v = cfg.get(key, _ZERO.get(key))
        if omit and _empty(v):
            continue
        if key == "Healthcheck" and isinstance(v, dict):
            v = {k: v[k] for k in _HEALTHCHECK_FIELDS if k in v and not _empty(v[k])}
        out[key] = v
    return out


def v1_image(config: dict[str, Any], **override: Any) -> dict[str, Any]:
    """The image.V1Image part of an image config, as Go marshals it."""
    src = {**config, **override}
    out: dict[str, Any] = {}
    for key, omit in V1_IMAGE_FIELDS:
        v = src.get(key)
        if key == "created" and not v:
            v = ZERO_TIME
        elif key == "container_config":
            v = container_config(v)
        elif key == "config" and v is not None:
            v = container_config(v)
        if omit and _empty(v):
            continue
        out[key] = v
    return out


def history_entry(h: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in HISTORY_FIELDS:
        v = h.get(key)
        if key == "created":
            out[key] = v or ZERO_TIME
        elif not _empty(v):
            out[key] = v
    return out


def image_config(config: dict[str, Any]) -> bytes:
    """The raw JSON of a new image config, as dockerd writes it (sorted top-level keys)."""
    doc = v1_image(config)
    for key in ("rootfs", "history", "os.version", "os.features"):
        if not _empty(config.get(key)):
            doc[key] = config[key]
    if "history" in doc:
        doc["history"] = [history_entry(h) for h in doc["history"]]
    if "rootfs" in doc:
        doc["rootfs"] = {"type": doc["rootfs"].get("type", "layers"), "diff_ids": doc["rootfs"].get("diff_ids") or []}
    return dumps(dict(sorted(doc.items())))
