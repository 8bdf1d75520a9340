"""Query-string parameters in dockerd's words: every parse error is InvalidParameter (400) with the
message dockerd 20.10 gives (dockerd itself answers some of them with 500; a client's mistake is 400 here).

- `atoi` / `int_param`: strconv.Atoi (`t`, `limit`, `h`, `w`): `strconv.Atoi: parsing "abc": invalid syntax`,
  `... value out of range`.
- `parse_int64` / `int64_param`: strconv.ParseInt(s, 10, 64).
- `bool_param`: httputils.BoolValue / BoolValueOrDefault ("", "0", "no", "false", "none" are false,
  after trimming and lower-casing; anything else is true).
- `filters`: filters.FromJSON: `{"key": {"value": true}}`, or the legacy `{"key": ["value"]}`.
- `timestamp`: timetypes.ParseTimestamps, how the daemon reads `since`/`until` (`seconds[.fraction]`);
  `get_timestamp`: timetypes.GetTimestamp, how the docker CLI turns RFC 3339 times and durations into that.
- `tail`: the logs `tail` parameter (dockerd 20.10: anything that is not a number, and any negative
  number, means all lines).
- `go_quote`: Go's strconv.Quote, used by those messages.
"""

from __future__ import annotations

import calendar
import re
import time as _time
from collections.abc import Mapping
from typing import Any

from hatoba.errors import InvalidParameter
from hatoba.schema import jsonload

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_DIGITS = re.compile(r"[+-]?[0-9]+\Z")


def go_quote(s: str) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif c in (7, 8, 9, 10, 11, 12, 13):
            out.append("\\" + "abtnvfr"[c - 7])
        elif c < 0x80:
            out.append(f"\\x{c:02x}")
        elif 0xD800 <= c <= 0xDFFF:
            out.append("\\ufffd")
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


def _parse_int(func: str, s: str) -> int:
    if not _DIGITS.match(s):
        raise InvalidParameter(f"strconv.{func}: parsing {go_quote(s)}: invalid syntax")
    v = int(s)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise InvalidParameter(f"strconv.{func}: parsing {go_quote(s)}: value out of range")
    return v


def atoi(s: str) -> int:
    """strconv.Atoi (a 64-bit int)."""
    return _parse_int("Atoi", s)


def parse_int64(s: str) -> int:
    """strconv.ParseInt(s, 10, 64)."""
    return _parse_int("ParseInt", s)


def int_param(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """An Atoi parameter that dockerd reads only when non-empty (`t`, `limit`); `default` otherwise."""
    v = query.get(name)
    return default if v is None or v == "" else atoi(v)


def int64_param(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """httputils.Int64ValueOrDefault."""
    v = query.get(name)
    return default if v is None or v == "" else parse_int64(v)


def bool_value(v: str | None) -> bool:
    """httputils.BoolValue of one value."""
    s = (v or "").strip().lower()
    return s not in ("", "0", "no", "false", "none")


def bool_param(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    """httputils.BoolValueOrDefault: `default` when the parameter is absent, else BoolValue."""
    v = query.get(name)
    return default if v is None else bool_value(v)


# ---- filters -------------------------------------------------------------------------------------

def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int | float):
        return "number"
    return "array" if isinstance(v, list) else "object"


def _type_error(v: Any, gotype: str) -> str:
    return f"json: cannot unmarshal {_kind(v)} into Go value of type {gotype}"


def _as_map_of_bools(doc: Any) -> tuple[dict[str, dict[str, bool]], str | None]:
    if doc is None:
        return {}, None
    if not isinstance(doc, dict):
        return {}, _type_error(doc, "map[string]map[string]bool")
    out: dict[str, dict[str, bool]] = {}
    err = None
    for k, v in doc.items():
        if v is None:
            out[k] = {}
            continue
        if not isinstance(v, dict):
            err = err or _type_error(v, "map[string]bool")
            continue
        inner = out.setdefault(k, {})
        for vk, on in v.items():
            if on is None or isinstance(on, bool):
                inner[vk] = bool(on)
            else:
                err = err or _type_error(on, "bool")
    return out, err


def _as_legacy(doc: Any) -> dict[str, dict[str, bool]] | None:
    if not isinstance(doc, dict):
        return None
    out: dict[str, dict[str, bool]] = {}
    for k, v in doc.items():
        if v is None:
            out[k] = {}
            continue
        if not isinstance(v, list) or not all(x is None or isinstance(x, str) for x in v):
            return None
        out[k] = {("" if x is None else x): True for x in v}
    return out


def filters(raw: str | None) -> dict[str, dict[str, bool]]:
    """filters.FromJSON: the `filters` parameter as Go's Args fields ({key: {value: bool}}).

    As in dockerd, a value listed with `false` still counts (Args.Get returns the map's keys): use
    `filter_values` for the lists."""
    if not raw:
        return {}
    doc = jsonload.unmarshal(raw)
    out, err = _as_map_of_bools(doc)
    if err is None:
        return out
    legacy = _as_legacy(doc)
    if legacy is None:
        raise InvalidParameter(err)
    return legacy


def filter_values(raw: str | None) -> dict[str, list[str]]:
    """The `filters` parameter as {key: [values]} (Args.Get of each key)."""
    return {k: list(v) for k, v in filters(raw).items()}


# ---- timestamps and durations --------------------------------------------------------------------

def timestamp(value: str | None, default: int = 0) -> tuple[int, int]:
    """timetypes.ParseTimestamps: `seconds[.fraction]` → (seconds, nanoseconds); (default, 0) if empty."""
    if not value:
        return default, 0
    sec_s, dot, frac = value.partition(".")
    sec = parse_int64(sec_s)
    if not dot:
        return sec, 0
    n = parse_int64(frac)
    return sec, int(float(n) * 10.0 ** (9 - len(frac)))


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration(s: str) -> int:
    """time.ParseDuration → nanoseconds; ValueError with Go's message."""
    orig = s
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(orig)}")
    total = 0.0
    while s:
        m = _DUR_PART.match(s)
        num, unit = (m.group(1), m.group(2)) if m else ("", "")
        if not num or num == "." or not m:
            raise ValueError(f"time: invalid duration {go_quote(orig)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(orig)}")
        unit_ns = None
        for u in sorted(_UNITS, key=len, reverse=True):
            if unit.startswith(u):
                unit_ns, unit = _UNITS[u], u
                break
        if unit_ns is None:
            raise ValueError(f"time: unknown unit {go_quote(m.group(2))} in duration {go_quote(orig)}")
        total += float(num) * unit_ns
        s = s[len(num) + len(unit):]
    if total > _INT64_MAX:
        raise ValueError(f"time: invalid duration {go_quote(orig)}")
    return -int(total) if neg else int(total)


_LAYOUTS = {
    "2006-01-02T15:04:05.999999999": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?",
    "2006-01-02T15:04:05.999999999Z07:00": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})",
    "2006-01-02T15": r"(\d{4})-(\d{2})-(\d{2})T(\d{2})",
    "2006-01-02T15:04": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})",
    "2006-01-02T15:04:05": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})",
    "2006-01-02T15Z07:00": r"(\d{4})-(\d{2})-(\d{2})T(\d{2})(Z|[+-]\d{2}:\d{2})",
    "2006-01-02T15:04Z07:00": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})",
    "2006-01-02T15:04:05Z07:00": r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})",
    "2006-01-02": r"(\d{4})-(\d{2})-(\d{2})",
    "2006-01-02Z07:00": r"(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})",
}


