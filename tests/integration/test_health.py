"""Health checks on a real hatobad: probes run through exec in the container on their schedule,
`State.Health` follows dockerd's rules (retries, timeout, start period, last 5 results), `health_status`
events, `ps` STATUS and the `health` filter, NONE and the image's HEALTHCHECK, pause/stop/restart, a
daemon restart in between, and nothing left behind. Intervals are short (a few hundred ms).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from typing import Any

import pytest

Daemon = Any  # tests/integration/conftest.py's Daemon

MS = 1_000_000
S = 1_000_000_000


# ---- helpers ----------------------------------------------------------------------------------------


def _wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _create(daemon: Daemon, name: str, healthcheck: dict | None, cmd: list[str] | None = None,
            image: str = "busybox", **extra: Any) -> str:
    body: dict[str, Any] = {"Image": image, "Cmd": cmd or ["sleep", "300"], **extra}
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    status, out = daemon.api("POST", f"/containers/create?name={name}", body)
    assert status == 201, out
    return out["Id"]  # type: ignore[index]


def _run(daemon: Daemon, name: str, healthcheck: dict | None, **kw: Any) -> str:
    cid = _create(daemon, name, healthcheck, **kw)
    status, out = daemon.api("POST", f"/containers/{cid}/start")
    assert status == 204, out
    return cid


def _inspect(daemon: Daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body  # type: ignore[return-value]


def _health(daemon: Daemon, ref: str) -> dict | None:
    return _inspect(daemon, ref)["State"].get("Health")


def _wait_status(daemon: Daemon, ref: str, status: str, timeout: float = 10) -> dict:
    return _wait_for(lambda: (h := _health(daemon, ref)) and h["Status"] == status and h,
                     timeout, f"{ref} to become {status}")


def _events(daemon: Daemon, since: float, cid: str) -> list[dict]:
    filters = urllib.parse.quote(json.dumps({"container": [cid]}))
    status, raw = daemon.api("GET", f"/events?since={since:.9f}&until={time.time():.9f}&filters={filters}")
    assert status == 200
    if isinstance(raw, dict):
        return [raw]
    text = raw.decode() if isinstance(raw, bytes) else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _ps(daemon: Daemon, **filters: list[str]) -> list[dict]:
    q = urllib.parse.quote(json.dumps(filters))
    status, body = daemon.api("GET", f"/containers/json?all=1&filters={q}")
    assert status == 200, body
    return body  # type: ignore[return-value]


def _exec_dirs(daemon: Daemon, cid: str) -> list[str]:
    try:
        return os.listdir(os.path.join(daemon.exec_root, "containers", cid, "exec"))
    except FileNotFoundError:
        return []


def _rm(daemon: Daemon, *refs: str) -> None:
    for r in refs:
        daemon.api("DELETE", f"/containers/{r}?force=1")


def _alive(pid: int) -> bool:
    """Running (a zombie left to a container's pid 1 that does not reap is dead enough)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _host_procs(needle: bytes) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().rstrip(b"\0").split(b"\0") == needle.split(b" "):
                        out.append(int(pid))
            except OSError:
                pass
    return out


# ---- the basics ---------------------------------------------------------------------------------------


def test_healthy_record_events_and_exec_cleanup(daemon):
    since = time.time()
    cid = _run(daemon, "hc-ok", {"Test": ["CMD-SHELL", "echo ok; echo err >&2"], "Interval": 200 * MS})
    try:
        h = _health(daemon, cid)
        assert h == {"Status": "starting", "FailingStreak": 0, "Log": []}
        h = _wait_status(daemon, cid, "healthy")
        assert h["FailingStreak"] == 0
        entry = h["Log"][0]
        assert set(entry) == {"Start", "End", "ExitCode", "Output"}
        assert entry["ExitCode"] == 0 and entry["Output"] == "ok\nerr\n"
        assert entry["Start"].endswith("Z") and entry["Start"] <= entry["End"]
        _wait_for(lambda: len(_health(daemon, cid)["Log"]) == 5, 5, "five results")
        time.sleep(0.5)
        assert len(_health(daemon, cid)["Log"]) == 5  # only the last five are kept
        actions = [e["Action"] for e in _events(daemon, since, cid)]
        assert actions[:2] == ["create", "start"]
        assert actions[2:5] == ["exec_create: /bin/sh -c echo ok; echo err >&2",
                                "exec_start: /bin/sh -c echo ok; echo err >&2", "exec_die"]
        assert actions.count("health_status: healthy") == 1  # only on a change
        dies = [e for e in _events(daemon, since, cid) if e["Action"] == "exec_die"]
        assert all(e["Actor"]["Attributes"]["exitCode"] == "0" and e["Actor"]["Attributes"]["execID"] for e in dies)
        # probes are not left in ExecIDs, their sessions are gone
        info = _inspect(daemon, cid)
        assert info["ExecIDs"] is None or len(info["ExecIDs"]) <= 1
        _wait_for(lambda: len(_exec_dirs(daemon, cid)) <= 1, 2, "exec dirs to go")
        # the CLI's views
        p = daemon.hatoba("inspect", "--format", "{{.State.Health.Status}}", "hc-ok", check=True)
        assert p.stdout == b"healthy\n"
        p = daemon.hatoba("ps", "--filter", "name=hc-ok", "--format", "{{.Status}}", check=True)
        assert p.stdout.decode().strip().endswith("(healthy)") and p.stdout.startswith(b"Up ")
    finally:
        _rm(daemon, cid)


def test_unhealthy_after_retries_and_back(daemon):
    since = time.time()
    cid = _run(daemon, "hc-bad", {"Test": ["CMD-SHELL", "echo no; test -e /ok"], "Interval": 200 * MS, "Retries": 2})
    try:
        h = _wait_for(lambda: (x := _health(daemon, cid)) and x["Log"] and x, 5, "a first result")
        assert (h["Status"], h["FailingStreak"]) == ("starting", 1)
        assert h["Log"][0]["ExitCode"] == 1 and h["Log"][0]["Output"] == "no\n"
        h = _wait_status(daemon, cid, "unhealthy")
        assert h["FailingStreak"] >= 2
        p = daemon.hatoba("ps", "--filter", "name=hc-bad", "--format", "{{.Status}}", check=True)
        assert p.stdout.decode().strip().endswith("(unhealthy)")
        daemon.hatoba("exec", "hc-bad", "touch", "/ok", check=True)
        h = _wait_status(daemon, cid, "healthy")
        assert h["FailingStreak"] == 0
        actions = [e["Action"] for e in _events(daemon, since, cid) if e["Action"].startswith("health_status")]
        assert actions == ["health_status: unhealthy", "health_status: healthy"]
    finally:
        _rm(daemon, cid)


def test_timeout_kills_the_probe(daemon):
    cid = _run(daemon, "hc-slow", {"Test": ["CMD-SHELL", "echo partial; sleep 4343 & sleep 4344"],
                                    "Interval": 300 * MS, "Timeout": 500 * MS, "Retries": 1})
    try:
        first = _wait_for(lambda: _host_procs(b"sleep 4343") + _host_procs(b"sleep 4344"), 5, "the first probe")
        h = _wait_status(daemon, cid, "unhealthy")
        entry = h["Log"][0]
        assert entry["ExitCode"] == -1
        assert entry["Output"] == "Health check exceeded timeout (500ms)"
        # the probe and its background child were killed with it
        _wait_for(lambda: not any(_alive(pid) for pid in first), 2, "the first probe's processes to die")
        assert len(_exec_dirs(daemon, cid)) <= 1  # the killed probe's session is gone (a next one may run)
    finally:
        _rm(daemon, cid)
    assert _host_procs(b"sleep 4343") == [] and _host_procs(b"sleep 4344") == []
    assert not os.path.exists(os.path.join(daemon.exec_root, "containers", cid))


def test_output_is_truncated_as_dockerd(daemon):
    cid = _run(daemon, "hc-big", {"Test": ["CMD-SHELL", "head -c 5000 /dev/zero | tr '\\0' a"],
                                   "Interval": 200 * MS})
    try:
        h = _wait_status(daemon, cid, "healthy")
        assert h["Log"][0]["Output"] == "a" * 4096 + "..."
    finally:
        _rm(daemon, cid)


def test_start_period(daemon):
    # fails until its fourth run; within the start period those failures do not count
    test = "echo x >> /counter; test $(wc -l < /counter) -ge 4"
    since = time.time()
    cid = _run(daemon, "hc-sp", {"Test": ["CMD-SHELL", test], "Interval": 200 * MS, "Retries": 1,
                                  "StartPeriod": 3 * S})
    try:
        h = _wait_status(daemon, cid, "healthy")
        assert [e["ExitCode"] for e in h["Log"][:3]] == [1, 1, 1]
        actions = [e["Action"] for e in _events(daemon, since, cid) if e["Action"].startswith("health_status")]
        assert actions == ["health_status: healthy"]
    finally:
        _rm(daemon, cid)
    # the same without a start period: the first failure makes it unhealthy
    cid = _run(daemon, "hc-nosp", {"Test": ["CMD-SHELL", test], "Interval": 200 * MS, "Retries": 1})
    try:
        h = _wait_status(daemon, cid, "unhealthy")
        assert h["FailingStreak"] == 1 and len(h["Log"]) == 1
    finally:
        _rm(daemon, cid)


def test_failed_exec_is_a_failed_check(daemon):
    cid = _run(daemon, "hc-noexe", {"Test": ["CMD", "/nonexistent"], "Interval": 200 * MS, "Retries": 1})
    try:
        h = _wait_status(daemon, cid, "unhealthy")
        assert h["Log"][0]["ExitCode"] == -1
        assert h["Log"][0]["Output"].startswith("OCI runtime exec failed: ")
        assert "/nonexistent" in h["Log"][0]["Output"]
    finally:
        _rm(daemon, cid)


def test_cmd_form_runs_as_the_containers_user_and_workdir(daemon):
    cid = _run(daemon, "hc-user", {"Test": ["CMD", "sh", "-c", "echo $(id -u) $PWD $FOO"], "Interval": 200 * MS},
               User="1000:1000", WorkingDir="/tmp", Env=["FOO=bar"])
    try:
        h = _wait_status(daemon, cid, "healthy")
        assert h["Log"][0]["Output"] == "1000 /tmp bar\n"
    finally:
        _rm(daemon, cid)


# ---- config: NONE, the image's HEALTHCHECK, validation, CLI flags ---------------------------------------


def test_no_healthcheck_and_unknown_type(daemon):
    cid = _run(daemon, "hc-none", {"Test": ["NONE"]})
    cid2 = _run(daemon, "hc-foo", {"Test": ["FOO", "x"], "Interval": 100 * MS})
    try:
        for c in (cid, cid2):
            info = _inspect(daemon, c)
            assert "Health" not in info["State"]
        assert _inspect(daemon, cid)["Config"]["Healthcheck"] == {"Test": ["NONE"]}
        time.sleep(0.4)
        assert "Health" not in _inspect(daemon, cid2)["State"]
        p = daemon.hatoba("ps", "--filter", "name=hc-none", "--format", "{{.Status}}", check=True)
        assert "(" not in p.stdout.decode()
    finally:
        _rm(daemon, cid, cid2)


def test_image_healthcheck_is_the_default(daemon):
    src = _create(daemon, "hc-src", {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 200 * MS,
                                     "Retries": 4})
    cids: list[str] = []
    try:
        p = daemon.hatoba("commit", "hc-src", "hc-img:v1", check=True)
        iid = p.stdout.decode().strip()
        status, img = daemon.api("GET", f"/images/{iid}/json")
        assert img["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 200 * MS,
                                                "Retries": 4}
        # no healthcheck given: the image's
        cids.append(_run(daemon, "hc-inherit", None, image="hc-img:v1"))
        assert _inspect(daemon, "hc-inherit")["Config"]["Healthcheck"] == img["Config"]["Healthcheck"]
        h = _wait_status(daemon, "hc-inherit", "healthy")
        assert h["Log"][0]["Output"] == "from-image\n"
        # fields given override, the others come from the image
        cids.append(_create(daemon, "hc-merge", {"Test": [], "Retries": 9}, image="hc-img:v1"))
        assert _inspect(daemon, "hc-merge")["Config"]["Healthcheck"] == {
            "Test": ["CMD-SHELL", "echo from-image"], "Interval": 200 * MS, "Retries": 9}
        # --no-healthcheck disables it
        p = daemon.hatoba("run", "-d", "--name", "hc-off", "--no-healthcheck", "hc-img:v1", "sleep", "300", check=True)
        cids.append(p.stdout.decode().strip())
        info = _inspect(daemon, "hc-off")
        assert info["Config"]["Healthcheck"]["Test"] == ["NONE"] and "Health" not in info["State"]
        time.sleep(0.5)
        assert "Health" not in _inspect(daemon, "hc-off")["State"]
    finally:
        _rm(daemon, src, *cids)
        daemon.hatoba("rmi", "hc-img:v1")


@pytest.mark.parametrize("hc, message", [
    ({"Test": ["CMD", "true"], "Interval": 1}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": 10}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": "true"}, "json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Test of type "
                       "[]string"),
])  # fmt: skip
def test_create_refuses_bad_healthchecks(daemon, hc, message):
    status, body = daemon.api("POST", "/containers/create?name=hc-refused",
                              {"Image": "busybox", "Cmd": ["true"], "Healthcheck": hc})
    assert (status, body) == (400, {"message": message})
    assert daemon.api("GET", "/containers/hc-refused/json")[0] == 404


