"""Tests for hatoba.storage.content and hatoba.storage.atomic."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from hatoba.storage.atomic import fsync_dir, syncfs, write_atomic
from hatoba.storage.content import (
    BlobNotFound,
    ContentStore,
    DigestMismatch,
    InvalidDigest,
    parse_digest,
    sha256_digest,
)


@pytest.fixture
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-test-content-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_atomic_replaces_and_leaves_no_temp(workdir: str) -> None:
    path = os.path.join(workdir, "state.json")
    write_atomic(path, b"one")
    write_atomic(path, b"two", mode=0o600)
    with open(path, "rb") as f:
        assert f.read() == b"two"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(workdir) == ["state.json"]
    fsync_dir(workdir)
    syncfs(workdir)


def test_write_atomic_failure_keeps_old_file(workdir: str) -> None:
    path = os.path.join(workdir, "f")
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    with open(path, "rb") as f:
        assert f.read() == b"old"
    assert os.listdir(workdir) == ["f"]


def test_put_read_has_size_list_delete(workdir: str) -> None:
    cs = ContentStore(workdir)
    digest = cs.put_bytes(b"hello")
    assert digest == _digest(b"hello")
    assert cs.has(digest)
    assert cs.path(digest) == os.path.join(workdir, "blobs", "sha256", digest[7:])
    assert cs.read(digest) == b"hello"
    with cs.open(digest) as f:
        assert f.read() == b"hello"
    assert cs.size(digest) == 5
    other = cs.put_bytes(b"world")
    assert sorted(cs.list()) == sorted([digest, other])
    # storing the same content again is a no-op
    assert cs.put_bytes(b"hello") == digest
    assert cs.delete(digest) is True
    assert cs.delete(digest) is False
    assert not cs.has(digest)
    with pytest.raises(BlobNotFound):
        cs.read(digest)
    with pytest.raises(FileNotFoundError):
        cs.size(digest)
    assert list(cs.list()) == [other]


def test_ingest_fileobj_and_iterable(workdir: str) -> None:
    cs = ContentStore(workdir)
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert cs.ingest(io.BytesIO(data)) == (_digest(data), len(data))
    chunks = [b"ab", b"", b"cd"]
    assert cs.ingest(iter(chunks), expected=_digest(b"abcd")) == (_digest(b"abcd"), 4)
    assert cs.read(_digest(b"abcd")) == b"abcd"
    assert os.listdir(os.path.join(workdir, "ingest")) == []


def test_ingest_digest_mismatch_leaves_nothing(workdir: str) -> None:
    cs = ContentStore(workdir)
    wrong = _digest(b"something else")
    with pytest.raises(DigestMismatch) as exc:
        cs.ingest(io.BytesIO(b"payload"), expected=wrong)
    assert exc.value.expected == wrong
    assert exc.value.actual == _digest(b"payload")
    assert not cs.has(wrong)
    assert not cs.has(_digest(b"payload"))
    assert os.listdir(os.path.join(workdir, "blobs", "sha256")) == []
    assert os.listdir(os.path.join(workdir, "ingest")) == []


def test_ingest_size_mismatch(workdir: str) -> None:
    cs = ContentStore(workdir)
    with pytest.raises(DigestMismatch):
        cs.ingest(b"abc", expected=_digest(b"abc"), expected_size=4)
    assert not cs.has(_digest(b"abc"))


def test_ingest_interrupted_stream_is_never_visible(workdir: str) -> None:
    cs = ContentStore(workdir)

    def broken() -> Iterator[bytes]:
        yield b"partial data"
        raise ConnectionError("download interrupted")

    with pytest.raises(ConnectionError):
        cs.ingest(broken())
    assert list(cs.list()) == []
    assert os.listdir(os.path.join(workdir, "ingest")) == []


def test_cleanup_ingest(workdir: str) -> None:
    cs = ContentStore(workdir)
    ingest = os.path.join(workdir, "ingest")
    with open(os.path.join(ingest, "leftover"), "wb") as f:
        f.write(b"half")
    os.mkdir(os.path.join(ingest, "dir"))
    assert cs.cleanup_ingest() == 2
    assert os.listdir(ingest) == []


def test_digest_validation(workdir: str) -> None:
    cs = ContentStore(workdir)
    for bad in (
        "sha256:xyz",
        "md5:" + "0" * 32,
        "sha256:" + "A" * 64,
        "../../etc/passwd",
        "sha256:../" + "0" * 61,
    ):
        with pytest.raises(InvalidDigest):
            cs.path(bad)
        assert cs.has(bad) is False
    with pytest.raises(InvalidDigest):
        cs.ingest(b"x", expected="sha256:nope")
    assert parse_digest(sha256_digest(b"")) == hashlib.sha256(b"").hexdigest()
