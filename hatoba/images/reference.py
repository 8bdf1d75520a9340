"""Image references, normalised the way Docker does.

`busybox` → `docker.io/library/busybox:latest`, shown in its familiar form `busybox:latest`.
The store keeps tags in familiar form, so `docker.io/tracerepo/x:v1` and `tracerepo/x:v1` are one tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hatoba.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_ID = re.compile(r"^(sha256:)?[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Familiar repository name: `busybox`, `tracerepo/x`, `localhost:5000/x`."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return f"{self.domain}/{self.path}"

    @property
    def full_repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def familiar(self) -> str:
        """`busybox:latest`, `x@sha256:…`; a bare name gets the tag `latest`."""
        s = self.repository
        if self.digest:
            return f"{s}@{self.digest}"
        return f"{s}:{self.tag or 'latest'}"

    def __str__(self) -> str:
        return self.familiar()


def is_id(s: str) -> bool:
    return bool(_ID.match(s))


def parse(ref: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise; raises InvalidParameter with Docker's texts."""
    if not ref or ref != ref.strip():
        raise InvalidParameter("invalid reference format")
    name, digest = ref, None
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidParameter("invalid reference format")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidParameter("invalid reference format")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if path != path.lower():
        raise InvalidParameter("invalid reference format: repository name must be lowercase")
    if not all(_COMPONENT.match(c) for c in path.split("/")):
        raise InvalidParameter("invalid reference format")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def familiar(ref: str) -> str:
    return parse(ref).familiar()
