"""Go-typed JSON validation: decode a JSON document into a Go type the way encoding/json does.

Types come from a compact table (see scripts/gen_engine_schema.py): scalars by name ("string", "bool",
"int64", "uint16", ... "any"), "base:go.Name" for named scalars, "strslice", "empty" (struct {}),
"time" (time.Time: an RFC 3339 string, checked as Go's time.Parse does), {"slice": T},
{"array": T, "len": n}, {"map": T}, {"struct": Name}.

Two paths, with the same result for every valid document:
- fast: a JSON schema compiled by fastjsonschema (canonical keys only, no nulls inside slices or
  maps) accepts the document, then `_norm` applies dockerd's coercions (null fields dropped,
  a strslice string means ["..."], fixed-size arrays padded or cut);
- slow, when the fast check fails: `_Decoder` walks the document as encoding/json does (keys matched
  case-insensitively, unknown keys ignored, null elements become zero values) and either returns the
  normalised document or raises InvalidParameter with Go's own message, choosing the error Go reports
  (errors of custom unmarshalers such as strslice abort at once; plain type errors are remembered and
  the first one is reported at the end).

A normalised document has no None for a struct field (absent means Go's zero value) and only the
struct's known fields under their canonical names.
"""

from __future__ import annotations

import calendar
import json
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from hatoba.errors import InvalidParameter
from hatoba.schema import jsonload

INT_RANGES = {
    "int": (-(1 << 63), (1 << 63) - 1), "int64": (-(1 << 63), (1 << 63) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1), "int16": (-(1 << 15), (1 << 15) - 1), "int8": (-128, 127),
    "uint": (0, (1 << 64) - 1), "uint64": (0, (1 << 64) - 1), "uint32": (0, (1 << 32) - 1),
    "uint16": (0, 65535), "uint8": (0, 255),
}
_FLOAT_MAX = 1.7976931348623157e308


class Types:
    """One table of struct types (name -> {"go": GoType, "fields": {JSONName: Type}})."""

    def __init__(self, structs: dict[str, Any]):
        self.structs = structs
        self._fold: dict[str, dict[str, str]] = {
            n: {k.casefold(): k for k in reversed(list(s["fields"]))} for n, s in structs.items()}
        self._fast: dict[str, Callable[[Any], Any]] = {}

    # ---- Go type names ------------------------------------------------------------------------

    def go_name(self, t: Any) -> str:
        if isinstance(t, str):
            if t == "strslice":
                return "strslice.StrSlice"
            if t == "empty":
                return "struct {}"
            return t.split(":", 1)[1] if ":" in t else t
        if "go" in t:
            return t["go"]
        if "struct" in t:
            return self.structs[t["struct"]]["go"]
        if "slice" in t:
            return "[]" + self.go_name(t["slice"])
        if "array" in t:
            return f"[{t['len']}]" + self.go_name(t["array"])
        return "map[string]" + self.go_name(t["map"])

    # ---- validation ---------------------------------------------------------------------------

    def decode(self, doc: Any, root: str) -> dict[str, Any]:
        """The document as Go's decoder fills struct `root`, normalised; InvalidParameter otherwise."""
        fast = self._fast.get(root)
        if fast is None:
            fast = self._fast[root] = _compile(self, root)
        try:
            fast(doc)
        except Exception:  # noqa: BLE001 - fastjsonschema's exception: take the precise (slow) path
            return _Decoder(self).top(doc, root)
        return self._norm_struct(doc, root)

    def decode_slow(self, doc: Any, root: str) -> dict[str, Any]:
        return _Decoder(self).top(doc, root)

    def decode_lenient(self, doc: Any, root: str) -> dict[str, Any]:
        """Never raises: a value of the wrong type becomes its zero value (dropped from structs)."""
        return _Decoder(self, lenient=True).top(doc, root)

    def _norm_struct(self, d: dict[str, Any], name: str) -> dict[str, Any]:
        fields = self.structs[name]["fields"]
        out = {}
        for k, v in d.items():
            if v is None:
                continue
            t = fields[k]
            out[k] = v if isinstance(t, str) and t not in ("strslice", "time") else self._norm(v, t)
        return out

    def _norm(self, v: Any, t: Any) -> Any:
        if isinstance(t, str):
            if t == "strslice" and isinstance(v, str):
                return [v]
            if t == "time":
                err = go_time_error(v)
                if err:
                    raise InvalidParameter(err)
            return v
        if "struct" in t:
            return self._norm_struct(v, t["struct"])
        if "slice" in t:
            et = t["slice"]
            return v if isinstance(et, str) and et not in ("strslice", "time") else [self._norm(x, et) for x in v]
        if "array" in t:
            n = t["len"]
            return (list(v) + [_zero(self, t["array"])] * n)[:n]
        et = t["map"]
        if isinstance(et, str) and et != "empty":
            return v
        return {k: self._norm(x, et) if et != "empty" else {} for k, x in v.items()}