def test_cli_flags(daemon):
    p = daemon.hatoba("run", "-d", "--name", "hc-cli", "--health-cmd", "test -e /etc/passwd",
                      "--health-interval", "200ms", "--health-timeout", "2s", "--health-retries", "2",
                      "--health-start-period", "1s", "busybox", "sleep", "300", check=True)
    try:
        assert _inspect(daemon, "hc-cli")["Config"]["Healthcheck"] == {
            "Test": ["CMD-SHELL", "test -e /etc/passwd"], "Interval": 200 * MS, "Timeout": 2 * S,
            "StartPeriod": S, "Retries": 2}
        p = daemon.hatoba("ps", "--filter", "name=hc-cli", "--format", "{{.Status}}", check=True)
        assert p.stdout.decode().strip().endswith("(health: starting)")
        _wait_status(daemon, "hc-cli", "healthy")
    finally:
        _rm(daemon, "hc-cli")
    p = daemon.hatoba("create", "--no-healthcheck", "--health-retries", "3", "busybox")
    assert p.returncode == 125
    assert p.stderr.decode().startswith("hatoba: --no-healthcheck conflicts with --health-* options.\n")
    p = daemon.hatoba("run", "--health-interval", "-1s", "busybox")
    assert p.returncode == 125 and b"--health-interval cannot be negative" in p.stderr


