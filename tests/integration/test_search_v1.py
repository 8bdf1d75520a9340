"""`search host:port/TERM` through a registry's v1 search API (a loopback stub speaking it)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from aiohttp import web

RESULTS = [
    {"name": "library/redis", "description": "Redis is an in-memory store", "star_count": 12, "is_official": True,
     "is_automated": False},
    {"name": "someone/redis-tools", "description": "tools", "star_count": 2, "is_official": False,
     "is_automated": False},
    {"name": "other/redisish", "description": "", "star_count": 5, "is_official": False, "is_automated": False},
]


class SearchStub:
    """/v2/ answers 200; /v1/search?q=&n= answers Docker Hub's JSON shape; records the queries."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    async def _search(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        q = request.query.get("q", "")
        n = int(request.query.get("n", "25"))
        hits = [r for r in RESULTS if q in r["name"]][:n]
        return web.Response(text=json.dumps({"num_results": len(hits), "query": q, "results": hits}),
                            content_type="application/json")

    async def _v2(self, request: web.Request) -> web.Response:
        return web.json_response({})

    def start(self) -> SearchStub:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/v1/search", self._search)
            app.router.add_get("/v2/", self._v2)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def stub():
    s = SearchStub().start()
    yield s
    s.stop()


def test_search_v1_api(daemon, stub):
    host = f"127.0.0.1:{stub.port}"
    p = daemon.hatoba("search", f"{host}/redis")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == ["library/redis", "someone/redis-tools", "other/redisish"]
    assert lines[1].split()[-2:] == ["12", "[OK]"]
    assert stub.queries[-1] == {"q": "redis", "n": "25"}
    p = daemon.hatoba("search", "--limit", "2", "--filter", "stars=3", "--format", "{{.Name}} {{.StarCount}}",
                      f"{host}/redis")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == ["library/redis 12"]
    assert stub.queries[-1]["n"] == "2"
    p = daemon.hatoba("search", "--filter", "is-official=true", "--format", "{{.Name}}", f"{host}/redis")
    assert p.stdout.decode().splitlines() == ["library/redis"]


def test_search_v1_docker_cli(daemon, stub, docker_cli):
    """The docker CLI shows hatobad's search results as it shows dockerd's (docker 20.10 sorts them by
    stars, 28 keeps the daemon's order, as the hatoba CLI does)."""
    fmt = "{{.Name}}:{{.StarCount}}:{{.IsOfficial}}"
    term = f"127.0.0.1:{stub.port}/redis"
    p = daemon.docker("search", "--format", fmt, term)
    assert p.returncode == 0, p.stderr
    assert p.stdout == docker_cli.expect("search", "--format", fmt, term, status=200, body=RESULTS).stdout
    assert sorted(p.stdout.decode().splitlines()) == sorted(["library/redis:12:[OK]", "someone/redis-tools:2:",
                                                            "other/redisish:5:"])
    mine = daemon.hatoba("search", "--format", fmt, term)
    assert mine.stdout.decode().splitlines() == ["library/redis:12:[OK]", "someone/redis-tools:2:",
                                                 "other/redisish:5:"]
    table = daemon.docker("search", term).stdout.decode().splitlines()
    assert table == docker_cli.expect("search", term, status=200, body=RESULTS).stdout.decode().splitlines()
    mine_table = daemon.hatoba("search", term).stdout.decode().splitlines()
    if table[0] == mine_table[0]:  # docker 20.10 has an AUTOMATED column more
        if [ln.split(":")[0] for ln in p.stdout.decode().splitlines()] == [r["name"] for r in RESULTS]:
            assert mine_table == table  # a CLI that keeps the daemon's order prints what hatoba prints
        else:
            assert sorted(mine_table[1:]) == sorted(table[1:])