def _parse_layout(value: str, layout: str, local_offset: int) -> tuple[int, int]:
    """(unix seconds, nanoseconds) of `value` in one of GetTimestamp's layouts; ValueError otherwise."""
    m = re.fullmatch(_LAYOUTS[layout], value)
    if not m:
        raise ValueError(f"parsing time {go_quote(value)} as {go_quote(layout)}: cannot parse "
                         f"{go_quote(value)} as {go_quote(layout)}")
    parts = [g for g in m.groups()]
    zone = parts[-1] if parts and parts[-1] and (parts[-1] == "Z" or parts[-1][0] in "+-") \
        and "Z07:00" in layout else None
    frac = next((g for g in parts if g and g.startswith(".")), None)
    nums = [int(g) for g in parts if g and g[0].isdigit()]
    year, month, day = nums[0], nums[1], nums[2]
    hour, minute, sec = (nums[3:] + [0, 0, 0])[:3]
    if not 1 <= month <= 12:
        raise ValueError(f"parsing time {go_quote(value)}: month out of range")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ValueError(f"parsing time {go_quote(value)}: day out of range")
    if hour > 23 or minute > 59 or sec > 59:
        what = "hour" if hour > 23 else "minute" if minute > 59 else "second"
        raise ValueError(f"parsing time {go_quote(value)}: {what} out of range")
    offset = local_offset
    if zone is not None:
        offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    secs = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset
    nanos = int((frac[1:] + "000000000")[:9]) if frac else 0
    return secs, nanos


def get_timestamp(value: str, now: float | None = None) -> str:
    """timetypes.GetTimestamp: a CLI `--since`/`--until` value (duration, RFC 3339 form or unix time)
    as the `seconds[.nanoseconds]` string the API takes; ValueError with Go's message."""
    now = _time.time() if now is None else now
    if value != "0":
        try:
            d = parse_duration(value)
        except ValueError:
            pass
        else:
            return str(int((now * 1e9 - d) // 1e9))
    parse_in_location = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" if parse_in_location else "2006-01-02T15:04:05.999999999Z07:00"
    elif "T" in value:
        tcolons = value.count(":")
        if not parse_in_location and not any(c in value for c in "zZ") and tcolons > 0:
            tcolons -= 1
        if parse_in_location:
            layout = {0: "2006-01-02T15", 1: "2006-01-02T15:04"}.get(tcolons, "2006-01-02T15:04:05")
        else:
            layout = {0: "2006-01-02T15Z07:00", 1: "2006-01-02T15:04Z07:00"}.get(tcolons, "2006-01-02T15:04:05Z07:00")
    else:
        layout = "2006-01-02" if parse_in_location else "2006-01-02Z07:00"
    local_offset = -(_time.altzone if _time.localtime(now).tm_isdst > 0 else _time.timezone)
    try:
        secs, nanos = _parse_layout(value, layout, local_offset)
    except ValueError:
        if "-" in value:
            raise
        try:
            timestamp(value)
        except InvalidParameter:
            raise ValueError(f"failed to parse value as time or duration: {go_quote(value)}") from None
        return value
    return f"{secs}.{nanos:09d}"


def tail(value: str | None) -> int | None:
    """The logs `tail` parameter: a number of lines, or None for all (dockerd 20.10: not a number, or
    negative, means all)."""
    if value is None or value == "" or value == "all":
        return None
    try:
        n = atoi(value)
    except InvalidParameter:
        return None
    return None if n < 0 else n
