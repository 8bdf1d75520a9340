"""`--change` / `-c` instructions of `import` and `commit`, applied to an image's config.

Supports the Dockerfile instructions Docker allows there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Exec (JSON) and shell forms as in a Dockerfile.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from hatoba.errors import InvalidParameter

ALLOWED = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            v = json.loads(rest)
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                return v
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if len(words) >= 1 and "=" not in words[0]:
        # legacy form: ENV key value with spaces
        key, _, val = rest.strip().partition(" ")
        return [(key, val.strip())]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq:
            raise InvalidParameter(f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        out.append((k, v))
    return out


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of the container config (`config` part of an image config) with the changes."""
    cfg = json.loads(json.dumps(config))
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr not in ALLOWED:
            raise InvalidParameter(f"{instr} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest)
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(rest):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for k, v in _pairs(rest):
                labels[k] = v
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(rest) if rest.strip().startswith("[") else rest.split():
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "USER":
            cfg["User"] = rest.strip()
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = rest.strip()
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = rest.strip()
        elif instr == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest.strip()]
    return cfg
