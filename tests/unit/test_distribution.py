"""Registry client pieces without a registry: auth challenges, X-Registry-Auth, manifests and platform
selection, progress messages and bars (checked against cli-traces 41 to 43), compression, CLI rendering,
credentials."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import stat

import pytest

from hatoba.cli import credentials
from hatoba.cli.commands.registry import format_search
from hatoba.cli.jsonmessage import StreamError, display, progress_string
from hatoba.distribution import manifest as mf
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig, TokenCache, decode_registry_auth, parse_challenges
from hatoba.distribution.client import is_insecure, registry_errors
from hatoba.distribution.search import registry_host, split_term
from hatoba.errors import InvalidParameter, NotFound
from hatoba.storage.compression import gzip_compress, open_decompressed

# ---- auth ------------------------------------------------------------------------------------------


def test_basic_challenge() -> None:
    [c] = parse_challenges('Basic realm="hatoba-trace-realm"')
    assert c.scheme == "basic" and c.params == {"realm": "hatoba-trace-realm"}


def test_bearer_challenge_with_scope_and_error() -> None:
    h = ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
         'scope="repository:library/busybox:pull,push",error="insufficient_scope"')
    [c] = parse_challenges(h)
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                        "scope": "repository:library/busybox:pull,push", "error": "insufficient_scope"}


def test_several_challenges_and_escapes() -> None:
    cs = parse_challenges(['Basic realm="a \\"quoted\\" realm", Bearer realm=https://t/x, service=svc',
                           "Negotiate abc=="])
    assert [c.scheme for c in cs] == ["basic", "bearer", "negotiate"]
    assert cs[0].params["realm"] == 'a "quoted" realm'
    assert cs[1].params == {"realm": "https://t/x", "service": "svc"}


def test_registry_auth_header() -> None:
    assert decode_registry_auth("e30=").empty
    assert decode_registry_auth(None).empty
    raw = json.dumps({"username": "hatoba", "password": "s3cret", "serveraddress": "localhost:5057"}).encode()
    for enc in (base64.urlsafe_b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        a = decode_registry_auth(enc)
        assert (a.username, a.password, a.serveraddress) == ("hatoba", "s3cret", "localhost:5057")
    a = AuthConfig.from_dict({"auth": base64.b64encode(b"u:p:w").decode()})
    assert (a.username, a.password) == ("u", "p:w")
    tok = decode_registry_auth(base64.urlsafe_b64encode(b'{"identitytoken":"tkn"}').decode())
    assert tok.identitytoken == "tkn" and not tok.empty
    with pytest.raises(InvalidParameter):
        decode_registry_auth("!!!not base64")


def test_token_cache_expiry() -> None:
    c = TokenCache()
    c.put(("r", "s", "scope", "u"), "tok", 300)
    assert c.get(("r", "s", "scope", "u")) == "tok"
    assert c.get(("r", "s", "other", "u")) is None
    c.put(("r", "s", "x", "u"), "old", 5)  # expires (less than 10 s margin) almost at once
    c._tokens[("r", "s", "x", "u")] = ("old", 0.0)
    assert c.get(("r", "s", "x", "u")) is None


def test_registry_error_text() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert registry_errors(body) == "manifest unknown: manifest unknown"
    assert registry_errors(b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}') == \
        "unauthorized: authentication required"
    assert registry_errors(b"not json") == ""


def test_insecure_registries() -> None:
    assert is_insecure("localhost:5000", [])
    assert is_insecure("127.0.0.1:5055", [])
    assert is_insecure("127.1.2.3", [])
    assert is_insecure("[::1]:5000", [])
    assert not is_insecure("registry.example.com", [])
    assert is_insecure("registry.example.com:5000", ["registry.example.com:5000"])
    assert is_insecure("registry.example.com:5000", ["registry.example.com"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("11.1.2.3:5000", ["10.0.0.0/8"])


def test_search_terms_and_servers() -> None:
    assert split_term("busybox") == ("docker.io", "busybox")
    assert split_term("library/busybox") == ("docker.io", "library/busybox")
    assert split_term("127.0.0.1:5000/bb") == ("127.0.0.1:5000", "bb")
    assert split_term("localhost/x/y") == ("localhost", "x/y")
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("http://localhost:5057/") == "localhost:5057"


# ---- manifests -------------------------------------------------------------------------------------

CFG = {"mediaType": mf.DOCKER_CONFIG, "size": 1734,
       "digest": "sha256:0a3707096b40bd232806ec3e6d99a0c0542edcf5a73591e4e20b736f6b414620"}
LAYER = {"mediaType": mf.DOCKER_LAYER, "size": 307594,
         "digest": "sha256:f978b149cbf5d1bc932af789ec0b39626f81b1752ecbd5fddfaa7e70d3809035"}


def _index(entries: list[dict], mt: str = mf.OCI_INDEX) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt, "manifests": entries}).encode()


def _entry(n: int, os_: str, arch: str, variant: str = "", **extra: object) -> dict:
    p = {"os": os_, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + f"{n:x}" * 64, "size": 100, "platform": p,
            **extra}


def test_parse_schema2_and_oci() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST, "config": CFG, "layers": [LAYER]}).encode()
    m = mf.parse(raw)
    assert m.media_type == mf.DOCKER_MANIFEST and not m.is_index
    assert m.config and m.config.digest == CFG["digest"] and m.layers[0].size == 307594
    oci = json.dumps({"schemaVersion": 2, "config": {**CFG, "mediaType": mf.OCI_CONFIG},
                      "layers": [{**LAYER, "mediaType": mf.OCI_LAYER_ZSTD}]}).encode()
    m = mf.parse(oci, "application/vnd.oci.image.manifest.v1+json")
    assert m.media_type == mf.OCI_MANIFEST and m.layers[0].media_type == mf.OCI_LAYER_ZSTD


def test_schema1_is_refused_clearly() -> None:
    raw = json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}).encode()
    with pytest.raises(mf.ManifestError, match="schema 1.*not support"):
        mf.parse(raw, mf.SCHEMA1_SIGNED, "x:y")


def test_index_selection() -> None:
    idx = mf.parse(_index([_entry(1, "linux", "arm64", "v8"), _entry(2, "linux", "amd64"),
                           _entry(3, "unknown", "unknown",
                                  annotations={"vnd.docker.reference.type": "attestation-manifest"}),
                           _entry(4, "linux", "arm", "v7"), _entry(5, "windows", "amd64")]))
    assert idx.is_index
    assert mf.select(idx, mf.Platform("linux", "amd64")).digest == "sha256:" + "2" * 64
    assert mf.select(idx, mf.parse_platform("linux/arm64")).digest == "sha256:" + "1" * 64
    assert mf.select(idx, mf.parse_platform("linux/arm64/v8")).digest == "sha256:" + "1" * 64
    assert mf.select(idx, mf.parse_platform("linux/arm/v7")).digest == "sha256:" + "4" * 64
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        mf.select(idx, mf.parse_platform("linux/s390x"))
    lst = mf.parse(_index([_entry(2, "linux", "amd64")], mf.DOCKER_LIST))
    assert lst.is_index and lst.media_type == mf.DOCKER_LIST


def test_platform_parsing_and_config_check() -> None:
    assert mf.parse_platform("linux/x86_64") == mf.Platform("linux", "amd64")
    assert mf.parse_platform("") is None
    with pytest.raises(InvalidParameter):
        mf.parse_platform("linux//")
    mf.check_config_platform({"os": "linux", "architecture": "amd64"}, None, "x")
    with pytest.raises(NotFound, match="wanted linux/arm64, actual: linux/amd64"):
        mf.check_config_platform({"os": "linux", "architecture": "amd64"}, mf.Platform("linux", "arm64"), "x")


def test_built_manifest_matches_dockerd_layout() -> None:
    # trace 42: the manifest dockerd pushed for busybox:full is 527 bytes with this content
    body = mf.build(mf.Descriptor(mf.DOCKER_CONFIG,
                                  "sha256:27b6c8d68a1f30377adae328aed1ddb590bae869a73e294b4886276f6df50046", 962),
                    [mf.Descriptor(mf.DOCKER_LAYER,
                                   "sha256:d8e649f5e54063776c67c3878c9675c3a89a80a369840d5ffc8c537981b4c361", 1069385)])
    assert len(body) == 527
    import hashlib
    assert "sha256:" + hashlib.sha256(body).hexdigest() == \
        "sha256:d04a81be7b8b17825ba8e0acf2d09d011a7a92311c26ff40a6e91d11c7e1a82b"


# ---- progress --------------------------------------------------------------------------------------


def test_progress_bars_as_in_trace_43_and_42() -> None:
    from hatoba.humanize import human_size, progress_string

    assert progress_string({"current": 3678, "total": 307594}) == "[>" + " " * 50 + "]  3.678kB/307.6kB"
    assert progress_string({"current": 307594, "total": 307594}) == "[" + "=" * 50 + ">]  307.6kB/307.6kB"
    assert progress_string({"current": 32768, "total": 307594}) == "[=====>" + " " * 45 + "]  32.77kB/307.6kB"
    assert progress_string({"current": 19968, "total": 1984274}) == "[>" + " " * 50 + "]  19.97kB/1.984MB"
    assert progress_string({"current": 2129920, "total": 1984274}) == "[" + "=" * 50 + ">]   2.13MB"
    assert human_size(999) == "999B" and human_size(1000) == "1kB" and human_size(150e6) == "150MB"


def test_progress_messages_bytes() -> None:
    assert pg.encode(pg.status("Pulling from pulltest", "v1")) == b'{"status":"Pulling from pulltest","id":"v1"}\r\n'
    assert pg.encode(pg.layer("Already exists", "d8e649f5e540")) == \
        b'{"status":"Already exists","progressDetail":{},"id":"d8e649f5e540"}\r\n'
    assert pg.encode(pg.progress("Downloading", "f978b149cbf5", 3678, 307594)) == (
        b'{"status":"Downloading","progressDetail":{"current":3678,"total":307594},"progress":"[\\u003e'
        + b" " * 50 + b']  3.678kB/307.6kB","id":"f978b149cbf5"}\r\n')
    assert pg.encode({"progressDetail": {}, "aux": {"Tag": "latest", "Digest": "sha256:d0", "Size": 527}}) == \
        b'{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:d0","Size":527}}\r\n'
    assert pg.short("sha256:f978b149cbf5d1bc932af789ec0b39626f81b1752ecbd5fddfaa7e70d3809035") == "f978b149cbf5"


def test_meter_rate_limits() -> None:
    got: list[dict] = []
    out = pg.Output(got.append)
    m = pg.Meter(out, "Downloading", "abc", 10 << 20)
    for _ in range(160):
        m.update(64 << 10)
    m.done()
    assert got[0]["progressDetail"]["current"] == 64 << 10
    assert got[-1]["progressDetail"] == {"current": 10 << 20, "total": 10 << 20}
    assert 10 <= len(got) <= 40


# ---- CLI rendering ---------------------------------------------------------------------------------

TRACE43 = [
    {"status": "Pulling from pulltest", "id": "v1"},
    {"status": "Already exists", "progressDetail": {}, "id": "d8e649f5e540"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "f978b149cbf5"},
    pg.progress("Downloading", "f978b149cbf5", 3678, 307594),
    pg.progress("Downloading", "f978b149cbf5", 307594, 307594),
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "f978b149cbf5"},
    {"status": "Download complete", "progressDetail": {}, "id": "f978b149cbf5"},
    pg.progress("Extracting", "f978b149cbf5", 32768, 307594),
    pg.progress("Extracting", "f978b149cbf5", 307594, 307594),
    {"status": "Pull complete", "progressDetail": {}, "id": "f978b149cbf5"},
    {"status": "Digest: sha256:a3b2ca7c97d3e60871b0671e1496c19d486f63a3313600a041426fdb003e9b2d"},
    {"status": "Status: Downloaded newer image for localhost:5055/pulltest:v1"},
]


def test_plain_rendering_matches_trace_43() -> None:
    out = io.StringIO()
    display(TRACE43, out, False)
    assert out.getvalue() == (
        "v1: Pulling from pulltest\nd8e649f5e540: Already exists\nf978b149cbf5: Pulling fs layer\n"
        "f978b149cbf5: Verifying Checksum\nf978b149cbf5: Download complete\nf978b149cbf5: Pull complete\n"
        "Digest: sha256:a3b2ca7c97d3e60871b0671e1496c19d486f63a3313600a041426fdb003e9b2d\n"
        "Status: Downloaded newer image for localhost:5055/pulltest:v1\n")


def test_terminal_rendering_matches_trace_41() -> None:
    msgs = [{"status": "Loading layer", "progressDetail": {"current": 1536, "total": 1536},
             "progress": "x", "id": "55f9f785c61a"}] * 2 + [{"stream": "Loaded image: friendlyhello:latest\n"}]
    out = io.StringIO()
    display(msgs, out, True, width=80)
    one = "\x1b[1A\x1b[2K\r55f9f785c61a: Loading layer  1.536kB/1.536kB\r\x1b[1B"
    assert out.getvalue() == "\n" + one + one + "Loaded image: friendlyhello:latest\n"


def test_terminal_rendering_several_layers_and_wide_bar() -> None:
    out = io.StringIO()
    display([pg.layer("Pulling fs layer", "aaa"), pg.layer("Pulling fs layer", "bbb"),
             pg.progress("Downloading", "aaa", 5, 10)], out, True, width=100)
    s = out.getvalue()
    assert s.count("\n") == 2 and "\x1b[2A\x1b[2K\raaa: Downloading       5B/10B\r\x1b[2B" in s
    assert progress_string({"current": 5, "total": 10}, 200) == "[=========================>" + " " * 25 + \
        "]       5B/10B"


def test_error_message_raises() -> None:
    with pytest.raises(StreamError, match="no basic auth credentials"):
        display([{"errorDetail": {"message": "no basic auth credentials"}, "error": "no basic auth credentials"}],
                io.StringIO(), False)


def test_search_table() -> None:
    res = [{"star_count": 3, "is_official": True, "name": "busybox", "is_automated": False,
            "description": "Busybox base image, with a description that is far too long to show"},
           {"star_count": 0, "is_official": False, "name": "127.0.0.1:5000/bb", "is_automated": False,
            "description": ""}]
    text = format_search(res)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert "Busybox base image, with a description that …" in lines[1] and lines[1].endswith("[OK]")
    assert lines[2].split() == ["127.0.0.1:5000/bb", "0"]
    assert format_search(res, "{{.Name}}: {{.StarCount}}") == "busybox: 3\n127.0.0.1:5000/bb: 0\n"
    assert "far too long to show" in format_search(res, trunc=False)


# ---- compression -----------------------------------------------------------------------------------


def test_gzip_roundtrip_and_determinism() -> None:
    data = os.urandom(300_000) + b"x" * 2_500_000 + os.urandom(7)
    a, b = io.BytesIO(), io.BytesIO()
    gzip_compress(io.BytesIO(data), a.write, threads=3, block=256 << 10)
    gzip_compress(io.BytesIO(data), b.write, threads=1, block=256 << 10)
    assert a.getvalue() == b.getvalue()
    assert gzip.decompress(a.getvalue()) == data
    r = open_decompressed(io.BytesIO(a.getvalue() + gzip.compress(b"tail")))
    assert r.read() == data + b"tail"


def test_zstd_and_plain() -> None:
    import zstandard

    data = os.urandom(100_000) * 3
    assert open_decompressed(io.BytesIO(zstandard.ZstdCompressor().compress(data))).read() == data
    assert open_decompressed(io.BytesIO(b"plain tar bytes")).read() == b"plain tar bytes"


# ---- credentials -----------------------------------------------------------------------------------


def test_credentials_file(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials.server_key(None) == credentials.INDEX_SERVER
    assert credentials.server_key("docker.io") == credentials.INDEX_SERVER
    assert credentials.server_key("http://localhost:5057/") == "localhost:5057"
    assert credentials.registry_auth("localhost:5057") == "e30="
    assert credentials.store("localhost:5057", "hatoba", "s3cret") is True
    doc = json.load(open(os.path.join(str(tmp_path), "config.json")))
    assert doc["auths"]["localhost:5057"]["auth"] == base64.b64encode(b"hatoba:s3cret").decode()
    assert stat.S_IMODE(os.stat(os.path.join(str(tmp_path), "config.json")).st_mode) == 0o600
    hdr = json.loads(base64.urlsafe_b64decode(credentials.registry_auth("localhost:5057")))
    assert hdr == {"username": "hatoba", "password": "s3cret", "serveraddress": "localhost:5057"}
    assert credentials.erase("localhost:5057") is True
    assert credentials.get("localhost:5057") == {}
    assert credentials.erase("localhost:5057") is False


def test_credentials_helper(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    d = str(tmp_path)
    store = os.path.join(d, "store.json")
    helper = os.path.join(d, "docker-credential-fake")
    with open(helper, "w") as f:
        f.write(f"""#!/usr/bin/env python3
import json, sys
p = {store!r}
try:
    db = json.load(open(p))
except OSError:
    db = {{}}
data = sys.stdin.read()
if sys.argv[1] == "store":
    d = json.loads(data); db[d["ServerURL"]] = d
elif sys.argv[1] == "get":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(db[data.strip()]))
elif sys.argv[1] == "erase":
    db.pop(data.strip(), None)
json.dump(db, open(p, "w"))
""")
    os.chmod(helper, 0o755)
    monkeypatch.setenv("PATH", d + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("DOCKER_CONFIG", d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"credsStore": "fake"}, f)
    assert credentials.store("reg.example:5000", "u", "pw") is False
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["auths"] == {"reg.example:5000": {}}
    assert json.load(open(store))["reg.example:5000"]["Secret"] == "pw"
    assert credentials.get("reg.example:5000") == {"username": "u", "password": "pw"}
    assert credentials.erase("reg.example:5000")
    assert credentials.get("reg.example:5000") == {}
