"""Bad input and failure paths against a real hatobad: every client mistake answers 4xx in Docker's
form, names no host path, and leaves the daemon serving everyone else."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.parse

import pytest


def _run_d(daemon, *args: str) -> str:
    p = daemon.hatoba("run", "-d", *args)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def _still_serving(daemon) -> None:
    for path in ("/containers/json?all=1", "/images/json", "/system/df", "/info"):
        st, body = daemon.api("GET", path)
        assert st == 200, (path, body)


@pytest.mark.parametrize("method,path", [
    ("POST", "/containers/{id}/stop?t=abc"),
    ("POST", "/containers/{id}/stop?t=inf"),
    ("POST", "/containers/{id}/restart?t=1e400"),
    ("GET", "/containers/json?limit=abc"),
    ("GET", "/containers/json?limit=inf"),
    ("GET", "/containers/json?filters=%5B1%5D"),
    ("GET", "/containers/json?filters=abc"),
    ("GET", "/containers/{id}/logs?stdout=1&since=inf"),
    ("POST", "/containers/{id}/resize?h=abc&w=3"),
    ("GET", "/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D"),
    ("GET", "/events?since=soon&until=1"),
])
def test_bad_query_values_are_400(daemon, method, path):
    cid = _run_d(daemon, "busybox", "sleep", "30")
    try:
        st, body = daemon.api(method, path.format(id=cid))
        assert st == 400, body
        assert isinstance(body, dict) and body["message"]
        assert daemon.root not in body["message"]
        _still_serving(daemon)
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_negative_tail_means_all(daemon):
    p = daemon.hatoba("run", "--name", "tailneg", "busybox", "sh", "-c", "echo a; echo b; echo c")
    assert p.returncode == 0
    try:
        st, raw = daemon.api("GET", "/containers/tailneg/logs?stdout=1&tail=-5")
        assert st == 200
        assert raw.count(b"\x01\x00\x00\x00") == 3
        st, raw = daemon.api("GET", "/containers/tailneg/logs?stdout=1&tail=1")
        assert raw.endswith(b"c\n") and raw.count(b"\x01\x00\x00\x00") == 1
    finally:
        daemon.hatoba("rm", "-f", "tailneg")


def test_failed_start_releases_what_it_took(daemon):
    # an unknown user is found only at start: the start fails, the container stays usable and
    # removable, and the leak fixture sees no mount, cgroup or conmon left behind
    p = daemon.hatoba("create", "--name", "baduser", "-u", "nosuchuser", "busybox", "true")
    assert p.returncode == 0, p.stderr
    try:
        st, body = daemon.api("POST", "/containers/baduser/start")
        assert st >= 400 and "nosuchuser" in body["message"]
        assert not daemon.mounts()
        st, body = daemon.api("GET", "/containers/baduser/json")
        assert st == 200 and body["State"]["Status"] == "created" and "nosuchuser" in body["State"]["Error"]
        _still_serving(daemon)
    finally:
        daemon.hatoba("rm", "-f", "baduser")


def test_archive_errors_name_no_host_path(daemon):
    cid = _run_d(daemon, "busybox", "sh", "-c", "echo hi > /f; ln -s /f /link; sleep 60")
    try:
        time.sleep(0.3)
        for path, want in (("/link/", 400), ("/f/", 400), ("/f/x", 400), ("/nonexist", 404), ("", 400)):
            st, body = daemon.api("GET", f"/containers/{cid}/archive?path={urllib.parse.quote(path)}")
            assert st == want, (path, body)
            assert daemon.root not in body["message"], body
        st, _ = daemon.api("GET", f"/containers/{cid}/archive?path=/link")
        assert st == 200
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_archive_get_during_dir_symlink_swap(daemon):
    script = ("mkdir -p /d1 /d2; echo a > /d1/f; echo b > /d2/f; "
              "while true; do rm -rf /x; ln -s /d1 /x; rm -f /x; mkdir -p /x; echo c > /x/f; done")
    cid = _run_d(daemon, "busybox", "sh", "-c", script)
    try:
        bad: list[tuple[int, object]] = []

        def worker() -> None:
            for _ in range(150):
                st, body = daemon.api("GET", f"/containers/{cid}/archive?path=/x/f")
                if st >= 500 or (isinstance(body, dict) and daemon.root in str(body)):
                    bad.append((st, body))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad, bad[:3]
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_log_drivers(daemon):
    p = daemon.hatoba("run", "--log-driver", "asdf", "--rm", "busybox", "true")
    assert p.returncode == 125
    assert b'error looking up logging plugin asdf: plugin "asdf" not found' in p.stderr  # dockerd 20.10
    p = daemon.hatoba("run", "--name", "lognone", "--log-driver", "none", "busybox", "echo", "attached")
    try:
        assert p.returncode == 0 and p.stdout == b"attached\n"  # attach works without a log
        st, body = daemon.api("GET", "/containers/lognone/logs?stdout=1")
        assert st == 501 and body["message"] == "configured logging driver does not support reading"
        assert not os.path.exists(daemon.api("GET", "/containers/lognone/json")[1]["LogPath"])
    finally:
        daemon.hatoba("rm", "-f", "lognone")
    p = daemon.hatoba("run", "--name", "loglocal", "--log-driver", "local", "busybox", "echo", "kept")
    try:
        assert p.returncode == 0
        assert daemon.hatoba("logs", "loglocal").stdout == b"kept\n"
        assert daemon.api("GET", "/containers/loglocal/json")[1]["HostConfig"]["LogConfig"]["Type"] == "local"
    finally:
        daemon.hatoba("rm", "-f", "loglocal")


def test_group_add_names_and_numbers(daemon):
    p = daemon.hatoba("run", "--rm", "--group-add", "tty", "--group-add", "1234", "busybox", "id", "-G")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [b"0", b"5", b"1234"]


def test_init_runs_tini_as_pid_1(daemon):
    p = daemon.hatoba("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("/sbin/docker-init -- sh -c")


def _raw_request(daemon, method: str, path: str, body: bytes = b"") -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(daemon.sock)
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body)
    return s


def _read_head(s: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)
        assert chunk, buf
        buf += chunk
    return buf


def _closed(s: socket.socket, timeout: float = 5) -> bool:
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("keys,seq", [(None, b"\x10\x11"), ("ctrl-x,y", b"\x18y")])
def test_attach_detach_keys_end_the_stream(daemon, keys, seq):
    cid = _run_d(daemon, "-i", "busybox", "cat")
    try:
        q = "stdin=1&stdout=1&stream=1" + (f"&detachKeys={keys}" if keys else "")
        s = _raw_request(daemon, "POST", f"/containers/{cid}/attach?{q}")
        assert _read_head(s).startswith(b"HTTP/1.1 101")
        s.sendall(b"hello\n")
        data = b""
        while b"hello\n" not in data:
            data += s.recv(4096)
        s.sendall(seq[:1])
        time.sleep(0.2)
        s.sendall(seq[1:])
        assert _closed(s), "the daemon kept the attach stream open after the detach keys"
        s.close()
        assert daemon.api("GET", f"/containers/{cid}/json")[1]["State"]["Running"]
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_attach_bad_detach_keys_is_400(daemon):
    cid = _run_d(daemon, "-i", "busybox", "cat")
    try:
        st, body = daemon.api("POST", f"/containers/{cid}/attach?stdin=1&stream=1&detachKeys=ctrl-xx")
        assert (st, body["message"]) == (400, "Invalid detach keys (ctrl-xx) provided")
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_exec_detach_keys_leave_the_process_running(daemon):
    cid = _run_d(daemon, "-i", "busybox", "cat")
    try:
        st, body = daemon.api("POST", f"/containers/{cid}/exec", {
            "Cmd": ["cat"], "AttachStdin": True, "AttachStdout": True, "Tty": True, "detachKeys": "ctrl-p"})
        assert st == 201, body
        eid = body["Id"]
        s = _raw_request(daemon, "POST", f"/exec/{eid}/start", json.dumps({"Tty": True}).encode())
        assert _read_head(s).startswith(b"HTTP/1.1 101")
        s.sendall(b"\x10")
        assert _closed(s)
        s.close()
        st, body = daemon.api("GET", f"/exec/{eid}/json")
        assert body["Running"] is True
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_exec_tty_process_with_framed_stream(daemon):
    # docker-py's exec_start(socket=True) sends Tty=false for an exec created with tty=True:
    # the process gets its terminal, the stream is framed (dockerd's behaviour)
    cid = _run_d(daemon, "-i", "busybox", "cat")
    try:
        st, body = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["printf", "yay"], "Tty": True,
                                                                   "AttachStdout": True})
        eid = body["Id"]
        s = _raw_request(daemon, "POST", f"/exec/{eid}/start", json.dumps({"Tty": False}).encode())
        assert _read_head(s).startswith(b"HTTP/1.1 101")
        data = b""
        s.settimeout(5)
        while len(data) < 11:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x03" and data[8:11] == b"yay", data
        s.close()
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_commit_of_an_exited_container(daemon):
    p = daemon.hatoba("run", "--name", "gone", "busybox", "sh", "-c", "echo x > /made")
    assert p.returncode == 0
    try:
        st, body = daemon.api("POST", "/commit?container=gone&repo=committed-gone&pause=1")
        assert st == 201, body
    finally:
        daemon.hatoba("rm", "-f", "gone")
        daemon.hatoba("rmi", "committed-gone")


def test_info_reads_the_host(daemon):
    st, info = daemon.api("GET", "/info")
    assert st == 200
    status = dict(info["DriverStatus"])
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert info["IPv4Forwarding"] == (f.read().strip() == "1")
    assert status["Backing Filesystem"] not in ("", "unknown")
    assert info["LoggingDriver"] == "json-file"


def test_restarting_container_needs_force_to_remove(daemon):
    p = daemon.hatoba("create", "--name", "restarter", "--restart", "always", "busybox", "sleep", "0.2")
    assert p.returncode == 0, p.stderr
    try:
        daemon.hatoba("start", "restarter", check=True)
        deadline = time.time() + 10
        st, body = 0, {}
        while time.time() < deadline:
            st, body = daemon.api("DELETE", "/containers/restarter")
            assert st == 409, body
            if "restarting" in body["message"]:
                break
            time.sleep(0.05)
        assert "Stop the container before attempting removal or force remove" in body["message"]
    finally:
        daemon.hatoba("rm", "-f", "restarter")


def test_attach_with_logs_before_start(daemon):
    # docker-py's attach_socket(logs=1, stream=1) before start: no log file exists yet
    p = daemon.hatoba("create", "--name", "early", "busybox", "printf", "words")
    assert p.returncode == 0
    try:
        s = _raw_request(daemon, "POST", "/containers/early/attach?stdout=1&stream=1&logs=1")
        assert _read_head(s).startswith(b"HTTP/1.1 101")
        daemon.hatoba("start", "early", check=True)
        data = b""
        while len(data) < 13:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data[:13] == b"\x01\x00\x00\x00\x00\x00\x00\x05words", data
        s.close()
    finally:
        daemon.hatoba("rm", "-f", "early")


def test_anonymous_volume_mount_point_exists(daemon):
    p = daemon.hatoba("run", "--rm", "-v", "/vol1", "busybox", "sh", "-c", "echo data > /vol1/f && cat /vol1/f")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"data\n"


def test_copy_into_an_anonymous_volume_before_start(daemon, tmp_path):
    # docker-py's ArchiveTest: the mount point of `-v /vol1` exists from create on
    src = tmp_path / "f.txt"
    src.write_bytes(b"copied\n")
    p = daemon.hatoba("create", "--name", "volcp", "-v", "/vol1", "busybox", "cat", "/vol1/f.txt")
    assert p.returncode == 0, p.stderr
    try:
        p = daemon.hatoba("cp", str(src), "volcp:/vol1/")
        assert p.returncode == 0, p.stderr
        p = daemon.hatoba("start", "-a", "volcp")
        assert p.stdout == b"copied\n", p
    finally:
        daemon.hatoba("rm", "-f", "volcp")


# Each body of the findings: answered 400 before anything is stored, and every other client
# still gets its list, inspect and df (they used to answer 500 for everyone afterwards).
BAD_CREATE = {
    "cmd-ints": {"Cmd": [1, 2]}, "labels-int": {"Labels": {"a": 5}}, "exposedports-list": {"ExposedPorts": ["80"]},
    "tty-yes": {"Tty": "yes"}, "user-int": {"User": 5}, "dns-string": {"HostConfig": {"Dns": "1.1.1.1"}},
    "stoptimeout-huge": {"StopTimeout": 1e400}, "memory-huge": {"HostConfig": {"Memory": 1e400}},
    "memory-lots": {"HostConfig": {"Memory": "lots"}}, "env-string": {"Env": "x"}, "env-int": {"Env": [5]},
    "tmpfs-list": {"HostConfig": {"Tmpfs": ["/x"]}}, "ulimits-string": {"HostConfig": {"Ulimits": "x"}},
    "blkio-huge": {"HostConfig": {"BlkioWeight": 99999}}, "workingdir-int": {"WorkingDir": 5},
    "cmd-int": {"Cmd": 5}, "entrypoint-int": {"Entrypoint": 5}, "hostconfig-string": {"HostConfig": "x"},
    "image-int": {"Image": 5}, "labels-list": {"Labels": ["a"]}, "binds-int": {"HostConfig": {"Binds": [5]}},
    "restart-string": {"HostConfig": {"RestartPolicy": "always"}}, "mounts-int": {"HostConfig": {"Mounts": [5]}},
    "logconfig-string": {"HostConfig": {"LogConfig": "x"}},
    "restart-bogus": {"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
    "capadd-unknown": {"HostConfig": {"CapAdd": ["CAP_NOPE"]}},
}


@pytest.mark.parametrize("case", sorted(BAD_CREATE))
def test_bad_create_bodies_are_400_and_harm_no_one(daemon, case):
    body = {"Image": "busybox", "Cmd": ["true"], **BAD_CREATE[case]}
    before = set(daemon.containers())
    st, answer = daemon.api("POST", "/containers/create", body)
    assert st == 400, (case, st, answer)
    assert answer["message"] and "Traceback" not in answer["message"]
    assert set(daemon.containers()) == before
    _still_serving(daemon)
    assert daemon.docker("ps", "-a").returncode == 0


@pytest.mark.parametrize("raw", [b'{"Image":"busybox","StopTimeout":1e400}',
                                 b'{"Image":"busybox","HostConfig":{"Memory":1e400}}',
                                 b'{"Image":"busybox","StopTimeout":NaN}', b'{"Image":"busybox","Cmd":' + b"[" * 100000])
def test_bodies_json_cannot_express_are_400(daemon, raw):
    st, answer = daemon.api("POST", "/containers/create", raw)
    assert st == 400, answer
    _still_serving(daemon)


def test_a_string_cmd_is_one_argument(daemon):
    st, body = daemon.api("POST", "/containers/create?name=strcmd", {"Image": "busybox", "Cmd": "true"})
    assert st == 201, body
    try:
        assert daemon.api("GET", "/containers/strcmd/json")[1]["Config"]["Cmd"] == ["true"]
    finally:
        daemon.hatoba("rm", "-f", "strcmd")


def test_bad_exec_bodies_are_400(daemon):
    cid = _run_d(daemon, "busybox", "sleep", "30")
    try:
        for body in ({"Cmd": 5}, {"Cmd": []}, {"Cmd": ["true"], "User": 5}):
            st, answer = daemon.api("POST", f"/containers/{cid}/exec", body)
            assert st == 400, (body, answer)
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_auth_with_a_bad_type_never_reaches_a_registry(daemon):
    t0 = time.monotonic()
    st, body = daemon.api("POST", "/auth", {"username": 5, "serveraddress": "https://index.docker.io/v1/"})
    assert st == 400 and "AuthConfig.username" in body["message"], body
    assert time.monotonic() - t0 < 2


def test_import_of_a_refused_tar_is_400(daemon):
    st, body = daemon.api("POST", "/images/create?fromSrc=-&repo=junk", b"\x1f\x8b" + b"not gzip at all" * 100)
    assert st == 400, body
    _still_serving(daemon)


def test_exec_records_go_with_their_container(daemon):
    cid = _run_d(daemon, "busybox", "sleep", "30")
    st, body = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert st == 201
    eid = body["Id"]
    assert daemon.api("GET", f"/exec/{eid}/json")[0] == 200
    daemon.hatoba("rm", "-f", cid, check=True)
    assert daemon.api("GET", f"/exec/{eid}/json")[0] == 404
