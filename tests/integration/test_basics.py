"""The tutorial's container half with the hatoba CLI against a real hatobad."""

from __future__ import annotations

import re
import time


def test_run_echo(daemon):
    p = daemon.hatoba("run", "--rm", "busybox", "echo", "hello")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello\n"


def test_hello_world(daemon):
    p = daemon.hatoba("run", "--rm", "hello-world")
    assert p.returncode == 0, p.stderr
    assert b"Hello from hatoba!" in p.stdout


def test_exit_codes(daemon):
    assert daemon.hatoba("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    p = daemon.hatoba("run", "--rm", "busybox", "nosuchcommand")
    assert p.returncode == 127, p.stderr
    assert b"executable file not found" in p.stderr
    p = daemon.hatoba("run", "--rm", "busybox", "/etc/passwd")
    assert p.returncode == 126, p.stderr
    p = daemon.hatoba("run", "--rm", "busybox:doesnotexist", "true")
    assert p.returncode == 125
    assert b"Unable to find image 'busybox:doesnotexist' locally" in p.stderr


def test_tutorial_daemon(daemon):
    p = daemon.hatoba("run", "-d", "busybox", "sh", "-c", "while true; do echo hello world; sleep 1; done")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    try:
        ps = daemon.hatoba("ps").stdout.decode().splitlines()
        assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        row = next(r for r in ps if r.startswith(cid[:12]))
        assert " Up " in row
        name = row.split()[-1]
        assert re.fullmatch(r"[a-z]+_[a-z]+", name), name
        time.sleep(1.5)
        logs = daemon.hatoba("logs", name).stdout.decode().splitlines()
        assert logs and all(x == "hello world" for x in logs)
        st = daemon.hatoba("stop", "-t", "1", name)
        assert st.returncode == 0 and st.stdout.decode().strip() == name
        ps_a = daemon.hatoba("ps", "-a").stdout.decode()
        assert re.search(cid[:12] + r".*Exited \(137\)", ps_a), ps_a
        assert cid[:12] not in daemon.hatoba("ps").stdout.decode()
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_piped_stdin(daemon):
    script = b"echo line one\necho to-stderr >&2\nexit 7\n"
    p = daemon.hatoba("run", "-i", "--rm", "busybox", "sh", input=script)
    assert p.returncode == 7
    assert p.stdout == b"line one\n"
    assert p.stderr == b"to-stderr\n"


def test_exec_and_inspect(daemon):
    cid = daemon.hatoba("run", "-d", "--name", "exectest", "busybox", "sleep", "60", check=True).stdout.decode().strip()
    try:
        p = daemon.hatoba("exec", "exectest", "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")
        p = daemon.hatoba("exec", "-i", "exectest", "sh", "-c", "cat; echo done", input=b"via stdin\n")
        assert p.stdout == b"via stdin\ndone\n"
        p = daemon.hatoba("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", "exectest")
        assert p.stdout == b"running /exectest busybox\n"
        assert daemon.hatoba("inspect", "-f", "{{.Id}}", "exectest").stdout.decode().strip() == cid
    finally:
        daemon.hatoba("rm", "-f", "exectest")


def test_oom_killed(daemon):
    p = daemon.hatoba("run", "--name", "oomer", "--memory", "32m", "--memory-swap", "32m", "busybox",
                      "sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1")
    try:
        assert p.returncode == 137, p.stderr
        out = daemon.hatoba("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oomer").stdout
        assert out == b"true 137\n"
    finally:
        daemon.hatoba("rm", "-f", "oomer")


def test_errors(daemon):
    p = daemon.hatoba("stop", "nosuchcontainer")
    assert p.returncode == 1
    assert p.stderr == b"Error response from daemon: No such container: nosuchcontainer\n"
    daemon.hatoba("run", "-d", "--name", "dup", "busybox", "sleep", "30", check=True)
    try:
        p = daemon.hatoba("run", "-d", "--name", "dup", "busybox", "true")
        assert p.returncode == 125
        assert b'Conflict. The container name "/dup" is already in use' in p.stderr
        p = daemon.hatoba("rm", "dup")
        assert p.returncode == 1 and b"You cannot remove a running container" in p.stderr
    finally:
        daemon.hatoba("rm", "-f", "dup")


def _cgroup_file(daemon, cid: str, ctrl: str, name: str) -> str:
    with open(f"/sys/fs/cgroup/{ctrl}{daemon.cgroup_parent}/{cid}/{name}") as f:
        return f.read().strip()


def test_resources_applied_and_updated(daemon):
    cid = daemon.hatoba("run", "-d", "--memory", "64m", "--cpus", "0.5", "--cpu-shares", "512",
                        "--pids-limit", "50", "--cpuset-cpus", "0", "busybox", "sleep", "60",
                        check=True).stdout.decode().strip()
    try:
        assert _cgroup_file(daemon, cid, "memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
        assert _cgroup_file(daemon, cid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup_file(daemon, cid, "cpu", "cpu.shares") == "512"
        assert _cgroup_file(daemon, cid, "pids", "pids.max") == "50"
        assert _cgroup_file(daemon, cid, "cpuset", "cpuset.cpus") == "0"
        p = daemon.hatoba("update", "--memory", "96m", "--memory-swap", "128m", "--pids-limit", "70", cid)
        assert p.returncode == 0, p.stderr
        assert _cgroup_file(daemon, cid, "memory", "memory.limit_in_bytes") == str(96 * 1024 * 1024)
        assert _cgroup_file(daemon, cid, "pids", "pids.max") == "70"
        out = daemon.hatoba("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", cid).stdout
        assert out == f"{96 * 1024 * 1024} 70\n".encode()
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_log_rotation(daemon):
    cid = daemon.hatoba("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
                        "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); "
                        "sleep 0.01; done; sleep 30", check=True).stdout.decode().strip()
    try:
        log = f"{daemon.data_root}/containers/{cid}/container.log"
        deadline = time.time() + 20
        while time.time() < deadline and not daemon.hatoba("logs", cid).stdout.endswith(b"line-399-" + b"x" * 31 + b"\n"):
            time.sleep(0.2)
        import os

        assert os.path.exists(log + ".1"), "the log was never rotated"
        assert not os.path.exists(log + ".2"), "max-file=2 keeps one rotated file"
        lines = daemon.hatoba("logs", cid).stdout.decode().splitlines()
        assert lines[-1].startswith("line-399-")
        assert "line-0-" + "x" * 31 not in lines, "old lines must have been rotated away"
        nums = [int(x.split("-")[1]) for x in lines]
        assert nums == list(range(nums[0], 400)), "the kept lines are contiguous"
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_unknown_runtime_and_bad_log_opts(daemon):
    p = daemon.hatoba("run", "--rm", "--runtime", "nosuchruntime", "busybox", "true")
    assert p.returncode == 125
    assert b"Unknown runtime specified nosuchruntime" in p.stderr  # dockerd 20.10's words
    p = daemon.hatoba("run", "--rm", "--log-opt", "max-size=abc", "busybox", "true")
    assert p.returncode == 125 and b"invalid size: 'abc'" in p.stderr


def test_user_workdir_env_hostname(daemon):
    p = daemon.hatoba("run", "--rm", "-u", "nobody", "-w", "/tmp", "-e", "FOO=bar", "--hostname", "myhost",
                      "busybox", "sh", "-c", "id -u; pwd; echo $FOO; hostname; cat /etc/hostname")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"65534\n/tmp\nbar\nmyhost\nmyhost\n"
    p = daemon.hatoba("run", "--rm", "busybox", "sh", "-c", "hostname; echo $PATH; grep CapEff /proc/self/status")
    out = p.stdout.decode().splitlines()
    assert re.fullmatch(r"[0-9a-f]{12}", out[0])
    assert out[1] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert out[2].split()[1] == "00000000a80425fb"


def test_images_import_tag_history_rmi(daemon, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("etc/motd", b"imported!\n"), ("bin/busybox", open("/bin/busybox", "rb").read())):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o755
            tf.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("bin/sh")
        ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
        tf.addfile(ti)
    src = tmp_path / "rootfs.tar"
    src.write_bytes(buf.getvalue())
    p = daemon.hatoba("import", "-c", 'CMD ["sh", "-c", "cat /etc/motd"]', "-m", "from a test", str(src), "imptest:v1")
    assert p.returncode == 0, p.stderr
    iid = p.stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid)
    assert daemon.hatoba("run", "--rm", "imptest:v1").stdout == b"imported!\n"
    assert daemon.hatoba("tag", "imptest:v1", "imptest:latest").returncode == 0
    ids = daemon.hatoba("images", "-q", "imptest").stdout.decode().split()
    assert ids == [iid[7:19], iid[7:19]]
    hist = daemon.hatoba("history", "imptest:v1").stdout.decode().splitlines()
    assert hist[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"] and "from a test" in hist[1]
    cid = daemon.hatoba("create", "imptest:v1", check=True).stdout.decode().strip()
    try:
        p = daemon.hatoba("rmi", iid[7:19])
        assert p.returncode == 1 and b"conflict: unable to delete" in p.stderr
    finally:
        daemon.hatoba("rm", cid, check=True)
    p = daemon.hatoba("rmi", "imptest:latest")
    assert p.stdout == b"Untagged: imptest:latest\n"
    p = daemon.hatoba("rmi", "imptest:v1")
    assert p.stdout.decode().splitlines() == ["Untagged: imptest:v1", f"Deleted: {iid}"]
    assert daemon.hatoba("image", "inspect", iid).returncode == 1


def test_events_bounded(daemon):
    since = str(int(time.time()) - 1)
    daemon.hatoba("run", "--rm", "--name", "evtest", "busybox", "true", check=True)
    until = str(int(time.time()) + 1)
    p = daemon.hatoba("events", "--since", since, "--until", until, "--filter", "container=evtest",
                      "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert p.returncode == 0, p.stderr
    actions = [line.split()[0] for line in p.stdout.decode().splitlines()]
    assert actions == ["create", "attach", "start", "die", "destroy"], actions


def test_export_diff_cp(daemon, tmp_path):
    daemon.hatoba("run", "--name", "fsops", "busybox", "sh", "-c",
                  "echo new > /tmp/added; rm /etc/group; echo x >> /etc/passwd", check=True)
    try:
        diff = daemon.hatoba("diff", "fsops").stdout.decode().splitlines()
        assert "A /tmp/added" in diff and "D /etc/group" in diff and "C /etc/passwd" in diff and "C /etc" in diff
        out = tmp_path / "added"
        assert daemon.hatoba("cp", "fsops:/tmp/added", str(out)).returncode == 0
        assert out.read_text() == "new\n"
        (tmp_path / "in.txt").write_text("to the container\n")
        assert daemon.hatoba("cp", str(tmp_path / "in.txt"), "fsops:/tmp/").returncode == 0
        exp = daemon.hatoba("export", "fsops").stdout
        import io
        import tarfile

        names = tarfile.open(fileobj=io.BytesIO(exp)).getnames()
        assert "bin/busybox" in names and "tmp/in.txt" in names and "etc/group" not in names
    finally:
        daemon.hatoba("rm", "fsops")


def test_daemon_refuses_public_tcp_without_tls(daemon, tmp_path):
    import subprocess

    from conftest import HATOBAD

    p = subprocess.run([HATOBAD, "-H", "tcp://0.0.0.0:23750", "--data-root", str(tmp_path / "d"),
                        "--exec-root", str(tmp_path / "r"), "--config-file", "/nonexistent"],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"refusing to listen on tcp://0.0.0.0:23750 without --tlsverify" in p.stderr
    bad = tmp_path / "daemon.json"
    bad.write_text('{"no-such-option": 1}')
    p = subprocess.run([HATOBAD, "--config-file", str(bad), "--data-root", str(tmp_path / "d")],
                       capture_output=True, timeout=30)
    assert p.returncode != 0 and b"no-such-option" in p.stderr


def test_bind_mounts(daemon, tmp_path):
    (tmp_path / "hello.txt").write_text("from the host\n")
    out = tmp_path / "out"
    p = daemon.hatoba("run", "--rm", "-v", f"{tmp_path}:/bind:ro", "-v", f"{out}:/out",
                      "--mount", "type=tmpfs,target=/scratch", "busybox", "sh", "-c",
                      "cat /bind/hello.txt; echo written > /out/f; touch /bind/x 2>/dev/null || echo ro; "
                      "grep -c ' /scratch tmpfs' /proc/mounts")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"from the host\nro\n1\n"
    assert (out / "f").read_text() == "written\n"
    p = daemon.hatoba("run", "--rm", "-v", "somevolume:/data", "busybox", "true")
    assert p.returncode == 125 and b'named volume "somevolume" is not supported yet' in p.stderr
    p = daemon.hatoba("run", "--rm", "--mount", f"type=bind,source={tmp_path}/missing,target=/m", "busybox", "true")
    assert p.returncode == 125 and b"bind source path does not exist" in p.stderr


def test_rmi_keeps_parent_of_committed_image(daemon):
    daemon.hatoba("tag", "busybox", "parentimg:v1", check=True)
    parent = daemon.hatoba("image", "inspect", "-f", "{{.Id}}", "parentimg:v1", check=True).stdout.decode().strip()
    daemon.hatoba("run", "--name", "tochild", "parentimg:v1", "sh", "-c", "echo child > /c", check=True)
    try:
        child = daemon.hatoba("commit", "tochild", "childimg:v1", check=True).stdout.decode().strip()
    finally:
        daemon.hatoba("rm", "tochild", check=True)
    try:
        assert daemon.hatoba("image", "inspect", "-f", "{{.Parent}}", "childimg:v1").stdout.decode().strip() == parent
        # busybox:latest still tags the same image, so a plain untag first
        p = daemon.hatoba("rmi", "parentimg:v1")
        assert p.stdout == b"Untagged: parentimg:v1\n", p.stderr
        # by id, even forced, a parent with children is refused
        daemon.hatoba("tag", "busybox", "parentimg:v2", check=True)
        p = daemon.hatoba("rmi", "-f", parent)
        assert p.returncode == 1 and b"image has dependent child images" in p.stderr, p.stderr
        assert daemon.hatoba("rmi", "parentimg:v2").stdout == b"Untagged: parentimg:v2\n"
    finally:
        daemon.hatoba("rmi", child)
    assert daemon.hatoba("image", "inspect", "busybox").returncode == 0


def test_bootstrap_missing_images_config(daemon):
    """daemon.json "bootstrap-missing-images": a run of a missing recipe image builds it instead of failing."""
    import json
    import os

    cfg = os.path.join(daemon.root, "daemon.json")
    p = daemon.hatoba("run", "--rm", "hello-world:doesnotexist")
    assert p.returncode == 125 and b"Unable to find image" in p.stderr
    with open(cfg, "w") as f:
        json.dump({"bootstrap-missing-images": True}, f)
    try:
        daemon.restart()
        assert daemon.hatoba("rmi", "hello-world").returncode == 0
        p = daemon.hatoba("run", "--rm", "hello-world")
        assert p.returncode == 0, p.stderr
        assert b"Unable to find image 'hello-world:latest' locally" in p.stderr
        assert b"Hello from hatoba!" in p.stdout
    finally:
        os.unlink(cfg)
        daemon.restart()
        if daemon.hatoba("image", "inspect", "hello-world").returncode != 0:
            daemon.hatoba("image", "bootstrap", "hello-world", check=True)
