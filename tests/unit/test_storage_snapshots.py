"""Tests for hatoba.storage.snapshots and hatoba.storage.mount (real overlay mounts as root)."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from hatoba.storage.layers import LayerError, tar_dir
from hatoba.storage.mount import (
    bind_mount,
    is_mountpoint,
    mount_overlay,
    mountpoints,
    overlay_supported,
    umount,
)
from hatoba.storage.snapshots import Snapshotter, chain_id, chain_ids, spread_subdirs

MTIME = 1_600_000_000


def _can_overlay() -> bool:
    if os.geteuid() != 0:
        return False
    d = tempfile.mkdtemp(prefix="hatoba-test-probe-")
    try:
        return overlay_supported(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


needs_overlay = pytest.mark.skipif(not _can_overlay(), reason="needs root and overlayfs")
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def work() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-test-snap-")
    try:
        yield d
    finally:
        # never rmtree through a live mount
        for mp in sorted((m for m in mountpoints() if m.startswith(d + "/")), key=len, reverse=True):
            umount(mp, detach=True)
        assert not [m for m in mountpoints() if m.startswith(d + "/")]
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# tar helpers


def _tar(*entries: tuple[str, bytes | None]) -> bytes:
    """Entries: (name, data) regular file; (name/, None) dir; ("name->target", None) symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            if "->" in name:
                name, target = name.split("->")
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.SYMTYPE
                ti.linkname = target
            elif name.endswith("/"):
                ti = tarfile.TarInfo(name.rstrip("/"))
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
            else:
                ti = tarfile.TarInfo(name)
                ti.size = len(data or b"")
                ti.mode = 0o644
            ti.mtime = MTIME
            tf.addfile(ti, io.BytesIO(data or b"") if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(snap: Snapshotter, tars: list[bytes]) -> list[str]:
    chains = chain_ids([_digest(t) for t in tars])
    parent = None
    for c, t in zip(chains, tars, strict=True):
        snap.add_layer(c, parent, io.BytesIO(t))
        parent = c
    return chains


def _view(root: str) -> dict[str, tuple]:
    """Content view of a rootfs: type, perms, owner, content/link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = f.read()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[os.path.relpath(p, root)] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                extra,
            )
    return out


BASE = _tar(
    ("etc/", None),
    ("etc/passwd", b"root:x:0:0\n"),
    ("etc/group", b"root:x:0:\n"),
    ("opt/", None),
    ("opt/a/", None),
    ("opt/a/b", b"b"),
    ("var/", None),
    ("var/x", b"x"),
    ("bin->usr/bin", None),
)
TOP = _tar(
    ("etc/", None),
    ("etc/.wh.group", b""),
    ("etc/hostname", b"top\n"),
    ("opt/", None),
    ("opt/a/", None),
    ("opt/a/.wh..wh..opq", b""),
    ("opt/a/c", b"c"),
)


# ---------------------------------------------------------------------------
# chain ids


def test_chain_ids_known_vector() -> None:
    # reference values computed with coreutils: printf '%s %s' "$parent" "$diff" | sha256sum
    a = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    b = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
    c = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
    assert chain_ids([a, b, c]) == [
        a,
        "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676",
        "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106",
    ]
    assert chain_ids([]) == []
    assert chain_id(None, a) == a
    with pytest.raises(ValueError):
        chain_ids(["sha256:short"])


# ---------------------------------------------------------------------------
# layers


@root_only
def test_add_layer_and_metadata(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    c0, c1 = _add(snap, [BASE, TOP])
    assert snap.has_layer(c0) and snap.has_layer(c1)
    assert sorted(snap.layers()) == sorted([c0, c1])
    assert snap.layer_diff_id(c1) == _digest(TOP)
    assert snap.layer_parent(c1) == c0 and snap.layer_parent(c0) is None
    p0 = snap.layer_path(c0)
    assert p0 == os.path.join(work, "s", "layers", c0[7:], "diff")
    with open(os.path.join(p0, "etc/passwd"), "rb") as f:
        assert f.read() == b"root:x:0:0\n"
    assert snap.layer_size(c0) == len(b"root:x:0:0\n") + len(b"root:x:0:\n") + 2 + len("usr/bin")
    # overlay whiteout format in the stored layer
    st = os.lstat(os.path.join(snap.layer_path(c1), "etc/group"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(snap.layer_path(c1), "opt/a"), "trusted.overlay.opaque") == b"y"
    assert os.path.realpath(os.path.join(work, "s", "l", c0[7:31])) == p0
    # adding again does not read the stream
    assert snap.add_layer(c0, None, io.BytesIO(b"garbage")) == (_digest(BASE), -1)
    assert os.listdir(os.path.join(work, "s", "tmp")) == []


@root_only
def test_add_layer_failures_leave_nothing(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    wrong = _digest(b"not the tar")
    with pytest.raises(LayerError, match="does not match chain id"):
        snap.add_layer(wrong, None, io.BytesIO(BASE))
    assert not snap.has_layer(wrong)
    assert not os.path.exists(os.path.join(work, "s", "layers", wrong[7:]))
    corrupt = _tar(("a", b"x" * 10000))[:3000]
    with pytest.raises(LayerError):
        snap.add_layer(_digest(corrupt), None, io.BytesIO(corrupt))
    with pytest.raises(LayerError, match="parent layer"):
        snap.add_layer(chain_id(_digest(BASE), _digest(TOP)), _digest(BASE), io.BytesIO(TOP))
    assert os.listdir(os.path.join(work, "s", "layers")) == []
    assert os.listdir(os.path.join(work, "s", "tmp")) == []


def test_cleanup_removes_staging(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"), driver="copy")
    os.makedirs(os.path.join(work, "s", "tmp", "layer-deadbeef", "diff", "half"))
    snap.cleanup()
    assert os.listdir(os.path.join(work, "s", "tmp")) == []


@root_only
def test_remove_layer(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    (c0,) = _add(snap, [BASE])
    assert snap.remove_layer(c0) is True
    assert not snap.has_layer(c0)
    assert snap.remove_layer(c0) is False
    assert os.listdir(os.path.join(work, "s", "l")) == []
    with pytest.raises(KeyError):
        snap.layer_path(c0)


# ---------------------------------------------------------------------------
# containers on overlay


@needs_overlay
def test_overlay_container_lifecycle(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    assert snap.driver == "overlay"
    chains = _add(snap, [BASE, TOP])
    merged = snap.prepare("c1", chains)
    cdir = os.path.join(work, "s", "containers", "c1")
    assert merged == os.path.join(cdir, "merged")
    assert sorted(n for n in os.listdir(cdir) if os.path.isdir(os.path.join(cdir, n))) == [
        "merged",
        "upper",
        "work",
    ]
    assert not snap.is_mounted("c1")
    try:
        assert snap.mount("c1", chains) == merged
        assert snap.is_mounted("c1") and is_mountpoint(merged)
        assert snap.mount("c1") == merged  # idempotent
        assert sorted(os.listdir(os.path.join(merged, "etc"))) == ["hostname", "passwd"]
        assert os.listdir(os.path.join(merged, "opt/a")) == ["c"]
        assert os.readlink(os.path.join(merged, "bin")) == "usr/bin"

        # container activity
        with open(os.path.join(merged, "etc/passwd"), "a") as f:
            f.write("app:x:1000:1000\n")
        os.unlink(os.path.join(merged, "var/x"))
        os.makedirs(os.path.join(merged, "tmp/new"))
        with open(os.path.join(merged, "tmp/new/file"), "w") as f:
            f.write("n")
        shutil.rmtree(os.path.join(merged, "opt"))
        os.makedirs(os.path.join(merged, "opt"))
        with open(os.path.join(merged, "opt/fresh"), "w") as f:
            f.write("f")

        assert snap.changes("c1") == [
            ("/etc", 0),
            ("/etc/passwd", 0),
            ("/opt", 0),
            ("/opt/a", 2),
            ("/opt/fresh", 1),
            ("/tmp", 1),
            ("/tmp/new", 1),
            ("/tmp/new/file", 1),
            ("/var", 0),
            ("/var/x", 2),
        ]
        out = io.BytesIO()
        diff_id, size = snap.diff("c1", out)
        diff = out.getvalue()
        assert (diff_id, size) == (_digest(diff), len(diff))
        with tarfile.open(fileobj=io.BytesIO(diff)) as tf:
            names = [m.name for m in tf]
        assert "var/.wh.x" in names and "opt/.wh..wh..opq" in names and "etc/passwd" in names

        # commit-like roundtrip: base + top + diff flattened by the copy driver == live merged view
        copy_snap = Snapshotter(os.path.join(work, "s"), driver="copy")
        committed = chains + [chain_id(chains[-1], diff_id)]
        copy_snap.add_layer(committed[-1], chains[-1], io.BytesIO(diff))
        rootfs = copy_snap.prepare("flat", committed)
        assert copy_snap.mount("flat") == rootfs
        assert _view(rootfs) == _view(merged)

        # docker export of the merged view
        exported = io.BytesIO()
        tar_dir(merged, exported)
        with tarfile.open(fileobj=io.BytesIO(exported.getvalue())) as tf:
            assert "etc/passwd" in [m.name for m in tf]
    finally:
        snap.unmount("c1")
    assert not snap.is_mounted("c1")
    snap.unmount("c1")  # no-op
    # upper survives unmount; remount shows the changes again
    try:
        snap.mount("c1")
        assert os.path.isfile(os.path.join(merged, "opt/fresh"))
    finally:
        snap.remove("c1")
    assert not os.path.exists(cdir)
    assert not is_mountpoint(merged)
    # layers are untouched by container removal
    assert os.path.isfile(os.path.join(snap.layer_path(chains[0]), "var/x"))


@needs_overlay
def test_overlay_zero_layers(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    merged = snap.prepare("scratch", [])
    try:
        assert snap.mount("scratch") == merged
        assert os.listdir(merged) == []
        with open(os.path.join(merged, "f"), "w") as f:
            f.write("x")
        assert snap.changes("scratch") == [("/f", 1)]
    finally:
        snap.remove("scratch")
    assert os.listdir(os.path.join(work, "s", "empty")) == []


@needs_overlay
def test_overlay_many_layers_long_root(work: str) -> None:
    root = os.path.join(work, "x" * 60, "y" * 60, "storage")
    snap = Snapshotter(root)
    tars = [_tar((f"layer{i:03d}", b"%d" % i), ("shared", b"%d" % i)) for i in range(80)]
    chains = _add(snap, tars)
    cwd = os.getcwd()
    try:
        merged = snap.mount("deep", chains)
        assert os.getcwd() == cwd
        names = os.listdir(merged)
        assert len(names) == 81
        with open(os.path.join(merged, "shared")) as f:
            assert f.read() == "79"  # topmost layer wins
    finally:
        snap.remove("deep")


def test_invalid_container_id(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"), driver="copy")
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            snap.prepare(bad, [])


# ---------------------------------------------------------------------------
# copy driver


@root_only
def test_copy_driver(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"), driver="copy")
    chains = _add(snap, [BASE, TOP])
    rootfs = snap.prepare("c2", chains)
    assert rootfs == os.path.join(work, "s", "containers", "c2", "rootfs")
    assert not snap.is_mounted("c2")
    assert snap.mount("c2") == rootfs
    assert snap.is_mounted("c2")
    assert sorted(os.listdir(os.path.join(rootfs, "etc"))) == ["hostname", "passwd"]
    assert os.listdir(os.path.join(rootfs, "opt/a")) == ["c"]
    assert "trusted.overlay.opaque" not in os.listxattr(os.path.join(rootfs, "opt/a"))
    with open(os.path.join(rootfs, "marker"), "w") as f:
        f.write("m")
    assert snap.mount("c2") == rootfs  # materialised once
    assert os.path.exists(os.path.join(rootfs, "marker"))
    snap.unmount("c2")
    with pytest.raises(NotImplementedError):
        snap.changes("c2")
    snap.remove("c2")
    assert not os.path.exists(os.path.join(work, "s", "containers", "c2"))


# ---------------------------------------------------------------------------
# mount helpers


@needs_overlay
def test_overlay_supported_cached(work: str) -> None:
    assert overlay_supported(work) is True
    assert overlay_supported(work) is True
    assert [n for n in os.listdir(work) if n.startswith(".overlay-probe")] == []


@root_only
def test_bind_mount_readonly_and_umount(work: str) -> None:
    src = os.path.join(work, "src")
    dst = os.path.join(work, "dst")
    os.makedirs(src)
    os.makedirs(dst)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("x")
    assert not is_mountpoint(dst)
    bind_mount(src, dst, readonly=True)
    try:
        assert is_mountpoint(dst)
        with open(os.path.join(dst, "f")) as f:
            assert f.read() == "x"
        with pytest.raises(OSError) as exc:
            open(os.path.join(dst, "g"), "w").close()
        assert exc.value.errno == errno.EROFS
    finally:
        assert umount(dst) is True
    assert not is_mountpoint(dst)
    assert umount(dst) is False  # not mounted: ignored
    assert umount(os.path.join(work, "missing")) is False


@needs_overlay
def test_mount_overlay_relative_fallback(work: str) -> None:
    parent = os.path.join(work, "p" * 200, "q" * 40)
    lowers = []
    for i in range(20):
        d = os.path.join(parent, f"l{i:02d}")
        os.makedirs(d)
        with open(os.path.join(d, f"f{i}"), "w") as f:
            f.write(str(i))
        with open(os.path.join(d, "top"), "w") as f:
            f.write(str(i))
        lowers.append(d)
    upper, wdir, merged = (os.path.join(parent, n) for n in ("upper", "work", "merged"))
    for d in (upper, wdir, merged):
        os.makedirs(d)
    assert sum(len(p) + 1 for p in lowers) > os.sysconf("SC_PAGE_SIZE")
    cwd = os.getcwd()
    mount_overlay(lowers, upper, wdir, merged)
    try:
        assert os.getcwd() == cwd
        assert len(os.listdir(merged)) == 21
        with open(os.path.join(merged, "top")) as f:
            assert f.read() == "0"  # lowers[0] is the topmost layer
    finally:
        umount(merged)

    many = []
    for i in range(700):
        d = os.path.join(work, "m", f"{i:04d}")
        os.makedirs(d)
        many.append(d)
    with pytest.raises(OSError) as exc:
        mount_overlay(many, upper, wdir, merged)
    assert exc.value.errno == errno.E2BIG
    assert not is_mountpoint(merged)


@needs_overlay
def test_remove_with_submount_does_not_touch_bind_source(work: str) -> None:
    snap = Snapshotter(os.path.join(work, "s"))
    chains = _add(snap, [BASE])
    merged = snap.mount("c3", chains) if snap.prepare("c3", chains) else ""
    host_dir = os.path.join(work, "volume")
    os.makedirs(host_dir)
    with open(os.path.join(host_dir, "precious"), "w") as f:
        f.write("keep me")
    os.makedirs(os.path.join(merged, "mnt"))
    bind_mount(host_dir, os.path.join(merged, "mnt"))
    snap.remove("c3")
    assert not os.path.exists(os.path.join(work, "s", "containers", "c3"))
    with open(os.path.join(host_dir, "precious")) as f:
        assert f.read() == "keep me"


def test_staging_dir_spreads_layers_where_supported() -> None:
    import fcntl
    import struct

    d = tempfile.mkdtemp(prefix="hatoba-test-spread-", dir="/var/tmp")
    try:
        Snapshotter(d)
        tmp = os.path.join(d, "tmp")
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        try:
            buf = bytearray(4)
            try:
                fcntl.ioctl(fd, 0x80086601, buf)  # FS_IOC_GETFLAGS
            except OSError:
                pytest.skip("no inode flags on this file system")
        finally:
            os.close(fd)
        if spread_subdirs(tmp):  # ext4: chattr +T (FS_TOPDIR_FL)
            assert struct.unpack("=i", bytes(buf))[0] & 0x00020000
        assert spread_subdirs(os.path.join(d, "missing")) is False
    finally:
        shutil.rmtree(d)
