"""docker-py (the `docker` package) against hatobad.

Every test runs twice: with docker-py's default client (which negotiates, landing on 1.41) and pinned to
docker-py's DEFAULT_DOCKER_API_VERSION (a newer, versioned path prefix that hatobad must accept).
"""

from __future__ import annotations

import io
import socket
import tarfile
import time
import uuid

import docker
import docker.constants
import docker.errors
import pytest

TICKER = "i=0; while true; do echo tick $i; echo err $i >&2; i=$((i+1)); sleep 0.3; done"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(params=["default", "pinned"])
def client(daemon, request):
    if request.param == "default":
        c = docker.DockerClient(base_url=daemon.host, timeout=60)
    else:
        c = docker.DockerClient(base_url=daemon.host, version=docker.constants.DEFAULT_DOCKER_API_VERSION,
                                timeout=60)
    try:
        yield c
    finally:
        c.close()


def _rm(client, *names: str) -> None:
    for n in names:
        try:
            client.api.remove_container(n, force=True)
        except docker.errors.NotFound:
            pass


def _until(pred, timeout: float = 10.0, step: float = 0.1):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000
            ti.mode = 0o640
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _untar(chunks) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}  # type: ignore[union-attr]


# ---- versions ------------------------------------------------------------------------------------

def test_version_negotiation(daemon):
    for kwargs in ({}, {"version": "auto"}):
        c = docker.DockerClient(base_url=daemon.host, **kwargs)
        try:
            assert c.api.api_version == "1.41"
            assert c.ping() is True
            v = c.version()
            assert (v["ApiVersion"], v["MinAPIVersion"], v["Os"]) == ("1.41", "1.12", "linux")
            assert c.info()["Swarm"]["LocalNodeState"] == "inactive"
        finally:
            c.close()
    c = docker.DockerClient(base_url=daemon.host, version=docker.constants.DEFAULT_DOCKER_API_VERSION)
    try:
        assert c.api.api_version == docker.constants.DEFAULT_DOCKER_API_VERSION
        assert c.version()["ApiVersion"] == "1.41"
    finally:
        c.close()
    c = docker.DockerClient(base_url=daemon.host, version="1.99")
    try:
        with pytest.raises(docker.errors.APIError) as e:
            c.containers.list()
        assert e.value.status_code == 400
        assert "client version 1.99 is too new" in str(e.value.explanation)
    finally:
        c.close()


# ---- run, logs, attach ---------------------------------------------------------------------------

def test_run_foreground(client):
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    out = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stderr=True)
    assert sorted(out.splitlines()) == [b"err", b"out"]
    out = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stdout=False,
                                stderr=True)
    assert out == b"err\n"
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert e.value.exit_status == 3
    assert e.value.stderr == b"bad\n"
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("busybox:doesnotexist", "true")


def test_run_detach_and_logs_stream(client):
    name = _name("dplogs")
    try:
        c = client.containers.run("busybox", ["sh", "-c", TICKER], detach=True, name=name)
        assert isinstance(c, docker.models.containers.Container) and len(c.id) == 64
        c.reload()
        assert (c.name, c.status) == (name, "running")
        it = c.logs(stream=True, stdout=True, stderr=False)
        got = [next(it) for _ in range(3)]
        assert got == [b"tick 0\n", b"tick 1\n", b"tick 2\n"]
        it = c.logs(stream=True, follow=True, stdout=False, stderr=True, tail=1)
        first = next(it)
        assert first.startswith(b"err ")
        nxt = next(it)
        assert int(nxt.split()[1]) == int(first.split()[1]) + 1
        logs = c.logs(timestamps=True, tail=2)
        lines = logs.splitlines()
        assert len(lines) == 2 and all(line[:4].isdigit() and line[10:11] == b"T" for line in lines), logs
        assert c.logs(stdout=True, stderr=False).startswith(b"tick 0\ntick 1\n")
    finally:
        _rm(client, name)


