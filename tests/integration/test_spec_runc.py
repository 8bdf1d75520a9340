"""Run a spec from hatoba.runtime.spec.build_spec with real runc 1.1.5 on a busybox rootfs.

Checks that Docker's defaults actually hold inside the container: the default capability set
(CapEff 0x00000000a80425fb), seccomp filter mode, user resolution and exit codes. Containers use
cgroupsPath ``/hatoba-unittest/<id>``; every test deletes its container with ``runc delete`` and
the module removes the cgroup directories (and the parent in every hierarchy) afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from hatoba.runtime import cgroups
from hatoba.runtime.spec import DEFAULT_PATH, build_spec
from hatoba.runtime.users import resolve_user

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "/hatoba-unittest"
APPLETS = ("sh", "echo", "cat", "id", "true")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not os.path.exists(RUNC) or not os.path.exists(BUSYBOX),
        reason="needs root, runc and a static /bin/busybox",
    ),
]


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hatoba-spec-runc-")
    rootfs = os.path.join(d, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    os.makedirs(os.path.join(rootfs, "etc"))
    for sub in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    os.makedirs(os.path.join(d, "runc"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
        # the parent cgroup in every hierarchy (other tests may still use it: ignore EBUSY)
        for p in cgroups.cgroup_dirs(CGROUP_PARENT):
            try:
                os.rmdir(p)
            except OSError:
                pass


def run_container(
    workdir: str, args: list[str], user: str = "", host_config: dict | None = None
) -> tuple[int, str, str]:
    """runc run a spec built by build_spec; returns (exit code, stdout, stderr)."""
    rootfs = os.path.join(workdir, "rootfs")
    cid = "hatoba-spec-" + uuid.uuid4().hex[:12]
    cg_path = f"{CGROUP_PARENT}/{cid}"
    bundle = os.path.join(workdir, cid)
    os.makedirs(bundle)
    spec = build_spec(
        rootfs=rootfs,
        args=args,
        env=["PATH=" + DEFAULT_PATH],
        cwd="/",
        user=resolve_user(rootfs, user),
        hostname=cid[:12],
        tty=False,
        host_config=host_config or {},
        cgroups_path=cg_path,
        netns=None,
        extra_mounts=[],
    )
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    runc = [RUNC, "--root", os.path.join(workdir, "runc")]
    try:
        p = subprocess.run(
            [*runc, "run", "--bundle", bundle, cid],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run([*runc, "delete", "--force", cid], capture_output=True, timeout=30)
        cgroups.remove_cgroup(cg_path)
        assert not cgroups.cgroup_exists(cg_path), f"cgroup {cg_path} left behind"
        shutil.rmtree(bundle, ignore_errors=True)
    return p.returncode, p.stdout, p.stderr


def status_field(status: str, name: str) -> str:
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/self/status:\n{status}")


def test_id_root(workdir: str) -> None:
    rc, out, err = run_container(workdir, ["id"])
    assert rc == 0, err
    assert out.startswith("uid=0(root) gid=0(root)"), out


def test_id_nobody(workdir: str) -> None:
    rc, out, err = run_container(workdir, ["id"], user="nobody")
    assert rc == 0, err
    assert out.startswith("uid=65534(nobody) gid=65534(nogroup)"), out


def test_default_caps_and_seccomp(workdir: str) -> None:
    rc, out, err = run_container(workdir, ["cat", "/proc/self/status"])
    assert rc == 0, err
    assert status_field(out, "CapEff") == "00000000a80425fb"
    assert status_field(out, "CapBnd") == "00000000a80425fb"
    assert status_field(out, "CapInh") == "0000000000000000"
    assert status_field(out, "Seccomp") == "2"
    assert status_field(out, "NoNewPrivs") == "0"


def test_cap_drop_and_no_new_privileges(workdir: str) -> None:
    hc = {"CapDrop": ["ALL"], "CapAdd": ["chown"], "SecurityOpt": ["no-new-privileges"]}
    rc, out, err = run_container(workdir, ["cat", "/proc/self/status"], host_config=hc)
    assert rc == 0, err
    assert status_field(out, "CapEff") == "0000000000000001"
    assert status_field(out, "NoNewPrivs") == "1"


def test_seccomp_unconfined(workdir: str) -> None:
    rc, out, err = run_container(
        workdir, ["cat", "/proc/self/status"], host_config={"SecurityOpt": ["seccomp=unconfined"]}
    )
    assert rc == 0, err
    assert status_field(out, "Seccomp") == "0"


def test_exit_code(workdir: str) -> None:
    rc, _out, err = run_container(workdir, ["sh", "-c", "exit 3"])
    assert rc == 3, err


def test_limits_applied(workdir: str) -> None:
    hc = {"Memory": 64 * 1024 * 1024, "PidsLimit": 50, "ShmSize": 8 * 1024 * 1024}
    rc, out, err = run_container(
        workdir,
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
            "grep /dev/shm /proc/mounts",
        ],
        host_config=hc,
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == str(64 * 1024 * 1024)
    assert lines[1] == "50"
    assert "size=8192k" in lines[2]


def test_privileged(workdir: str) -> None:
    rc, out, err = run_container(
        workdir,
        ["sh", "-c", "cat /proc/self/status; ls /dev | wc -l; grep ' /sys ' /proc/mounts"],
        host_config={"Privileged": True},
    )
    assert rc == 0, err
    with open("/proc/self/status") as f:
        host_bnd = status_field(f.read(), "CapBnd")
    assert status_field(out, "CapEff") == host_bnd
    assert status_field(out, "Seccomp") == "0"
    lines = out.splitlines()
    assert int(lines[-2]) > 10  # host devices are there
    assert " rw," in lines[-1]  # /sys is writable


def test_readonly_rootfs_tmpfs_and_namespaces(workdir: str) -> None:
    hc = {
        "ReadonlyRootfs": True,
        "Tmpfs": {"/run": "size=1m"},
        "PidMode": "host",
        "IpcMode": "none",
        "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 10**9}],
    }
    rc, out, err = run_container(
        workdir,
        [
            "sh",
            "-c",
            "touch /x 2>/dev/null && echo rw || echo ro; echo hi > /run/f && cat /run/f; "
            "grep ' /run ' /proc/mounts; test -e /dev/shm && echo shm || echo noshm; "
            "test -e /proc/2 && echo hostpid || echo ownpid; ulimit -n; ulimit -Hn",
        ],
        host_config=hc,
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "ro"
    assert lines[1] == "hi"
    assert "tmpfs" in lines[2] and "size=1024k" in lines[2] and "noexec" in lines[2]
    assert lines[3] == "noshm"
    assert lines[4] == "hostpid"
    assert lines[5] == "100"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        assert int(lines[6]) == hard  # clamped to the daemon's hard limit


def test_custom_seccomp_profile(workdir: str) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "comment": "no dirs"},
        ],
    }
    hc = {"SecurityOpt": ["seccomp=" + json.dumps(profile)]}
    rc, out, err = run_container(
        workdir, ["sh", "-c", "mkdir /tmp/d && echo made || echo denied"], host_config=hc
    )
    assert rc == 0, err
    assert out.strip() == "denied"
