"""Unit tests of hatoba.runtime.logs (k8s-file parsing, Docker log selection, framing, rotation)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest

from hatoba.runtime import logs
from hatoba.runtime.logs import LogRecord

T0 = "2026-11-22T09:40:26.053358883+00:00"
T0_NS = 1795340426053358883


def rec(ts_ns: int, stream: str, tag: str, payload: bytes) -> bytes:
    """A k8s-file record as conmon writes it (UTC offset +00:00)."""
    secs, nanos = divmod(ts_ns, 10**9)
    base = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}+00:00 {stream} {tag} ".encode() + payload + b"\n"


# --------------------------------------------------------------------------- timestamps


def test_parse_timestamp_offsets() -> None:
    assert logs.parse_timestamp(T0) == T0_NS
    assert T0_NS == int(dt.datetime(2026, 11, 22, 9, 40, 26, tzinfo=dt.UTC).timestamp()) * 10**9 + 53358883
    assert logs.parse_timestamp("2026-11-22T09:40:26.053358883Z") == T0_NS
    assert logs.parse_timestamp("2026-11-22T18:40:26.053358883+09:00") == T0_NS
    assert logs.parse_timestamp("2026-11-22T04:10:26.053358883-05:30") == T0_NS
    assert logs.parse_timestamp("2026-11-22T09:40:26Z") == T0_NS - 53358883
    assert logs.parse_timestamp("2026-11-22T09:40:26.5Z") == T0_NS - 53358883 + 500_000_000
    assert logs.parse_timestamp("1970-01-01T00:00:00Z") == 0
    assert logs.parse_timestamp("2000-02-29T12:00:00Z") == 951825600 * 10**9
    with pytest.raises(ValueError):
        logs.parse_timestamp("yesterday")


def test_format_timestamp_fixed_nanos() -> None:
    # dockerd's logs use RFC3339NanoFixed: nine digits, trailing zeros kept
    assert logs.format_timestamp(T0_NS) == "2026-11-22T09:40:26.053358883Z"
    assert logs.format_timestamp(T0_NS - 53358883 + 500_000_000) == "2026-11-22T09:40:26.500000000Z"
    assert logs.format_timestamp(T0_NS - 53358883) == "2026-11-22T09:40:26.000000000Z"
    assert logs.format_timestamp(T0_NS - 53358883 + 1000) == "2026-11-22T09:40:26.000001000Z"
    assert logs.format_timestamp(0) == "1970-01-01T00:00:00.000000000Z"
    # round trip
    for ns in (T0_NS, 1, 10**9, 1234567890123456789):
        assert logs.parse_timestamp(logs.format_timestamp(ns)) == ns


# --------------------------------------------------------------------------- parse_line


def test_parse_line() -> None:
    assert logs.parse_line(f"{T0} stdout F out 0\n".encode()) == (T0_NS, "stdout", False, b"out 0")
    assert logs.parse_line(f"{T0} stderr P chunk".encode()) == (T0_NS, "stderr", True, b"chunk")
    # empty line, TTY carriage return, payload containing spaces and tags
    assert logs.parse_line(f"{T0} stdout F \n".encode()) == (T0_NS, "stdout", False, b"")
    assert logs.parse_line(f"{T0} stdout F hi\r\n".encode()) == (T0_NS, "stdout", False, b"hi\r")
    assert logs.parse_line(f"{T0} stdout F  a F b \n".encode())[3] == b" a F b "
    assert logs.parse_line(f"{T0} stdout F".encode())[3] == b""
    for bad in (b"", b"garbage", f"{T0} stdin F x".encode(), f"{T0} stdout X x".encode(), b"nope stdout F x"):
        with pytest.raises(ValueError):
            logs.parse_line(bad)


# --------------------------------------------------------------------------- read_records


def test_partial_joining(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(
        rec(1000, "stdout", "P", b"hel")
        + rec(1001, "stderr", "F", b"interleaved")
        + rec(1002, "stdout", "P", b"lo ")
        + rec(1003, "stdout", "F", b"world")
        + rec(1004, "stdout", "F", b"")
        + rec(1005, "stdout", "F", b"tty\r")
        + b"this line is garbage\n"
        + rec(1006, "stderr", "P", b"no newline at exit")
    )
    got = list(logs.read_records([str(log)]))
    assert got == [
        LogRecord(1001, "stderr", b"interleaved\n"),
        LogRecord(1000, "stdout", b"hello world\n"),
        LogRecord(1004, "stdout", b"\n"),
        LogRecord(1005, "stdout", b"tty\r\n"),
        LogRecord(1006, "stderr", b"no newline at exit"),
    ]


def test_carriage_return_inside_a_line(tmp_path: Path) -> None:
    """Only \\n ends a record: a TTY progress line ("50%\\r60%") is one line, not two."""
    log = tmp_path / "ctr.log"
    log.write_bytes(rec(1, "stdout", "F", b"50%\r60%\r") + rec(2, "stdout", "F", b"a\rb"))
    assert [r.data for r in logs.read_records([str(log)])] == [b"50%\r60%\r\n", b"a\rb\n"]
    assert b"".join(logs.framed([str(log)], tty=True)) == b"50%\r60%\r\na\rb\n"


def test_read_records_across_rotated_files(tmp_path: Path) -> None:
    log = str(tmp_path / "ctr.log")
    Path(log + ".2").write_bytes(rec(1, "stdout", "F", b"a"))
    Path(log + ".1").write_bytes(rec(2, "stdout", "F", b"b") + rec(3, "stdout", "P", b"c1"))
    Path(log).write_bytes(rec(4, "stdout", "F", b"c2") + rec(5, "stderr", "F", b"d"))
    paths = logs.rotated_paths(log)
    assert paths == [log + ".2", log + ".1", log]
    got = [(r.time_ns, r.data) for r in logs.read_records(paths)]
    assert got == [(1, b"a\n"), (2, b"b\n"), (3, b"c1c2\n"), (5, b"d\n")]
    # missing files are skipped
    assert [r.data for r in logs.read_records([log + ".9", log])] == [b"c2\n", b"d\n"]


def test_read_records_limit_and_complete_size(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    full = rec(1, "stdout", "F", b"one") + rec(2, "stdout", "F", b"two")
    log.write_bytes(full + rec(3, "stdout", "F", b"three")[:10])  # a record being written
    size = logs.complete_size(str(log))
    assert size == len(full)
    assert [r.data for r in logs.read_records([str(log)])] == [b"one\n", b"two\n"]
    assert [r.data for r in logs.read_records([str(log)], limit=len(rec(1, "stdout", "F", b"one")))] == [
        b"one\n"
    ]
    assert logs.complete_size(str(tmp_path / "missing")) == 0
    big = tmp_path / "big.log"
    big.write_bytes(rec(1, "stdout", "F", b"x" * 200_000) + b"y" * 70_000)
    assert logs.complete_size(str(big)) == len(rec(1, "stdout", "F", b"x" * 200_000))


# --------------------------------------------------------------------------- select


def _sample() -> list[LogRecord]:
    return [LogRecord(i * 10, "stdout" if i % 2 == 0 else "stderr", f"l{i}\n".encode()) for i in range(10)]


def test_select_streams_tail_since_until() -> None:
    recs = _sample()
    assert logs.select(recs, stdout=True, stderr=True) == recs
    assert [r.data for r in logs.select(recs, stdout=True, stderr=False)] == [
        f"l{i}\n".encode() for i in range(0, 10, 2)
    ]
    assert [r.data for r in logs.select(recs, stdout=False, stderr=True)] == [
        f"l{i}\n".encode() for i in range(1, 10, 2)
    ]
    assert logs.select(recs, stdout=False, stderr=False) == []
    assert logs.select(recs, stdout=True, stderr=True, tail=3) == recs[-3:]
    assert logs.select(recs, stdout=True, stderr=True, tail=0) == []
    assert logs.select(recs, stdout=True, stderr=True, tail=100) == recs
    # since/until are inclusive
    assert logs.select(recs, stdout=True, stderr=True, since_ns=30, until_ns=50) == recs[3:6]
    assert logs.select(iter(recs), stdout=True, stderr=True, since_ns=75) == recs[8:]
    # tail is taken over all streams before the stream and time filters (as dockerd does)
    assert [r.data for r in logs.select(recs, stdout=True, stderr=False, tail=3)] == [b"l8\n"]
    assert logs.select(recs, stdout=True, stderr=True, tail=3, since_ns=85) == recs[9:]


# --------------------------------------------------------------------------- framed


def _render_records(recs: list[LogRecord], *, timestamps: bool, tty: bool) -> bytes:
    out = b""
    for r in recs:
        data = (logs.format_timestamp(r.time_ns).encode() + b" " + r.data) if timestamps else r.data
        out += data if tty else logs.frame(r.stream, data)
    return out


def _mixed_log(tmp_path: Path) -> list[str]:
    """Rotated files with every kind of record: F/P, both streams, shared and odd timestamps, garbage."""
    base = str(tmp_path / "ctr.log")
    t = T0_NS
    Path(base + ".1").write_bytes(
        rec(t, "stdout", "F", b"first") + rec(t, "stdout", "F", b"same ts") + rec(t + 5, "stderr", "F", b"err")
        + rec(t + 9, "stdout", "P", b"part1 ") + b"garbage line\n" + rec(t + 10, "stderr", "F", b"between")
        + rec(t + 11, "stdout", "P", b"part2 ")  # the partial line continues in the next file
    )
    Path(base).write_bytes(
        rec(t + 12, "stdout", "F", b"end") + rec(t + 13, "stdout", "F", b"")
        + f"{T0} stdout F".encode() + b"\n"  # an empty line written without the space
        + rec(t + 14, "stderr", "F", b"tty\r") + b"2026-11-22T09:40:27Z stdout F other ts form\n"
        + b"2026-13-22T09:40:26.053358883+00:00 stdout F bad month\n"
        + rec(t + 2 * 10**9, "stdout", "F", b"x" * 70_000) + rec(t + 3 * 10**9, "stderr", "P", b"no newline")
        + rec(t + 4 * 10**9, "stdout", "F", b"being writ")[:20]
    )
    return logs.rotated_paths(base)


@pytest.mark.parametrize("opts", [
    {}, {"stdout": False}, {"stderr": False}, {"timestamps": True}, {"tty": True}, {"tail": 3},
    {"tail": 0}, {"tail": 100, "stdout": False}, {"since_ns": T0_NS + 10}, {"until_ns": T0_NS + 12},
    {"since_ns": T0_NS + 5, "until_ns": T0_NS + 2 * 10**9, "timestamps": True, "stderr": False},
    {"chunk_size": 1},
])
def test_framed_equals_the_record_path(tmp_path: Path, opts: dict) -> None:
    paths = _mixed_log(tmp_path)
    limit = logs.complete_size(paths[-1])
    sel = {k: opts.get(k, d) for k, d in (("stdout", True), ("stderr", True), ("since_ns", 0), ("until_ns", 0),
                                          ("tail", None))}
    want = _render_records(logs.select(logs.read_records(paths, limit=limit), **sel),
                           timestamps=opts.get("timestamps", False), tty=opts.get("tty", False))
    pieces = list(logs.framed(paths, limit=limit, **opts))
    assert b"".join(pieces) == want
    assert all(pieces)
    if opts.get("chunk_size") == 1 and "tail" not in opts:
        assert len(pieces) > 1 or len(want) == 0


def test_framed_large_log_in_pieces(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"".join(rec(T0_NS + i // 100, "stdout" if i % 7 else "stderr", "F", b"line %06d" % i)
                             for i in range(30_000)))
    pieces = list(logs.framed([str(log)], chunk_size=1 << 16))
    assert len(pieces) > 1
    want = _render_records(list(logs.read_records([str(log)])), timestamps=False, tty=False)
    assert b"".join(pieces) == want


# --------------------------------------------------------------------------- frame


def test_frame() -> None:
    assert logs.frame("stdout", b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert logs.frame("stderr", b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    big = b"x" * 70000
    f = logs.frame("stderr", big)
    assert f[:8] == b"\x02\x00\x00\x00" + (70000).to_bytes(4, "big") and f[8:] == big
    with pytest.raises(ValueError):
        logs.frame("bogus", b"")


# --------------------------------------------------------------------------- rotation


def test_rotate_order(tmp_path: Path) -> None:
    log = str(tmp_path / "ctr.log")

    def write(name: str, content: str) -> None:
        Path(name).write_text(content)

    write(log, "gen1")
    logs.rotate(log, 3)
    assert not os.path.exists(log) and Path(log + ".1").read_text() == "gen1"
    write(log, "gen2")
    logs.rotate(log, 3)
    write(log, "gen3")
    assert Path(log + ".2").read_text() == "gen1" and Path(log + ".1").read_text() == "gen2"
    logs.rotate(log, 3)  # gen1 drops out: at most 3 files incl. the live one
    write(log, "gen4")
    assert [Path(p).read_text() for p in logs.rotated_paths(log)] == ["gen2", "gen3", "gen4"]
    assert not os.path.exists(log + ".3")
    # lowering max_files drops the extra history
    logs.rotate(log, 2)
    assert logs.rotated_paths(log) == [log + ".1"] and Path(log + ".1").read_text() == "gen4"
    # max_files=1 keeps no history
    write(log, "gen5")
    logs.rotate(log, 1)
    assert not os.path.exists(log)
    logs.rotate(log, 3)  # nothing to rotate: no error


def test_rotated_paths_ignores_other_files(tmp_path: Path) -> None:
    log = str(tmp_path / "ctr.log")
    for name in ("ctr.log", "ctr.log.1", "ctr.log.10", "ctr.log.tmp", "ctr.log.2x", "other.log.1"):
        (tmp_path / name).write_text("")
    assert logs.rotated_paths(log) == [log + ".10", log + ".1", log]
    assert logs.rotated_paths(str(tmp_path / "nope" / "x.log")) == []


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", 100),
        ("1k", 1024),
        ("1K", 1024),
        ("10m", 10 * 1024 * 1024),
        ("10M", 10 * 1024 * 1024),
        ("1g", 1024**3),
        ("1.5k", 1536),
        ("10mb", 10 * 1024 * 1024),
        ("10MiB", 10 * 1024 * 1024),
        ("2 g", 2 * 1024**3),
        ("0", 0),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert logs.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "-1", "abc", "10x", "1.2.3k", "k"])
def test_parse_size_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        logs.parse_size(text)


# --------------------------------------------------------------------------- follow


def test_follow_appends_rotation_truncation_and_stop(tmp_path: Path) -> None:
    log = str(tmp_path / "ctr.log")
    Path(log).write_bytes(rec(1, "stdout", "F", b"old"))
    start = logs.complete_size(log)

    async def body() -> list[LogRecord]:
        stop = asyncio.Event()
        got: list[LogRecord] = []

        async def consume() -> None:
            async for r in logs.follow(log, start, stop=stop, poll_min=0.001, poll_max=0.01):
                got.append(r)

        task = asyncio.create_task(consume())

        async def until(n: int) -> None:
            for _ in range(500):
                if len(got) >= n:
                    return
                await asyncio.sleep(0.002)
            raise AssertionError(f"follow got {got}, wanted {n} records")

        with open(log, "ab") as f:
            f.write(rec(2, "stdout", "F", b"two"))
            f.flush()
            await until(1)
            f.write(rec(3, "stderr", "P", b"par"))
            f.write(rec(4, "stdout", "F", b"three")[:12])  # torn write: not yet a record
            f.flush()
            await asyncio.sleep(0.02)
            assert len(got) == 1
            f.write(rec(4, "stdout", "F", b"three")[12:])
            f.flush()
            await until(2)
        # rotation like rotate() + conmon reopen: rename, late write to the old inode, new file
        os.rename(log, log + ".1")
        with open(log + ".1", "ab") as f:
            f.write(rec(5, "stdout", "F", b"late"))
        Path(log).write_bytes(rec(6, "stderr", "F", b"tial") + rec(7, "stdout", "F", b"new"))
        await until(5)
        # truncation in place
        Path(log).write_bytes(rec(8, "stdout", "F", b"t"))
        await until(6)
        # stop: the rest is drained, a dangling partial is flushed without newline
        with open(log, "ab") as f:
            f.write(rec(9, "stdout", "F", b"last") + rec(10, "stderr", "P", b"dangling"))
        stop.set()
        await asyncio.wait_for(task, 5)
        return got

    got = asyncio.run(body())
    assert [(r.stream, r.data) for r in got] == [
        ("stdout", b"two\n"),
        ("stdout", b"three\n"),
        ("stdout", b"late\n"),
        ("stderr", b"partial\n"),
        ("stdout", b"new\n"),
        ("stdout", b"t\n"),
        ("stdout", b"last\n"),
        ("stderr", b"dangling"),
    ]


def test_follow_missing_file_and_future_stop(tmp_path: Path) -> None:
    log = str(tmp_path / "later.log")

    async def body() -> list[LogRecord]:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()
        got: list[LogRecord] = []

        async def consume() -> None:
            async for r in logs.follow(log, 0, stop=stop, poll_min=0.001, poll_max=0.005):
                got.append(r)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        Path(log).write_bytes(rec(1, "stdout", "F", b"hello"))
        stop.set_result(None)
        await asyncio.wait_for(task, 5)
        return got

    assert [r.data for r in asyncio.run(body())] == [b"hello\n"]
