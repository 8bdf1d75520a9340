"""CLI output: Go-tabwriter-compatible tables, `--format` rendering, and error printing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

TYPE_CHECKING = False  # `typing` costs 3 to 6 ms of CLI start-up; Any is only used in annotations
if TYPE_CHECKING:
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
    from hatoba.cli import gotemplate

    fmt = fmt or default
    if fmt == "json":
        return "".join(json.dumps(_plain(i), separators=(",", ":")) + "\n" for i in items)
    is_table, body = gotemplate.split_table(fmt)
    tmpl = gotemplate.parse(body)
    if not is_table:
        return "".join(tmpl.execute(i) + "\n" for i in items)
    lines = [tmpl.execute(headers)] + [tmpl.execute(i) for i in items]
    rows = [ln.split("\t") for ln in "\n".join(lines).split("\n")]
    return tabwrite(rows)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: v for k, v in x.items() if not k.startswith("_")}
    return x


def err(msg: str) -> None:
    sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")
