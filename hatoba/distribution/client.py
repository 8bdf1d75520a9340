"""One registry over aiohttp: endpoint choice, the auth challenge flow, blobs, manifests, tags, search.

Endpoints: docker.io is `https://registry-1.docker.io` (after any `registry-mirrors`). Other hosts
use https; an insecure registry (loopback, or listed in `insecure-registries` by host, host:port or
CIDR) is tried over https without verification first and over plain http when TLS fails, as dockerd
does. The choice is remembered for a minute.

Auth: `GET /v2/` tells whether the registry wants nothing, Basic, or a Bearer token from the
challenge's realm (with service and scope). Tokens are cached per scope in the service's
TokenCache; a 401 asking for another scope (`insufficient_scope`) fetches a new one and retries once.

Errors read like dockerd's: `Head "http://host/v2/x/manifests/y": no basic auth credentials`,
`manifest unknown: manifest unknown`, `Get "http://…": dial tcp 127.0.0.1:1: connect: connection refused`.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import ipaddress
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp
from yarl import URL

from hatoba import __version__
from hatoba.distribution.auth import AuthConfig, Challenge, TokenCache, parse_challenges
from hatoba.errors import HatobaError


class RegistryState(Protocol):
    """What a registry client keeps across operations (`distribution.service.Service` has it)."""

    insecure_registries: list[str]
    registry_mirrors: list[str]
    tokens: TokenCache
    endpoints: dict[str, tuple[Endpoint, float]]
    challenges: dict[str, list[Challenge]]


DOCKER_HUB = "docker.io"
HUB_REGISTRY = "registry-1.docker.io"
HUB_INDEX = "index.docker.io"
USER_AGENT = f"hatoba/{__version__} (linux)"
_RETRYABLE = (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
              asyncio.TimeoutError)


class RegistryError(HatobaError):
    """An error answer (or failure) of a registry; `status` is what the Engine API answers."""

    def __init__(self, message: str, status: int = 500, registry_status: int = 0):
        super().__init__(message)
        self.status = status
        self.registry_status = registry_status


def _go_method(m: str) -> str:
    return m[:1].upper() + m[1:].lower()


def describe(exc: BaseException, url: URL | str) -> str:
    """A connection failure in Go's words (the docker CLI's users know these)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        host = f"{exc.host}:{exc.port}"
        oe = exc.os_error
        if getattr(oe, "errno", None) == errno.ECONNREFUSED:
            return f"dial tcp {host}: connect: connection refused"
        if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientConnectorCertificateError):
            return f"tls: {oe}"
        return f"dial tcp {host}: {getattr(oe, 'strerror', None) or oe}"
    if isinstance(exc, asyncio.TimeoutError):
        return "net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
    return str(exc) or type(exc).__name__


