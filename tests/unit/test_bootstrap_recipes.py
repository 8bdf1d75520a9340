"""Base-image recipes: the mmdebstrap tar filter, image configs, recipe lookup and hints (no network)."""

from __future__ import annotations

import http.server
import io
import json
import os
import stat
import tarfile
import threading

import pytest

from hatoba.engine.config import DaemonConfig, load_file
from hatoba.errors import HatobaError
from hatoba.images import bootstrap
from hatoba.images.recipes import debian, mmdebstrap

EPOCH = 1700000000


def _tar(entries: list[tuple[str, bytes, dict]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = kw.pop("mtime", EPOCH - 100)
            ti.uname = ti.gname = "root"
            for k, v in kw.items():
                setattr(ti, k, v)
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def _mmdebstrap_like() -> bytes:
    D, C, L, S, H = tarfile.DIRTYPE, tarfile.CHRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.REGTYPE
    return _tar([
        ("./dev/", b"", {"type": D, "mode": 0o755}),
        ("./dev/null", b"", {"type": C, "mode": 0o666, "devmajor": 1, "devminor": 3}),
        ("./dev/fd", b"", {"type": S, "linkname": "/proc/self/fd"}),
        ("./dev/pts/", b"", {"type": D}),
        ("./", b"", {"type": D, "mode": 0o755}),
        ("./bin", b"", {"type": S, "linkname": "usr/bin"}),
        ("./etc/", b"", {"type": D, "mode": 0o755}),
        ("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n", {"type": H, "mode": 0o644, "mtime": EPOCH + 5000,
                                                          "pax_headers": {"atime": "1.5", "ctime": "2.5"}}),
        ("./usr/", b"", {"type": D}),
        ("./usr/bin/", b"", {"type": D}),
        ("./usr/bin/ping", b"\x7fELF", {"type": H, "mode": 0o4755, "uid": 0, "gid": 0,
                                         "pax_headers": {"SCHILY.xattr.security.capability": "cap"}}),
        ("./usr/bin/pong", b"", {"type": L, "linkname": "./usr/bin/ping"}),
        ("./usr/lib/", b"", {"type": D}),
        ("./usr/lib/python3/__pycache__/", b"", {"type": D}),
        ("./usr/lib/python3/__pycache__/a.cpython-311.pyc", b"pyc", {"type": H}),
        ("./usr/lib/python3/b.pyc", b"", {"type": L, "linkname": "./usr/lib/python3/__pycache__/a.cpython-311.pyc"}),
        ("./var/lib/redis/", b"", {"type": D, "uid": 999, "gid": 999, "mode": 0o750}),
    ])


def _filtered(data: bytes, **kw) -> bytes:
    return b"".join(mmdebstrap.filter_layer(io.BytesIO(data), **kw))


def test_filter_drops_dev_and_root_and_normalises_names():
    out = _filtered(_mmdebstrap_like(), mtime_max=EPOCH)
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        members = {m.name: m for m in t.getmembers()}
    assert "dev" in members and members["dev"].isdir()
    assert not [n for n in members if n.startswith("dev/")]
    assert "." not in members and "" not in members and "./" not in members
    assert not [n for n in members if n.startswith("./") or n.startswith("/")]
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/pong"].islnk() and members["usr/bin/pong"].linkname == "usr/bin/ping"
    assert members["var/lib/redis"].uid == 999 and members["var/lib/redis"].mode == 0o750
    # mtimes clamped, owner names gone, atime/ctime gone, xattrs kept, set-uid kept
    assert members["etc/passwd"].mtime == EPOCH
    assert members["etc/passwd"].uname == "" and members["etc/passwd"].gname == ""
    assert "atime" not in members["etc/passwd"].pax_headers
    assert members["usr/bin/ping"].pax_headers.get("SCHILY.xattr.security.capability") == "cap"
    assert members["usr/bin/ping"].mode == 0o4755
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        assert t.extractfile("etc/passwd").read() == b"root:x:0:0::/root:/bin/sh\n"  # type: ignore[union-attr]
    # without a pycache predicate the cache stays
    assert "usr/lib/python3/__pycache__/a.cpython-311.pyc" in members


def test_filter_drops_pycache_and_links_to_dropped_files():
    out = _filtered(_mmdebstrap_like(), mtime_max=EPOCH, drop=(mmdebstrap.drop_dev, mmdebstrap.drop_pycache))
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        names = t.getnames()
    assert not [n for n in names if "__pycache__" in n]
    assert "usr/lib/python3/b.pyc" not in names  # a hard link to a dropped file would dangle
    assert "usr/lib" in names


def test_filter_is_deterministic_and_chunking_does_not_change_bytes():
    data = _mmdebstrap_like()
    one = _filtered(data, mtime_max=EPOCH)
    assert one == _filtered(data, mtime_max=EPOCH)
    # tarfile's stream writer hands its output on in 10 KiB records: make several of them
    data = _tar([(f"./f{i}", bytes([i]) * 9000, {}) for i in range(8)])
    one = _filtered(data, mtime_max=EPOCH)
    chunks = list(mmdebstrap.filter_layer(io.BytesIO(data), mtime_max=EPOCH, chunk=512))
    assert len(chunks) > 2
    assert b"".join(chunks) == one


def test_filter_streams_large_files_without_reading_all_input_first():
    big = os.urandom(1 << 16) * 40  # 2.6 MB
    data = _tar([("./big", big, {"type": tarfile.REGTYPE})] + [(f"./f{i}", b"x", {}) for i in range(50)])
    src = io.BytesIO(data)
    gen = mmdebstrap.filter_layer(src, chunk=1 << 20)
    first = next(gen)
    assert first and src.tell() < len(data)  # output began before the input was exhausted
    rest = b"".join(gen)
    with tarfile.open(fileobj=io.BytesIO(first + rest)) as t:
        assert t.extractfile("big").read() == big  # type: ignore[union-attr]


def test_filter_keeps_dropped_directories_only_above_kept_entries():
    D, H = tarfile.DIRTYPE, tarfile.REGTYPE
    data = _tar([("./a/", b"", {"type": D}), ("./a/x/", b"", {"type": D}), ("./a/x/keep", b"k", {"type": H}),
                 ("./a/y/", b"", {"type": D}), ("./a/y/gone", b"g", {"type": H}), ("./b/", b"", {"type": D})])
    out = _filtered(data, drop=[lambda n: n.startswith("a/") and not n.endswith("keep")])
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        assert t.getnames() == ["a", "a/x", "a/x/keep", "b"]


def test_dpkg_path_filter_semantics():
    skip = mmdebstrap.path_filter(debian.SLIM_DPKG)
    assert skip("usr/share/doc/bash/README") and not skip("usr/share/doc/bash/copyright")
    assert not skip("usr/share/doc/bash", True)  # dirs and symlinks under an include's literal prefix stay
    assert not skip("usr/share/doc/libgcc-s1", True)
    assert skip("usr/share/man/man1", True) and skip("usr/share/man/man1/ls.1.gz")
    assert not skip("usr/share/locale/locale.alias") and skip("usr/share/locale/de", True)
    assert not skip("usr/share/locale", True) and not skip("usr/bin/ls")
    assert "/usr/share/doc" in skip.roots and "/usr/share/man" in skip.roots  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        mmdebstrap.path_filter(["force-unsafe-io"])


def test_prune_tree(tmp_path):
    for f in ("usr/share/doc/bash/README", "usr/share/doc/bash/copyright", "usr/share/man/man1/ls.1.gz",
              "usr/share/locale/locale.alias", "usr/share/locale/de/LC_MESSAGES/x.mo", "usr/bin/ls",
              "usr/share/doc/adduser/examples/x.conf"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    (tmp_path / "usr/share/doc/libgcc-s1").symlink_to("gcc-12-base")
    (tmp_path / "proc").mkdir()
    n = mmdebstrap.prune_tree(str(tmp_path), debian.SLIM_DPKG)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["proc", "usr", "usr/bin", "usr/bin/ls", "usr/share", "usr/share/doc", "usr/share/doc/adduser",
                    "usr/share/doc/adduser/examples", "usr/share/doc/bash", "usr/share/doc/bash/copyright",
                    "usr/share/doc/libgcc-s1", "usr/share/locale", "usr/share/locale/locale.alias", "usr/share/man"]
    assert n == 7  # README, ls.1.gz, man1/, x.mo, LC_MESSAGES/, de/, x.conf


def test_filter_refuses_garbage():
    with pytest.raises(tarfile.TarError):
        _filtered(b"")


def test_norm_name_and_iter_reader():
    assert mmdebstrap.norm_name("./etc/passwd") == "etc/passwd"
    assert mmdebstrap.norm_name("./") == "" and mmdebstrap.norm_name(".") == ""
    assert mmdebstrap.norm_name("/abs/dir/") == "abs/dir"
    r = mmdebstrap.IterReader(iter([b"abc", b"", b"defg", b"h"]))
    assert r.read(2) == b"ab" and r.read(4) == b"cdef" and r.read(10) == b"gh" and r.read(1) == b""
    assert mmdebstrap.IterReader([b"x", b"yz"]).read() == b"xyz"


# ---- configs -------------------------------------------------------------------------------------------

PKGS = {"python3.11": "3.11.2-6+deb12u6", "python3": "3.11.2-1+b1", "python3-pip": "23.0.1+dfsg-1",
        "redis-server": "5:7.0.15-1~deb12u5", "bash": "5.2.15-2+b13"}
SOURCES = mmdebstrap.default_sources("bookworm")


def _recipe(name: str) -> debian.DebianRecipe:
    return next(r for r in debian.DEBIAN_RECIPES if r.name == name)


def _cfg(name: str) -> dict:
    return debian.image_config(_recipe(name), "sha256:" + "a" * 64, EPOCH, SOURCES, PKGS, "12.12")


def test_upstream_version():
    assert debian.upstream_version("5:7.0.15-1~deb12u5") == "7.0.15"
    assert debian.upstream_version("23.0.1+dfsg-1") == "23.0.1"
    assert debian.upstream_version("3.11.2-6+deb12u6") == "3.11.2"
    assert debian.upstream_version("9") == "9"


def test_debian_config_is_deterministic_and_official_like():
    cfg = _cfg("debian:bookworm-slim")
    assert cfg == _cfg("debian:bookworm-slim")
    assert json.dumps(cfg, sort_keys=False) == json.dumps(_cfg("debian:bookworm-slim"), sort_keys=False)
    assert cfg["created"] == "2023-11-14T22:13:20Z" and cfg["history"][0]["created"] == cfg["created"]
    assert cfg["os"] == "linux" and cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}
    c = cfg["config"]
    assert c["Cmd"] == ["bash"]
    assert c["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    assert c["Labels"]["org.hatoba.recipe"] == "debian:bookworm-slim"
    assert c["Labels"]["org.hatoba.archive-date"] == "2023-11-14T22:13:20Z"
    assert c["Labels"]["org.opencontainers.image.version"] == "12.12"
    assert "debian:bookworm-slim" in cfg["history"][0]["created_by"]
    # another archive date → another config (and image id)
    assert debian.image_config(_recipe("debian:bookworm-slim"), "sha256:" + "a" * 64, EPOCH + 1, SOURCES, PKGS,
                               "12.12") != cfg


def test_python_config():
    c = _cfg("python:3.11-slim")["config"]
    assert c["Cmd"] == ["python3"]
    assert "PYTHON_VERSION=3.11.2" in c["Env"] and "PYTHON_PIP_VERSION=23.0.1" in c["Env"]
    assert "LANG=C.UTF-8" in c["Env"] and c["Env"][0].startswith("PATH=/usr/local/bin:")
    assert c["Labels"]["org.opencontainers.image.version"] == "3.11.2"


def test_redis_config():
    c = _cfg("redis:7")["config"]
    assert c["Entrypoint"] == ["docker-entrypoint.sh"] and c["Cmd"] == ["redis-server"]
    assert c["ExposedPorts"] == {"6379/tcp": {}} and c["WorkingDir"] == "/data" and c["Volumes"] == {"/data": {}}
    assert "REDIS_VERSION=7.0.15" in c["Env"]


def test_recipe_options(tmp_path):
    slim = _recipe("debian:bookworm-slim").options(str(tmp_path))
    full = _recipe("debian:bookworm").options(str(tmp_path))
    assert "--variant=minbase" in slim and "--variant=minbase" in full
    # slim: the dpkg path filters in their own dpkg.cfg.d file (set up before extraction) and a
    # prune of what the plain-tar extraction unpacked against them
    assert any(o.startswith("--setup-hook=") and o.endswith('"$1"/etc/dpkg/dpkg.cfg.d/docker') for o in slim)
    assert any(o.startswith("--extract-hook=") and "hatoba.images.recipes.mmdebstrap prune" in o for o in slim)
    assert not [o for o in slim if "path-exclude" in o]  # not as --dpkgopt: that costs an mmtarfilter per package
    assert not [o for o in full if "dpkg.cfg.d/docker" in o or "--extract-hook" in o]
    _recipe("debian:bookworm-slim").write_files(str(tmp_path))
    rules = (tmp_path / "dpkg-slim").read_text().splitlines()
    assert "path-exclude=/usr/share/doc/*" in rules and "path-include=/usr/share/doc/*/copyright" in rules
    for opts in (slim, full):
        assert any("resolv.conf" in o and o.startswith("--customize-hook=") for o in opts)
        assert any("merged-usr" in o for o in opts)
    py = _recipe("python:3.11-slim")
    opts = py.options(str(tmp_path))
    assert "--include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates" in opts
    assert any("EXTERNALLY-MANAGED" in o for o in opts)
    assert mmdebstrap.drop_pycache in py.drop()
    redis = _recipe("redis:7")
    opts = redis.options(str(tmp_path))
    assert any(o.startswith("--essential-hook=") and "redis:x:999" in o for o in opts)
    redis.write_files(str(tmp_path))
    texts = [p.read_text() for p in tmp_path.iterdir() if p.name.startswith("file")]
    assert any("setpriv" in t for t in texts)


def test_redis_entrypoint_is_valid_sh(tmp_path):
    p = tmp_path / "ep.sh"
    p.write_text(debian.REDIS_ENTRYPOINT)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    import subprocess

    assert subprocess.run(["sh", "-n", str(p)]).returncode == 0


# ---- lookup and hints ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ref,want", [
    ("debian", "debian:bookworm"), ("debian:latest", "debian:bookworm"), ("debian:bookworm", "debian:bookworm"),
    ("debian:bookworm-slim", "debian:bookworm-slim"), ("docker.io/library/debian:bookworm-slim", "debian:bookworm-slim"),
    ("python", "python:3.11-slim"), ("python:3", "python:3.11-slim"), ("python:3.11-slim", "python:3.11-slim"),
    ("redis", "redis:7"), ("redis:7", "redis:7"), ("busybox", "busybox:latest"), ("hello-world", "hello-world:latest"),
    ("debian:trixie", None), ("someone/debian", None), ("localhost:5000/debian", None), ("alpine", None),
    ("debian@sha256:" + "0" * 64, None), ("Not A Ref", None), ("", None),
])
def test_recipe_for(ref, want):
    assert bootstrap.recipe_for(ref) == want


def test_hint():
    assert bootstrap.hint("alpine") == ""
    h = bootstrap.hint("docker.io/library/python:3")
    assert h == "hatoba can build python:3 from Debian packages: run 'hatoba image bootstrap python:3'"
    assert bootstrap.hint("busybox") == "hatoba can build busybox:latest locally: run 'hatoba image bootstrap busybox:latest'"


def test_every_recipe_tag_resolves_to_its_recipe():
    for name, r in bootstrap.RECIPES.items():
        assert r.tags[0] == name
        for tag in r.tags:
            assert bootstrap.recipe_for(tag) == name


def test_unknown_recipe_is_not_found():
    from hatoba.errors import NotFound

    with pytest.raises(NotFound, match="no bootstrap recipe"):
        bootstrap.bootstrap(None, "alpine", lambda s: None)  # type: ignore[arg-type]


def test_daemon_json_bootstrap_missing_images(tmp_path):
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps({"bootstrap-missing-images": True}))
    cfg = DaemonConfig()
    assert cfg.bootstrap_missing_images is False
    load_file(cfg, str(p))
    assert cfg.bootstrap_missing_images is True


