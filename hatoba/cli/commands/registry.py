"""Registry commands: pull, push, login, logout, search.

pull/push stream the daemon's progress (per-layer bars on a terminal, status lines otherwise, see
`hatoba.cli.jsonmessage`) and send `X-Registry-Auth` from the credentials `login` stored
(`hatoba.cli.credentials`). Output follows the docker CLI 28 (cli-traces 42 to 49).
"""

from __future__ import annotations

import json
import sys

from hatoba.cli import credentials
from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.client.http import APIError, quote_ref

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from typing import Any


def _parse_ref(name: str, default_tag: str | None = "latest") -> Any:
    from hatoba.errors import HatobaError
    from hatoba.images import reference

    try:
        return reference.parse(name, default_tag=default_tag)
    except HatobaError as e:
        raise StatusError(1, f"{e.message}" if "invalid reference format" in e.message else e.message) from None


def pull_stream(c: Any, ref: Any, *, all_tags: bool = False, platform: str | None = None) -> Any:
    """The daemon's pull stream for a parsed reference (fully qualified name, as the docker CLI sends)."""
    params: dict[str, Any] = {"fromImage": f"{ref.domain}/{ref.path}"}
    if ref.digest:
        params["tag"] = ref.digest
    elif not all_tags:
        params["tag"] = ref.tag or "latest"
    if platform:
        params["platform"] = platform
    return c.stream_json("POST", "/images/create", params,
                         headers={"X-Registry-Auth": credentials.registry_auth(ref.domain)})


def show_stream(stream: Any, out: Any, quiet: bool = False, aux: Any = None) -> None:
    from hatoba.cli.jsonmessage import StreamError, display

    try:
        if quiet:
            for m in stream:
                if m.get("error") or m.get("errorDetail"):
                    display([m], out, False)
                elif "aux" in m and aux is not None:
                    aux(m["aux"])
            return
        display(stream, out, None, aux)
    except StreamError as e:
        raise StatusError(1, e.message) from None


# ---------------------------------------------------------------------------------------------------------
# pull

PULL = Command("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", [
    Flag("all-tags", "a", "bool", help="Download all tagged images in the repository"),
    Flag("disable-content-trust", None, "bool", default=True, help="Skip image verification"),
    Flag("platform", None, "str", help="Set platform if server is multi-platform capable"),
    Flag("quiet", "q", "bool", help="Suppress verbose output"),
], min_args=1, max_args=1)


