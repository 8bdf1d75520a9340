"""Crash safety: kill -9 of hatobad in the middle of a commit, an import and 20 parallel `run -d`,
then a restart: the store is consistent (every container inspects, starts and is removed; no orphan
runc state, cgroup, mount or conmon; no blob or unpacked layer that nothing references; images and
df answer 200), no container is left frozen. And start-up itself: one daemon per data root, and a
refused start leaves nothing behind.

Each test uses a private hatobad (crashkit.new_daemon) that it may kill without harming the others.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import crashkit
import pytest
from conftest import HATOBA, HATOBAD

BIG_MB = 300


@pytest.fixture(scope="module")
def crashd(daemon) -> Iterator[Any]:
    d = crashkit.new_daemon(type(daemon))
    try:
        yield d
    finally:
        crashkit.destroy_daemon(d)


def _wait_for(pred, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _big_container(d: Any) -> str:
    name = "big-" + uuid.uuid4().hex[:6]
    d.hatoba("run", "-d", "--name", name, "busybox", "sh", "-c",
             f"dd if=/dev/zero of=/big bs=1M count={BIG_MB} 2>/dev/null && touch /ready; sleep 1000", check=True)
    _wait_for(lambda: d.hatoba("exec", name, "test", "-e", "/ready").returncode == 0, 30, "the big file")
    return _id(d, name)


def _id(d: Any, name: str) -> str:
    status, doc = d.api("GET", f"/containers/{name}/json")
    assert status == 200, doc
    return doc["Id"]  # type: ignore[index]


def _big_blob(d: Any) -> bool:
    return any(os.stat(os.path.join(d.data_root, "content", "blobs", "sha256", b[7:])).st_size > BIG_MB << 19
               for b in crashkit.blobs(d))


# ---- one daemon per data root; refused starts ------------------------------------------------------


def test_second_daemon_on_the_same_data_root_is_refused(crashd, tmp_path):
    before = {p: os.stat(p).st_mtime_ns for p in (crashd.pidfile, crashd.sock)}
    pid = open(crashd.pidfile).read().strip()
    sock = str(tmp_path / "other.sock")
    p = subprocess.run([HATOBAD, "-H", f"unix://{sock}", "--data-root", crashd.data_root,
                        "--exec-root", str(tmp_path / "run"), "--pidfile", str(tmp_path / "other.pid"),
                        "--cgroup-parent", crashd.cgroup_parent, "--config-file", "/nonexistent"],
                       capture_output=True, timeout=30)
    assert p.returncode == 1, p.stderr
    err = p.stderr.decode()
    assert crashd.data_root in err and pid in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)
    assert {p: os.stat(p).st_mtime_ns for p in before} == before
    assert crashd.ping() and open(crashd.pidfile).read().strip() == pid
    # the same socket (another data root): refused too, and the first daemon's socket is kept
    p = subprocess.run([HATOBAD, "-H", crashd.host, "--data-root", str(tmp_path / "data"),
                        "--exec-root", str(tmp_path / "run"), "--pidfile", str(tmp_path / "other.pid"),
                        "--config-file", "/nonexistent"], capture_output=True, timeout=30)
    assert p.returncode == 1 and crashd.sock in p.stderr.decode(), p.stderr
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)
    assert crashd.ping()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["public-tcp", "unknown-key", "live-restore-false", "log-driver", "debug-type"])
def test_refused_start_leaves_nothing(daemon, tmp_path, case):
    root = tmp_path / "r"
    root.mkdir()
    cfg = root / "daemon.json"
    hosts = ["-H", f"unix://{root}/s.sock"]
    want = ""
    if case == "public-tcp":
        hosts += ["-H", f"tcp://0.0.0.0:{_free_port()}"]
        want = "without --tlsverify"
        cfg.write_text("{}")
    elif case == "unknown-key":
        cfg.write_text('{"no-such-option": 1}')
        want = "no-such-option"
    elif case == "live-restore-false":
        cfg.write_text('{"live-restore": false}')
        want = "live-restore"
    elif case == "log-driver":
        cfg.write_text('{"log-driver": "asdf"}')
        want = "asdf"
    else:
        cfg.write_text('{"debug": "yes"}')
        want = "debug"
    p = subprocess.run([HATOBAD, *hosts, "--data-root", f"{root}/data", "--exec-root", f"{root}/run",
                        "--pidfile", f"{root}/pid", "--config-file", str(cfg)], capture_output=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert want in p.stderr.decode() and "Traceback" not in p.stderr.decode(), p.stderr
    assert sorted(os.listdir(root)) == ["daemon.json"]


def test_daemon_json_keys_are_honoured(daemon, tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (root / "daemon.json").write_text('{"debug": true, "live-restore": true, "log-driver": "local"}')
    proc = subprocess.Popen([HATOBAD, "-H", f"unix://{root}/s.sock", "--data-root", f"{root}/data",
                             "--exec-root", f"{root}/run", "--pidfile", f"{root}/pid",
                             "--config-file", str(root / "daemon.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        env = dict(os.environ, HATOBA_HOST=f"unix://{root}/s.sock")
        _wait_for(lambda: subprocess.run([HATOBA, "version"], env=env, capture_output=True).returncode == 0, 20,
                  "the daemon")
        subprocess.run([HATOBA, "info"], env=env, capture_output=True, check=True)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert b" DEBUG " in err, err[-2000:]


# ---- kill -9 during a commit -----------------------------------------------------------------------


def _frozen(d: Any, cid: str) -> bool:
    return crashkit.runc_status(d, cid) == "paused"


@pytest.mark.parametrize("when", ["frozen", 0.5, 1.5, 2.5, "blob"])
def test_kill9_during_commit(crashd, when):
    d = crashd
    cid = _big_container(d)
    # paused by its user: stays paused through the crash (only the commit's freeze is undone)
    paused = d.hatoba("run", "-d", "busybox", "sleep", "1000", check=True).stdout.decode().strip()
    d.hatoba("pause", paused, check=True)
    commit = subprocess.Popen([HATOBA, "commit", cid, f"crash/commit:{uuid.uuid4().hex[:6]}"], env=d.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if when == "frozen":
            _wait_for(lambda: _frozen(d, cid), 10, "the commit to freeze the container")
        elif when == "blob":
            _wait_for(lambda: _big_blob(d), 30, "the layer blob")
        else:
            time.sleep(float(when))
        crashkit.kill9_and_restart(d)
    finally:
        commit.wait(30)
    state = d.api("GET", f"/containers/{cid}/json")[1]["State"]  # type: ignore[index]
    assert state["Running"] and not state["Paused"] and state["Status"] == "running", state
    assert crashkit.runc_status(d, cid) == "running"
    assert d.hatoba("exec", cid, "echo", "alive").stdout == b"alive\n"
    state = d.api("GET", f"/containers/{paused}/json")[1]["State"]  # type: ignore[index]
    assert state["Paused"] and crashkit.runc_status(d, paused) == "paused", state
    d.hatoba("unpause", paused, check=True)
    for img in d.api("GET", "/images/json")[1]:  # type: ignore[union-attr]
        if any(t.startswith("crash/commit:") for t in img["RepoTags"] or []):  # a commit that got through
            assert d.api("DELETE", f"/images/{img['Id']}")[0] == 200
    crashkit.check_consistent(d)


def test_kill9_during_commit_store_survives_restarts(crashd):
    """The blob of an interrupted commit is collected, and stays collected through more restarts."""
    d = crashd
    cid = _big_container(d)
    commit = subprocess.Popen([HATOBA, "commit", cid], env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: _big_blob(d), 30, "the layer blob")
    crashkit.kill9_and_restart(d)
    commit.wait(30)
    for _ in range(2):
        crashkit.check_images(d)
        d.stop()
        d.start()
    # a commit after all that works, and its image runs
    iid = d.hatoba("commit", cid, "crash/after", check=True).stdout.decode().strip()
    assert d.hatoba("run", "--rm", iid, "sh", "-c", "test -s /big && echo ok").stdout == b"ok\n"
    d.hatoba("rmi", "crash/after", check=True)
    crashkit.check_consistent(d)


def test_commit_of_a_container_that_exits_meanwhile(crashd):
    """The commit starts while the container dies: it is committed without pausing, not a 500."""
    d = crashd
    for i in range(5):
        name = f"exiting-{i}-{uuid.uuid4().hex[:4]}"
        d.hatoba("run", "-d", "--name", name, "busybox", "sh", "-c", "echo x > /f; sleep 1000", check=True)
        _wait_for(lambda: d.hatoba("exec", name, "cat", "/f").stdout == b"x\n", 10, "/f")  # noqa: B023
        pid = d.api("GET", f"/containers/{name}/json")[1]["State"]["Pid"]  # type: ignore[index]
        os.kill(pid, 9)
        status, body = d.api("POST", f"/commit?container={name}")
        assert status == 201, (i, status, body)
        iid = body["Id"]  # type: ignore[index]
        p = d.hatoba("run", "--rm", iid, "cat", "/f")
        assert p.stdout == b"x\n", p.stderr
        d.hatoba("rm", "-f", name, check=True)
        d.hatoba("rmi", iid, check=True)
    crashkit.check_consistent(d)


# ---- kill -9 during an import ----------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _big_tar() -> Iterator[bytes]:
    """A tar with one big file, produced as it is sent."""
    r, w = os.pipe()

    def produce() -> None:
        with os.fdopen(w, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tf:
            ti = tarfile.TarInfo("big")
            ti.size = BIG_MB << 20
            tf.addfile(ti, io.BufferedReader(_Zeros(ti.size)))

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    with os.fdopen(r, "rb") as src:
        while chunk := src.read(1 << 20):
            yield chunk
    t.join()


@pytest.mark.parametrize("when", ["blob", "unpack"])
def test_kill9_during_import(crashd, when):
    d = crashd
    imp = subprocess.Popen([HATOBA, "import", "-", "crash/import:x"], env=d.env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed() -> None:
        try:
            for chunk in _big_tar():
                imp.stdin.write(chunk)  # type: ignore[union-attr]
            imp.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        if when == "blob":
            _wait_for(lambda: _big_blob(d), 60, "the layer blob")
        else:
            tmp = os.path.join(d.data_root, "overlay", "tmp")
            _wait_for(lambda: any(os.scandir(tmp)), 60, "the unpacking", interval=0.005)
            time.sleep(0.2)
        crashkit.kill9_and_restart(d)
    finally:
        imp.kill()
        imp.wait(30)
        feeder.join(30)
    status, _ = d.api("GET", "/images/crash/import:x/json")
    if status == 200:
        assert d.api("DELETE", "/images/crash/import:x")[0] == 200
    crashkit.check_consistent(d)


# ---- kill -9 during 20 parallel run -d --------------------------------------------------------------


@pytest.mark.parametrize("when", [0.15, 0.4, "runc-init"])
def test_kill9_during_parallel_runs(crashd, when):
    d = crashd
    runs = [subprocess.Popen([HATOBA, "run", "-d", "busybox", "sleep", "1000"], env=d.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(20)]
    try:
        if when == "runc-init":
            _wait_for(lambda: crashkit.procs_in_cgroup_parent(d), 30, "a container process", interval=0.005)
        else:
            time.sleep(float(when))
        crashkit.kill9_and_restart(d)
    finally:
        for r in runs:
            r.wait(60)
    crashkit.check_runtime_matches(d)
    assert all(c["State"] in ("created", "exited", "running") for c in d.containers().values()), d.containers()
    crashkit.check_consistent(d)



def test_restart_leaves_another_daemons_cgroups_alone(crashd):
    """A cgroup parent may be shared (the default /hatoba): a cgroup of an id this daemon does not
    know, with a process in it, is not this daemon's to kill."""
    from hatoba.runtime import cgroups

    d = crashd
    path = f"{d.cgroup_parent}/{uuid.uuid4().hex * 2}"
    proc = subprocess.Popen(["sleep", "1000"])
    dirs = cgroups.cgroup_dirs(path)
    try:
        for g in dirs:
            os.makedirs(g, exist_ok=True)
            try:
                with open(os.path.join(g, "cgroup.procs"), "w") as f:
                    f.write(str(proc.pid))
            except OSError:
                pass  # e.g. cpuset without cpus/mems: membership elsewhere is enough
        assert proc.pid in cgroups.pids(path)
        crashkit.kill9_and_restart(d)
        assert proc.poll() is None and proc.pid in cgroups.pids(path)
    finally:
        proc.kill()
        proc.wait()
        time.sleep(0.1)
        cgroups.remove_cgroup(path)
    crashkit.check_consistent(d)
