"""Tests for hatoba.storage.layers: apply_layer, write_diff, changes, tar_dir."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from hatoba.storage.layers import LayerError, apply_layer, changes, tar_dir, write_diff

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)")
pytestmark = root_only  # extraction restores ownership recorded in the tars

MTIME = 1_600_000_000

Member = tuple[tarfile.TarInfo, bytes | None]


# ---------------------------------------------------------------------------
# helpers


def _info(
    name: str, type_: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = MTIME
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.uid = uid
    ti.gid = gid
    ti.mtime = mtime
    return ti


def reg(
    name: str,
    data: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = MTIME,
    xattrs: dict[str, bytes] | None = None,
) -> Member:
    ti = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    ti.size = len(data)
    for k, v in (xattrs or {}).items():
        ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
    return ti, data


def dir_(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Member:
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def sym(name: str, target: str, uid: int = 0, gid: int = 0) -> Member:
    ti = _info(name, tarfile.SYMTYPE, 0o777, uid, gid)
    ti.linkname = target
    return ti, None


def hard(name: str, target: str) -> Member:
    ti = _info(name, tarfile.LNKTYPE, 0o644)
    ti.linkname = target
    return ti, None


def chrdev(name: str, major: int, minor: int, mode: int = 0o666) -> Member:
    ti = _info(name, tarfile.CHRTYPE, mode)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def fifo(name: str) -> Member:
    return _info(name, tarfile.FIFOTYPE, 0o640), None


def tar_bytes(*members: Member) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def apply(data: bytes, dest: str, fmt: str = "overlay") -> tuple[str, int]:
    return apply_layer(io.BytesIO(data), dest, whiteout_format=fmt)  # type: ignore[arg-type]


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [m.name for m in tf]


def tree_state(root: str, with_mtime: bool = True) -> dict[str, tuple]:
    """Comparable description of every object below root."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            content = None
            link = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(path)
            xattrs: dict[str, bytes] = {}
            if not stat.S_ISLNK(st.st_mode):
                for k in os.listxattr(path, follow_symlinks=False):
                    if k.startswith("user.") or k in ("trusted.overlay.opaque", "security.capability"):
                        xattrs[k] = os.getxattr(path, k, follow_symlinks=False)
            mtime = int(st.st_mtime) if with_mtime and not stat.S_ISLNK(st.st_mode) else None
            rdev = st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                content,
                link,
                rdev,
                tuple(sorted(xattrs.items())),
                mtime,
            )
    return out


def snapshot(path: str) -> dict[str, tuple]:
    return tree_state(path, with_mtime=True)


@pytest.fixture
def work() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-test-layers-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sandbox(work: str) -> dict[str, str]:
    """dest/ (extraction target) next to outside/ holding a secret file."""
    dest = os.path.join(work, "dest")
    outside = os.path.join(work, "outside")
    os.mkdir(dest)
    os.mkdir(outside)
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write("top secret")
    return {"work": work, "dest": dest, "outside": outside}


# ---------------------------------------------------------------------------
# apply_layer: basics


def test_diff_id_plain_and_compressed(work: str) -> None:
    data = tar_bytes(dir_("etc"), reg("etc/hostname", b"box\n"))
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    variants = {
        "plain": data,
        "gzip": gzip.compress(data),
        "gzip-multimember": gzip.compress(data[:700]) + gzip.compress(data[700:]),
        "bzip2": bz2.compress(data),
        "xz": lzma.compress(data),
    }
    for label, blob in variants.items():
        dest = os.path.join(work, label)
        assert apply(blob, dest) == (expected, len(data)), label
        with open(os.path.join(dest, "etc", "hostname")) as f:
            assert f.read() == "box\n"


def test_diff_id_covers_trailing_padding(work: str) -> None:
    data = tar_bytes(reg("a", b"x")) + b"\0" * 4096
    assert apply(data, os.path.join(work, "d")) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def test_empty_stream_and_bad_streams(work: str) -> None:
    assert apply(b"", os.path.join(work, "e"))[1] == 0
    with pytest.raises(LayerError):
        apply(b"this is not a tar file at all" * 40, os.path.join(work, "g"))
    with pytest.raises(LayerError):
        apply(gzip.compress(tar_bytes(reg("a", b"x" * 5000)))[:60], os.path.join(work, "t"))
    with pytest.raises(LayerError, match="zstd"):
        apply(b"\x28\xb5\x2f\xfd" + b"\xff" * 100, os.path.join(work, "z"))


