"""Unit tests of hatoba.runtime.users (Docker's --user resolution against the image's files)."""

from __future__ import annotations

import os

import pytest

from hatoba.runtime.users import ResolvedUser, UserError, parse_group, parse_passwd, resolve_user
from hatoba.storage.paths import resolve_in_root as secure_join

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
daemon:x:1:
www-data:x:33:app
app:x:1000:
audio:x:29:app,www-data
video:x:44:root
nogroup:x:65534:
"""


def make_rootfs(tmp_path, passwd: str | None = PASSWD, group: str | None = GROUP) -> str:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    if passwd is not None:
        (root / "etc" / "passwd").write_text(passwd)
    if group is not None:
        (root / "etc" / "group").write_text(group)
    return str(root)


def test_default_is_root(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "")
    assert r == ResolvedUser(uid=0, gid=0, additional_gids=[44], home="/root")


def test_root_by_name_and_uid(tmp_path) -> None:
    root = make_rootfs(tmp_path)
    assert resolve_user(root, "root") == resolve_user(root, "0") == resolve_user(root, "")


def test_name(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "app")
    assert (r.uid, r.gid, r.home) == (1000, 1000, "/home/app")
    assert r.additional_gids == [33, 29]


def test_uid_with_entry(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "33")
    assert (r.uid, r.gid, r.home, r.additional_gids) == (33, 33, "/var/www", [29])


def test_numeric_uid_without_entry(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "4242")
    assert r == ResolvedUser(uid=4242, gid=0, additional_gids=[], home="/")


def test_unknown_name(tmp_path) -> None:
    with pytest.raises(UserError) as e:
        resolve_user(make_rootfs(tmp_path), "foo")
    assert str(e.value) == "unable to find user foo: no matching entries in passwd file"


def test_name_group(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "app:audio")
    # an explicit group replaces the primary gid and drops the implicit supplementary groups
    assert r == ResolvedUser(uid=1000, gid=29, additional_gids=[], home="/home/app")


def test_uid_gid(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "1000:44")
    assert (r.uid, r.gid, r.additional_gids) == (1000, 44, [])


def test_name_numeric_gid_without_entry(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "app:5555")
    assert (r.uid, r.gid) == (1000, 5555)


def test_unknown_group(tmp_path) -> None:
    with pytest.raises(UserError) as e:
        resolve_user(make_rootfs(tmp_path), "app:nogrp")
    assert str(e.value) == "unable to find group nogrp: no matching entries in group file"


def test_uid_out_of_range(tmp_path) -> None:
    with pytest.raises(UserError):
        resolve_user(make_rootfs(tmp_path), "-5")
    with pytest.raises(UserError):
        resolve_user(make_rootfs(tmp_path), str(2**31))


def test_no_passwd_file(tmp_path) -> None:
    root = make_rootfs(tmp_path, passwd=None, group=None)
    assert resolve_user(root, "") == ResolvedUser(0, 0, [], "/")
    assert resolve_user(root, "1000:1000") == ResolvedUser(1000, 1000, [], "/")
    with pytest.raises(UserError, match="unable to find user app"):
        resolve_user(root, "app")


def test_group_add(tmp_path) -> None:
    r = resolve_user(make_rootfs(tmp_path), "app", group_add=["video", "777"])
    assert r.additional_gids == [33, 29, 44, 777]
    with pytest.raises(UserError, match="Unable to find group nosuch"):
        resolve_user(make_rootfs(tmp_path), "app", group_add=["nosuch"])


def test_passwd_symlink_stays_in_rootfs(tmp_path) -> None:
    """An absolute symlink is resolved inside the rootfs, never to the host's /etc/passwd."""
    root = make_rootfs(tmp_path, passwd=None)
    (tmp_path / "rootfs" / "real").mkdir()
    (tmp_path / "rootfs" / "real" / "pw").write_text("zed:x:77:77::/z:/bin/sh\n")
    os.symlink("/real/pw", os.path.join(root, "etc", "passwd"))
    r = resolve_user(root, "zed")
    assert (r.uid, r.home) == (77, "/z")
    with pytest.raises(UserError):
        resolve_user(root, "root")  # not the host's root entry


def test_passwd_symlink_escape_is_clamped(tmp_path) -> None:
    root = make_rootfs(tmp_path, passwd=None)
    (tmp_path / "outside").write_text("evil:x:1:1::/:/bin/sh\n")
    os.symlink("../../../../../outside", os.path.join(root, "etc", "passwd"))
    with pytest.raises(UserError):
        resolve_user(root, "evil")
    os.unlink(os.path.join(root, "etc", "passwd"))
    os.symlink("/etc/passwd", os.path.join(root, "etc", "passwd"))  # loops back on itself
    with pytest.raises(OSError):
        resolve_user(root, "")


def test_secure_join(tmp_path) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "a", "b"))
    os.symlink("/a", os.path.join(root, "link"))
    os.symlink("../../../..", os.path.join(root, "a", "up"))
    assert secure_join(root, "/link/b") == os.path.join(root, "a", "b")
    assert secure_join(root, "/a/up/etc/passwd") == os.path.join(root, "etc", "passwd")
    assert secure_join(root, "../../x") == os.path.join(root, "x")
    assert secure_join(root, "/") == root


def test_parsers_tolerate_short_lines() -> None:
    p = parse_passwd("  \nshort:x:5\n")
    assert p[0].name == "short" and p[0].uid == 5 and p[0].gid == 0 and p[0].home == ""
    g = parse_group("g:x:9:a,,b\n")
    assert g[0].members == ["a", "b"]
