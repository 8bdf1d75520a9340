"""JSON for the CLI's fast path: `loads`/`dumps` on the standard library's C accelerator `_json`.

`import json` costs several ms of CLI start-up: it imports `re` and compiles five regular
expressions at import time. `_json` is the C scanner and encoder that `json` itself drives, so the
results are the same as `json.loads`/`json.dumps`. What `_json` does not do (an `indent`, a
decode error's message, bytes that are not UTF-8) is handed to `json`, imported only then.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # `typing` costs start-up; Any is only used in annotations
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"  # json's WHITESPACE


class _Context:
    """What `_json.make_scanner` reads from a `json.JSONDecoder`, with json's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_Context())


def loads(s: str | bytes | bytearray) -> Any:
    """`json.loads(s)`; a document that does not parse raises json's own JSONDecodeError."""
    text = s
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return _json_module().loads(s)  # UTF-16/32 (json detects the encoding), or the error
    idx = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, idx)
    except (StopIteration, ValueError):
        return _json_module().loads(s)  # a BOM, or json.JSONDecodeError with json's message
    if end != len(text) and text[end:].strip(_WS):
        return _json_module().loads(s)  # "Extra data"
    return obj


def _default(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: Any, *, ensure_ascii: bool = True, separators: tuple[str, str] | None = None,
          sort_keys: bool = False, indent: int | str | None = None, default: Any = None) -> str:
    """`json.dumps(obj, ...)` for these keyword arguments (an `indent` goes through `json`)."""
    if indent is not None:
        return _json_module().dumps(obj, ensure_ascii=ensure_ascii, separators=separators,
                                    sort_keys=sort_keys, indent=indent, default=default)
    basestring = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if isinstance(obj, str):
        return basestring(obj)
    item_sep, key_sep = separators or (", ", ": ")
    enc = _json.make_encoder({}, default or _default, basestring, None, key_sep, item_sep, sort_keys, False, True)
    return "".join(enc(obj, 0))


def _json_module() -> Any:
    import json

    return json