def registry_errors(body: bytes) -> str:
    """`code: message` of a distribution error body (`{"errors":[{"code","message","detail"}]}`)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not errs:
        if isinstance(doc, dict) and isinstance(doc.get("details") or doc.get("message"), str):
            return str(doc.get("details") or doc.get("message"))
        return ""
    parts = []
    for e in errs:
        code = str(e.get("code", "unknown")).lower().replace("_", " ")
        parts.append(f"{code}: {e.get('message', '')}")
    if len(parts) == 1:
        return parts[0]
    return "errors:\n" + "\n".join(parts) + "\n"


def _hostname(domain: str) -> str:
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def is_insecure(domain: str, insecure: list[str] | None) -> bool:
    """Loopback always; else a `insecure-registries` entry: host, host:port or CIDR."""
    host = _hostname(domain)
    ip = None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost":
            return True
    if ip is not None and ip.is_loopback:
        return True
    for entry in insecure or []:
        entry = entry.strip()
        for prefix in ("http://", "https://"):
            entry = entry.removeprefix(prefix)
        entry = entry.rstrip("/")
        if entry in (domain, host):
            return True
        if "/" in entry and ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _certs_context(host: str) -> ssl.SSLContext | None:
    for base in ("/etc/hatoba/certs.d", "/etc/docker/certs.d"):
        d = os.path.join(base, host)
        if os.path.isdir(d):
            ctx = ssl.create_default_context()
            for name in sorted(os.listdir(d)):
                if name.endswith(".crt"):
                    ctx.load_verify_locations(os.path.join(d, name))
            for name in sorted(os.listdir(d)):
                if name.endswith(".cert") and os.path.exists(os.path.join(d, name[:-5] + ".key")):
                    ctx.load_cert_chain(os.path.join(d, name), os.path.join(d, name[:-5] + ".key"))
            return ctx
    return None


class Endpoint:
    """A base URL to talk to and how to talk TLS with it."""

    def __init__(self, base: str, ssl_opt: Any, mirror: bool = False):
        self.base = base.rstrip("/")
        self.ssl = ssl_opt
        self.mirror = mirror

    def __repr__(self) -> str:
        return f"Endpoint({self.base})"


class Registry:
    """Requests to one registry (one domain), as one user, for one repository's scopes."""

    def __init__(self, service: RegistryState, session: aiohttp.ClientSession, domain: str, auth: AuthConfig | None,
                 endpoint: Endpoint, repo: str = "", actions: str = "pull"):
        self.service = service
        self.session = session
        self.domain = domain
        self.auth = auth or AuthConfig()
        self.endpoint = endpoint
        self.repo = repo
        self.scopes = [f"repository:{repo}:{actions}"] if repo else []

    @property
    def base(self) -> str:
        return self.endpoint.base

    # ---- plumbing ------------------------------------------------------------------------------
    def url(self, path: str) -> URL:
        if path.startswith(("http://", "https://")):
            return URL(path, encoded=True)
        return URL(self.base + path, encoded=True)

    async def challenges(self) -> list[Challenge]:
        cached = self.service.challenges.get(self.base)
        if cached is not None:
            return cached
        url = self.url("/v2/")
        try:
            async with self.session.get(url, ssl=self.endpoint.ssl, headers={"User-Agent": USER_AGENT}) as r:
                await r.read()
                chs = parse_challenges(r.headers.getall("WWW-Authenticate", [])) if r.status == 401 else []
        except (TimeoutError, aiohttp.ClientError) as e:
            raise RegistryError(f'Get "{url}": {describe(e, url)}') from None
        self.service.challenges[self.base] = chs
        return chs

    def _basic(self) -> str | None:
        if self.auth.username or self.auth.password:
            raw = f"{self.auth.username}:{self.auth.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    async def _token(self, ch: Challenge, scopes: list[str]) -> str:
        if self.auth.registrytoken:
            return self.auth.registrytoken
        realm = ch.params.get("realm", "")
        service = ch.params.get("service", "")
        scopes = sorted(set(scopes) | set(filter(None, ch.params.get("scope", "").split(" "))))
        key = (realm, service, " ".join(scopes), self.auth.username or ("<token>" if self.auth.identitytoken else ""))
        tok = self.service.tokens.get(key)
        if tok:
            return tok
        doc = await fetch_token(self.session, realm, service, scopes, self.auth, ssl_opt=self.endpoint.ssl)
        token = doc.get("token") or doc.get("access_token") or ""
        self.service.tokens.put(key, token, doc.get("expires_in"))
        return token

    async def _authorization(self, method: str, url: URL, scopes: list[str]) -> str | None:
        chs = await self.challenges()
        for ch in chs:
            if ch.scheme == "bearer":
                return "Bearer " + await self._token(ch, scopes)
        for ch in chs:
            if ch.scheme == "basic":
                basic = self._basic()
                if basic is None:
                    raise RegistryError(f'{_go_method(method)} "{url}": no basic auth credentials')
                return basic
        return None

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, data: Any = None,
                      scopes: list[str] | None = None, expect: tuple[int, ...] = (200,), what: str = "",
                      params: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """Send one request with auth; returns the response (status in `expect`) or raises RegistryError."""
        url = self.url(path)
        if params:
            url = url.update_query(params)
        scopes = scopes if scopes is not None else self.scopes
        retried = False
        while True:
            h = {"User-Agent": USER_AGENT}
            if headers:
                h.update(headers)
            authz = await self._authorization(method, url, scopes)
            if authz:
                h["Authorization"] = authz
            try:
                resp = await self.session.request(method, url, headers=h, data=data, ssl=self.endpoint.ssl)
            except _RETRYABLE + (aiohttp.ClientError,) as e:
                raise RegistryError(f'{_go_method(method)} "{url}": {describe(e, url)}') from e
            if resp.status == 401 and not retried and (data is None or isinstance(data, bytes)):
                chs = parse_challenges(resp.headers.getall("WWW-Authenticate", []))
                if chs and any(c.scheme == "bearer" for c in chs):
                    bearer = next(c for c in chs if c.scheme == "bearer")
                    old = self.service.challenges.get(self.base) or []
                    if not any(c.scheme == "bearer" for c in old) or bearer.params.get("scope"):
                        self.service.challenges[self.base] = [bearer]
                        extra = [s for s in bearer.params.get("scope", "").split(" ") if s]
                        scopes = sorted(set(scopes) | set(extra))
                        resp.release()
                        retried = True
                        continue
                elif chs and not (self.service.challenges.get(self.base) or []):
                    self.service.challenges[self.base] = chs
                    resp.release()
                    retried = True
                    continue
            if resp.status in expect:
                return resp
            body = await resp.read() if method != "HEAD" else b""
            resp.release()
            raise self._error(method, url, resp, body, what)

    def _error(self, method: str, url: URL, resp: aiohttp.ClientResponse, body: bytes, what: str) -> RegistryError:
        detail = registry_errors(body)
        st = resp.status
        if st == 401:
            msg = detail or "unauthorized: authentication required"
            if self.auth.empty and not what:
                return RegistryError(f'{_go_method(method)} "{url}": {msg}', 500, st)
            return RegistryError(msg, 500, st)
        if st == 404:
            msg = f"{what}: {detail}" if what and detail else (what or detail or f"{url}: not found")
            return RegistryError(msg, 404, st)
        if not detail:
            detail = f"received unexpected HTTP status: {st} {resp.reason}"
        return RegistryError(f"{what}: {detail}" if what else detail, 500, st)

    # ---- manifests -----------------------------------------------------------------------------
    async def head_manifest(self, reference: str, accept: list[str]) -> str | None:
        """The digest a tag points to (HEAD, as dockerd does first), or None when the registry will not say."""
        try:
            resp = await self.request("HEAD", f"/v2/{self.repo}/manifests/{reference}",
                                      headers={"Accept": ", ".join(accept)})
        except RegistryError as e:
            if e.registry_status and e.registry_status not in (401, 403):
                return None  # the GET that follows gives the registry's own error text
            raise
        resp.release()
        d = resp.headers.get("Docker-Content-Digest", "")
        return d if d.startswith("sha256:") and len(d) == 71 else None

    async def get_manifest(self, reference: str, accept: list[str]) -> tuple[bytes, str, str]:
        """(body, content type, digest) of a manifest by tag or digest; the digest is verified."""
        what = f"manifest for {self.domain}/{self.repo}:{reference}" if not reference.startswith("sha256:") \
            else f"manifest for {self.domain}/{self.repo}@{reference}"
        if self.domain == DOCKER_HUB:
            what = what.replace(f"{DOCKER_HUB}/", "", 1)
        resp = await self.request("GET", f"/v2/{self.repo}/manifests/{reference}",
                                  headers={"Accept": ", ".join(accept)}, what=what + " not found")
        async with resp:
            body = await resp.read()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"manifest verification failed for digest {reference}")
        return body, resp.headers.get("Content-Type", ""), digest

    async def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        resp = await self.request("PUT", f"/v2/{self.repo}/manifests/{reference}", data=body,
                                  headers={"Content-Type": media_type}, expect=(200, 201, 202))
        async with resp:
            await resp.read()
        return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()

    async def tags(self) -> list[str]:
        out: list[str] = []
        path: str | None = f"/v2/{self.repo}/tags/list?n=1000"
        while path:
            resp = await self.request("GET", path, what=f"repository {self.domain}/{self.repo} not found")
            async with resp:
                doc = await resp.json(content_type=None)
            out.extend(doc.get("tags") or [])
            path = _next_link(resp)
        return out

    async def catalog(self) -> list[str]:
        out: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            resp = await self.request("GET", path, scopes=["registry:catalog:*"])
            async with resp:
                doc = await resp.json(content_type=None)
            out.extend(doc.get("repositories") or [])
            path = _next_link(resp)
        return out

    # ---- blobs ---------------------------------------------------------------------------------
    async def blob_size(self, digest: str, repo: str | None = None) -> int | None:
        """HEAD a blob: its size, or None when the repository does not have it."""
        repo = repo or self.repo
        resp = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}", expect=(200, 404),
                                  scopes=[f"repository:{repo}:pull"] + self.scopes)
        resp.release()
        if resp.status == 404:
            return None
        return int(resp.headers.get("Content-Length") or -1)

    async def get_blob_bytes(self, digest: str, limit: int = 64 << 20) -> bytes:
        resp = await self.request("GET", f"/v2/{self.repo}/blobs/{digest}", what=f"blob {digest} not found")
        buf = bytearray()
        async with resp:
            async for chunk in resp.content.iter_chunked(1 << 20):
                buf += chunk
                if len(buf) > limit:
                    break
        data = bytes(buf)
        if len(data) > limit:
            raise RegistryError(f"blob {digest} is too large")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise RegistryError(f"digest mismatch for {digest}: got {got}")
        return data

    async def download(self, digest: str, path: str, on_data: Callable[[int], None],
                       on_restart: Callable[[], None] | None = None, attempts: int = 6) -> tuple[str, int]:
        """GET a blob into `path`, resuming with Range after a dropped connection; returns (sha256, size).

        `on_data(n)` is called once `n` more bytes are in the file; `on_restart()` after the file
        was emptied because the registry would not resume."""
        h = hashlib.sha256()
        size = 0
        failures = 0
        with open(path, "wb") as f:
            while True:
                headers = {"Range": f"bytes={size}-"} if size else {}
                try:
                    resp = await self.request("GET", f"/v2/{self.repo}/blobs/{digest}", headers=headers,
                                              expect=(200, 206), what=f"blob {digest} not found")
                    async with resp:
                        if size and (resp.status != 206 or not resp.headers.get("Content-Range", "")
                                     .startswith(f"bytes {size}-")):
                            f.seek(0)
                            f.truncate()
                            h, size = hashlib.sha256(), 0
                            if on_restart:
                                on_restart()
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            f.write(chunk)
                            f.flush()  # on_data may hand the bytes to a reader of the file at once
                            h.update(chunk)
                            size += len(chunk)
                            on_data(len(chunk))
                        if resp.content.exception() is not None:
                            raise resp.content.exception()  # type: ignore[misc]
                        cl = resp.headers.get("Content-Length")
                        if resp.status == 200 and cl is not None and size != int(cl):
                            raise aiohttp.ClientPayloadError("short read")
                    break
                except _RETRYABLE + (RegistryError,) as e:
                    if isinstance(e, RegistryError) and not isinstance(e.__cause__, _RETRYABLE):
                        raise
                    failures += 1
                    if failures >= attempts:
                        raise RegistryError(f"failed to download {digest}: {describe(e, '')}") from None
                    await asyncio.sleep(min(0.1 * 2 ** failures, 2.0))
        return "sha256:" + h.hexdigest(), size

    async def mount(self, digest: str, from_repo: str) -> tuple[bool, str | None]:
        """Cross-repository mount: (True, None) when mounted, else (False, upload location)."""
        resp = await self.request("POST", f"/v2/{self.repo}/blobs/uploads/",
                                  params={"mount": digest, "from": from_repo}, expect=(201, 202),
                                  scopes=self.scopes + [f"repository:{from_repo}:pull"])
        resp.release()
        if resp.status == 201:
            return True, None
        return False, resp.headers.get("Location")

    async def start_upload(self) -> str:
        resp = await self.request("POST", f"/v2/{self.repo}/blobs/uploads/", expect=(202,))
        resp.release()
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError("registry did not give an upload location")
        return loc

    def _loc(self, loc: str) -> str:
        if loc.startswith(("http://", "https://")):
            return loc
        return self.base + (loc if loc.startswith("/") else "/" + loc)

    async def upload(self, loc: str, digest: str, size: int, chunks: Callable[[], AsyncIterator[bytes]],
                     mode: str = "stream", chunk_size: int = 8 << 20,
                     read_range: Callable[[int, int], bytes] | None = None) -> None:
        """Upload a blob into the session at `loc`.

        mode "monolithic": one PUT ?digest= with the body; "stream": one PATCH with a chunked body,
        then PUT ?digest= (as dockerd); "chunked": PATCHes of `chunk_size` with Content-Range."""
        loc = self._loc(loc)
        if mode == "monolithic" and read_range is not None:
            url = URL(loc, encoded=True).update_query({"digest": digest})
            body = await asyncio.to_thread(read_range, 0, size)
            resp = await self.request("PUT", str(url), data=body, expect=(201, 204),
                                      headers={"Content-Type": "application/octet-stream"})
            resp.release()
            return
        if mode == "chunked" and read_range is not None:
            off = 0
            while off < size:
                n = min(chunk_size, size - off)
                data = await asyncio.to_thread(read_range, off, n)
                resp = await self.request("PATCH", loc, data=data, expect=(202,),
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Range": f"{off}-{off + n - 1}",
                                                   "Content-Length": str(n)})
                resp.release()
                loc = self._loc(resp.headers.get("Location") or loc)
                off += n
        else:
            resp = await self.request("PATCH", loc, data=chunks(), expect=(202, 204),
                                      headers={"Content-Type": "application/octet-stream"})
            resp.release()
            loc = self._loc(resp.headers.get("Location") or loc)
        url = URL(loc, encoded=True).update_query({"digest": digest})
        resp = await self.request("PUT", str(url), expect=(201, 204), headers={"Content-Length": "0"})
        resp.release()


