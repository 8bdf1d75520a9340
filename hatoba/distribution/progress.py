"""Docker's progress messages: the JSON objects of a pull/push stream and their `progress` strings.

`progress` carries jsonmessage's JSONProgress.String() at dockerd's 200-column width
(`humanize.progress_string`): `[=====>      ]  32.77kB/307.6kB`, just `   2.13MB` once current
passes total.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from hatoba.humanize import progress_string


def encode(msg: dict[str, Any]) -> bytes:
    """One stream message as dockerd writes it: compact JSON, <>& escaped, CRLF."""
    s = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (s + "\r\n").encode()


def status(text: str, id: str | None = None) -> dict[str, Any]:
    """`{"status":…,"id":…}` (no progressDetail), as for "Pulling from" and the final lines."""
    m: dict[str, Any] = {"status": text}
    if id:
        m["id"] = id
    return m


def layer(text: str, id: str) -> dict[str, Any]:
    """`{"status":…,"progressDetail":{},"id":…}`: per-layer states without a bar."""
    return {"status": text, "progressDetail": {}, "id": id}


def progress(text: str, id: str, current: int, total: int) -> dict[str, Any]:
    return {"status": text, "progressDetail": {"current": current, "total": total},
            "progress": progress_string({"current": current, "total": total}), "id": id}


def error(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class Output:
    """Where an operation sends its messages. Thread-safe: `send` may be called from worker threads.

    The API handler consumes `queue`; tests may pass a list-collecting callback instead."""

    def __init__(self, sink: Callable[[dict[str, Any]], None] | None = None):
        self._loop = asyncio.get_running_loop() if sink is None else None
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue() if sink is None else None  # type: ignore[assignment]
        self._sink = sink
        self.sent = 0

    def send(self, msg: dict[str, Any]) -> None:
        self.sent += 1
        if self._sink is not None:
            self._sink(msg)
            return
        assert self._loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self.queue.put_nowait(msg)
        else:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, msg)


class Meter:
    """Rate-limited progress for one layer action: at 32 KiB, then every 512 KiB or 100 ms, and the end."""

    def __init__(self, out: Output, action: str, id: str, total: int):
        self.out, self.action, self.id, self.total = out, action, id, total
        self.current = 0
        self._last_bytes = -1
        self._last_time = 0.0

    def update(self, n: int) -> None:
        self.current += n
        now = time.monotonic()
        if self._last_bytes < 0:
            due = self.current >= min(32768, self.total)
        else:
            due = self.current - self._last_bytes > 512 * 1024 or now - self._last_time >= 0.1
        if due or self.current == self.total:
            self._emit(now)

    def reset(self, current: int) -> None:
        self.current = current

    def done(self) -> None:
        if self._last_bytes != self.current:
            self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self._last_bytes, self._last_time = self.current, now
        self.out.send(progress(self.action, self.id, self.current, self.total))
