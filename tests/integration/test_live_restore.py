"""Live-restore and restart policies: containers outlive a crashed (kill -9) or stopped hatobad,
the next hatobad re-adopts them, reaps the ones that exited meanwhile and applies Docker's
restart-policy rules at daemon start.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import pytest

HATOBA = os.path.join(os.path.dirname(sys.executable), "hatoba")
Daemon = Any  # tests/integration/conftest.py's Daemon

TICKER = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'
# exits with 5 soon after SIGTERM (pid 1 only gets the signals it installs a handler for)
TRAPPER = "trap 'exit 5' TERM; while true; do sleep 0.1; done"


# ---- helpers ----------------------------------------------------------------------------------------


def _ts(s: str) -> float:
    """RFC 3339 (nanosecond precision, Z or offset) → epoch seconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    assert m, s
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + (float("0." + m.group(2)) if m.group(2) else 0.0)


def _wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _inspect(daemon: Daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{ref}/json")
    assert status == 200, (ref, status, body)
    assert isinstance(body, dict)
    return body


def _exists(daemon: Daemon, ref: str) -> bool:
    return daemon.api("GET", f"/containers/{ref}/json")[0] == 200


def _run_d(daemon: Daemon, name: str, *args: str) -> str:
    p = daemon.hatoba("run", "-d", "--name", name, *args, check=True)
    return p.stdout.decode().strip()


def _ticks(daemon: Daemon, name: str) -> list[tuple[float, int]]:
    """(timestamp, counter) of every ticker line in the container's log."""
    out = daemon.hatoba("logs", "-t", name, check=True).stdout.decode()
    ticks = []
    for line in out.splitlines():
        ts, _, msg = line.partition(" ")
        m = re.fullmatch(r"tick (\d+)", msg)
        assert m, line
        ticks.append((_ts(ts), int(m.group(1))))
    return ticks


def _restart_daemon(daemon: Daemon, how: str, during_downtime=None) -> tuple[float, float]:
    """Take hatobad down (kill -9 or SIGTERM), run `during_downtime`, bring it back.
    Returns (time it went down, time the new daemon started coming up)."""
    def downtime() -> None:
        assert not daemon.ping()
        if during_downtime:
            during_downtime()

    return daemon.restart("kill9" if how == "kill9" else "term", downtime)


def _rm(daemon: Daemon, *names: str) -> None:
    for n in names:
        daemon.hatoba("rm", "-f", n)


# ---- 1. kill -9 of the daemon ---------------------------------------------------------------------------


def test_kill9_live_restore(daemon):
    names = [f"lr-tick{i}" for i in range(5)]
    try:
        for n in names:
            _run_d(daemon, n, "busybox", "sh", "-c", TICKER)
        _run_d(daemon, "lr-exit42", "busybox", "sh", "-c", "sleep 2; exit 42")
        pids = {n: _inspect(daemon, n)["State"]["Pid"] for n in names}
        assert all(pids.values()), pids
        _wait_for(lambda: all(len(_ticks(daemon, n)) >= 2 for n in names), 5, "first ticks")

        def downtime() -> None:
            # the exit-42 container exits while nobody watches; let the tickers tick meanwhile
            time.sleep(3)

        down, up = _restart_daemon(daemon, "kill9", downtime)
        ready = time.time()

        # the tickers were re-adopted: same process, still running
        ps = daemon.hatoba("ps", check=True).stdout.decode()
        for n in names:
            st = _inspect(daemon, n)["State"]
            assert st["Status"] == "running" and st["Running"], (n, st)
            assert st["Pid"] == pids[n], (n, st["Pid"], pids[n])
            row = next((r for r in ps.splitlines() if r.endswith(" " + n)), None)
            assert row and " Up " in row, ps
        # the one that exited while the daemon was down was reaped at restore
        st = _inspect(daemon, "lr-exit42")["State"]
        assert (st["Status"], st["Running"], st["ExitCode"]) == ("exited", False, 42), st
        assert down < _ts(st["FinishedAt"]) < up, (down, st["FinishedAt"], up)
        ps_a = daemon.hatoba("ps", "-a", check=True).stdout.decode()
        row = next(r for r in ps_a.splitlines() if r.endswith(" lr-exit42"))
        assert "Exited (42)" in row, row
        assert "lr-exit42" not in ps

        # the logs kept flowing: before the kill, during the downtime and after the restart, no gaps
        _wait_for(lambda: all(_ticks(daemon, n)[-1][0] > ready + 0.3 for n in names), 5, "ticks after restart")
        for n in names:
            ticks = _ticks(daemon, n)
            counters = [c for _, c in ticks]
            assert counters == list(range(len(counters))), (n, counters)
            assert any(t < down for t, _ in ticks), n
            assert any(down < t < up for t, _ in ticks), n
            assert any(t > ready for t, _ in ticks), n

        # the re-adopted containers are fully manageable
        p = daemon.hatoba("stop", "-t", "1", names[0])
        assert p.returncode == 0 and p.stdout.decode().strip() == names[0], p
        st = _inspect(daemon, names[0])["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", 137), st
        assert not os.path.exists(f"/proc/{pids[names[0]]}")

        p = daemon.hatoba("rm", "-f", names[1])
        assert p.returncode == 0, p
        assert not _exists(daemon, names[1])

        waiter = subprocess.Popen([HATOBA, "wait", names[2]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=daemon.env)
        try:
            time.sleep(0.5)
            assert waiter.poll() is None, waiter.communicate()
            daemon.hatoba("kill", names[2], check=True)
            out, err = waiter.communicate(timeout=10)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        assert (waiter.returncode, out) == (0, b"137\n"), err
        st = _inspect(daemon, names[2])["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", 137), st
    finally:
        _rm(daemon, *names, "lr-exit42")


# ---- 2. graceful daemon stop -----------------------------------------------------------------------------


def test_sigterm_keeps_containers_running(daemon):
    names = ["lr-term0", "lr-term1"]
    try:
        for n in names:
            _run_d(daemon, n, "busybox", "sh", "-c", TICKER)
        pids = {n: _inspect(daemon, n)["State"]["Pid"] for n in names}
        _wait_for(lambda: all(len(_ticks(daemon, n)) >= 2 for n in names), 5, "first ticks")
        down, up = _restart_daemon(daemon, "term", lambda: time.sleep(1))
        ready = time.time()
        for n in names:
            st = _inspect(daemon, n)["State"]
            assert (st["Status"], st["Pid"]) == ("running", pids[n]), st
        _wait_for(lambda: all(_ticks(daemon, n)[-1][0] > ready + 0.3 for n in names), 5, "ticks after restart")
        for n in names:
            ticks = _ticks(daemon, n)
            counters = [c for _, c in ticks]
            assert counters == list(range(len(counters))), (n, counters)
            assert any(down < t < up for t, _ in ticks), n
        assert daemon.hatoba("stop", "-t", "1", names[0]).returncode == 0
        assert _inspect(daemon, names[0])["State"]["Status"] == "exited"
    finally:
        _rm(daemon, *names)


# ---- 3. restart policies -----------------------------------------------------------------------------------


def test_restart_on_failure_max_retries(daemon):
    try:
        _run_d(daemon, "lr-onfail", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")

        def settled():
            c = _inspect(daemon, "lr-onfail")
            st = c["State"]
            return c if c["RestartCount"] == 2 and st["Status"] == "exited" else None

        c = _wait_for(settled, 10, "on-failure:2 to give up")
        assert c["State"]["ExitCode"] == 1 and not c["State"]["Restarting"], c["State"]
        time.sleep(0.5)
        c = _inspect(daemon, "lr-onfail")
        assert (c["RestartCount"], c["State"]["Status"]) == (2, "exited"), c["State"]
        assert "Exited (1)" in daemon.hatoba("ps", "-a", check=True).stdout.decode()
    finally:
        _rm(daemon, "lr-onfail")


def test_restart_always_and_manual_stop(daemon):
    try:
        _run_d(daemon, "lr-always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 0")
        _wait_for(lambda: _inspect(daemon, "lr-always")["RestartCount"] >= 2, 10, "always to restart twice")
        p = daemon.hatoba("stop", "-t", "1", "lr-always")
        assert p.returncode == 0, p
        c = _inspect(daemon, "lr-always")
        assert c["State"]["Status"] == "exited" and not c["State"]["Running"], c["State"]
        count = c["RestartCount"]
        time.sleep(1.5)  # longer than the run time plus the back-off at this count
        c = _inspect(daemon, "lr-always")
        assert c["State"]["Status"] == "exited" and c["RestartCount"] == count, c["State"]
    finally:
        _rm(daemon, "lr-always")


def test_kill_is_a_manual_stop(daemon):
    """`docker kill` of an `always` container is not undone by the restart policy."""
    try:
        _run_d(daemon, "lr-killed", "--restart", "always", "busybox", "sh", "-c", TRAPPER)
        daemon.hatoba("kill", "lr-killed", check=True)
        _wait_for(lambda: _inspect(daemon, "lr-killed")["State"]["Status"] == "exited", 5, "the kill")
        time.sleep(0.7)
        c = _inspect(daemon, "lr-killed")
        assert (c["State"]["Status"], c["State"]["ExitCode"], c["RestartCount"]) == ("exited", 137, 0), c["State"]
    finally:
        _rm(daemon, "lr-killed")


def test_restart_backoff_survives_daemon_crash(daemon):
    """A container waiting out its restart back-off when the daemon dies is restarted by the next
    daemon, and that exit is not counted twice."""
    try:
        _run_d(daemon, "lr-backoff", "--restart", "on-failure:5", "busybox", "sh", "-c", "echo run; exit 1")

        def in_last_backoff():
            c = _inspect(daemon, "lr-backoff")
            return c["RestartCount"] == 5 and c["State"]["Restarting"]

        _wait_for(in_last_backoff, 10, "the fifth restart's back-off (1.6 s)", interval=0.02)
        _restart_daemon(daemon, "kill9")

        def settled():
            c = _inspect(daemon, "lr-backoff")
            return c if c["State"]["Status"] == "exited" and not c["State"]["Restarting"] else None

        c = _wait_for(settled, 10, "the last run")
        assert (c["RestartCount"], c["State"]["ExitCode"]) == (5, 1), c
        runs = daemon.hatoba("logs", "lr-backoff", check=True).stdout.decode().split()
        assert runs == ["run"] * 6, runs
    finally:
        _rm(daemon, "lr-backoff")


@pytest.mark.parametrize("how", ["kill9", "term"])
def test_restart_policies_across_daemon_restart(daemon, how):
    """Docker's rules at daemon start: `always` comes back even when it was stopped manually,
    `unless-stopped` only when it was not; both come back when their process died meanwhile;
    `no` stays exited; an exited `--rm` container is removed."""
    p = f"lr-{how}-"
    specs = {
        "always-stopped": ["--restart", "always"],
        "unless-stopped-stopped": ["--restart", "unless-stopped"],
        "always-died": ["--restart", "always"],
        "unless-stopped-died": ["--restart", "unless-stopped"],
        "no-died": ["--restart", "no"],
        "rm-died": ["--rm"],
        "always-running": ["--restart", "always"],
    }
    try:
        for n, opts in specs.items():
            _run_d(daemon, p + n, *opts, "busybox", "sh", "-c", TRAPPER)
        for n in ("always-stopped", "unless-stopped-stopped"):
            assert daemon.hatoba("stop", p + n).returncode == 0
            assert _inspect(daemon, p + n)["State"]["ExitCode"] == 5
        info = {n: _inspect(daemon, p + n) for n in specs}
        died = ["always-died", "unless-stopped-died", "no-died", "rm-died"]

        def kill_some() -> None:
            before = len(daemon.conmons())
            for n in died:
                os.kill(info[n]["State"]["Pid"], signal.SIGTERM)
            # each container's conmon records the exit and goes away
            _wait_for(lambda: len(daemon.conmons()) <= before - len(died), 5, "conmons of the killed ones to exit")

        down, _ = _restart_daemon(daemon, how, kill_some)

        def state(n):
            return _inspect(daemon, p + n)["State"]

        # live-restored, not restarted
        st = state("always-running")
        assert (st["Status"], st["Pid"]) == ("running", info["always-running"]["State"]["Pid"]), st
        # `always` comes back after a daemon restart even though it was stopped manually
        _wait_for(lambda: state("always-stopped")["Status"] == "running", 5, "always-stopped to be started")
        # `unless-stopped` stopped manually stays stopped
        st = state("unless-stopped-stopped")
        assert (st["Status"], st["ExitCode"]) == ("exited", 5), st
        # died while the daemon was down: restarted per policy
        for n in ("always-died", "unless-stopped-died"):
            _wait_for(lambda n=n: state(n)["Status"] == "running", 5, f"{n} to be restarted")
            assert state(n)["Pid"] != info[n]["State"]["Pid"]
        st = state("no-died")
        assert (st["Status"], st["ExitCode"]) == ("exited", 5), st
        assert down < _ts(st["FinishedAt"]), st
        _wait_for(lambda: not _exists(daemon, p + "rm-died"), 5, "the --rm container to be removed")
        # nothing is restarted twice: the restarted ones keep running
        time.sleep(0.5)
        for n in ("always-stopped", "always-died", "unless-stopped-died", "always-running"):
            assert state(n)["Status"] == "running", n
        # and a manual stop after the restart still sticks
        assert daemon.hatoba("stop", p + "always-died").returncode == 0
        time.sleep(0.5)
        assert state("always-died")["Status"] == "exited"
    finally:
        _rm(daemon, *(p + n for n in specs))


# ---- 4. run --rm -------------------------------------------------------------------------------------------


def test_run_rm_exit_code(daemon):
    p = daemon.hatoba("run", "--rm", "--name", "lr-rm", "busybox", "sh", "-c", "echo bye; exit 3")
    assert (p.returncode, p.stdout) == (3, b"bye\n"), p.stderr
    assert not _exists(daemon, "lr-rm")
    assert "lr-rm" not in daemon.hatoba("ps", "-a", check=True).stdout.decode()


# ---- pidfile ------------------------------------------------------------------------------------------------


def test_pidfile(daemon):
    """A second hatobad on the same pidfile is refused; a stale pidfile whose pid now belongs to
    some other process (after a crash) is not."""
    p = subprocess.run([os.path.join(os.path.dirname(HATOBA), "hatobad"), "-H",
                        f"unix://{daemon.root}/second.sock", "--data-root", daemon.data_root, "--exec-root",
                        daemon.exec_root, "--pidfile", daemon.pidfile, "--cgroup-parent", daemon.cgroup_parent,
                        "--config-file", "/nonexistent"], capture_output=True, timeout=30)
    assert p.returncode != 0 and b"pid file found" in p.stderr, p
    assert daemon.ping()
    other = subprocess.Popen(["tail", "-f", os.path.join(daemon.root, "hatobad.log")], stdout=subprocess.DEVNULL)
    try:
        with daemon.down("kill9"), open(daemon.pidfile, "w") as f:
            f.write(str(other.pid))
    finally:
        other.kill()
        other.wait()
    with open(daemon.pidfile) as f:
        assert int(f.read()) == daemon.proc.pid


def test_on_failure_restarted_at_daemon_start(daemon):
    """dockerd's rule: at start it restarts an on-failure container that exited non-zero with retries left."""
    daemon.hatoba("run", "--name", "onfail-boot", "busybox", "sh", "-c", "exit 1")
    daemon.hatoba("run", "--name", "onfail-ok", "busybox", "true")
    try:
        for name in ("onfail-boot", "onfail-ok"):
            p = daemon.hatoba("update", "--restart", "on-failure:1", name)
            assert p.returncode == 0, p.stderr
        started_before = _inspect(daemon, "onfail-boot")["State"]["StartedAt"]
        _restart_daemon(daemon, "sigterm")
        _wait_for(lambda: _inspect(daemon, "onfail-boot")["State"]["StartedAt"] != started_before, 10,
                  "the on-failure container to be started again")
        ok = _inspect(daemon, "onfail-ok")["State"]
        assert ok["Status"] == "exited" and ok["ExitCode"] == 0, ok
    finally:
        _rm(daemon, "onfail-boot", "onfail-ok")
