"""Self-tests of the leak fixture (conftest.LeakCheck, run by `no_leaks` after every test, and the
session's final check): each check is shown to fail on a deliberate leak, and to clean it up.

Each test takes its own `LeakCheck`, leaks one thing, asserts that `run()` reports it and that it is
gone afterwards; the test's own `no_leaks` check then finds nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest
from conftest import Daemon, LeakCheck, _session_leftovers, cgroup_mounts


def _found(problems: list[str], *texts: str) -> None:
    assert any(all(t in p for t in texts) for p in problems), problems


def test_clean_test_reports_nothing(daemon):
    check = LeakCheck(daemon)
    daemon.hatoba("run", "--rm", "busybox", "true", check=True)
    name = f"selftest-{uuid.uuid4().hex[:6]}"
    daemon.hatoba("run", "-d", "--name", name, "busybox", "sleep", "30", check=True)
    daemon.hatoba("rm", "-f", name, check=True)
    assert check.run() == []


def test_leftover_container(daemon):
    check = LeakCheck(daemon)
    cid = daemon.hatoba("create", "busybox", "true", check=True).stdout.decode().strip()
    _found(check.run(settle=0.5), f"containers left behind: ['{cid[:12]}']")
    assert cid not in daemon.containers()


def test_leftover_mount(daemon):
    target = os.path.join(daemon.root, "selftest-mnt")
    os.mkdir(target)
    check = LeakCheck(daemon)
    subprocess.run(["mount", "-t", "tmpfs", "selftest", target], check=True)
    try:
        _found(check.run(settle=0.2), "mounts left behind", target)
        assert target not in daemon.mounts()
    finally:
        if target in daemon.mounts():
            subprocess.run(["umount", target], check=False)
        os.rmdir(target)


def test_leftover_conmon(daemon):
    check = LeakCheck(daemon)
    # looks like one of this daemon's conmons (argv[0] conmon, its root in the command line, -c <id>)
    fake = subprocess.Popen(["conmon", "-c", "import time; time.sleep(60)", daemon.root], executable=sys.executable)
    try:
        _found(check.run(settle=0.2), "conmon processes left behind", str(fake.pid))
        assert fake.wait(10) == -signal.SIGKILL
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()


def test_cgroup_mounts_include_v2():
    mps = cgroup_mounts()
    assert mps
    with open("/proc/self/mountinfo") as f:
        v2 = [ln.split()[4] for ln in f if " - cgroup2 " in ln]
    for mp in v2:
        if mp.startswith("/sys/fs/cgroup"):
            assert mp in mps  # the unified hierarchy of a hybrid host, or the v2 root


def test_leftover_cgroups_in_every_hierarchy(daemon):
    """A leftover cgroup (with a sub-cgroup) under the daemon's parent in each v1 hierarchy and in
    the cgroup2 one (here the hybrid host's unified hierarchy) is reported and removed."""
    check = LeakCheck(daemon)
    leaf = f"selftest-{uuid.uuid4().hex[:8]}"
    made = []
    try:
        for d in daemon.cgroup_parent_dirs():
            path = os.path.join(d, leaf)
            os.makedirs(os.path.join(path, "sub"))
            made.append(path)
        problems = check.run(settle=0.2)
        _found(problems, "cgroups left behind", *made)
        assert not any(os.path.exists(p) for p in made)
    finally:
        for p in made:
            for sub in (os.path.join(p, "sub"), p):
                if os.path.isdir(sub):
                    os.rmdir(sub)


def test_leftover_netns(daemon):
    name = f"hatoba-selftest-{daemon.tag}"
    check = LeakCheck(daemon)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        _found(check.run(settle=0.2), "network namespaces left behind", f"/run/netns/{name}")
        assert not os.path.exists(f"/run/netns/{name}")
    finally:
        if os.path.exists(f"/run/netns/{name}"):
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("kind", ["runc state", "bundle", "exit file", "container dir", "overlay dir"])
def test_state_of_a_gone_container(daemon, kind):
    fake = uuid.uuid4().hex + uuid.uuid4().hex
    check = LeakCheck(daemon)
    path = daemon.state_path(kind, fake)
    if kind == "exit file":
        with open(path, "w") as f:
            f.write("0")
    else:
        os.makedirs(os.path.join(path, "x"))
    try:
        _found(check.run(settle=0.2), f"{kind} of containers that are gone or not running: ['{fake[:12]}']")
        assert not os.path.exists(path)
    finally:
        subprocess.run(["rm", "-rf", path], check=False)


def test_runc_state_of_a_stopped_container(daemon):
    cid = daemon.hatoba("create", "busybox", "true", check=True).stdout.decode().strip()
    try:
        check = LeakCheck(daemon)
        os.makedirs(daemon.state_path("runc state", cid))
        _found(check.run(settle=0.2), f"runc state of containers that are gone or not running: ['{cid[:12]}']")
        assert not os.path.exists(daemon.state_path("runc state", cid))
    finally:
        daemon.hatoba("rm", "-f", cid)


def test_leftover_staging(daemon):
    check = LeakCheck(daemon)
    path = os.path.join(daemon.data_root, "overlay", "tmp", "selftest-layer")
    os.makedirs(os.path.join(path, "usr"))
    _found(check.run(settle=0.2), "layer staging entries left behind: ['selftest-layer']")
    assert not os.path.exists(path)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def test_leftover_interfaces(daemon):
    """The daemon's interfaces: named with its prefix, enslaved to its bridge, or aliased with its prefix."""
    check = LeakCheck(daemon)
    made_bridge = daemon.bridge not in daemon.links()
    named, peer, aliased = f"{daemon.net_prefix}v", f"hbp{daemon.tag}", f"hbd{daemon.tag}"
    try:
        if made_bridge:
            _ip("link", "add", daemon.bridge, "type", "bridge")
        _ip("link", "add", named, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "master", daemon.bridge)
        _ip("link", "add", aliased, "type", "bridge")
        _ip("link", "set", aliased, "alias", f"{daemon.net_prefix} selftest")
        problems = check.run(settle=0.2)
        _found(problems, "network interfaces left behind", f"'{named}': 'veth'", f"'{peer}': 'veth'",
               f"'{aliased}': 'bridge'")
        if made_bridge:
            _found(problems, f"'{daemon.bridge}': 'bridge'")
        left = set(daemon.links())
        assert not left & {named, peer, aliased}
        assert (daemon.bridge in left) == (not made_bridge)
    finally:
        for name in (aliased, named, *([daemon.bridge] if made_bridge else [])):
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def test_leftover_nft_tables(daemon):
    check = LeakCheck(daemon)
    tables = [("inet", f"{daemon.nft_table}_selftest"), ("ip", f"{daemon.nft_table}_selftest2")]
    try:
        for family, name in tables:
            subprocess.run(["nft", "add", "table", family, name], check=True)
        _found(check.run(settle=0.2), "nftables tables left behind", *(repr(t) for t in tables))
        assert not daemon.nft_tables() & set(tables)
    finally:
        for family, name in tables:
            subprocess.run(["nft", "delete", "table", family, name], check=False, capture_output=True)


def test_traceback_in_the_log(daemon):
    check = LeakCheck(daemon)
    with open(daemon.log_path, "a") as f:
        f.write('ERROR selftest\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
                "    boom()\nRuntimeError: deliberately logged by test_leak_fixture\n")
    _found(check.run(settle=0.2), "traceback in hatobad's log", 'File "x.py"',
           "RuntimeError: deliberately logged by test_leak_fixture")
    assert check.run(settle=0.2) == []  # reported once


def test_daemon_killed_without_the_api(daemon):
    check = LeakCheck(daemon)
    assert daemon.proc is not None
    daemon.proc.kill()
    daemon.proc.wait()
    _found(check.run(settle=0.2), "hatobad exited during the test (killed by signal 9)")
    assert daemon.alive() and daemon.ping()


def test_daemon_restarted_without_the_api(daemon):
    check = LeakCheck(daemon)
    daemon.kill9()
    daemon.start()
    _found(check.run(settle=0.2), "restarted during the test without Daemon.restart()")
    assert check.run(settle=0.2) == []  # reported once


def test_daemon_that_hangs(daemon):
    check = LeakCheck(daemon)
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    _found(check.run(settle=0.2), "hatobad does not answer /_ping")
    assert daemon.ping()


def test_deliberate_restarts_are_fine(daemon):
    check = LeakCheck(daemon)
    daemon.restart("kill9")
    daemon.restart("term", lambda: None)
    with daemon.down("kill9"):
        assert not daemon.ping()
    assert daemon.ping()
    assert check.run(settle=0.2) == []


def test_a_restart_of_a_dead_daemon_is_refused(daemon):
    check = LeakCheck(daemon)
    assert daemon.proc is not None
    daemon.proc.kill()
    daemon.proc.wait()
    with pytest.raises(AssertionError, match="already exited before the deliberate restart"):
        daemon.restart()
    _found(check.run(settle=0.2), "hatobad exited during the test")


def test_session_end_checks():
    """The final check after hatobad stopped (on a Daemon that never ran): interfaces and tables other
    than its own bridge and table, cgroups that cannot be removed and tracebacks are reported; all of
    it is removed."""
    root = tempfile.mkdtemp(prefix="hatoba-selftest-")
    d = Daemon(root)
    cg = []
    try:
        for link in ((d.bridge, "bridge"), (f"{d.net_prefix}x", "bridge")):
            _ip("link", "add", link[0], "type", link[1])
        for name in (d.nft_table, f"{d.nft_table}_x"):
            subprocess.run(["nft", "add", "table", "inet", name], check=True)
        for parent in d.cgroup_parent_dirs():
            os.makedirs(os.path.join(parent, "c1"))
            cg.append(parent)
        with open(d.log_path, "w") as f:
            f.write("Traceback (most recent call last):\n  File \"y.py\", line 2, in f\nKeyError: 'selftest'\n")
        problems = _session_leftovers(d)
        _found(problems, "network interfaces left behind", f"{d.net_prefix}x")
        assert not any(f"'{d.bridge}'" in p for p in problems)  # its own bridge goes without complaint
        _found(problems, "nftables tables left behind", f"{d.nft_table}_x")
        _found(problems, "traceback in hatobad's log outside any test", "KeyError: 'selftest'")
        assert not any("cgroups" in p for p in problems)  # empty ones are simply removed
        assert d.links() == {} and d.nft_tables() == set()
        assert not any(os.path.exists(p) for p in cg)
    finally:
        for name in (d.bridge, f"{d.net_prefix}x"):
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
        for name in (d.nft_table, f"{d.nft_table}_x"):
            subprocess.run(["nft", "delete", "table", "inet", name], check=False, capture_output=True)
        d.remove_cgroup_parent()
        subprocess.run(["rm", "-rf", root], check=False)
