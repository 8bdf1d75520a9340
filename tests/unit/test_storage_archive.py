"""Tests for hatoba.storage.archive (docker cp support)."""

from __future__ import annotations

import errno
import gzip
import io
import os
import shutil
import socket
import stat
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from hatoba.golang import rfc3339_nano
from hatoba.storage.archive import (
    ArchiveError,
    archive_path,
    extract_archive,
    go_file_mode,
    resolve_in_root,
    stat_path,
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown)")

MOTD_NS = 1_700_000_000_123_456_789


def _write(path: str, data: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    os.chmod(path, mode)


@pytest.fixture
def work() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-test-archive-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def rootfs(work: str) -> str:
    root = os.path.join(work, "merged")
    os.mkdir(root)
    _write(os.path.join(root, "etc/motd"), "hello")
    os.utime(os.path.join(root, "etc/motd"), ns=(MOTD_NS, MOTD_NS))
    os.symlink("/etc/motd", os.path.join(root, "etc/alt"))
    os.symlink("../etc/motd", os.path.join(root, "etc/rel"))
    os.symlink("../../../../../../..", os.path.join(root, "escape"))
    os.symlink("/", os.path.join(root, "abs"))
    os.symlink("/etc", os.path.join(root, "hostetc"))
    os.symlink("loop2", os.path.join(root, "loop1"))
    os.symlink("loop1", os.path.join(root, "loop2"))
    _write(os.path.join(root, "newdir/a"), "A")
    _write(os.path.join(root, "newdir/sub/b"), "B")
    os.chmod(os.path.join(root, "newdir"), 0o755)
    os.symlink("/newdir", os.path.join(root, "dirlink"))
    _write(os.path.join(root, "bin/su"), "su", 0o4755)
    _write(os.path.join(root, "bin/sg"), "sg", 0o2755)
    os.mkdir(os.path.join(root, "tmp"))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.mkfifo(os.path.join(root, "fifo"))
    os.chmod(os.path.join(root, "fifo"), 0o644)
    return root


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [m.name for m in tf]


def _tar(*entries: tuple[str, bytes | None, dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, attrs in entries:
            ti = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _snapshot(path: str) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            out.append((os.path.join(dirpath, n), st.st_mode, st.st_mtime_ns))
    return sorted(out)


# ---------------------------------------------------------------------------
# resolve_in_root


def test_resolve_in_root(rootfs: str) -> None:
    r = rootfs
    j = os.path.join
    assert resolve_in_root(r, "/etc/alt") == j(r, "etc/motd")
    assert resolve_in_root(r, "/etc/alt", follow_last=False) == j(r, "etc/alt")
    assert resolve_in_root(r, "/etc/rel") == j(r, "etc/motd")
    assert resolve_in_root(r, "/escape/etc/motd") == j(r, "etc/motd")
    assert resolve_in_root(r, "/escape") == r
    assert resolve_in_root(r, "../../etc/motd") == j(r, "etc/motd")
    assert resolve_in_root(r, "/abs/abs/etc/alt") == j(r, "etc/motd")
    assert resolve_in_root(r, "/hostetc/passwd") == j(r, "etc/passwd")  # rooted, not the host's /etc
    assert resolve_in_root(r, "/dirlink/a") == j(r, "newdir/a")
    assert resolve_in_root(r, "/dirlink", follow_last=False) == j(r, "dirlink")
    assert resolve_in_root(r, "/dirlink/", follow_last=False) == j(r, "newdir")
    assert resolve_in_root(r, "/dirlink/.", follow_last=False) == j(r, "newdir")
    assert resolve_in_root(r, "/dirlink/../etc") == j(r, "etc")
    assert resolve_in_root(r, "/missing/x/../y") == j(r, "missing/y")
    assert resolve_in_root(r, "/") == r
    assert resolve_in_root(r, "") == r
    with pytest.raises(OSError) as exc:
        resolve_in_root(r, "/loop1")
    assert exc.value.errno == errno.ELOOP
    assert resolve_in_root(r, "/loop1", follow_last=False) == j(r, "loop1")


# ---------------------------------------------------------------------------
# stat_path


def test_rfc3339_nano() -> None:
    assert rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_nano(MOTD_NS) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nano(1_500_000_000_100_000_000) == "2017-07-14T02:40:00.1Z"
    assert rfc3339_nano(-1_000_000_000) == "1969-12-31T23:59:59Z"


def test_go_file_mode_bits() -> None:
    assert go_file_mode(stat.S_IFREG | 0o644) == 0o644
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFIFO | 0o600) == (1 << 25) | 0o600
    assert go_file_mode(stat.S_IFSOCK | 0o755) == (1 << 24) | 0o755
    assert go_file_mode(stat.S_IFBLK | 0o660) == (1 << 26) | 0o660
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFREG | 0o2755) == (1 << 22) | 0o755
    assert go_file_mode(stat.S_IFDIR | 0o1777) == (1 << 31) | (1 << 20) | 0o777


def test_stat_path(rootfs: str) -> None:
    st = stat_path(rootfs, "/etc/motd")
    assert st == {
        "name": "motd",
        "size": 5,
        "mode": 0o644,
        "mtime": "2023-11-14T22:13:20.123456789Z",
        "linkTarget": "",
    }
    st = stat_path(rootfs, "/etc/alt")
    assert st["mode"] == (1 << 27) | 0o777
    assert st["linkTarget"] == "/etc/motd"
    assert st["name"] == "alt"
    assert stat_path(rootfs, "/dirlink")["linkTarget"] == "/newdir"
    assert stat_path(rootfs, "/escape")["linkTarget"] == "/"
    assert stat_path(rootfs, "/newdir")["mode"] == (1 << 31) | 0o755
    assert stat_path(rootfs, "/dirlink/")["mode"] == (1 << 31) | 0o755
    assert stat_path(rootfs, "/dirlink/")["name"] == "dirlink"
    assert stat_path(rootfs, "/bin/su")["mode"] == (1 << 23) | 0o755
    assert stat_path(rootfs, "/bin/sg")["mode"] == (1 << 22) | 0o755
    assert stat_path(rootfs, "/tmp")["mode"] == (1 << 31) | (1 << 20) | 0o777
    assert stat_path(rootfs, "/fifo")["mode"] == (1 << 25) | 0o644
    assert stat_path(rootfs, "/")["name"] == "/"
    with pytest.raises(FileNotFoundError):
        stat_path(rootfs, "/nope")
    with pytest.raises(FileNotFoundError):
        stat_path(rootfs, "/escape/nope")
    with pytest.raises(NotADirectoryError):
        stat_path(rootfs, "/etc/motd/")


@root_only
def test_stat_path_devices_and_sockets(rootfs: str) -> None:
    os.makedirs(os.path.join(rootfs, "dev"))
    os.mknod(os.path.join(rootfs, "dev/null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(os.path.join(rootfs, "dev/null"), 0o666)
    os.mknod(os.path.join(rootfs, "dev/loop0"), stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chmod(os.path.join(rootfs, "dev/loop0"), 0o660)
    assert stat_path(rootfs, "/dev/null")["mode"] == (1 << 26) | (1 << 21) | 0o666
    assert stat_path(rootfs, "/dev/loop0")["mode"] == (1 << 26) | 0o660
    sock_path = os.path.join(rootfs, "s")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(sock_path)
        os.chmod(sock_path, 0o755)
        assert stat_path(rootfs, "/s")["mode"] == (1 << 24) | 0o755
    finally:
        s.close()


# ---------------------------------------------------------------------------
# archive_path


def test_archive_file(rootfs: str) -> None:
    out = io.BytesIO()
    st = archive_path(rootfs, "/etc/motd", out)
    assert st["name"] == "motd"
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = list(tf)
        assert [m.name for m in members] == ["motd"]
        f = tf.extractfile(members[0])
        assert f is not None and f.read() == b"hello"


def test_archive_dir_shapes(rootfs: str) -> None:
    out = io.BytesIO()
    archive_path(rootfs, "/newdir", out)
    assert _names(out.getvalue()) == ["newdir", "newdir/a", "newdir/sub", "newdir/sub/b"]
    assert b"newdir/" in out.getvalue()  # directory entries carry a trailing slash

    out = io.BytesIO()
    archive_path(rootfs, "/newdir/.", out)
    assert _names(out.getvalue()) == [".", "./a", "./sub", "./sub/b"]

    out = io.BytesIO()
    archive_path(rootfs, "/newdir/", out)
    assert _names(out.getvalue()) == ["newdir", "newdir/a", "newdir/sub", "newdir/sub/b"]


def test_archive_symlinks(rootfs: str) -> None:
    out = io.BytesIO()
    st = archive_path(rootfs, "/etc/alt", out)
    assert st["linkTarget"] == "/etc/motd"
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        (m,) = list(tf)
    assert m.name == "alt" and m.issym() and m.linkname == "/etc/motd"

    out = io.BytesIO()
    archive_path(rootfs, "/dirlink/", out)  # trailing slash: follow, keep the requested name
    assert _names(out.getvalue()) == ["dirlink", "dirlink/a", "dirlink/sub", "dirlink/sub/b"]

    out = io.BytesIO()
    archive_path(rootfs, "/escape/etc/motd", out)  # ".." never leaves the root
    assert _names(out.getvalue()) == ["motd"]

    with pytest.raises(FileNotFoundError):
        archive_path(rootfs, "/does/not/exist", io.BytesIO())


# ---------------------------------------------------------------------------
# extract_archive


@root_only
def test_extract_basic_and_via_symlink(rootfs: str) -> None:
    data = _tar(
        ("hello.txt", b"hi", {"mode": 0o600}),
        ("d", None, {"type": tarfile.DIRTYPE, "mode": 0o755}),
        ("d/x", b"x", {}),
    )
    extract_archive(rootfs, "/newdir", io.BytesIO(data))
    with open(os.path.join(rootfs, "newdir/hello.txt")) as f:
        assert f.read() == "hi"
    assert stat.S_IMODE(os.stat(os.path.join(rootfs, "newdir/hello.txt")).st_mode) == 0o600
    extract_archive(rootfs, "/dirlink", io.BytesIO(gzip.compress(_tar(("viagz", b"z", {})))))
    assert os.path.isfile(os.path.join(rootfs, "newdir/viagz"))
    # the absolute symlink /hostetc is resolved inside the root, never to the host's /etc
    os.makedirs(os.path.join(rootfs, "etc"), exist_ok=True)
    extract_archive(rootfs, "/hostetc", io.BytesIO(_tar(("hatoba-test", b"t", {}))))
    assert os.path.isfile(os.path.join(rootfs, "etc/hatoba-test"))
    assert not os.path.exists("/etc/hatoba-test")


@root_only
def test_extract_dest_errors(rootfs: str) -> None:
    with pytest.raises(FileNotFoundError):
        extract_archive(rootfs, "/nope", io.BytesIO(_tar(("a", b"", {}))))
    with pytest.raises(NotADirectoryError):
        extract_archive(rootfs, "/etc/motd", io.BytesIO(_tar(("a", b"", {}))))


@root_only
def test_extract_no_overwrite_dir_non_dir(rootfs: str) -> None:
    with pytest.raises(ArchiveError, match="cannot overwrite directory"):
        extract_archive(rootfs, "/newdir", io.BytesIO(_tar(("sub", b"file now", {}))))
    assert os.path.isdir(os.path.join(rootfs, "newdir/sub"))
    with pytest.raises(ArchiveError, match="cannot overwrite non-directory"):
        extract_archive(rootfs, "/newdir", io.BytesIO(_tar(("a", None, {"type": tarfile.DIRTYPE}))))
    assert os.path.isfile(os.path.join(rootfs, "newdir/a"))
    # dir over dir merges; file over file replaces
    extract_archive(
        rootfs, "/newdir", io.BytesIO(_tar(("sub", None, {"type": tarfile.DIRTYPE}), ("a", b"A2", {})))
    )
    with open(os.path.join(rootfs, "newdir/a")) as f:
        assert f.read() == "A2"
    assert os.path.isfile(os.path.join(rootfs, "newdir/sub/b"))
    # allowed when the flag is off
    extract_archive(
        rootfs, "/newdir", io.BytesIO(_tar(("sub", b"file now", {}))), no_overwrite_dir_non_dir=False
    )
    assert os.path.isfile(os.path.join(rootfs, "newdir/sub"))


@root_only
def test_extract_root_entry_keeps_dest_metadata(rootfs: str) -> None:
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    extract_archive(
        rootfs,
        "/tmp",
        io.BytesIO(_tar((".", None, {"type": tarfile.DIRTYPE, "mode": 0o700}), ("./f", b"f", {}))),
    )
    assert stat.S_IMODE(os.stat(os.path.join(rootfs, "tmp")).st_mode) == 0o1777
    assert os.path.isfile(os.path.join(rootfs, "tmp/f"))


@root_only
def test_extract_ownership_and_copy_uid_gid(rootfs: str) -> None:
    data = _tar(("owned", b"o", {"uid": 1234, "gid": 4321}))
    extract_archive(rootfs, "/tmp", io.BytesIO(data))
    st = os.stat(os.path.join(rootfs, "tmp/owned"))
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    extract_archive(rootfs, "/tmp", io.BytesIO(data), chown=(7, 8))
    st = os.stat(os.path.join(rootfs, "tmp/owned"))
    assert (st.st_uid, st.st_gid) == (7, 8)


@root_only
def test_extract_escapes_refused(work: str, rootfs: str) -> None:
    outside = os.path.join(work, "outside")
    os.mkdir(outside)
    _write(os.path.join(outside, "secret"), "s")
    os.symlink(outside, os.path.join(rootfs, "tohost"))
    cases = [
        _tar(("../x", b"x", {})),
        _tar(("../../outside/pwned", b"x", {})),
        _tar((outside + "/pwned", b"x", {})),
        _tar(("abs/etc/hatoba-pwned", b"x", {})),
        _tar(("tohost/pwned", b"x", {})),
        _tar(("l", None, {"type": tarfile.SYMTYPE, "linkname": outside}), ("l/pwned", b"x", {})),
        _tar(("h", None, {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})),
        _tar(("h", None, {"type": tarfile.LNKTYPE, "linkname": "tohost/secret"})),
    ]
    before = _snapshot(outside)
    for data in cases:
        with pytest.raises(ArchiveError, match="refusing"):
            extract_archive(rootfs, "/", io.BytesIO(data))
        assert _snapshot(outside) == before
    assert sorted(os.listdir(work)) == ["merged", "outside"]
    assert not os.path.exists("/etc/hatoba-pwned")