# ---- ps: the health filter -----------------------------------------------------------------------------


def test_health_filter(daemon):
    ok = _run(daemon, "hc-f-ok", {"Test": ["CMD", "true"], "Interval": 200 * MS})
    bad = _run(daemon, "hc-f-bad", {"Test": ["CMD", "false"], "Interval": 200 * MS, "Retries": 1})
    slow = _run(daemon, "hc-f-starting", {"Test": ["CMD", "true"], "Interval": 300 * S})
    plain = _run(daemon, "hc-f-none", None)
    try:
        _wait_status(daemon, ok, "healthy")
        _wait_status(daemon, bad, "unhealthy")
        mine = {ok, bad, slow, plain}

        def ids(*values: str) -> set[str]:
            return {c["Id"] for c in _ps(daemon, health=list(values))} & mine

        assert ids("healthy") == {ok}
        assert ids("unhealthy") == {bad}
        assert ids("starting") == {slow}
        assert ids("none") == {plain}
        assert ids("healthy", "unhealthy") == {ok, bad}
        statuses = {c["Id"]: c["Status"] for c in _ps(daemon) if c["Id"] in mine}
        assert statuses[ok].endswith(" (healthy)") and statuses[bad].endswith(" (unhealthy)")
        assert statuses[slow].endswith(" (health: starting)") and "(" not in statuses[plain]
        q = urllib.parse.quote(json.dumps({"health": ["bogus"]}))
        assert daemon.api("GET", f"/containers/json?filters={q}") == (
            400, {"message": "Unrecognised filter value for health: bogus"})
    finally:
        _rm(daemon, ok, bad, slow, plain)


