"""Human-readable units and time helpers, output-compatible with docker/go-units and Go's time package.

Everything here is stdlib-only and import-cheap (no ``re``, ``datetime`` or ``dataclasses``) because
the CLI imports it on every invocation.  Time values are Unix seconds (``float``) unless a name says
``_ns``.  Errors are :class:`ValueError` whose message is the text docker / Go would print.
"""

from __future__ import annotations

import time as _time

from hatoba.golang import (  # noqa: F401  (re-exported: the CLI's modules take Go's formats from here)
    TimeSyntaxError,
    format_rfc3339_nano,
    go_quote,
    go_quote_rune,
    parse_duration,
    parse_duration_ns,
    parse_rfc3339,
    parse_rfc3339_ns,
    parse_timestamp_parts,
)
from hatoba.humanize import bytes_size, human_duration  # noqa: F401  (re-exported)

TYPE_CHECKING = False  # annotations only: keep `collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "bytes_size",
    "container_status",
    "created_ago",
    "format_duration",
    "format_rfc3339_nano",
    "go_quote",
    "human_duration",
    "human_size",
    "parse_duration",
    "parse_duration_ns",
    "parse_go_float",
    "parse_ram",
    "parse_rfc3339",
    "parse_rfc3339_ns",
    "parse_time_arg",
    "truncate_id",
]

_NS = 1_000_000_000
_DIGITS = "0123456789"


# ---------------------------------------------------------------------------------------------------------
# Durations

def format_duration(seconds: float | int, *, ns: bool = False) -> str:
    """Go ``time.Duration.String()``: "0s", "500ms", "1.5s", "1m30s", "2h0m0s".

    ``seconds`` is in seconds unless ``ns=True`` (then it is an integer nanosecond count).
    """
    from hatoba.golang import go_duration

    return go_duration(int(seconds) if ns else round(seconds * _NS))


# ---------------------------------------------------------------------------------------------------------
# Sizes

_BINARY_MAP = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def human_size(n: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision(n, 3)``, what docker uses for the SIZE columns of ``ps``/``images``."""
    from hatoba import humanize

    return humanize.human_size(n, precision)


def parse_go_float(s: str) -> float:
    """Go ``strconv.ParseFloat(s, 64)``; errors read ``strconv.ParseFloat: parsing "x": invalid syntax``."""
    bad = ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
    if not s or s != s.strip() or "_" in s:
        raise bad
    try:
        value = float(s)
    except ValueError:
        raise bad from None
    if value in (float("inf"), float("-inf")) and "inf" not in s.lower():
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: value out of range")
    return value


def parse_ram(s: str) -> int:
    """go-units ``RAMInBytes``: "32m" -> 33554432; k/m/g/t/p with optional "b"/"ib", 1024-based.

    Errors: ``invalid size: 'abc'``, ``invalid suffix: 'x'``, or the ParseFloat error.
    """
    num, sep, sfx = s.partition(" ")
    if not sep:
        idx = max(s.rfind(c) for c in "0123456789.")
        if idx == -1:
            raise ValueError(f"invalid size: '{s}'")
        num, sfx = s[: idx + 1], s[idx + 1 :]
    size = parse_go_float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{s}'")
    if not sfx:
        return int(size)
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    sfx = sfx.lower()
    if sfx[0] == "b":
        if len(sfx) > 1:
            raise ValueError(f"invalid suffix: '{sfx}'")
        return int(size)
    mul = _BINARY_MAP.get(sfx[0])
    if mul is None or (len(sfx) == 2 and sfx[1] != "b") or (len(sfx) == 3 and sfx[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{sfx}'")
    return int(size * mul)


def parse_time_arg(s: str, now: float) -> float:
    """Docker's ``--since``/``--until`` value (timetypes.GetTimestamp) as Unix seconds.

    Accepts Go durations relative to ``now`` ("10m" -> now - 600, truncated to whole seconds), RFC 3339
    dates/times with or without zone ("2026-11-22", "2026-11-22T10:00", "...T10:00:00.5+01:00"; no
    zone means the local zone at ``now``), and Unix timestamps ("1700000000", "1700000000.123").
    """
    if s != "0":
        try:
            d = parse_duration_ns(s)
        except ValueError:
            pass
        else:
            return float((now - d / _NS) // 1)
    try:
        ns, has_zone = parse_timestamp_parts(s)
    except TimeSyntaxError as e:
        if "-" in s:
            raise ValueError(f"parsing time {go_quote(s)}: {e}") from None
        whole, dot, frac = s.partition(".")
        if (
            whole
            and all(c in _DIGITS for c in whole.lstrip("+"))
            and whole.lstrip("+")
            and (not dot or (frac and all(c in _DIGITS for c in frac)))
        ):
            value = float(int(whole))
            if dot:
                value += int(frac) / 10 ** len(frac)
            return value
        raise ValueError(f"failed to parse value as time or duration: {go_quote(s)}") from None
    if not has_zone:
        ns -= _time.localtime(now).tm_gmtoff * _NS
    return ns / _NS


# ---------------------------------------------------------------------------------------------------------
# docker ps columns


def created_ago(unix_ts: float, now: float) -> str:
    """docker ps/images CREATED column: "2 minutes ago"."""
    return human_duration(now - unix_ts) + " ago"


def _ts(value: object) -> float:
    if not value:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_rfc3339(str(value))
    except ValueError:
        return 0.0


def container_status(state: Mapping[str, object], now: float) -> str:
    """docker ps STATUS text for a container ``State`` (as in ``docker inspect``).

    Examples: "Up 3 minutes", "Up 3 minutes (Paused)", "Up 2 hours (healthy)", "Up 5 seconds (health:
    starting)", "Restarting (1) 5 seconds ago", "Exited (0) 2 seconds ago", "Created",
    "Removal In Progress", "Dead".  ``StartedAt``/``FinishedAt`` may be RFC 3339 strings or Unix seconds.
    """
    from hatoba.humanize import status_text

    status = str(state.get("Status") or "").lower()
    paused = bool(state.get("Paused")) or status == "paused"
    restarting = bool(state.get("Restarting")) or status == "restarting"
    running = bool(state.get("Running")) or status == "running" or paused
    started = _ts(state.get("StartedAt"))
    finished = _ts(state.get("FinishedAt"))
    health = state.get("Health")
    from collections.abc import Mapping

    hstatus = str(health.get("Status") or "") if isinstance(health, Mapping) else str(health or "")
    if paused:
        name = "paused"
    elif restarting:
        name = "restarting"
    elif running:
        name = "running"
    elif status == "removing" or state.get("RemovalInProgress"):
        name = "removing"
    elif status == "dead" or state.get("Dead"):
        name = "dead"
    elif not started:
        name = "created"
    elif not finished:
        return ""
    else:
        name = "exited"
    return status_text(name, exit_code=state.get("ExitCode") or 0, started=started, finished=finished, now=now,
                       health=hstatus)


def truncate_id(id: str) -> str:
    """stringid.TruncateID: drop an ``algo:`` prefix ("sha256:") and keep the first 12 characters."""
    _, sep, rest = id.partition(":")
    if sep:
        id = rest
    return id[:12]
