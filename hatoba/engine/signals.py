"""Signal names and numbers as Docker's API and CLI spell them (`KILL`, `SIGTERM`, `9`, `RTMIN+3`):
moby's signal.ParseSignal, with numbers limited to the platform's signals."""

from __future__ import annotations

import signal as _signal

from hatoba.errors import InvalidParameter

SIGNALS = {s.name[3:]: int(s) for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}
_RTMIN, _RTMAX = int(_signal.SIGRTMIN), int(_signal.SIGRTMAX)


def parse_signal(sig: str | int | None, default: int | None = _signal.SIGKILL, *, platform: bool = True) -> int:
    """A signal number from a name (with or without SIG, any case) or a number; `default` when empty
    (an error when `default` is None). With `platform`, numbers must name one of this host's signals
    (what a kill needs); without, any non-zero number passes (dockerd's StopSignal check at create).

    InvalidParameter("Invalid signal: …") otherwise."""
    if sig is None or sig == "":
        if default is None:
            raise InvalidParameter(f"Invalid signal: {sig or ''}")
        return default
    if isinstance(sig, int):
        sig = str(sig)
    s = sig.strip()
    if s.lstrip("+-").isdigit() and s.isascii():
        n = int(s)
        if n == 0 or (platform and not 0 < n <= _RTMAX):
            raise InvalidParameter(f"Invalid signal: {sig}")
        return n
    name = s.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    if name == "RTMIN":
        return _RTMIN
    if name == "RTMAX":
        return _RTMAX
    for prefix, base, sign in (("RTMIN+", _RTMIN, 1), ("RTMAX-", _RTMAX, -1)):
        if name.startswith(prefix) and name[6:].isdigit() and 1 <= int(name[6:]) <= 15 - (sign < 0):
            return base + sign * int(name[6:])
    raise InvalidParameter(f"Invalid signal: {sig}")