def test_zstd_bzip2_xz_and_concatenated_gzip_layers(work: str) -> None:
    import bz2
    import lzma

    import zstandard

    data = tar_bytes(reg("a", b"x" * 5000), reg("b", b"y"))
    want = "sha256:" + hashlib.sha256(data).hexdigest()
    for i, blob in enumerate((zstandard.ZstdCompressor().compress(data), bz2.compress(data), lzma.compress(data),
                              gzip.compress(data[:700]) + gzip.compress(data[700:]))):
        dest = os.path.join(work, f"c{i}")
        assert apply(blob, dest)[0] == want
        with open(os.path.join(dest, "b")) as f:
            assert f.read() == "y"


@root_only
def test_files_dirs_owners_modes_times(work: str) -> None:
    dest = os.path.join(work, "d")
    data = tar_bytes(
        dir_("usr", mode=0o755, mtime=1000),
        dir_("usr/bin", mode=0o711, uid=3, gid=4, mtime=2000),
        reg("usr/bin/su", b"#!", mode=0o4755, uid=1000, gid=1000, mtime=3000),
        reg("usr/bin/wall", b"w", mode=0o2755, uid=0, gid=5),
        dir_("tmp", mode=0o1777),
        reg("deep/implicit/parent", b"p"),
        sym("usr/bin/sh", "/bin/dash", uid=7, gid=8),
        reg("x" * 150 + "/" + "y" * 120, b"long"),
    )
    apply(data, dest)
    st = os.lstat(os.path.join(dest, "usr/bin/su"))
    assert stat.S_IMODE(st.st_mode) == 0o4755  # setuid survives chown
    assert (st.st_uid, st.st_gid, int(st.st_mtime)) == (1000, 1000, 3000)
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "usr/bin/wall")).st_mode) == 0o2755
    st = os.lstat(os.path.join(dest, "usr/bin"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o711, 3, 4)
    # directory mtimes are restored after their contents were written
    assert int(st.st_mtime) == 2000
    assert int(os.lstat(os.path.join(dest, "usr")).st_mtime) == 1000
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "tmp")).st_mode) == 0o1777
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "deep/implicit")).st_mode) == 0o755
    st = os.lstat(os.path.join(dest, "usr/bin/sh"))
    assert stat.S_ISLNK(st.st_mode) and (st.st_uid, st.st_gid) == (7, 8)
    assert os.readlink(os.path.join(dest, "usr/bin/sh")) == "/bin/dash"
    with open(os.path.join(dest, "x" * 150, "y" * 120)) as f:
        assert f.read() == "long"


