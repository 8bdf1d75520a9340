"""Image configs as dockerd's image.Image decodes them (image.NewFromJSON), for configs that come from
outside (docker load, pull) and for a robust view of the configs already stored.

- `decode_config(raw)`: json.Unmarshal semantics and Go's messages (`json: cannot unmarshal number into Go
  struct field Image.history of type []image.History`, `parsing time "\\"notadate\\"" as ...`, `invalid
  image JSON, no RootFS key`); returns the normalised config (strslice coercions, known fields only).
- `sanitize(config)`: never raises; a config that would be refused comes back with its bad fields
  dropped (and no diff ids unless all are sha256 digests), so list, inspect, history, df and image
  removal can always be answered.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from hatoba.errors import InvalidParameter
from hatoba.schema import jsonload
from hatoba.schema.gotypes import Types, engine_types

_IMAGE_STRUCTS: dict[str, Any] = {
    "Image": {"go": "image.Image", "fields": {
        "id": "string", "parent": "string", "comment": "string", "created": "time", "container": "string",
        "container_config": {"struct": "Config"}, "docker_version": "string", "author": "string",
        "config": {"struct": "Config"}, "architecture": "string", "variant": "string", "os": "string",
        "Size": "int64", "rootfs": {"struct": "RootFS"}, "history": {"slice": {"struct": "History"}},
        "os.version": "string", "os.features": {"slice": "string"}}},
    "RootFS": {"go": "image.RootFS", "fields": {
        "type": "string", "diff_ids": {"slice": "string:layer.DiffID"}}},
    "History": {"go": "image.History", "fields": {
        "created": "time", "author": "string", "created_by": "string", "comment": "string", "empty_layer": "bool"}},
}
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


@cache
def image_types() -> Types:
    return Types({**engine_types().structs, **_IMAGE_STRUCTS})


def decode_config(raw: bytes, *, check_digests: bool = True) -> dict[str, Any]:
    """An image config blob as dockerd accepts it (InvalidParameter otherwise); the normalised config.

    `check_digests`: also refuse rootfs.diff_ids that are not sha256 digests (a load compares them with
    the layers it reads instead, with dockerd's own message)."""
    doc = jsonload.unmarshal(raw)
    cfg = image_types().decode(doc, "Image") if doc is not None else {}
    if "rootfs" not in cfg:
        raise InvalidParameter("invalid image JSON, no RootFS key")
    if check_digests:
        for d in cfg["rootfs"].get("diff_ids") or []:
            if not _DIGEST.match(d):
                raise InvalidParameter(f"invalid diff id {d!r}: invalid checksum digest format")
    return cfg


def sanitize(config: Any) -> dict[str, Any]:
    """A stored config fit for the views: normalised when valid, else with its bad fields dropped."""
    types = image_types()
    try:  # the slow path: no schema compile at daemon start, when every stored config passes here
        out = types.decode_slow(config, "Image")
    except InvalidParameter:
        out = types.decode_lenient(config, "Image")
    rootfs = out.get("rootfs")
    if rootfs and not all(_DIGEST.match(d) for d in rootfs.get("diff_ids") or []):
        rootfs["diff_ids"] = []  # not layers this store could hold: the layer code needs digests
    return out