_TIME_LAYOUT = '"2006-01-02T15:04:05Z07:00"'


def _time_quote(s: str) -> str:
    out = []
    for ch in s:
        c = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif c < 0x20 or c == 0x7F:
            out.append(f"\\x{c:02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def go_time_error(v: Any) -> str | None:
    """Go's time.Time.UnmarshalJSON error for a JSON value (None when it parses, and for null)."""
    if v is None:
        return None
    raw = json.dumps(v, ensure_ascii=False, separators=(",", ":")) if not isinstance(v, float) else \
        getattr(v, "literal", repr(v))
    value = raw
    layout_elems = ['"', "2006", "-", "01", "-", "02", "T", "15", ":", "04", ":", "05", "Z07:00", '"']
    rest = value
    nums: dict[str, int] = {}

    def fail(elem: str) -> str:
        return (f"parsing time {_time_quote(value)} as {_time_quote(_TIME_LAYOUT)}: cannot parse "
                f"{_time_quote(rest)} as {_time_quote(elem)}")

    i = 0
    while i < len(layout_elems):
        elem = layout_elems[i]
        if elem in ('"', "-", "T", ":"):
            if not rest.startswith(elem):
                return fail(elem)
            rest = rest[len(elem):]
        elif elem in ("2006", "01", "02", "15", "04", "05"):
            n = 4 if elem == "2006" else 2
            digits = rest[:n]
            if len(digits) < n or not digits.isdigit() or not digits.isascii():
                return fail(elem)
            nums[elem] = int(digits)
            rest = rest[n:]
            if elem == "05" and rest[:1] in (".", ",") and rest[1:2].isdigit():
                j = 1
                while j < len(rest) and rest[j].isdigit():
                    j += 1
                rest = rest[j:]
        else:  # Z07:00
            if rest.startswith("Z"):
                rest = rest[1:]
            elif (len(rest) >= 6 and rest[0] in "+-" and rest[1:3].isdigit() and rest[3] == ":"
                  and rest[4:6].isdigit()):
                rest = rest[6:]
            else:
                return fail(elem)
        i += 1
    if rest:
        return f"parsing time {_time_quote(value)}: extra text: {_time_quote(rest)}"
    year, month, day = nums["2006"], nums["01"], nums["02"]
    if not 1 <= month <= 12:
        return f"parsing time {_time_quote(value)}: month out of range"
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return f"parsing time {_time_quote(value)}: day out of range"
    for key, what, hi in (("15", "hour", 23), ("04", "minute", 59), ("05", "second", 59)):
        if nums[key] > hi:
            return f"parsing time {_time_quote(value)}: {what} out of range"
    return None


def _zero(types: Types, t: Any) -> Any:
    if isinstance(t, str):
        base = t.split(":", 1)[0]
        if base == "string":
            return ""
        if base == "bool":
            return False
        if base in INT_RANGES:
            return 0
        if base == "float64":
            return 0.0
        if base in ("strslice",):
            return []
        if base == "empty":
            return {}
        return None
    if "struct" in t or "map" in t:
        return {}
    if "slice" in t:
        return []
    return [_zero(types, t["array"])] * t["len"]



def _literal(v: Any) -> str:
    lit = getattr(v, "literal", None)
    return lit if lit is not None else str(v)


class _Abort(Exception):
    pass


class _Decoder:
    """encoding/json's decoder, for one document (see the module docstring)."""

    def __init__(self, types: Types, lenient: bool = False):
        self.types = types
        self.lenient = lenient
        self.saved: str | None = None
        self.struct = ""  # Go's errorContext: innermost struct type and the field path
        self.stack: list[str] = []

    def top(self, doc: Any, root: str) -> dict[str, Any]:
        t = {"struct": root}
        try:
            out = self.value(doc, t)
        except _Abort as e:
            raise InvalidParameter(str(e)) from None
        if self.saved and not self.lenient:
            raise InvalidParameter(self.saved)
        return out if isinstance(out, dict) else {}

    def message(self, value: str, gotype: str) -> str:
        if self.stack:
            where = f"Go struct field {self.struct}.{'.'.join(self.stack)}"
        else:
            where = "Go value"
        return f"json: cannot unmarshal {value} into {where} of type {gotype}"

    def error(self, value: str, gotype: str) -> None:
        if self.saved is None:
            self.saved = self.message(value, gotype)

    def value(self, v: Any, t: Any) -> Any:
        """The decoded value, or _zero for null and for a value of the wrong type (error saved)."""
        types = self.types
        if v is None:
            return _zero(types, t)
        if isinstance(t, str):
            base = t.split(":", 1)[0]
            if base == "string":
                if isinstance(v, str):
                    return v
            elif base == "bool":
                if isinstance(v, bool):
                    return v
            elif base in INT_RANGES:
                if isinstance(v, int) and not isinstance(v, bool):
                    lo, hi = INT_RANGES[base]
                    if lo <= v <= hi:
                        return v
                    self.error(f"number {_literal(v)}", types.go_name(t))
                    return 0
                if isinstance(v, float):
                    self.error(f"number {_literal(v)}", types.go_name(t))
                    return 0
            elif base == "float64":
                if isinstance(v, int | float) and not isinstance(v, bool):
                    if -_FLOAT_MAX <= v <= _FLOAT_MAX:
                        return float(v)
                    self.error(f"number {_literal(v)}", "float64")
                    return 0.0
            elif base == "any":
                return v
            elif base == "strslice":
                if isinstance(v, str):
                    return [v]
                if isinstance(v, list) and all(x is None or isinstance(x, str) for x in v):
                    return ["" if x is None else x for x in v]
                if self.lenient:
                    return []
                raise _Abort(self.message(jsonload.kind(v), "string"))
            elif base == "time":
                err = go_time_error(v)
                if err is None:
                    return v
                if self.lenient:
                    return None
                raise _Abort(err)
            elif base == "empty":
                if isinstance(v, dict):
                    return {}
            self.error(jsonload.kind(v), types.go_name(t))
            return _zero(types, t)
        if "struct" in t:
            if not isinstance(v, dict):
                self.error(jsonload.kind(v), types.go_name(t))
                return {}
            return self.struct_fields(v, t["struct"])
        if "slice" in t or "array" in t:
            if not isinstance(v, list):
                self.error(jsonload.kind(v), types.go_name(t))
                return _zero(types, t)
            if "slice" in t:
                return [self.value(x, t["slice"]) for x in v]
            n = t["len"]
            out = [self.value(x, t["array"]) for x in v[:n]]
            return out + [_zero(types, t["array"])] * (n - len(out))
        if not isinstance(v, dict):
            self.error(jsonload.kind(v), types.go_name(t))
            return {}
        return {k: self.value(x, t["map"]) for k, x in v.items()}

    def struct_fields(self, d: dict[str, Any], name: str) -> dict[str, Any]:
        spec = self.types.structs[name]
        fields = spec["fields"]
        fold = self.types._fold[name]
        go_struct = spec["go"].rsplit(".", 1)[-1]
        out: dict[str, Any] = {}
        for k, v in d.items():
            key = k if k in fields else fold.get(k.casefold())
            if key is None:
                continue  # Go ignores unknown fields
            saved_struct, depth = self.struct, len(self.stack)
            self.struct = go_struct
            self.stack.append(key)
            val = self.value(v, fields[key])
            del self.stack[depth:]
            self.struct = saved_struct
            if v is None or val is None:
                out.pop(key, None)
            else:
                out[key] = val
        return out


# ---- the fast path: one JSON schema per root, compiled by fastjsonschema -------------------------

def _schema(types: Types, t: Any, nullable: bool, defs: dict[str, Any]) -> dict[str, Any]:
    def typ(name: str) -> Any:
        return [name, "null"] if nullable else name

    if isinstance(t, str):
        base = t.split(":", 1)[0]
        if base == "string":
            return {"type": typ("string")}
        if base == "bool":
            return {"type": typ("boolean")}
        if base in INT_RANGES:
            lo, hi = INT_RANGES[base]
            return {"type": typ("integer"), "minimum": lo, "maximum": hi}
        if base == "float64":
            return {"type": typ("number"), "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
        if base == "strslice":
            return {"type": ["array", "string", "null"] if nullable else ["array", "string"],
                    "items": {"type": "string"}}
        if base == "empty":
            return {"type": typ("object")}
        if base == "time":
            return {"type": typ("string")}
        return {}
    if "struct" in t:
        name = t["struct"]
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            fields = types.structs[name]["fields"]
            defs[name] = {"type": "object", "additionalProperties": False,
                          "properties": {k: _schema(types, ft, True, defs) for k, ft in fields.items()}}
        ref = {"$ref": f"#/definitions/{name}"}
        return {"anyOf": [{"type": "null"}, ref]} if nullable else ref
    if "slice" in t or "array" in t:
        return {"type": typ("array"), "items": _schema(types, t.get("slice") or t.get("array"), False, defs)}
    return {"type": typ("object"), "additionalProperties": _schema(types, t["map"], False, defs)}


def _compile(types: Types, root: str) -> Callable[[Any], Any]:
    import fastjsonschema  # imported on first use: the CLI never needs it

    defs: dict[str, Any] = {}
    top = _schema(types, {"struct": root}, False, defs)
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "definitions": defs, **top}
    return fastjsonschema.compile(schema)


@cache
def engine_types() -> Types:
    """The Engine API's request body types (hatoba/schema/data/engine-api.json)."""
    path = os.path.join(os.path.dirname(__file__), "data", "engine-api.json")
    with open(path) as f:
        return Types(json.load(f)["structs"])
