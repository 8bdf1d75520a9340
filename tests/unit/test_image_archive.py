"""Unit tests for image archives (hatoba.images.archive, gojson), commit helpers and progress rendering."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from hatoba.db import Database
from hatoba.engine import commit as commit_mod
from hatoba.errors import InvalidParameter
from hatoba.images import archive, gojson
from hatoba.images import mediatypes as mt
from hatoba.images.store import ImageStore, default_config
from hatoba.storage.content import ContentStore
from hatoba.storage.snapshots import Snapshotter

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")

# The friendlyhello image of cli-traces/39-save.txt (dockerd 20.10.24): its config and the member
# names / sizes dockerd wrote for it.
_CC = {"Hostname": "6d2d54a069eb", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
       "AttachStderr": False, "ExposedPorts": {"80/tcp": {}}, "Tty": False, "OpenStdin": False, "StdinOnce": False,
       "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NAME=World"],
       "Cmd": ["/bin/sh", "-c", "#(nop) ", 'CMD ["sh" "app.sh"]'],
       "Image": "sha256:7c18d5e5f8c178bdc4dab64ea1de3caa551abe1d7fd340205f1fc29604538cfa", "Volumes": None,
       "WorkingDir": "/app", "Entrypoint": None, "OnBuild": None, "Labels": {}}
FRIENDLYHELLO = {
    "architecture": "amd64",
    "config": {**_CC, "Hostname": "", "Cmd": ["sh", "app.sh"], "Labels": None},
    "container": "6d2d54a069eba38af674c9395fecf6faf663d7203eff949aa305f30474f64633",
    "container_config": _CC,
    "created": "2026-11-22T09:42:51.430863171Z",
    "docker_version": "20.10.24+dfsg1",
    "history": [{"created": "2026-11-22T09:40:00.309339382Z", "comment": "Imported from -"}],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [
        "sha256:672529cbc978841389de2c94399387b0d7e14f38162751a727ab06ec14ce671f",
        "sha256:55f9f785c61a9d3470cc43b380befc1be90cecc2aadd92889c8443f6e316be04",
        "sha256:3405cd3a30e502b133c6512680d25ec71b48a981a2cddb906cb1975d86c1a77a",
        "sha256:fd88e9dd1e6078e8579535a24cb7ee0569e0027ee7ce921bee1b6f0070203b0d",
        "sha256:b029d4c3a76a8f99b87bb7b027ae5ad9a5b57e15a966cecd81a80f06e777bee8"]},
}
FRIENDLYHELLO_V1 = [
    ("815828efd7b26fb4c87800d243ceb5e1ff8a8fc9fe15612f511c696e263dab02", 401),
    ("59fc48b8a059df5897e0fa42cb2f261342cb607343d898fc2cd5ce7dee0c35d3", 477),
    ("94974164f0cfaa6a0c5562a5f23d3e743c7f8360ed5747625cdb733fd611d783", 477),
    ("b2063533083e11e1f32612f7be11d23f28e7e7df5f24fdd4f86792aeb227c086", 477),
    ("1748d4e175ae77fb6b24a1c01ae023db8c430ca8ad6f0ab9eb98d9ca689c65fe", 1328),
]


# ---------------------------------------------------------------------------------------------------------
# Go JSON and v1 ids


def test_v1_layer_ids_match_dockerd():
    got = [(v1, len(js)) for v1, js in archive.v1_layer_ids(FRIENDLYHELLO)]
    assert got == FRIENDLYHELLO_V1


def test_v1_layer_json_shapes():
    layers = archive.v1_layer_ids(FRIENDLYHELLO)
    base = json.loads(layers[0][1])
    assert list(base) == ["id", "created", "container_config", "os"]
    assert base["created"] == "1970-01-01T00:00:00Z" and base["os"] == "linux"
    mid = json.loads(layers[1][1])
    assert list(mid)[:2] == ["id", "parent"] and mid["parent"] == layers[0][0]
    top = json.loads(layers[-1][1])
    assert list(top) == ["id", "parent", "created", "container", "container_config", "docker_version", "config",
                         "architecture", "os"]
    assert top["config"]["Cmd"] == ["sh", "app.sh"]
    assert list(top["config"])[6] == "ExposedPorts"


def test_gojson_escapes_and_orders():
    assert gojson.dumps({"a": "<&>", "b": "é\u2028"}) == '{"a":"\\u003c\\u0026\\u003e","b":"é\\u2028"}'.encode()
    cc = gojson.container_config({"Cmd": ["x"], "Labels": {"a": "b"}, "Bogus": 1, "StopSignal": ""})
    assert list(cc) == ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
                        "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
                        "OnBuild", "Labels"]
    raw = gojson.image_config({"created": "2020-01-01T00:00:00Z", "config": {"Cmd": ["sh"]}, "os": "linux",
                               "architecture": "amd64", "container_config": {},
                               "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "sh",
                                            "empty_layer": False, "author": "a <b>"}],
                               "rootfs": {"type": "layers", "diff_ids": []}})
    doc = json.loads(raw)
    assert list(doc) == sorted(doc)
    assert doc["history"] == [{"created": "2020-01-01T00:00:00Z", "author": "a <b>", "created_by": "sh"}]
    assert b"\\u003cb\\u003e" in raw


def test_progress_bar():
    from hatoba.humanize import human_size, progress_string

    assert progress_string({"current": 1536, "total": 1536}) == "[" + "=" * 50 + ">]  1.536kB/1.536kB"
    assert progress_string({"current": 0, "total": 0}) == ""
    assert progress_string({"current": 1_000_000, "total": 2_140_160}).endswith("]      1MB/2.14MB")
    assert human_size(2129920) == "2.13MB"


def test_progress_reader_reports_like_dockerd():
    msgs: list[dict] = []
    r = archive.ProgressReader(io.BytesIO(b"x" * 1536), 1536, "55f9f785c61a", "Loading layer", msgs.append)
    while r.read(1 << 20):
        pass
    r.finish()
    assert msgs == [{"status": "Loading layer", "progressDetail": {"current": 1536, "total": 1536},
                     "progress": "[" + "=" * 50 + ">]  1.536kB/1.536kB", "id": "55f9f785c61a"}] * 2


def test_clean_name_refuses_escapes():
    assert archive._clean_name("./manifest.json") == "manifest.json"
    assert archive._clean_name("a/../b") == "b"
    for bad in ("../x", "/etc/passwd", "a/../../x", ".."):
        with pytest.raises(archive.ArchiveError):
            archive._clean_name(bad)


# ---------------------------------------------------------------------------------------------------------
# a real store


@pytest.fixture
def store() -> Iterator[ImageStore]:
    d = tempfile.mkdtemp(prefix="hatoba-test-archive-")
    try:
        yield ImageStore(Database(os.path.join(d, "db")), ContentStore(os.path.join(d, "content")),
                         Snapshotter(os.path.join(d, "overlay"), driver="overlay"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _tar(entries: list[tuple[str, bytes | None]], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A tar of files (bytes) and dirs (None), plus symlinks, with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, target, 1_600_000_000
            tf.addfile(ti)
    return buf.getvalue()


def _image(store: ImageStore, layers: list[bytes], tag: str | None, **cfg: Any) -> Any:
    diff_ids = [store.add_layer(io.BytesIO(x)) for x in layers]
    config = default_config(diff_ids, cmd=["sh"], created="2024-01-02T03:04:05Z", created_by="test")
    config.update(cfg)
    return store.create(config, tag)


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def _read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


L1 = _tar([("bin", None), ("bin/hello", b"hello\n")])
L2 = _tar([("etc", None), ("etc/motd", b"motd\n")])


@root_only
def test_save_docker_archive_layout(store):
    img = _image(store, [L1, L2], "movetest/app:v1")
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/app"]), out)
    data = out.getvalue()
    members = _members(data)
    v1 = [v for v, _ in archive.v1_layer_ids(img.config)]
    names = [n for n in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    for v in v1:
        assert members[v].isdir() and members[v].mode == 0o755
        assert _read(data, f"{v}/VERSION") == b"1.0"
        assert json.loads(_read(data, f"{v}/json"))["id"] == v
    assert _read(data, f"{v1[0]}/layer.tar") == L1
    assert _read(data, f"{v1[1]}/layer.tar") == L2
    assert _read(data, img.id[7:] + ".json") == store.content.read(img.id)
    manifest = _read(data, "manifest.json")
    assert manifest == (json.dumps([{"Config": img.id[7:] + ".json", "RepoTags": ["movetest/app:v1"],
                                     "Layers": [f"{v}/layer.tar" for v in v1]}], separators=(",", ":"))
                        + "\n").encode()
    assert _read(data, "repositories") == (b'{"movetest/app":{"v1":"%s"}}\n' % v1[-1].encode())
    assert members["manifest.json"].mtime == 0
    # the same bytes every time
    again = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/app:v1"]), again)
    assert again.getvalue() == data


@root_only
def test_save_repeated_layer_is_a_symlink(store):
    a = _image(store, [L1], "movetest/a:1")
    b = _image(store, [L1, L2], "movetest/b:1")
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/a:1", "movetest/b:1"]), out)
    members = _members(out.getvalue())
    va = archive.v1_layer_ids(a.config)[0][0]
    vb = archive.v1_layer_ids(b.config)[0][0]
    assert va != vb
    links = [m for m in (members[f"{va}/layer.tar"], members[f"{vb}/layer.tar"]) if m.issym()]
    assert len(links) == 1 and links[0].linkname.startswith("../") and links[0].linkname.endswith("/layer.tar")
    manifest = json.loads(_read(out.getvalue(), "manifest.json"))
    assert [m["RepoTags"] for m in manifest] == [["movetest/a:1"], ["movetest/b:1"]]
    dst = _fresh(store)
    try:
        res, _ = _load(dst, out.getvalue())
        assert res.images == [a.id, b.id] and res.tags == ["movetest/a:1", "movetest/b:1"]
    finally:
        shutil.rmtree(os.path.dirname(dst.content.root), ignore_errors=True)


@root_only
def test_resolve_names(store):
    img = _image(store, [L1], "movetest/r:1")
    store.tag(img.id, "movetest/r:2")
    assert [(i.id, t) for i, t in archive.resolve(store, ["movetest/r"])] == [(img.id, ["movetest/r:1",
                                                                                      "movetest/r:2"])]
    assert archive.resolve(store, [img.id[7:19]])[0][1] == []
    assert archive.resolve(store, ["sha256:" + img.id[7:20]])[0][0].id == img.id
    with pytest.raises(Exception, match="reference does not exist"):
        archive.resolve(store, ["movetest/r:3"])
    with pytest.raises(Exception, match="No such image: nosuch"):
        archive.resolve(store, ["nosuch"])


def _load(store: ImageStore, data: bytes, quiet: bool = True) -> tuple[archive.LoadResult, list[dict]]:
    msgs: list[dict] = []
    res = archive.load(store, io.BytesIO(data), msgs.append, quiet=quiet)
    return res, msgs


def _fresh(store: ImageStore) -> ImageStore:
    d = tempfile.mkdtemp(prefix="hatoba-test-archive2-")
    return ImageStore(Database(os.path.join(d, "db")), ContentStore(os.path.join(d, "content")),
                      Snapshotter(os.path.join(d, "overlay"), driver="overlay"))


@root_only
def test_load_round_trip(store):
    img = _image(store, [L1, L2], "movetest/app:v1")
    store.tag(img.id, "other/name:x")
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/app:v1", "other/name:x"]), out)
    dst = _fresh(store)
    try:
        res, msgs = _load(dst, out.getvalue(), quiet=False)
        assert res.images == [img.id]
        assert dst.tags_of(img.id) == ["movetest/app:v1", "other/name:x"]
        loading = [m for m in msgs if m.get("status") == "Loading layer"]
        assert {m["id"] for m in loading} == {d[7:19] for d in img.diff_ids}
        assert loading[-1]["progressDetail"]["current"] == loading[-1]["progressDetail"]["total"]
        assert [m["stream"] for m in msgs if "stream" in m] == ["Loaded image: movetest/app:v1\n",
                                                                "Loaded image: other/name:x\n"]
        assert dst.inspect(dst.get(img.id))["Metadata"]["LastTagTime"] == "0001-01-01T00:00:00Z"
        with open(os.path.join(dst.layer_dirs(dst.get(img.id))[-1], "etc", "motd"), "rb") as f:
            assert f.read() == b"motd\n"
        # loading again: layers exist, no progress; nothing renamed
        res2, msgs2 = _load(dst, out.getvalue(), quiet=False)
        assert res2.images == [img.id] and not [m for m in msgs2 if m.get("status")]
    finally:
        shutil.rmtree(os.path.dirname(dst.content.root), ignore_errors=True)


@root_only
def test_load_untagged_reports_ids_and_renames(store):
    img = _image(store, [L1], None)
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, [img.id]), out)
    _, msgs = _load(store, out.getvalue())
    assert msgs == [{"stream": f"Loaded image ID: {img.id}\n"}]
    other = _image(store, [L2], "movetest/ren:1")
    tagged = _image(store, [L1], "movetest/ren:2", comment="another")
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/ren:2"]), out)
    store.tag(other.id, "movetest/ren:2")
    _, msgs = _load(store, out.getvalue())
    assert msgs[0]["stream"] == (f"The image movetest/ren:2 already exists, renaming the old one with ID {other.id} "
                                 "to empty string\n")
    assert store.tags["movetest/ren:2"] == tagged.id


def _oci_layout(layers: list[bytes], annotations: dict[str, str], *, gz: bool = True,
                extra: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    blobs: dict[str, bytes] = {}

    def put(b: bytes) -> str:
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        blobs[d] = b
        return d

    descs, diff_ids = [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, mtime=0) if gz else raw
        descs.append({"mediaType": mt.OCI_LAYER + ("+gzip" if gz else ""), "digest": put(blob),
                      "size": len(blob)})
    cfg = json.dumps(default_config(diff_ids, cmd=["sh"], created="2024-01-02T03:04:05Z")).encode()
    cfg_d = put(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg_d, "size": len(cfg)},
                      "layers": descs}).encode()
    man_d = put(man)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": man_d,
                                                "size": len(man), "annotations": annotations}]}
    entries: list[tuple[str, bytes | None]] = [("blobs", None), ("blobs/sha256", None)]
    entries += [("blobs/sha256/" + d[7:], b) for d, b in blobs.items()]
    entries += [("oci-layout", archive.OCI_LAYOUT_CONTENT), ("index.json", json.dumps(index).encode())]
    entries += list((extra or {}).items())
    return _tar(entries), "sha256:" + hashlib.sha256(cfg).hexdigest()


@root_only
def test_load_oci_layout(store):
    data, iid = _oci_layout([L1, L2], {archive.ANN_REF_NAME: "movetest/oci:v1"})
    res, msgs = _load(store, data)
    assert res.images == [iid] and res.tags == ["movetest/oci:v1"]
    assert msgs == [{"stream": "Loaded image: movetest/oci:v1\n"}]
    # a bare tag names no repository: loaded untagged
    data, iid2 = _oci_layout([L2], {archive.ANN_REF_NAME: "latest"}, gz=False)
    res, msgs = _load(store, data)
    assert res.images == [iid2] and not res.tags
    assert msgs == [{"stream": f"Loaded image ID: {iid2}\n"}]
    # containerd's full name wins over ref.name
    data, _ = _oci_layout([L1], {archive.ANN_REF_NAME: "v9", archive.ANN_IMAGE_NAME: "docker.io/movetest/c:v9"})
    assert _load(store, data)[0].tags == ["movetest/c:v9"]


@root_only
def test_save_oci_format_loads_both_ways(store):
    img = _image(store, [L1, L2], "movetest/both:v1")
    out = io.BytesIO()
    archive.save(store, archive.resolve(store, ["movetest/both:v1"]), out, fmt="oci")
    data = out.getvalue()
    members = _members(data)
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= set(members)
    index = json.loads(_read(data, "index.json"))
    assert index["manifests"][0]["annotations"] == {archive.ANN_IMAGE_NAME: "docker.io/movetest/both:v1",
                                                    archive.ANN_REF_NAME: "v1"}
    dst = _fresh(store)
    try:
        assert _load(dst, data)[0].images == [img.id]
        # the same archive without manifest.json is read through index.json
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            entries = [(m.name, None if m.isdir() else tf.extractfile(m).read())  # type: ignore[union-attr]
                       for m in tf.getmembers() if m.name not in ("manifest.json", "repositories")]
        dst2 = _fresh(store)
        try:
            res = _load(dst2, _tar(entries))[0]
            assert res.images == [img.id] and res.tags == ["movetest/both:v1"]
        finally:
            shutil.rmtree(os.path.dirname(dst2.content.root), ignore_errors=True)
    finally:
        shutil.rmtree(os.path.dirname(dst.content.root), ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# hostile and broken archives


def _docker_archive(layer: bytes, *, tag: str = "movetest/evil:1") -> bytes:
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps(default_config([diff], cmd=["sh"], created="2024-01-02T03:04:05Z")).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}]).encode()
    return _tar([("l", None), ("l/layer.tar", layer), (cfg_name, cfg), ("manifest.json", manifest)])


def _blobs(store: ImageStore) -> set[str]:
    return set(store.content.list())


def _symlink_escape(target: str) -> bytes:
    """A layer with `evil -> target` and then a file written through `evil/`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("evil")
        ti.type, ti.linkname = tarfile.SYMTYPE, target
        tf.addfile(ti)
        ti = tarfile.TarInfo("evil/pwned")
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    return buf.getvalue()


