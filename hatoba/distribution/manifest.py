"""Manifests: media types, the Accept list, parsing, and platform selection in lists / indexes.

Docker schema 2 and OCI image manifests are pulled; a manifest list or OCI index is resolved to
the entry for the requested platform (linux/amd64 on this host unless `--platform` says
otherwise); schema 1 is refused with a clear message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from hatoba.errors import HatobaError, InvalidParameter, NotFound
from hatoba.images.mediatypes import (  # noqa: F401  (the registry client's names for them)
    ACCEPT,
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    SCHEMA1,
    SCHEMA1_SIGNED,
)


class ManifestError(HatobaError):
    pass


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    urls: tuple[str, ...] = ()
    annotations: dict | None = None

    @classmethod
    def of(cls, d: dict) -> Descriptor:
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
            raise ManifestError("invalid manifest: descriptor without a digest")
        return cls(str(d.get("mediaType", "")), d["digest"], int(d.get("size", -1)), d.get("platform"),
                   tuple(d.get("urls") or ()), d.get("annotations"))


@dataclass(frozen=True)
class Manifest:
    media_type: str
    raw: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()  # for lists / indexes

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse(raw: bytes, content_type: str = "", ref: str = "") -> Manifest:
    """Parse a manifest body; schema 1 raises ManifestError with an explanation."""
    ct = content_type.split(";", 1)[0].strip().lower()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ManifestError(f"invalid manifest for {ref or 'image'}: not JSON") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"invalid manifest for {ref or 'image'}")
    mt = doc.get("mediaType") or ""
    if not mt:
        if doc.get("schemaVersion") == 1:
            mt = SCHEMA1
        elif ct in MANIFEST_TYPES + INDEX_TYPES:
            mt = ct
        elif "manifests" in doc:
            mt = OCI_INDEX
        elif "config" in doc:
            mt = OCI_MANIFEST
        else:
            mt = ct
    if mt in (SCHEMA1, SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise ManifestError(
            f"{ref or 'the image'} uses the Docker Image manifest version 2, schema 1 format, which hatoba "
            "does not support (it was deprecated and removed from Docker). Ask the author of the image to "
            "push it again as Docker manifest v2 schema 2 or OCI.")
    if mt in INDEX_TYPES:
        return Manifest(mt, raw, manifests=tuple(Descriptor.of(m) for m in doc.get("manifests") or []))
    if mt in MANIFEST_TYPES:
        if "config" not in doc:
            raise ManifestError(f"invalid manifest for {ref or 'image'}: no config")
        return Manifest(mt, raw, config=Descriptor.of(doc["config"]),
                        layers=tuple(Descriptor.of(x) for x in doc.get("layers") or []))
    raise ManifestError(f"unsupported manifest media type {mt or ct!r} for {ref or 'image'}")


# ---- platforms -------------------------------------------------------------------------------------

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
         "i386": "386", "i686": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(x for x in (self.os, self.architecture, self.variant) if x)


def host_platform() -> Platform:
    arch = _ARCH.get(os.uname().machine, os.uname().machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


def parse_platform(spec: str | None) -> Platform | None:
    """`linux/amd64`, `linux/arm64/v8`, `amd64`; None for an empty spec."""
    if not spec:
        return None
    parts = spec.strip().lower().split("/")
    if len(parts) == 1:
        return Platform("linux", _ARCH.get(parts[0], parts[0]))
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f'"{spec}": unknown operating system or architecture: invalid argument')
    arch = _ARCH.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    return Platform(parts[0], arch, variant)


def _variant_ok(want: Platform, have: str) -> bool:
    if not want.variant:
        return True
    if want.architecture == "arm64" and want.variant == "v8":
        return have in ("", "v8")
    return have == want.variant


def select(index: Manifest, want: Platform | None) -> Descriptor:
    """The index entry for `want` (default: this host); NotFound with Docker's message otherwise."""
    target = want or host_platform()
    best: Descriptor | None = None
    for d in index.manifests:
        p = d.platform or {}
        if (d.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if p.get("os", "") != target.os:
            continue
        if _ARCH.get(p.get("architecture", ""), p.get("architecture", "")) != target.architecture:
            continue
        if not _variant_ok(target, p.get("variant", "")):
            continue
        if best is None or (p.get("variant", "") == target.variant and (best.platform or {}).get("variant", "")
                            != target.variant):
            best = d
    if best is None:
        raise NotFound(f"no matching manifest for {target} in the manifest list entries")
    return best


def check_config_platform(config: dict, want: Platform | None, ref: str) -> None:
    """With an explicit --platform, refuse an image built for another one (as dockerd does)."""
    if want is None:
        return
    have = Platform(str(config.get("os", "")), _ARCH.get(config.get("architecture", ""),
                                                          str(config.get("architecture", ""))),
                    str(config.get("variant", "")))
    if have.os != want.os or have.architecture != want.architecture or not _variant_ok(want, have.variant):
        raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                       f"wanted {want}, actual: {have}")


def build(config: Descriptor, layers: list[Descriptor], oci: bool = False) -> bytes:
    """A schema 2 (or OCI) image manifest, indented as dockerd writes it."""
    def desc(d: Descriptor) -> dict:
        return {"mediaType": d.media_type, "size": d.size, "digest": d.digest}

    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
           "config": desc(config), "layers": [desc(x) for x in layers]}
    return json.dumps(doc, indent=3).encode()


def check_media_type(mt: str) -> None:
    if mt and mt not in LAYER_TYPES:
        raise ManifestError(f"unsupported layer media type {mt!r}")
