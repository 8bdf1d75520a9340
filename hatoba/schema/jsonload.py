"""Strict JSON decoding of request bodies, as Go's encoding/json Decoder reads them in dockerd.

- `NaN`, `Infinity`, `-Infinity` are refused (Python's json accepts them; Go does not).
- Syntax errors carry Go's messages ("invalid character 'x' after object key", "unexpected EOF").
- Nesting deeper than `MAX_DEPTH` is refused with Go's "exceeded max depth" message instead of a
  RecursionError. Go allows 10000 levels; we allow `MAX_DEPTH`, far beyond any Docker body.
- Only the first value is read; trailing bytes are ignored (Go's `Decoder.Decode`).
- Invalid UTF-8 and lone surrogate escapes become U+FFFD, as Go decodes them.
- Non-integral numbers decode to `GoNumber` (a float that keeps its literal), so a validator can report
  `json: cannot unmarshal number 1e400 into ...` with the client's own spelling. Integers stay ints;
  integers too long for Python's int parser become `GoNumber` as well.

The error path re-scans the raw bytes with a small Go-style scanner (`syntax_error`); the fast path is
CPython's C decoder.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hatoba.errors import InvalidParameter

MAX_DEPTH = 500
_WS = b" \t\r\n"


class GoNumber(float):
    """A JSON number that is not a plain integer (or too long for one): its value and its literal."""

    __slots__ = ("literal",)

    def __new__(cls, literal: str) -> GoNumber:
        self = super().__new__(cls, float(literal))
        self.literal = literal
        return self


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _big_int(literal: str) -> Any:
    try:
        return int(literal)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return GoNumber(literal)


_decoder = json.JSONDecoder(parse_float=GoNumber, parse_constant=_refuse_constant)
_decoder_bigint = json.JSONDecoder(parse_float=GoNumber, parse_constant=_refuse_constant, parse_int=_big_int)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode(raw: bytes | str) -> Any:
    """The first JSON value of a request body; None for an empty (or all-whitespace) body.

    Raises InvalidParameter with Go's message for anything Go's decoder refuses.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    n = len(raw)
    i = 0
    while i < n and raw[i] in _WS:
        i += 1
    if i == n:
        return None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        err = syntax_error(raw, MAX_DEPTH)
        if err:
            raise InvalidParameter(err)
    text = raw.decode("utf-8", "replace")
    try:
        doc, _ = _decoder.raw_decode(text, i)
    except (ValueError, RecursionError):
        err = syntax_error(raw, MAX_DEPTH)
        if err:
            raise InvalidParameter(err) from None
        try:  # valid for Go, refused by CPython: an integer literal beyond Python's digit limit
            doc, _ = _decoder_bigint.raw_decode(text, i)
        except (ValueError, RecursionError):
            raise InvalidParameter("invalid JSON") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        doc = _fix_surrogates(doc)
    return doc


def _fix_surrogates(v: Any) -> Any:
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, list):
        return [_fix_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}
    return v


