"""Thin ctypes wrappers over libc ``mount(2)`` / ``umount2(2)``.

Owns every mount the storage layer makes: overlayfs mounts of container root
filesystems, bind mounts, unmounting, mount-point detection (from
``/proc/self/mountinfo``) and the one-time "does overlayfs work here" probe.
``/bin/mount`` is never spawned.

Overlay option strings are limited by the kernel to one page (including the
terminating NUL).  :func:`mount_overlay` first tries absolute paths; if they do
not fit it retries with paths relative to the longest common parent directory,
``chdir``-ing there for the duration of the ``mount(2)`` call only (a short
critical section guarded by a process-wide lock; hatoba never relies on the
current directory elsewhere).  If even the relative form does not fit,
``OSError(E2BIG)`` is raised: callers with very deep images should pass short
paths (the snapshotter keeps short symlinks for this purpose).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import shutil
import stat
import tempfile
import threading

__all__ = [
    "MNT_DETACH",
    "MS_BIND",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "bind_mount",
    "is_mountpoint",
    "mount",
    "mount_overlay",
    "mountpoints",
    "overlay_options",
    "overlay_supported",
    "umount",
]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_chdir_lock = threading.Lock()

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return os.fsencode(s)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    """Raw ``mount(2)``; raises ``OSError`` with errno and the target path."""
    data_b = _b(data)
    buf = ctypes.create_string_buffer(data_b) if data_b is not None else None
    rc = _libc.mount(
        _b(source), _b(target), _b(fstype), flags, ctypes.cast(buf, ctypes.c_void_p) if buf else None
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or ''} on {target}: {os.strerror(err)}", target)


def umount(target: str, detach: bool = False) -> bool:
    """``umount2(2)``.  Returns False (no error) if ``target`` is not mounted or missing."""
    rc = _libc.umount2(_b(target), MNT_DETACH if detach else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return False
        raise OSError(err, f"umount {target}: {os.strerror(err)}", target)
    return True


def _escape(path: str) -> str:
    # overlayfs splits options on ',' and lowerdir on ':'; both honour '\' escapes.
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def overlay_options(lowers: list[str], upper: str | None, work: str | None, extra: str = "") -> str:
    """The overlay mount data string (``lowers[0]`` is the topmost layer)."""
    opts = ["lowerdir=" + ":".join(_escape(p) for p in lowers)]
    if upper is not None:
        opts.append("upperdir=" + _escape(upper))
    if work is not None:
        opts.append("workdir=" + _escape(work))
    if extra:
        opts.append(extra)
    return ",".join(opts)


def _fits(data: str) -> bool:
    return len(os.fsencode(data)) + 1 <= _PAGE_SIZE


@functools.cache
def _default_extra() -> str:
    # Features that would make the upper dir unusable as a plain "diff"
    # (redirect_dir: renamed dirs stored as redirects; metacopy: metadata-only
    # copy-ups without data) or that break sharing lower layers between mounts
    # (index) are switched off when the kernel enables them by default.
    extra = []
    for knob in ("index", "redirect_dir", "metacopy"):
        try:
            with open(f"/sys/module/overlay/parameters/{knob}") as f:
                if f.read().strip() in ("Y", "on", "follow"):
                    extra.append(f"{knob}=off")
        except OSError:
            pass
    return ",".join(extra)


def mount_overlay(
    lowers: list[str], upper: str | None, work: str | None, target: str, readonly: bool = False
) -> None:
    """Mount overlayfs on ``target``.

    ``lowers[0]`` is the topmost lower layer, ``lowers[-1]`` the bottom one.
    ``upper``/``work`` may be None for a read-only overlay of lowers only
    (which then needs at least two lowers).
    """
    if not lowers:
        raise ValueError("overlay needs at least one lower directory")
    lowers = [os.path.abspath(p) for p in lowers]
    upper = os.path.abspath(upper) if upper is not None else None
    work = os.path.abspath(work) if work is not None else None
    target = os.path.abspath(target)
    extra = _default_extra()
    flags = MS_RDONLY if readonly else 0
    data = overlay_options(lowers, upper, work, extra)
    if _fits(data):
        mount("overlay", target, "overlay", flags, data)
        return
    dirs = lowers + [p for p in (upper, work) if p is not None]
    common = os.path.commonpath(dirs)
    rel = [os.path.relpath(p, common) for p in lowers]
    rel_upper = os.path.relpath(upper, common) if upper is not None else None
    rel_work = os.path.relpath(work, common) if work is not None else None
    data = overlay_options(rel, rel_upper, rel_work, extra)
    if not _fits(data):
        raise OSError(
            errno.E2BIG,
            f"overlay mount options for {len(lowers)} layers exceed the page size ({_PAGE_SIZE} bytes) "
            "even with relative paths; use shorter layer paths",
            target,
        )
    with _chdir_lock:
        saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(common)
            mount("overlay", target, "overlay", flags, data)
        finally:
            try:
                os.fchdir(saved)
            finally:
                os.close(saved)


def bind_mount(src: str, dst: str, readonly: bool = False, recursive: bool = False) -> None:
    """Bind ``src`` onto ``dst``; a read-only bind needs a second remount call."""
    flags = MS_BIND | (MS_REC if recursive else 0)
    mount(src, dst, None, flags)
    if readonly:
        st = os.statvfs(dst)
        keep = 0
        for st_flag, ms_flag in (
            (os.ST_NOSUID, MS_NOSUID),
            (os.ST_NODEV, MS_NODEV),
            (os.ST_NOEXEC, MS_NOEXEC),
            (os.ST_NOATIME, MS_NOATIME),
            (os.ST_NODIRATIME, MS_NODIRATIME),
        ):
            if st.f_flag & st_flag:
                keep |= ms_flag
        try:
            mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | keep)
        except OSError:
            umount(dst, detach=True)
            raise


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:  # the common case; the loop below costs ~20 us per mount, per scan
        return field
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        octal = field[i + 1 : i + 4]
        if c == "\\" and len(octal) == 3 and all(ch in "01234567" for ch in octal):
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


def mountpoints() -> list[str]:
    """All mount points of this mount namespace, from ``/proc/self/mountinfo``."""
    result = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4:
                result.append(_unescape_mountinfo(fields[4]))
    return result


def is_mountpoint(path: str) -> bool:
    """True if ``path`` is a mount point (including bind mounts of directories on the same fs)."""
    try:
        real = os.path.realpath(path)
        os.lstat(real)
    except OSError:
        return False
    return real in set(mountpoints())


def _probe(probe_dir: str) -> bool:
    os.makedirs(probe_dir, exist_ok=True)
    base = tempfile.mkdtemp(prefix=".overlay-probe-", dir=probe_dir)
    merged = os.path.join(base, "merged")
    mounted = False
    try:
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(base, name))
        with open(os.path.join(base, "lower", "f"), "w") as f:
            f.write("x")
        mount_overlay(
            [os.path.join(base, "lower")], os.path.join(base, "upper"), os.path.join(base, "work"), merged
        )
        mounted = True
        # Deleting a lower file must create a whiteout (needs mknod in upper).
        os.unlink(os.path.join(merged, "f"))
        st = os.lstat(os.path.join(base, "upper", "f"))
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    except OSError:
        return False
    finally:
        if mounted:
            try:
                umount(merged)
            except OSError:
                umount(merged, detach=True)
        shutil.rmtree(base, ignore_errors=True)


@functools.cache
def overlay_supported(probe_dir: str) -> bool:
    """Whether a real overlay mount (with whiteouts) works with dirs under ``probe_dir``.

    The result is cached per ``probe_dir``; ``overlay_supported.cache_clear()`` resets it.
    """
    return _probe(os.path.abspath(probe_dir))
