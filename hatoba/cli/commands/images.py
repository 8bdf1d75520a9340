"""Image commands: images (image ls), rmi, tag, import, history, image bootstrap and image prune.

Output follows the docker CLI 28.x byte for byte (see shared/reference/cli-traces 26, 30, 31, 34, 88).
The formatting is done by pure functions (:func:`format_images`, :func:`format_history`, ...) that take
the Engine API's JSON and return text, so they can be tested without a daemon; ``now`` and ``tz`` make
relative and absolute times deterministic.
"""

from __future__ import annotations

import sys
import time

from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.cli.units import created_ago, human_duration, human_size, truncate_id
from hatoba.client.fastjson import dumps
from hatoba.client.http import APIError, quote_ref

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)

# ---------------------------------------------------------------------------------------------------------
# Shared helpers: filters, Go time strings, ellipsis, rendering


def parse_filters(specs: Iterable[str], command: str) -> dict[str, dict[str, bool]]:
    """``-f key=value`` flags as docker's filters.Args ({"key": {"value": true}}); bad ones are usage errors."""
    out: dict[str, dict[str, bool]] = {}
    for spec in specs:
        if not spec:
            continue
        if "=" not in spec:
            raise StatusError(125, f'invalid argument "{spec}" for "-f, --filter" flag: bad format of filter '
                                   f"(expected name=value)\nSee 'hatoba {command} --help'.")
        key, value = spec.split("=", 1)
        out.setdefault(key.strip().lower(), {})[value.strip()] = True
    return out


def encode_filters(filters: dict[str, dict[str, bool]]) -> str | None:
    """The `filters` query parameter (keys sorted, as Go marshals maps), or None when empty."""
    if not filters:
        return None
    return dumps(filters, sort_keys=True, separators=(",", ":"))


def _zone(ts: float, tz: int | None) -> tuple[int, str]:
    """(offset east of UTC in seconds, zone abbreviation) at ``ts``; ``tz`` forces a fixed offset."""
    if tz is None:
        lt = time.localtime(ts)
        return lt.tm_gmtoff, lt.tm_zone
    if tz == 0:
        return 0, "UTC"
    sign = "+" if tz > 0 else "-"
    return tz, f"{sign}{abs(tz) // 3600:02d}{abs(tz) % 3600 // 60:02d}"


def _offset_text(off: int, colon: bool) -> str:
    sign = "+" if off >= 0 else "-"
    h, m = abs(off) // 3600, abs(off) % 3600 // 60
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def go_time_string(ts: float, tz: int | None = None) -> str:
    """Go's ``time.Unix(ts, 0).String()``: "2026-11-22 09:40:00 +0000 UTC" (local zone unless ``tz``)."""
    off, name = _zone(ts, tz)
    base = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(ts) + off))
    return f"{base} {_offset_text(off, False)} {name}"


def go_rfc3339(ts: float, tz: int | None = None) -> str:
    """Go's ``time.Unix(ts, 0).Format(time.RFC3339)``: "2026-11-22T09:40:00Z" or "...+01:00"."""
    from hatoba.golang import format_rfc3339

    off, _ = _zone(ts, tz)
    return format_rfc3339(int(ts) * 1_000_000_000, frac="none", tz=off)


def _char_width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut ``s`` to ``width`` display columns, ending in "…"."""
    if width <= 0:
        return ""
    if width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= width else s[: width - 1] + "…"
    display: list[int] = []
    total = 0
    for ch in s:
        total += _char_width(ch)
        display.append(total)
    if total <= width:
        return s
    for i in range(len(display) - 1):
        if display[i] <= width - 1 < display[i + 1]:
            return s[: i + 1] + "…"
    return s


def render_rows(fmt: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    """Docker's list formatter: `table …` (aligned, with headers), `json` or a per-row template."""
    if fmt == "json":
        from hatoba.cli.commands.inspect import compact_json

        return "".join(compact_json(r) + "\n" for r in rows)
    from hatoba.cli import gotemplate
    from hatoba.cli.output import render

    try:
        return render(fmt, rows, headers, fmt)
    except gotemplate.TemplateError as e:
        raise StatusError(1, f"template parsing error: {e}") from None


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------------
# images / image ls

