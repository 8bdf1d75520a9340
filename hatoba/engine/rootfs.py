"""A container's filesystem seen from the API: `docker diff`, `docker export` and `docker cp`
(HEAD/GET/PUT /containers/{id}/archive).

The rootfs is mounted for the operation when the container is not running and unmounted after.
Archives are produced into a temporary file inside the mount, then streamed from it, so the mount
is never held while a slow client reads. Errors name container paths only, never host paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound
from hatoba.storage import archive as archive_mod
from hatoba.storage import layers

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager

_CHUNK = 1 << 20

# Bind-mount targets the runtime creates in the rootfs; dockerd keeps them in an "init" layer, so
# they (and a parent directory changed only by them) never show up in `docker diff`.
_MOUNTPOINTS = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv"}


def hide_mountpoints(out: list[tuple[str, int]]) -> list[tuple[str, int]]:
    hidden = [p for p, k in out if p in _MOUNTPOINTS and k == layers.CHANGE_ADD]
    if not hidden:
        return out
    keep = [(p, k) for p, k in out if p not in hidden]
    for parent in {os.path.dirname(p) for p in hidden}:
        if not any(p.startswith(parent + "/") for p, _ in keep):
            keep = [(p, k) for p, k in keep if not (p == parent and k == layers.CHANGE_MODIFY)]
    return keep


@contextlib.asynccontextmanager
async def mounted(mgr: Manager, c: Container) -> AsyncIterator[str]:
    """The container's rootfs path, mounted for the duration unless the container keeps it mounted."""
    snaps = mgr.snapshots
    if snaps.is_mounted(c.id):
        yield snaps.rootfs_path(c.id)
        return
    try:
        path = snaps.mount(c.id, c.chain)
    except OSError as e:
        raise HatobaError(f"error mounting the root filesystem of container {c.id[:12]}: "
                          f"{os.strerror(e.errno) if e.errno else 'unknown error'}") from None
    try:
        yield path
    finally:
        if not c.running:
            snaps.unmount(c.id)


def path_error(c: Container, path: str, e: OSError) -> HatobaError:
    """A container-path error in Docker's words, without the host path of the rootfs."""
    if isinstance(e, FileNotFoundError) or e.errno == errno.ENOENT:
        return NotFound(f"Could not find the file {path} in container {c.name}")
    if isinstance(e, NotADirectoryError) or e.errno == errno.ENOTDIR:
        return InvalidParameter(f"lstat {path}: not a directory")
    if e.errno == errno.ELOOP:
        return InvalidParameter(f"lstat {path}: too many levels of symbolic links")
    if e.errno == errno.EINVAL:  # the path changed kind while it was resolved (the container is writing it)
        return Conflict(f"{path}: changed while it was being read, try again")
    if e.errno == errno.EACCES or e.errno == errno.EPERM:
        return HatobaError(f"{path}: permission denied")
    return HatobaError(f"{path}: {os.strerror(e.errno) if e.errno else 'I/O error'}")


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    f.seek(0)
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return
        yield chunk


async def _iter_tmp(tmp: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        for chunk in _chunks(tmp):
            yield chunk
    finally:
        tmp.close()


async def changes(mgr: Manager, c: Container) -> list[dict[str, Any]] | None:
    out = hide_mountpoints(mgr.snapshots.changes(c.id))
    return [{"Path": p, "Kind": k} for p, k in out] or None


async def export(mgr: Manager, c: Container) -> AsyncIterator[bytes]:
    """The rootfs as a tar stream; the tar is made before the first chunk is returned."""
    tmp = tempfile.TemporaryFile()
    try:
        async with mounted(mgr, c) as root:
            await asyncio.to_thread(layers.tar_dir, root, tmp)
    except BaseException:
        tmp.close()
        raise
    mgr.events.emit("container", "export", c.id, c.event_attrs())
    return _iter_tmp(tmp)


async def stat(mgr: Manager, c: Container, path: str) -> dict[str, Any]:
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    async with mounted(mgr, c) as root:
        try:
            return await asyncio.to_thread(archive_mod.stat_path, root, path)
        except OSError as e:
            raise path_error(c, path, e) from None
        except archive_mod.ArchiveError as e:
            raise InvalidParameter(str(e)) from None


async def get(mgr: Manager, c: Container, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
    """`docker cp` out of the container: the path's stat and the tar of it."""
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    tmp = tempfile.TemporaryFile()
    try:
        async with mounted(mgr, c) as root:
            try:
                st = await asyncio.to_thread(archive_mod.archive_path, root, path, tmp)
            except OSError as e:
                raise path_error(c, path, e) from None
            except archive_mod.ArchiveError as e:
                raise InvalidParameter(str(e)) from None
    except BaseException:
        tmp.close()
        raise
    return st, _iter_tmp(tmp)


async def put(mgr: Manager, c: Container, path: str, body: BinaryIO, *, no_overwrite_dir_non_dir: bool) -> None:
    """`docker cp` into the container: extract the tar `body` (a file) at `path`."""
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    async with mounted(mgr, c) as root:
        try:
            await asyncio.to_thread(archive_mod.extract_archive, root, path, body, no_overwrite_dir_non_dir)
        except NotADirectoryError:
            raise InvalidParameter(f"extraction point is not a directory: {path}") from None
        except archive_mod.ArchiveError as e:
            raise InvalidParameter(str(e)) from None
        except (layers.LayerError, EOFError, ValueError) as e:
            raise InvalidParameter(f"invalid archive: {e}") from None
        except OSError as e:
            if e.errno is None:  # a corrupt compressed stream (gzip.BadGzipFile, …): the client's archive
                raise InvalidParameter(f"invalid archive: {e}") from None
            raise path_error(c, path, e) from None
