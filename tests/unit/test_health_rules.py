"""Health checks, the pure parts: `Config.Healthcheck` rules (dockerd's create checks and image merge),
the `State.Health` bookkeeping, the probe argv, the `ps` status text and the CLI's --health-* flags."""

from __future__ import annotations

import pytest

from hatoba.cli.commands.run import RUN, build_body
from hatoba.cli.common import StatusError
from hatoba.engine import health
from hatoba.errors import InvalidParameter
from hatoba.golang import go_duration
from hatoba.humanize import status_text

S = 1_000_000_000


# ---- Config.Healthcheck --------------------------------------------------------------------------------

@pytest.mark.parametrize("hc, message", [
    ({"Test": ["CMD", "true"], "Interval": 1}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Interval": -5}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": 10}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ("x", "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Healthcheck of type "
          "container.HealthConfig"),
    ([1], "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Healthcheck of type "
          "container.HealthConfig"),
    ({"Test": "true"}, "json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Test of type "
                       "[]string"),
    ({"Test": [1]}, "json: cannot unmarshal number into Go struct field HealthConfig.Healthcheck.Test of type string"),
    ({"Retries": "3"}, "json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Retries of type "
                       "int"),
    ({"Retries": True}, "json: cannot unmarshal bool into Go struct field HealthConfig.Healthcheck.Retries of type "
                        "int"),
    ({"Interval": "1s"}, "json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of "
                         "type time.Duration"),
    ({"Interval": 1.5}, "json: cannot unmarshal number 1.5 into Go struct field HealthConfig.Healthcheck.Interval "
                        "of type time.Duration"),
    ({"Interval": 1 << 63}, "json: cannot unmarshal number 9223372036854775808 into Go struct field "
                            "HealthConfig.Healthcheck.Interval of type time.Duration"),
])  # fmt: skip
def test_validate_config_refuses_as_dockerd(hc, message):
    with pytest.raises(InvalidParameter) as e:
        health.validate_config(hc)
    assert e.value.message == message
    assert e.value.status == 400


@pytest.mark.parametrize("hc", [
    None, {}, {"Test": []}, {"Test": None}, {"Test": ["NONE"]}, {"Test": ["FOO", "x"]},
    {"Test": ["CMD", "true"], "Interval": 1_000_000, "Timeout": 0, "StartPeriod": 0, "Retries": 0},
    {"Test": ["CMD", "x"], "Unknown": 5}, {"Interval": (1 << 63) - 1, "Retries": 1 << 31},
])  # fmt: skip
def test_validate_config_accepts_what_dockerd_accepts(hc):
    health.validate_config(hc)


@pytest.mark.parametrize("user, image, merged", [
    (None, None, None),
    ({}, None, {}),
    ({"Test": [], "Interval": 0, "Retries": None}, None, {}),
    ({"Test": ["CMD", "x"], "Unknown": 5, "StartInterval": 5}, None, {"Test": ["CMD", "x"]}),
    (None, {"Test": ["CMD-SHELL", "img"], "Interval": 5 * S}, {"Test": ["CMD-SHELL", "img"], "Interval": 5 * S}),
    ({"Test": ["NONE"]}, {"Test": ["CMD-SHELL", "img"], "Interval": 5 * S},
     {"Test": ["NONE"], "Interval": 5 * S}),
    ({"Interval": S, "Retries": 7}, {"Test": ["CMD-SHELL", "img"], "Interval": 5 * S, "Timeout": 2 * S},
     {"Test": ["CMD-SHELL", "img"], "Interval": S, "Timeout": 2 * S, "Retries": 7}),
    ({"Test": ["CMD", "mine"]}, {"Test": ["CMD", "img"], "StartPeriod": 3 * S},
     {"Test": ["CMD", "mine"], "StartPeriod": 3 * S}),
])  # fmt: skip
def test_merge_config_as_dockerd(user, image, merged):
    assert health.merge_config(user, image) == merged


