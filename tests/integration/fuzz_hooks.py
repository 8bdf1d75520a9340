"""schemathesis hooks for `test_fuzz.py`: keep generated requests inside the test's sandbox.

The daemon under test is private, but a container may bind host paths, join host namespaces or
take host devices, and a few endpoints never end (event and stats streams, logs follow).
These hooks rewrite such parts of a request, they never make a request more valid: what the
validation layer sees is still generated data.
"""

from __future__ import annotations

import os
import time
from typing import Any

import schemathesis

SAFE = os.environ.get("HATOBA_FUZZ_SAFE_DIR", "/tmp/hatoba-fuzz-safe")


def _safe_path(p: Any) -> Any:
    if isinstance(p, str) and p.startswith("/"):
        return os.path.join(SAFE, p.strip("/").replace("/", "_")[:100] or "root")
    return p


def _sanitize_host_config(hc: Any) -> None:
    if not isinstance(hc, dict):
        return
    binds = hc.get("Binds")
    if isinstance(binds, list):
        out = []
        for b in binds:
            if isinstance(b, str) and ":" in b:
                src, rest = b.split(":", 1)
                out.append(f"{_safe_path(src)}:{rest}")
            else:
                out.append(b)
        hc["Binds"] = out
    mounts = hc.get("Mounts")
    if isinstance(mounts, list):
        for m in mounts:
            if isinstance(m, dict) and "Source" in m:
                m["Source"] = _safe_path(m["Source"])
    for key in ("Devices", "DeviceCgroupRules", "DeviceRequests", "CgroupParent", "Privileged", "CapAdd",
                "SecurityOpt", "Sysctls"):
        hc.pop(key, None)
    for key in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "NetworkMode"):
        if isinstance(hc.get(key), str) and hc[key] == "host":
            hc.pop(key)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    op = case.operation
    path, method = op.path, op.method.upper()
    query = case.query if isinstance(case.query, dict) else {}
    if path == "/events":
        query["until"] = str(int(time.time()))  # an open-ended event stream never answers completely
    elif path == "/containers/{id}/logs":
        query["follow"] = "false"
    elif path == "/containers/{id}/stats":
        query["stream"] = "false"
    if query:
        case.query = query
    if method == "POST" and path == "/containers/create" and isinstance(case.body, dict):
        _sanitize_host_config(case.body.get("HostConfig"))
    if method == "POST" and path == "/containers/{id}/update" and isinstance(case.body, dict):
        case.body.pop("Devices", None)
