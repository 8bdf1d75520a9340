"""Moving images with a real hatobad: save/load (docker-archive and OCI layout), commit, and the same
through the real docker CLI, docker-py and skopeo (cli-traces 29, 34, 39, 40, 41, 74, 88)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import uuid

import pytest
from conftest import DOCKER

HATOBA = os.path.join(os.path.dirname(sys.executable), "hatoba")
SKOPEO = shutil.which("skopeo")
LONG_ID = re.compile(r"sha256:[0-9a-f]{64}")

needs_docker = pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo not installed")


def _u(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _commit_image(daemon, repo: str, script: str) -> str:
    """An image of its own (busybox + one layer from `script`), tagged `repo`; returns its id."""
    name = _u("mv")
    try:
        daemon.hatoba("run", "--name", name, "busybox", "sh", "-c", script, check=True)
        p = daemon.hatoba("commit", name, repo, check=True)
    finally:
        daemon.hatoba("rm", "-f", name)
    iid = p.stdout.decode().strip()
    assert LONG_ID.fullmatch(iid), p.stdout
    return iid


def _inspect(daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/images/{ref}/json")
    assert status == 200, body
    return body  # type: ignore[return-value]


def _rmi(daemon, *refs: str) -> None:
    for r in refs:
        daemon.api("DELETE", f"/images/{r}?force=1")


def _run(daemon, image: str, *cmd: str) -> subprocess.CompletedProcess:
    return daemon.hatoba("run", "--rm", image, *cmd)


# ---------------------------------------------------------------------------------------------------------
# hatoba CLI


def test_save_load_round_trip(daemon, tmp_path):
    repo = f"movetest/rt{uuid.uuid4().hex[:6]}"
    iid = _commit_image(daemon, f"{repo}:v1", "echo round > /round.txt")
    daemon.hatoba("tag", f"{repo}:v1", f"{repo}:v2", check=True)
    try:
        out = tmp_path / "rt.tar"
        daemon.hatoba("save", "-o", str(out), repo, check=True)
        with tarfile.open(out) as tf:
            names = tf.getnames()
            manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
            repos = json.load(tf.extractfile("repositories"))  # type: ignore[arg-type]
        assert manifest[0]["Config"] == iid[7:] + ".json"
        assert sorted(manifest[0]["RepoTags"]) == [f"{repo}:v1", f"{repo}:v2"]
        assert set(repos[repo]) == {"v1", "v2"}
        assert all(n in names for n in manifest[0]["Layers"])
        # stdout form gives the same bytes
        p = daemon.hatoba("save", f"{repo}:v1", f"{repo}:v2", check=True)
        assert p.stdout == out.read_bytes()
        daemon.hatoba("rmi", f"{repo}:v1", f"{repo}:v2", check=True)
        assert daemon.api("GET", f"/images/{iid}/json")[0] == 404
        p = daemon.hatoba("load", "-i", str(out), check=True)
        assert sorted(p.stdout.decode().splitlines()) == [f"Loaded image: {repo}:v1", f"Loaded image: {repo}:v2"]
        doc = _inspect(daemon, f"{repo}:v1")
        assert doc["Id"] == iid and sorted(doc["RepoTags"]) == [f"{repo}:v1", f"{repo}:v2"]
        assert doc["Metadata"]["LastTagTime"] == "0001-01-01T00:00:00Z"
        assert _run(daemon, f"{repo}:v2", "cat", "/round.txt").stdout == b"round\n"
        # from stdin, quiet
        p = daemon.hatoba("load", "-q", input=out.read_bytes(), check=True)
        assert b"Loaded image: " in p.stdout
    finally:
        _rmi(daemon, f"{repo}:v1", f"{repo}:v2")


def test_load_progress_on_a_terminal(daemon, tmp_path):
    """trace 41: progress lines redrawn in place, then "Loaded image: …"."""
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    repo = f"movetest/tty{uuid.uuid4().hex[:6]}"
    iid = _commit_image(daemon, repo, "head -c 3000 /dev/urandom > /blob")
    try:
        out = tmp_path / "tty.tar"
        daemon.hatoba("save", "-o", str(out), repo, check=True)
        daemon.hatoba("rmi", repo, check=True)
        p = subprocess.run(["script", "-qec", f"{HATOBA} load -i {out}", "/dev/null"], capture_output=True,
                           env=dict(daemon.env, COLUMNS="80", LINES="24"), timeout=60)
        assert p.returncode == 0, p.stdout
        text = p.stdout.decode()
        layer = _inspect(daemon, repo)["RootFS"]["Layers"][-1]
        assert f"\x1b[2K\r{layer[7:19]}: Loading layer" in text
        assert text.endswith(f"Loaded image: {repo}:latest\r\n")
        assert _inspect(daemon, repo)["Id"] == iid
    finally:
        _rmi(daemon, repo)


def test_save_refuses_a_terminal_and_bad_names(daemon):
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    p = subprocess.run(["script", "-qec", f"{HATOBA} save busybox", "/dev/null"], capture_output=True,
                       env=daemon.env, timeout=60)
    assert p.returncode == 1
    assert b"cowardly refusing to save to a terminal. Use the -o flag or redirect" in p.stdout
    p = daemon.hatoba("save", "busybox:nosuchtag")
    assert p.returncode == 1 and p.stderr == b"Error response from daemon: reference does not exist\n"
    p = daemon.hatoba("save", "-o", "/nonexistent-dir/x.tar", "busybox")
    assert p.returncode == 1 and b'invalid output path: directory "/nonexistent-dir" does not exist' in p.stderr


def test_commit_changes_deletion_and_metadata(daemon):
    repo = f"movetest/commit{uuid.uuid4().hex[:6]}"
    name = _u("mvc")
    try:
        daemon.hatoba("run", "--name", name, "busybox", "sh", "-c",
                      "mkdir -p /work && echo made > /work/new.txt && rm /etc/passwd && rm -r /home", check=True)
        p = daemon.hatoba("commit", "-a", "Hatoba Tracer <trace@example.com>", "-m", "add marker",
                          "-c", "ENV FOO=bar", "-c", 'CMD ["cat", "/work/new.txt"]', "-c", "WORKDIR /work",
                          name, f"{repo}:v1", check=True)
        iid = p.stdout.decode().strip()
        assert LONG_ID.fullmatch(iid)
        doc = _inspect(daemon, f"{repo}:v1")
        busybox = _inspect(daemon, "busybox")
        assert doc["Id"] == iid and doc["RepoTags"] == [f"{repo}:v1"]
        assert doc["Author"] == "Hatoba Tracer <trace@example.com>"
        assert doc["Comment"] == "add marker"
        assert doc["Parent"] == busybox["Id"]
        assert doc["Container"] and doc["ContainerConfig"]["Cmd"][0] == "sh"
        assert doc["Config"]["Cmd"] == ["cat", "/work/new.txt"] and doc["Config"]["WorkingDir"] == "/work"
        assert "FOO=bar" in doc["Config"]["Env"]
        assert doc["RootFS"]["Layers"][:-1] == busybox["RootFS"]["Layers"]
        assert doc["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
        # the new container sees the changes: the added file, and the deletions (whiteouts)
        assert _run(daemon, f"{repo}:v1").stdout == b"made\n"
        p = _run(daemon, f"{repo}:v1", "sh", "-c", "ls /etc/passwd /home; echo $FOO; pwd")
        assert b"No such file or directory" in p.stderr and p.stdout.splitlines()[-2:] == [b"bar", b"/work"]
        # nothing of the runtime's mount points in the layer
        p = _run(daemon, f"{repo}:v1", "true")
        assert p.returncode == 0
        hist = daemon.hatoba("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
                             f"{repo}:v1", check=True).stdout.decode().splitlines()
        assert hist[0].startswith(f"{iid}|sh -c mkdir -p /work") and hist[0].endswith("|add marker")
        assert hist[1].startswith(busybox["Id"] + "|")
        p = daemon.hatoba("events", "--since", "0", "--until", str(int(time.time()) + 1), "--filter",
                          "event=commit", "--format", "{{json .}}", check=True)
        evs = [json.loads(x) for x in p.stdout.decode().splitlines() if x]
        ours = [e for e in evs if e["Actor"]["Attributes"].get("imageID") == iid]
        assert ours and ours[0]["Actor"]["Attributes"]["comment"] == "add marker"
        assert ours[0]["Actor"]["Attributes"]["imageRef"] == f"{repo}:v1"
    finally:
        daemon.hatoba("rm", "-f", name)
        _rmi(daemon, f"{repo}:v1")


def test_commit_running_container_pauses_and_resumes(daemon):
    repo = f"movetest/live{uuid.uuid4().hex[:6]}"
    name = _u("mvl")
    try:
        daemon.hatoba("run", "-d", "--name", name, "busybox", "sh", "-c", "echo live > /live; sleep 300", check=True)
        for _ in range(50):
            if daemon.hatoba("exec", name, "cat", "/live").stdout == b"live\n":
                break
        iid = daemon.hatoba("commit", name, repo, check=True).stdout.decode().strip()
        state = json.loads(daemon.hatoba("inspect", "-f", "{{json .State}}", name, check=True).stdout)
        assert state["Running"] and not state["Paused"]
        iid2 = daemon.hatoba("commit", "--pause=false", name, repo, check=True).stdout.decode().strip()
        assert LONG_ID.fullmatch(iid) and LONG_ID.fullmatch(iid2)
        assert _run(daemon, repo, "cat", "/live").stdout == b"live\n"
        # no changes at all: an empty layer, not a new one
        empty = _u("mve")
        daemon.hatoba("create", "--name", empty, "busybox", "true", check=True)
        try:
            eid = daemon.hatoba("commit", empty, check=True).stdout.decode().strip()
            assert _inspect(daemon, eid)["RootFS"]["Layers"] == _inspect(daemon, "busybox")["RootFS"]["Layers"]
            status, hist = daemon.api("GET", f"/images/{eid}/history")
            assert hist[0]["Size"] == 0  # type: ignore[index]
        finally:
            daemon.hatoba("rm", "-f", empty)
            _rmi(daemon, eid)
    finally:
        daemon.hatoba("rm", "-f", name)
        _rmi(daemon, repo, iid)


def test_commit_errors(daemon):
    p = daemon.hatoba("commit", "nosuchcontainer-x")
    assert p.returncode == 1 and p.stderr == b"Error response from daemon: No such container: nosuchcontainer-x\n"
    status, body = daemon.api("POST", "/commit?container=x&repo=busybox@sha256:" + "a" * 64)
    assert status == 400 and body == {"message": "cannot commit to digest reference"}
    name = _u("mvx")
    daemon.hatoba("create", "--name", name, "busybox", "true", check=True)
    try:
        status, body = daemon.api("POST", f"/commit?container={name}&changes=RUN%20true")
        assert status == 400 and "RUN is not a valid change command" in body["message"]  # type: ignore[index]
    finally:
        daemon.hatoba("rm", "-f", name)


def test_import_comment_in_inspect(daemon, tmp_path):
    """trace 88 / 74: the import message is the image's Comment and its history comment."""
    repo = f"movetest/imp{uuid.uuid4().hex[:6]}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"hi\n"))
    try:
        daemon.hatoba("import", "-m", "imported by test", "-", f"{repo}:x", input=buf.getvalue(), check=True)
        assert _inspect(daemon, f"{repo}:x")["Comment"] == "imported by test"
        status, hist = daemon.api("GET", f"/images/{repo}:x/history")
        assert hist[0]["Comment"] == "imported by test"  # type: ignore[index]
    finally:
        _rmi(daemon, f"{repo}:x")