# ---- lifecycle: pause, stop, restart, daemon restart -----------------------------------------------------


def test_pause_stops_probes_and_unpause_resumes(daemon):
    cid = _run(daemon, "hc-pause", {"Test": ["CMD", "true"], "Interval": 200 * MS})
    try:
        _wait_status(daemon, cid, "healthy")
        daemon.hatoba("pause", "hc-pause", check=True)
        time.sleep(0.3)  # a probe in flight ends (killed) meanwhile
        since = time.time()
        n = len(_health(daemon, cid)["Log"])
        time.sleep(0.8)
        assert not [e for e in _events(daemon, since, cid) if e["Action"].startswith("exec_")]
        h = _health(daemon, cid)
        assert h["Status"] == "healthy" and len(h["Log"]) == n
        p = daemon.hatoba("ps", "--filter", "name=hc-pause", "--format", "{{.Status}}", check=True)
        assert p.stdout.decode().strip().endswith("(Paused)")
        daemon.hatoba("unpause", "hc-pause", check=True)
        _wait_for(lambda: [e for e in _events(daemon, since, cid) if e["Action"] == "exec_die"], 5, "probes again")
        assert _health(daemon, cid)["Status"] == "healthy"
    finally:
        _rm(daemon, cid)


def test_stop_keeps_the_record_and_start_resets_it(daemon):
    cid = _run(daemon, "hc-stop", {"Test": ["CMD-SHELL", "exit 1"], "Interval": 200 * MS, "Retries": 1})
    try:
        _wait_status(daemon, cid, "unhealthy")
        daemon.hatoba("stop", "-t", "0", "hc-stop", check=True)
        h = _health(daemon, cid)
        n = len(h["Log"])
        time.sleep(0.6)
        h2 = _health(daemon, cid)
        assert h2["Status"] == "unhealthy" and len(h2["Log"]) == n  # kept, and no more probes
        assert _exec_dirs(daemon, cid) == []
        ps = _ps(daemon, health=["unhealthy"])
        assert cid in {c["Id"] for c in ps}  # as dockerd: an exited container keeps its last health
        assert not _ps(daemon, name=["hc-stop"])[0]["Status"].endswith(")")
        daemon.hatoba("start", "hc-stop", check=True)
        h3 = _health(daemon, cid)
        assert (h3["Status"], h3["FailingStreak"]) == ("starting", 0) and len(h3["Log"]) == n
        _wait_status(daemon, cid, "unhealthy")
    finally:
        _rm(daemon, cid)


