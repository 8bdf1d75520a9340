"""Docker/OCI layer tarballs: applying, diffing, change lists and plain tree tars.

Owns the tar <-> filesystem conversion:

* :func:`apply_layer` stream-extracts a (gzip/bzip2/xz or plain) layer tar into
  a directory, hashing the uncompressed stream to obtain the layer's diff_id.
  Whiteouts are converted either to overlayfs form (``whiteout_format="overlay"``,
  for per-layer overlay lower dirs) or applied directly (``"naive"``, for a
  flattened rootfs).
* :func:`write_diff` turns an overlayfs upper dir into a Docker layer tar.
* :func:`changes` computes ``docker diff`` output from an upper dir.
* :func:`tar_dir` tars a whole tree (``docker export``).

Safety: every filesystem operation made while extracting is relative to a
directory file descriptor obtained by walking the entry's parent components
with ``O_NOFOLLOW``; entries whose names are absolute or escape with ``..``,
hard links whose target escapes, and entries with a symlink among their parent
components are refused with :class:`LayerError` before anything is written for
that entry.  Nothing is ever created outside the destination, even if the
destination is concurrently modified (e.g. a running container's rootfs).
Tree walks for writing tars are fd-based as well and never follow symlinks.

The lower-layer lists taken by :func:`write_diff` and :func:`changes` use the
overlayfs order: ``lowers[0]`` is the topmost layer.

Limitations: AUFS hard-link metadata directories (``.wh..wh.plnk``) are skipped,
not resolved; overlay-private xattrs (``trusted.overlay.*``, ``user.overlay.*``)
in layer tars are ignored rather than applied.
"""

from __future__ import annotations

import base64
import bz2
import errno
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.parse
import zlib
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, Literal

__all__ = [
    "LayerError",
    "OPAQUE_WHITEOUT",
    "WHITEOUT_PREFIX",
    "apply_layer",
    "changes",
    "tar_dir",
    "write_diff",
]

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")

CHANGE_MODIFY = 0
CHANGE_ADD = 1
CHANGE_DELETE = 2

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = getattr(os, "O_PATH", 0o10000000) | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerError(Exception):
    """A layer (or archive) tar is malformed or unsafe to extract."""


# ---------------------------------------------------------------------------
# Streams


_Decompressor = Any  # zlib.Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor | _Finished