def _next_link(resp: aiohttp.ClientResponse) -> str | None:
    link = resp.headers.get("Link", "")
    if 'rel="next"' not in link:
        return None
    target = link.split(";", 1)[0].strip().strip("<>")
    return target or None


async def fetch_token(session: aiohttp.ClientSession, realm: str, service: str, scopes: list[str],
                      auth: AuthConfig, *, ssl_opt: Any = None, offline: bool = False) -> dict:
    """A Bearer token from the challenge's realm (GET with Basic auth, or the OAuth2 refresh grant)."""
    if not realm:
        raise RegistryError("bearer auth challenge without a realm")
    headers = {"User-Agent": USER_AGENT}
    if auth.identitytoken:
        form = {"grant_type": "refresh_token", "refresh_token": auth.identitytoken, "service": service,
                "client_id": "hatoba", "scope": " ".join(scopes)}
        req = session.post(realm, data=form, headers=headers, ssl=_token_ssl(realm, ssl_opt))
    else:
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        if offline and auth.username:
            params += [("offline_token", "true"), ("client_id", "hatoba")]
        if auth.username or auth.password:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{auth.username}:{auth.password}".encode()).decode()
        req = session.get(URL(realm).update_query(params), headers=headers, ssl=_token_ssl(realm, ssl_opt))
    try:
        async with req as r:
            body = await r.read()
            if r.status != 200:
                detail = registry_errors(body) or f"{r.status} {r.reason}"
                raise RegistryError(f"unauthorized: {detail}" if r.status == 401 and "unauthorized" not in detail
                                    else detail, 500, r.status)
    except (TimeoutError, aiohttp.ClientError) as e:
        raise RegistryError(f'Get "{realm}": {describe(e, realm)}') from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"invalid token response from {realm}") from None
    if not (doc.get("token") or doc.get("access_token")):
        raise RegistryError(f"no token in the response of {realm}")
    doc.setdefault("issued_at", time.time())
    return doc