def test_attach_socket(client):
    """Attach before start, send stdin, half-close: frames come back demultiplexable; exit status via wait."""
    name = _name("dpatt")
    # docker-py has no stdin_once argument; send the config the docker CLI sends for `run -i`
    cid = client.api.create_container_from_config(
        {"Image": "busybox", "Cmd": ["sh", "-c", "read x; echo got $x; echo err >&2; exit 5"], "OpenStdin": True,
         "StdinOnce": True, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True}, name)["Id"]
    c = client.containers.get(cid)
    try:
        s = c.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw = s._sock
        c.start()
        raw.sendall(b"abc\n")
        raw.shutdown(socket.SHUT_WR)
        data = b""
        raw.settimeout(20)
        while True:
            d = raw.recv(4096)
            if not d:
                break
            data += d
        s.close()
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x08got abc\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
        assert c.wait(timeout=20) == {"Error": None, "StatusCode": 5}
    finally:
        _rm(client, name)
    # docker-py's own stdin_open (StdinOnce false): no half-close, the attach ends with the process
    name = _name("dpatt1")
    c = client.containers.create("busybox", ["sh", "-c", "read x; echo got $x"], stdin_open=True, name=name)
    try:
        s = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = s._sock
        c.start()
        raw.sendall(b"xyz\n")
        raw.settimeout(20)
        data = b""
        while True:
            d = raw.recv(4096)
            if not d:
                break
            data += d
        s.close()
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x08got xyz\n"
        assert c.wait(timeout=20) == {"Error": None, "StatusCode": 0}
    finally:
        _rm(client, name)


def test_attach_stream(client):
    name = _name("dpatt2")
    try:
        c = client.containers.run("busybox", ["sh", "-c", "echo line 1; sleep 1; echo line 2; sleep 0.5; "
                                                          "echo line 3"], detach=True, name=name)
        assert _until(lambda: c.logs() == b"line 1\n")
        out = b"".join(c.attach(stream=True, logs=True))
        assert out == b"line 1\nline 2\nline 3\n"
        assert c.wait(timeout=20)["StatusCode"] == 0
        # after the exit: logs only, no stream
        assert c.attach(stream=False, logs=True) == b"line 1\nline 2\nline 3\n"
    finally:
        _rm(client, name)


# ---- exec ----------------------------------------------------------------------------------------

def test_exec_run(client):
    name = _name("dpexec")
    try:
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.exit_code, r.output) == (3, b"out\nerr\n")
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
        assert (r.exit_code, r.output) == (3, (b"out\n", b"err\n"))
        r = c.exec_run(["sh", "-c", "echo out"], demux=True)
        assert (r.exit_code, r.output) == (0, (b"out\n", None))
        r = c.exec_run(["sh", "-c", 'echo "$FOO $(pwd) $(id -u)"'], environment={"FOO": "bar"}, workdir="/tmp",
                       user="nobody")
        assert (r.exit_code, r.output) == (0, b"bar /tmp 65534\n")
        r = c.exec_run(["cat", "/etc/hostname"], stdout=True, stderr=False)
        assert r.output == c.id[:12].encode() + b"\n"
        r = c.exec_run("sh -c 'sleep 0.2; echo bg > /tmp/bg'", detach=True)
        assert (r.exit_code, r.output) == (None, "")  # docker-py hands back the (empty) text body
        assert _until(lambda: c.exec_run(["cat", "/tmp/bg"]).output == b"bg\n")
        r = c.exec_run(["nosuchcmd"])
        assert r.exit_code == 127
        assert r.output.startswith(b"OCI runtime exec failed: ") and b"executable file not found" in r.output
        r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
        assert b"".join(r.output) == b"1\n2\n3\n"
        # the low-level API: create, start, inspect
        eid = client.api.exec_create(c.id, ["sh", "-c", "exit 9"])["Id"]
        assert client.api.exec_start(eid) == b""
        ins = client.api.exec_inspect(eid)
        assert (ins["ExitCode"], ins["Running"], ins["ContainerID"]) == (9, False, c.id)
    finally:
        _rm(client, name)


# ---- archive, diff, export ------------------------------------------------------------------------

def test_put_get_archive(client):
    name = _name("dparch")
    try:
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
        assert c.put_archive("/tmp", _tar({"f.txt": b"hello archive\n", "d/inner.txt": b"inner\n"})) is True
        assert c.exec_run(["cat", "/tmp/f.txt"]).output == b"hello archive\n"
        strm, st = c.get_archive("/tmp/f.txt")
        assert st == {"name": "f.txt", "size": 14, "mode": 0o640, "mtime": "2023-11-14T22:13:20Z", "linkTarget": ""}
        assert _untar(strm) == {"f.txt": b"hello archive\n"}
        strm, st = c.get_archive("/tmp/d")
        assert st["name"] == "d" and st["mode"] & (1 << 31) and st["mode"] & 0o777 == 0o755
        assert _untar(strm) == {"d": None, "d/inner.txt": b"inner\n"}
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/nonexistent")
        with pytest.raises(docker.errors.NotFound):
            c.put_archive("/nonexistent", _tar({"x": b"x"}))
        # a link in the container is reported with its target
        c.exec_run(["ln", "-s", "/tmp/f.txt", "/tmp/link"])
        strm, st = c.get_archive("/tmp/link")
        assert st["linkTarget"] == "/tmp/f.txt" and st["mode"] & (1 << 27)
    finally:
        _rm(client, name)


