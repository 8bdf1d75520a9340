"""`docker stats`: documents in dockerd 20.10's shape, read from the container's cgroup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from hatoba.golang import rfc3339
from hatoba.runtime import cgroups

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager

_EMPTY_CPU = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
              "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def document(mgr: Manager, c: Container, prev: dict[str, Any] | None) -> dict[str, Any]:
    """One stats document; `prev` (the previous one) gives preread and precpu_stats."""
    if c.running:
        s = cgroups.read_stats(mgr.cgroups_path(c))
    else:
        s = {"memory_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
             "pids_stats": {}, "blkio_stats": {}}
    return {"read": rfc3339(time.time()), "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
            "pids_stats": s.get("pids_stats", {}), "blkio_stats": s.get("blkio_stats", {}),
            "num_procs": 0, "storage_stats": {}, "cpu_stats": s.get("cpu_stats", _EMPTY_CPU),
            "precpu_stats": prev["cpu_stats"] if prev else _EMPTY_CPU, "memory_stats": s.get("memory_stats", {}),
            "name": "/" + c.name, "id": c.id}


async def one(mgr: Manager, c: Container, *, one_shot: bool) -> dict[str, Any]:
    """`stream=false`: one document; without `one-shot` it also carries a CPU sample taken 0.5 s
    earlier (dockerd waits for its 1 s collector tick to fill precpu_stats)."""
    prev = None
    if not one_shot and c.running:
        prev = document(mgr, c, None)
        await asyncio.sleep(0.5)
    return document(mgr, c, prev)


async def stream(mgr: Manager, c: Container) -> AsyncIterator[dict[str, Any]]:
    """A document a second while the container runs (one, when it does not)."""
    prev = None
    while True:
        doc = document(mgr, c, prev)
        yield doc
        prev = doc
        if not c.running:
            return
        await asyncio.sleep(1)
