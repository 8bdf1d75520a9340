"""Registry client against Debian's docker-registry (CNCF distribution 2.8) on loopback.

Three registries per module: plain, htpasswd Basic auth, and `token` auth behind a small token server
(RSA key and certificate made with openssl, JWTs signed with `openssl dgst`). Proves: hatoba push →
skopeo reads it; skopeo pushes OCI (gzip and zstd), schema 2 and a multi-platform index → hatoba pulls
and runs them; login wrong then right; the docker CLI and docker-py through hatobad; the Bearer
challenge flow; a dropped connection resumes with Range; kill -9 during a pull leaves a consistent store.
Every registry, token server and proxy started here is stopped by pid and its temp dir removed.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import DOCKER

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
HTPASSWD = shutil.which("htpasswd") or "/usr/bin/htpasswd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

if not all(os.path.exists(p) for p in (REGISTRY, SKOPEO, HTPASSWD, OPENSSL)):
    pytest.skip("needs docker-registry, skopeo, htpasswd and openssl (scripts/setup.sh installs them)",
                allow_module_level=True)

USER, PASSWORD = "hatoba", "s3cret"
HATOBA = os.path.join(os.path.dirname(sys.executable), "hatoba")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- registries -------------------------------------------------------------------------------------


class Registry:
    """A docker-registry process with its own config and storage under a temp dir."""

    def __init__(self, auth: str = "", token_realm: str = "", cert: str = ""):
        self.dir = tempfile.mkdtemp(prefix="hatoba-reg-")
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        lines = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                 f"    rootdirectory: {self.dir}/data", "  delete:", "    enabled: true", "http:",
                 f"  addr: 127.0.0.1:{self.port}"]
        if auth == "htpasswd":
            pw = subprocess.run([HTPASSWD, "-Bbn", USER, PASSWORD], capture_output=True, check=True).stdout
            with open(os.path.join(self.dir, "htpasswd"), "wb") as f:
                f.write(pw)
            lines += ["auth:", "  htpasswd:", "    realm: hatoba-test-realm", f"    path: {self.dir}/htpasswd"]
        elif auth == "token":
            lines += ["auth:", "  token:", f"    realm: {token_realm}", "    service: hatoba-test-registry",
                      "    issuer: hatoba-test-issuer", f"    rootcertbundle: {cert}"]
        with open(os.path.join(self.dir, "config.yml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", os.path.join(self.dir, "config.yml")], stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: up, wants auth
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not come up: " + self.log())

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "registry.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def plain() -> Iterator[Registry]:
    r = Registry()
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def basic() -> Iterator[Registry]:
    r = Registry("htpasswd")
    r.start()
    yield r
    r.stop()


class TokenServer:
    """A Docker token server (GET /token?service=&scope=, Basic auth) signing RS256 JWTs with openssl."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hatoba-token-")
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "2", "-subj", "/CN=hatoba-test-token"], capture_output=True, check=True)
        der = subprocess.run([OPENSSL, "x509", "-in", self.cert, "-outform", "DER"], capture_output=True,
                             check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.port = _free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _b64(self, b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    def token(self, user: str, scopes: list[str]) -> str:
        access = []
        for s in scopes:
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if user:  # anonymous users get nothing
                access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": "hatoba-test-issuer", "sub": user, "aud": "hatoba-test-registry", "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = (self._b64(json.dumps(header).encode()) + "." + self._b64(json.dumps(claims).encode())).encode()
        sig = subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", self.key], input=signing, capture_output=True,
                             check=True).stdout
        return signing.decode() + "." + self._b64(sig)

    async def _handle(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        scopes = request.query.getall("scope", [])
        authz = request.headers.get("Authorization", "")
        user = ""
        if authz.startswith("Basic "):
            u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                self.requests.append({"user": u, "scopes": scopes, "ok": False})
                return web.json_response({"details": "incorrect username or password"}, status=401)
            user = u
        self.requests.append({"user": user, "scopes": scopes, "ok": True})
        tok = await asyncio.get_running_loop().run_in_executor(None, self.token, user, scopes)
        return web.json_response({"token": tok, "access_token": tok, "expires_in": 300})

    def start(self) -> None:
        from aiohttp import web

        self._thread.start()

        async def up() -> web.AppRunner:
            app = web.Application()
            app.router.add_get("/token", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        self._runner = asyncio.run_coroutine_threadsafe(up(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def token_registry() -> Iterator[tuple[Registry, TokenServer]]:
    ts = TokenServer()
    ts.start()
    r = Registry("token", token_realm=ts.realm, cert=ts.cert)
    try:
        r.start()
        yield r, ts
    finally:
        r.stop()
        ts.stop()


class Proxy:
    """A loopback TCP proxy in front of a registry that can cut and throttle blob downloads."""

    def __init__(self, target: int, cut: int = 0, cut_after: int = 600_000, rate: int = 0,
                 strip_range: bool = False, corrupt_gzip_mtime: bool = False):
        self.target, self.cut, self.cut_after, self.rate = target, cut, cut_after, rate
        # strip_range: the registry never sees Range headers (a download has to start over);
        # corrupt_gzip_mtime: change the MTIME of gzip blobs, which no decompressor notices
        self.strip_range, self.corrupt_gzip_mtime = strip_range, corrupt_gzip_mtime
        self.corrupted = 0
        self.port = _free_port()
        self.blob_bytes = 0
        self.cuts = 0
        self.ranges: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        st = {"blob": False, "sent": 0}

        async def c2s() -> None:
            while data := await reader.read(65536):
                if b" /v2/" in data[:200]:
                    st["blob"] = data.startswith(b"GET ") and b"/blobs/sha256:" in data.split(b"\r\n", 1)[0]
                    st["sent"] = 0
                    for line in data.split(b"\r\n"):
                        if line.lower().startswith(b"range:"):
                            self.ranges.append(line.decode())
                    if self.strip_range:
                        data = b"\r\n".join(x for x in data.split(b"\r\n") if not x.lower().startswith(b"range:"))
                up_w.write(data)
                await up_w.drain()

        async def s2c() -> None:
            while data := await up_r.read(32768):
                if st["blob"] and self.corrupt_gzip_mtime and st["sent"] == 0:
                    at = data.find(b"\r\n\r\n\x1f\x8b")
                    if at >= 0:
                        data = bytearray(data)
                        data[at + 4 + 4] ^= 1
                        data = bytes(data)
                        self.corrupted += 1
                if st["blob"]:
                    if self.cut > 0 and st["sent"] + len(data) > self.cut_after:
                        self.cut -= 1
                        self.cuts += 1
                        writer.write(data[: self.cut_after - st["sent"]])
                        await writer.drain()
                        writer.transport.abort()
                        up_w.close()
                        return
                    if self.rate:
                        await asyncio.sleep(len(data) / self.rate)
                    self.blob_bytes += len(data)
                st["sent"] += len(data)
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(c2s(), s2c())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            up_w.close()

    def start(self) -> Proxy:
        self._thread.start()

        async def up() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._conn, "127.0.0.1", self.port)

        self._server = asyncio.run_coroutine_threadsafe(up(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def down() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# ---- images -----------------------------------------------------------------------------------------

APPLETS = ("sh", "echo", "cat", "ls", "uname", "wc", "true", "stat")


def _rootfs_tar(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("bin", "etc", "tmp"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode = len(data), 0o755
        t.addfile(ti, io.BytesIO(data))
        for a in APPLETS:
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, "busybox", 0o777
            t.addfile(ti)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        for name, data in {"etc/passwd": passwd, **(extra or {})}.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _import(daemon, ref: str, extra: dict[str, bytes] | None = None) -> None:  # type: ignore[no-untyped-def]
    tmp = tempfile.NamedTemporaryFile(suffix=".tar", delete=False)
    try:
        tmp.write(_rootfs_tar(extra))
        tmp.close()
        daemon.hatoba("import", "-c", 'CMD ["sh"]', tmp.name, ref, check=True)
    finally:
        os.unlink(tmp.name)


def _rmi(daemon, *refs: str) -> None:  # type: ignore[no-untyped-def]
    for r in refs:
        daemon.hatoba("rmi", "-f", r)


def _stream(daemon, path: str, headers: dict[str, str] | None = None) -> tuple[int, list[dict]]:  # type: ignore[no-untyped-def]
    """POST a streaming endpoint over the socket; returns (status, messages)."""
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(inner) -> None:  # noqa: N805
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(120)
            s.connect(daemon.sock)
            inner.sock = s

    c = Conn("localhost")
    c.request("POST", path, headers={"X-Registry-Auth": "e30=", **(headers or {})})
    r = c.getresponse()
    raw = r.read()
    c.close()
    if r.status != 200:
        return r.status, [json.loads(raw)]
    assert raw.endswith(b"\r\n"), raw[-20:]
    return r.status, [json.loads(line) for line in raw.split(b"\r\n") if line.strip()]


def _skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, *args], capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)}: {p.stderr.decode()}")
    return p


def _oci_layout(path: str, images: list[tuple[str, bytes, str]], tag: str = "t", index: bool = False) -> None:
    """An OCI image layout: one image per (architecture, layer tar, compression), or an index of them."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        d = _sha(data)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(data)
        return d

    manifests = []
    for arch, layer, comp in images:
        if comp == "zstd":
            import zstandard

            blob, mt = zstandard.ZstdCompressor().compress(layer), "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            blob, mt = gzip.compress(layer, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        cfg = json.dumps({"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
                          "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                          "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]},
                          "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"}]}).encode()
        man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg),
                                     "size": len(cfg)},
                          "layers": [{"mediaType": mt, "digest": put(blob), "size": len(blob)}]}).encode()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(man),
                          "size": len(man), "platform": {"architecture": arch, "os": "linux"}})
    if index:
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": manifests}).encode()
        top = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(idx), "size": len(idx),
                "annotations": {"org.opencontainers.image.ref.name": tag}}]
    else:
        top = [{**manifests[0], "annotations": {"org.opencontainers.image.ref.name": tag}}]
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": top}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


@pytest.fixture(scope="module")
def bb(daemon) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A small busybox image made with `hatoba import` (independent of the bootstrap recipes)."""
    ref = f"hatoba-regtest/bb:{uuid.uuid4().hex[:6]}"
    _import(daemon, ref, {"etc/motd": b"registry test image\n"})
    yield ref
    _rmi(daemon, ref)


@pytest.fixture()
def docker_config(tmp_path) -> str:  # type: ignore[no-untyped-def]
    d = tmp_path / "dockercfg"
    d.mkdir()
    return str(d)


def _cli(daemon, tool: str, *args: str, config: str, input: bytes | None = None,  # type: ignore[no-untyped-def]
         timeout: float = 120) -> subprocess.CompletedProcess:
    exe = HATOBA if tool == "hatoba" else DOCKER
    return subprocess.run([exe, *args], input=input, capture_output=True, timeout=timeout,
                          env=dict(daemon.env, DOCKER_CONFIG=config))


# ---- plain registry ---------------------------------------------------------------------------------


def test_push_is_readable_by_skopeo(daemon, plain, bb):  # type: ignore[no-untyped-def]
    ref = f"{plain.host}/bb:push1"
    daemon.hatoba("tag", bb, ref, check=True)
    try:
        status, msgs = _stream(daemon, f"/v1.41/images/{plain.host}/bb/push?tag=push1")
        assert status == 200, msgs
        assert msgs[0] == {"status": f"The push refers to repository [{plain.host}/bb]"}
        states = [m.get("status") for m in msgs]
        assert "Preparing" in states and "Pushed" in states and not any("error" in m for m in msgs)
        aux = msgs[-1]["aux"]
        assert msgs[-1]["progressDetail"] == {} and aux["Tag"] == "push1"
        assert msgs[-2] == {"status": f"push1: digest: {aux['Digest']} size: {aux['Size']}"}
        info = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
        assert info["Digest"] == aux["Digest"]
        raw = json.loads(_skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
        assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert raw["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        img = daemon.api("GET", f"/images/{ref}/json")[1]
        assert f"{plain.host}/bb@{aux['Digest']}" in img["RepoDigests"]
        # skopeo copies it out: the blobs are complete and verified
        with tempfile.TemporaryDirectory() as d:
            _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{d}:x")
            cfg_digest = json.loads(_skopeo("inspect", "--config", "--raw", f"oci:{d}:x").stdout)["rootfs"]
            assert cfg_digest["diff_ids"] == img["RootFS"]["Layers"]
        # a re-push sends nothing: the compressed blob was kept, the registry has it
        p = daemon.hatoba("push", ref, check=True)
        assert "Layer already exists" in p.stdout.decode() and aux["Digest"] in p.stdout.decode()
        # another repository on the same registry: cross-repository mount
        other = f"{plain.host}/mounted:1"
        daemon.hatoba("tag", bb, other, check=True)
        p = daemon.hatoba("push", other, check=True)
        assert "Mounted from bb" in p.stdout.decode(), p.stdout
        _rmi(daemon, other)
    finally:
        _rmi(daemon, ref)


def test_pull_progress_and_up_to_date(daemon, plain, bb):  # type: ignore[no-untyped-def]
    ref = f"{plain.host}/pulltest:v1"
    _import(daemon, ref, {"pulltest.txt": os.urandom(300_000)})
    daemon.hatoba("push", ref, check=True)
    _rmi(daemon, ref)
    status, msgs = _stream(daemon, f"/v1.41/images/create?fromImage={plain.host}%2Fpulltest&tag=v1")
    assert status == 200, msgs
    assert msgs[0] == {"status": "Pulling from pulltest", "id": "v1"}
    seq = [m["status"] for m in msgs if m.get("id") and m["id"] != "v1"]
    first = {s: seq.index(s) for s in reversed(seq)}
    assert first["Pulling fs layer"] < first["Downloading"] < first["Verifying Checksum"] < \
        first["Download complete"] < first["Extracting"] < first["Pull complete"]
    dl = [m for m in msgs if m.get("status") == "Downloading"]
    assert dl[-1]["progressDetail"]["current"] == dl[-1]["progressDetail"]["total"]
    assert dl[-1]["progress"].startswith("[" + "=" * 50 + ">]")
    assert msgs[-2]["status"].startswith("Digest: sha256:")
    assert msgs[-1] == {"status": f"Status: Downloaded newer image for {ref}"}
    p = daemon.hatoba("pull", ref, check=True)
    assert p.stdout.decode().splitlines()[-2:] == [f"Status: Image is up to date for {ref}", ref]
    p = daemon.hatoba("run", "--rm", ref, "wc", "-c", "/pulltest.txt", check=True)
    assert p.stdout.split()[0] == b"300000"
    # by digest: no tag is created, the digest is recorded
    digest = msgs[-2]["status"].split(" ", 1)[1]
    _rmi(daemon, ref)
    p = daemon.hatoba("pull", f"{plain.host}/pulltest@{digest}", check=True)
    assert p.stdout.decode().strip().endswith(f"{plain.host}/pulltest@{digest}")
    img = daemon.api("GET", f"/images/{plain.host}/pulltest@{digest}/json")
    imgs = daemon.api("GET", "/images/json")[1]
    assert any(f"{plain.host}/pulltest@{digest}" in (i.get("RepoDigests") or []) for i in imgs), (img, imgs)
    for i in imgs:
        if f"{plain.host}/pulltest@{digest}" in (i.get("RepoDigests") or []):
            _rmi(daemon, i["Id"])


def test_skopeo_pushed_oci_schema2_zstd_and_index(daemon, plain, tmp_path):  # type: ignore[no-untyped-def]
    layer = _rootfs_tar({"etc/motd": b"from skopeo\n"})
    gz, zs, multi = tmp_path / "gz", tmp_path / "zs", tmp_path / "multi"
    _oci_layout(str(gz), [("amd64", layer, "gzip")])
    _oci_layout(str(zs), [("amd64", layer, "zstd")])
    arm_layer = _rootfs_tar({"etc/motd": b"arm64 variant\n"})
    _oci_layout(str(multi), [("arm64", arm_layer, "gzip"), ("amd64", layer, "gzip")], index=True)
    dest = f"docker://{plain.host}"
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{gz}:t", f"{dest}/sk/oci:1")
    _skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{gz}:t", f"{dest}/sk/v2s2:1")
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{zs}:t", f"{dest}/sk/zstd:1")
    _skopeo("copy", "--dest-tls-verify=false", "--all", f"oci:{multi}:t", f"{dest}/sk/multi:1")
    raw = json.loads(_skopeo("inspect", "--raw", "--tls-verify=false", f"{dest}/sk/v2s2:1").stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    raw = json.loads(_skopeo("inspect", "--raw", "--tls-verify=false", f"{dest}/sk/zstd:1").stdout)
    assert raw["layers"][0]["mediaType"].endswith("+zstd")
    refs = [f"{plain.host}/sk/{n}:1" for n in ("oci", "v2s2", "zstd", "multi")]
    try:
        for ref in refs:
            daemon.hatoba("pull", ref, check=True)
            p = daemon.hatoba("run", "--rm", ref, "cat", "/etc/motd", check=True)
            assert p.stdout == b"from skopeo\n", (ref, p)
            assert daemon.api("GET", f"/images/{ref}/json")[1]["Architecture"] == "amd64"
        arm = f"{plain.host}/sk/multi:1"
        _rmi(daemon, arm)
        p = daemon.hatoba("pull", "--platform", "linux/arm64", arm, check=True)
        assert daemon.api("GET", f"/images/{arm}/json")[1]["Architecture"] == "arm64", p
        p = daemon.hatoba("pull", "--platform", "linux/s390x", arm)
        assert p.returncode == 1 and b"no matching manifest for linux/s390x" in p.stderr
    finally:
        _rmi(daemon, *refs)


def test_pull_errors(daemon, plain):  # type: ignore[no-untyped-def]
    p = daemon.hatoba("pull", f"{plain.host}/nosuch:tag")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == (f"Error response from daemon: manifest for {plain.host}/nosuch:tag not "
                                         "found: manifest unknown: manifest unknown")
    port = _free_port()
    p = daemon.hatoba("pull", f"127.0.0.1:{port}/x")
    assert p.returncode == 1 and b"connection refused" in p.stderr
    p = daemon.hatoba("run", "--rm", f"{plain.host}/nosuch:tag", "true")
    assert p.returncode == 125 and f"Unable to find image '{plain.host}/nosuch:tag' locally".encode() in p.stderr


def test_all_tags_and_run_pulls_missing_image(daemon, plain, bb):  # type: ignore[no-untyped-def]
    repo = f"{plain.host}/alltags"
    for t in ("a", "b"):
        daemon.hatoba("tag", bb, f"{repo}:{t}", check=True)
    try:
        p = daemon.hatoba("push", "-a", repo, check=True)
        out = p.stdout.decode()
        assert "a: digest: sha256:" in out and "b: digest: sha256:" in out
        _rmi(daemon, f"{repo}:a", f"{repo}:b")
        p = daemon.hatoba("pull", "-a", repo, check=True)
        out = p.stdout.decode()
        assert "a: Pulling from alltags" in out and "b: Pulling from alltags" in out and out.endswith(repo + "\n")
        tags = {t for i in daemon.api("GET", "/images/json")[1] for t in (i.get("RepoTags") or [])}
        assert {f"{repo}:a", f"{repo}:b"} <= tags
        _rmi(daemon, f"{repo}:a")
        p = daemon.hatoba("run", "--rm", f"{repo}:a", "cat", "/etc/motd", check=True)
        assert p.stdout == b"registry test image\n"
        err = p.stderr.decode()
        assert f"Unable to find image '{repo}:a' locally" in err and "Status: " in err
    finally:
        _rmi(daemon, f"{repo}:a", f"{repo}:b")


def test_search_v2_catalog(daemon, plain, bb):  # type: ignore[no-untyped-def]
    ref = f"{plain.host}/searchable/thing:1"
    daemon.hatoba("tag", bb, ref, check=True)
    try:
        daemon.hatoba("push", ref, check=True)
        status, res = daemon.api("GET", f"/images/search?term={plain.host}/searchable")
        assert status == 200 and {"star_count": 0, "is_official": False, "name": f"{plain.host}/searchable/thing",
                                  "is_automated": False, "description": ""} in res
        p = daemon.hatoba("search", f"{plain.host}/searchable", check=True)
        lines = p.stdout.decode().splitlines()
        assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
        assert any(ln.split() == [f"{plain.host}/searchable/thing", "0"] for ln in lines[1:])
        p = daemon.hatoba("search", "--format", "{{.Name}}", f"{plain.host}/thing", check=True)
        assert f"{plain.host}/searchable/thing" in p.stdout.decode().splitlines()
        status, res = daemon.api("GET", f"/images/search?term={plain.host}/zzznothing")
        assert status == 200 and res == []
    finally:
        _rmi(daemon, ref)


def test_resume_after_dropped_connection(daemon, plain):  # type: ignore[no-untyped-def]
    ref = f"{plain.host}/resume:1"
    _import(daemon, ref, {"big.bin": os.urandom(3_000_000)})
    daemon.hatoba("push", ref, check=True)
    _rmi(daemon, ref)
    proxy = Proxy(plain.port, cut=2, cut_after=700_000).start()
    via = f"127.0.0.1:{proxy.port}/resume:1"
    try:
        p = daemon.hatoba("pull", via, timeout=120)
        assert p.returncode == 0, p.stderr
        assert proxy.cuts == 2
        assert any(r.lower().startswith("range: bytes=") and not r.endswith("=0-") for r in proxy.ranges), \
            proxy.ranges
        p = daemon.hatoba("run", "--rm", via, "wc", "-c", "/big.bin", check=True)
        assert p.stdout.split()[0] == b"3000000"
    finally:
        proxy.stop()
        _rmi(daemon, via)


def test_pull_of_a_blob_with_a_wrong_digest_unpacks_nothing(daemon, plain):  # type: ignore[no-untyped-def]
    # The layer is unpacked while it downloads; the blob's gzip MTIME is changed on the way, so
    # the tar inside (and its diff id) is intact and only the blob's digest shows the change:
    # the unpacked staging directory must be thrown away, not become a layer.
    ref = f"{plain.host}/corrupt:1"
    _import(daemon, ref, {"big.bin": os.urandom(2_000_000)})
    daemon.hatoba("push", ref, check=True)
    _rmi(daemon, ref)
    layers = os.path.join(daemon.data_root, "overlay", "layers")
    before = set(os.listdir(layers))
    proxy = Proxy(plain.port, rate=1_000_000, corrupt_gzip_mtime=True).start()
    via = f"127.0.0.1:{proxy.port}/corrupt:1"
    try:
        status, msgs = _stream(daemon, f"/v1.41/images/create?fromImage=127.0.0.1:{proxy.port}%2Fcorrupt&tag=1")
        assert proxy.corrupted >= 1
        errors = [m["error"] for m in msgs if "error" in m]
        assert errors and "verification failed" in errors[-1], msgs
        assert not any(m.get("status") == "Pull complete" for m in msgs), msgs
    finally:
        proxy.stop()
    assert set(os.listdir(layers)) == before
    assert os.listdir(os.path.join(daemon.data_root, "overlay", "tmp")) == []
    assert os.listdir(os.path.join(daemon.data_root, "content", "ingest")) == []
    tags = {t for i in daemon.api("GET", "/images/json")[1] for t in (i.get("RepoTags") or [])}
    assert via not in tags
    p = daemon.hatoba("pull", ref, timeout=120)
    assert p.returncode == 0, p.stderr
    p = daemon.hatoba("run", "--rm", ref, "wc", "-c", "/big.bin", check=True)
    assert p.stdout.split()[0] == b"2000000"
    _rmi(daemon, ref)


def test_pull_that_has_to_start_over(daemon, plain):  # type: ignore[no-untyped-def]
    # A dropped connection, and a registry (here: a proxy) that ignores Range: the download starts
    # over, so the unpacking that followed it gives up and the committed blob is unpacked instead.
    ref = f"{plain.host}/restart:1"
    _import(daemon, ref, {"big.bin": os.urandom(3_000_000)})
    daemon.hatoba("push", ref, check=True)
    _rmi(daemon, ref)
    proxy = Proxy(plain.port, cut=1, cut_after=1_500_000, strip_range=True).start()
    via = f"127.0.0.1:{proxy.port}/restart:1"
    try:
        status, msgs = _stream(daemon, f"/v1.41/images/create?fromImage=127.0.0.1:{proxy.port}%2Frestart&tag=1")
        assert status == 200 and not any("error" in m for m in msgs), msgs
        assert proxy.cuts == 1
        seq = [m["status"] for m in msgs if m.get("id") and m["id"] != "1"]
        first = {s: seq.index(s) for s in reversed(seq)}
        assert first["Download complete"] < first["Extracting"] < first["Pull complete"]
        p = daemon.hatoba("run", "--rm", via, "wc", "-c", "/big.bin", check=True)
        assert p.stdout.split()[0] == b"3000000"
    finally:
        proxy.stop()
        _rmi(daemon, via)
    assert os.listdir(os.path.join(daemon.data_root, "overlay", "tmp")) == []


def test_kill9_during_pull_leaves_consistent_store(daemon, plain):  # type: ignore[no-untyped-def]
    ref = f"{plain.host}/crash:1"
    _import(daemon, ref, {"big.bin": os.urandom(4_000_000)})
    daemon.hatoba("push", ref, check=True)
    _rmi(daemon, ref)
    proxy = Proxy(plain.port, rate=800_000).start()
    via = f"127.0.0.1:{proxy.port}/crash:1"
    puller = subprocess.Popen([HATOBA, "pull", via], env=daemon.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while proxy.blob_bytes < 1_000_000 and time.time() < deadline:
            time.sleep(0.05)
        assert proxy.blob_bytes >= 1_000_000, "the pull did not start downloading"
        ingest = os.path.join(daemon.data_root, "content", "ingest")
        assert os.listdir(ingest), "a partial download should be in flight"
        with daemon.down("kill9"):
            puller.wait(30)
            assert puller.returncode != 0
    finally:
        if puller.poll() is None:
            puller.kill()
            puller.wait()
        proxy.stop()
    assert os.listdir(os.path.join(daemon.data_root, "content", "ingest")) == []
    assert os.listdir(os.path.join(daemon.data_root, "overlay", "tmp")) == []
    tags = {t for i in daemon.api("GET", "/images/json")[1] for t in (i.get("RepoTags") or [])}
    assert via not in tags
    # the same pull (this time straight to the registry) completes and runs
    p = daemon.hatoba("pull", ref, timeout=120)
    assert p.returncode == 0, p.stderr
    p = daemon.hatoba("run", "--rm", ref, "wc", "-c", "/big.bin", check=True)
    assert p.stdout.split()[0] == b"4000000"
    _rmi(daemon, ref)


def test_chunked_monolithic_and_streamed_uploads(plain):  # type: ignore[no-untyped-def]
    from hatoba.distribution.client import Registry as Client
    from hatoba.distribution.client import resolve_endpoint
    from hatoba.distribution.service import Service

    async def main() -> None:
        svc = Service(images=None)
        async with svc.session() as s:
            ep = await resolve_endpoint(svc, s, plain.host)
            assert ep.base == f"http://{plain.host}"  # https was tried and failed: plain http
            reg = Client(svc, s, plain.host, None, ep, "uploads", "pull,push")
            for mode in ("chunked", "monolithic", "stream"):
                data = os.urandom(250_000)
                digest = _sha(data)

                async def chunks(data: bytes = data):  # type: ignore[no-untyped-def]
                    for i in range(0, len(data), 64 << 10):
                        yield data[i:i + (64 << 10)]

                loc = await reg.start_upload()
                await reg.upload(loc, digest, len(data), chunks, mode=mode, chunk_size=100_000,
                                 read_range=lambda off, n, data=data: data[off:off + n])
                assert await reg.blob_size(digest) == len(data), mode
                assert await reg.get_blob_bytes(digest) == data

    asyncio.run(main())


# ---- htpasswd registry ------------------------------------------------------------------------------


def test_login_wrong_then_right_push_pull_logout(daemon, basic, bb, docker_config):  # type: ignore[no-untyped-def]
    p = _cli(daemon, "hatoba", "login", "-u", USER, "--password-stdin", basic.host, config=docker_config,
             input=b"wrongpass\n")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == (f"Error response from daemon: login attempt to http://{basic.host}/v2/ "
                                         "failed with status: 401 Unauthorized")
    status, body = daemon.api("POST", "/auth", {"username": USER, "password": "nope", "serveraddress": basic.host})
    assert status == 500 and "401 Unauthorized" in body["message"]
    p = _cli(daemon, "hatoba", "login", "-u", USER, "--password-stdin", basic.host, config=docker_config,
             input=PASSWORD.encode() + b"\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"Login Succeeded\n" and b"stored unencrypted" in p.stderr
    cfg = json.load(open(os.path.join(docker_config, "config.json")))
    assert cfg["auths"][basic.host]["auth"] == base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    status, body = daemon.api("POST", "/auth", {"username": USER, "password": PASSWORD,
                                                "serveraddress": basic.host})
    assert (status, body) == (200, {"IdentityToken": "", "Status": "Login Succeeded"})
    ref = f"{basic.host}/private/bb:auth"
    daemon.hatoba("tag", bb, ref, check=True)
    try:
        p = _cli(daemon, "hatoba", "push", ref, config=docker_config)
        assert p.returncode == 0, p.stderr
        _rmi(daemon, ref)
        with tempfile.TemporaryDirectory() as empty:
            p = _cli(daemon, "hatoba", "pull", ref, config=empty)
            assert p.returncode == 1
            assert p.stderr.decode().strip() == (f'Error response from daemon: Head "http://{basic.host}/v2/private/'
                                                 f'bb/manifests/auth": no basic auth credentials'), p.stderr
        p = _cli(daemon, "hatoba", "pull", ref, config=docker_config)
        assert p.returncode == 0, p.stderr
        p = _cli(daemon, "hatoba", "logout", basic.host, config=docker_config)
        assert p.stdout == f"Removing login credentials for {basic.host}\n".encode()
        assert basic.host not in json.load(open(os.path.join(docker_config, "config.json"))).get("auths", {})
        p = _cli(daemon, "hatoba", "logout", basic.host, config=docker_config)
        assert p.stdout == f"Not logged in to {basic.host}\n".encode()
    finally:
        _rmi(daemon, ref)


def test_docker_cli_pull_push_login_logout(daemon, basic, plain, bb, docker_config):  # type: ignore[no-untyped-def]
    p = _cli(daemon, "docker", "login", "-u", USER, "--password-stdin", basic.host, config=docker_config,
             input=b"wrongpass\n")
    assert p.returncode == 1 and b"401 Unauthorized" in p.stderr
    p = _cli(daemon, "docker", "login", "-u", USER, "--password-stdin", basic.host, config=docker_config,
             input=PASSWORD.encode() + b"\n")
    assert p.returncode == 0 and b"Login Succeeded" in p.stdout, p.stderr
    ref = f"{basic.host}/dockercli/bb:1"
    plain_ref = f"{plain.host}/dockercli/bb:1"
    daemon.hatoba("tag", bb, ref, check=True)
    daemon.hatoba("tag", bb, plain_ref, check=True)
    try:
        for r in (ref, plain_ref):
            p = _cli(daemon, "docker", "push", r, config=docker_config)
            assert p.returncode == 0, p.stderr
            out = p.stdout.decode()
            assert out.startswith(f"The push refers to repository [{r.rsplit(':', 1)[0]}]") and "digest: sha256:" in out
            _rmi(daemon, r)
            p = _cli(daemon, "docker", "pull", r, config=docker_config)
            assert p.returncode == 0, p.stderr
            out = p.stdout.decode().splitlines()
            assert out[0] == "1: Pulling from dockercli/bb" and out[-1] == r
            assert out[-2] == f"Status: Downloaded newer image for {r}"
        p = _cli(daemon, "docker", "logout", basic.host, config=docker_config)
        assert p.returncode == 0 and f"Removing login credentials for {basic.host}".encode() in p.stdout
        _rmi(daemon, ref)
        p = _cli(daemon, "docker", "pull", ref, config=docker_config)
        assert p.returncode == 1 and b"no basic auth credentials" in p.stderr
    finally:
        _rmi(daemon, ref, plain_ref)


def test_dockerpy_pull_push(daemon, basic, bb):  # type: ignore[no-untyped-def]
    import docker

    c = docker.DockerClient(base_url=daemon.host, timeout=120)
    repo = f"{basic.host}/dockerpy/bb"
    auth = {"username": USER, "password": PASSWORD}
    try:
        assert c.login(username=USER, password=PASSWORD, registry=basic.host)["Status"] == "Login Succeeded"
        c.images.get(bb).tag(repo, "v1")
        out = c.images.push(repo, "v1", auth_config=auth)
        assert '"error"' not in out and "digest: sha256:" in out, out
        lines = list(c.api.push(repo, "v1", auth_config=auth, stream=True, decode=True))
        assert lines[-1]["aux"]["Tag"] == "v1"
        c.images.remove(f"{repo}:v1")
        img = c.images.pull(repo, tag="v1", auth_config=auth)
        assert f"{repo}:v1" in img.tags
        assert any(d.startswith(f"{repo}@sha256:") for d in img.attrs["RepoDigests"])
        with pytest.raises(docker.errors.APIError):
            c.images.pull(repo, tag="v1-nope", auth_config=auth)
    finally:
        try:
            c.images.remove(f"{repo}:v1", force=True)
        except docker.errors.NotFound:
            pass
        c.close()


# ---- token registry ---------------------------------------------------------------------------------


def test_bearer_token_flow(daemon, token_registry, bb, docker_config):  # type: ignore[no-untyped-def]
    reg, ts = token_registry
    p = _cli(daemon, "hatoba", "login", "-u", USER, "--password-stdin", reg.host, config=docker_config,
             input=b"wrong\n")
    assert p.returncode == 1 and b"401 Unauthorized" in p.stderr, p.stderr
    p = _cli(daemon, "hatoba", "login", "-u", USER, "--password-stdin", reg.host, config=docker_config,
             input=PASSWORD.encode() + b"\n")
    assert p.returncode == 0, p.stderr
    ref = f"{reg.host}/tok/bb:1"
    daemon.hatoba("tag", bb, ref, check=True)
    try:
        ts.requests.clear()
        p = _cli(daemon, "hatoba", "push", ref, config=docker_config)
        assert p.returncode == 0, p.stderr + reg.log().encode()
        assert any("repository:tok/bb:pull,push" in r["scopes"] and r["user"] == USER for r in ts.requests), \
            ts.requests
        n = len(ts.requests)
        p = _cli(daemon, "hatoba", "push", ref, config=docker_config)
        assert p.returncode == 0 and b"Layer already exists" in p.stdout
        assert len(ts.requests) == n, "the token is cached per scope"
        _rmi(daemon, ref)
        with tempfile.TemporaryDirectory() as empty:  # anonymous: the token grants nothing
            p = _cli(daemon, "hatoba", "pull", ref, config=empty)
            assert p.returncode == 1 and b"pull access denied" in p.stderr, p.stderr
        p = _cli(daemon, "hatoba", "pull", ref, config=docker_config)
        assert p.returncode == 0, p.stderr
        assert any("repository:tok/bb:pull" in r["scopes"] for r in ts.requests)
        p = daemon.hatoba("run", "--rm", ref, "cat", "/etc/motd", check=True)
        assert p.stdout == b"registry test image\n"
        info = _skopeo("inspect", "--tls-verify=false", f"--creds={USER}:{PASSWORD}", f"docker://{ref}")
        assert json.loads(info.stdout)["Digest"].startswith("sha256:")
    finally:
        _rmi(daemon, ref)


# ---- daemon configuration ---------------------------------------------------------------------------


def test_registry_mirror_for_docker_hub(daemon, plain, bb):  # type: ignore[no-untyped-def]
    """`registry-mirrors` in daemon.json: docker.io pulls go to the mirror (no Docker Hub here)."""
    src = f"{plain.host}/library/mirrored:1"
    daemon.hatoba("tag", bb, src, check=True)
    daemon.hatoba("push", src, check=True)
    _rmi(daemon, src)
    cfg = os.path.join(daemon.root, "daemon.json")
    assert not os.path.exists(cfg)
    with open(cfg, "w") as f:
        json.dump({"registry-mirrors": [f"http://{plain.host}"], "max-concurrent-downloads": 2}, f)
    daemon.restart()
    try:
        p = daemon.hatoba("pull", "mirrored:1", check=True)
        out = p.stdout.decode().splitlines()
        assert out[0] == "1: Pulling from mirrored" and out[-1] == "docker.io/library/mirrored:1", out
        p = daemon.hatoba("run", "--rm", "mirrored:1", "cat", "/etc/motd", check=True)
        assert p.stdout == b"registry test image\n"
        assert any(d.startswith("mirrored@sha256:")
                   for d in daemon.api("GET", "/images/mirrored:1/json")[1]["RepoDigests"])
    finally:
        _rmi(daemon, "mirrored:1")
        os.unlink(cfg)
        daemon.restart()