def _hardlink_escape() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("passwd")
        ti.type, ti.linkname = tarfile.LNKTYPE, "../../../../etc/passwd"
        tf.addfile(ti)
    return buf.getvalue()


@root_only
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-abs", "symlink-rel", "hardlink"])
def test_hostile_layers_are_refused(store, kind, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = {
        "dotdot": lambda: _tar([("../../../../" + str(outside).lstrip("/") + "/escaped", b"x")]),
        "absolute": lambda: _tar([(str(outside) + "/escaped", b"x")]),
        "symlink-abs": lambda: _symlink_escape(str(outside)),
        "symlink-rel": lambda: _symlink_escape("../../../../../../../../" + str(outside).lstrip("/")),
        "hardlink": _hardlink_escape,
    }[kind]()
    before = _blobs(store)
    with pytest.raises(archive.ArchiveError, match="error loading layer"):
        _load(store, _docker_archive(layer))
    assert not store.images and not store.tags
    assert _blobs(store) == before  # the refused layer's blob is gone again
    assert not os.listdir(outside)
    assert not store.snapshots.layers()


@pytest.mark.parametrize("entries, symlinks, message", [
    ([("../x", b"x")], None, "outside of the archive"),
    ([("/etc/x", b"x")], None, "absolute path"),
    ([], {"manifest.json": "../../etc/passwd"}, "outside of the archive"),
    ([], {"manifest.json": "/etc/passwd"}, "absolute path"),
    ([("x", b"x")], None, "no manifest.json or index.json"),
    ([("repositories", b"{}")], None, "legacy"),
])
def test_hostile_outer_archives_are_refused(store, entries, symlinks, message):
    with pytest.raises(archive.ArchiveError, match=message):
        _load(store, _tar(entries, symlinks=symlinks))


def test_not_a_tar(store):
    with pytest.raises(archive.ArchiveError, match="invalid archive"):
        _load(store, b"this is not a tar archive at all" * 100)


@root_only
def test_diff_id_mismatch(store):
    data = _docker_archive(L1)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        entries = [(m.name, None if m.isdir() else tf.extractfile(m).read()) for m in tf.getmembers()]  # type: ignore
    entries = [(n, L2 if n == "l/layer.tar" else d) for n, d in entries]
    with pytest.raises(archive.ArchiveError, match="invalid diffID for layer 0"):
        _load(store, _tar(entries))
    assert not store.images


# ---------------------------------------------------------------------------------------------------------
# commit helpers, store views


def test_parse_repo_tag():
    assert commit_mod.parse_repo_tag("docker.io/tracerepo/webcommit", "v1") == "docker.io/tracerepo/webcommit:v1"
    assert commit_mod.parse_repo_tag("busybox", "") == "docker.io/library/busybox:latest"
    assert commit_mod.parse_repo_tag("", "v1") is None
    with pytest.raises(InvalidParameter, match="cannot commit to digest reference"):
        commit_mod.parse_repo_tag("busybox@sha256:" + "a" * 64, "")
    with pytest.raises(InvalidParameter):
        commit_mod.parse_repo_tag("Busybox", "")


def test_merge_like_dockerd():
    container = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"x": "1"}, "ExposedPorts": {"80/tcp": {}},
                 "WorkingDir": "/w", "User": "u"}
    cfg = commit_mod.merge({"Env": ["A=2"], "Cmd": None, "Labels": None}, container)
    assert cfg["Env"] == ["A=2", "PATH=/bin"] and cfg["Cmd"] == ["sh"] and cfg["Labels"] == {"x": "1"}
    assert cfg["WorkingDir"] == "/w" and cfg["User"] == "u" and cfg["ExposedPorts"] == {"80/tcp": {}}


