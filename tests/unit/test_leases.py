"""Leases (hatoba.storage.leases) and the image store's collection around them."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import Iterator

import pytest

from hatoba.db import Database
from hatoba.images.store import ImageStore, default_config
from hatoba.storage import leases
from hatoba.storage.content import ContentStore
from hatoba.storage.leases import CONTENT, SNAPSHOT, Leases
from hatoba.storage.snapshots import Snapshotter


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path) -> Iterator[ImageStore]:
    yield ImageStore(Database(str(tmp_path / "db")), ContentStore(str(tmp_path / "content")),
                     Snapshotter(str(tmp_path / "overlay"), driver="copy"))


def test_lease_rows_and_refcounts(tmp_path):
    ls = Leases(Database(str(tmp_path / "db")))
    with ls.lease("one") as a:
        assert leases.current() is a
        a.content("sha256:x")
        with ls.lease("two") as b:
            assert leases.current() is b
            b.content("sha256:x")
            b.snapshot("sha256:c")
            assert ls.db.rows("SELECT count(*) FROM leases")[0][0] == 2
        assert leases.current() is a
        assert ls.holds(CONTENT, "sha256:x") and not ls.holds(SNAPSHOT, "sha256:c")
    assert leases.current() is None
    assert not ls.holds(CONTENT, "sha256:x")
    assert ls.db.rows("SELECT count(*) FROM leases")[0][0] == 0
    assert ls.db.rows("SELECT count(*) FROM lease_resources")[0][0] == 0
    with pytest.raises(RuntimeError):
        a.content("sha256:y")


def test_expire_all_reports_what_a_crashed_run_held(tmp_path):
    db = Database(str(tmp_path / "db"))
    crashed = Leases(db)
    lease = crashed.create("commit abc")
    lease.content("sha256:blob")
    lease.snapshot("sha256:chain")
    # the next daemon: nothing is alive in it, the rows say what was going on
    later = Leases(Database(str(tmp_path / "db")))
    assert not later.holds(CONTENT, "sha256:blob")
    gone = later.expire_all()
    assert [(x["what"], x["resources"]) for x in gone] == [
        ("commit abc", {CONTENT: ["sha256:blob"], SNAPSHOT: ["sha256:chain"]})]
    assert later.expire_all() == []


def test_a_leased_blob_survives_collection_until_the_lease_ends(store):
    with store.lease("import", keep=True):
        diff_id = store.add_layer(io.BytesIO(_tar("a", b"a")))
        assert store.gc_layers() == (0, 0)
        assert store.content.has(diff_id)
    assert store.gc_layers() == (1, 0)
    assert not store.content.has(diff_id)


def test_a_failed_operation_leaves_nothing_and_a_done_one_keeps_its_image(store):
    with pytest.raises(ValueError), store.lease("commit"):
        store.add_layer(io.BytesIO(_tar("a", b"a")))
        raise ValueError("boom")
    assert list(store.content.list()) == []
    with store.lease("commit"):
        diff_id = store.add_layer(io.BytesIO(_tar("b", b"b")))
        img = store.create(default_config([diff_id], cmd=["sh"]), tag="x:y")
    assert set(store.content.list()) == {diff_id, img.id}
    assert store.snapshots.has_layer(diff_id)  # one layer: its chain id is its diff id
    assert store.gc_layers() == (0, 0)


def test_the_lease_follows_the_operation_into_worker_threads(store):
    async def run() -> str:
        with store.lease("load", keep=True) as lease:
            diff_id = await asyncio.to_thread(store.add_layer, io.BytesIO(_tar("t", b"t")))
            assert diff_id in lease.resources[CONTENT]
            return diff_id

    diff_id = asyncio.run(run())
    assert store.leases.live() == []
    assert store.content.has(diff_id)


def test_chains_in_use_keep_a_containers_layers(store):
    diff_id = store.add_layer(io.BytesIO(_tar("c", b"c")))
    img = store.create(default_config([diff_id], cmd=["sh"]))
    store.chains_in_use = lambda: {diff_id}
    store._remove(img)
    assert store.snapshots.has_layer(diff_id) and store.content.has(diff_id) is False
    store.chains_in_use = lambda: ()
    assert store.gc_layers() == (0, 1)


def test_new_blobs_and_the_database_are_private(store, tmp_path):
    diff_id = store.add_layer(io.BytesIO(_tar("p", b"p")))
    assert os.stat(store.content.path(diff_id)).st_mode & 0o777 == 0o600
    assert os.stat(store.content.root).st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "db").st_mode & 0o777 == 0o600
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{tmp_path}/db{suffix}"):
            assert os.stat(f"{tmp_path}/db{suffix}").st_mode & 0o777 == 0o600
