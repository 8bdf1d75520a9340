"""Go's text formats, shared by the CLI and the daemon: strconv.Quote, time.ParseDuration and
Duration.String, and RFC 3339 times (time.Parse of RFC3339Nano, and the layouts docker prints).

Stdlib only and import-cheap (no ``re`` or ``datetime``): the CLI imports it on every invocation.
Errors are ValueError whose message is the text Go would print. Time values are Unix nanoseconds
(``int``) unless a name says otherwise.
"""

from __future__ import annotations

_NS = 1_000_000_000
# Seconds between 0001-01-01T00:00:00Z (Go's zero time.Time) and the Unix epoch.
_ZERO_TIME_S = -62135596800
_ZERO_TIME_NS = _ZERO_TIME_S * _NS
ZERO_TIME = "0001-01-01T00:00:00Z"


# ---- strconv.Quote / %q ------------------------------------------------------------------------------

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}



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


# ---- durations ---------------------------------------------------------------------------------------

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


def _trim_frac(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` of a nanosecond count: "0s", "500ms", "1.5s", "1m30s", "2h0m0s"."""
    d = int(ns)
    if d == 0:
        return "0s"
    sign = "-" if d < 0 else ""
    u = -d if d < 0 else d
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return sign + _trim_frac(u, 3) + "\u00b5s"
        return sign + _trim_frac(u, 6) + "ms"
    secs, frac = divmod(u, 1_000_000_000)
    hours, rem = divmod(secs, 3600)
    minutes, sec = divmod(rem, 60)
    out = _trim_frac(sec * 1_000_000_000 + frac, 9) + "s"
    if hours:
        out = f"{hours}h{minutes}m" + out
    elif minutes:
        out = f"{minutes}m" + out
    return sign + out


# ---- RFC 3339 (proleptic Gregorian calendar, UTC) ------------------------------------------------------

def days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


_RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"


class TimeSyntaxError(ValueError):
    pass


def _take_int(s: str, pos: int, width: int, what: str) -> int:
    part = s[pos : pos + width]
    if len(part) != width or not all(c in _DIGITS for c in part):
        raise TimeSyntaxError(what)
    return int(part)


def parse_timestamp_parts(s: str) -> tuple[int, bool]:
    """Parse ``YYYY-MM-DD[Thh[:mm[:ss[.frac]]]][Z|±hh:mm]``.

    Returns (nanoseconds since the epoch as if UTC, minus the zone offset if one was given; whether a
    zone was given).  Raises ValueError with a short reason.
    """
    year = _take_int(s, 0, 4, "year")
    if s[4:5] != "-":
        raise TimeSyntaxError("-")
    month = _take_int(s, 5, 2, "month")
    if s[7:8] != "-":
        raise TimeSyntaxError("-")
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
                        raise TimeSyntaxError("fractional second")
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
            raise TimeSyntaxError("zone")
        offset = (oh * 3600 + om * 60) * (1 if rest[0] == "+" else -1)
    elif rest:
        raise TimeSyntaxError("extra text: " + go_quote(rest))
    if not 1 <= month <= 12:
        raise TimeSyntaxError("month out of range")
    if not 1 <= day <= _days_in_month(year, month):
        raise TimeSyntaxError("day out of range")
    if hour > 23:
        raise TimeSyntaxError("hour out of range")
    if minute > 59:
        raise TimeSyntaxError("minute out of range")
    if sec > 59:
        raise TimeSyntaxError("second out of range")
    secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec - offset
    return secs * _NS + frac_ns, has_zone


def parse_rfc3339_ns(s: str) -> int:
    """Parse an RFC 3339 timestamp (nanosecond precision, ``Z`` or ``±hh:mm``) to Unix nanoseconds.

    The empty string and Go's zero time ``0001-01-01T00:00:00Z`` map to 0.
    """
    if not s:
        return 0
    try:
        ns, has_zone = parse_timestamp_parts(s)
        if not has_zone or s[10:11] not in ("T", "t"):
            raise TimeSyntaxError("missing time or zone")
    except TimeSyntaxError as e:
        raise ValueError(f"parsing time {go_quote(s)} as {go_quote(_RFC3339_LAYOUT)}: {e}") from None
    return 0 if ns == _ZERO_TIME_NS else ns


def parse_rfc3339(s: str) -> float:
    """Parse an RFC 3339(Nano) timestamp to Unix seconds; "" and ``0001-01-01T00:00:00Z`` give 0.0."""
    return parse_rfc3339_ns(s) / _NS


def format_rfc3339(ns: int, *, frac: str = "trim", tz: int = 0) -> str:
    """Unix nanoseconds in one of the RFC 3339 layouts docker prints, at UTC offset `tz` (seconds east;
    0 writes "Z"): `frac` "trim" is Go's RFC3339Nano (trailing zeros of the fraction dropped),
    "fixed" always nine digits (jsonmessage.RFC3339NanoFixed: `logs -t`, `events`), "none" RFC3339."""
    import time

    sec, nanos = divmod(int(ns), _NS)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec + tz))
    if frac == "fixed":
        out += f".{nanos:09d}"
    elif frac == "trim" and nanos:
        out += "." + f"{nanos:09d}".rstrip("0")
    if tz == 0:
        return out + "Z"
    sign = "+" if tz > 0 else "-"
    return out + f"{sign}{abs(tz) // 3600:02d}:{abs(tz) % 3600 // 60:02d}"


def rfc3339_nano(ns: int) -> str:
    """Unix nanoseconds as Go's `time.RFC3339Nano` in UTC: "2026-11-22T09:40:50.541672225Z"."""
    return format_rfc3339(ns)


def rfc3339(seconds: float) -> str:
    """Unix seconds (a float, as `time.time()`) as Go's RFC3339Nano in UTC."""
    return format_rfc3339(round(seconds * _NS))


def format_rfc3339_nano(ts_ns: int) -> str:
    """:func:`rfc3339_nano`, with 0 meaning "unset": Go's zero time ``0001-01-01T00:00:00Z``, which is
    what docker shows for never-set timestamps (and what :func:`parse_rfc3339` maps back to 0)."""
    ts_ns = int(ts_ns)
    return rfc3339_nano(ts_ns) if ts_ns else ZERO_TIME


def unix_seconds(s: object) -> float:
    """Unix seconds of a stored RFC 3339 time; 0.0 for the zero time, an empty value or anything
    unparsable (views of records must never fail on one odd timestamp)."""
    if not s or not isinstance(s, str):
        return 0.0
    try:
        return parse_rfc3339_ns(s) / _NS
    except ValueError:
        return 0.0
