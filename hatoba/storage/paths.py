"""Container paths on the host: resolving a path inside a root filesystem as if chrooted to it, the one
symlink-safe walk the engine (working dirs, volume mount points), user lookup (/etc/passwd of an image)
and `docker cp` share. Below the resolved path, callers open with O_NOFOLLOW directory fds
(`storage.layers`), since a running container may swap a directory for a symlink at any time.
"""

from __future__ import annotations

import errno
import os
import stat

_MAX_SYMLINKS = 255


def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """Host path of container path ``path``, resolving symlinks as if chrooted to ``root``.

    Absolute symlink targets restart at ``root`` and ``..`` never climbs above
    it.  Missing components are kept lexically.  The last component is left
    unresolved when ``follow_last`` is False, unless ``path`` ends with ``/``
    or ``/.``.  Raises ``OSError(ELOOP)`` after too many symlinks.
    """
    root = os.path.abspath(root)
    if path.endswith("/") or path.endswith("/.") or path in (".", ""):
        follow_last = True
    remaining = list(reversed(path.split("/")))
    resolved: list[str] = []
    links = 0
    while remaining:
        comp = remaining.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        is_last = all(c in ("", ".") for c in remaining)
        host = os.path.join(root, *resolved, comp)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode) and (follow_last or not is_last):
            links += 1
            if links > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            try:
                target = os.readlink(host)
            except (FileNotFoundError, NotADirectoryError):
                resolved.append(comp)  # removed since the lstat: resolve it as a missing name
                continue
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                resolved.append(comp)  # replaced by a non-link since the lstat (a running container)
                continue
            if target.startswith("/"):
                resolved = []
            remaining.extend(reversed(target.split("/")))
            continue
        resolved.append(comp)
    return os.path.join(root, *resolved) if resolved else root
