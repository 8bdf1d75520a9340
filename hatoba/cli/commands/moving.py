"""Commands that move images: save, load (image save/load) and commit (container commit).

Their requests and output follow the docker CLI 28.x (cli-traces 29, 39, 40, 41).
"""

from __future__ import annotations

import os
import sys
import tempfile

from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from typing import Any

SAVE = Command("save", "save [OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)", [
                   Flag("output", "o", "str", help="Write to a file, instead of STDOUT"),
                   Flag("format", None, "str",
                        help="Archive format: \"docker\" (default) or \"oci\" (adds an OCI image layout)"),
               ], min_args=1)

LOAD = Command("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN", [
    Flag("input", "i", "str", help="Read from tar archive file, instead of STDIN"),
    Flag("quiet", "q", "bool", help="Suppress the load output"),
], max_args=0)

COMMIT = Command("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                 "Create a new image from a container's changes", [
                     Flag("author", "a", "str", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
                     Flag("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
                     Flag("message", "m", "str", help="Commit message"),
                     Flag("pause", "p", "bool", True, help="Pause container during commit"),
                 ], min_args=1, max_args=2)


def _validate_output_path(path: str) -> None:
    """docker's ValidateOutputPath."""
    d = os.path.dirname(os.path.normpath(path))
    if d and d != "." and not os.path.exists(d):
        raise StatusError(1, f'failed to save image: invalid output path: directory "{d}" does not exist')
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.islink(path):
        raise StatusError(1, f'failed to save image: invalid output path: "{path}" must be a directory or a '
                             "regular file")


def cmd_save(argv: list[str]) -> int:
    values, args = SAVE.parse(argv)
    out_path = values.get("output") or ""
    if out_path:
        _validate_output_path(out_path)
    elif sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    params: dict[str, Any] = {"names": list(args)}
    if values.get("format"):
        params["format"] = values["format"]
    resp = client().request("GET", "/images/get", params)
    if not out_path:
        out = sys.stdout.buffer
        while chunk := resp.read(1 << 20):
            out.write(chunk)
        out.flush()
        return 0
    # like docker's CopyToFile: a temp file next to the target, renamed into place when complete
    d = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".docker_temp_", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cmd_load(argv: list[str]) -> int:
    values, _ = LOAD.parse(argv)
    path = values.get("input") or ""
    if path:
        try:
            body: Any = open(path, "rb")
        except OSError as e:
            raise StatusError(1, f"open {path}: {(e.strerror or str(e)).lower()}") from None
    else:
        if sys.stdin.isatty():
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        body = sys.stdin.buffer
    quiet = bool(values["quiet"]) or not sys.stdout.isatty()
    from hatoba.cli.jsonmessage import StreamError, display

    try:
        stream = client().stream_json("POST", "/images/load", {"quiet": "1" if quiet else "0"}, body=body,
                                      headers={"Content-Type": "application/x-tar"})
        display(stream, sys.stdout)
    except StreamError as e:
        raise StatusError(1, e.message) from None
    finally:
        if path:
            body.close()
    return 0


def cmd_commit(argv: list[str]) -> int:
    values, args = COMMIT.parse(argv)
    container = args[0]
    repo, tag = "", ""
    if len(args) > 1:
        from hatoba.errors import HatobaError
        from hatoba.images import reference

        try:
            ref = reference.parse(args[1], default_tag=None)
        except HatobaError as e:
            raise StatusError(1, e.message) from None
        if ref.digest:
            raise StatusError(1, "refusing to create a tag with a digest reference")
        repo, tag = ref.full_repository, ref.tag or ""
    params: dict[str, Any] = {"author": values["author"] or "", "changes": list(values["change"]),
                              "comment": values["message"] or "", "container": container}
    if not values["pause"]:
        params["pause"] = "0"
    params["repo"] = repo
    params["tag"] = tag
    doc = client().json("POST", "/commit", params)
    sys.stdout.write(str((doc or {}).get("Id", "")) + "\n")
    return 0
