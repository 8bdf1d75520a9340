"""Registry credentials of the CLI, in the docker CLI's config file and credential helpers.

`$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): `auths.<server>.auth` is
base64(user:password) (plus `identitytoken` when the registry gave one); with `credsStore` or
`credHelpers.<server>` the secret goes to the `docker-credential-<name>` program instead (its
store/get/erase protocol on stdin/stdout) and `auths.<server>` is left as `{}`.
Docker Hub's key is `https://index.docker.io/v1/`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

INDEX_SERVER = "https://index.docker.io/v1/"
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def config_path() -> str:
    d = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def load() -> dict:
    try:
        with open(config_path()) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise OSError(f"loading config file {config_path()}: {e}") from None
    return doc if isinstance(doc, dict) else {}


def save(doc: dict) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def hostname(server: str) -> str:
    """`https://host:5000/v2/` → `host:5000` (the docker CLI's ConvertToHostname)."""
    s = server.strip()
    for p in ("https://", "http://"):
        s = s.removeprefix(p)
    return s.split("/", 1)[0]


def server_key(server: str | None) -> str:
    """The config key for a server given on the command line or a reference's registry domain."""
    if not server:
        return INDEX_SERVER
    h = hostname(server)
    if h in _HUB_NAMES or server == INDEX_SERVER:
        return INDEX_SERVER
    return h


def _helper_name(doc: dict, key: str) -> str | None:
    helpers = doc.get("credHelpers") or {}
    if key in helpers:
        return helpers[key]
    return doc.get("credsStore") or None


def _helper(name: str, action: str, data: str) -> str:
    try:
        p = subprocess.run([f"docker-credential-{name}", action], input=data.encode(), capture_output=True,
                           timeout=60)
    except FileNotFoundError:
        raise OSError(f"docker-credential-{name} not found in PATH") from None
    out = p.stdout.decode(errors="replace").strip()
    if p.returncode != 0:
        raise LookupError(out or p.stderr.decode(errors="replace").strip() or f"docker-credential-{name} failed")
    return out


def get(key: str) -> dict[str, str]:
    """{"username","password"} or {"username","identitytoken"} for a server key; {} when none."""
    doc = load()
    name = _helper_name(doc, key)
    if name:
        try:
            res = json.loads(_helper(name, "get", key) or "{}")
        except (LookupError, OSError, ValueError):
            return {}
        user, secret = res.get("Username", ""), res.get("Secret", "")
        if user == "<token>":
            return {"identitytoken": secret}
        return {"username": user, "password": secret} if user or secret else {}
    auths = doc.get("auths") or {}
    entry = auths.get(key)
    if entry is None:
        for k, v in auths.items():
            if server_key(k) == key:
                entry = v
                break
    if not entry:
        return {}
    out: dict[str, str] = {}
    if entry.get("auth"):
        try:
            user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, pw = "", ""
        out.update(username=user, password=pw)
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out


def store(key: str, username: str, password: str, identitytoken: str = "") -> bool:
    """Save credentials; returns True when they went to the config file unencrypted."""
    doc = load()
    name = _helper_name(doc, key)
    auths = doc.setdefault("auths", {})
    if name:
        secret_user = "<token>" if identitytoken else username
        _helper(name, "store", json.dumps({"ServerURL": key, "Username": secret_user,
                                           "Secret": identitytoken or password}))
        auths[key] = {}
        save(doc)
        return False
    entry: dict[str, str] = {"auth": base64.b64encode(f"{username}:{'' if identitytoken else password}".encode())
                             .decode()}
    if identitytoken:
        entry["identitytoken"] = identitytoken
    auths[key] = entry
    save(doc)
    return True


def erase(key: str) -> bool:
    """Forget the credentials of a server; False when there were none."""
    doc = load()
    auths = doc.get("auths") or {}
    found = False
    for k in list(auths):
        if k == key or server_key(k) == key:
            del auths[k]
            found = True
    name = _helper_name(doc, key)
    if name:
        try:
            _helper(name, "erase", key)
            found = True
        except (LookupError, OSError):
            pass
    if found:
        save(doc)
    return found


def registry_auth(domain: str) -> str:
    """The X-Registry-Auth header for a registry domain: base64url JSON, `e30=` for none."""
    key = server_key(domain)
    try:
        cred = get(key)
    except OSError:
        cred = {}
    if not cred:
        return "e30="
    doc = dict(cred)
    doc["serveraddress"] = key
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
