"""`docker search` and `docker login` against a registry.

search: `TERM` asks Docker Hub's index (`/v1/search?q=TERM&n=LIMIT`); `host[:port]/TERM` asks that
registry's `/v1/search`, and when it only speaks v2 (CNCF distribution answers 404 there), matches
TERM against its `/v2/_catalog`. Results are Docker's (star_count, is_official, name,
is_automated, description), filtered by `stars`, `is-official` and `is-automated`.

login: dockerd's check. `GET /v2/` without credentials; a Basic challenge is answered with the
credentials, a Bearer one by asking the token realm (offline token, so the registry may hand
back a refresh token that the CLI stores as identity token), then `GET /v2/` with the token.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
from yarl import URL

from hatoba.distribution.auth import AuthConfig, parse_challenges
from hatoba.distribution.client import (
    DOCKER_HUB,
    HUB_INDEX,
    USER_AGENT,
    Registry,
    RegistryError,
    describe,
    fetch_token,
    is_insecure,
    resolve_endpoint,
)
from hatoba.distribution.service import Service
from hatoba.errors import InvalidParameter

INDEX_SERVER = "https://index.docker.io/v1/"


def registry_host(server: str) -> str:
    """`https://index.docker.io/v1/` → docker.io; `http://localhost:5000/` → localhost:5000."""
    s = server.strip()
    for p in ("https://", "http://"):
        s = s.removeprefix(p)
    s = s.split("/", 1)[0]
    if s in ("", "index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return DOCKER_HUB
    return s


def split_term(term: str) -> tuple[str, str]:
    """(registry domain, query) of a search term."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return registry_host(first), rest
    return DOCKER_HUB, term


def _bool(v: str, key: str) -> bool:
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise InvalidParameter(f"invalid filter '{key}={v}'")


async def search(svc: Service, term: str, limit: int | None, filters: dict[str, list[str]],
                 auth: AuthConfig | None) -> list[dict[str, Any]]:
    limit = 25 if limit is None else limit
    if limit < 1 or limit > 100:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
    for k in filters:
        if k not in ("stars", "is-official", "is-automated"):
            raise InvalidParameter(f"invalid filter '{k}'")
    domain, query = split_term(term)
    async with svc.session() as session:
        if domain == DOCKER_HUB:
            results = await _v1(session, f"https://{HUB_INDEX}", None, query, limit, auth)
        else:
            ep = await resolve_endpoint(svc, session, domain)
            results = None
            try:
                results = await _v1(session, ep.base, ep.ssl, query, limit, auth, missing_ok=True)
            except RegistryError:
                results = None
            if results is None:
                reg = Registry(svc, session, domain, auth, ep)
                repos = await reg.catalog()
                q = query.lower()
                results = [{"star_count": 0, "is_official": False, "name": f"{domain}/{r}", "is_automated": False,
                            "description": ""} for r in repos if q in r.lower()]
    out = []
    for r in results:
        if "stars" in filters:
            try:
                if int(r.get("star_count", 0)) < max(int(x) for x in filters["stars"]):
                    continue
            except ValueError:
                raise InvalidParameter(f"invalid filter 'stars={filters['stars'][0]}'") from None
        if "is-official" in filters and bool(r.get("is_official")) != _bool(filters["is-official"][0], "is-official"):
            continue
        if "is-automated" in filters and bool(r.get("is_automated")) != _bool(filters["is-automated"][0],
                                                                              "is-automated"):
            continue
        out.append({"star_count": int(r.get("star_count", 0) or 0), "is_official": bool(r.get("is_official")),
                    "name": str(r.get("name", "")), "is_automated": bool(r.get("is_automated")),
                    "description": str(r.get("description", "") or "")})
    return out[:limit]


async def _v1(session: aiohttp.ClientSession, base: str, ssl_opt: Any, query: str, limit: int,
              auth: AuthConfig | None, missing_ok: bool = False) -> list[dict] | None:
    url = URL(f"{base}/v1/search").with_query({"q": query, "n": str(limit)})
    headers = {"User-Agent": USER_AGENT}
    if auth and (auth.username or auth.password):
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    try:
        async with session.get(url, headers=headers, ssl=ssl_opt) as r:
            body = await r.read()
            if r.status in (404, 405) and missing_ok:
                return None
            if r.status != 200:
                raise RegistryError(f"Unexpected status code {r.status}")
    except (aiohttp.ClientError, TimeoutError) as e:
        raise RegistryError(f'Get "{url}": {describe(e, url)}') from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"invalid search response from {base}") from None
    return list(doc.get("results") or [])


async def login(svc: Service, auth: AuthConfig) -> dict[str, str]:
    """Check the credentials; `{"IdentityToken": …, "Status": "Login Succeeded"}` or RegistryError."""
    domain = registry_host(auth.serveraddress or INDEX_SERVER)
    async with svc.session() as session:
        svc.endpoints.pop(domain, None)
        ep = await resolve_endpoint(svc, session, domain)
        url = f"{ep.base}/v2/"

        async def get(authz: str | None) -> aiohttp.ClientResponse:
            h = {"User-Agent": USER_AGENT}
            if authz:
                h["Authorization"] = authz
            try:
                async with session.get(url, headers=h, ssl=ep.ssl) as r:
                    await r.read()
                    return r
            except (aiohttp.ClientError, TimeoutError) as e:
                raise RegistryError(f'Get "{url}": {describe(e, url)}') from None

        def failed(r: Any) -> RegistryError:
            return RegistryError(f"login attempt to {url} failed with status: {r.status} {r.reason}")

        r = await get(None)
        if r.status == 200:
            return {"IdentityToken": "", "Status": "Login Succeeded"}
        if r.status != 401:
            raise failed(r)
        chs = parse_challenges(r.headers.getall("WWW-Authenticate", []))
        svc.challenges[ep.base] = chs
        bearer = next((c for c in chs if c.scheme == "bearer"), None)
        identity = ""
        if bearer is not None:
            try:
                doc = await fetch_token(session, bearer.params.get("realm", ""), bearer.params.get("service", ""),
                                        [], auth, ssl_opt=ep.ssl, offline=True)
            except RegistryError as e:
                if e.registry_status in (401, 403):
                    raise RegistryError(f"login attempt to {url} failed with status: {e.registry_status} "
                                        f"{'Unauthorized' if e.registry_status == 401 else 'Forbidden'}") from None
                raise
            identity = doc.get("refresh_token") or ""
            r = await get("Bearer " + (doc.get("token") or doc.get("access_token")))
        else:
                r = await get("Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode())
        if r.status != 200:
            raise failed(r)
        svc.tokens.clear()
        return {"IdentityToken": identity, "Status": "Login Succeeded"}


__all__ = ["INDEX_SERVER", "is_insecure", "login", "registry_host", "search", "split_term"]
