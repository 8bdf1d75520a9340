"""The CLI's fast start-up path: the `site`-less launcher, what `ps`/`version` import, and the
stdlib replacements on that path (fastjson, the `{{.Field}}` table renderer, query strings) giving
the same results as the modules they stand in for."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from urllib.parse import quote, urlencode

import pytest

from hatoba.cli import gotemplate, launcher
from hatoba.cli.output import render
from hatoba.client import fastjson
from hatoba.client.http import _q, getenv, quote_ref

ROOT = launcher.package_root()
HEAVY = ("re", "os", "socket", "json", "typing", "collections", "enum", "urllib.parse", "email", "threading",
         "signal", "importlib", "hatoba.cli.gotemplate", "warnings")

# ---- fastjson == json ------------------------------------------------------------------------------------

DOCS = ['{"a": [1, 2.5, -3e10, true, false, null, "x\\u00e9\\ud83d\\ude00"], "b": {}}', " [] ", '"s"', "1",
        "NaN", '{"a":1}\n', b'{"x": "\xc3\xa9"}', b"\xef\xbb\xbf{}", '{"a":1}'.encode("utf-16"), "1e400",
        '{"a": {"b": [{"c": null}]}}', "-Infinity"]
BAD = ["\ufeff{}", '{"a":1} x', "", "{", "[1,]", '{"a" 1}', "123abc", '"\x01"', b"\xff"]


@pytest.mark.parametrize("doc", DOCS)
def test_fastjson_loads_like_json(doc: str | bytes) -> None:
    assert repr(fastjson.loads(doc)) == repr(json.loads(doc))


@pytest.mark.parametrize("doc", BAD)
def test_fastjson_errors_like_json(doc: str | bytes) -> None:
    with pytest.raises(ValueError) as want:
        json.loads(doc)
    with pytest.raises(ValueError) as got:
        fastjson.loads(doc)
    assert (type(got.value), str(got.value)) == (type(want.value), str(want.value))


OBJS = [{"a": [1, 2.5, float("inf"), None, True, "é😀<>&\n"], "z": {"k": 1}, "b": 2}, "é", 1, [], {}, 1.0,
        10**20, -0.0, {1: 2, 2.5: 5}, {None: 1}]
KWARGS = [{}, {"ensure_ascii": False}, {"separators": (",", ":")}, {"sort_keys": True}, {"indent": 4},
          {"separators": (",", ":"), "ensure_ascii": False, "sort_keys": True}]


@pytest.mark.parametrize("kw", KWARGS)
@pytest.mark.parametrize("obj", OBJS)
def test_fastjson_dumps_like_json(obj: object, kw: dict) -> None:
    assert fastjson.dumps(obj, **kw) == json.dumps(obj, **kw)


@pytest.mark.parametrize("obj", [{1j: 1}, [object()], {(1,): 2}])
def test_fastjson_dumps_errors_like_json(obj: object) -> None:
    with pytest.raises(TypeError) as want:
        json.dumps(obj)
    with pytest.raises(TypeError) as got:
        fastjson.dumps(obj)
    assert str(got.value) == str(want.value)


def test_fastjson_circular_reference() -> None:
    a: list = []
    a.append(a)
    with pytest.raises(ValueError, match="Circular reference detected"):
        fastjson.dumps(a)
    assert fastjson.dumps([1]) == "[1]"  # no state left behind


# ---- the `{{.Field}}` renderer == the template engine ------------------------------------------------

ITEMS = [{"ID": "abc", "Name": "n1", "Size": "1 MB", "Empty": ""}, {"ID": "d\tef", "Name": "ü", "Size": "", "Empty": ""}]
HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Size": "SIZE", "Empty": "EMPTY"}


@pytest.mark.parametrize("fmt", [
    "table {{.ID}}\t{{.Name}}\t{{.Size}}", "table {{.ID}}\\t{{ .Name }}", "{{.ID}}", "x{{.ID}}y {{.Name}}}}z",
    "table {{.Empty}}\t{{.ID}}", "{{.Missing}}", "{{ .ID}}", "{{.ID | printf \"%q\"}}", "{{json .}}",
    "{{- .ID}}", "table {{.ID}}\\n{{.Name}}", "plain text", "{{.Nested.X}}", "{{ .ID\t}}",
])
def test_render_fields_like_gotemplate(fmt: str) -> None:
    from hatoba.cli import output

    is_table, body = output.split_table(fmt)
    tmpl = gotemplate.parse(body)
    lines = ([tmpl.execute(HEADERS)] if is_table else []) + [tmpl.execute(i) for i in ITEMS]
    if is_table:
        from hatoba.cli.output import tabwrite

        want = tabwrite([ln.split("\t") for ln in "\n".join(lines).split("\n")])
    else:
        want = "".join(line + "\n" for line in lines)
    assert render(fmt, ITEMS, HEADERS, "") == want


def test_render_non_string_values_use_the_engine() -> None:
    items = [{"ID": 12, "Name": None, "L": ["a"]}]
    assert render("{{.ID}} {{.Name}} {{.L}}", items, {}, "") == "12 <nil> [a]\n"


def test_render_bad_template_is_the_engines_error() -> None:
    with pytest.raises(gotemplate.TemplateError, match="unclosed action"):
        render("{{.ID}} {{", ITEMS, HEADERS, "")


# ---- query strings and refs == urllib.parse ----------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"all": 1, "limit": None, "size": True, "x": False}, {"filters": '{"label":{"a=b":true}}'},
    {"t": ["a b", "c/d", "é"]}, {"name": "my_name-1.2~"}, {"since": "2024-01-01T00:00:00Z"}, {}, {"a": None},
])
def test_query_like_urlencode(params: dict) -> None:
    items = []
    for k, v in params.items():
        if v is None:
            continue
        v = ("1" if v else "0") if isinstance(v, bool) else v
        items += [(k, str(x)) for x in v] if isinstance(v, list) else [(k, str(v))]
    assert _q(params) == ("?" + urlencode(items) if items else "")


@pytest.mark.parametrize("ref", ["busybox", "localhost:5000/a/b:tag", "a@sha256:00ff", "x y", "é", "a?b#c"])
def test_quote_ref_like_quote(ref: str) -> None:
    assert quote_ref(ref) == quote(ref, safe="/:@")


def test_getenv_sees_os_environ_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATOBA_TEST_GETENV", "v1")
    assert getenv("HATOBA_TEST_GETENV") == "v1"
    assert getenv("HATOBA_TEST_GETENV_UNSET") is None


# ---- the launcher and what the fast commands import -----------------------------------------------------

class _StubDaemon:
    """A unix socket answering every request with one canned JSON body (and recording the paths)."""

    def __init__(self, path: str, bodies: dict[str, bytes]):
        self.bodies, self.paths = bodies, []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while True:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    path = head.split(b" ")[1].decode().split("?")[0]
                    self.paths.append(path)
                    body = next((b for p, b in self.bodies.items() if path.endswith(p)), b"{}")
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def close(self) -> None:
        self.srv.close()


VERSION = {"Version": "0.1.0", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
           "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {"ApiVersion": "1.41"}}]}
CONTAINER = {"Id": "a" * 64, "Names": ["/n"], "Image": "busybox", "Command": "sleep 1", "Created": 0,
             "State": "running", "Status": "Up 1 second", "Ports": [], "Labels": {}}


@pytest.fixture
def stub(tmp_path):  # type: ignore[no-untyped-def]
    d = _StubDaemon(str(tmp_path / "d.sock"), {"/version": json.dumps(VERSION).encode(),
                                               "/containers/json": json.dumps([CONTAINER]).encode()})
    yield d
    d.close()


def test_launcher_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "hatoba"
    dest.write_text("old console script")
    launcher.write(str(dest), python="/opt/py/bin/python3", path="/x/site-packages")
    text = dest.read_text()
    assert text.startswith("#!/opt/py/bin/python3 -sSP\n")
    assert "sys.path.append('/x/site-packages')" in text
    assert os.stat(dest).st_mode & 0o777 == 0o755
    with pytest.raises(ValueError):
        launcher.render(python="/path with space/python")


@pytest.mark.parametrize("argv,want", [(["version"], "Server:"), (["ps", "-a"], "CONTAINER ID"),
                                       (["-v"], "hatoba version"), (["--help"], "Usage:  hatoba")])
def test_launcher_runs_commands_without_heavy_imports(tmp_path, stub, argv, want) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "hatoba"
    launcher.write(str(dest), python=sys.executable, path=ROOT)
    # the same program, reporting the modules it ended with (it leaves through posix._exit)
    probe = tmp_path / "probe"
    text = dest.read_text().replace(
        "from hatoba.cli.main import main\n",
        "from hatoba.cli.main import main\nimport posix\n"
        "_real_exit = posix._exit\n"
        "def _exit(rc):\n"
        "    sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n'); sys.stderr.flush(); _real_exit(rc)\n"
        "posix._exit = _exit\n")
    probe.write_text(text)
    probe.chmod(0o755)
    env = dict(os.environ, HATOBA_HOST=f"unix://{stub.srv.getsockname()}")
    env.pop("DOCKER_HOST", None)
    for prog in (dest, probe):
        p = subprocess.run([str(prog), *argv], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        assert want in p.stdout
    if argv[0] in ("version", "ps"):
        mods = set(next(ln for ln in p.stderr.splitlines() if ln.startswith("MODULES ")).split()[1:])
        assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
        assert "site" not in mods


@pytest.mark.parametrize("module", ["hatoba.cli.commands.run", "hatoba.cli.commands.containers",
                                    "hatoba.cli.commands.system", "hatoba.cli.output", "hatoba.client.http"])
def test_command_modules_import_light(module: str) -> None:
    """`exec ID cmd`, `logs`, `ps`, `version`: their modules load none of the costly standard modules."""
    code = (f"import sys; sys.path.append({ROOT!r}); import {module}; "
            f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-sSP", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_launcher_main(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "hatoba"
    assert launcher.main(["--python", "/opt/x/python3", str(dest)]) == 0
    assert dest.read_text().startswith("#!/opt/x/python3 -sSP\n")
    assert launcher.main([]) == 2
