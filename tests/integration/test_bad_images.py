"""Bad image configs through a real hatobad: `docker load` of configs that dockerd refuses is refused the
same way (in-stream, dockerd's words) before anything is stored, and no stored config can make the image
list, system df, inspect or history fail for other clients (the issue's findings: "created":"notadate",
"config":5, Labels [1], history 5)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import sqlite3
import tarfile
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _layer() -> tuple[bytes, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"hi\n"))
    data = buf.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _config(diff: str, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                           "rootfs": {"type": "layers", "diff_ids": [diff]}, "created": "2024-01-01T00:00:00Z",
                           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x"}]}
    cfg.update(over)
    return cfg


def _archive(cfg: dict[str, Any], layer: bytes, tag: str) -> bytes:
    raw = json.dumps(cfg).encode()
    name = hashlib.sha256(raw).hexdigest() + ".json"
    man = json.dumps([{"Config": name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, data in (("l/layer.tar", layer), (name, raw), ("manifest.json", man)):
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _post_tar(daemon, path: str, data: bytes) -> tuple[int, list[dict]]:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(inner) -> None:  # noqa: N805
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            s.connect(daemon.sock)
            inner.sock = s

    c = Conn("localhost", timeout=60)
    c.request("POST", path, body=data, headers={"Content-Type": "application/x-tar"})
    r = c.getresponse()
    raw = r.read()
    c.close()
    dec = json.JSONDecoder()
    text, i, msgs = raw.decode(), 0, []
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = dec.raw_decode(text, i)
        msgs.append(doc)
    return r.status, msgs


def _others_still_answer(daemon) -> None:
    for path in ("/images/json", "/images/json?all=1", "/system/df", "/images/busybox/history",
                 "/images/busybox/json"):
        status, body = daemon.api("GET", path)
        assert status == 200, (path, body)
    p = daemon.docker("images") if os.path.exists(daemon_docker()) else daemon.hatoba("images")
    assert p.returncode == 0, p.stderr


def _log_size(daemon) -> int:
    try:
        return os.path.getsize(os.path.join(daemon.root, "hatobad.log"))
    except OSError:
        return 0


def _log_since(daemon, offset: int) -> str:
    with open(os.path.join(daemon.root, "hatobad.log"), "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def daemon_docker() -> str:
    import shutil

    return shutil.which("docker") or "/usr/local/bin/docker"


T = '"\\"2006-01-02T15:04:05Z07:00\\""'
BAD = {  # name: (config change, dockerd 20.10's message)
    "created": (lambda c: c.update(created="notadate"),
                f'parsing time "\\"notadate\\"" as {T}: cannot parse "notadate\\"" as "2006"'),
    "config": (lambda c: c.update(config=5),
               "json: cannot unmarshal number into Go struct field Image.config of type container.Config"),
    "labels": (lambda c: c["config"].update(Labels=[1]),
               "json: cannot unmarshal array into Go struct field Config.config.Labels of type map[string]string"),
    "history": (lambda c: c.update(history=5),
                "json: cannot unmarshal number into Go struct field Image.history of type []image.History"),
    "history-item": (lambda c: c.update(history=[5]),
                     "json: cannot unmarshal number into Go struct field Image.history of type image.History"),
    "rootfs": (lambda c: c.update(rootfs=5),
               "json: cannot unmarshal number into Go struct field Image.rootfs of type image.RootFS"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_load_of_a_bad_config_is_refused_in_stream(daemon, name: str) -> None:
    change, message = BAD[name]
    layer, diff = _layer()
    cfg = _config(diff)
    change(cfg)
    tag = f"badimg/{name}:1"
    log0 = _log_size(daemon)
    before = {i["Id"] for i in daemon.api("GET", "/images/json?all=1")[1]}  # type: ignore[union-attr]
    status, msgs = _post_tar(daemon, "/images/load?quiet=1", _archive(cfg, layer, tag))
    # dockerd answers 200 and reports the refusal in the stream
    assert status == 200
    assert msgs == [{"errorDetail": {"message": message}, "error": message}]
    after = {i["Id"] for i in daemon.api("GET", "/images/json?all=1")[1]}  # type: ignore[union-attr]
    assert after == before
    assert daemon.api("GET", f"/images/{tag}/json")[0] == 404
    _others_still_answer(daemon)
    log = _log_since(daemon, log0)
    assert "Traceback" not in log, log[-3000:]


def test_cli_load_of_a_bad_config_fails_with_dockerds_words(daemon) -> None:
    layer, diff = _layer()
    cfg = _config(diff, created="notadate")
    p = daemon.hatoba("load", input=_archive(cfg, layer, "badimg/cli:1"))
    assert p.returncode == 1
    assert "parsing time" in p.stderr.decode() and "cannot parse" in p.stderr.decode()
    if os.path.exists(daemon_docker()):
        p = daemon.docker("load", input=_archive(cfg, layer, "badimg/cli:1"))
        assert p.returncode == 1 and b"parsing time" in p.stderr
    _others_still_answer(daemon)


def test_a_good_config_still_loads(daemon) -> None:
    layer, diff = _layer()
    status, msgs = _post_tar(daemon, "/images/load?quiet=1", _archive(_config(diff), layer, "badimg/good:1"))
    assert status == 200 and msgs == [{"stream": "Loaded image: badimg/good:1\n"}]
    try:
        _others_still_answer(daemon)
    finally:
        assert daemon.api("DELETE", "/images/badimg/good:1")[0] == 200


def test_stored_odd_configs_do_not_break_the_views(daemon) -> None:
    """Configs that reached the store before validation existed: after a restart, every view answers 200."""
    layer, diff = _layer()
    odd = [_config(diff, created="notadate"), _config(diff, config=5), _config(diff, history=5),
           {**_config(diff), "config": {"Labels": [1], "Cmd": 5}}, _config("nodigest")]
    blobs = os.path.join(daemon.data_root, "content", "blobs", "sha256")
    ids = []
    log0 = _log_size(daemon)
    with daemon.down("term"):
        db = sqlite3.connect(os.path.join(daemon.data_root, "hatoba.db"))
        with db:
            for i, cfg in enumerate(odd):
                raw = json.dumps({**cfg, "odd": i}).encode()
                hexd = hashlib.sha256(raw).hexdigest()
                with open(os.path.join(blobs, hexd), "wb") as f:
                    f.write(raw)
                iid = "sha256:" + hexd
                ids.append(iid)
                db.execute("INSERT OR REPLACE INTO images (id, doc) VALUES (?,?)",
                           (iid, json.dumps({"id": iid, "size": 0})))
        db.close()
    try:
        listed = {i["Id"] for i in daemon.api("GET", "/images/json?all=1")[1]}  # type: ignore[union-attr]
        assert set(ids) <= listed
        for iid in ids:
            for path in (f"/images/{iid}/json", f"/images/{iid}/history"):
                status, body = daemon.api("GET", path)
                assert status == 200, (path, body)
        _others_still_answer(daemon)
    finally:
        for iid in ids:
            daemon.api("DELETE", f"/images/{iid}?force=1")
    log = _log_since(daemon, log0)
    assert "Traceback" not in log, log[-3000:]