@root_only
def test_hard_links_devices_fifos(work: str) -> None:
    dest = os.path.join(work, "d")
    apply(
        tar_bytes(
            reg("bin/busybox", b"bb", mode=0o755),
            hard("bin/ls", "bin/busybox"),
            hard("./bin/cat", "./bin/busybox"),
            chrdev("dev/null", 1, 3),
            _blk("dev/loop0", 7, 0),
            fifo("run/pipe"),
        ),
        dest,
    )
    a = os.lstat(os.path.join(dest, "bin/busybox"))
    assert a.st_nlink == 3
    assert os.lstat(os.path.join(dest, "bin/ls")).st_ino == a.st_ino
    assert os.lstat(os.path.join(dest, "bin/cat")).st_ino == a.st_ino
    st = os.lstat(os.path.join(dest, "dev/null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and stat.S_IMODE(st.st_mode) == 0o666
    st = os.lstat(os.path.join(dest, "dev/loop0"))
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 0)
    st = os.lstat(os.path.join(dest, "run/pipe"))
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640


def _blk(name: str, major: int, minor: int) -> Member:
    ti = _info(name, tarfile.BLKTYPE, 0o660)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def _file_caps() -> bytes:
    # VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted = CAP_NET_RAW
    return struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


@root_only
def test_xattrs(work: str) -> None:
    dest = os.path.join(work, "d")
    caps = _file_caps()
    apply(
        tar_bytes(
            dir_("d"),
            reg(
                "d/ping", b"elf", mode=0o755, uid=1, xattrs={"security.capability": caps, "user.note": b"hi"}
            ),
            reg("d/bin", b"", xattrs={"user.raw": b"\xff\x00\xfe"}),
            reg("d/evil", b"", xattrs={"trusted.overlay.redirect": b"/etc", "trusted.overlay.opaque": b"y"}),
        ),
        dest,
    )
    ping = os.path.join(dest, "d/ping")
    assert os.getxattr(ping, "security.capability") == caps  # set after chown, so not cleared
    assert os.getxattr(ping, "user.note") == b"hi"
    assert os.getxattr(os.path.join(dest, "d/bin"), "user.raw") == b"\xff\x00\xfe"
    assert not [x for x in os.listxattr(os.path.join(dest, "d/evil")) if x.startswith("trusted.overlay.")]


def test_existing_entries_are_replaced(work: str) -> None:
    dest = os.path.join(work, "d")
    os.makedirs(os.path.join(dest, "a/sub"))
    os.symlink("/etc/passwd", os.path.join(dest, "f"))
    apply(
        tar_bytes(
            reg("a", b"now a file"), reg("f", b"plain"), dir_("a2"), reg("a2/x", b"1"), reg("a2/x", b"2")
        ),
        dest,
    )
    with open(os.path.join(dest, "a")) as f:
        assert f.read() == "now a file"
    assert not os.path.islink(os.path.join(dest, "f"))
    with open(os.path.join(dest, "a2/x")) as f:
        assert f.read() == "2"


# ---------------------------------------------------------------------------
# whiteouts


@root_only
def test_whiteouts_overlay_format(work: str) -> None:
    dest = os.path.join(work, "d")
    apply(
        tar_bytes(
            dir_("etc"),
            reg("etc/.wh.shadow"),
            dir_("var", mode=0o750),
            reg("var/.wh..wh..opq"),
            reg("var/new", b"n"),
            reg("gone/.wh.deep"),
            reg(".wh..wh.plnk/123.45", b"aufs metadata"),
        ),
        dest,
    )
    st = os.lstat(os.path.join(dest, "etc/shadow"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(dest, "var"), "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "var")).st_mode) == 0o750
    assert os.listdir(os.path.join(dest, "var")) == ["new"]
    assert stat.S_ISCHR(os.lstat(os.path.join(dest, "gone/deep")).st_mode)
    assert not os.path.exists(os.path.join(dest, ".wh..wh.plnk"))
    assert not [n for n in os.listdir(os.path.join(dest, "etc")) if n.startswith(".wh.")]


@root_only
def test_whiteouts_naive_format(work: str) -> None:
    dest = os.path.join(work, "rootfs")
    apply(
        tar_bytes(
            dir_("etc"),
            reg("etc/passwd", b"p"),
            reg("etc/group", b"g"),
            dir_("opt"),
            reg("opt/a", b"a"),
            dir_("opt/b"),
            reg("opt/b/c", b"c"),
            dir_("var"),
            dir_("var/cache"),
            reg("var/cache/x", b"x"),
            reg("keep", b"k"),
        ),
        dest,
        "naive",
    )
    apply(
        tar_bytes(
            dir_("etc"),
            reg("etc/.wh.group"),
            reg("etc/.wh.never-existed"),
            dir_("opt", mode=0o700),
            reg("opt/+early", b"e"),  # sorts before the opaque marker but belongs to this layer
            reg("opt/.wh..wh..opq"),
            reg("opt/new", b"n"),
            reg(".wh.var"),
        ),
        dest,
        "naive",
    )
    assert sorted(os.listdir(dest)) == ["etc", "keep", "opt"]
    assert sorted(os.listdir(os.path.join(dest, "etc"))) == ["passwd"]
    assert sorted(os.listdir(os.path.join(dest, "opt"))) == ["+early", "new"]
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "opt")).st_mode) == 0o700
    assert not [p for p in tree_state(dest) if ".wh." in p]


def test_whiteout_with_invalid_target_refused(sandbox: dict[str, str]) -> None:
    with pytest.raises(LayerError, match=r"\.wh\.\.\."):
        apply(tar_bytes(reg("a/.wh..."), reg("x")), sandbox["dest"], "naive")


# ---------------------------------------------------------------------------
# escapes