def _token_ssl(realm: str, ssl_opt: Any) -> Any:
    # a token server on loopback next to an insecure registry: same leniency as the registry
    host = URL(realm).host or ""
    if ssl_opt is False and is_insecure(host, []):
        return False
    return None


async def resolve_endpoint(service: RegistryState, session: aiohttp.ClientSession, domain: str) -> Endpoint:
    """The endpoint for `domain` (https, or http when an insecure registry does not speak TLS)."""
    host = HUB_REGISTRY if domain == DOCKER_HUB else domain
    cached = service.endpoints.get(host)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    insecure = is_insecure(host, service.insecure_registries)
    if not insecure:
        ep = Endpoint(f"https://{host}", _certs_context(host) or True)
    else:
        ep = Endpoint(f"https://{host}", False)
        url = f"https://{host}/v2/"
        try:
            async with session.get(url, ssl=False, headers={"User-Agent": USER_AGENT},
                                   timeout=aiohttp.ClientTimeout(total=15)) as r:
                await r.read()
                if r.status in (200, 401):
                    service.challenges[ep.base] = parse_challenges(
                        r.headers.getall("WWW-Authenticate", [])) if r.status == 401 else []
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError):
            ep = Endpoint(f"http://{host}", None)
    service.endpoints[host] = (ep, time.monotonic() + 60)
    return ep


def mirror_endpoints(service: RegistryState, domain: str) -> list[Endpoint]:
    if domain != DOCKER_HUB:
        return []
    out = []
    for m in service.registry_mirrors:
        m = m.rstrip("/")
        if "://" not in m:
            m = "https://" + m
        host = URL(m).host or ""
        secure = m.startswith("https://") and not is_insecure(host, service.insecure_registries)
        out.append(Endpoint(m, (_certs_context(host) or True) if secure else False, mirror=True))
    return out
