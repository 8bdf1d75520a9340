"""Tests for hatoba.cli.units: go-units / Go time compatible formatting and parsing."""

import time

import pytest

from hatoba.cli.units import (
    bytes_size,
    container_status,
    created_ago,
    format_duration,
    format_rfc3339_nano,
    go_quote,
    human_duration,
    human_size,
    parse_duration,
    parse_duration_ns,
    parse_ram,
    parse_rfc3339,
    parse_rfc3339_ns,
    parse_time_arg,
    truncate_id,
)

MIN = 60
HOUR = 3600
DAY = 86400


@pytest.mark.parametrize(
    "seconds, text",
    [
        (-5, "Less than a second"),
        (0, "Less than a second"),
        (0.999, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3 * MIN, "3 minutes"),
        (59 * MIN + 59, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MIN, "About an hour"),
        (HOUR + 30 * MIN, "2 hours"),
        (47 * HOUR, "47 hours"),
        (47 * HOUR + 30 * MIN, "2 days"),
        (13 * DAY, "13 days"),
        (14 * DAY, "2 weeks"),
        (59 * DAY, "8 weeks"),
        (60 * DAY, "2 months"),
        (729 * DAY, "24 months"),
        (730 * DAY, "2 years"),
        (5 * 365 * DAY, "5 years"),
    ],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0B"),
        (1, "1B"),
        (999, "999B"),
        (1000, "1kB"),
        (1234, "1.23kB"),
        (5600, "5.6kB"),
        (999_999, "1e+03kB"),
        (1_230_000, "1.23MB"),
        (27_900_000, "27.9MB"),
        (7_800_000, "7.8MB"),
        (1_000_000_000, "1GB"),
        (123_456_789_012, "123GB"),
        (5.2e12, "5.2TB"),
    ],
)
def test_human_size(n, text):
    assert human_size(n) == text


def test_human_size_precision():
    assert human_size(1_234_567, 4) == "1.235MB"


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0B"),
        (512, "512B"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (1.5 * 1024 * 1024, "1.5MiB"),
        (64 * 1024 * 1024, "64MiB"),
        (1000 * 1024 * 1024, "1000MiB"),
        (1024**3, "1GiB"),
        (123_456_789_012, "115GiB"),
    ],
)
def test_bytes_size(n, text):
    assert bytes_size(n) == text