def test_hostile_archives_are_refused(daemon, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()

    def layer_tar(build) -> bytes:
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w") as tf:
            build(tf)
        return b.getvalue()

    def add_file(tf, name, data=b"x"):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))

    def add_link(tf, name, target, kind=tarfile.SYMTYPE):
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname = kind, target
        tf.addfile(ti)

    def docker_archive(layer: bytes) -> bytes:
        import hashlib

        diff = "sha256:" + hashlib.sha256(layer).hexdigest()
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                          "rootfs": {"type": "layers", "diff_ids": [diff]},
                          "created": "2024-01-01T00:00:00Z"}).encode()
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
        manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["movetest/evil:1"],
                                "Layers": ["l/layer.tar"]}]).encode()
        return layer_tar(lambda tf: (add_file(tf, "l/layer.tar", layer), add_file(tf, cfg_name, cfg),
                                     add_file(tf, "manifest.json", manifest)))

    rel = "../../../../../../../../../.." + str(outside)
    cases = {
        "member ..": (docker_archive(layer_tar(lambda tf: add_file(tf, rel + "/escaped"))), "error loading layer"),
        "absolute member": (docker_archive(layer_tar(lambda tf: add_file(tf, str(outside) + "/abs"))),
                            "error loading layer"),
        "symlink escape": (docker_archive(layer_tar(lambda tf: (add_link(tf, "evil", str(outside)),
                                                                add_file(tf, "evil/pwned")))),
                           "error loading layer"),
        "hard link escape": (docker_archive(layer_tar(lambda tf: add_link(tf, "pw", rel + "/etc/passwd",
                                                                          tarfile.LNKTYPE))),
                             "error loading layer"),
        "outer member ..": (layer_tar(lambda tf: add_file(tf, "../x")), "outside of the archive"),
        "outer absolute": (layer_tar(lambda tf: add_file(tf, str(outside) + "/x")), "absolute path"),
        "outer symlink": (layer_tar(lambda tf: add_link(tf, "manifest.json", "../../../etc/passwd")),
                          "outside of the archive"),
    }
    images_before = {i["Id"] for i in daemon.api("GET", "/images/json?all=1")[1]}  # type: ignore[union-attr]
    for what, (data, message) in cases.items():
        p = daemon.hatoba("load", input=data)
        assert p.returncode == 1, what
        assert message in p.stderr.decode(), (what, p.stderr)
        assert not os.listdir(outside), what
    images_after = {i["Id"] for i in daemon.api("GET", "/images/json?all=1")[1]}  # type: ignore[union-attr]
    assert images_after == images_before
    assert daemon.api("GET", "/images/movetest/evil:1/json")[0] == 404


