"""Private state: who may read what below the data root and the exec root.

A container's environment (passwords, tokens) is in `hatoba.db` and its `-wal`/`-shm`, in its
bundle's `config.json` and every exec's `process.json`, in runc's `state.json`, and (after a
commit) in the image config's `container_config`; its files are in its overlay upper dir, its log
and committed layers. So: the data root and the exec root are 0711 (not listable), every directory
directly below them 0700, a container's own directories 0700 and the files that hold its config
0600. `hatoba.db` is created 0600 (SQLite gives its journal files the database's mode) by
`hatoba.db`; the content store and the runtime create theirs private too.

Files bind-mounted into containers (`hosts`, `hostname`, `resolv.conf` in `<data-root>/containers/<id>/`)
stay 0644: inside the container they are reached through the mount, not through the host's
(private) directories, and the container's non-root users must read them.

`secure_state` runs at every daemon start, before anything else touches the roots: it creates the
top-level directories with these modes and fixes what an older hatoba left readable (chmod).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat

log = logging.getLogger("hatoba.engine")

ROOT_MODE = 0o711
DIR_MODE = 0o700
FILE_MODE = 0o600
DATA_DIRS = ("containers", "content", "overlay")
EXEC_DIRS = ("containers", "exits")
CONFIG_FILES = ("config.json", "process.json")


def _ensure(path: str, mode: int) -> int:
    """Give `path` exactly `mode` (creating it as a directory when missing); 1 if it changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)  # makedirs' mode is subject to the umask
        return 0
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return 0
    os.chmod(path, mode)
    return 1


def _fix(path: str, mode: int) -> int:
    """chmod an existing file or dir (never through a symlink); 1 if it changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return 0
    os.chmod(path, mode)
    return 1


def _bundle(path: str) -> int:
    """A bundle (or an exec's dir) and the config files in it; exec dirs below it too."""
    n = _fix(path, DIR_MODE)
    for name in CONFIG_FILES:
        n += _fix(os.path.join(path, name), FILE_MODE)
    execs = os.path.join(path, "exec")
    if os.path.isdir(execs) and not os.path.islink(execs):
        n += _fix(execs, DIR_MODE)
        with os.scandir(execs) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    n += _bundle(e.path)
    return n


def _children(path: str) -> list[str]:
    with contextlib.suppress(FileNotFoundError), os.scandir(path) as it:
        return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    return []


def secure_state(data_root: str, exec_root: str) -> int:
    """Create/chmod the private layout of both roots; returns how many modes had to be fixed."""
    n = _ensure(data_root, ROOT_MODE) + _ensure(exec_root, ROOT_MODE)
    for d in DATA_DIRS:
        n += _ensure(os.path.join(data_root, d), DIR_MODE)
    for d in EXEC_DIRS:
        n += _ensure(os.path.join(exec_root, d), DIR_MODE)
    for name in ("hatoba.db", "hatoba.db-wal", "hatoba.db-shm"):
        n += _fix(os.path.join(data_root, name), FILE_MODE)
    for sub in ("blobs", "blobs/sha256", "ingest"):
        n += _fix(os.path.join(data_root, "content", sub), DIR_MODE)
    for d in _children(os.path.join(data_root, "containers")):
        n += _fix(d, DIR_MODE)
    for d in _children(os.path.join(exec_root, "containers")):
        n += _bundle(d)
    if n:
        log.info("made %d files and directories of an older hatoba private (data root %s, exec root %s)",
                 n, data_root, exec_root)
    return n

