"""Image configs (hatoba.schema.image): dockerd 20.10's `docker load` messages for bad configs (recorded
from the reference daemon), and image store views that stay answerable for any stored config."""

from __future__ import annotations

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatoba.db import Database
from hatoba.errors import InvalidParameter
from hatoba.golang import unix_seconds as parse_rfc3339
from hatoba.images import archive
from hatoba.images.store import ImageStore
from hatoba.schema import image
from hatoba.storage.content import ContentStore
from hatoba.storage.snapshots import Snapshotter

DIFF = "sha256:" + "a" * 64


def _cfg(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                           "rootfs": {"type": "layers", "diff_ids": [DIFF]}, "created": "2024-01-01T00:00:00Z",
                           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x"}]}
    cfg.update(over)
    return cfg


def _with_config(**cfg: Any) -> dict[str, Any]:
    c = _cfg()
    c["config"] = {**c["config"], **cfg}
    return c


def _with_history(h: Any) -> dict[str, Any]:
    return _cfg(history=h)


DOCKERD = [  # (config, message of dockerd 20.10's load)
    (_cfg(created="notadate"),
     'parsing time "\\"notadate\\"" as "\\"2006-01-02T15:04:05Z07:00\\"": cannot parse "notadate\\"" as "2006"'),
    (_cfg(created=5), 'parsing time "5" as "\\"2006-01-02T15:04:05Z07:00\\"": cannot parse "5" as "\\""'),
    (_cfg(config=5), "json: cannot unmarshal number into Go struct field Image.config of type container.Config"),
    (_with_config(Labels=[1]),
     "json: cannot unmarshal array into Go struct field Config.config.Labels of type map[string]string"),
    (_with_config(Cmd=5), "json: cannot unmarshal number into Go struct field Config.config.Cmd of type string"),
    (_with_config(Env=[5]), "json: cannot unmarshal number into Go struct field Config.config.Env of type string"),
    (_with_history(5), "json: cannot unmarshal number into Go struct field Image.history of type []image.History"),
    (_with_history([5]), "json: cannot unmarshal number into Go struct field Image.history of type image.History"),
    (_with_history([{"created": "x"}]),
     'parsing time "\\"x\\"" as "\\"2006-01-02T15:04:05Z07:00\\"": cannot parse "x\\"" as "2006"'),
    (_cfg(architecture=5), "json: cannot unmarshal number into Go struct field Image.architecture of type string"),
    (_cfg(rootfs=5), "json: cannot unmarshal number into Go struct field Image.rootfs of type image.RootFS"),
]


@pytest.mark.parametrize("cfg,message", DOCKERD)
def test_bad_configs_match_dockerd(cfg: dict, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        image.decode_config(json.dumps(cfg).encode())
    assert e.value.message == message


def test_decode_config_other_errors() -> None:
    with pytest.raises(InvalidParameter, match="^invalid image JSON, no RootFS key$"):
        image.decode_config(json.dumps({"os": "linux"}).encode())
    with pytest.raises(InvalidParameter, match="^json: cannot unmarshal array into Go value of type image.Image$"):
        image.decode_config(b"[1]")
    with pytest.raises(InvalidParameter, match="after top-level value"):
        image.decode_config(json.dumps(_cfg()).encode() + b" x")
    with pytest.raises(InvalidParameter, match="month out of range"):
        image.decode_config(json.dumps(_cfg(created="2024-13-01T00:00:00Z")).encode())
    with pytest.raises(InvalidParameter, match="invalid checksum digest format"):
        image.decode_config(json.dumps(_cfg(rootfs={"type": "layers", "diff_ids": ["x"]})).encode())
    assert image.decode_config(json.dumps(_cfg(rootfs={"diff_ids": ["x"]})).encode(), check_digests=False)
    assert image.sanitize(_cfg(rootfs={"diff_ids": [DIFF, "x"]}))["rootfs"] == {"diff_ids": []}


def test_decode_config_normalises() -> None:
    cfg = image.decode_config(json.dumps(_with_config(Cmd="sh -c x", Entrypoint=None)).encode())
    assert cfg["config"] == {"Cmd": ["sh -c x"]}
    assert image.decode_config(json.dumps(_cfg(created=None, extra=1)).encode()).keys() == \
        {"architecture", "os", "config", "rootfs", "history"}


@pytest.mark.parametrize("cfg", [c for c, _ in DOCKERD] + [_cfg(rootfs=None), {"rootfs": {"diff_ids": 5}}, [], 5])
def test_sanitize_gives_a_well_typed_config(cfg: Any) -> None:
    out = image.sanitize(cfg)
    assert isinstance(out, dict)
    assert isinstance(out.get("config", {}), dict) and isinstance(out.get("history", []), list)
    assert all(isinstance(h, dict) for h in out.get("history", []))
    assert isinstance(out.get("rootfs", {}).get("diff_ids", []), list)
    assert isinstance(out.get("config", {}).get("Labels", {}), dict)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["created", "config", "history", "rootfs", "diff_ids", "Labels", "Cmd",
                                         "architecture", "created_by", "x"]), inner, max_size=4),
                    max_leaves=20))
