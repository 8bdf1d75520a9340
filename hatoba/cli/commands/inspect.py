"""inspect, container inspect and image inspect: low-level JSON of hatoba objects.

Without ``--type`` each name is looked up as a container, an image, a network, a volume, then (after
a GET /info to learn whether swarm objects exist) a plugin, as the docker CLI does (trace 82).  The
result is printed as one JSON array indented with 4 spaces (Go's json.MarshalIndent layout, with
Go's HTML-safe escaping), as compact JSON with ``--format json``, or through a Go template per object.
"""

from __future__ import annotations

import json
import sys

from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.client.http import APIError, Client, quote_ref

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)

ALL_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")

# Probe order without --type: (type, swarm object?)
_PROBE_ORDER = (("container", False), ("image", False), ("network", False), ("volume", False),
                ("service", True), ("task", True), ("node", True), ("plugin", False), ("secret", True),
                ("config", True))

# ---------------------------------------------------------------------------------------------------------
# JSON the way Go writes it


def _go_escape(text: str) -> str:
    # json.dumps(ensure_ascii=False) output: "<", ">" and "&" can only occur inside strings there.
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def indent_json(obj: Any) -> str:
    """Go's ``json.MarshalIndent(obj, "", "    ")`` (no trailing newline)."""
    return _go_escape(json.dumps(obj, indent=4, ensure_ascii=False))