def _escape_cases(outside: str) -> list[tuple[str, bytes, str]]:
    return [
        ("dotdot", tar_bytes(reg("../outside/pwned", b"x")), "../outside/pwned"),
        ("dotdot-inner", tar_bytes(dir_("a"), reg("a/../../outside/pwned", b"x")), "a/../../outside/pwned"),
        ("absolute", tar_bytes(reg(outside + "/pwned", b"x")), outside + "/pwned"),
        ("absolute-etc", tar_bytes(reg("/etc/hatoba-pwned", b"x")), "/etc/hatoba-pwned"),
        ("symlink-parent-abs", tar_bytes(sym("a", outside), reg("a/pwned", b"x")), "a/pwned"),
        ("symlink-parent-etc", tar_bytes(sym("a", "/etc"), reg("a/passwd", b"x")), "a/passwd"),
        ("symlink-parent-rel", tar_bytes(sym("a", "../outside"), reg("a/pwned", b"x")), "a/pwned"),
        (
            "symlink-parent-nested",
            tar_bytes(dir_("a"), sym("a/b", "../../outside"), reg("a/b/pwned", b"x")),
            "a/b/pwned",
        ),
        ("symlink-parent-dir", tar_bytes(sym("d", outside), dir_("d/sub")), "d/sub"),
        ("symlink-parent-deep", tar_bytes(sym("d", outside), reg("d/x/y/z", b"x")), "d/x/y/z"),
        ("symlink-parent-symlink", tar_bytes(sym("d", outside), sym("d/l", "/")), "d/l"),
        ("symlink-parent-hardlink", tar_bytes(reg("f", b"f"), sym("d", outside), hard("d/h", "f")), "d/h"),
        ("hardlink-dotdot", tar_bytes(hard("x", "../../etc/passwd")), "../../etc/passwd"),
        ("hardlink-outside", tar_bytes(hard("x", "../outside/secret")), "../outside/secret"),
        ("hardlink-absolute", tar_bytes(hard("x", outside + "/secret")), outside + "/secret"),
        ("hardlink-via-symlink", tar_bytes(sym("lnk", outside), hard("x", "lnk/secret")), "x"),
        ("whiteout-via-symlink", tar_bytes(sym("d", outside), reg("d/.wh.secret")), "d/.wh.secret"),
        ("opaque-via-symlink", tar_bytes(sym("d", outside), reg("d/.wh..wh..opq")), "d/.wh..wh..opq"),
    ]


@root_only
@pytest.mark.parametrize("fmt", ["overlay", "naive"])
def test_escapes_are_refused(work: str, fmt: str) -> None:
    outside = os.path.join(work, "outside")
    for label, data, entry in _escape_cases(outside):
        case_dir = os.path.join(work, label)
        dest = os.path.join(case_dir, "dest")
        os.makedirs(dest)
        shutil.rmtree(outside, ignore_errors=True)
        os.mkdir(outside)
        with open(os.path.join(outside, "secret"), "w") as f:
            f.write("top secret")
        before_outside = snapshot(outside)
        etc_before = snapshot("/etc") if "etc" in label else None
        with pytest.raises(LayerError) as exc:
            apply(data, dest, fmt)
        assert entry in str(exc.value), (label, str(exc.value))
        assert snapshot(outside) == before_outside, label
        assert sorted(os.listdir(case_dir)) == ["dest"], label
        assert not os.path.exists("/etc/hatoba-pwned")
        if etc_before is not None:
            assert snapshot("/etc") == etc_before, label


@root_only
def test_file_replacing_symlink_does_not_write_through(sandbox: dict[str, str]) -> None:
    dest, outside = sandbox["dest"], sandbox["outside"]
    secret = os.path.join(outside, "secret")
    before = snapshot(outside)
    apply(
        tar_bytes(
            sym("s", secret),
            reg("s", b"overwritten?"),
            sym("d", outside),
            dir_("d"),
            reg("d/inside", b"ok"),
            sym("h", secret),
            hard("h2", "h"),
            sym("dev", outside + "/devnode"),
            chrdev("dev", 1, 3),
        ),
        dest,
    )
    assert snapshot(outside) == before
    assert not os.path.islink(os.path.join(dest, "s"))
    with open(os.path.join(dest, "s")) as f:
        assert f.read() == "overwritten?"
    assert os.path.isdir(os.path.join(dest, "d")) and not os.path.islink(os.path.join(dest, "d"))
    # a hard link to a symlink links the symlink itself
    assert os.readlink(os.path.join(dest, "h2")) == secret
    assert stat.S_ISCHR(os.lstat(os.path.join(dest, "dev")).st_mode)


def test_existing_symlink_in_dest_is_not_followed(sandbox: dict[str, str]) -> None:
    dest, outside = sandbox["dest"], sandbox["outside"]
    os.symlink(outside, os.path.join(dest, "etc"))
    before = snapshot(outside)
    with pytest.raises(LayerError, match="symbolic link"):
        apply(tar_bytes(reg("etc/secret", b"pwned")), dest, "naive")
    assert snapshot(outside) == before


# ---------------------------------------------------------------------------
# the directory fd cache and the per-entry shortcuts of the extractor


@root_only
def test_cached_dir_replaced_by_symlink_is_not_followed(sandbox: dict[str, str]) -> None:
    dest, outside = sandbox["dest"], sandbox["outside"]
    before = snapshot(outside)
    for fmt in ("overlay", "naive"):
        d = os.path.join(dest, fmt)
        with pytest.raises(LayerError, match="symbolic link"):
            apply(
                tar_bytes(dir_("a"), dir_("a/b"), reg("a/b/x", b"1"), sym("a", outside), reg("a/b/y", b"2")),
                d,
                fmt,
            )
        with pytest.raises(LayerError, match="symbolic link"):
            apply(tar_bytes(dir_("c"), reg("c/x", b"1"), sym("c", outside), reg("c/y", b"2")), d, fmt)
        with pytest.raises(LayerError, match="symbolic link"):  # a hard link into the cached dir
            apply(tar_bytes(dir_("e"), reg("e/x", b"1"), reg("f", b"f"), sym("e", outside), hard("e/h", "f")), d, fmt)
    assert snapshot(outside) == before