def cmd_pull(argv: list[str]) -> int:
    values, args = PULL.parse(argv)
    all_tags = bool(values["all_tags"])
    ref = _parse_ref(args[0], None if all_tags else "latest")
    if all_tags and (ref.tag or ref.digest):
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not all_tags and not ref.tag and not ref.digest:
        sys.stdout.write("Using default tag: latest\n")
    c = client()
    show_stream(pull_stream(c, ref, all_tags=all_tags, platform=values.get("platform")), sys.stdout,
                quiet=bool(values["quiet"]))
    full = f"{ref.domain}/{ref.path}"
    if ref.digest:
        full += f"@{ref.digest}"
    elif not all_tags:
        full += f":{ref.tag or 'latest'}"
    sys.stdout.write(full + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------
# push

PUSH = Command("push", "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry", [
    Flag("all-tags", "a", "bool", help="Push all tags of an image to the repository"),
    Flag("disable-content-trust", None, "bool", default=True, help="Skip image signing"),
    Flag("platform", None, "str", help="Push a platform-specific manifest as a single-platform image"),
    Flag("quiet", "q", "bool", help="Suppress verbose output"),
], min_args=1, max_args=1)


def cmd_push(argv: list[str]) -> int:
    values, args = PUSH.parse(argv)
    all_tags = bool(values["all_tags"])
    ref = _parse_ref(args[0], None)
    if ref.digest:
        raise StatusError(1, "cannot push a digest reference")
    if all_tags and ref.tag:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not all_tags and not ref.tag:
        sys.stdout.write("Using default tag: latest\n")
    params = {} if all_tags else {"tag": ref.tag or "latest"}
    c = client()
    stream = c.stream_json("POST", f"/images/{quote_ref(ref.repository)}/push", params,
                           headers={"X-Registry-Auth": credentials.registry_auth(ref.domain)})
    digests: list[str] = []
    show_stream(stream, sys.stdout, quiet=bool(values["quiet"]), aux=lambda a: digests.append(a.get("Digest", "")))
    if values["quiet"]:
        sys.stdout.write(f"{ref.repository}{'' if all_tags else ':' + (ref.tag or 'latest')}\n")
    return 0


# ---------------------------------------------------------------------------------------------------------
# login / logout

LOGIN = Command("login", "login [OPTIONS] [SERVER]",
                "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.", [
                    Flag("password", "p", "str", help="Password or Personal Access Token (PAT)"),
                    Flag("password-stdin", None, "bool", help="Take the Password or Personal Access Token (PAT) "
                                                              "from stdin"),
                    Flag("username", "u", "str", help="Username"),
                ], max_args=1)

_PLAINTEXT_WARNING = ("\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
                      "Configure a credential helper to remove this warning. See\n"
                      "https://docs.docker.com/go/credential-store/\n\n")


def _prompt(label: str, secret: bool = False) -> str:
    if not sys.stdin.isatty():
        raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
    if secret:
        import getpass

        return getpass.getpass(label)
    sys.stdout.write(label)
    sys.stdout.flush()
    return sys.stdin.readline().rstrip("\r\n")


def cmd_login(argv: list[str]) -> int:
    values, args = LOGIN.parse(argv)
    key = credentials.server_key(args[0] if args else None)
    user = values.get("username") or ""
    password = values.get("password") or ""
    if values["password_stdin"]:
        if password:
            raise StatusError(1, "--password and --password-stdin are mutually exclusive")
        if not user:
            raise StatusError(1, "Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n").strip("\n")
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    c = client()
    if not user and not password:
        stored = credentials.get(key)
        if stored:
            body = {"username": stored.get("username", ""), "password": stored.get("password", ""),
                    "serveraddress": key}
            if stored.get("identitytoken"):
                body["identitytoken"] = stored["identitytoken"]
            try:
                c.json("POST", "/auth", body=body)
                sys.stdout.write("Login Succeeded\n")
                return 0
            except APIError:
                pass
    if not user:
        user = _prompt("Username: ").strip()
        if not user:
            raise StatusError(1, "Error: Non-null Username Required")
    if not password:
        password = _prompt("Password: ", secret=True)
        if not password:
            raise StatusError(1, "Error: Password Required")
    res = c.json("POST", "/auth", body={"username": user, "password": password, "serveraddress": key}) or {}
    token = res.get("IdentityToken") or ""
    try:
        plaintext = credentials.store(key, user, password, token)
    except (OSError, LookupError) as e:
        raise StatusError(1, f"Error saving credentials: {e}") from None
    if plaintext:
        sys.stderr.write(_PLAINTEXT_WARNING.format(path=credentials.config_path()))
    sys.stdout.write((res.get("Status") or "Login Succeeded") + "\n")
    return 0


LOGOUT = Command("logout", "logout [SERVER]",
                 "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.", [],
                 max_args=1)


def cmd_logout(argv: list[str]) -> int:
    _, args = LOGOUT.parse(argv)
    key = credentials.server_key(args[0] if args else None)
    if not credentials.get(key) and not _has_entry(key):
        sys.stdout.write(f"Not logged in to {key}\n")
        return 0
    sys.stdout.write(f"Removing login credentials for {key}\n")
    try:
        credentials.erase(key)
    except OSError as e:
        sys.stderr.write(f"WARNING: could not erase credentials: {key}: {e}\n")
    return 0


def _has_entry(key: str) -> bool:
    try:
        auths = credentials.load().get("auths") or {}
    except OSError:
        return False
    return any(k == key or credentials.server_key(k) == key for k in auths)


# ---------------------------------------------------------------------------------------------------------
# search

SEARCH = Command("search", "search [OPTIONS] TERM", "Search Docker Hub for images", [
    Flag("filter", "f", "list", help="Filter output based on conditions provided"),
    Flag("format", None, "str", help="Pretty-print search using a Go template"),
    Flag("limit", None, "int", default=0, help="Max number of search results"),
    Flag("no-trunc", None, "bool", help="Don't truncate output"),
], min_args=1, max_args=1)

SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL",
                  "IsAutomated": "AUTOMATED"}
SEARCH_FORMAT = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"


def _ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def search_rows(results: list[dict[str, Any]], trunc: bool = True) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        desc = str(r.get("description") or "").replace("\n", " ").replace("\r", " ")
        if trunc:
            desc = _ellipsis(desc, 45)
        rows.append({"Name": r.get("name", ""), "Description": desc, "StarCount": str(r.get("star_count", 0)),
                     "IsOfficial": "[OK]" if r.get("is_official") else "",
                     "IsAutomated": "[OK]" if r.get("is_automated") else ""})
    return rows


def format_search(results: list[dict[str, Any]], fmt: str = "", trunc: bool = True) -> str:
    from hatoba.cli.output import render

    return render(fmt or SEARCH_FORMAT, search_rows(results, trunc), SEARCH_HEADERS, SEARCH_FORMAT)


def cmd_search(argv: list[str]) -> int:
    values, args = SEARCH.parse(argv)
    from hatoba.cli.commands.images import encode_filters, parse_filters

    filters = parse_filters(values["filter"], "search")
    term = args[0]
    domain = "docker.io"
    first, sep, _ = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain = first
    params: dict[str, Any] = {"term": term, "filters": encode_filters(filters)}
    if values["limit"]:
        params["limit"] = values["limit"]
    resp = client().request("GET", "/images/search", params,
                            headers={"X-Registry-Auth": credentials.registry_auth(domain)})
    results = json.loads(resp.read() or b"[]") or []
    fmt = values["format"] or ""
    if fmt == "table":
        fmt = SEARCH_FORMAT
    sys.stdout.write(format_search(results, fmt, trunc=not values["no_trunc"]))
    return 0
