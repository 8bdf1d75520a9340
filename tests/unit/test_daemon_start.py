"""hatobad start-up pieces: data-root lock, listener checks, undo of a failed start, daemon.json keys."""

from __future__ import annotations

import json
import os

import pytest

from hatoba import daemon
from hatoba.engine.config import DaemonConfig, load_file
from hatoba.engine.private import secure_state


def test_lock_root_is_exclusive_and_names_the_holder(tmp_path):
    fd = daemon.lock_root(str(tmp_path), "data root")
    try:
        with pytest.raises(SystemExit) as e:
            daemon.lock_root(str(tmp_path), "data root")
        msg = str(e.value.code)
        assert str(tmp_path) in msg and f"pid {os.getpid()}" in msg and "--data-root" in msg
    finally:
        os.close(fd)
    os.close(daemon.lock_root(str(tmp_path), "data root"))  # free again once the holder is gone


def test_public_tcp_needs_tlsverify_and_unknown_schemes_are_refused():
    cfg = DaemonConfig(hosts=["unix:///x/s.sock", "tcp://0.0.0.0:2375"])
    with pytest.raises(SystemExit, match="without --tlsverify"):
        daemon.plan_listeners(cfg)
    cfg.hosts = ["fd://"]
    with pytest.raises(SystemExit, match="unsupported host"):
        daemon.plan_listeners(cfg)
    cfg.hosts = ["unix:///x/s.sock", "tcp://127.0.0.1:1234", "/y/s.sock"]
    got = daemon.plan_listeners(cfg)
    assert [(x.path, x.host, x.port) for x in got] == [("/x/s.sock", "", 0), ("", "127.0.0.1", 1234),
                                                       ("/y/s.sock", "", 0)]


def test_a_failed_start_undoes_what_it_created(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    st = daemon.StartUp()
    st.makedirs(str(tmp_path / "new" / "data"), 0o711)
    st.makedirs(str(existing), 0o711)
    st.created_file(str(existing / "pid"))
    (existing / "pid").write_text("1")
    st.fds.append(daemon.lock_root(str(existing), "data root"))
    st.undo()
    assert sorted(os.listdir(tmp_path)) == ["existing"]
    assert sorted(os.listdir(existing)) == [daemon.LOCK_NAME]


def test_a_live_socket_is_not_taken_over(tmp_path):
    path = str(tmp_path / "s.sock")
    first = daemon._bind_unix(path, "")
    try:
        with pytest.raises(SystemExit, match="another daemon is listening"):
            daemon._bind_unix(path, "")
        assert os.path.exists(path)
    finally:
        first.close()
    daemon._bind_unix(path, "").close()  # a stale socket file is replaced


@pytest.mark.parametrize("doc,err", [
    ({"debug": "yes"}, "debug"),
    ({"live-restore": False}, "live-restore"),
    ({"log-driver": "asdf"}, "logger: no log driver named 'asdf' is registered"),
    ({"log-level": "loud"}, "invalid log level"),
    ({"hosts": "unix:///x"}, "hosts"),
    ([1], "not a JSON object"),
])
def test_daemon_json_refusals(tmp_path, doc, err):
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=err.replace("(", r"\(")):
        load_file(DaemonConfig(), str(p))


def test_daemon_json_keys_read(tmp_path):
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps({"log-level": "warn", "debug": True, "live-restore": True, "log-driver": "local"}))
    cfg = DaemonConfig()
    load_file(cfg, str(p))
    assert cfg.log_level == "debug" and cfg.log_driver == "local"
    p.write_text(json.dumps({"debug": False}))
    cfg = DaemonConfig()
    load_file(cfg, str(p))
    assert cfg.log_level == "info" and cfg.log_driver == "json-file"


def test_secure_state_creates_private_dirs_and_fixes_old_ones(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    cid = "a" * 64
    (run / "containers" / cid / "exec" / "e1").mkdir(parents=True)
    (run / "containers" / cid / "config.json").write_text("{}")
    (run / "containers" / cid / "exec" / "e1" / "process.json").write_text("{}")
    (data / "containers" / cid).mkdir(parents=True)
    (data / "containers" / cid / "hosts").write_text("127.0.0.1 localhost\n")
    (data / "hatoba.db").write_text("")
    for p in (run / "containers", run / "containers" / cid, data / "containers", data / "containers" / cid):
        os.chmod(p, 0o755)
    assert secure_state(str(data), str(run)) > 0
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(data) == mode(run) == 0o711
    for d in ("containers", "content", "overlay"):
        assert mode(data / d) == 0o700
    assert mode(run / "containers") == mode(run / "exits") == 0o700
    assert mode(run / "containers" / cid) == mode(run / "containers" / cid / "exec" / "e1") == 0o700
    assert mode(run / "containers" / cid / "config.json") == 0o600
    assert mode(run / "containers" / cid / "exec" / "e1" / "process.json") == 0o600
    assert mode(data / "containers" / cid) == 0o700 and mode(data / "hatoba.db") == 0o600
    assert mode(data / "containers" / cid / "hosts") == 0o644  # bind-mounted: read inside the container
    assert secure_state(str(data), str(run)) == 0