def test_container_exit_stops_probes(daemon):
    cid = _run(daemon, "hc-exit", {"Test": ["CMD", "true"], "Interval": 200 * MS}, cmd=["sleep", "1"])
    try:
        _wait_status(daemon, cid, "healthy")
        _wait_for(lambda: not _inspect(daemon, cid)["State"]["Running"], 5, "exit")
        since = time.time()
        time.sleep(0.6)
        assert not [e for e in _events(daemon, since, cid) if e["Action"].startswith("exec_")]
        assert _health(daemon, cid)["Status"] == "healthy"
    finally:
        _rm(daemon, cid)


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_health_survives_a_daemon_restart(daemon, how):
    cid = _run(daemon, f"hc-restore-{how}", {"Test": ["CMD-SHELL", "exit 1"], "Interval": 200 * MS,
                                             "Retries": 2})
    try:
        _wait_status(daemon, cid, "unhealthy")
        daemon.restart("kill9" if how == "kill9" else "term")
        h = _health(daemon, cid)
        assert h["Status"] == "unhealthy"  # resumed, not reset
        n = h["FailingStreak"]
        _wait_for(lambda: _health(daemon, cid)["FailingStreak"] > n, 5, "probes after the restart")
    finally:
        _rm(daemon, cid)


def test_remove_during_a_probe_leaves_nothing(daemon):
    cid = _run(daemon, "hc-rm", {"Test": ["CMD-SHELL", "sleep 4545"], "Interval": 100 * MS, "Timeout": 30 * S})
    _wait_for(lambda: _host_procs(b"sleep 4545"), 5, "a probe in flight")
    _rm(daemon, cid)
    _wait_for(lambda: not _host_procs(b"sleep 4545"), 5, "the probe to go")
    assert not os.path.exists(os.path.join(daemon.exec_root, "containers", cid))


def test_docker_cli_sees_the_same(daemon):
    """The docker CLI against hatobad: its --health-* flags, ps STATUS and the health filter, inspect."""
    p = daemon.docker("run", "-d", "--name", "hc-docker", "--health-cmd", "true", "--health-interval", "200ms",
                      "busybox", "sleep", "300", check=True)
    cid = p.stdout.decode().strip()
    try:
        assert _inspect(daemon, cid)["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 200 * MS}
        _wait_status(daemon, cid, "healthy")
        p = daemon.docker("ps", "--filter", "health=healthy", "--filter", "name=hc-docker",
                          "--format", "{{.Names}} {{.Status}}", check=True)
        assert p.stdout.decode().startswith("hc-docker Up ") and p.stdout.decode().strip().endswith("(healthy)")
        p = daemon.docker("inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}",
                          "hc-docker", check=True)
        assert p.stdout == b"healthy 0\n"
    finally:
        _rm(daemon, cid)