def test_filter_layer_drops_init_mountpoints():
    src = io.BytesIO(_tar([("etc", None), ("etc/hosts", b""), ("etc/hostname", b""), ("proc", None), ("dev", None),
                           ("data", None), ("data/f", b"1"), ("usr", None), ("usr/hosts", b"")]))
    dst = io.BytesIO()
    kept = commit_mod.filter_layer(src, dst, {"etc/hosts", "etc/hostname", "proc", "dev"})
    assert kept == 4
    assert list(_members(dst.getvalue())) == ["data", "data/f", "usr", "usr/hosts"]
    src = io.BytesIO(_tar([("etc", None), ("etc/hosts", b""), ("etc/passwd", b"root")]))
    dst = io.BytesIO()
    commit_mod.filter_layer(src, dst, {"etc/hosts"})
    assert list(_members(dst.getvalue())) == ["etc", "etc/passwd"]


@root_only
def test_inspect_comment_and_parent_history(store):
    base = _image(store, [L1], "movetest/base:1", comment="")
    base.config["history"][0]["comment"] = "Imported from -"
    assert store.inspect(base)["Comment"] == "Imported from -"
    child = _image(store, [L1, L2], "movetest/child:1")
    child.config["history"] = base.config["history"] + [{"created": "2024-01-02T03:04:06Z", "created_by": "sh",
                                                          "comment": "msg"}]
    store.set_parent(child.id, base.id)
    assert store.inspect(child)["Parent"] == base.id
    assert store.inspect(child)["Comment"] == "msg"
    hist = store.history(child)
    assert [(h["Id"], h["Tags"]) for h in hist] == [(child.id, ["movetest/child:1"]), (base.id, ["movetest/base:1"])]
    reopened = ImageStore(store.db, store.content, store.snapshots)
    assert reopened.images[child.id].parent == base.id


