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
import errno
import hashlib
import logging
import os
import posixpath
import queue
import shutil
import stat
import tarfile
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Literal, NoReturn

from hatoba.storage.compression import CompressionError, Decompressing

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


class _DecompressingReader:
    """Chunks of the uncompressed bytes of a possibly compressed layer (`compression.Decompressing`),
    hashed and counted: the diff id and size of what is extracted."""

    def __init__(self, raw: BinaryIO) -> None:
        self._src = Decompressing(raw, chunk=_CHUNK)
        self.compression: str | None = None if self._src.kind == "plain" else self._src.kind
        self._hash = hashlib.sha256()
        self.size = 0

    def next_chunk(self) -> bytes:
        """Next chunk of uncompressed data, hashed and counted; b"" at end of stream."""
        try:
            chunk = self._src.next_chunk()
        except CompressionError as e:
            raise LayerError(str(e)) from None
        if chunk:
            self._hash.update(chunk)
            self.size += len(chunk)
        return chunk

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _Pipe:
    """Calls ``produce`` in a worker thread, up to ``depth`` chunks ahead of the consumer.

    Reading the source, decompressing and hashing (zlib, bz2, lzma and hashlib
    release the GIL on large buffers) then overlap with the extraction, which is
    mostly system calls.  Exceptions of ``produce`` are raised by :meth:`get`.
    """

    def __init__(self, produce: Callable[[], bytes], depth: int = 8) -> None:
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self._stop = False
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(produce,), name="layer-stream", daemon=True)
        self._thread.start()

    def _run(self, produce: Callable[[], bytes]) -> None:
        try:
            while not self._stop:
                chunk = produce()
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop:
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> bytes:
        if self._done:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker and wait for it, but not forever: it may be blocked reading a source
        that only ends when the caller gives up on it (it then exits on its own)."""
        self._stop = True
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.05)


class _TarStream:
    """Sequential reader over the chunks of a :class:`_Pipe`, with the ``read``/``tell``
    that :meth:`tarfile.TarInfo.fromtarfile` needs and zero-copy writes of member data."""

    def __init__(self, get: Callable[[], bytes]) -> None:
        self._get = get
        self._buf = b""
        self._mv = memoryview(b"")
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self.eof = False

    def tell(self) -> int:
        return self._base + self._pos

    def _more(self) -> bool:
        """Make the next chunk current (the old one must be consumed); False at end of stream."""
        if self.eof:
            return False
        chunk = self._get()
        if not chunk:
            self.eof = True
            return False
        self._base += len(self._buf)
        self._buf = chunk
        self._mv = memoryview(chunk)
        self._pos = 0
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        pos = self._pos
        if 0 <= n <= len(self._buf) - pos:
            self._pos = pos + n
            return self._buf[pos : pos + n]
        parts = [self._buf[pos:]]
        have = len(parts[0])
        self._pos = len(self._buf)
        while (n < 0 or have < n) and self._more():
            take = len(self._buf) if n < 0 else min(n - have, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            have += take
        return b"".join(parts)

    def skip(self, n: int) -> bool:
        """Skip ``n`` bytes; False if the stream ended first."""
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail >= n:
                self._pos += n
                return True
            n -= avail
            self._pos = len(self._buf)
            if not self._more():
                return False
        return n == 0

    def drain(self) -> None:
        self._pos = len(self._buf)
        while self._more():
            self._pos = len(self._buf)

    def write_to(self, fd: int, n: int, offset: int | None = None) -> None:
        """Write the next ``n`` bytes to ``fd`` (at ``offset`` with pwrite when given)."""
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail <= 0:
                if not self._more():
                    raise tarfile.ReadError("unexpected end of data")
                continue
            take = n if n < avail else avail
            view = self._mv[self._pos : self._pos + take]
            self._pos += take
            n -= take
            while view:
                if offset is None:
                    view = view[os.write(fd, view) :]
                else:
                    w = os.pwrite(fd, view, offset)
                    offset += w
                    view = view[w:]


_FAST_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
# header fields holding numbers: mode, uid, gid, size, mtime, chksum, devmajor, devminor
_NUMBER_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156), (329, 337), (337, 345))


def _fast_header(buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo | None:
    """``TarInfo.frombuf`` for the common header (a file, directory, symlink or hard link, octal
    numbers, unsigned checksum), or None: the caller then lets tarfile parse it (and raise)."""
    if len(buf) != tarfile.BLOCKSIZE or buf[156:157] not in _FAST_TYPES:
        return None
    nums = []
    for a, b in _NUMBER_FIELDS:
        field = buf[a:b]
        if field[0] in (0o200, 0o377):  # base-256
            return None
        end = field.find(b"\0")
        if end != -1:
            field = field[:end]
        try:
            nums.append(int(field.strip() or b"0", 8))
        except ValueError:
            return None
    mode, uid, gid, size, mtime, chksum, devmajor, devminor = nums
    if chksum != 256 + sum(buf) - sum(buf[148:156]):
        return None

    def text(a: int, b: int) -> str:
        field = buf[a:b]
        end = field.find(b"\0")
        return (field if end == -1 else field[:end]).decode(encoding, errors)

    info = tarfile.TarInfo(text(0, 100))
    info.mode, info.uid, info.gid, info.size, info.mtime, info.chksum = mode, uid, gid, size, mtime, chksum
    info.type = buf[156:157]
    info.linkname = text(157, 257)
    info.uname = text(265, 297)
    info.gname = text(297, 329)
    info.devmajor, info.devminor = devmajor, devminor
    prefix = text(345, 500)
    if info.type == tarfile.AREGTYPE and info.name.endswith("/"):
        info.type = tarfile.DIRTYPE
    if info.isdir():
        info.name = info.name.rstrip("/")
    if prefix:
        info.name = prefix + "/" + info.name
    return info


class _TarHeaders:
    """What :meth:`tarfile.TarInfo.fromtarfile` uses of a ``TarFile``, over a :class:`_TarStream`.

    tarfile keeps parsing the headers (ustar, GNU long names and sparse maps, PAX
    local and global headers); the member data never goes through tarfile's
    stream buffering, which copies the rest of its buffer on every read.
    """

    def __init__(self, stream: _TarStream) -> None:
        self.fileobj = stream
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}
        self.offset = 0  # where the next header starts (set by TarInfo._proc_member)

    def members(self) -> Iterator[tarfile.TarInfo]:
        """The members, as ``TarFile.next`` finds them in stream mode (without ignore_zeros)."""
        stream = self.fileobj
        while True:
            pos = stream.tell()
            if self.offset != pos:
                if self.offset < pos or not stream.skip(self.offset - pos):
                    raise tarfile.ReadError("unexpected end of data")
            start = self.offset
            try:
                buf = stream.read(tarfile.BLOCKSIZE)
                info = _fast_header(buf, self.encoding, self.errors)
                if info is None:  # what TarInfo.fromtarfile does
                    info = tarfile.TarInfo.frombuf(buf, self.encoding, self.errors)
                    info.offset = start
                    info = info._proc_member(self)  # type: ignore[attr-defined]
                else:  # what TarInfo._proc_builtin does
                    info.offset = start
                    info.offset_data = start + tarfile.BLOCKSIZE
                    self.offset = info.offset_data + (info._block(info.size) if info.isreg() else 0)  # type: ignore[attr-defined]
                    if self.pax_headers:  # global ones
                        info._apply_pax_info(self.pax_headers, self.encoding, self.errors)  # type: ignore[attr-defined]
                        if info.isdir():
                            info.name = info.name.rstrip("/")
            except tarfile.EOFHeaderError:
                return
            except tarfile.EmptyHeaderError:
                return  # an empty stream is an empty layer; elsewhere, the end
            except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as e:
                if start == 0:
                    raise tarfile.ReadError(str(e)) from None
                return
            except tarfile.SubsequentHeaderError as e:
                raise tarfile.ReadError(str(e)) from None
            yield info


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


def _process_creds() -> tuple[int, int, int | None]:
    """(fsuid, fsgid, umask) of this process; umask None when unknown."""
    uid, gid, umask = os.geteuid(), os.getegid(), None
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    umask = int(line.split()[1], 8)
                elif line.startswith(b"Uid:"):
                    uid = int(line.split()[4])
                elif line.startswith(b"Gid:"):
                    gid = int(line.split()[4])
    except (OSError, ValueError, IndexError):
        umask = None
    return uid, gid, umask


class _Dir:
    """A cached directory fd and what a new inode created in it gets."""

    __slots__ = ("fd", "gid", "plain")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        st = os.fstat(fd)
        # setgid directory: new entries get its group (and new directories the setgid bit)
        self.gid: int | None = st.st_gid if st.st_mode & stat.S_ISGID else None
        # a default ACL replaces the umask for new entries
        try:
            os.getxattr(fd, "system.posix_acl_default")
            acl = True
        except OSError:
            acl = False
        self.plain = self.gid is None and not acl


_MAX_CACHED_DIRS = 64
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX

WhiteoutFormat = Literal["overlay", "naive"]


class _Extractor:
    """Safe tar extraction into an open directory fd (see module docstring).

    Open fds of recently used directories are cached by relative path (tar
    entries come grouped by directory): every directory is reached by a walk
    with ``O_NOFOLLOW`` from the root or from a cached ancestor, and a cached
    fd is dropped as soon as an entry removes (or replaces) that directory, so
    a later symlink at the same path is never mistaken for it.  Removal is the
    only way an entry can take the place of an existing directory.

    Per regular file the common case costs one ``open(O_CREAT|O_EXCL)``, the
    writes, ``futimens`` and ``close``: an entry in the way is only looked at
    when the create fails with EEXIST, the owner is only changed when it
    differs from what the kernel gives a new inode (fsuid, and fsgid or the
    setgid parent's group), and the mode is given to ``open``/``mkdir`` when
    the umask cannot alter it (no special bits, no default ACL on the parent).
    """

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
        self.dir_times: dict[str, tuple[int, int]] = {}
        self._dirs: OrderedDict[str, _Dir] = OrderedDict()
        self._root = _Dir(root_fd)
        self._fsuid, self._fsgid, self._umask = _process_creds()

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

    def close(self) -> None:
        dirs, self._dirs = self._dirs, OrderedDict()
        for d in dirs.values():
            os.close(d.fd)

    def _remember(self, rel: str, fd: int) -> _Dir:
        """Cache ``fd`` (now owned by the cache) as directory ``rel``; evicts the least recently used."""
        try:
            d = _Dir(fd)
        except BaseException:
            os.close(fd)
            raise
        old = self._dirs.pop(rel, None)
        if old is not None:
            os.close(old.fd)
        self._dirs[rel] = d
        if len(self._dirs) > _MAX_CACHED_DIRS:
            _, lru = self._dirs.popitem(last=False)
            os.close(lru.fd)
        return d

    def _forget(self, rel: str) -> None:
        """Drop cached fds and pending times of directory ``rel`` and everything below it."""
        prefix = rel + "/"
        for key in [k for k in self._dirs if k == rel or k.startswith(prefix)]:
            os.close(self._dirs.pop(key).fd)
        for key in [k for k in self.dir_times if k == rel or k.startswith(prefix)]:
            del self.dir_times[key]

    def _open_component(self, pfd: int, comp: str, walked: str, *, create: bool, entry: str) -> int:
        """fd of directory ``comp`` in ``pfd`` (``walked`` is its relative path), never via a symlink."""
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                raise self.error(f"refusing {entry!r}: {walked!r} does not exist") from None
        except OSError as e:
            self._component_error(e, pfd, comp, walked, entry)
        try:
            os.mkdir(comp, 0o755, dir_fd=pfd)
            created = True
        except FileExistsError:
            created = False
        self.unpacked.add(walked)
        try:
            fd = os.open(comp, _DIR_FLAGS, dir_fd=pfd)
        except OSError as e:
            self._component_error(e, pfd, comp, walked, entry)
        if created:
            try:
                os.chmod(fd, 0o755)  # independent of the umask
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _component_error(self, e: OSError, pfd: int, comp: str, walked: str, entry: str) -> NoReturn:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise e
        try:
            st = os.stat(comp, dir_fd=pfd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise self.error(f"refusing {entry!r}: parent component {walked!r} is a symbolic link") from None
        raise self.error(f"refusing {entry!r}: parent component {walked!r} is not a directory") from None

    def dir_of(self, rel: str, *, create: bool, entry: str) -> _Dir:
        """Directory ``rel`` ("" = the root), walked without following symlinks.

        Every directory on the way is cached; the result is borrowed from the
        cache and stays valid until the next call that may cache another
        directory (it is then the most recently used entry, never evicted first).
        """
        if not rel:
            return self._root
        d = self._dirs.get(rel)
        if d is not None:
            self._dirs.move_to_end(rel)
            return d
        cur = self._root
        done = ""
        probe = rel
        while True:  # the longest cached ancestor
            i = probe.rfind("/")
            if i < 0:
                break
            probe = probe[:i]
            d = self._dirs.get(probe)
            if d is not None:
                self._dirs.move_to_end(probe)
                cur, done = d, probe
                break
        walked = done
        for comp in (rel[len(done) + 1 :] if done else rel).split("/"):
            walked = f"{walked}/{comp}" if walked else comp
            fd = self._open_component(cur.fd, comp, walked, create=create, entry=entry)
            cur = self._remember(walked, fd)
        return cur

    def open_dir(self, rel: str, *, entry: str) -> tuple[int, bool]:
        """(fd, owned) of existing directory ``rel``, without caching anything on the way."""
        if not rel:
            return self.root_fd, False
        d = self._dirs.get(rel)
        if d is not None:
            return d.fd, False
        cur = self.root_fd
        walked = ""
        try:
            for comp in rel.split("/"):
                walked = comp if not walked else f"{walked}/{comp}"
                nxt = self._open_component(cur, comp, walked, create=False, entry=entry)
                if cur != self.root_fd:
                    os.close(cur)
                cur = nxt
        except BaseException:
            if cur != self.root_fd:
                os.close(cur)
            raise
        return cur, True

    def remove(self, dirfd: int, name: str, rel: str, st: os.stat_result | None = None) -> None:
        """Remove ``name`` (at ``rel``) from ``dirfd``, recursively, without following symlinks."""
        if st is None:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                return
        if stat.S_ISDIR(st.st_mode):
            self._forget(rel)  # cached fds may point into the tree being removed
            shutil.rmtree(name, dir_fd=dirfd)
        else:
            os.unlink(name, dir_fd=dirfd)

    def _make_room(self, pfd: int, base: str, rel: str, name: str, is_dir: bool) -> bool:
        """Deal with whatever is at ``rel``: True if it is a directory to keep for a directory entry."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        existing_dir = stat.S_ISDIR(st.st_mode)
        if existing_dir and is_dir:
            return True
        if self.no_overwrite_dir_non_dir:
            if existing_dir:
                raise self.error(f"cannot overwrite directory {rel!r} with non-directory {name!r}")
            if is_dir:
                raise self.error(f"cannot overwrite non-directory {rel!r} with directory {name!r}")
        self.remove(pfd, base, rel, st)
        return False

    # -- entries ---------------------------------------------------------
    def extract_all(self, members: Iterator[tarfile.TarInfo], stream: _TarStream) -> None:
        try:
            for member in members:
                try:
                    self.extract(member, stream)
                except OSError as e:
                    raise self.error(f"failed to extract {member.name!r}: {e}") from e
            self.restore_dir_times()
        finally:
            self.close()

    def extract(self, member: tarfile.TarInfo, stream: _TarStream) -> None:
        name = member.name
        rel = self.normalize(name)
        if rel is None:
            return  # the root directory itself: leave the destination's metadata alone
        parent_rel, _, base = rel.rpartition("/")

        if self.whiteouts is not None:
            if base.startswith(WHITEOUT_PREFIX):
                self.whiteout(rel, parent_rel, base, member)
                return
            if rel.split("/", 1)[0].startswith(WHITEOUT_META_PREFIX):
                log.debug("skipping AUFS metadata entry %s", name)
                return

        if member.isreg():
            parent = self.dir_of(parent_rel, create=True, entry=name)
            self.unpacked.add(rel)
            self._file(parent, base, rel, member, stream)
        elif member.isdir():
            parent = self.dir_of(parent_rel, create=True, entry=name)
            self.unpacked.add(rel)
            self._dir(parent, base, rel, member)
        elif member.issym():
            parent = self.dir_of(parent_rel, create=True, entry=name)
            self.unpacked.add(rel)
            self._symlink(parent, base, rel, member)
        elif member.islnk():
            link_target = self.normalize(member.linkname, f"hard link {name!r} to")
            if link_target is None:
                raise self.error(f"refusing hard link {name!r}: target is the destination root")
            if link_target == rel:
                return
            pfd = self.dir_of(parent_rel, create=True, entry=name).fd
            self._make_room(pfd, base, rel, name, False)
            self.unpacked.add(rel)
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
            pfd = self.dir_of(parent_rel, create=True, entry=name).fd
            self.unpacked.add(rel)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            dev = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
            try:
                os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            except FileExistsError:
                self._make_room(pfd, base, rel, name, False)
                os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._apply_meta_path(pfd, base, member)
        else:
            log.debug("skipping unsupported tar entry type %r for %s", member.type, name)

    def _fast_mode(self, parent: _Dir, mode: int) -> bool:
        """Whether a new inode created with ``mode`` in ``parent`` gets exactly ``mode``."""
        umask = self._umask
        return parent.plain and umask is not None and not (mode & _SPECIAL_BITS) and not (mode & umask)

    def _chown_needed(self, parent: _Dir, uid: int, gid: int) -> bool:
        """Whether a new inode in ``parent`` is owned by someone else than ``uid:gid``."""
        return uid != self._fsuid or gid != (self._fsgid if parent.gid is None else parent.gid)

    def _file(self, parent: _Dir, base: str, rel: str, member: tarfile.TarInfo, stream: _TarStream) -> None:
        pfd = parent.fd
        mode = member.mode & 0o7777
        fast = self._fast_mode(parent, mode)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        cmode = mode if fast else 0o600
        try:
            fd = os.open(base, flags, cmode, dir_fd=pfd)
        except FileExistsError:
            self._make_room(pfd, base, rel, member.name, False)
            fd = os.open(base, flags, cmode, dir_fd=pfd)
        try:
            gap = member.offset_data - stream.tell()
            if gap and (gap < 0 or not stream.skip(gap)):
                raise tarfile.ReadError("unexpected end of data")
            if member.sparse is not None:
                for offset, size in member.sparse:
                    stream.write_to(fd, size, offset)
                os.ftruncate(fd, member.size)
            elif member.size:
                stream.write_to(fd, member.size)
            uid, gid = self._owner(member)
            if self._chown_needed(parent, uid, gid):
                os.fchown(fd, uid, gid)
            if not fast:
                os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
            if member.pax_headers:
                _set_xattrs(fd, _member_xattrs(member))  # after chown and writes, which clear file caps
            os.utime(fd, ns=self._times(member))
        finally:
            os.close(fd)

    def _dir(self, parent: _Dir, base: str, rel: str, member: tarfile.TarInfo) -> None:
        pfd = parent.fd
        mode = member.mode & 0o7777
        fast = self._fast_mode(parent, mode)
        created = True
        try:
            os.mkdir(base, mode if fast else 0o700, dir_fd=pfd)
        except FileExistsError:
            if self._make_room(pfd, base, rel, member.name, True):
                created = False
            else:
                os.mkdir(base, mode if fast else 0o700, dir_fd=pfd)
        fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        try:
            uid, gid = self._owner(member)
            if not created or self._chown_needed(parent, uid, gid):
                os.fchown(fd, uid, gid)
            if not created or not fast:
                os.fchmod(fd, mode)
            if member.pax_headers:
                _set_xattrs(fd, _member_xattrs(member))
        except BaseException:
            os.close(fd)
            raise
        self._remember(rel, fd)  # its entries usually come next
        self.dir_times[rel] = self._times(member)

    def _symlink(self, parent: _Dir, base: str, rel: str, member: tarfile.TarInfo) -> None:
        pfd = parent.fd
        try:
            os.symlink(member.linkname, base, dir_fd=pfd)
        except FileExistsError:
            self._make_room(pfd, base, rel, member.name, False)
            os.symlink(member.linkname, base, dir_fd=pfd)
        uid, gid = self._owner(member)
        if self._chown_needed(parent, uid, gid):
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
        if member.pax_headers:
            _set_xattrs(_proc_path(pfd, base), _member_xattrs(member), follow=False)
        os.utime(base, ns=self._times(member), dir_fd=pfd, follow_symlinks=False)

    def _link_parent(self, target: str, entry: str) -> tuple[int, str, bool]:
        """(fd, basename, fd-is-owned-by-caller) of a hard link target's parent."""
        parent, _, base = target.rpartition("/")
        fd, owned = self.open_dir(parent, entry=entry)
        return fd, base, owned

    def _times(self, member: tarfile.TarInfo) -> tuple[int, int]:
        pax = member.pax_headers
        if not pax or ("mtime" not in pax and "atime" not in pax):
            mtime = member.mtime
            if type(mtime) is int:
                ns = mtime * 1_000_000_000
                return ns, ns
        mtime = _ns_from_pax(member, "mtime", member.mtime)
        return _ns_from_pax(member, "atime", member.mtime), mtime

    def _owner(self, member: tarfile.TarInfo) -> tuple[int, int]:
        return self.chown or (member.uid, member.gid)

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
        pfd = self.dir_of(parent_rel, create=True, entry=member.name).fd
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
        """Set the recorded directory times, now that nothing is added to them any more."""
        for rel, times in self.dir_times.items():
            parent, _, base = rel.rpartition("/")
            try:
                pfd = self.dir_of(parent, create=False, entry=rel).fd
                os.utime(base, ns=times, dir_fd=pfd, follow_symlinks=False)
            except (LayerError, self.error, FileNotFoundError, NotADirectoryError):
                continue  # changed under us (a concurrently modified destination)


def _extract_stream(
    fileobj: BinaryIO,
    root_fd: int,
    *,
    whiteout_format: WhiteoutFormat | None,
    no_overwrite_dir_non_dir: bool = False,
    chown: tuple[int, int] | None = None,
    error: type[Exception] = LayerError,
) -> tuple[str, int]:
    """Extract a (possibly compressed) tar stream into ``root_fd``; returns (sha256 of tar, size).

    Reading, decompressing and hashing run in a worker thread (:class:`_Pipe`).
    """
    extractor = _Extractor(
        root_fd,
        whiteout_format=whiteout_format,
        no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
        chown=chown,
        error=error,
    )
    pipe: _Pipe | None = None
    try:
        reader = _DecompressingReader(fileobj)
        pipe = _Pipe(reader.next_chunk)
        stream = _TarStream(pipe.get)
        extractor.extract_all(_TarHeaders(stream).members(), stream)
        stream.drain()  # the rest (padding, trailing data) is part of the diff_id
        return reader.digest, reader.size
    except tarfile.TarError as e:
        raise error(f"invalid tar stream: {e}") from e
    except LayerError as e:
        if error is not LayerError:
            raise error(str(e)) from e
        raise
    finally:
        extractor.close()
        if pipe is not None:
            pipe.close()


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
