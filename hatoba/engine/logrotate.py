"""json-file's `max-size`/`max-file` for conmon-written logs: the daemon checks running containers'
log sizes once a second, renames `container.log` → `.1` … and asks conmon to reopen its log."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from hatoba.runtime import logs

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager


def rotate_if_needed(mgr: Manager, c: Container) -> bool:
    """Rotate `c`'s log when it reached its max-size; True if it did."""
    opts = (c.host_config.get("LogConfig") or {}).get("Config") or {}
    if not opts.get("max-size"):
        return False
    try:
        limit = logs.parse_size(opts["max-size"])
        size = os.stat(mgr.log_path(c)).st_size
    except (OSError, ValueError):
        return False
    if size < limit:
        return False
    try:
        keep = max(1, int(opts.get("max-file") or 1))
    except ValueError:
        keep = 1
    logs.rotate(mgr.log_path(c), keep)
    mgr.rt(c).reopen_log(mgr.bundle(c))
    return True


async def rotate_forever(mgr: Manager, interval: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval)
        for c in list(mgr.by_id.values()):
            if c.running:
                rotate_if_needed(mgr, c)