def test_cli_renders_load_progress_like_docker(monkeypatch):
    """trace 41: `docker load` on an 80-column terminal."""
    from hatoba.cli import jsonmessage
    from hatoba.humanize import progress_string

    monkeypatch.setattr(jsonmessage, "terminal_width", lambda out: 80)
    msgs = []
    for lid, size in (("55f9f785c61a", 1536), ("3405cd3a30e5", 7168)):
        m = {"status": "Loading layer", "progressDetail": {"current": size, "total": size},
             "progress": progress_string({"current": size, "total": size}), "id": lid}
        msgs += [m, m]
    msgs.append({"stream": "Loaded image: friendlyhello:latest\n"})
    out = io.StringIO()
    jsonmessage.display(msgs, out, tty=True)
    expected = ("\n\x1b[1A\x1b[2K\r55f9f785c61a: Loading layer  1.536kB/1.536kB\r\x1b[1B"
                "\x1b[1A\x1b[2K\r55f9f785c61a: Loading layer  1.536kB/1.536kB\r\x1b[1B"
                "\n\x1b[1A\x1b[2K\r3405cd3a30e5: Loading layer  7.168kB/7.168kB\r\x1b[1B"
                "\x1b[1A\x1b[2K\r3405cd3a30e5: Loading layer  7.168kB/7.168kB\r\x1b[1B"
                "Loaded image: friendlyhello:latest\n")
    assert out.getvalue() == expected
    plain = io.StringIO()
    jsonmessage.display(msgs, plain, tty=False)
    assert plain.getvalue() == "Loaded image: friendlyhello:latest\n"
