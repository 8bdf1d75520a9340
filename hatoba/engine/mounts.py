"""Host bind mounts and tmpfs mounts of a container: `-v /src:/dst[:opts]` and `--mount`.

Named and anonymous volumes belong to the volumes work; until it lands they are refused with
a clear error (named) or ignored with a warning (anonymous, from `-v /path` or the image's VOLUME).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hatoba.errors import InvalidParameter


@dataclass
class Mount:
    type: str            # "bind" or "tmpfs"
    source: str
    destination: str
    rw: bool
    propagation: str = "rprivate"
    options: str = ""    # tmpfs options
    mode: str = ""

    def oci(self) -> dict[str, Any]:
        if self.type == "tmpfs":
            opts = ["nosuid", "nodev", "noexec"] + [o for o in self.options.split(",") if o]
            return {"destination": self.destination, "type": "tmpfs", "source": "tmpfs",
                    "options": opts + ([] if self.rw else ["ro"])}
        return {"destination": self.destination, "type": "bind", "source": self.source,
                "options": ["rbind", self.propagation] + ([] if self.rw else ["ro"])}

    def inspect(self) -> dict[str, Any]:
        return {"Type": self.type, "Source": self.source, "Destination": self.destination, "Mode": self.mode,
                "RW": self.rw, "Propagation": self.propagation if self.type == "bind" else ""}


_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def _bind(spec: str) -> Mount:
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not dst.startswith("/"):
        raise InvalidParameter(f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
                               "invalid mount path: '" + dst + "' mount path must be absolute")
    if not src.startswith("/"):
        raise InvalidParameter(f"named volume \"{src}\" is not supported yet (only host paths can be mounted "
                               "until the volumes work lands)")
    rw, prop = True, "rprivate"
    for opt in [o for o in mode.split(",") if o]:
        if opt == "ro":
            rw = False
        elif opt == "rw":
            rw = True
        elif opt in _PROPAGATIONS:
            prop = opt
        elif opt in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            continue
        else:
            raise InvalidParameter(f"invalid mode: {opt}")
    return Mount("bind", os.path.normpath(src), os.path.normpath(dst), rw, prop, mode=mode)


def _mount_field(m: dict[str, Any]) -> Mount:
    typ = m.get("Type") or "volume"
    dst = m.get("Target") or m.get("Destination") or ""
    if not dst.startswith("/"):
        raise InvalidParameter("invalid mount config: mount path must be absolute")
    ro = bool(m.get("ReadOnly"))
    if typ == "bind":
        src = m.get("Source") or ""
        if not src.startswith("/"):
            raise InvalidParameter("invalid mount config for type \"bind\": invalid mount path: "
                                   f"'{src}' mount path must be absolute")
        if not os.path.exists(src):
            raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
        prop = ((m.get("BindOptions") or {}).get("Propagation")) or "rprivate"
        return Mount("bind", src, dst, not ro, prop)
    if typ == "tmpfs":
        opts = m.get("TmpfsOptions") or {}
        o = []
        if opts.get("SizeBytes"):
            o.append(f"size={int(opts['SizeBytes'])}")
        if opts.get("Mode"):
            o.append(f"mode={int(opts['Mode']):o}")
        return Mount("tmpfs", "", dst, not ro, options=",".join(o))
    raise InvalidParameter(f"mount type \"{typ}\" is not supported yet")


def parse(host_config: dict[str, Any]) -> list[Mount]:
    """All bind/tmpfs mounts of a HostConfig, validated; raises InvalidParameter with Docker-like texts."""
    out = [_bind(b) for b in host_config.get("Binds") or []]
    out += [_mount_field(m) for m in host_config.get("Mounts") or []]
    seen: set[str] = set()
    for m in out:
        if m.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)
    return out


def prepare_sources(mounts: list[Mount]) -> None:
    """`-v` creates a missing host directory, as dockerd does."""
    for m in mounts:
        if m.type == "bind" and not os.path.exists(m.source):
            os.makedirs(m.source, mode=0o755, exist_ok=True)