@pytest.mark.parametrize(
    "text, n",
    [
        ("32m", 33554432),
        ("32M", 33554432),
        ("32mb", 33554432),
        ("32MiB", 33554432),
        ("1g", 1073741824),
        ("1GB", 1073741824),
        ("512k", 524288),
        ("512K", 524288),
        ("1t", 1 << 40),
        ("1p", 1 << 50),
        ("100", 100),
        ("100b", 100),
        ("100B", 100),
        ("1.5g", 1610612736),
        ("0.5k", 512),
        ("1 GiB", 1073741824),
        ("4 m", 4194304),
        ("0", 0),
    ],
)
def test_parse_ram(text, n):
    assert parse_ram(text) == n


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", "invalid size: 'abc'"),
        ("", "invalid size: ''"),
        ("m", "invalid size: 'm'"),
        ("-1", "invalid size: '-1'"),
        ("-32m", "invalid size: '-32m'"),
        ("1x", "invalid suffix: 'x'"),
        ("1bb", "invalid suffix: 'bb'"),
        ("1mx", "invalid suffix: 'mx'"),
        ("1kbb", "invalid suffix: 'kbb'"),
        ("1KiBs", "invalid suffix: 'KiBs'"),
        ("1.2.3m", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
        ("1 2m", "invalid suffix: '2m'"),
        ("1  m", "invalid suffix: ' m'"),
    ],
)
def test_parse_ram_errors(text, message):
    with pytest.raises(ValueError) as exc:
        parse_ram(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("-1m", -60.0),
        ("+5s", 5.0),
        ("0", 0.0),
        (".5s", 0.5),
        ("1h2m3.5s", 3723.5),
        ("100us", 0.0001),
        ("100\u00b5s", 0.0001),
        ("3ns", 3e-9),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_ns_is_exact():
    assert parse_duration_ns("1h2m3.000000004s") == 3723_000_000_004
    assert parse_duration_ns("1.5us") == 1500


@pytest.mark.parametrize(
    "text, message",
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("10", 'time: missing unit in duration "10"'),
        ("1h10", 'time: missing unit in duration "1h10"'),
        ("10x", 'time: unknown unit "x" in duration "10x"'),
        ("10 s", 'time: unknown unit " s" in duration "10 s"'),
        ("3d", 'time: unknown unit "d" in duration "3d"'),
        ("9999999999999999999h", 'time: invalid duration "9999999999999999999h"'),
    ],
)
def test_parse_duration_errors(text, message):
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1.5, "1.5s"),
        (10, "10s"),
        (90, "1m30s"),
        (7200, "2h0m0s"),
        (3723.5, "1h2m3.5s"),
        (-60, "-1m0s"),
        (0.0000015, "1.5\u00b5s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_ns():
    assert format_duration(42, ns=True) == "42ns"


@pytest.mark.parametrize(
    "text, ns",
    [
        ("2024-01-02T03:04:05Z", 1704164645 * 10**9),
        ("2024-01-02T03:04:05.123456789Z", 1704164645_123456789),
        ("2024-01-02T03:04:05.5Z", 1704164645_500000000),
        ("2024-01-02T12:04:05+09:00", 1704164645 * 10**9),
        ("2024-01-01T22:04:05-05:00", 1704164645 * 10**9),
        ("1970-01-01T00:00:00Z", 0),
        ("0001-01-01T00:00:00Z", 0),
        ("", 0),
        ("2000-02-29T00:00:00Z", 951782400 * 10**9),
        ("1969-12-31T23:59:59Z", -(10**9)),
    ],
)
def test_parse_rfc3339_ns(text, ns):
    assert parse_rfc3339_ns(text) == ns


def test_parse_rfc3339_float():
    assert parse_rfc3339("2024-01-02T03:04:05.25Z") == 1704164645.25
    assert parse_rfc3339("0001-01-01T00:00:00Z") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "2024-01-02",
        "2024-01-02T03:04:05",
        "2024-13-02T03:04:05Z",
        "2023-02-29T00:00:00Z",
        "2024-01-02T25:00:00Z",
    ],
)
def test_parse_rfc3339_errors(text):
    with pytest.raises(ValueError) as exc:
        parse_rfc3339(text)
    assert str(exc.value).startswith(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": ')


@pytest.mark.parametrize(
    "ns, text",
    [
        (1704164645_123456789, "2024-01-02T03:04:05.123456789Z"),
        (1704164645_120000000, "2024-01-02T03:04:05.12Z"),
        (1704164645_000000000, "2024-01-02T03:04:05Z"),
        (1704164645_000000001, "2024-01-02T03:04:05.000000001Z"),
        (951782400 * 10**9, "2000-02-29T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (0, "0001-01-01T00:00:00Z"),
        (253402300799 * 10**9, "9999-12-31T23:59:59Z"),
    ],
)
def test_format_rfc3339_nano(ns, text):
    assert format_rfc3339_nano(ns) == text


def test_rfc3339_round_trip():
    for ns in (1, 10**9, 1700000000_987654321, 4102444800 * 10**9 + 7):
        assert parse_rfc3339_ns(format_rfc3339_nano(ns)) == ns


NOW = 1700000000.0


@pytest.mark.parametrize(
    "text, ts",
    [
        ("1700000000", 1700000000.0),
        ("1700000000.123", 1700000000.123),
        ("0", 0.0),
        ("10m", NOW - 600),
        ("1h30m", NOW - 5400),
        ("90s", NOW - 90),
        ("1.5s", NOW - 2),  # truncated to whole seconds, like reference.Add(-d).Unix()
        ("-10m", NOW + 600),
        ("2026-11-22T10:00:00Z", 1795341600.0),
        ("2026-11-22T10:00:00+01:00", 1795338000.0),
        ("2026-11-22T10:00:00.5Z", 1795341600.5),
        ("2026-11-22Z", 1795305600.0),
        ("2026-11-22T00:00:00z", 1795305600.0),
    ],
)
def test_parse_time_arg(text, ts):
    assert parse_time_arg(text, NOW) == pytest.approx(ts)


@pytest.fixture
def tokyo_time(monkeypatch):
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "text, ts",
    [
        ("2026-11-22", 1795305600.0 - 9 * 3600),
        ("2026-11-22T10", 1795341600.0 - 9 * 3600),
        ("2026-11-22T10:00", 1795341600.0 - 9 * 3600),
        ("2026-11-22T10:00:00", 1795341600.0 - 9 * 3600),
        ("2026-11-22T10:00:00.25", 1795341600.25 - 9 * 3600),
        ("2026-11-22T10:00:00Z", 1795341600.0),
    ],
)
def test_parse_time_arg_without_zone_uses_local_time(tokyo_time, text, ts):
    assert parse_time_arg(text, NOW) == pytest.approx(ts)


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", 'failed to parse value as time or duration: "abc"'),
        ("12abc", 'failed to parse value as time or duration: "12abc"'),
        ("1.2.3", 'failed to parse value as time or duration: "1.2.3"'),
    ],
)
def test_parse_time_arg_errors(text, message):
    with pytest.raises(ValueError) as exc:
        parse_time_arg(text, NOW)
    assert str(exc.value) == message