def test_set_config_leaves_no_key_without_a_healthcheck():
    cfg = {"Healthcheck": None}
    health.set_config(cfg, {})
    assert "Healthcheck" not in cfg
    cfg = {}
    health.set_config(cfg, {"Healthcheck": {"Test": ["CMD", "x"], "Retries": 0}})
    assert cfg["Healthcheck"] == {"Test": ["CMD", "x"]}


@pytest.mark.parametrize("config, argv", [
    ({}, None),
    ({"Healthcheck": {}}, None),
    ({"Healthcheck": {"Test": ["NONE"]}}, None),
    ({"Healthcheck": {"Test": ["FOO", "x"]}}, None),
    ({"Healthcheck": {"Test": ["CMD"]}}, []),
    ({"Healthcheck": {"Test": ["CMD", "true"]}}, ["true"]),
    ({"Healthcheck": {"Test": ["CMD", "sh", "-c", "a b"]}}, ["sh", "-c", "a b"]),
    ({"Healthcheck": {"Test": ["CMD-SHELL", "echo hi"]}}, ["/bin/sh", "-c", "echo hi"]),
    ({"Healthcheck": {"Test": ["CMD-SHELL", "echo hi"]}, "Shell": ["/bin/ash", "-xc"]}, ["/bin/ash", "-xc", "echo hi"]),
])  # fmt: skip
def test_probe_command(config, argv):
    assert health.probe_command(config) == argv


def test_health_status_and_filter_values():
    assert health.health_status({}) == "none"
    assert health.health_status({"Health": None}) == "none"
    assert health.health_status({"Health": {"Status": "healthy"}}) == "healthy"
    assert health.health_status({"Health": {"Status": ""}}) == "unhealthy"
    health.validate_health_filter(["starting", "healthy", "unhealthy", "none"])
    with pytest.raises(InvalidParameter, match="^Unrecognised filter value for health: bogus$"):
        health.validate_health_filter(["healthy", "bogus"])


# ---- State.Health bookkeeping ----------------------------------------------------------------------------

def _entry(code: int) -> dict:
    return health.result(S, 2 * S, code, "out")


def test_reset_keeps_the_log_and_clears_the_streak():
    state: dict = {}
    h = health.reset(state)
    assert state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    h.update(Status="unhealthy", FailingStreak=4, Log=[_entry(1)])
    health.reset(state)
    assert state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": [_entry(1)]}


def test_result_entry_shape():
    assert health.result(1_700_000_000 * S + 5, 1_700_000_001 * S, -1, "x") == {
        "Start": "2023-11-14T22:13:20.000000005Z", "End": "2023-11-14T22:13:21Z", "ExitCode": -1, "Output": "x"}


def test_success_is_healthy_and_failures_count_to_retries():
    h = health.reset({})
    assert health.record(h, _entry(0), retries=2, in_start_period=False) is True
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)
    assert health.record(h, _entry(1), retries=2, in_start_period=False) is False
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 1)
    assert health.record(h, _entry(-1), retries=2, in_start_period=False) is True
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 2)
    assert health.record(h, _entry(1), retries=2, in_start_period=False) is False
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 3)  # the streak keeps growing, as dockerd's
    assert health.record(h, _entry(0), retries=2, in_start_period=False) is True
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)


def test_default_retries_is_three():
    h = health.reset({})
    for _ in range(2):
        health.record(h, _entry(1), retries=0, in_start_period=False)
    assert h["Status"] == "starting"
    health.record(h, _entry(1), retries=0, in_start_period=False)
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 3)


def test_start_period_failures_do_not_count_while_starting():
    h = health.reset({})
    for _ in range(5):
        assert health.record(h, _entry(1), retries=1, in_start_period=True) is False
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    health.record(h, _entry(0), retries=1, in_start_period=True)
    assert h["Status"] == "healthy"
    # once healthy, a failure in the start period counts
    health.record(h, _entry(1), retries=1, in_start_period=True)
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 1)


