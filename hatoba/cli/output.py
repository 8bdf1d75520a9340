"""CLI output: Go-tabwriter-compatible tables, `--format` rendering, and error printing."""

from __future__ import annotations

import sys

from hatoba.client.fastjson import dumps

TYPE_CHECKING = False  # `typing` costs 3 to 6 ms of CLI start-up; Any is only used in annotations
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def tabwrite(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Align cells like Go's tabwriter.NewWriter(w, 10, 1, 3, ' ', 0): the last cell is not padded."""
    widths: dict[int, int] = {}
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell))
    out = []
    for r in rows:
        parts = [cell.ljust(max(widths[i] + padding, minwidth)) for i, cell in enumerate(r[:-1])]
        parts.append(r[-1] if r else "")
        out.append("".join(parts))
    return "\n".join(out) + ("\n" if out else "")


def render(fmt: str, items: Iterable[Any], headers: dict[str, str], default: str) -> str:
    """Docker's formatter: `table …` gives an aligned table with a header row, else one line per item."""
    fmt = fmt or default
    if fmt == "json":
        return "".join(dumps(_plain(i), separators=(",", ":")) + "\n" for i in items)
    is_table, body = split_table(fmt)
    items = list(items)
    lines = _render_fields(body, [headers, *items] if is_table else items)
    if lines is None:  # more than `{{.Field}}`s, or a value that is not a string: the template engine
        from hatoba.cli import gotemplate

        tmpl = gotemplate.parse(body)
        lines = ([tmpl.execute(headers)] if is_table else []) + [tmpl.execute(i) for i in items]
    if not is_table:
        return "".join(line + "\n" for line in lines)
    rows = [ln.split("\t") for ln in "\n".join(lines).split("\n")]
    return tabwrite(rows)


def split_table(fmt: str) -> tuple[bool, str]:
    """Docker's format pre-processing.

    Returns (is_table, template): a leading ``table`` is stripped (docker
    tests with a plain prefix match), a bare ``json`` becomes ``{{json .}}``,
    surrounding spaces are trimmed, and the two-character sequences ``\\t``
    and ``\\n`` become a tab and a newline.
    """
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[5:]
    elif fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.strip(" ")
    if "\\" in fmt:
        fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return is_table, fmt


def _render_fields(body: str, items: list[Any]) -> list[str] | None:
    """Each item through a template made only of text and `{{.Field}}` actions (the default tables).

    Such a template prints a string field as it is, so no template engine is needed (importing it
    costs a few ms of CLI start-up). None when the template has anything else, or an item is not
    a dict holding a string for each field: the caller then runs the real engine.
    """
    parts: list[str] = []  # text, field, text, field, ..., text
    rest = body
    while True:
        i = rest.find("{{")
        if i < 0:
            parts.append(rest)
            break
        j = rest.find("}}", i + 2)
        action = rest[i + 2:j].strip(" ") if j >= 0 else ""
        name = action[1:]
        if not (action.startswith(".") and name.isidentifier() and name.isascii()):
            return None
        parts += [rest[:i], name]
        rest = rest[j + 2:]
    fields = parts[1::2]
    out = []
    for item in items:
        if not isinstance(item, dict):
            return None
        line = parts[0]
        for k, f in enumerate(fields):
            v = item.get(f)
            if type(v) is not str:
                return None
            line += v + parts[2 * k + 2]
        out.append(line)
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: v for k, v in x.items() if not k.startswith("_")}
    return x


def err(msg: str) -> None:
    sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")