# ---- archive date and the mmdebstrap runner (local stand-ins) ------------------------------------------

class _Release(http.server.BaseHTTPRequestHandler):
    dates = {"/debian/dists/bookworm/InRelease": "Sat, 10 May 2025 10:00:00 UTC",
             "/debian/dists/bookworm-updates/Release": "Sun, 11 May 2025 12:00:00 UTC"}

    def do_GET(self):  # noqa: N802
        d = self.dates.get(self.path)
        if d is None:
            self.send_error(404)
            return
        body = f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nDate: {d}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_archive_epoch_is_the_newest_release_date(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(k, raising=False)
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Release)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_port}/debian"
        got = mmdebstrap.archive_epoch([(base, "bookworm"), (base, "bookworm-updates")])
        assert got == 1746964800  # 2025-05-11T12:00:00Z (InRelease missing → Release)
        with pytest.raises(HatobaError, match="Release date"):
            mmdebstrap.archive_epoch([(base, "nosuch")], timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()


def _fake_mmdebstrap(tmp_path, tar: bytes, rc: int) -> str:
    data = tmp_path / "out.tar"
    data.write_bytes(tar)
    exe = tmp_path / "mmdebstrap"
    exe.write_text(f"#!/bin/sh\necho 'I: running apt-get update...' >&2\necho 'noise' >&2\n"
                   f"cat {data}\necho 'E: something broke' >&2\nexit {rc}\n")
    exe.chmod(0o755)
    return str(exe)


def test_build_layer_streams_and_reports_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(mmdebstrap, "mmdebstrap_path", lambda: _fake_mmdebstrap(tmp_path, _mmdebstrap_like(), 0))
    got: list[bytes] = []
    lines: list[str] = []

    def add_layer(f) -> str:
        got.append(f.read())
        return "sha256:x"

    d = mmdebstrap.build_layer(add_layer, suite="bookworm", sources=SOURCES, epoch=EPOCH, options=[],
                               drop=[mmdebstrap.drop_dev], progress=lines.append)
    assert d == "sha256:x"
    assert got[0] == _filtered(_mmdebstrap_like(), mtime_max=EPOCH)
    assert any("running apt-get update" in s for s in lines) and not any("noise" in s for s in lines)


def test_build_layer_failure_reports_mmdebstrap_output(tmp_path, monkeypatch):
    monkeypatch.setattr(mmdebstrap, "mmdebstrap_path", lambda: _fake_mmdebstrap(tmp_path, b"", 1))

    def add_layer(f) -> str:
        f.read()
        return "sha256:x"

    with pytest.raises(HatobaError, match="mmdebstrap failed") as ei:
        mmdebstrap.build_layer(add_layer, suite="bookworm", sources=SOURCES, epoch=EPOCH, options=[],
                               drop=[], progress=lambda s: None)
    assert "something broke" in ei.value.message


def test_build_layer_without_mmdebstrap(monkeypatch):
    monkeypatch.setattr(mmdebstrap, "mmdebstrap_path", lambda: None)
    with pytest.raises(HatobaError, match="apt-get install mmdebstrap"):
        mmdebstrap.build_layer(lambda f: "", suite="bookworm", sources=SOURCES, epoch=EPOCH, options=[],
                               drop=[], progress=lambda s: None)