def test_log_keeps_the_last_five():
    h = health.reset({})
    for code in range(8):
        health.record(h, health.result(code * S, code * S, code, str(code)), retries=100, in_start_period=False)
    assert [e["Output"] for e in h["Log"]] == ["3", "4", "5", "6", "7"]


def test_probe_output_truncation_and_bad_utf8():
    assert health.probe_output(b"hi\n", False) == "hi\n"
    assert health.probe_output(b"a" * 4096, True) == "a" * 4096 + "..."
    assert health.probe_output(b"\xff\xfe\xc3\xa9", False) == "\ufffd\ufffd\u00e9"


@pytest.mark.parametrize("ns, text", [
    (500_000_000, "500ms"), (S, "1s"), (30 * S, "30s"), (90 * S, "1m30s"), (1_500_000_000, "1.5s"),
    (3600 * S, "1h0m0s"), (1_000_000, "1ms"), (1500, "1.5\u00b5s"), (0, "0s"),
])  # fmt: skip
def test_timeout_message_uses_go_durations(ns, text):
    assert go_duration(ns) == text
    assert health.timeout_message(ns) == f"Health check exceeded timeout ({text})"


# ---- ps STATUS -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, health_, text", [
    ("running", "healthy", "Up 5 seconds (healthy)"),
    ("running", "unhealthy", "Up 5 seconds (unhealthy)"),
    ("running", "starting", "Up 5 seconds (health: starting)"),
    ("running", "none", "Up 5 seconds"),
    ("paused", "healthy", "Up 5 seconds (Paused)"),
    ("exited", "unhealthy", "Exited (137) 2 seconds ago"),
])  # fmt: skip
def test_status_text_with_health(state, health_, text):
    now = 1_000_000.0
    assert status_text(state, exit_code=137, started=now - 5, finished=now - 2, now=now, health=health_) == text


# ---- CLI flags -------------------------------------------------------------------------------------------

def _hc(*flags: str) -> object:
    values, args = RUN.parse([*flags, "busybox"])
    return build_body(values, args).get("Healthcheck", "<absent>")


def test_cli_health_flags_build_docker_healthcheck():
    assert _hc() == "<absent>"
    assert _hc("--health-cmd", "curl -f http://localhost/") == {"Test": ["CMD-SHELL", "curl -f http://localhost/"]}
    assert _hc("--health-cmd=true", "--health-interval", "1s", "--health-timeout", "500ms",
               "--health-start-period", "1m30s", "--health-retries", "5") == {
        "Test": ["CMD-SHELL", "true"], "Interval": S, "Timeout": 500_000_000, "StartPeriod": 90 * S, "Retries": 5}
    assert _hc("--health-interval", "2s") == {"Interval": 2 * S}
    assert _hc("--no-healthcheck") == {"Test": ["NONE"]}
    assert _hc("--health-interval", "0s") == "<absent>"


@pytest.mark.parametrize("flags, message", [
    (["--no-healthcheck", "--health-cmd", "x"], "hatoba: --no-healthcheck conflicts with --health-* options."),
    (["--no-healthcheck", "--health-retries", "1"], "hatoba: --no-healthcheck conflicts with --health-* options."),
    (["--health-interval", "-1s"], "hatoba: --health-interval cannot be negative."),
    (["--health-timeout", "-1ms"], "hatoba: --health-timeout cannot be negative."),
    (["--health-retries", "-1"], "hatoba: --health-retries cannot be negative."),
    (["--health-start-period", "-2s"], "hatoba: --health-start-period cannot be negative."),
])  # fmt: skip
def test_cli_health_flag_errors(flags, message):
    with pytest.raises(StatusError) as e:
        _hc(*flags)
    assert e.value.status == 125
    assert e.value.message.splitlines() == [message, "See 'hatoba run --help'."]


def test_cli_health_interval_parse_error_is_pflags():
    with pytest.raises(StatusError) as e:
        RUN.parse(["--health-interval", "xx", "busybox"])
    assert 'invalid argument "xx" for "--health-interval" flag: time: invalid duration "xx"' in e.value.message