# ---------------------------------------------------------------------------------------------------------
# the real docker CLI


@needs_docker
def test_docker_cli_save_load_commit_tag_rmi_history_import(daemon, tmp_path):
    repo = f"tracerepo/webcommit{uuid.uuid4().hex[:6]}"
    name = _u("web1")
    try:
        daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo marker > /marker; sleep 300",
                      check=True)
        for _ in range(50):
            if daemon.docker("exec", name, "cat", "/marker").stdout == b"marker\n":
                break
        # trace 29
        p = daemon.docker("commit", "-m", "add marker", "-a", "Hatoba Tracer <trace@example.com>", name,
                          f"{repo}:v1", check=True)
        iid = p.stdout.decode().strip()
        assert LONG_ID.fullmatch(iid) and p.stderr == b""
        # trace 30, 34
        daemon.docker("tag", f"{repo}:v1", f"{repo}:latest", check=True)
        hist = daemon.docker("history", f"{repo}:v1", check=True).stdout.decode().splitlines()
        assert hist[0].split()[:5] == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE"]
        assert hist[1].startswith(iid[7:19]) and hist[1].rstrip().endswith("add marker")
        assert "sh -c echo marker > /marker; sleep 300" in hist[1]
        # trace 39, 40
        out = tmp_path / "web.tar"
        daemon.docker("save", "-o", str(out), repo, check=True)
        with tarfile.open(out) as tf:
            assert {"manifest.json", "repositories", iid[7:] + ".json"} <= set(tf.getnames())
        p = daemon.docker("rmi", f"{repo}:latest", f"{repo}:v1", check=True)
        assert p.stdout.decode().splitlines() == [f"Untagged: {repo}:latest", f"Untagged: {repo}:v1",
                                                  f"Deleted: {iid}"]
        p = daemon.docker("load", "-i", str(out), check=True)
        assert sorted(p.stdout.decode().splitlines()) == [f"Loaded image: {repo}:latest",
                                                          f"Loaded image: {repo}:v1"]
        doc = json.loads(daemon.docker("image", "inspect", f"{repo}:v1", check=True).stdout)[0]
        assert doc["Id"] == iid and doc["Comment"] == "add marker"
        assert doc["Author"] == "Hatoba Tracer <trace@example.com>"
        p = daemon.docker("run", "--rm", f"{repo}:v1", "cat", "/marker", check=True)
        assert p.stdout == b"marker\n"
        # load from stdin (trace 40 uses -i; docker pipes the same body)
        p = daemon.docker("load", input=out.read_bytes(), check=True)
        assert b"Loaded image: " in p.stdout
        # trace 88
        p = daemon.docker("export", name, check=True)
        imp = daemon.docker("import", "-c", 'CMD ["sh"]', "-m", "imported by trace", "-", f"{repo}:imported",
                            input=p.stdout, check=True)
        assert LONG_ID.fullmatch(imp.stdout.decode().strip())
        doc = json.loads(daemon.docker("image", "inspect", f"{repo}:imported", check=True).stdout)[0]
        assert doc["Comment"] == "imported by trace" and doc["Config"]["Cmd"] == ["sh"]
        p = daemon.docker("run", "--rm", f"{repo}:imported", "cat", "/marker", check=True)
        assert p.stdout == b"marker\n"
    finally:
        daemon.docker("rm", "-f", name)
        _rmi(daemon, f"{repo}:v1", f"{repo}:latest", f"{repo}:imported")


