"""Rendering of pull/push/load progress streams as the docker CLI does (its jsonmessage package).

On a terminal, each message with an `id` and progress owns a line that is redrawn in place with
ANSI cursor movement (`ESC[nA` up, `ESC[2K` clear, `ESC[nB` down); a message without progress
forgets those lines. Otherwise, plain `id: status` lines are printed and progress updates skipped.
The bar is recomputed from `progressDetail` for the terminal's width (no bar under 111 columns).
"""

from __future__ import annotations

import os

from hatoba.humanize import human_size, progress_string  # noqa: F401  (human_size re-exported)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import IO, Any

class StreamError(Exception):
    """An `error` message in the stream."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code


def terminal_width(out: IO[str]) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 200


def _display(jm: dict, out: IO[str], tty: bool, width: int) -> None:
    has_progress = isinstance(jm.get("progressDetail"), dict)
    prog = progress_string(jm.get("progressDetail"), width) if has_progress else ""
    endl = ""
    if tty and not jm.get("stream") and has_progress:
        out.write("\x1b[2K\r")
        endl = "\r"
    elif has_progress and prog:
        return  # no progress bars without a terminal
    if jm.get("id"):
        out.write(f"{jm['id']}: ")
    if jm.get("from"):
        out.write(f"(from {jm['from']}) ")
    status = jm.get("status") or ""
    if has_progress and tty:
        out.write(f"{status} {prog}{endl}")
    elif jm.get("progress"):
        out.write(f"{status} {jm['progress']}{endl}")
    elif jm.get("stream"):
        out.write(f"{jm['stream']}{endl}")
    else:
        out.write(f"{status}{endl}\n")


def display(messages: Iterable[dict[str, Any]], out: IO[str], tty: bool | None = None,
            aux: Callable[[dict], None] | None = None, width: int | None = None) -> None:
    """Render a message stream (`tty` defaults to out.isatty()); raises StreamError on an `error` message."""
    if tty is None:
        try:
            tty = out.isatty()
        except (AttributeError, ValueError):
            tty = False
    width = width or (terminal_width(out) if tty else 200)
    ids: dict[str, int] = {}
    for jm in messages:
        if jm.get("errorDetail") or jm.get("error"):
            detail = jm.get("errorDetail") or {}
            code = int(detail.get("code") or 0) if isinstance(detail, dict) else 0
            msg = (detail.get("message") if isinstance(detail, dict) else None) or jm.get("error") or ""
            if code == 401:
                msg = "authentication is required"
            raise StreamError(str(msg), code)
        if "aux" in jm:
            if aux is not None:
                aux(jm["aux"])
            continue
        diff = 0
        jid = jm.get("id")
        if jid and ("progressDetail" in jm or jm.get("progress")):
            line = ids.get(jid)
            if line is None:
                line = len(ids)
                ids[jid] = line
                if tty:
                    out.write("\n")
            diff = len(ids) - line
            if tty and diff:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        _display(jm, out, tty, width)
        if jid and tty and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()