class _DecompressingReader:
    """File-like reader over a possibly compressed stream.

    Detects gzip/bzip2/xz by magic, decompresses incrementally with bounded
    output per step, and hashes/counts the *uncompressed* bytes produced.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0
        self._buf = bytearray()
        self._eof = False
        self._pending = b""
        head = b""
        while len(head) < 6:
            chunk = raw.read(6 - len(head))
            if not chunk:
                break
            head += chunk
        self._pending = head
        self.compression: str | None = None
        if head.startswith(b"\x1f\x8b"):
            self.compression = "gzip"
        elif head.startswith(b"BZh"):
            self.compression = "bzip2"
        elif head.startswith(b"\xfd7zXZ\x00"):
            self.compression = "xz"
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            raise LayerError("zstd-compressed layers are not supported")
        self._dec = self._new_decompressor() if self.compression else None

    def _new_decompressor(self) -> _Decompressor:
        if self.compression == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.compression == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def _raw_read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._raw.read(_CHUNK)

    def _produce(self) -> bytes:
        """Next chunk of uncompressed data; b"" at end of stream."""
        if self._dec is None:
            return self._raw_read()
        dec = self._dec
        while True:
            if isinstance(dec, _Finished):
                return b""
            if hasattr(dec, "unconsumed_tail"):  # zlib
                if dec.eof:
                    out = b""
                else:
                    data = dec.unconsumed_tail or self._raw_read()
                    if not data and not dec.unconsumed_tail:
                        raise LayerError("unexpected end of compressed layer stream")
                    out = dec.decompress(data, _CHUNK)
                finished = dec.eof
                unused = dec.unused_data if finished else b""
            else:
                if dec.eof:
                    out = b""
                elif dec.needs_input:
                    data = self._raw_read()
                    if not data:
                        raise LayerError("unexpected end of compressed layer stream")
                    out = dec.decompress(data, _CHUNK)
                else:
                    out = dec.decompress(b"", _CHUNK)
                finished = dec.eof
                unused = dec.unused_data if finished else b""
            if finished:
                # Concatenated members/streams: continue if another one follows.
                rest = unused
                while len(rest) < 3:
                    more = self._raw.read(_CHUNK)
                    if not more:
                        break
                    rest += more
                magic = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7z"}[self.compression or ""]
                if rest.startswith(magic):
                    self._pending = rest
                    dec = self._dec = self._new_decompressor()
                else:
                    self._dec = _Finished()  # trailing garbage/padding is ignored
                    return out
            if out:
                return out

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = self._produce()
            if not chunk:
                self._eof = True
                break
            self._hash.update(chunk)
            self.size += len(chunk)
            self._buf += chunk
        if n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _Finished:
    """Decompressor stand-in after the last member: produces nothing."""

    eof = True
    needs_input = False
    unused_data = b""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return b""


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


# ---------------------------------------------------------------------------
# Extraction


def _proc_path(dirfd: int, name: str | None = None) -> str:
    return f"/proc/self/fd/{dirfd}" + (f"/{name}" if name is not None else "")


def _ns_from_pax(member: tarfile.TarInfo, key: str, default: float | int) -> int:
    raw = member.pax_headers.get(key)
    if raw is not None:
        try:
            return int(Decimal(raw) * 1_000_000_000)
        except (InvalidOperation, ValueError):
            pass
    return int(Decimal(str(default)) * 1_000_000_000)


def _member_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            result[key[len("SCHILY.xattr.") :]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr.") :])
            try:
                result[name] = base64.b64decode(value + "=" * (-len(value) % 4))
            except ValueError:
                continue
    return {k: v for k, v in result.items() if not _private_xattr(k)}


def _private_xattr(name: str) -> bool:
    return name.startswith(("trusted.overlay.", "user.overlay.")) or name == "security.selinux"


def _set_xattrs(target: int | str, xattrs: dict[str, bytes], follow: bool = True) -> None:
    for name, value in xattrs.items():
        try:
            os.setxattr(target, name, value, follow_symlinks=follow)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                log.debug("ignoring xattr %s: %s", name, e)
                continue
            raise


WhiteoutFormat = Literal["overlay", "naive"]


class _Extractor:
    """Safe tar extraction into an open directory fd (see module docstring)."""

    def __init__(
        self,
        root_fd: int,
        *,
        whiteout_format: WhiteoutFormat | None,
        no_overwrite_dir_non_dir: bool = False,
        chown: tuple[int, int] | None = None,
        error: type[Exception] = LayerError,
    ) -> None:
        if whiteout_format not in (None, "overlay", "naive"):
            raise ValueError(f"unknown whiteout format {whiteout_format!r}")
        self.root_fd = root_fd
        self.whiteouts = whiteout_format
        self.no_overwrite_dir_non_dir = no_overwrite_dir_non_dir
        self.chown = chown
        self.error = error
        self.unpacked: set[str] = set()
        self.dir_times: list[tuple[str, int, int]] = []
        self._cache: tuple[str, int] | None = None  # (parent rel path, fd)

    # -- path handling ---------------------------------------------------
    def normalize(self, name: str, what: str = "entry") -> str | None:
        """Relative, normalised path of a tar name; None for the root itself."""
        if "\x00" in name:
            raise self.error(f"refusing {what} {name!r}: NUL in name")
        if name.startswith("/"):
            raise self.error(f"refusing {what} {name!r}: absolute path")
        norm = posixpath.normpath(name)
        if norm.startswith("/"):
            raise self.error(f"refusing {what} {name!r}: absolute path")
        if norm == ".." or norm.startswith("../"):
            raise self.error(f"refusing {what} {name!r}: path escapes the destination")
        if norm in (".", ""):
            return None
        return norm

    def _drop_cache(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def close(self) -> None:
        self._drop_cache()

    def open_dir(self, rel: str | None, *, create: bool, entry: str) -> int:
        """fd of directory ``rel`` (None = root), walked without following symlinks.

        The returned fd belongs to the caller unless it is ``self.root_fd``.
        """
        if rel is None:
            return self.root_fd
        cur = self.root_fd
        walked = ""
        try:
            for comp in rel.split("/"):
                walked = comp if not walked else f"{walked}/{comp}"
                try:
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                except FileNotFoundError:
                    if not create:
                        raise self.error(f"refusing {entry!r}: {walked!r} does not exist") from None
                    try:
                        os.mkdir(comp, 0o755, dir_fd=cur)
                        created = True
                    except FileExistsError:
                        created = False
                    self.unpacked.add(walked)
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                    if created:
                        os.chmod(nxt, 0o755)  # independent of the umask
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    try:
                        st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                    except OSError:
                        st = None
                    if st is not None and stat.S_ISLNK(st.st_mode):
                        raise self.error(
                            f"refusing {entry!r}: parent component {walked!r} is a symbolic link"
                        ) from None
                    raise self.error(
                        f"refusing {entry!r}: parent component {walked!r} is not a directory"
                    ) from None
                if cur != self.root_fd:
                    os.close(cur)
                cur = nxt
        except BaseException:
            if cur != self.root_fd:
                os.close(cur)
            raise
        return cur

    def parent_of(self, rel: str, *, create: bool, entry: str) -> tuple[int, str]:
        """(parent dir fd, basename) for ``rel``; the fd is cached, never close it."""
        parent, _, base = rel.rpartition("/")
        if not parent:
            return self.root_fd, base
        if self._cache is not None and self._cache[0] == parent:
            return self._cache[1], base
        fd = self.open_dir(parent, create=create, entry=entry)
        self._drop_cache()
        self._cache = (parent, fd)
        return fd, base

    def remove(self, dirfd: int, name: str, rel: str, st: os.stat_result | None = None) -> None:
        """Remove ``name`` (at ``rel``) from ``dirfd``, recursively, without following symlinks."""
        if st is None:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                return
        if stat.S_ISDIR(st.st_mode):
            # The cached parent fd may point into the tree being removed.
            if self._cache is not None and (self._cache[0] == rel or self._cache[0].startswith(rel + "/")):
                self._drop_cache()
            shutil.rmtree(name, dir_fd=dirfd)
        else:
            os.unlink(name, dir_fd=dirfd)

    # -- entries ---------------------------------------------------------
    def extract_all(self, tf: tarfile.TarFile) -> None:
        try:
            for member in tf:
                try:
                    self.extract(member, tf)
                except OSError as e:
                    raise self.error(f"failed to extract {member.name!r}: {e}") from e
            self.restore_dir_times()
        finally:
            self.close()

    def extract(self, member: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        name = member.name
        rel = self.normalize(name)
        if rel is None:
            return  # the root directory itself: leave the destination's metadata alone
        parent_rel, _, base = rel.rpartition("/")

        if self.whiteouts is not None and base.startswith(WHITEOUT_PREFIX):
            self.whiteout(rel, parent_rel, base, member)
            return
        if self.whiteouts is not None and rel.split("/", 1)[0].startswith(WHITEOUT_META_PREFIX):
            log.debug("skipping AUFS metadata entry %s", name)
            return

        link_target: str | None = None
        if member.islnk():
            link_target = self.normalize(member.linkname, f"hard link {name!r} to")
            if link_target is None:
                raise self.error(f"refusing hard link {name!r}: target is the destination root")
            if link_target == rel:
                return

        pfd, base = self.parent_of(rel, create=True, entry=name)
        try:
            existing: os.stat_result | None = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            is_dir = stat.S_ISDIR(existing.st_mode)
            if not (is_dir and member.isdir()):
                if self.no_overwrite_dir_non_dir:
                    if is_dir:
                        raise self.error(f"cannot overwrite directory {rel!r} with non-directory {name!r}")
                    if member.isdir():
                        raise self.error(f"cannot overwrite non-directory {rel!r} with directory {name!r}")
                self.remove(pfd, base, rel, existing)
                existing = None
        self.unpacked.add(rel)

        if member.isdir():
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._apply_meta_fd(fd, member, member.mode)
            finally:
                os.close(fd)
            self.dir_times.append(
                (
                    rel,
                    _ns_from_pax(member, "atime", member.mtime),
                    _ns_from_pax(member, "mtime", member.mtime),
                )
            )
        elif member.isreg():
            fd = os.open(
                base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd
            )
            try:
                src = tf.extractfile(member)
                if src is not None:
                    while True:
                        chunk = src.read(_CHUNK)
                        if not chunk:
                            break
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                self._apply_meta_fd(fd, member, member.mode)
                os.utime(fd, ns=self._times(member))
            finally:
                os.close(fd)
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=pfd)
            uid, gid = self.chown or (member.uid, member.gid)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            _set_xattrs(_proc_path(pfd, base), _member_xattrs(member), follow=False)
            os.utime(base, ns=self._times(member), dir_fd=pfd, follow_symlinks=False)
        elif member.islnk():
            assert link_target is not None
            tfd, tbase, owned = self._link_parent(link_target, f"{name} (hard link to {member.linkname})")
            try:
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise self.error(
                    f"refusing hard link {name!r}: target {member.linkname!r} does not exist"
                ) from None
            finally:
                if owned:
                    os.close(tfd)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            dev = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._apply_meta_path(pfd, base, member)
        else:
            log.debug("skipping unsupported tar entry type %r for %s", member.type, name)
            self.unpacked.discard(rel)

    def _link_parent(self, target: str, entry: str) -> tuple[int, str, bool]:
        """(fd, basename, fd-is-owned-by-caller) of a hard link target's parent."""
        parent, _, base = target.rpartition("/")
        if not parent:
            return self.root_fd, base, False
        if self._cache is not None and self._cache[0] == parent:
            return self._cache[1], base, False
        return self.open_dir(parent, create=False, entry=entry), base, True

    def _times(self, member: tarfile.TarInfo) -> tuple[int, int]:
        mtime = _ns_from_pax(member, "mtime", member.mtime)
        return _ns_from_pax(member, "atime", member.mtime), mtime

    def _owner(self, member: tarfile.TarInfo) -> tuple[int, int]:
        return self.chown or (member.uid, member.gid)

    def _apply_meta_fd(self, fd: int, member: tarfile.TarInfo, mode: int) -> None:
        uid, gid = self._owner(member)
        os.chown(fd, uid, gid)
        os.chmod(fd, mode & 0o7777)  # after chown, which clears setuid/setgid
        _set_xattrs(fd, _member_xattrs(member))  # after chown, which clears file caps

    def _apply_meta_path(self, pfd: int, base: str, member: tarfile.TarInfo) -> None:
        fd = os.open(base, _PATH_FLAGS, dir_fd=pfd)
        try:
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                raise self.error(f"refusing {member.name!r}: replaced by a symbolic link during extraction")
            path = _proc_path(fd)
            uid, gid = self._owner(member)
            os.chown(path, uid, gid)
            os.chmod(path, member.mode & 0o7777)
            _set_xattrs(path, _member_xattrs(member))
            os.utime(path, ns=self._times(member))
        finally:
            os.close(fd)

    # -- whiteouts -------------------------------------------------------
    def whiteout(self, rel: str, parent_rel: str, base: str, member: tarfile.TarInfo) -> None:
        pfd, _ = self.parent_of(rel, create=True, entry=member.name)
        if base == OPAQUE_WHITEOUT:
            if self.whiteouts == "overlay":
                os.setxattr(pfd, "trusted.overlay.opaque", b"y")
            else:
                prefix = f"{parent_rel}/" if parent_rel else ""
                for child in os.listdir(pfd):
                    if prefix + child not in self.unpacked:
                        self.remove(pfd, child, prefix + child)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            log.debug("skipping AUFS metadata entry %s", member.name)
            return
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", "..") or "/" in target:
            raise self.error(f"refusing invalid whiteout {member.name!r}")
        target_rel = f"{parent_rel}/{target}" if parent_rel else target
        self.remove(pfd, target, target_rel)
        if self.whiteouts == "overlay":
            os.mknod(target, stat.S_IFCHR | 0o000, 0, dir_fd=pfd)
            os.chown(target, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(target, ns=self._times(member), dir_fd=pfd, follow_symlinks=False)
        else:
            self.unpacked.discard(target_rel)

    # -- finishing -------------------------------------------------------
    def restore_dir_times(self) -> None:
        self._drop_cache()
        for rel, atime, mtime in reversed(self.dir_times):
            try:
                fd = self.open_dir(rel, create=False, entry=rel)
            except Exception:  # removed or replaced by a later entry
                continue
            try:
                os.utime(fd, ns=(atime, mtime))
            finally:
                if fd != self.root_fd:
                    os.close(fd)


def _extract_stream(
    fileobj: BinaryIO,
    root_fd: int,
    *,
    whiteout_format: WhiteoutFormat | None,
    no_overwrite_dir_non_dir: bool = False,
    chown: tuple[int, int] | None = None,
    error: type[Exception] = LayerError,
) -> tuple[str, int]:
    """Extract a (possibly compressed) tar stream into ``root_fd``; returns (sha256 of tar, size)."""
    extractor = _Extractor(
        root_fd,
        whiteout_format=whiteout_format,
        no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
        chown=chown,
        error=error,
    )
    try:
        reader = _DecompressingReader(fileobj)
        try:
            tf = tarfile.open(fileobj=reader, mode="r|", errors="surrogateescape")  # type: ignore[call-overload]
        except tarfile.ReadError as e:
            if reader.size == 0:  # an empty stream is an empty layer
                return reader.digest, 0
            raise error(f"invalid tar stream: {e}") from e
        try:
            extractor.extract_all(tf)
        finally:
            tf.close()
        reader.drain()
        return reader.digest, reader.size
    except tarfile.TarError as e:
        raise error(f"invalid tar stream: {e}") from e
    except LayerError as e:
        if error is not LayerError:
            raise error(str(e)) from e
        raise
    finally:
        extractor.close()


def apply_layer(
    fileobj: BinaryIO,
    dest: str,
    *,
    whiteout_format: WhiteoutFormat = "overlay",
) -> tuple[str, int]:
    """Extract a layer tar (gzip/bzip2/xz/plain, streamed) into ``dest``.

    Returns ``(diff_id, size)``: the sha256 digest and length of the
    uncompressed tar stream.  ``whiteout_format="overlay"`` stores whiteouts as
    overlayfs char devices 0:0 / ``trusted.overlay.opaque=y``; ``"naive"``
    applies them to ``dest`` (a flattened rootfs).  Raises :class:`LayerError`.
    """
    os.makedirs(dest, exist_ok=True)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _extract_stream(fileobj, root_fd, whiteout_format=whiteout_format)
    finally:
        os.close(root_fd)


# ---------------------------------------------------------------------------
# Tree walking and tar writing


class _Entry:
    """One filesystem object met during an fd-based walk."""

    __slots__ = ("dirfd", "name", "rel", "st")

    def __init__(self, dirfd: int, name: str, rel: str, st: os.stat_result) -> None:
        self.dirfd = dirfd
        self.name = name
        self.rel = rel
        self.st = st

    @property
    def proc_path(self) -> str:
        return _proc_path(self.dirfd, self.name)


def _sorted_names(dirfd: int) -> list[str]:
    return sorted(os.listdir(dirfd), key=os.fsencode)


def _walk(root_fd: int, prefix: str = "") -> Iterator[_Entry]:
    """Pre-order walk (names byte-sorted per directory) below ``root_fd``.

    Directories are yielded before their contents; symlinks are never
    followed; entries vanishing during the walk are skipped.  Yielded
    ``dirfd``s stay valid until the generator advances past the directory.
    """
    stack: list[tuple[int, str, Iterator[str]]] = [(root_fd, prefix, iter(_sorted_names(root_fd)))]
    try:
        while stack:
            dirfd, dprefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if dirfd != root_fd:
                    os.close(dirfd)
                continue
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            rel = dprefix + name
            yield _Entry(dirfd, name, rel, st)
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as e:
                    if e.errno == errno.ELOOP:  # swapped for a symlink: do not follow
                        continue
                    raise
                try:
                    names_sub = _sorted_names(sub)
                except OSError:
                    os.close(sub)
                    raise
                stack.append((sub, rel + "/", iter(names_sub)))
    finally:
        for dirfd, _, _ in stack:
            if dirfd != root_fd:
                os.close(dirfd)


def _read_xattrs(target: int | str) -> dict[str, bytes]:
    """Public xattrs of an fd, or of a path (not following a final symlink)."""
    out: dict[str, bytes] = {}
    follow = isinstance(target, int)  # fds cannot be combined with follow_symlinks=False
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return out
    for name in sorted(names):
        if _private_xattr(name):
            continue
        try:
            out[name] = os.getxattr(target, name, follow_symlinks=follow)
        except OSError:
            continue
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    for name in OVERLAY_OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


class _ExactReader:
    """Read exactly ``size`` bytes from fd (zero-padded if the file shrank)."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if n < 0 or n > self._left:
            n = self._left
        data = os.read(self._fd, n)
        if not data:
            data = b"\0" * n
        self._left -= len(data)
        return data


class _TarWriter:
    """Uncompressed PAX tar writer with hashing and inode-based hard links."""

    def __init__(self, out: BinaryIO, *, xattrs: bool = True) -> None:
        self.out = _HashingWriter(out)
        self.tf = tarfile.open(fileobj=self.out, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
        self.links: dict[tuple[int, int], str] = {}
        self.xattrs = xattrs

    def close(self) -> tuple[str, int]:
        self.tf.close()
        self.out.flush()
        return self.out.digest, self.out.size

    def _base_info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid = st.st_uid
        ti.gid = st.st_gid
        ti.uname = ""
        ti.gname = ""
        ti.mtime = int(st.st_mtime)
        return ti

    def add_marker(self, name: str, st: os.stat_result, mode: int) -> None:
        """An empty regular file entry (whiteout markers)."""
        ti = self._base_info(name, st)
        ti.type = tarfile.REGTYPE
        ti.mode = mode
        ti.size = 0
        self.tf.addfile(ti)

    def _add_xattrs(self, ti: tarfile.TarInfo, target: int | str) -> None:
        if self.xattrs:
            for key, value in _read_xattrs(target).items():
                ti.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")

    def add(self, entry: _Entry, name: str) -> None:
        """Add the object ``entry`` under archive name ``name``."""
        st = entry.st
        mode = st.st_mode
        ti = self._base_info(name, st)
        if stat.S_ISREG(mode):
            try:
                fd = os.open(
                    entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=entry.dirfd
                )
            except (FileNotFoundError, OSError) as e:
                if isinstance(e, FileNotFoundError) or e.errno == errno.ELOOP:
                    return  # vanished or swapped during the walk
                raise
            try:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode):
                    return
                key = (fst.st_dev, fst.st_ino)
                if fst.st_nlink > 1 and key in self.links:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = self.links[key]
                    ti.size = 0
                    self.tf.addfile(ti)
                    return
                if fst.st_nlink > 1:
                    self.links[key] = name
                self._add_xattrs(ti, fd)
                ti.type = tarfile.REGTYPE
                ti.size = fst.st_size
                self.tf.addfile(ti, _ExactReader(fd, fst.st_size))  # type: ignore[arg-type]
            finally:
                os.close(fd)
            return
        if not stat.S_ISLNK(mode):
            self._add_xattrs(ti, entry.proc_path)
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            try:
                ti.linkname = os.readlink(entry.name, dir_fd=entry.dirfd)
            except (FileNotFoundError, OSError):
                return
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor = os.major(st.st_rdev)
            ti.devminor = os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return  # sockets and other types cannot be represented
        self.tf.addfile(ti)


def write_diff(upper: str, lowers: list[str], out_fileobj: BinaryIO) -> tuple[str, int]:
    """Write the overlay upper dir ``upper`` as an uncompressed Docker layer tar.

    Whiteout char devices 0:0 become ``.wh.<name>`` entries and opaque
    directories get a ``.wh..wh..opq`` entry right after the directory entry.
    ``lowers`` is accepted for API symmetry; the upper dir alone defines the
    diff.  Returns ``(diff_id, size)`` of the written tar.
    """
    del lowers
    writer = _TarWriter(out_fileobj)
    root_fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in _walk(root_fd):
            st = entry.st
            if _is_whiteout(st):
                parent, _, base = entry.rel.rpartition("/")
                name = (parent + "/" if parent else "") + WHITEOUT_PREFIX + base
                writer.add_marker(name, st, 0o600)
                continue
            writer.add(entry, entry.rel)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(entry.proc_path):
                writer.add_marker(entry.rel + "/" + OPAQUE_WHITEOUT, st, stat.S_IMODE(st.st_mode) & 0o777)
    finally:
        os.close(root_fd)
    return writer.close()


def tar_dir(root: str, out_fileobj: BinaryIO) -> tuple[str, int]:
    """Tar the whole tree under ``root`` (``docker export``).

    Names are relative without a leading ``./``, owners numeric, entries
    byte-sorted per directory.  Returns ``(sha256 digest, size)`` of the tar.
    """
    writer = _TarWriter(out_fileobj)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in _walk(root_fd):
            writer.add(entry, entry.rel)
    finally:
        os.close(root_fd)
    return writer.close()


# ---------------------------------------------------------------------------
# docker diff


def _lower_state(lowers: list[str], rel: str) -> bool:
    """Whether ``rel`` exists in the union of ``lowers`` (topmost first)."""
    parts = rel.split("/")
    for layer in lowers:
        # Anything on the way that hides the rest of the stack?
        cur = layer
        hidden = False
        for i, comp in enumerate(parts):
            cur = os.path.join(cur, comp)
            try:
                st = os.lstat(cur)
            except (FileNotFoundError, NotADirectoryError):
                break
            if _is_whiteout(st):
                return False
            if i == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False  # a non-dir ancestor in an upper layer hides lower paths
            if _is_opaque(cur):
                hidden = True
        if hidden:
            return False
    return False


def _lower_children(lowers: list[str], rel: str) -> set[str]:
    """Names visible in directory ``rel`` of the union of ``lowers``."""
    names: set[str] = set()
    hidden: set[str] = set()
    for layer in lowers:
        path = os.path.join(layer, rel)
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.name in names or e.name in hidden:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            (hidden if _is_whiteout(st) else names).add(e.name)
        if _is_opaque(path):
            break
    return {n for n in names if _lower_state(lowers, f"{rel}/{n}")}


def changes(upper: str, lowers: list[str]) -> list[tuple[str, int]]:
    """``docker diff`` of an overlay upper dir: sorted ``[(abs path, kind)]``.

    kind 0 = modified (also exists in a lower), 1 = added, 2 = deleted
    (whiteout, or hidden in the lowers by an opaque directory).  Directories
    present in the upper dir (i.e. parents of changes) that exist in a lower
    are reported as modified.
    """
    result: dict[str, int] = {}
    root_fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in _walk(root_fd):
            rel = entry.rel
            path = "/" + rel
            if _is_whiteout(entry.st):
                result[path] = CHANGE_DELETE
                continue
            result[path] = CHANGE_MODIFY if _lower_state(lowers, rel) else CHANGE_ADD
            if stat.S_ISDIR(entry.st.st_mode) and _is_opaque(entry.proc_path):
                try:
                    present = set(os.listdir(entry.proc_path))
                except OSError:
                    present = set()
                for child in _lower_children(lowers, rel):
                    if child not in present:
                        result[f"{path}/{child}"] = CHANGE_DELETE
    finally:
        os.close(root_fd)
    return sorted(result.items(), key=lambda kv: os.fsencode(kv[0]))