@root_only
def test_cached_dirs_removed_and_recreated(work: str) -> None:
    dest = os.path.join(work, "naive")
    apply(
        tar_bytes(
            dir_("a", mode=0o700, mtime=1000),
            dir_("a/b", mtime=2000),
            reg("a/b/x", b"x"),
            reg(".wh.a"),
            reg("a/b/y", b"y"),  # parents made anew, not the removed (cached) ones
            dir_("c"),
            reg("c/x", b"x"),
            reg("c", b"now a file"),
            dir_("d"),
            reg("d/x", b"x"),
            reg("d", b"file"),
            dir_("d", mode=0o750),
            reg("d/y", b"y"),
        ),
        dest,
        "naive",
    )
    assert os.listdir(os.path.join(dest, "a/b")) == ["y"]
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "a")).st_mode) == 0o755  # implicit, not the old 0700
    assert int(os.lstat(os.path.join(dest, "a/b")).st_mtime) != 2000  # times of the removed dir dropped
    with open(os.path.join(dest, "c")) as f:
        assert f.read() == "now a file"
    assert os.listdir(os.path.join(dest, "d")) == ["y"]
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "d")).st_mode) == 0o750
    overlay = os.path.join(work, "overlay")
    with pytest.raises(LayerError, match="not a directory"):  # the whiteout device is in the way
        apply(tar_bytes(dir_("a"), dir_("a/b"), reg("a/b/x"), reg(".wh.a"), reg("a/b/y")), overlay)


@root_only
def test_hard_link_replacing_the_dir_of_its_target(sandbox: dict[str, str]) -> None:
    dest, outside = sandbox["dest"], sandbox["outside"]
    before = snapshot(outside)
    with pytest.raises(LayerError, match="does not exist"):
        apply(tar_bytes(dir_("a"), reg("a/x", b"x"), hard("a", "a/x")), dest)
    assert snapshot(outside) == before


@root_only
def test_more_directories_than_the_cache_holds(work: str) -> None:
    dest = os.path.join(work, "d")
    n = 150
    members: list[Member] = []
    for i in range(n):
        members += [dir_(f"top{i % 7}/d{i}", mode=0o750, uid=i, gid=i + 1, mtime=10_000 + i),
                    reg(f"top{i % 7}/d{i}/f", str(i).encode())]
    for i in reversed(range(n)):  # every directory again, least recently used first
        members.append(reg(f"top{i % 7}/d{i}/g", str(-i).encode()))
    apply(tar_bytes(*members), dest)
    for i in range(n):
        d = os.path.join(dest, f"top{i % 7}/d{i}")
        st = os.lstat(d)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o750, i, i + 1, 10_000 + i)
        with open(os.path.join(d, "f")) as f, open(os.path.join(d, "g")) as g:
            assert (f.read(), g.read()) == (str(i), str(-i))


@root_only
def test_owner_and_mode_shortcuts(work: str) -> None:
    dest = os.path.join(work, "d")
    old = os.umask(0o027)
    try:
        apply(
            tar_bytes(
                reg("plain", b"p", mode=0o644),
                reg("all", b"a", mode=0o666),
                reg("exe", b"e", mode=0o755, uid=7, gid=8),
                dir_("open", mode=0o777),
                dir_("sgid", mode=0o2775, uid=0, gid=5),
                reg("sgid/f", b"f", mode=0o644, uid=0, gid=0),  # the kernel would give it group 5
                reg("sgid/g", b"g", mode=0o640, uid=0, gid=5),
                dir_("sgid/sub", mode=0o755),  # would inherit setgid and group 5
                sym("sgid/l", "f"),
                reg("sticky", b"s", mode=0o1644),
            ),
            dest,
        )
    finally:
        os.umask(old)

    def meta(rel: str) -> tuple[int, int, int]:
        st = os.lstat(os.path.join(dest, rel))
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    assert meta("plain") == (0o644, 0, 0)
    assert meta("all") == (0o666, 0, 0)
    assert meta("exe") == (0o755, 7, 8)
    assert meta("open") == (0o777, 0, 0)
    assert meta("sgid") == (0o2775, 0, 5)
    assert meta("sgid/f") == (0o644, 0, 0)
    assert meta("sgid/g") == (0o640, 0, 5)
    assert meta("sgid/sub") == (0o755, 0, 0)
    assert meta("sgid/l")[1:] == (0, 0)
    assert meta("sticky") == (0o1644, 0, 0)