@needs_docker
def test_docker_load_errors(daemon):
    p = daemon.docker("load", input=b"not a tar" * 200)
    assert p.returncode == 1 and b"invalid archive" in p.stderr


# ---------------------------------------------------------------------------------------------------------
# docker-py


def test_dockerpy_save_load_commit(daemon):
    docker = pytest.importorskip("docker")
    repo = f"movetest/py{uuid.uuid4().hex[:6]}"
    client = docker.DockerClient(base_url=daemon.host, timeout=60)
    ct = None
    try:
        ct = client.containers.run("busybox", "sh -c 'echo py > /py.txt'", detach=True)
        ct.wait()
        img = ct.commit(repository=repo, tag="t1", message="from py", author="py <py@x>",
                        changes=["CMD cat /py.txt", "ENV PY=1"])
        assert img.tags == [f"{repo}:t1"] and img.attrs["Comment"] == "from py"
        assert img.attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /py.txt"]
        data = b"".join(client.images.get(f"{repo}:t1").save(named=True))
        client.images.remove(f"{repo}:t1")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [img.id] and loaded[0].tags == [f"{repo}:t1"]
        assert client.containers.run(f"{repo}:t1", remove=True) == b"py\n"
    finally:
        if ct is not None:
            ct.remove(force=True)
        _rmi(daemon, f"{repo}:t1")
        client.close()


