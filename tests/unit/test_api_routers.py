"""The API routers against fake backends: parsing, serialisation and error mapping, no engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hatoba.api.server import make_app
from hatoba.engine.logs import LogOptions
from hatoba.errors import Conflict, InvalidParameter, NotFound
from hatoba.runtime.logs import LogRecord, render


class Obj:
    def __init__(self, **kw: Any):
        self.__dict__.update(kw)


class FakeContainers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def create(self, body: dict, name: str | None) -> tuple[Any, list[str]]:
        self.calls.append(("create", (body, name)))
        if body.get("Image") == "missing":
            raise NotFound("No such image: missing")
        return Obj(id="c" * 64), ["w"]

    def list(self, *, all_: bool, limit: int, size: bool, filters: dict) -> list[dict]:
        self.calls.append(("list", (all_, limit, size, filters)))
        return [{"Id": "x"}]

    def inspect(self, ref: str, size: bool = False) -> dict:
        if ref == "boom":
            raise RuntimeError("/var/lib/hatoba/secret/path exploded")
        if ref != "c1":
            raise NotFound(f"No such container: {ref}")
        return {"Id": ref, "Name": "<&>"}

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        self.calls.append(("stop", (ref, timeout, sig)))

    async def start(self, ref: str) -> None:
        raise Conflict("cannot start a paused container, try unpause instead")

    def wait(self, ref: str, condition: str) -> asyncio.Future:
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f'invalid condition: "{condition}"')
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(3)
        return fut

    async def logs(self, ref: str, opts: LogOptions) -> AsyncIterator[bytes]:
        self.calls.append(("logs", opts))

        async def gen() -> AsyncIterator[bytes]:
            yield render(LogRecord(1_000_000_000, "stdout", b"a\n"), timestamps=opts.timestamps, tty=False)
            yield render(LogRecord(2_000_000_000, "stderr", b"b\n"), timestamps=opts.timestamps, tty=False)

        return gen()


class FakeSystem:
    def version(self) -> dict:
        return {"ApiVersion": "1.41"}

    def events(self, *, since: float | None, until: float | None, filters: dict) -> AsyncIterator[dict]:
        async def gen() -> AsyncIterator[dict]:
            yield {"Type": "container", "since": since, "until": until}

        return gen()


class FakeImages:
    def list(self, *, all_: bool, filters: dict) -> list[dict]:
        return [{"all": all_, "filters": filters}]

    def delete(self, name: str, *, force: bool) -> list[dict]:
        return [{"Untagged": name}]


class FakeExecs:
    def create(self, ref: str, body: dict) -> str:
        return "e1"

    async def start(self, eid: str, *, detach: bool, tty: bool | None, upgrade: Any = None) -> Any:
        assert detach
        return None


def run(coro_fn: Any) -> Any:
    async def main() -> Any:
        backends = {"containers": FakeContainers(), "system": FakeSystem(), "images": FakeImages(),
                    "execs": FakeExecs()}
        client = TestClient(TestServer(make_app(**backends)))
        await client.start_server()
        try:
            return await coro_fn(client, backends)
        finally:
            await client.close()

    return asyncio.run(main())


async def _get(client: TestClient, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
    r = await client.request(method, path, **kw)
    raw = await r.read()
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = raw
    return r.status, body, r.headers


def test_create_answers_201_with_id_and_warnings() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, h = await _get(client, "POST", "/v1.41/containers/create?name=web", json={"Image": "busybox"})
        assert st == 201 and body == {"Id": "c" * 64, "Warnings": ["w"]}
        assert h["Api-Version"] == "1.41" and h["Content-Type"] == "application/json"
        assert b["containers"].calls[0] == ("create", ({"Image": "busybox", "HostConfig": {}}, "web"))
    run(t)


def test_backend_errors_map_to_their_status() -> None:
    async def t2(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "POST", "/containers/create", json={"Image": "missing"})
        assert (st, body) == (404, {"message": "No such image: missing"})
        st, body, _ = await _get(client, "POST", "/containers/c1/start")
        assert (st, body) == (409, {"message": "cannot start a paused container, try unpause instead"})
    run(t2)


def test_internal_errors_carry_no_exception_text_or_path() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "GET", "/containers/boom/json")
        assert st == 500
        assert "secret" not in body["message"] and "RuntimeError" not in body["message"]
    run(t)


def test_json_is_escaped_as_go_does() -> None:
    async def t(client: TestClient, b: dict) -> None:
        r = await client.get("/containers/c1/json")
        assert b'"\\u003c\\u0026\\u003e"' in await r.read()
    run(t)


@pytest.mark.parametrize("q,msg", [
    ("t=abc", 'strconv.Atoi: parsing "abc": invalid syntax'),
    ("t=inf", 'strconv.Atoi: parsing "inf": invalid syntax'),
    ("t=1e400", 'strconv.Atoi: parsing "1e400": invalid syntax'),
    ("t=99999999999999999999", 'strconv.Atoi: parsing "99999999999999999999": value out of range'),
])
def test_bad_integers_in_queries_are_400(q: str, msg: str) -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "POST", f"/containers/c1/stop?{q}")
        assert (st, body) == (400, {"message": msg})
        assert not b["containers"].calls
    run(t)


def test_integer_query_is_passed_on() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, _, _ = await _get(client, "POST", "/containers/c1/stop?t=-1&signal=SIGINT")
        assert st == 204
        assert b["containers"].calls == [("stop", ("c1", -1, "SIGINT"))]
    run(t)


@pytest.mark.parametrize("filters", ["[1]", "abc", '{"a":1}', '"x"', "[", '{"status":{"running":"yes"}}'])
def test_bad_filters_are_400(filters: str) -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "GET", "/containers/json", params={"filters": filters})
        assert st == 400, body
        assert body["message"]
    run(t)


def test_filters_both_forms() -> None:
    async def t(client: TestClient, b: dict) -> None:
        await _get(client, "GET", "/containers/json", params={"filters": '{"status":{"running":true}}',
                                                               "limit": "3", "all": "1"})
        await _get(client, "GET", "/containers/json", params={"filters": '{"label":["a=b"]}'})
        calls = [c[1] for c in b["containers"].calls]
        assert calls == [(True, 3, False, {"status": ["running"]}), (False, -1, False, {"label": ["a=b"]})]
    run(t)


@pytest.mark.parametrize("raw", [b'{"Image":NaN}', b'{"Image":Infinity}', b'{"Image":-Infinity}',
                                 b"[" * 100000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"{", b"[1]", b'"x"'])
def test_bad_json_bodies_are_400(raw: bytes) -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "POST", "/containers/create", data=raw,
                                 headers={"Content-Type": "application/json"})
        assert st == 400, body
        assert not b["containers"].calls
    run(t)


def test_logs_framing_timestamps_and_tail() -> None:
    async def t(client: TestClient, b: dict) -> None:
        r = await client.get("/containers/c1/logs?stdout=1&stderr=1&tail=-5&timestamps=1")
        data = await r.read()
        assert r.status == 200
        assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x21"
        assert data[8:40] == b"1970-01-01T00:00:01.000000000Z a"
        assert data[41] == 2
        opts = b["containers"].calls[0][1]
        assert opts.tail is None and opts.stdout and opts.stderr and opts.timestamps
        r = await client.get("/containers/c1/logs?stdout=1&tail=abc&since=inf")
        assert r.status == 400
    run(t)


def test_wait_condition_error_before_headers() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "POST", "/containers/c1/wait?condition=bogus")
        assert (st, body) == (400, {"message": 'invalid condition: "bogus"'})
        st, body, _ = await _get(client, "POST", "/containers/c1/wait")
        assert (st, body) == (200, {"Error": None, "StatusCode": 3})
    run(t)


def test_versions_paths_and_methods() -> None:
    async def t(client: TestClient, b: dict) -> None:
        assert (await _get(client, "GET", "/v1.99/version"))[0] == 400
        assert (await _get(client, "GET", "/v1.11/version"))[0] == 400
        assert (await _get(client, "GET", "/v1.24/version"))[:2] == (200, {"ApiVersion": "1.41"})
        assert (await _get(client, "GET", "/nope"))[:2] == (404, {"message": "page not found"})
        assert (await _get(client, "DELETE", "/version"))[:2] == (405, {"message": "method not allowed"})
        r = await client.head("/_ping")
        assert r.status == 200
    run(t)


def test_events_time_window_parsing() -> None:
    async def t(client: TestClient, b: dict) -> None:
        r = await client.get("/events?since=10&until=20.5")
        line = json.loads((await r.read()).splitlines()[0])
        assert (line["since"], line["until"]) == (10.0, 20.5)
        r = await client.get("/events?since=10.25&until=11.000000001")
        line = json.loads((await r.read()).splitlines()[0])
        assert (line["since"], line["until"]) == (10.25, pytest.approx(11.000000001))
        for bad in ("10m", "nonsense", "1e400", "inf"):  # durations are the CLI's to convert, as with docker
            st, body, _ = await _get(client, "GET", f"/events?since={bad}")
            assert st == 400, bad
            assert body["message"].startswith("strconv.ParseInt"), body
    run(t)


def test_images_routes() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "GET", "/images/json?all=1&filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D")
        assert (st, body) == (200, [{"all": True, "filters": {"dangling": ["true"]}}])
        st, body, _ = await _get(client, "DELETE", "/images/localhost:5000/a/b:1")
        assert (st, body) == (200, [{"Untagged": "localhost:5000/a/b:1"}])
    run(t)


def test_detached_exec_start() -> None:
    async def t(client: TestClient, b: dict) -> None:
        st, body, _ = await _get(client, "POST", "/exec/e1/start", json={"Detach": True})
        assert st == 200
    run(t)


def test_malformed_request_is_400_without_a_logged_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def t(client: TestClient, b: dict) -> None:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Bad: \x00\r\n\r\n")
        await writer.drain()
        head = await reader.read(100)
        writer.close()
        assert head.split(b"\r\n")[0].split()[1] == b"400", head

    with caplog.at_level("DEBUG"):
        run(t)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_a_client_gone_mid_answer_is_not_a_daemon_error(caplog: pytest.LogCaptureFixture) -> None:
    class Gone(FakeContainers):
        def inspect(self, ref: str, size: bool = False) -> dict:
            raise ConnectionResetError("Cannot write to closing transport")

    async def main() -> None:
        client = TestClient(TestServer(make_app(containers=Gone())))
        await client.start_server()
        try:
            with pytest.raises(Exception):  # noqa: B017 - the server closes the connection without an answer
                await client.get("/containers/x/json")
        finally:
            await client.close()

    with caplog.at_level("DEBUG"):
        asyncio.run(main())
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
