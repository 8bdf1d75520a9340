"""``docker cp`` support on a container root filesystem directory.

Owns the container-side halves of ``HEAD/GET/PUT /containers/{id}/archive``:
resolving container paths chroot-style (``storage.paths.resolve_in_root``), the
``X-Docker-Container-Path-Stat`` payload (:func:`stat_path`, Go ``os.FileMode``
bits and RFC 3339 nanosecond timestamps), producing the tar that the Docker CLI
expects (:func:`archive_path`) and safely extracting an uploaded tar
(:func:`extract_archive`).  ``root`` is always a plain host directory (the
merged overlay mount or the copy-fallback rootfs); a running container may
modify it concurrently, so reads and writes below the resolved path go through
``O_NOFOLLOW`` directory file descriptors (see :mod:`hatoba.storage.layers`).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import Any, BinaryIO

from hatoba.golang import rfc3339_nano

from .layers import _DIR_FLAGS, _Entry, _extract_stream, _TarWriter, _walk
from .paths import resolve_in_root

__all__ = [
    "ArchiveError",
    "archive_path",
    "extract_archive",
    "go_file_mode",
    "resolve_in_root",
    "stat_path",
]


# Go os.FileMode type bits
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


class ArchiveError(Exception):
    """An uploaded archive is unsafe or conflicts with the destination."""


def go_file_mode(st_mode: int) -> int:
    """Convert a POSIX ``st_mode`` to Go's ``os.FileMode`` bits."""
    mode = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        mode |= GO_MODE_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= GO_MODE_SYMLINK
    elif stat.S_ISBLK(st_mode):
        mode |= GO_MODE_DEVICE
    elif stat.S_ISCHR(st_mode):
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif stat.S_ISFIFO(st_mode):
        mode |= GO_MODE_NAMED_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= GO_MODE_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode



def _abs_name(path: str) -> str:
    """Docker's base name for a requested path (``filepath.Base`` of the absolute path)."""
    if path.endswith("/.") or path == ".":
        return "."
    clean = posixpath.normpath("/" + path)
    return posixpath.basename(clean) or "/"


def _container_path(root: str, host: str) -> str:
    rel = os.path.relpath(host, root)
    return "/" if rel == "." else "/" + rel


def stat_path(root: str, path: str) -> dict[str, Any]:
    """The ``X-Docker-Container-Path-Stat`` object for ``path`` (last symlink not followed)."""
    host = resolve_in_root(root, path, follow_last=False)
    st = os.lstat(host)
    if (path.endswith("/") or path.endswith("/.")) and not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = _container_path(os.path.abspath(root), resolve_in_root(root, path, follow_last=True))
    return {
        "name": _abs_name(path),
        "size": st.st_size,
        "mode": go_file_mode(st.st_mode),
        "mtime": rfc3339_nano(st.st_mtime_ns),
        "linkTarget": link_target,
    }


def _open_beneath(root_fd: int, rel: str) -> int:
    """Open directory ``rel`` below ``root_fd`` without following any symlink."""
    cur = root_fd
    try:
        for comp in [c for c in rel.split("/") if c]:
            nxt = os.open(comp, _DIR_FLAGS, dir_fd=cur)
            if cur != root_fd:
                os.close(cur)
            cur = nxt
    except BaseException:
        if cur != root_fd:
            os.close(cur)
        raise
    return cur if cur != root_fd else os.dup(root_fd)


def _rel_in_root(root: str, host: str) -> str:
    rel = os.path.relpath(host, root)
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        raise ArchiveError(f"path {host!r} escapes the container root")
    return rel


def archive_path(root: str, path: str, out_fileobj: BinaryIO) -> dict[str, Any]:
    """Write the ``GET /containers/{id}/archive`` tar for ``path`` to ``out_fileobj``.

    A file ``/etc/motd`` yields one entry ``motd``; a directory ``/newdir``
    yields ``newdir/`` and ``newdir/...``; a path ending in ``/.`` (or ``/``,
    the root) yields the directory's contents as ``./`` and ``./...``.  A
    trailing symlink is archived as the link itself.  Returns the
    :func:`stat_path` dict (for the stat header).  Raises FileNotFoundError.
    """
    root = os.path.abspath(root)
    stat_info = stat_path(root, path)
    contents = path.endswith("/.") or path == "." or posixpath.normpath("/" + path) == "/"
    host = resolve_in_root(root, path, follow_last=False)
    rel = _rel_in_root(root, host)
    parent_rel, _, base = rel.rpartition("/")
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        writer = _TarWriter(out_fileobj)
        if contents or not base:
            dir_fd = _open_beneath(root_fd, rel)
            try:
                writer.add(_Entry(dir_fd, ".", ".", os.fstat(dir_fd)), ".")
                for entry in _walk(dir_fd, "./"):
                    writer.add(entry, entry.rel)
            finally:
                os.close(dir_fd)
        else:
            pfd = _open_beneath(root_fd, parent_rel)
            try:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                top = stat_info["name"] if stat_info["name"] not in (".", "/") else base
                writer.add(_Entry(pfd, base, top, st), top)
                if stat.S_ISDIR(st.st_mode):
                    dir_fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
                    try:
                        for entry in _walk(dir_fd, top + "/"):
                            writer.add(entry, entry.rel)
                    finally:
                        os.close(dir_fd)
            finally:
                os.close(pfd)
        writer.close()
    finally:
        os.close(root_fd)
    return stat_info


def extract_archive(
    root: str,
    dest_path: str,
    fileobj: BinaryIO,
    no_overwrite_dir_non_dir: bool = True,
    chown: tuple[int, int] | None = None,
) -> None:
    """``PUT /containers/{id}/archive``: extract a (possibly compressed) tar into ``dest_path``.

    ``dest_path`` is resolved inside ``root`` (symlinks followed chroot-style)
    and must be an existing directory (else FileNotFoundError /
    NotADirectoryError).  Entries are extracted with the same safety rules as
    layers (no absolute names, no ``..`` escapes, no writing through symlinks,
    hard links only to targets inside the destination); whiteout names are
    not interpreted.  With ``no_overwrite_dir_non_dir`` replacing a directory
    by a non-directory or vice versa raises :class:`ArchiveError`.  ``chown``
    (``copyUIDGID``) overrides the owners recorded in the tar.  The
    destination directory's own metadata is never changed by a ``./`` entry.
    """
    root = os.path.abspath(root)
    host = resolve_in_root(root, dest_path, follow_last=True)
    st = os.lstat(host)  # FileNotFoundError if missing
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "extraction point is not a directory", dest_path)
    rel = _rel_in_root(root, host)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            dest_fd = _open_beneath(root_fd, rel)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ArchiveError(f"destination {dest_path!r} changed during resolution") from e
            raise
    finally:
        os.close(root_fd)
    try:
        _extract_stream(
            fileobj,
            dest_fd,
            whiteout_format=None,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            chown=chown,
            error=ArchiveError,
        )
    finally:
        os.close(dest_fd)