def _default_acl(user: int, group: int, other: int) -> bytes:
    """system.posix_acl_default value: version 2, then (tag, perm, id) for user::, group::, other::."""
    entries = [(0x01, user), (0x04, group), (0x20, other)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in entries)


@root_only
def test_modes_exact_under_a_default_acl(work: str) -> None:
    dest = os.path.join(work, "d")
    os.mkdir(dest)
    try:
        os.setxattr(dest, "system.posix_acl_default", _default_acl(7, 0, 0))
    except OSError as e:
        pytest.skip(f"no POSIX ACLs here: {e}")
    apply(tar_bytes(reg("f", b"f", mode=0o644), dir_("d", mode=0o755), reg("d/g", b"g", mode=0o664)), dest)
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "f")).st_mode) == 0o644
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "d")).st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "d/g")).st_mode) == 0o664


@root_only
def test_gnu_sparse_file(work: str) -> None:
    gnutar = shutil.which("tar")
    if gnutar is None:
        pytest.skip("no tar")
    src = os.path.join(work, "src")
    os.mkdir(src)
    with open(os.path.join(src, "sparse"), "wb") as f:
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek(3 << 20)
        f.write(b"end")
        f.truncate(4 << 20)
    data = b""
    for fmt in ("gnu", "posix"):
        out = os.path.join(work, f"{fmt}.tar")
        subprocess.run([gnutar, f"--format={fmt}", "-S", "-C", src, "-cf", out, "sparse"], check=True)
        with open(out, "rb") as f:
            data = f.read()
        dest = os.path.join(work, fmt)
        apply(data, dest)
        with open(os.path.join(dest, "sparse"), "rb") as f, open(os.path.join(src, "sparse"), "rb") as g:
            assert f.read() == g.read()


def _headers_both_ways(data: bytes) -> tuple[list[tuple], list[tuple]]:
    from hatoba.storage.layers import _TarHeaders, _TarStream

    fields = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "uname", "gname",
              "devmajor", "devminor", "offset", "offset_data", "sparse", "pax_headers")
    chunks = iter([data[i : i + 777] for i in range(0, len(data), 777)] + [b""])
    mine = [tuple(getattr(m, f) for f in fields) for m in _TarHeaders(_TarStream(lambda: next(chunks))).members()]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", errors="surrogateescape") as tf:
        theirs = [tuple(getattr(m, f) for f in fields) for m in tf]
    return mine, theirs


def test_header_parsing_matches_tarfile() -> None:
    long = "d" * 120 + "/" + "f" * 90
    members: list[Member] = [
        dir_("etc"),
        reg("etc/hosts", b"127.0.0.1 localhost\n", mode=0o644, uid=1000, gid=1000),
        reg("etc/\u00e9t\u00e9", b"non-ascii name"),
        dir_("var/", mode=0o1777),
        sym("etc/link", "hosts"),
        hard("etc/hard", "etc/hosts"),
        reg(long, b"long name"),
        sym("x" * 120, "y" * 120),
        chrdev("dev/null", 1, 3),
        _blk("dev/loop0", 7, 0),
        fifo("run/fifo"),
        reg("big-ids", b"", uid=3_000_000, gid=2_500_000),
        reg("neg-mtime", b"", mtime=-5),
        reg("xattr", b"", xattrs={"user.a": b"b"}),
    ]
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            if fmt == tarfile.PAX_FORMAT:
                tf.pax_headers = {"comment": "global"}
            for ti, data in members:
                if fmt == tarfile.USTAR_FORMAT and (ti.uid > 0o7777777 or len(ti.linkname) > 100 or ti.mtime < 0):
                    continue
                if fmt == tarfile.USTAR_FORMAT and ti.name.isascii() is False:
                    continue
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        data = buf.getvalue()
        mine, theirs = _headers_both_ways(data)
        assert mine == theirs and len(mine) >= 10, fmt
    # a V7-style directory (regular type, trailing slash), a base-256 size, a bad checksum mid-archive
    def blocks(ti: tarfile.TarInfo, data: bytes = b"") -> bytearray:
        ti.size = len(data)
        return bytearray(ti.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512))

    v7 = tarfile.TarInfo("olddir/")
    v7.type = tarfile.AREGTYPE
    c = blocks(tarfile.TarInfo("c"), b"z")
    c[10] ^= 1  # its checksum no longer matches: the end, for tarfile
    raw = blocks(v7) + blocks(tarfile.TarInfo("a"), b"x") + blocks(tarfile.TarInfo("b"), b"y") + c
    mine, theirs = _headers_both_ways(bytes(raw) + b"\0" * 1024)
    assert mine == theirs and [m[0] for m in mine] == ["olddir", "a", "b"]
    assert mine[0][1] == tarfile.DIRTYPE
    big = tarfile.TarInfo("big")
    big.size = 0
    block = bytearray(big.tobuf(tarfile.GNU_FORMAT))
    block[124:136] = b"\x80" + (5).to_bytes(11, "big")  # base-256 size 5
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    mine, theirs = _headers_both_ways(bytes(block) + b"hello".ljust(512, b"\0") + b"\0" * 1024)
    assert mine == theirs and mine[0][5] == 5