def test_diff_and_export(client):
    name = _name("dpdiff")
    try:
        c = client.containers.run("busybox", ["sh", "-c", "mkdir /tmp/newdir && echo x > /tmp/newdir/f && "
                                                          "rm /etc/group && exec sleep 60"], detach=True, name=name)
        assert _until(lambda: c.exec_run(["test", "-f", "/tmp/newdir/f"]).exit_code == 0)
        changes = sorted((d["Kind"], d["Path"]) for d in c.diff())
        assert changes == [(0, "/etc"), (0, "/tmp"), (1, "/tmp/newdir"), (1, "/tmp/newdir/f"), (2, "/etc/group")]
        files = _untar(c.export())
        assert "bin/busybox" in files and files["tmp/newdir/f"] == b"x\n" and "etc/group" not in files
    finally:
        _rm(client, name)


# ---- top, stats ------------------------------------------------------------------------------------

def test_top_and_stats(client):
    name = _name("dpstats")
    try:
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
        top = c.top()
        assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert len(top["Processes"]) == 1 and top["Processes"][0][-1] == "sleep 60"
        top = c.top(ps_args="-o pid,comm")
        assert top["Titles"] == ["PID", "COMMAND"] and [p[1] for p in top["Processes"]] == ["sleep"]
        s = c.stats(stream=False)
        assert s["name"] == "/" + name and s["id"] == c.id
        assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
        assert s["pids_stats"]["current"] == 1
        assert s["cpu_stats"]["online_cpus"] >= 1 and s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # two samples, as dockerd takes
        assert s["read"] != s["preread"] and s["read"][:19] >= s["preread"][:19]
        it = c.stats(decode=True)
        a, b = next(it), next(it)
        assert b["precpu_stats"]["cpu_usage"] == a["cpu_stats"]["cpu_usage"]
        it.close()
    finally:
        _rm(client, name)


# ---- state changes -------------------------------------------------------------------------------

def test_pause_rename_kill_wait(client):
    name, new = _name("dpstate"), _name("dprenamed")
    try:
        c = client.containers.run("busybox", ["sh", "-c", 'trap "echo got HUP" HUP; echo ready; '
                                                          "while true; do sleep 0.1; done"], detach=True, name=name)
        assert _until(lambda: c.logs() == b"ready\n")
        c.pause()
        c.reload()
        assert (c.status, c.attrs["State"]["Paused"]) == ("paused", True)
        with pytest.raises(docker.errors.APIError) as e:
            c.pause()
        assert e.value.status_code == 409
        c.unpause()
        c.reload()
        assert (c.status, c.attrs["State"]["Paused"]) == ("running", False)
        c.rename(new)
        c.reload()
        assert c.name == new and c.attrs["Name"] == "/" + new
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
        c.kill(signal="SIGHUP")
        assert _until(lambda: c.logs() == b"ready\ngot HUP\n"), c.logs()
        c.kill(signal=1)
        assert _until(lambda: c.logs() == b"ready\ngot HUP\ngot HUP\n"), c.logs()
        with pytest.raises(docker.errors.APIError) as e:
            c.kill(signal="SIGNOPE")
        assert e.value.status_code == 400
        c.kill()
        assert c.wait(timeout=20) == {"Error": None, "StatusCode": 137}
        c.reload()
        assert (c.status, c.attrs["State"]["ExitCode"]) == ("exited", 137)
    finally:
        _rm(client, name, new)


def test_wait_conditions(client):
    name = _name("dpwait")
    try:
        c = client.containers.create("busybox", ["sh", "-c", "sleep 0.5; exit 4"], name=name)
        c.start()
        assert c.wait(timeout=20) == {"Error": None, "StatusCode": 4}
        assert c.wait(timeout=5, condition="not-running") == {"Error": None, "StatusCode": 4}
        with pytest.raises(docker.errors.NotFound):
            client.api.wait("nosuchcontainer")
    finally:
        _rm(client, name)


def test_remove_force(client):
    name = _name("dprm")
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
    try:
        with pytest.raises(docker.errors.APIError) as e:
            c.remove()
        assert e.value.status_code == 409
        assert e.value.explanation == (f"You cannot remove a running container {c.id}. Stop the container before "
                                       "attempting removal or force remove")
        c.remove(force=True)
        with pytest.raises(docker.errors.NotFound) as e2:
            client.containers.get(c.id)
        assert e2.value.explanation == f"No such container: {c.id}"
    finally:
        _rm(client, name)


# ---- events --------------------------------------------------------------------------------------

