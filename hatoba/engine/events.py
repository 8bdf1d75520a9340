"""The daemon's event log: a bounded in-memory history plus live subscribers (`GET /events`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

HISTORY = 1024


class Events:
    """Publish Docker-shaped events; subscribers get an asyncio.Queue each."""

    def __init__(self) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue] = set()

    def emit(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> dict:
        now_ns = time.time_ns()
        attrs = {k: str(v) for k, v in (attributes or {}).items()}
        ev: dict[str, Any] = {}
        if type_ in ("container", "image"):
            ev["status"] = action
            ev["id"] = actor_id
            if type_ == "container" and "image" in attrs:
                ev["from"] = attrs["image"]
        ev.update({"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
                   "scope": "local", "time": now_ns // 1_000_000_000, "timeNano": now_ns})
        self.history.append(ev)
        for q in list(self.subscribers):
            q.put_nowait(ev)
        return ev

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)


def matches(ev: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: type, event/status, container, image, label, (name or id prefix)."""
    if not filters:
        return True
    actor = ev.get("Actor", {})
    attrs = actor.get("Attributes", {})
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = ev.get("Type") in values
        elif key in ("event", "status"):
            ok = any(ev.get("Action") == v or ev.get("Action", "").split(":")[0] == v for v in values)
        elif key == "container":
            ok = ev.get("Type") == "container" and any(
                actor.get("ID", "").startswith(v) or attrs.get("name") == v for v in values)
        elif key == "image":
            ok = any(attrs.get("image") == v or ev.get("from") == v or actor.get("ID") == v
                     or attrs.get("name") == v for v in values)
        elif key == "label":
            ok = True
            for v in values:
                k, eq, val = v.partition("=")
                if k not in attrs or (eq and attrs[k] != val):
                    ok = False
        else:
            ok = True
        if not ok:
            return False
    return True