# ---------------------------------------------------------------------------
# write_diff / changes / tar_dir


def _set_times(root: str, when: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(when * 10**9, when * 10**9), follow_symlinks=False)
    os.utime(root, (when, when))


def _build_upper(upper: str) -> None:
    os.makedirs(os.path.join(upper, "etc"))
    with open(os.path.join(upper, "etc/passwd"), "w") as f:
        f.write("root:x:0:0::/root:/bin/sh\n")
    os.chmod(os.path.join(upper, "etc/passwd"), 0o640)
    os.chown(os.path.join(upper, "etc/passwd"), 1, 2)
    os.setxattr(os.path.join(upper, "etc/passwd"), "user.test", b"value")
    os.link(os.path.join(upper, "etc/passwd"), os.path.join(upper, "etc/passwd-hard"))
    os.mknod(os.path.join(upper, "etc/shadow"), stat.S_IFCHR, 0)  # whiteout
    os.makedirs(os.path.join(upper, "opt/app"))
    os.setxattr(os.path.join(upper, "opt/app"), "trusted.overlay.opaque", b"y")
    os.setxattr(os.path.join(upper, "opt/app"), "trusted.overlay.origin", b"junk")  # overlay-private
    with open(os.path.join(upper, "opt/app/config"), "w") as f:
        f.write("new")
    os.makedirs(os.path.join(upper, "usr/bin"))
    with open(os.path.join(upper, "usr/bin/su"), "w") as f:
        f.write("su")
    os.chmod(os.path.join(upper, "usr/bin/su"), 0o4755)
    os.setxattr(os.path.join(upper, "usr/bin/su"), "security.capability", _file_caps())
    os.makedirs(os.path.join(upper, "dev"))
    os.mknod(os.path.join(upper, "dev/null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(os.path.join(upper, "dev/fifo"), 0o600)
    os.symlink("etc/passwd", os.path.join(upper, "link"))
    os.chown(os.path.join(upper, "link"), 5, 6, follow_symlinks=False)
    _set_times(upper, 1_700_000_000)


@root_only
def test_write_diff_shape_and_roundtrip(work: str) -> None:
    upper = os.path.join(work, "upper")
    _build_upper(upper)
    out = io.BytesIO()
    diff_id, size = write_diff(upper, [], out)
    data = out.getvalue()
    assert (diff_id, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    assert tar_names(data) == [
        "dev",
        "dev/fifo",
        "dev/null",
        "etc",
        "etc/passwd",
        "etc/passwd-hard",
        "etc/.wh.shadow",  # sorted by the on-disk name ("shadow")
        "link",
        "opt",
        "opt/app",
        "opt/app/.wh..wh..opq",
        "opt/app/config",
        "usr",
        "usr/bin",
        "usr/bin/su",
    ]
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf}
    assert members["etc/passwd-hard"].islnk() and members["etc/passwd-hard"].linkname == "etc/passwd"
    assert members["etc/.wh.shadow"].isreg() and members["etc/.wh.shadow"].size == 0
    assert (members["etc/passwd"].uid, members["etc/passwd"].gid, members["etc/passwd"].uname) == (1, 2, "")
    assert members["etc/passwd"].mtime == 1_700_000_000
    assert not [k for m in members.values() for k in m.pax_headers if "overlay" in k]
    # deterministic
    assert write_diff(upper, [], io.BytesIO())[0] == diff_id

    # diff -> apply (overlay format) reproduces the upper dir exactly
    copy = os.path.join(work, "copy")
    assert apply(data, copy) == (diff_id, size)
    assert tree_state(copy) == tree_state(upper)


@root_only
def test_diff_then_naive_apply(work: str) -> None:
    base = os.path.join(work, "rootfs")
    apply(
        tar_bytes(
            dir_("etc"),
            reg("etc/shadow", b"s"),
            reg("etc/passwd", b"old"),
            dir_("opt"),
            dir_("opt/app"),
            reg("opt/app/old", b"o"),
        ),
        base,
        "naive",
    )
    upper = os.path.join(work, "upper")
    _build_upper(upper)
    out = io.BytesIO()
    write_diff(upper, [], out)
    apply(out.getvalue(), base, "naive")
    assert not os.path.lexists(os.path.join(base, "etc/shadow"))
    assert os.listdir(os.path.join(base, "opt/app")) == ["config"]
    with open(os.path.join(base, "etc/passwd")) as f:
        assert f.read().startswith("root:")
    assert os.getxattr(os.path.join(base, "usr/bin/su"), "security.capability") == _file_caps()


@root_only
def test_changes_kinds(work: str) -> None:
    lower0 = os.path.join(work, "l0")  # bottom
    lower1 = os.path.join(work, "l1")  # top
    upper = os.path.join(work, "upper")
    for rel in ("etc/passwd", "etc/group", "opt/a/b", "opt/a/c", "usr/bin/x", "srv/old", "home/u/f"):
        os.makedirs(os.path.join(lower0, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(lower0, rel), "w") as f:
            f.write(rel)
    os.makedirs(os.path.join(lower1, "srv"))
    os.setxattr(os.path.join(lower1, "srv"), "trusted.overlay.opaque", b"y")
    os.makedirs(os.path.join(lower1, "usr/bin"))
    os.mknod(os.path.join(lower1, "usr/bin/x"), stat.S_IFCHR, 0)

    os.makedirs(os.path.join(upper, "etc"))
    with open(os.path.join(upper, "etc/passwd"), "w") as f:
        f.write("changed")
    os.mknod(os.path.join(upper, "etc/group"), stat.S_IFCHR, 0)
    os.makedirs(os.path.join(upper, "tmp"))
    with open(os.path.join(upper, "tmp/new"), "w") as f:
        f.write("n")
    os.makedirs(os.path.join(upper, "opt/a"))
    os.setxattr(os.path.join(upper, "opt/a"), "trusted.overlay.opaque", b"y")
    with open(os.path.join(upper, "opt/a/d"), "w") as f:
        f.write("d")
    os.makedirs(os.path.join(upper, "usr/bin"))
    with open(os.path.join(upper, "usr/bin/x"), "w") as f:
        f.write("re-added after lower whiteout")
    os.makedirs(os.path.join(upper, "srv"))
    with open(os.path.join(upper, "srv/old"), "w") as f:
        f.write("hidden below by opaque srv")
    os.makedirs(os.path.join(upper, "home/u"))
    os.chmod(os.path.join(upper, "home/u"), 0o700)  # metadata-only change of a lower dir

    assert changes(upper, [lower1, lower0]) == [
        ("/etc", 0),
        ("/etc/group", 2),
        ("/etc/passwd", 0),
        ("/home", 0),
        ("/home/u", 0),
        ("/opt", 0),
        ("/opt/a", 0),
        ("/opt/a/b", 2),
        ("/opt/a/c", 2),
        ("/opt/a/d", 1),
        ("/srv", 0),
        ("/srv/old", 1),
        ("/tmp", 1),
        ("/tmp/new", 1),
        ("/usr", 0),
        ("/usr/bin", 0),
        ("/usr/bin/x", 1),
    ]
    assert changes(os.path.join(work, "l1"), []) == [
        ("/srv", 1),
        ("/usr", 1),
        ("/usr/bin", 1),
        ("/usr/bin/x", 2),
    ]


@root_only
def test_tar_dir(work: str) -> None:
    root = os.path.join(work, "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc/os-release"), "w") as f:
        f.write("ID=test\n")
    os.chown(os.path.join(root, "etc/os-release"), 4242, 4343)
    os.symlink("/proc/self/mounts", os.path.join(root, "etc/mtab"))
    os.link(os.path.join(root, "etc/os-release"), os.path.join(root, "os-release"))
    os.mkfifo(os.path.join(root, "fifo"))
    out = io.BytesIO()
    digest, size = tar_dir(root, out)
    assert size == len(out.getvalue())
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = list(tf)
    names = [m.name for m in members]
    assert names == ["etc", "etc/mtab", "etc/os-release", "fifo", "os-release"]
    by = {m.name: m for m in members}
    assert (by["etc/os-release"].uid, by["etc/os-release"].gid) == (4242, 4343)
    assert by["etc/os-release"].uname == "" and by["etc/os-release"].gname == ""
    assert by["etc/mtab"].issym() and by["etc/mtab"].linkname == "/proc/self/mounts"
    assert by["os-release"].islnk() and by["os-release"].linkname == "etc/os-release"
    assert by["fifo"].isfifo()
    raw = out.getvalue()
    assert b"./etc" not in raw
