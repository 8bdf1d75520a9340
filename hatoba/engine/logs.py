"""Reading a container's log for `docker logs` and `attach --logs`: the records conmon wrote
(across rotated files), selected by stream, time and tail, then followed while it runs.

The wire form (Docker's 8-byte frames without a TTY, optional timestamps) is made by
`runtime.logs`, straight from the k8s-file blocks for speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hatoba.errors import HatobaError, InvalidParameter
from hatoba.runtime import logs
from hatoba.runtime.logs import LogRecord

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager


@dataclass
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    since_ns: int = 0
    until_ns: int = 0
    tail: int | None = None  # None: all
    timestamps: bool = False


class NotSupported(HatobaError):
    status = 501


def readable(c: Container) -> None:
    """Refuse reading a container whose log driver keeps nothing (`none`)."""
    if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
        raise NotSupported("configured logging driver does not support reading")


def snapshot(mgr: Manager, c: Container, opts: LogOptions) -> tuple[list[LogRecord], int]:
    """The records written so far (selected) and the offset in the current file where they end."""
    paths = logs.rotated_paths(mgr.log_path(c)) or [mgr.log_path(c)]
    offset = logs.complete_size(paths[-1])
    recs = logs.read_records(paths, limit=offset)
    return logs.select(recs, stdout=opts.stdout, stderr=opts.stderr, since_ns=opts.since_ns,
                      until_ns=opts.until_ns, tail=opts.tail), offset


async def stream(mgr: Manager, c: Container, opts: LogOptions) -> AsyncIterator[bytes]:
    """`docker logs` on the wire: Docker's frames (raw bytes with a TTY) of what is in the log now,
    rendered straight from the files in a worker thread, then (with `follow`) of what the container
    writes until it exits."""
    if not opts.stdout and not opts.stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    readable(c)
    paths = logs.rotated_paths(mgr.log_path(c)) or [mgr.log_path(c)]
    offset = logs.complete_size(paths[-1])
    follow = opts.follow and c.running and not opts.until_ns
    stop = mgr.waiter(c, "next-exit") if follow else None
    tty = c.tty

    async def gen() -> AsyncIterator[bytes]:
        pieces = logs.framed(paths, limit=offset, stdout=opts.stdout, stderr=opts.stderr, since_ns=opts.since_ns,
                             until_ns=opts.until_ns, tail=opts.tail, timestamps=opts.timestamps, tty=tty)
        while True:
            piece = await asyncio.to_thread(next, pieces, None)
            if piece is None:
                break
            yield piece
        if stop is None:
            return
        async for r in logs.follow(mgr.log_path(c), offset, stop=stop):
            if (r.stream == "stdout" and opts.stdout) or (r.stream == "stderr" and opts.stderr):
                if opts.since_ns and r.time_ns < opts.since_ns:
                    continue
                yield logs.render(r, timestamps=opts.timestamps, tty=tty)

    return gen()
