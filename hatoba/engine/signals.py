"""Signal names and numbers as Docker's API and CLI spell them (`KILL`, `SIGTERM`, `9`, `RTMIN+3`)."""

from __future__ import annotations

import signal as _signal

from hatoba.errors import InvalidParameter

SIGNALS = {s.name[3:]: int(s) for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def parse_signal(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    """Signal names with or without SIG, or numbers; InvalidParameter otherwise."""
    if sig is None or sig == "":
        return default
    if isinstance(sig, int):
        if sig <= 0 or sig > 64:
            raise InvalidParameter(f"Invalid signal: {sig}")
        return sig
    s = sig.upper()
    if s.isdigit():
        n = int(s)
        if n <= 0 or n > 64:
            raise InvalidParameter(f"Invalid signal: {sig}")
        return n
    s = s[3:] if s.startswith("SIG") else s
    if s in SIGNALS:
        return SIGNALS[s]
    if s.startswith("RTMIN+") or s.startswith("RTMAX-"):
        try:
            off = int(s[6:])
        except ValueError:
            raise InvalidParameter(f"Invalid signal: {sig}") from None
        n = _signal.SIGRTMIN + off if s.startswith("RTMIN") else _signal.SIGRTMAX - off
        if _signal.SIGRTMIN <= n <= _signal.SIGRTMAX:
            return int(n)
    raise InvalidParameter(f"Invalid signal: {sig}")
