"""Resolve Docker's ``--user`` / ``Config.User`` against an image's own /etc/passwd and /etc/group.

Semantics follow runc's ``libcontainer/user.GetExecUser`` as used by dockerd:

* ``""`` means the default user: uid 0 (the passwd entry with uid 0 supplies home and the
  supplementary groups, if any).
* ``"name"`` or ``"uid"``: looked up in the image's ``/etc/passwd``. A numeric uid is always
  treated as a uid; if no entry matches, it is still accepted (gid 0, home ``/``). An unknown
  name is an error: ``unable to find user foo: no matching entries in passwd file``.
* ``"user:group"`` with either part a name or a number: the group part is looked up in
  ``/etc/group``. An explicit group replaces the primary gid and, like Docker, disables the
  implicit supplementary groups. An unknown group name is an error:
  ``unable to find group bar: no matching entries in group file``.
* Without an explicit group, supplementary groups are the gids of every group that lists the
  matched user name as a member.
* ``group_add`` (HostConfig.GroupAdd) appends further groups, by name or gid.

Files are read inside the rootfs with every symlink resolved *within* the rootfs (an absolute
link target or ``..`` never escapes it), so a hostile image cannot make the daemon read host files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from hatoba.storage.paths import resolve_in_root

__all__ = [
    "ResolvedUser",
    "UserError",
    "resolve_user",
    "parse_passwd",
    "parse_group",
]

MIN_ID = 0
MAX_ID = 2**31 - 1
_MAX_FILE = 16 * 1024 * 1024


class UserError(ValueError):
    """The user/group specification cannot be resolved in the image (Docker reports these as 500 / exit 126 on start)."""


@dataclass
class ResolvedUser:
    """The numeric identity a container process runs as."""

    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


@dataclass
class PasswdEntry:
    name: str
    password: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


@dataclass
class GroupEntry:
    name: str
    password: str
    gid: int
    members: list[str]


def _read_in_rootfs(rootfs: str, path: str) -> str | None:
    """Read a small regular file inside ``rootfs``; ``None`` if it is missing or not a regular file."""
    full = resolve_in_root(rootfs, path)
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        total = 0
        while total < _MAX_FILE:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
            total += len(b)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _atoi(s: str) -> int:
    """Go's strconv.Atoi with errors ignored (as libcontainer/user's parseLine does)."""
    try:
        return int(s.strip())
    except ValueError:
        return 0


def _fields(line: str, n: int) -> list[str]:
    parts = line.split(":")
    parts += [""] * (n - len(parts))
    return parts[:n]


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Parse passwd(5) text, skipping blank lines (like libcontainer/user)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        name, pw, uid, gid, gecos, home, shell = _fields(line, 7)
        out.append(PasswdEntry(name, pw, _atoi(uid), _atoi(gid), gecos, home, shell))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """Parse group(5) text, skipping blank lines."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        name, pw, gid, members = _fields(line, 4)
        out.append(GroupEntry(name, pw, _atoi(gid), [m for m in members.split(",") if m]))
    return out


def _numeric(s: str) -> int | None:
    """Like Go's strconv.Atoi success check: optional sign and decimal digits only."""
    t = s[1:] if s[:1] in "+-" else s
    if not t or not t.isascii() or not t.isdigit():
        return None
    return int(s)


def _check_range(v: int) -> int:
    if v < MIN_ID or v > MAX_ID:
        raise UserError(f"uids and gids must be in range {MIN_ID}-{MAX_ID}")
    return v


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> ResolvedUser:
    """Resolve a Docker user spec (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid`` …) in ``rootfs``."""
    passwd_text = _read_in_rootfs(rootfs, "/etc/passwd")
    group_text = _read_in_rootfs(rootfs, "/etc/group")
    passwd = parse_passwd(passwd_text) if passwd_text is not None else None
    groups = parse_group(group_text) if group_text is not None else None

    user = user or ""
    user_arg, _, group_arg = user.partition(":")
    uid_num = _numeric(user_arg)
    gid_num = _numeric(group_arg)

    uid, gid, home = 0, 0, "/"
    sgids: list[int] = []

    matches: list[PasswdEntry] = []
    if passwd is not None:
        for e in passwd:
            if user_arg == "":
                ok = e.uid == uid
            elif uid_num is not None:
                ok = e.uid == uid_num
            else:
                ok = e.name == user_arg
            if ok:
                matches.append(e)
                break
    matched_name = ""
    if matches:
        m = matches[0]
        matched_name = m.name
        uid, gid, home = m.uid, m.gid, m.home or "/"
    elif user_arg != "":
        if uid_num is None:
            raise UserError(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(uid_num)

    if group_arg != "" or matched_name != "":
        found: list[GroupEntry] = []
        for g in groups or []:
            if group_arg == "":
                if matched_name in g.members:
                    found.append(g)
            elif gid_num is not None:
                if g.gid == gid_num:
                    found.append(g)
                    break
            elif g.name == group_arg:
                found.append(g)
                break
        if group_arg != "":
            if found:
                gid = found[0].gid
            else:
                if gid_num is None:
                    raise UserError(f"unable to find group {group_arg}: no matching entries in group file")
                gid = _check_range(gid_num)
        else:
            sgids = [g.gid for g in found]

    for spec in group_add or []:
        sgids.append(_resolve_group_add(spec, groups))

    return ResolvedUser(uid=uid, gid=gid, additional_gids=sgids, home=home)


def _resolve_group_add(spec: str, groups: list[GroupEntry] | None) -> int:
    """One HostConfig.GroupAdd entry: a group name (must exist) or a gid (need not exist)."""
    for g in groups or []:
        if g.name == spec:
            return g.gid
    num = _numeric(spec)
    if num is None:
        raise UserError(f"Unable to find group {spec}: no matching entries in group file")
    for g in groups or []:
        if g.gid == num:
            return g.gid
    return _check_range(num)
