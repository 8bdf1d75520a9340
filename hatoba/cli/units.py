"""Human-readable units and time helpers, output-compatible with docker/go-units and Go's time package.

Everything here is stdlib-only and import-cheap (no ``re``, ``datetime`` or ``dataclasses``) because
the CLI imports it on every invocation.  Time values are Unix seconds (``float``) unless a name says
``_ns``.  Errors are :class:`ValueError` whose message is the text docker / Go would print.
"""

from __future__ import annotations

import time as _time

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
# Seconds between 0001-01-01T00:00:00Z (Go's zero time.Time) and the Unix epoch.
_ZERO_TIME_S = -62135596800
_ZERO_TIME_NS = _ZERO_TIME_S * _NS


# ---------------------------------------------------------------------------------------------------------
# Go string quoting (strconv.Quote / %q), needed for byte-exact error messages.

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


from hatoba.humanize import human_duration  # noqa: E402  (re-exported)


def _quote_body(s: str, quote: str) -> str:
    out: list[str] = []
    for ch in s:
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            if 0xDC80 <= o <= 0xDCFF:  # undecodable byte smuggled in by surrogateescape
                out.append(f"\\x{o - 0xDC00:02x}")
            elif o < 0x80:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    return "".join(out)


def go_quote(s: str) -> str:
    """Quote ``s`` like Go's ``strconv.Quote`` / ``fmt`` ``%q`` on a string."""
    return '"' + _quote_body(s, '"') + '"'


def go_quote_rune(ch: str) -> str:
    """Quote one character like Go's ``%q`` on a rune: ``'z'``."""
    return "'" + _quote_body(ch, "'") + "'"


# ---------------------------------------------------------------------------------------------------------
# Durations


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": _NS,
    "m": 60 * _NS,
    "h": 3600 * _NS,
}
_DIGITS = "0123456789"
_MAX_I64 = (1 << 63) - 1


def parse_duration_ns(s: str) -> int:
    """Go ``time.ParseDuration`` returning integer nanoseconds (errors carry Go's messages)."""
    orig = s
    invalid = "time: invalid duration " + go_quote(orig)
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(invalid)
    total = 0
    while s:
        if not (s[0] == "." or s[0] in _DIGITS):
            raise ValueError(invalid)
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        s = s[i:]
        frac_digits = ""
        post = False
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            while i < len(s) and s[i] in _DIGITS:
                i += 1
            post = i > 0
            frac_digits = s[:i]
            s = s[i:]
        if not pre and not post:
            raise ValueError(invalid)
        i = 0
        while i < len(s) and not (s[i] == "." or s[i] in _DIGITS):
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + go_quote(orig))
        unit_name, s = s[:i], s[i:]
        unit = _DURATION_UNITS.get(unit_name)
        if unit is None:
            raise ValueError("time: unknown unit " + go_quote(unit_name) + " in duration " + go_quote(orig))
        if whole > (1 << 63) // unit:
            raise ValueError(invalid)
        value = whole * unit
        if frac_digits.strip("0"):
            # Go computes the fractional part in float64; do the same for identical rounding.
            value += int(float(int(frac_digits)) * (unit / 10 ** len(frac_digits)))
            if value > 1 << 63:
                raise ValueError(invalid)
        total += value
        if total > 1 << 63:
            raise ValueError(invalid)
    if neg:
        return -total
    if total > _MAX_I64:
        raise ValueError(invalid)
    return total


def parse_duration(s: str) -> float:
    """Go ``time.ParseDuration`` ("10s", "1m30s", "500ms", "2h", "-1.5h") returning seconds."""
    return parse_duration_ns(s) / _NS


def format_duration(seconds: float | int, *, ns: bool = False) -> str:
    """Go ``time.Duration.String()``: "0s", "500ms", "1.5s", "1m30s", "2h0m0s".

    ``seconds`` is in seconds unless ``ns=True`` (then it is an integer nanosecond count).
    """
    from hatoba.humanize import go_duration

    return go_duration(int(seconds) if ns else round(seconds * _NS))


# ---------------------------------------------------------------------------------------------------------
# Sizes

