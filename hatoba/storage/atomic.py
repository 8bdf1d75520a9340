"""Crash-safe small-file writes.

Owns the "write to a temporary file in the same directory, fsync it, rename it
over the destination, fsync the directory" idiom used for every piece of
on-disk metadata (content-store blobs, layer metadata, image/container state).
After :func:`write_atomic` returns, a reader sees either the old file or the
complete new file, even across a power loss.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets

__all__ = ["fsync_dir", "syncfs", "write_atomic"]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that entries created/renamed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush the whole filesystem containing ``path`` (cheaper than fsyncing every file of a layer)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.fspath(path))
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``data`` (file permissions ``mode``).

    The temporary file lives in the destination directory (so the rename never
    crosses a filesystem) and is removed if anything fails before the rename.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-{os.path.basename(path)}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # not subject to the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)
