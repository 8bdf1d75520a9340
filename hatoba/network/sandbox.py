"""The network namespace of a container, chosen from its `HostConfig.NetworkMode`.

`default`/`bridge`/`none` get a new namespace that runc creates (loopback only until the bridge
driver lands), `host` shares the host's, `container:<ref>` joins a running container's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hatoba.errors import Conflict, NotFound

BUILTIN_MODES = ("default", "bridge", "none", "host")


def check_mode(mode: str) -> None:
    """Refuse a NetworkMode that names no network (dockerd: 404 `network x not found`)."""
    if mode not in BUILTIN_MODES and not mode.startswith("container:"):
        raise NotFound(f"network {mode} not found")


def netns_for(mode: str, lookup: Callable[[str], Any]) -> str | None:
    """The spec's network namespace: None (a new one), "host", or `/proc/<pid>/ns/net` of another container.

    `lookup(ref)` resolves a container reference to an object with `.id`, `.running` and `.state`."""
    if mode == "host":
        return "host"
    if mode.startswith("container:"):
        other = lookup(mode.split(":", 1)[1])
        if not other.running:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        return f"/proc/{other.state['Pid']}/ns/net"
    return None