def test_sanitize_never_raises(doc: Any) -> None:
    image.sanitize(doc)
    try:
        image.decode_config(json.dumps(doc).encode())
    except InvalidParameter:
        pass


def test_parse_rfc3339_never_raises() -> None:
    assert parse_rfc3339("2024-01-01T00:00:00Z") == 1704067200.0
    for bad in ("notadate", "2024-13-01T00:00:00Z", "", None, 5, "9999999-01-01T00:00:00Z"):
        assert parse_rfc3339(bad) == 0.0  # type: ignore[arg-type]


# ---- a real store ------------------------------------------------------------------------------


@pytest.fixture
def store_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-test-schema-image-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _store(d: str) -> ImageStore:
    return ImageStore(Database(os.path.join(d, "db")), ContentStore(os.path.join(d, "content")),
                      Snapshotter(os.path.join(d, "overlay"), driver="overlay"))


def _archive(cfg: dict[str, Any], layer: bytes) -> bytes:
    raw = json.dumps(cfg).encode()
    name = hashlib.sha256(raw).hexdigest() + ".json"
    man = json.dumps([{"Config": name, "RepoTags": ["bad/img:1"], "Layers": ["l/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, data in (("l/layer.tar", layer), (name, raw), ("manifest.json", man)):
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _layer() -> tuple[bytes, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"hi\n"))
    data = buf.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("cfg,message", DOCKERD[:9])
def test_load_refuses_bad_configs_before_storing(store_dir: str, cfg: dict, message: str) -> None:
    store = _store(store_dir)
    layer, diff = _layer()
    cfg = json.loads(json.dumps(cfg).replace(DIFF, diff))
    with pytest.raises(archive.ArchiveError) as e:
        archive.load(store, io.BytesIO(_archive(cfg, layer)), lambda m: None, quiet=True)
    assert e.value.message == message and e.value.status == 400
    assert not store.images and not list(store.content.list())


def test_views_survive_odd_stored_configs(store_dir: str) -> None:
    """Configs stored before validation existed (or written behind our back) cannot break the views."""
    store = _store(store_dir)
    odd = [_cfg(created="notadate"), _cfg(config=5), _with_config(Labels=[1]), _with_history(5),
           _with_history([5, {"created": "x", "empty_layer": "yes"}]), _cfg(rootfs={"diff_ids": ["nodigest"]}),
           _cfg(rootfs=None, created=None)]
    for i, cfg in enumerate(odd):
        raw = json.dumps({**cfg, "n": i}).encode()
        iid = store.content.put_bytes(raw)
        with store.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO images (id, doc) VALUES (?,?)", (iid, json.dumps({"id": iid, "size": 0})))
    # and one whose blob is not JSON at all
    junk = store.content.put_bytes(b"\xff not json")
    with store.db.tx() as c:
        c.execute("INSERT OR REPLACE INTO images (id, doc) VALUES (?,?)", (junk, json.dumps({"id": junk, "size": 0})))
    store = _store(store_dir)  # a daemon restart reads them back
    assert len(store.images) == len(odd)
    for img in store.images.values():
        json.dumps(store.summary(img), allow_nan=False)
        json.dumps(store.inspect(img), allow_nan=False)
        json.dumps(store.history(img), allow_nan=False)
        assert isinstance(img.created, float)
    store.gc_layers()  # what every image removal runs
