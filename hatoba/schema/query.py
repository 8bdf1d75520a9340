"""Query-string parameters in dockerd's words: every parse error is InvalidParameter (400) with the
message dockerd 20.10 gives (dockerd itself answers some of them with 500; a client's mistake is 400 here).

- `atoi` / `int_param`: strconv.Atoi (`t`, `limit`, `h`, `w`): `strconv.Atoi: parsing "abc": invalid syntax`,
  `... value out of range`.
- `parse_int64` / `int64_param`: strconv.ParseInt(s, 10, 64).
- `bool_param`: httputils.BoolValue / BoolValueOrDefault ("", "0", "no", "false", "none" are false,
  after trimming and lower-casing; anything else is true).
- `filters`: filters.FromJSON: `{"key": {"value": true}}`, or the legacy `{"key": ["value"]}`.
- `timestamp`: timetypes.ParseTimestamps, how the daemon reads `since`/`until` (`seconds[.fraction]`;
  durations and RFC 3339 times are the CLI's to convert, `cli.units.parse_time_arg`).
- `tail`: the logs `tail` parameter (dockerd 20.10: anything that is not a number, and any negative
  number, means all lines).
Go's quoting in those messages is `hatoba.golang.go_quote`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hatoba.errors import InvalidParameter
from hatoba.golang import go_quote
from hatoba.schema import jsonload

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_DIGITS = re.compile(r"[+-]?[0-9]+\Z")


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


def _type_error(v: Any, gotype: str) -> str:
    return f"json: cannot unmarshal {jsonload.kind(v)} into Go value of type {gotype}"


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
