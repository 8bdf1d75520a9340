"""Query-string parsing (hatoba.schema.query): dockerd 20.10's messages, recorded from the reference daemon."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hatoba.errors import InvalidParameter
from hatoba.schema import query


@pytest.mark.parametrize("value,message", [
    ("abc", 'strconv.Atoi: parsing "abc": invalid syntax'),
    ("inf", 'strconv.Atoi: parsing "inf": invalid syntax'),
    ("1e400", 'strconv.Atoi: parsing "1e400": invalid syntax'),
    ("1.5", 'strconv.Atoi: parsing "1.5": invalid syntax'),
    ("0x10", 'strconv.Atoi: parsing "0x10": invalid syntax'),
    (" 5", 'strconv.Atoi: parsing " 5": invalid syntax'),
    ("", 'strconv.Atoi: parsing "": invalid syntax'),
    ("99999999999999999999", 'strconv.Atoi: parsing "99999999999999999999": value out of range'),
    ('a"\n\x01é', 'strconv.Atoi: parsing "a\\"\\n\\x01é": invalid syntax'),
])
def test_atoi_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        query.atoi(value)
    assert e.value.message == message and e.value.status == 400


def test_ints() -> None:
    assert query.atoi("+5") == 5 and query.atoi("-1") == -1 and query.atoi("007") == 7
    assert query.int_param({"t": ""}, "t", 3) == 3 and query.int_param({}, "t") is None
    assert query.int_param({"limit": "10"}, "limit") == 10
    with pytest.raises(InvalidParameter, match=r'^strconv.ParseInt: parsing "x": invalid syntax$'):
        query.int64_param({"since": "x"}, "since")
    assert query.parse_int64(str((1 << 63) - 1)) == (1 << 63) - 1
    with pytest.raises(InvalidParameter, match="value out of range"):
        query.parse_int64(str(1 << 63))


def test_bools() -> None:
    for v in ("", "0", "no", "false", "none", " FALSE ", "None"):
        assert query.bool_param({"all": v}, "all", True) is False
    for v in ("1", "true", "yes", "abc", "2"):
        assert query.bool_param({"all": v}, "all") is True
    assert query.bool_param({}, "stream", True) is True
    assert query.bool_param({}, "all") is False


@pytest.mark.parametrize("raw,message", [
    ("[1]", "json: cannot unmarshal array into Go value of type map[string]map[string]bool"),
    ("5", "json: cannot unmarshal number into Go value of type map[string]map[string]bool"),
    ("{x", "invalid character 'x' looking for beginning of object key string"),
    ('{"status":["running"]} x', "invalid character 'x' after top-level value"),
    ('{"status":{"running":1}}', "json: cannot unmarshal number into Go value of type bool"),
    ('{"status":5}', "json: cannot unmarshal number into Go value of type map[string]bool"),
    ('{"status":[5]}', "json: cannot unmarshal array into Go value of type map[string]bool"),
    ('{"status":["running"', "unexpected end of JSON input"),
    ('{"a":NaN}', "invalid character 'N' looking for beginning of value"),
])
def test_filters_errors(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        query.filters(raw)
    assert e.value.message == message


def test_filters() -> None:
    assert query.filters("") == {} and query.filters(None) == {} and query.filters("null") == {}
    assert query.filters('{"status":{"running":true}}') == {"status": {"running": True}}
    assert query.filters('{"status":["running","exited"]}') == {"status": {"running": True, "exited": True}}
    # as in dockerd, a value given with false still filters
    assert query.filter_values('{"name":{"vq":false}}') == {"name": ["vq"]}


def test_timestamps() -> None:
    assert query.timestamp("") == (0, 0)
    assert query.timestamp("", -1) == (-1, 0)
    assert query.timestamp("1700000000") == (1700000000, 0)
    assert query.timestamp("1700000000.5") == (1700000000, 500000000)
    assert query.timestamp("-5") == (-5, 0)
    for v, bad in [("inf", "inf"), ("1.5x", "5x"), ("2020-01-01", "2020-01-01"), ("abc", "abc")]:
        with pytest.raises(InvalidParameter) as e:
            query.timestamp(v)
        assert e.value.message == f'strconv.ParseInt: parsing "{bad}": invalid syntax'


def test_durations() -> None:  # Go's time.ParseDuration, in hatoba.golang
    from hatoba.golang import parse_duration_ns

    assert parse_duration_ns("1.5h") == 5_400_000_000_000
    assert parse_duration_ns("-5m") == -300_000_000_000
    assert parse_duration_ns("1ms") == 1_000_000 and parse_duration_ns("2us") == 2000
    for bad, msg in [("", 'time: invalid duration ""'), ("5", 'time: missing unit in duration "5"'),
                     ("5x", 'time: unknown unit "x" in duration "5x"'), ("h", 'time: invalid duration "h"')]:
        with pytest.raises(ValueError) as e:
            parse_duration_ns(bad)
        assert str(e.value) == msg


def test_tail() -> None:
    assert query.tail(None) is None and query.tail("all") is None and query.tail("") is None
    assert query.tail("-5") is None and query.tail("abc") is None  # dockerd 20.10: all lines
    assert query.tail("0") == 0 and query.tail("10") == 10


@given(st.text(max_size=30))
def test_query_parsers_raise_only_invalid_parameter(s: str) -> None:
    for fn in (query.atoi, query.parse_int64, query.filters, query.timestamp):
        try:
            fn(s)
        except InvalidParameter:
            pass
    query.tail(s)
    query.bool_value(s)


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_atoi_roundtrip(n: int) -> None:
    assert query.atoi(str(n)) == n