def test_parse_time_arg_bad_date_is_a_time_error():
    with pytest.raises(ValueError) as exc:
        parse_time_arg("2026-13-01", NOW)
    assert str(exc.value).startswith('parsing time "2026-13-01"')


def test_created_ago():
    assert created_ago(NOW - 120, NOW) == "2 minutes ago"
    assert created_ago(NOW, NOW) == "Less than a second ago"
    assert created_ago(NOW - 3 * DAY, NOW) == "3 days ago"


T0 = "2023-11-14T22:13:20Z"  # == NOW
T0_NS = "2023-11-14T22:13:20.000000001Z"


def at(offset: float) -> str:
    return format_rfc3339_nano(int((NOW + offset) * 10**9))


@pytest.mark.parametrize(
    "state, text",
    [
        ({"Status": "running", "Running": True, "StartedAt": at(-180)}, "Up 3 minutes"),
        ({"Status": "running", "Running": True, "StartedAt": T0}, "Up Less than a second"),
        ({"Status": "running", "Running": True, "StartedAt": T0_NS}, "Up Less than a second"),
        ({"Status": "paused", "Running": True, "Paused": True, "StartedAt": at(-180)}, "Up 3 minutes (Paused)"),
        ({"Status": "paused", "StartedAt": at(-7200)}, "Up 2 hours (Paused)"),
        (
            {"Status": "running", "Running": True, "StartedAt": at(-180), "Health": {"Status": "healthy"}},
            "Up 3 minutes (healthy)",
        ),
        (
            {"Status": "running", "Running": True, "StartedAt": at(-5), "Health": {"Status": "starting"}},
            "Up 5 seconds (health: starting)",
        ),
        (
            {"Status": "running", "Running": True, "StartedAt": at(-60), "Health": {"Status": "unhealthy"}},
            "Up About a minute (unhealthy)",
        ),
        ({"Status": "running", "Running": True, "StartedAt": at(-60), "Health": None}, "Up About a minute"),
        (
            {"Status": "exited", "ExitCode": 0, "StartedAt": at(-10), "FinishedAt": at(-2)},
            "Exited (0) 2 seconds ago",
        ),
        (
            {"Status": "exited", "ExitCode": 137, "StartedAt": at(-99999), "FinishedAt": at(-2 * HOUR)},
            "Exited (137) 2 hours ago",
        ),
        ({"Status": "created", "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}, "Created"),
        ({"Status": "created"}, "Created"),
        (
            {"Status": "restarting", "Running": True, "Restarting": True, "ExitCode": 1, "StartedAt": at(-60),
             "FinishedAt": at(-5)},
            "Restarting (1) 5 seconds ago",
        ),
        ({"Status": "removing", "StartedAt": at(-60), "FinishedAt": at(-5)}, "Removal In Progress"),
        ({"Status": "dead", "Dead": True, "StartedAt": at(-60), "FinishedAt": at(-5)}, "Dead"),
        ({"Status": "exited", "ExitCode": 0, "StartedAt": NOW - 10, "FinishedAt": NOW - 3}, "Exited (0) 3 seconds ago"),
    ],
)  # fmt: skip
def test_container_status(state, text):
    assert container_status(state, NOW) == text


@pytest.mark.parametrize(
    "ident, short",
    [
        ("sha256:4a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef", "4a1b2c3d4e5f"),
        ("4a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef", "4a1b2c3d4e5f"),
        ("abc", "abc"),
        ("", ""),
    ],
)
def test_truncate_id(ident, short):
    assert truncate_id(ident) == short


@pytest.mark.parametrize(
    "s, quoted",
    [
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\n\t", '"\\n\\t"'),
        ("\x01", '"\\x01"'),
        ("é", '"é"'),
    ],
)
def test_go_quote(s, quoted):
    assert go_quote(s) == quoted


def test_container_status_and_daemon_view_share_one_text():
    """The CLI's container_status and the daemon's ps Status both come from humanize.status_text."""
    from hatoba.humanize import status_text

    now = 1_000_000.0
    assert status_text("running", exit_code=0, started=now - 180, finished=0, now=now) == "Up 3 minutes"
    assert status_text("paused", exit_code=0, started=now - 5, finished=0, now=now) == "Up 5 seconds (Paused)"
    assert status_text("exited", exit_code=3, started=1, finished=now - 2, now=now) == "Exited (3) 2 seconds ago"
    assert status_text("running", exit_code=0, started=now - 7200, finished=0, now=now,
                       health="starting") == "Up 2 hours (health: starting)"