IMAGES = Command("images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images", [
    Flag("all", "a", "bool", help="Show all images (default hides intermediate images)"),
    Flag("digests", None, "bool", help="Show digests"),
    Flag("filter", "f", "list", help="Filter output based on conditions provided"),
    Flag("format", None, "str", help=FORMAT_HELP),
    Flag("no-trunc", None, "bool", help="Don't truncate output"),
    Flag("quiet", "q", "bool", help="Only show image IDs"),
], max_args=1)

IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

DEFAULT_IMAGE_FORMAT = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                        "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
DEFAULT_IMAGE_DIGEST_FORMAT = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                               "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")


def image_format(source: str, quiet: bool, digests: bool) -> str:
    """docker's NewImageFormat: the template for `table`/`raw`/custom formats."""
    if source == "table":
        if quiet:
            return "{{.ID}}"
        return DEFAULT_IMAGE_DIGEST_FORMAT if digests else DEFAULT_IMAGE_FORMAT
    if source == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        if digests:
            return ("repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\n"
                    "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\n"
                "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
    if source.startswith("table") and digests and "{{.Digest}}" not in source:
        return source + "\t{{.Digest}}"
    return source


def split_reference(ref: str) -> tuple[str, str | None, str | None] | None:
    """A RepoTags/RepoDigests entry as (familiar repository, tag, digest); None if it is not a name."""
    if not ref or ref.startswith("<"):
        return None
    name, _, digest = ref.partition("@")
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    if not name or name != name.strip() or " " in name:
        return None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if first not in ("docker.io", "index.docker.io"):
            return (f"{first}/{rest}", tag, digest or None) if rest == rest.lower() else None
        name = rest
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/"):]
    if name != name.lower():
        return None
    return name, tag, digest or None


def _is_dangling(img: dict[str, Any]) -> bool:
    tags, digests = img.get("RepoTags") or [], img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def _image_row(img: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool, now: float,
               tz: int | None) -> dict[str, Any]:
    created = int(img.get("Created") or 0)
    size = int(img.get("Size") or 0)
    shared = img.get("SharedSize", -1)
    shared = -1 if shared is None else int(shared)
    containers = img.get("Containers", -1)
    containers = -1 if containers is None else int(containers)
    image_id = str(img.get("Id") or "")
    return {
        "Containers": "N/A" if containers == -1 else str(containers),
        "CreatedAt": go_time_string(created, tz),
        "CreatedSince": created_ago(created, now),
        "Digest": digest,
        "ID": truncate_id(image_id) if trunc else image_id,
        "Repository": repo,
        "SharedSize": "N/A" if shared == -1 else human_size(shared, 4),
        "Size": human_size(size, 3),
        "Tag": tag,
        "UniqueSize": "N/A" if size == -1 or shared == -1 else human_size(size - shared, 4),
        "VirtualSize": human_size(size, 4),
    }


def image_rows(items: Iterable[dict[str, Any]], *, trunc: bool = True, digests: bool = False,
               need_digest: bool = False, now: float | None = None, tz: int | None = None) -> list[dict[str, Any]]:
    """One row per repository:tag (and digest when asked) of each image summary, like docker's imageFormat."""
    now = time.time() if now is None else now
    need_digest = need_digest or digests
    rows: list[dict[str, Any]] = []
    for img in items:
        if _is_dangling(img):
            rows.append(_image_row(img, "<none>", "<none>", "<none>", trunc, now, tz))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            parsed = split_reference(ref)
            if parsed and parsed[1] is not None and parsed[2] is None:
                repo_tags.setdefault(parsed[0], []).append(parsed[1])
        for ref in img.get("RepoDigests") or []:
            parsed = split_reference(ref)
            if parsed and parsed[2] is not None:
                repo_digests.setdefault(parsed[0], []).append(parsed[2])
        for repo, tags in repo_tags.items():
            dgsts = repo_digests.pop(repo, [])
            if not need_digest:
                dgsts = []
            for tag in tags:
                if not dgsts:
                    rows.append(_image_row(img, repo, tag, "<none>", trunc, now, tz))
                for d in dgsts:
                    rows.append(_image_row(img, repo, tag, d, trunc, now, tz))
        for repo, dgsts in repo_digests.items():
            if digests:
                for d in dgsts:
                    rows.append(_image_row(img, repo, "<none>", d, trunc, now, tz))
            else:
                rows.append(_image_row(img, repo, "<none>", "", trunc, now, tz))
    return rows


def format_images(items: Iterable[dict[str, Any]], *, fmt: str = "", quiet: bool = False, trunc: bool = True,
                  digests: bool = False, now: float | None = None, tz: int | None = None) -> str:
    """`hatoba images` output for the summaries of GET /images/json."""
    template = image_format(fmt or "table", quiet, digests)
    rows = image_rows(items, trunc=trunc, digests=digests, need_digest="{{.Digest}}" in template, now=now, tz=tz)
    return render_rows(template, rows, IMAGE_HEADERS)


def cmd_images(argv: list[str]) -> int:
    values, args = IMAGES.parse(argv)
    filters = parse_filters(values["filter"], "images")
    if args:
        filters.setdefault("reference", {})[args[0]] = True
    params = {"all": "1" if values["all"] else None, "filters": encode_filters(filters)}
    items = client().json("GET", "/images/json", params) or []
    _write(format_images(items, fmt=values["format"] or "", quiet=values["quiet"], trunc=not values["no_trunc"],
                         digests=values["digests"]))
    if args and not items and args[0] in _IMAGE_SUBCOMMANDS:
        # `hatoba images ls` filters on a repository called "ls"; hint at what was probably meant
        sys.stderr.write(f'\nNo images found matching "{args[0]}": did you mean "hatoba image {args[0]}"?\n')
    return 0


_IMAGE_SUBCOMMANDS = frozenset({"build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull",
                                "push", "rm", "save", "tag"})


# ---------------------------------------------------------------------------------------------------------
# rmi / image rm

RMI = Command("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", [
    Flag("force", "f", "bool", help="Force removal of the image"),
    Flag("no-prune", None, "bool", help="Do not delete untagged parents"),
], min_args=1)


def format_delete_items(items: Iterable[dict[str, Any]]) -> str:
    """`Untagged: x` / `Deleted: sha256:…` lines of an image delete (or prune) answer."""
    out = []
    for d in items:
        if d.get("Deleted"):
            out.append(f"Deleted: {d['Deleted']}\n")
        else:
            out.append(f"Untagged: {d.get('Untagged', '')}\n")
    return "".join(out)


def cmd_rmi(argv: list[str]) -> int:
    values, args = RMI.parse(argv)
    c = client()
    params = {"force": "1" if values["force"] else None, "noprune": "1" if values["no_prune"] else None}
    errors: list[str] = []
    fatal = False
    for name in args:
        try:
            deleted = c.json("DELETE", f"/images/{quote_ref(name)}", params) or []
        except APIError as e:
            fatal = fatal or e.status != 404
            errors.append(f"Error response from daemon: {e.message}")
            continue
        _write(format_delete_items(deleted))
    if errors:
        msg = "\n".join(errors)
        if not values["force"] or fatal:
            raise StatusError(1, msg)
        sys.stderr.write(msg + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------
# tag

TAG = Command("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], min_args=2, max_args=2,
              interspersed=False)


def tag_params(target: str) -> dict[str, str]:
    """The repo/tag query of POST /images/{src}/tag: the fully-qualified repository, like the docker CLI."""
    from hatoba.errors import HatobaError
    from hatoba.images import reference

    try:
        ref = reference.parse(target, default_tag=None)
    except HatobaError as e:
        raise StatusError(1, f'Error parsing reference: "{target}" is not a valid repository/tag: '
                             f"{e.message}") from None
    if ref.digest:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    return {"repo": ref.full_repository, "tag": ref.tag or "latest"}


def cmd_tag(argv: list[str]) -> int:
    _, args = TAG.parse(argv)
    source, target = args
    from hatoba.errors import HatobaError
    from hatoba.images import reference

    if not reference.is_id(source):
        try:
            reference.parse(source)
        except HatobaError as e:
            raise StatusError(1, f'Error parsing reference: "{source}" is not a valid repository/tag: '
                                 f"{e.message}") from None
    client().call("POST", f"/images/{quote_ref(source)}/tag", tag_params(target))
    return 0


# ---------------------------------------------------------------------------------------------------------
# import

IMPORT = Command("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image", [
                     Flag("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
                     Flag("message", "m", "str", help="Set commit message for imported image"),
                     Flag("platform", None, "str", help="Set platform if server is multi-platform capable"),
                 ], min_args=1, max_args=2)


def import_params(source: str, ref: str, changes: list[str], message: str, platform: str) -> dict[str, Any]:
    """Query of POST /images/create for an import (keys in the order the docker CLI sends them)."""
    params: dict[str, Any] = {}
    if changes:
        params["changes"] = list(changes)
    params["fromSrc"] = source
    if message:
        params["message"] = message
    if platform:
        params["platform"] = platform.lower()
    if ref:
        params["repo"] = ref
    return params


def display_stream(messages: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Lines docker's jsonmessage display prints (non-terminal) for a progress stream; raises on `error`."""
    for m in messages:
        err = m.get("error") or (m.get("errorDetail") or {}).get("message")
        if err:
            raise StatusError(1, str(err))
        status = m.get("status")
        if m.get("stream"):
            yield str(m["stream"])
            continue
        if not status and not m.get("progress"):
            continue
        line = f"{m['id']}: " if m.get("id") else ""
        line += str(status or "")
        if m.get("progress"):
            line += " " + str(m["progress"])
        yield line + "\n"


def cmd_import(argv: list[str]) -> int:
    values, args = IMPORT.parse(argv)
    source = args[0]
    ref = args[1] if len(args) > 1 else ""
    if ref:
        from hatoba.errors import HatobaError
        from hatoba.images import reference

        try:
            reference.parse(ref)
        except HatobaError as e:
            raise StatusError(1, e.message) from None
    body: Any = None
    src_name = "-"
    opened = None
    if source == "-":
        body = sys.stdin.buffer
    elif source.startswith(("http://", "https://")):
        src_name = source
    else:
        try:
            opened = open(source, "rb")
        except OSError as e:
            raise StatusError(1, f"open {source}: {(e.strerror or str(e)).lower()}") from None
        body = opened
    params = import_params(src_name, ref, values["change"], values["message"] or "", values["platform"] or "")
    headers = {"Content-Type": "text/plain"}
    try:
        for line in display_stream(client().stream_json("POST", "/images/create", params, body=body,
                                                        headers=headers)):
            _write(line)
    finally:
        if opened is not None:
            opened.close()
    return 0


# ---------------------------------------------------------------------------------------------------------
# history

HISTORY = Command("history", "history [OPTIONS] IMAGE", "Show the history of an image", [
    Flag("format", None, "str", help=FORMAT_HELP),
    Flag("human", "H", "bool", True, help="Print sizes and dates in human readable format"),
    Flag("no-trunc", None, "bool", help="Don't truncate output"),
    Flag("quiet", "q", "bool", help="Only show image IDs"),
], min_args=1, max_args=1)

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT"}
DEFAULT_HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN_HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_EPOCH_2000 = 946684800


def history_rows(items: Iterable[dict[str, Any]], *, human: bool = True, trunc: bool = True,
                 now: float | None = None, tz: int | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for h in items:
        created = int(h.get("Created") or 0)
        created_at = go_rfc3339(created, tz)
        if not human:
            since = created_at
        elif created <= _EPOCH_2000:
            since = "N/A"
        else:
            since = human_duration(now - created) + " ago"
        created_by = str(h.get("CreatedBy") or "").replace("\t", " ")
        hid = str(h.get("Id") or "")
        size = int(h.get("Size") or 0)
        rows.append({
            "Comment": str(h.get("Comment") or ""),
            "CreatedAt": created_at,
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "CreatedSince": since,
            "ID": truncate_id(hid) if trunc else hid,
            "Size": human_size(size, 3) if human else str(size),
        })
    return rows


def format_history(items: Iterable[dict[str, Any]], *, fmt: str = "", quiet: bool = False, human: bool = True,
                   trunc: bool = True, now: float | None = None, tz: int | None = None) -> str:
    """`hatoba history` output for GET /images/{name}/history."""
    source = fmt or "table"
    if source == "table":
        source = "{{.ID}}" if quiet else (DEFAULT_HISTORY_FORMAT if human else NON_HUMAN_HISTORY_FORMAT)
    rows = history_rows(items, human=human, trunc=trunc, now=now, tz=tz)
    return render_rows(source, rows, HISTORY_HEADERS)


def cmd_history(argv: list[str]) -> int:
    values, args = HISTORY.parse(argv)
    items = client().json("GET", f"/images/{quote_ref(args[0])}/history") or []
    _write(format_history(items, fmt=values["format"] or "", quiet=values["quiet"], human=values["human"],
                          trunc=not values["no_trunc"]))
    return 0


# ---------------------------------------------------------------------------------------------------------
# image bootstrap (hatoba extension)

BOOTSTRAP = Command("image bootstrap", "image bootstrap NAME [NAME...]",
                    "Build a base image locally from a built-in recipe (hatoba extension): debian:bookworm-slim, "
                    "debian:bookworm (debian), python:3.11-slim (python), redis:7 (redis), busybox, hello-world",
                    [], min_args=1)


def cmd_bootstrap(argv: list[str]) -> int:
    _, args = BOOTSTRAP.parse(argv)
    c = client()
    rc = 0
    for name in args:
        try:
            for msg in c.stream_json("POST", "/hatoba/images/bootstrap", {"name": name}):
                err = msg.get("error") or (msg.get("errorDetail") or {}).get("message")
                if err:
                    sys.stdout.flush()
                    sys.stderr.write(f"{err}\n")
                    rc = 1
                    break
                if msg.get("status"):
                    _write(f"{msg['status']}\n")
        except APIError as e:
            sys.stdout.flush()
            sys.stderr.write(f"Error response from daemon: {e.message}\n")
            rc = 1
    return rc


# ---------------------------------------------------------------------------------------------------------
# image prune

PRUNE = Command("image prune", "image prune [OPTIONS]", "Remove unused images", [
    Flag("all", "a", "bool", help="Remove all unused images, not just dangling ones"),
    Flag("filter", None, "list", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", "bool", help="Do not prompt for confirmation"),
], max_args=0)

ALL_IMAGES_WARNING = ("WARNING! This will remove all images without at least one container associated to them.\n"
                      "Are you sure you want to continue?")
DANGLING_WARNING = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"


def format_prune_report(report: dict[str, Any] | None) -> str:
    """docker's image prune output: "Deleted Images:" list (if any) and the reclaimed space."""
    report = report or {}
    out = ""
    space = 0
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        out = "Deleted Images:\n"
        for d in deleted:
            if d.get("Untagged"):
                out += f"untagged: {d['Untagged']}\n"
            else:
                out += f"deleted: {d.get('Deleted', '')}\n"
        out += "\n"
        space = int(report.get("SpaceReclaimed") or 0)
    return out + f"Total reclaimed space: {human_size(space, 4)}\n"


def confirm(message: str) -> bool:
    """docker's prompt.Confirm: print "<message> [y/N] " and read one answer line from stdin."""
    _write(message + " [y/N] ")
    line = sys.stdin.readline()
    return line.strip().lower() == "y"


def cmd_image_prune(argv: list[str]) -> int:
    values, _ = PRUNE.parse(argv)
    filters = parse_filters(values["filter"], "image prune")
    filters.setdefault("dangling", {})["false" if values["all"] else "true"] = True
    if not values["force"] and not confirm(ALL_IMAGES_WARNING if values["all"] else DANGLING_WARNING):
        return 0  # docker treats a "no" as a cancellation: nothing printed, status 0
    report = client().json("POST", "/images/prune", {"filters": encode_filters(filters)})
    _write(format_prune_report(report))
    return 0