# ---------------------------------------------------------------------------------------------------------
# skopeo


def _tar_dir(path, out) -> None:
    with tarfile.open(out, "w") as tf:
        for entry in sorted(os.listdir(path)):
            tf.add(os.path.join(path, entry), arcname=entry)


@needs_skopeo
def test_skopeo_reads_hatoba_save_and_hatoba_loads_skopeo_output(daemon, tmp_path):
    repo = f"movetest/sko{uuid.uuid4().hex[:6]}"
    iid = _commit_image(daemon, f"{repo}:v1", "echo skopeo > /s.txt; rm /bin/ls")
    try:
        saved = tmp_path / "hatoba.tar"
        daemon.hatoba("save", "-o", str(saved), f"{repo}:v1", check=True)
        # docker-archive → OCI layout (as skopeo writes it), then into hatoba under another name
        oci = tmp_path / "oci"
        p = subprocess.run([SKOPEO, "copy", f"docker-archive:{saved}", f"oci:{oci}:{repo}:fromoci"],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        _tar_dir(oci, tmp_path / "oci.tar")
        p = daemon.hatoba("load", "-i", str(tmp_path / "oci.tar"), check=True)
        assert p.stdout == f"Loaded image: {repo}:fromoci\n".encode()
        # skopeo re-encodes the config as an OCI config (so a new id), the layers are the same
        assert _inspect(daemon, f"{repo}:fromoci")["RootFS"] == _inspect(daemon, iid)["RootFS"]
        assert _run(daemon, f"{repo}:fromoci", "cat", "/s.txt").stdout == b"skopeo\n"
        # compressed layers: a fresh image that has to be unpacked from gzip blobs
        p = subprocess.run([SKOPEO, "copy", "--dest-compress", f"docker-archive:{saved}",
                            f"oci:{tmp_path / 'ocigz'}:{repo}:gz"], capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        daemon.hatoba("rmi", f"{repo}:v1", f"{repo}:fromoci", check=True)
        _tar_dir(tmp_path / "ocigz", tmp_path / "ocigz.tar")
        p = daemon.hatoba("load", "-i", str(tmp_path / "ocigz.tar"), check=True)
        assert p.stdout == f"Loaded image: {repo}:gz\n".encode()
        assert _run(daemon, f"{repo}:gz", "cat", "/s.txt").stdout == b"skopeo\n"
        assert _run(daemon, f"{repo}:gz", "ls", "/bin/ls").returncode != 0
        # skopeo reading hatoba's archive and writing its own docker-archive, loaded back
        again = tmp_path / "skopeo.tar"
        p = subprocess.run([SKOPEO, "copy", f"docker-archive:{saved}", f"docker-archive:{again}:{repo}:sk"],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        p = daemon.hatoba("load", "-i", str(again), check=True)
        assert p.stdout == f"Loaded image: {repo}:sk\n".encode()
        assert _inspect(daemon, f"{repo}:sk")["Id"] == iid
        # skopeo inspects the archive hatoba wrote with --format oci as an OCI archive
        both = tmp_path / "both.tar"
        daemon.hatoba("save", "--format", "oci", "-o", str(both), f"{repo}:sk", check=True)
        p = subprocess.run([SKOPEO, "inspect", "--raw", f"oci-archive:{both}:sk"], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["config"]["digest"] == iid
    finally:
        _rmi(daemon, f"{repo}:v1", f"{repo}:fromoci", f"{repo}:gz", f"{repo}:sk")
