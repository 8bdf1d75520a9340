"""Registry credentials and auth challenges.

- `AuthConfig` is what the docker CLI sends base64url-encoded in `X-Registry-Auth` (and as the
  body of `POST /auth`): username/password, or an identity token, or a registry token.
- `parse_challenges` reads `WWW-Authenticate` headers (`Basic realm=…`, `Bearer realm=…,service=…,
  scope=…`, several challenges per header allowed).
- `TokenCache` keeps Bearer tokens per (realm, service, scope, user) until shortly before expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field

from hatoba.errors import InvalidParameter


@dataclass
class AuthConfig:
    username: str = ""
    password: str = ""
    identitytoken: str = ""
    registrytoken: str = ""
    serveraddress: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identitytoken or self.registrytoken)

    @classmethod
    def from_dict(cls, d: dict) -> AuthConfig:
        d = {str(k).lower(): v for k, v in (d or {}).items() if isinstance(v, str)}
        cfg = cls(username=d.get("username", ""), password=d.get("password", ""),
                  identitytoken=d.get("identitytoken", ""), registrytoken=d.get("registrytoken", ""),
                  serveraddress=d.get("serveraddress", ""))
        if not cfg.username and d.get("auth"):
            try:
                user, _, pw = base64.b64decode(d["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, pw = "", ""
            cfg.username, cfg.password = user, pw
        return cfg


def decode_registry_auth(header: str | None) -> AuthConfig:
    """`X-Registry-Auth`: base64url (padded or not) of a JSON AuthConfig; `e30=` or nothing is anonymous."""
    if not header or not header.strip():
        return AuthConfig()
    raw = header.strip()
    raw += "=" * (-len(raw) % 4)
    try:
        data = base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_"))
        doc = json.loads(data)
    except (binascii.Error, ValueError) as e:
        raise InvalidParameter(f"invalid X-Registry-Auth header: {e}") from None
    return AuthConfig.from_dict(doc if isinstance(doc, dict) else {})


def encode_registry_auth(cfg: AuthConfig | dict) -> str:
    d = cfg if isinstance(cfg, dict) else {k: v for k, v in cfg.__dict__.items() if v}
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode()


@dataclass
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _token(s: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] not in " \t,=\"":
        j += 1
    return s[i:j], j


def _quoted(s: str, i: int) -> tuple[str, int]:
    # s[i] == '"'
    out = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def parse_challenges(headers: list[str] | str) -> list[Challenge]:
    """All challenges of one or more `WWW-Authenticate` header values, in order."""
    if isinstance(headers, str):
        headers = [headers]
    out: list[Challenge] = []
    for h in headers:
        i, n = 0, len(h)
        cur: Challenge | None = None
        while i < n:
            i = _skip_ws(h, i)
            if i < n and h[i] == ",":
                i += 1
                continue
            name, j = _token(h, i)
            if not name:
                i = j + 1
                continue
            k = _skip_ws(h, j)
            if k < n and h[k] == "=" and cur is not None:
                k = _skip_ws(h, k + 1)
                if k < n and h[k] == '"':
                    value, i = _quoted(h, k)
                else:
                    value, i = _token(h, k)
                    # token68 values may end in "=" padding
                    while i < n and h[i] == "=":
                        value += "="
                        i += 1
                cur.params[name.lower()] = value
            else:
                cur = Challenge(name.lower())
                out.append(cur)
                i = j
    return out


class TokenCache:
    """Bearer tokens by (realm, service, scope, user); a token is reused until 10 s before expiry."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        hit = self._tokens.get(key)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        self._tokens.pop(key, None)
        return None

    def put(self, key: tuple[str, str, str, str], token: str, expires_in: float | None) -> None:
        ttl = expires_in if expires_in and expires_in > 0 else 60.0
        self._tokens[key] = (token, time.monotonic() + max(ttl - 10.0, 1.0))

    def clear(self) -> None:
        self._tokens.clear()