_DECIMAL_ABBRS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_BINARY_MAP = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _size_and_unit(size: float, base: float, abbrs: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    limit = len(abbrs) - 1
    while size >= base and i < limit:
        size /= base
        i += 1
    return size, abbrs[i]


def human_size(n: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision(n, precision)`` (decimal units): "1.23MB", "5.6kB", "0B".

    The default precision 3 is what docker uses for the SIZE columns of ``ps``/``images``.
    """
    size, unit = _size_and_unit(float(n), 1000.0, _DECIMAL_ABBRS)
    return f"{size:.{precision}g}{unit}"


def bytes_size(n: float) -> str:
    """go-units ``BytesSize`` (binary units, 4 significant digits): "1.5MiB", "64MiB", "0B"."""
    size, unit = _size_and_unit(float(n), 1024.0, _BINARY_ABBRS)
    return f"{size:.4g}{unit}"


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


# ---------------------------------------------------------------------------------------------------------
# Calendar arithmetic (proleptic Gregorian, UTC), so we need not import datetime.


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


_RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"


class _TimeSyntaxError(ValueError):
    pass


def _take_int(s: str, pos: int, width: int, what: str) -> int:
    part = s[pos : pos + width]
    if len(part) != width or not all(c in _DIGITS for c in part):
        raise _TimeSyntaxError(what)
    return int(part)


def _parse_timestamp_parts(s: str) -> tuple[int, bool]:
    """Parse ``YYYY-MM-DD[Thh[:mm[:ss[.frac]]]][Z|±hh:mm]``.

    Returns (nanoseconds since the epoch as if UTC, minus the zone offset if one was given; whether a
    zone was given).  Raises ValueError with a short reason.
    """
    year = _take_int(s, 0, 4, "year")
    if s[4:5] != "-":
        raise _TimeSyntaxError("-")
    month = _take_int(s, 5, 2, "month")
    if s[7:8] != "-":
        raise _TimeSyntaxError("-")
    day = _take_int(s, 8, 2, "day")
    pos = 10
    hour = minute = sec = frac_ns = 0
    if pos < len(s) and s[pos] in "Tt":
        hour = _take_int(s, pos + 1, 2, "hour")
        pos += 3
        if s[pos : pos + 1] == ":":
            minute = _take_int(s, pos + 1, 2, "minute")
            pos += 3
            if s[pos : pos + 1] == ":":
                sec = _take_int(s, pos + 1, 2, "second")
                pos += 3
                if s[pos : pos + 1] in (".", ","):
                    end = pos + 1
                    while end < len(s) and s[end] in _DIGITS:
                        end += 1
                    digits = s[pos + 1 : end]
                    if not digits:
                        raise _TimeSyntaxError("fractional second")
                    frac_ns = int((digits + "000000000")[:9])
                    pos = end
    offset = 0
    has_zone = False
    rest = s[pos:]
    if rest in ("Z", "z"):
        has_zone = True
    elif rest[:1] in ("+", "-"):
        has_zone = True
        oh = _take_int(rest, 1, 2, "zone")
        if rest[3:4] == ":":
            om = _take_int(rest, 4, 2, "zone")
            tail = rest[6:]
        else:
            om = _take_int(rest, 3, 2, "zone") if len(rest) > 3 else 0
            tail = rest[5:] if len(rest) > 3 else ""
        if tail or oh > 23 or om > 59:
            raise _TimeSyntaxError("zone")
        offset = (oh * 3600 + om * 60) * (1 if rest[0] == "+" else -1)
    elif rest:
        raise _TimeSyntaxError("extra text: " + go_quote(rest))
    if not 1 <= month <= 12:
        raise _TimeSyntaxError("month out of range")
    if not 1 <= day <= _days_in_month(year, month):
        raise _TimeSyntaxError("day out of range")
    if hour > 23:
        raise _TimeSyntaxError("hour out of range")
    if minute > 59:
        raise _TimeSyntaxError("minute out of range")
    if sec > 59:
        raise _TimeSyntaxError("second out of range")
    secs = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec - offset
    return secs * _NS + frac_ns, has_zone


def parse_rfc3339_ns(s: str) -> int:
    """Parse an RFC 3339 timestamp (nanosecond precision, ``Z`` or ``±hh:mm``) to Unix nanoseconds.

    The empty string and Go's zero time ``0001-01-01T00:00:00Z`` map to 0.
    """
    if not s:
        return 0
    try:
        ns, has_zone = _parse_timestamp_parts(s)
        if not has_zone or s[10:11] not in ("T", "t"):
            raise _TimeSyntaxError("missing time or zone")
    except _TimeSyntaxError as e:
        raise ValueError(f"parsing time {go_quote(s)} as {go_quote(_RFC3339_LAYOUT)}: {e}") from None
    return 0 if ns == _ZERO_TIME_NS else ns


def parse_rfc3339(s: str) -> float:
    """Parse an RFC 3339(Nano) timestamp to Unix seconds; "" and ``0001-01-01T00:00:00Z`` give 0.0."""
    return parse_rfc3339_ns(s) / _NS


def format_rfc3339_nano(ts_ns: int) -> str:
    """Format Unix nanoseconds like Go's ``time.RFC3339Nano`` in UTC ("2024-01-02T03:04:05.5Z").

    0 is treated as "unset" and rendered as Go's zero time ``0001-01-01T00:00:00Z``, which is what
    docker shows for never-set timestamps (and what :func:`parse_rfc3339` maps back to 0).
    """
    from hatoba.humanize import rfc3339_nano

    ts_ns = int(ts_ns)
    return rfc3339_nano(ts_ns) if ts_ns else "0001-01-01T00:00:00Z"


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
        ns, has_zone = _parse_timestamp_parts(s)
    except _TimeSyntaxError as e:
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
