"""Private state: no local user but root reads a container's environment or files through the data
root or the exec root (database and its journal, bundles' config.json, exec process.json, image
configs and layers a commit wrote, upper dirs, logs), while files bind-mounted into containers stay
readable there for non-root container users; state an older hatoba left readable is fixed at start.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import crashkit
import pytest

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

# run as nobody: which of the given files it can read and which contain the secret; which dirs it lists
PROBE = r"""
import json, os, sys
req = json.load(sys.stdin)
secret = req["secret"].encode()
out = {"read_secret": [], "listed": [], "readable": 0}
for p in req["files"]:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        continue
    try:
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
    except OSError:
        continue
    finally:
        os.close(fd)
    out["readable"] += 1
    if secret in data:
        out["read_secret"].append(p)
for p in req["dirs"]:
    try:
        os.listdir(p)
    except OSError:
        continue
    out["listed"].append(p)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def privd(daemon) -> Iterator[Any]:
    d = crashkit.new_daemon(type(daemon), prefix="hatoba-priv-")
    os.chmod(d.root, 0o755)  # only the daemon's own modes may keep other users out
    try:
        yield d
    finally:
        crashkit.destroy_daemon(d)


def _files(*roots: str) -> tuple[list[str], list[str]]:
    """Regular files and directories below `roots` (as root; symlinks not followed)."""
    files, dirs = [], []
    for root in roots:
        for dirpath, _dirnames, filenames in os.walk(root):
            dirs.append(dirpath)
            for n in filenames:
                p = os.path.join(dirpath, n)
                if stat.S_ISREG(os.lstat(p).st_mode):
                    files.append(p)
    return files, dirs


def _holds(path: str, secret: bytes) -> bool:
    with open(path, "rb") as f:
        return secret in f.read()


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _as_nobody(files: list[str], dirs: list[str], secret: str) -> dict:
    p = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", PROBE], capture_output=True, timeout=120,
                       input=json.dumps({"files": files, "dirs": dirs, "secret": secret}).encode())
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_no_other_user_reads_a_container_secret(privd):
    d = privd
    secret = "s3cr3t-" + uuid.uuid4().hex
    name = "sec-" + uuid.uuid4().hex[:6]
    d.hatoba("run", "-d", "--name", name, "-e", f"TOKEN={secret}", "busybox", "sh", "-c",
             f"echo {secret} > /in-file; echo {secret}; sleep 1000", check=True)
    cid = d.api("GET", f"/containers/{name}/json")[1]["Id"]  # type: ignore[index]
    try:
        # a detached exec keeps its process.json (its env holds the secret too)
        d.hatoba("exec", "-d", "-e", f"EXTRA={secret}", name, "sleep", "1000", check=True)
        # the image config of a commit records the container's config, its layer the container's files
        d.hatoba("commit", name, "privtest/img", check=True)
        files, dirs = _files(d.data_root, d.exec_root)
        holding = [f for f in files if _holds(f, secret.encode())]
        # sanity: the secret is really there for root to find, in the places this test is about
        assert any(os.path.basename(f).startswith("hatoba.db") for f in holding), holding
        assert os.path.join(d.exec_root, "containers", cid, "config.json") in holding, holding
        assert any(f.endswith("/process.json") for f in holding), holding
        assert any("/content/blobs/" in f for f in holding), holding
        got = _as_nobody(files, dirs, secret)
        assert got["read_secret"] == [], got["read_secret"]
        container_dirs = [x for x in dirs if cid in x]
        assert container_dirs and not [x for x in got["listed"] if cid in x], got["listed"]
        for f in ("hatoba.db", "hatoba.db-wal", "hatoba.db-shm"):
            assert _mode(os.path.join(d.data_root, f)) == 0o600, f
        bundle = os.path.join(d.exec_root, "containers", cid)
        assert _mode(bundle) == 0o700 and _mode(os.path.join(bundle, "config.json")) == 0o600
        for x in os.listdir(os.path.join(bundle, "exec")):
            assert _mode(os.path.join(bundle, "exec", x)) == 0o700
            assert _mode(os.path.join(bundle, "exec", x, "process.json")) == 0o600
        # files bind-mounted into containers stay readable there for a non-root container user
        p = d.hatoba("run", "--rm", "-u", "65534:65534", "busybox", "sh", "-c",
                     "cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null && ls / >/dev/null && echo ok")
        assert p.stdout == b"ok\n", p.stderr
        p = d.hatoba("run", "--rm", "-u", "65534", "privtest/img", "cat", "/in-file")
        assert p.stdout.decode().strip() == secret, p.stderr
    finally:
        d.hatoba("rm", "-f", name)
        d.hatoba("rmi", "privtest/img")
    crashkit.check_consistent(d)


def test_state_an_older_hatoba_left_readable_is_fixed_at_start(privd):
    d = privd
    name = "old-" + uuid.uuid4().hex[:6]
    d.hatoba("run", "-d", "--name", name, "-e", "TOKEN=x", "busybox", "sleep", "1000", check=True)
    cid = d.api("GET", f"/containers/{name}/json")[1]["Id"]  # type: ignore[index]
    try:
        d.stop()
        bundle = os.path.join(d.exec_root, "containers", cid)
        loose = {os.path.join(d.data_root, f): 0o644 for f in ("hatoba.db", "hatoba.db-wal", "hatoba.db-shm")
                 if os.path.exists(os.path.join(d.data_root, f))}
        loose.update({bundle: 0o755, os.path.join(bundle, "config.json"): 0o644,
                      os.path.join(d.exec_root, "containers"): 0o755,
                      os.path.join(d.data_root, "containers"): 0o755,
                      os.path.join(d.data_root, "containers", cid): 0o755,
                      os.path.join(d.data_root, "content"): 0o755,
                      os.path.join(d.data_root, "content", "blobs"): 0o755,
                      os.path.join(d.data_root, "overlay"): 0o755})
        for p, m in loose.items():
            os.chmod(p, m)
        d.start()
        for p in loose:
            want = 0o600 if os.path.isfile(p) else 0o700
            assert _mode(p) == want, (p, oct(_mode(p)))
        assert d.hatoba("exec", name, "true").returncode == 0
    finally:
        d.hatoba("rm", "-f", name)
    crashkit.check_consistent(d)
