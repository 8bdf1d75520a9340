"""Content-addressed blob store.

Owns ``<root>/blobs/sha256/<hex>`` (immutable blobs: manifests, image configs,
compressed layer tarballs) and ``<root>/ingest/`` (in-flight writes).  Blobs
become visible only after their digest has been verified, the data fsynced and
the file renamed into place, so a crash or an interrupted download never leaves
a half-written or corrupt blob under its final name.  Leftovers in ``ingest``
are removed by :meth:`ContentStore.cleanup_ingest` at daemon start.

A blob may hold a container's files or config (a commit's layer and image config): the store's
directories are 0700 and its files 0600.  A writer that must keep a new blob from the garbage
collector passes ``claim``: it is called with the verified digest before the blob appears under
its name (see :mod:`hatoba.storage.leases`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from .atomic import fsync_dir

__all__ = [
    "BlobNotFound",
    "ContentStore",
    "DigestMismatch",
    "InvalidDigest",
    "parse_digest",
    "sha256_digest",
]

_CHUNK = 1 << 20
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


class InvalidDigest(ValueError):
    """The string is not a ``sha256:<64 lowercase hex>`` digest."""


class DigestMismatch(ValueError):
    """Ingested data did not hash to the expected digest (or had the wrong size)."""

    def __init__(self, expected: str, actual: str, message: str | None = None) -> None:
        super().__init__(message or f"digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class BlobNotFound(FileNotFoundError):
    """No blob with this digest in the store."""


def parse_digest(digest: str) -> str:
    """Validate ``sha256:<hex>`` and return the hex part."""
    if not isinstance(digest, str):
        raise InvalidDigest(f"invalid digest {digest!r}")
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo != "sha256":
        raise InvalidDigest(f"unsupported or invalid digest {digest!r} (only sha256 is supported)")
    if not _HEX_RE.match(hexpart):
        raise InvalidDigest(f"invalid digest {digest!r}")
    return hexpart


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chunks(source: BinaryIO | Iterable[bytes] | bytes) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(_CHUNK)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in source:  # type: ignore[union-attr]
            if chunk:
                yield chunk


class ContentStore:
    """Blobs addressed by sha256 under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._blobs = os.path.join(self.root, "blobs", "sha256")
        self._ingest = os.path.join(self.root, "ingest")
        for d in (self.root, os.path.dirname(self._blobs), self._blobs, self._ingest):
            os.makedirs(d, mode=0o700, exist_ok=True)
            if os.stat(d).st_mode & 0o077:
                os.chmod(d, 0o700)

    # -- paths -----------------------------------------------------------
    def path(self, digest: str) -> str:
        """Final path of the blob (whether or not it exists)."""
        return os.path.join(self._blobs, parse_digest(digest))

    def has(self, digest: str) -> bool:
        try:
            return os.path.isfile(self.path(digest))
        except InvalidDigest:
            return False

    # -- writing ---------------------------------------------------------
    def put_bytes(self, data: bytes, claim: Callable[[str], None] | None = None) -> str:
        """Store ``data``; returns its digest."""
        digest, _ = self.ingest(data, claim=claim)
        return digest

    def ingest(
        self,
        source: BinaryIO | Iterable[bytes] | bytes,
        expected: str | None = None,
        expected_size: int | None = None,
        claim: Callable[[str], None] | None = None,
    ) -> tuple[str, int]:
        """Stream ``source`` (file object, iterable of bytes, or bytes) into the store.

        Data is written to ``ingest/<random>``, hashed on the fly, verified
        against ``expected`` (and ``expected_size`` when given), fsynced and
        only then renamed to its final name.  On mismatch the temporary file is
        deleted and :class:`DigestMismatch` is raised.  ``claim(digest)``, when given, runs
        before the blob appears under its name (or is found there already).  Returns ``(digest, size)``.
        """
        if expected is not None:
            parse_digest(expected)
        tmp = os.path.join(self._ingest, secrets.token_hex(16))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        h = hashlib.sha256()
        size = 0
        try:
            try:
                for chunk in _chunks(source):
                    h.update(chunk)
                    size += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            digest = "sha256:" + h.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            if expected_size is not None and size != expected_size:
                raise DigestMismatch(
                    expected or digest,
                    digest,
                    f"size mismatch for {expected or digest}: expected {expected_size} bytes, got {size}",
                )
            if claim is not None:
                claim(digest)
            final = self.path(digest)
            if os.path.isfile(final):
                os.unlink(tmp)  # identical content already present
            else:
                os.rename(tmp, final)
                fsync_dir(self._blobs)
            return digest, size
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def ingest_path(self, name: str) -> str:
        """A path under ``ingest/`` for a write the caller does itself (a resumable download)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name) or name.startswith("."):
            raise ValueError(f"invalid ingest name {name!r}")
        return os.path.join(self._ingest, name)

    def commit(self, tmp: str, digest: str, claim: Callable[[str], None] | None = None) -> None:
        """Move a file from ``ingest_path`` into the store as ``digest``.

        The caller has hashed the data as it wrote it and checked it against ``digest``: the file
        is fsynced and renamed, so the blob appears complete or not at all. ``claim`` as for `ingest`.
        """
        if claim is not None:
            claim(digest)
        final = self.path(digest)
        if os.path.dirname(os.path.abspath(tmp)) != self._ingest:
            raise ValueError(f"{tmp} is not in the ingest directory")
        fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.isfile(final):
            os.unlink(tmp)
            return
        os.rename(tmp, final)
        fsync_dir(self._blobs)

    # -- reading ---------------------------------------------------------
    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} not found") from None

    def list(self) -> Iterator[str]:
        """Digests of all stored blobs (unordered)."""
        try:
            entries = os.scandir(self._blobs)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if _HEX_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
                    yield "sha256:" + entry.name

    # -- removal ---------------------------------------------------------
    def delete(self, digest: str) -> bool:
        """Remove a blob; returns False if it was not present."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def cleanup_ingest(self) -> int:
        """Remove leftovers of interrupted ingests; returns how many were removed."""
        removed = 0
        with os.scandir(self._ingest) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        continue
                removed += 1
        return removed