def compact_json(obj: Any) -> str:
    """Go's ``json.Marshal(obj)``: compact, HTML characters escaped."""
    return _go_escape(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


def format_inspect(elements: list[Any], fmt: str = "") -> str:
    """What `inspect` writes on stdout for the objects found (docker's inspector Flush)."""
    if not fmt:
        return (indent_json(elements) if elements else "[]") + "\n"
    if fmt == "json":
        return (compact_json(elements) if elements else "[]") + "\n"
    tmpl = parse_template(fmt)
    out = [execute_template(tmpl, e) + "\n" for e in elements]
    return "".join(out) or "\n"


def parse_template(fmt: str) -> Any:
    """Parse an inspect --format template; a syntax error exits 64 like docker."""
    from hatoba.cli import gotemplate

    try:
        return gotemplate.parse(fmt)
    except gotemplate.TemplateError as e:
        raise StatusError(64, f"template parsing error: {e}") from None


def execute_template(tmpl: Any, data: Any) -> str:
    from hatoba.cli import gotemplate

    try:
        return tmpl.execute(data)
    except gotemplate.TemplateError as e:
        raise _InspectError(f"template parsing error: {e}") from None


class _InspectError(Exception):
    """An error about one object; reported after the output, exit status 1."""


# ---------------------------------------------------------------------------------------------------------
# Lookups


def _path(kind: str, ref: str) -> tuple[str, dict[str, Any] | None]:
    q = quote_ref(ref)
    return {
        "container": (f"/containers/{q}/json", None),
        "image": (f"/images/{q}/json", None),
        "network": (f"/networks/{q}", None),
        "volume": (f"/volumes/{q}", None),
        "plugin": (f"/plugins/{q}/json", None),
        "service": (f"/services/{q}", {"insertDefaults": "1"}),
        "task": (f"/tasks/{q}", None),
        "node": (f"/nodes/{q}", None),
        "secret": (f"/secrets/{q}", None),
        "config": (f"/configs/{q}", None),
    }[kind]


def _skippable(e: APIError) -> bool:
    return e.status == 404 or "not supported" in e.message or "invalid reference format" in e.message


def _not_found_text(kind: str, ref: str, e: APIError) -> str:
    if e.status == 404:
        return f"Error: No such {kind}: {ref}"
    return f"Error response from daemon: {e.message}"


def make_getter(c: Client, kind: str, size: bool) -> Callable[[str], Any]:
    """A lookup of one object: returns its JSON or raises _InspectError with docker's text."""
    def get(ref: str) -> Any:
        if kind:
            path, params = _path(kind, ref)
            if kind == "container" and size:
                params = {"size": "1"}
            try:
                return c.json("GET", path, params)
            except APIError as e:
                raise _InspectError(_not_found_text(kind, ref, e)) from None
        swarm: bool | None = None
        for typ, is_swarm in _PROBE_ORDER:
            if is_swarm:
                if swarm is None:
                    swarm = _is_swarm_manager(c)
                if not swarm:
                    continue
            path, params = _path(typ, ref)
            if typ == "container" and size:
                params = {"size": "1"}
            try:
                obj = c.json("GET", path, params)
            except APIError as e:
                if _skippable(e):
                    continue
                raise _InspectError(f"Error response from daemon: {e.message}") from None
            if size and typ != "container":
                sys.stderr.write(f"WARNING: --size ignored for {typ}\n")
            return obj
        raise _InspectError(f"Error: No such object: {ref}")
    return get


def _is_swarm_manager(c: Client) -> bool:
    try:
        info = c.json("GET", "/info") or {}
    except APIError as e:
        sys.stderr.write(f"Error response from daemon: {e.message}\n")
        return False
    return bool((info.get("Swarm") or {}).get("ControlAvailable"))


def run_inspect(refs: Iterable[str], fmt: str, get: Callable[[str], Any]) -> int:
    """docker's inspect.Inspect: look every ref up, print what was found, then the errors (status 1)."""
    tmpl = parse_template(fmt) if fmt and fmt != "json" else None
    found: list[Any] = []
    rendered: list[str] = []
    errors: list[str] = []
    for ref in refs:
        try:
            obj = get(ref)
            if tmpl is not None:
                rendered.append(execute_template(tmpl, obj) + "\n")
            found.append(obj)
        except _InspectError as e:
            errors.append(str(e))
    if tmpl is not None:
        sys.stdout.write("".join(rendered) or "\n")
    else:
        sys.stdout.write(format_inspect(found, fmt))
    sys.stdout.flush()
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


# ---------------------------------------------------------------------------------------------------------
# Commands

INSPECT = Command("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on hatoba objects", [
                      Flag("format", "f", "str", help=INSPECT_FORMAT_HELP),
                      Flag("size", "s", "bool", help="Display total file sizes if the type is container"),
                      Flag("type", None, "str", help="Only inspect objects of the given type"),
                  ], min_args=1)

CONTAINER_INSPECT = Command("container inspect", "container inspect [OPTIONS] CONTAINER [CONTAINER...]",
                            "Display detailed information on one or more containers", [
                                Flag("format", "f", "str", help=INSPECT_FORMAT_HELP),
                                Flag("size", "s", "bool", help="Display total file sizes"),
                            ], min_args=1)

IMAGE_INSPECT = Command("image inspect", "image inspect [OPTIONS] IMAGE [IMAGE...]",
                        "Display detailed information on one or more images", [
                            Flag("format", "f", "str", help=INSPECT_FORMAT_HELP),
                        ], min_args=1)


def _types_text() -> str:
    return '"' + '", "'.join(ALL_TYPES) + '"'


def cmd_inspect(argv: list[str]) -> int:
    values, args = INSPECT.parse(argv)
    kind = values["type"] or ""
    if "type" in values["_set"] and not kind:
        raise StatusError(1, f"type is empty: must be one of {_types_text()}")
    if kind and kind not in ALL_TYPES:
        raise StatusError(1, f'unknown type: "{kind}": must be one of {_types_text()}')
    return run_inspect(args, values["format"] or "", make_getter(client(), kind, bool(values["size"])))


def cmd_container_inspect(argv: list[str]) -> int:
    values, args = CONTAINER_INSPECT.parse(argv)
    return run_inspect(args, values["format"] or "", make_getter(client(), "container", bool(values["size"])))


def cmd_image_inspect(argv: list[str]) -> int:
    values, args = IMAGE_INSPECT.parse(argv)
    return run_inspect(args, values["format"] or "", make_getter(client(), "image", False))
