"""`hatoba image bootstrap` of the mmdebstrap recipes against a real hatobad and Debian's archive.

Slow (each build is 20–40 s of mmdebstrap) but part of the default run. Needs mmdebstrap and
the Debian archive (deb.debian.org over HTTP); skipped without them. The images built here are
removed again at the end of the module so later tests see the usual busybox/hello-world store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

if not shutil.which("mmdebstrap", path="/usr/sbin:/usr/bin:/sbin:/bin"):
    pytest.skip("mmdebstrap is not installed (scripts/setup.sh installs it)", allow_module_level=True)

BUILD_TIMEOUT = 300


def _archive_reachable() -> bool:
    try:
        with urllib.request.urlopen("http://deb.debian.org/debian/dists/bookworm/InRelease", timeout=15) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def built(daemon):
    """name → (image id, bootstrap output, seconds); builds each recipe once, removes them all at the end."""
    if not _archive_reachable():
        pytest.skip("the Debian archive (deb.debian.org) is not reachable")
    cache: dict[str, tuple[str, str, float]] = {}
    ids: set[str] = set()

    def build(name: str, fresh: bool = False) -> tuple[str, str, float]:
        if fresh or name not in cache:
            t0 = time.monotonic()
            p = daemon.hatoba("image", "bootstrap", name, timeout=BUILD_TIMEOUT)
            took = time.monotonic() - t0
            out = p.stdout.decode()
            assert p.returncode == 0, out + p.stderr.decode()
            m = re.search(r"^Bootstrapped \S+: (sha256:[0-9a-f]{64})$", out, re.M)
            assert m, out
            print(f"\nbootstrap {name}: {took:.1f}s")
            cache[name] = (m.group(1), out, took)
            ids.add(m.group(1))
        return cache[name]

    yield build
    _, images = daemon.api("GET", "/images/json")
    for img in images or []:  # type: ignore[union-attr]
        repos = {t.rsplit(":", 1)[0] for t in img.get("RepoTags") or []}
        if img["Id"] in ids or repos & {"debian", "python", "redis"}:
            daemon.api("DELETE", f"/images/{img['Id']}?force=1")


def _inspect(daemon, name: str) -> dict:
    status, body = daemon.api("GET", f"/images/{name}/json")
    assert status == 200, body
    return body  # type: ignore[return-value]


def _layer_dir(daemon, name: str) -> str:
    info = _inspect(daemon, name)
    assert len(info["RootFS"]["Layers"]) == 1
    d = info["GraphDriver"]["Data"]["UpperDir"]
    assert d and os.path.isdir(d), info["GraphDriver"]
    return d


def test_debian_slim_is_reproducible(daemon, built):
    first, out, _ = built("debian:bookworm-slim")
    assert "installing essential packages" in out  # mmdebstrap's progress is streamed
    assert "Archive date" in out
    date1 = _inspect(daemon, first)["Config"]["Labels"]["org.hatoba.archive-date"]
    second, _, _ = built("debian:bookworm-slim", fresh=True)
    date2 = _inspect(daemon, second)["Config"]["Labels"]["org.hatoba.archive-date"]
    if date1 != date2:
        pytest.skip(f"the archive changed between the two builds ({date1} → {date2})")
    assert second == first


def test_debian_slim_runs_and_is_tagged(daemon, built):
    iid, _, took = built("debian:bookworm-slim")
    p = daemon.hatoba("run", "--rm", "debian:bookworm-slim", "cat", "/etc/debian_version", check=True)
    assert re.fullmatch(r"12\.\d+\n", p.stdout.decode()), p.stdout
    assert _inspect(daemon, "debian:12-slim")["Id"] == iid
    info = _inspect(daemon, "debian:bookworm-slim")
    cfg = info["Config"]
    assert cfg["Cmd"] == ["bash"]
    assert "LANG=C.UTF-8" in cfg["Env"] and any(e.startswith("PATH=") for e in cfg["Env"])
    assert cfg["Labels"]["org.hatoba.recipe"] == "debian:bookworm-slim"
    assert info["Created"] == cfg["Labels"]["org.hatoba.archive-date"]
    assert info["Size"] < 120_000_000  # slim: no docs, man pages, locales, apt caches
    p = daemon.hatoba("run", "--rm", "debian:bookworm-slim", "bash", "-c",
                      "echo $LANG; ls /usr/share/man 2>/dev/null | wc -l", check=True)
    assert p.stdout.decode().split() == ["C.UTF-8", "0"]


def test_debian_full(daemon, built):
    iid, _, _ = built("debian")
    for alias in ("debian:bookworm", "debian:latest", "debian:12"):
        assert _inspect(daemon, alias)["Id"] == iid, alias
    # not slim: man pages and docs are there; otherwise the same system
    p = daemon.hatoba("run", "--rm", "debian", "bash", "-c",
                      "cat /etc/debian_version; ls /usr/share/man/man1 | wc -l", check=True)
    ver, count = p.stdout.decode().split()
    assert re.fullmatch(r"12\.\d+", ver) and int(count) > 10


def test_debian_slim_layer_has_no_host_files(daemon, built):
    built("debian:bookworm-slim")
    d = _layer_dir(daemon, "debian:bookworm-slim")
    assert not os.path.lexists(os.path.join(d, "etc/resolv.conf"))
    assert not os.path.lexists(os.path.join(d, "etc/hostname"))
    assert os.listdir(os.path.join(d, "dev")) == []  # no device nodes
    assert not [f for f in os.listdir(os.path.join(d, "var/cache/apt")) if f.endswith(".bin")]
    assert not os.listdir(os.path.join(d, "var/lib/apt/lists")) or \
        set(os.listdir(os.path.join(d, "var/lib/apt/lists"))) <= {"lock", "partial", "auxfiles"}
    with open(os.path.join(d, "etc/apt/sources.list")) as f:
        assert "bookworm" in f.read()


def test_python_slim(daemon, built):
    iid, _, _ = built("python:3.11-slim")
    for alias in ("python:3", "python", "python:3.11"):
        assert _inspect(daemon, alias)["Id"] == iid, alias
    p = daemon.hatoba("run", "--rm", "python:3.11-slim", "python3", "-c",
                      "import sys; print(sys.version_info[:2])", check=True)
    assert p.stdout == b"(3, 11)\n"
    p = daemon.hatoba("run", "--rm", "python", "pip", "--version", check=True)
    assert p.stdout.startswith(b"pip ") and b"python 3.11" in p.stdout
    # pip may install outside a venv (no EXTERNALLY-MANAGED), as in the official image
    p = daemon.hatoba("run", "--rm", "python", "pip", "install", "--no-index", "--dry-run", "hatoba-nothing-here")
    assert b"externally-managed" not in p.stdout + p.stderr
    assert b"No matching distribution" in p.stdout + p.stderr
    cfg = _inspect(daemon, "python")["Config"]
    assert cfg["Cmd"] == ["python3"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["LANG"] == "C.UTF-8" and env["PYTHON_VERSION"].startswith("3.11.")
    d = _layer_dir(daemon, "python")
    assert not [r for r, dirs, _ in os.walk(os.path.join(d, "usr/lib/python3.11")) if "__pycache__" in dirs][:1]
    # the image's CA bundle comes from its own ca-certificates, never the host's local CAs
    assert os.path.exists(os.path.join(d, "etc/ssl/certs/ca-certificates.crt"))
    local = os.path.join(d, "usr/local/share/ca-certificates")
    assert not os.path.isdir(local) or os.listdir(local) == []


def test_redis(daemon, built):
    iid, _, _ = built("redis")
    for alias in ("redis:7", "redis:latest"):
        assert _inspect(daemon, alias)["Id"] == iid, alias
    cfg = _inspect(daemon, "redis")["Config"]
    assert cfg["Entrypoint"] == ["docker-entrypoint.sh"] and cfg["Cmd"] == ["redis-server"]
    assert cfg["ExposedPorts"] == {"6379/tcp": {}} and cfg["WorkingDir"] == "/data"
    p = daemon.hatoba("run", "-d", "redis", check=True)
    cid = p.stdout.decode().strip().splitlines()[-1]
    try:
        deadline = time.time() + 20
        out = b""
        while time.time() < deadline:
            p = daemon.hatoba("exec", cid, "redis-cli", "ping")
            out = p.stdout
            if out.strip() == b"PONG":
                break
            time.sleep(0.3)
        assert out.strip() == b"PONG", (out, p.stderr, daemon.hatoba("logs", cid).stdout[-2000:])
        # the server runs as the redis user (999) in /data, with protected mode off as in the official image
        p = daemon.hatoba("exec", cid, "grep", "^Uid", "/proc/1/status", check=True)
        assert p.stdout.split()[1] == b"999"
        p = daemon.hatoba("exec", cid, "redis-cli", "config", "get", "dir", check=True)
        assert p.stdout.split() == [b"dir", b"/data"]
        p = daemon.hatoba("exec", cid, "redis-cli", "config", "get", "protected-mode", check=True)
        assert p.stdout.split() == [b"protected-mode", b"no"]
        p = daemon.hatoba("exec", cid, "redis-cli", "set", "k", "v", check=True)
        assert daemon.hatoba("exec", cid, "redis-cli", "get", "k").stdout.strip() == b"v"
    finally:
        daemon.hatoba("rm", "-f", cid)
    p = daemon.hatoba("run", "--rm", "redis", "--version", check=True)
    assert b"Redis server v=7." in p.stdout


def test_unknown_recipe(daemon):
    p = daemon.hatoba("image", "bootstrap", "debian:sid")
    assert p.returncode != 0
    assert b"no bootstrap recipe for 'debian:sid'" in p.stderr
    assert b"debian:bookworm-slim" in p.stderr  # the known names are listed


def test_bootstrap_api_streams_json(daemon):
    """The hatoba endpoint streams one JSON status per line (what `hatoba image bootstrap` renders)."""
    status, body = daemon.api("POST", "/hatoba/images/bootstrap?name=hello-world", timeout=60)
    assert status == 200
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
    assert lines[-1]["status"].startswith("Bootstrapped hello-world:latest: sha256:")