def test_events_since_until(client):
    name = _name("dpev")
    since = int(time.time())
    assert client.containers.run("busybox", ["true"], name=name, remove=True) == b""
    time.sleep(max(0.0, since + 2 - time.time()))
    until = int(time.time())
    evs = list(client.events(since=since, until=until, decode=True, filters={"container": name}))
    assert [e["Action"] for e in evs] == ["create", "start", "die", "destroy"]
    for e in evs:
        assert e["Type"] == "container" and e["status"] == e["Action"] and e["from"] == "busybox"
        assert e["Actor"]["Attributes"]["name"] == name and e["Actor"]["Attributes"]["image"] == "busybox"
        assert e["id"] == e["Actor"]["ID"] and len(e["id"]) == 64 and e["scope"] == "local"
        assert since <= e["time"] <= until and e["timeNano"] // 10**9 == e["time"]
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == "0"
    raw = list(client.events(since=since, until=until, filters={"container": name, "event": "die"}))
    assert len(raw) == 1 and raw[0].endswith(b"}\n")
    assert list(client.events(since=since, until=until, decode=True, filters={"container": "nosuch"})) == []


def test_events_live(client):
    name = _name("dplive")
    stream = client.events(decode=True, filters={"container": name}, since=int(time.time()))
    try:
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
        assert [next(stream)["Action"] for _ in range(2)] == ["create", "start"]
        c.remove(force=True)
        assert [next(stream)["Action"] for _ in range(3)] == ["kill", "die", "destroy"]
    finally:
        stream.close()
        _rm(client, name)


# ---- images, inspect, list, prune ---------------------------------------------------------------------

def test_images(client):
    tags = {t for i in client.images.list() for t in i.tags}
    assert {"busybox:latest", "hello-world:latest"} <= tags
    assert [i.tags for i in client.images.list(name="busybox")] == [["busybox:latest"]]
    img = client.images.get("busybox")
    assert img.id.startswith("sha256:") and len(img.id) == 71 and img.tags == ["busybox:latest"]
    assert client.images.get(img.id[7:19]).id == img.id
    assert img.attrs["Os"] == "linux" and img.attrs["RootFS"]["Type"] == "layers"
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuchimage")
    assert client.api.inspect_image("hello-world")["RepoTags"] == ["hello-world:latest"]


def test_inspect_and_list_filters(client):
    run, ex = _name("dplist"), _name("dplistx")
    try:
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, name=run, labels={"hatoba.test": "yes"})
        e = client.containers.run("busybox", ["sh", "-c", "exit 2"], detach=True, name=ex)
        assert e.wait(timeout=20)["StatusCode"] == 2
        info = client.api.inspect_container(run)
        assert info["Id"] == c.id and info["Name"] == "/" + run and info["State"]["Status"] == "running"
        assert info["Config"]["Cmd"] == ["sleep", "60"] and info["Config"]["Labels"]["hatoba.test"] == "yes"
        assert info["State"]["Pid"] > 0 and info["HostConfig"]["AutoRemove"] is False
        assert [x.name for x in client.containers.list(filters={"name": run})] == [run]
        assert [x.name for x in client.containers.list(filters={"label": "hatoba.test=yes"})] == [run]
        assert [x.name for x in client.containers.list(all=True, filters={"name": ex})] == [ex]
        assert client.containers.list(filters={"name": ex}) == []
        exited = [x.name for x in client.containers.list(all=True, filters={"status": "exited"})]
        assert ex in exited and run not in exited
        assert [x.name for x in client.containers.list(all=True, filters={"exited": 2, "name": ex})] == [ex]
        assert [x.id for x in client.containers.list(filters={"id": c.id[:12]})] == [c.id]
        assert c.id in {x.id for x in client.containers.list(filters={"ancestor": "busybox"})}
        assert client.containers.get(run).attrs["Name"] == "/" + run
        listed = client.api.containers(all=True, filters={"name": ex})
        assert len(listed) == 1 and listed[0]["Status"].startswith("Exited (2) ") and listed[0]["State"] == "exited"
    finally:
        _rm(client, run, ex)


def test_prune(client):
    keep, a = _name("dpkeep"), _name("dpprune")
    try:
        client.containers.run("busybox", ["true"], name=a, labels={"hatoba.prune": "yes"})
        k = client.containers.run("busybox", ["sleep", "60"], detach=True, name=keep, labels={"hatoba.prune": "yes"})
        aid = client.containers.get(a).id
        assert client.containers.prune(filters={"label": "hatoba.prune=no"}) == {"ContainersDeleted": None,
                                                                                 "SpaceReclaimed": 0}
        res = client.containers.prune(filters={"label": "hatoba.prune=yes"})
        assert res["ContainersDeleted"] == [aid] and isinstance(res["SpaceReclaimed"], int)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(a)
        assert client.containers.get(keep).id == k.id
    finally:
        _rm(client, a, keep)