def quote_char(c: int) -> str:
    """Go's quoteChar: how encoding/json names an offending byte."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    if ch.isprintable():
        return f"'{ch}'"
    named = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}
    if c in named:
        return f"'{named[c]}'"
    if c < 0x80:
        return f"'\\x{c:02x}'"
    return f"'\\u{c:04x}'"


def syntax_error(b: bytes, max_depth: int = MAX_DEPTH, *, whole: bool = False) -> str | None:
    """Go's syntax error for the first JSON value in `b` (a `Decoder.Decode`), or for all of `b` when
    `whole` (a `json.Unmarshal`: other messages for a cut input and for trailing bytes); None when
    well formed."""
    n = len(b)
    i = 0
    stack: list[int] = []
    mode = "value"
    eof = "unexpected end of JSON input" if whole else "unexpected EOF"
    while True:
        if mode == "value":
            while i < n and b[i] in _WS:
                i += 1
            if i >= n:
                return eof
            c = b[i]
            if c in (0x7B, 0x5B):  # { [
                if len(stack) >= max_depth:
                    return f"invalid character {quote_char(c)} exceeded max depth"
                stack.append(c)
                i += 1
                while i < n and b[i] in _WS:
                    i += 1
                if i >= n:
                    return eof
                if b[i] == c + 2:  # } or ]
                    stack.pop()
                    i += 1
                    mode = "after"
                else:
                    mode = "key" if c == 0x7B else "value"
                continue
            if c == 0x22:
                err, i = _string(b, i)
            elif c == 0x2D or 0x30 <= c <= 0x39:
                err, i = _number(b, i)
            elif c in b"tfn":
                word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
                err, i = _literal(b, i, word)
            else:
                return f"invalid character {quote_char(c)} looking for beginning of value"
            if err:
                return err
            if i > n:
                return eof
            mode = "after"
        elif mode == "key":
            while i < n and b[i] in _WS:
                i += 1
            if i >= n:
                return eof
            if b[i] != 0x22:
                return f"invalid character {quote_char(b[i])} looking for beginning of object key string"
            err, i = _string(b, i)
            if err:
                return err
            if i > n:
                return eof
            while i < n and b[i] in _WS:
                i += 1
            if i >= n:
                return eof
            if b[i] != 0x3A:
                return f"invalid character {quote_char(b[i])} after object key"
            i += 1
            mode = "value"
        else:  # after a value
            if not stack:
                if whole:
                    while i < n and b[i] in _WS:
                        i += 1
                    if i < n:
                        return f"invalid character {quote_char(b[i])} after top-level value"
                return None
            while i < n and b[i] in _WS:
                i += 1
            if i >= n:
                return eof
            c = b[i]
            i += 1
            if c == 0x2C:
                mode = "key" if stack[-1] == 0x7B else "value"
            elif c == stack[-1] + 2:
                stack.pop()
            elif stack[-1] == 0x7B:
                return f"invalid character {quote_char(c)} after object key:value pair"
            else:
                return f"invalid character {quote_char(c)} after array element"


def _string(b: bytes, i: int) -> tuple[str | None, int]:
    n = len(b)
    i += 1
    while i < n:
        c = b[i]
        if c == 0x22:
            return None, i + 1
        if c == 0x5C:
            i += 1
            if i >= n:
                return None, n + 1
            e = b[i]
            if e == 0x75:  # \u
                for _ in range(4):
                    i += 1
                    if i >= n:
                        return None, n + 1
                    if b[i] not in b"0123456789abcdefABCDEF":
                        return f"invalid character {quote_char(b[i])} in \\u hexadecimal character escape", i
            elif e not in b'"\\/bfnrt':
                return f"invalid character {quote_char(e)} in string escape code", i
        elif c < 0x20:
            return f"invalid character {quote_char(c)} in string literal", i
        i += 1
    return None, n + 1


def _digits(b: bytes, i: int) -> int:
    while i < len(b) and 0x30 <= b[i] <= 0x39:
        i += 1
    return i


def _number(b: bytes, i: int) -> tuple[str | None, int]:
    n = len(b)
    if b[i] == 0x2D:
        i += 1
        if i >= n:
            return None, n + 1
        if not 0x30 <= b[i] <= 0x39:
            return f"invalid character {quote_char(b[i])} in numeric literal", i
    i = i + 1 if b[i] == 0x30 else _digits(b, i)
    if i < n and b[i] == 0x2E:
        i += 1
        if i >= n:
            return None, n + 1
        if not 0x30 <= b[i] <= 0x39:
            return f"invalid character {quote_char(b[i])} after decimal point in numeric literal", i
        i = _digits(b, i)
    if i < n and b[i] in b"eE":
        i += 1
        if i < n and b[i] in b"+-":
            i += 1
        if i >= n:
            return None, n + 1
        if not 0x30 <= b[i] <= 0x39:
            return f"invalid character {quote_char(b[i])} in exponent of numeric literal", i
        i = _digits(b, i)
    return None, i


def _literal(b: bytes, i: int, word: bytes) -> tuple[str | None, int]:
    for k in range(1, len(word)):
        if i + k >= len(b):
            return None, len(b) + 1
        if b[i + k] != word[k]:
            return (f"invalid character {quote_char(b[i + k])} in literal {word.decode()} "
                    f"(expecting {quote_char(word[k])})"), i + k
    return None, i + len(word)


def unmarshal(raw: bytes | str) -> Any:
    """json.Unmarshal's view of `raw` (all of it must be one JSON value), strict as `decode`."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    err = syntax_error(raw, MAX_DEPTH, whole=True)
    if err:
        raise InvalidParameter(err)
    return decode(raw)


def kind(v: Any) -> str:
    """The JSON kind of a decoded value as Go's UnmarshalTypeError names it: bool, string, number,
    array, object."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "value"
