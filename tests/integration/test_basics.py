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
    assert b"unknown or invalid runtime name: nosuchruntime" in p.stderr
    p = daemon.hatoba("run", "--rm", "--log-opt", "max-size=abc", "busybox", "true")
    assert p.returncode == 125 and b"invalid log options" in p.stderr


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
