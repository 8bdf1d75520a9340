"""Docker health checks: the `Config.Healthcheck` rules (types and ranges checked at create, the image's
HEALTHCHECK as default) and `HealthChecks`, which runs each running container's probe on its schedule
and keeps `State.Health` = {"Status", "FailingStreak", "Log"}, as dockerd 20.10 does (daemon/health.go):

- `Test`: `["NONE"]` disables; `["CMD", arg...]` execs the args; `["CMD-SHELL", cmd]` runs `cmd` with the
  container's `Shell` (default `/bin/sh -c`); `[]` or no `Healthcheck` inherits the image's; any other
  first word means no checks.
- `Interval` (30 s) is the pause from the end of one probe to the start of the next, and before the
  first one; `Timeout` (30 s) bounds a probe: one that runs longer is killed and counts as a failure
  (exit -1, "Health check exceeded timeout (30s)"); `Retries` (3) consecutive failures make the container
  "unhealthy"; while it is still "starting", a failure that began within `StartPeriod` (0) of the
  container's start does not count.
- Probes run through exec (`exec_create`/`exec_start`/`exec_die` events), as the container's user in
  its working directory; stdout and stderr are kept together, cut at 4096 bytes (then "..." is added).
  The last 5 results are kept; a status change emits `health_status: <status>`; `State.Health` is
  saved with the container record after every probe.
- The monitor starts with the container (status reset to "starting", the log kept), stops when it
  exits, is paused or removed, and resumes where it was after an unpause or a daemon restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from hatoba.errors import HatobaError, InvalidParameter
from hatoba.golang import go_duration, rfc3339_nano, unix_seconds
from hatoba.schema import jsonload

if TYPE_CHECKING:
    from hatoba.engine.container import Container
    from hatoba.engine.events import Events

log = logging.getLogger("hatoba.engine.health")

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000  # 1ms: dockerd refuses shorter non-zero durations
MAX_OUTPUT = 4096
MAX_LOG = 5

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)

_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "Retries")  # API 1.41's HealthConfig
_DURATIONS = ("Interval", "Timeout", "StartPeriod")
_INT64 = (-(1 << 63), (1 << 63) - 1)


# ---- Config.Healthcheck -----------------------------------------------------------------------------


def _type_error(field: str, v: object, go_type: str) -> InvalidParameter:
    kind = jsonload.kind(v)
    if kind == "number" and go_type in ("int", "time.Duration"):  # Go quotes a number that does not fit
        kind = f"number {v!r}"
    return InvalidParameter(f"json: cannot unmarshal {kind} into Go struct field {field} of type {go_type}")


def validate_config(hc: object) -> None:
    """Refuse a `Healthcheck` as dockerd's create does: Go's JSON type errors, then its range checks
    (durations of 0 or at least 1ms, retries not negative). `None` (no healthcheck) is valid."""
    if hc is None:
        return
    if not isinstance(hc, dict):
        raise _type_error("ContainerConfigWrapper.Healthcheck", hc, "container.HealthConfig")
    test = hc.get("Test")
    if test is not None:
        if not isinstance(test, list):
            raise _type_error("HealthConfig.Healthcheck.Test", test, "[]string")
        for word in test:
            if not isinstance(word, str):
                raise _type_error("HealthConfig.Healthcheck.Test", word, "string")
    for key in (*_DURATIONS, "Retries"):
        v = hc.get(key)
        go_type = "int" if key == "Retries" else "time.Duration"
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _type_error(f"HealthConfig.Healthcheck.{key}", v, go_type)
        if isinstance(v, float) or not _INT64[0] <= v <= _INT64[1]:
            raise _type_error(f"HealthConfig.Healthcheck.{key}", v, go_type)
    for key in _DURATIONS:
        v = hc.get(key) or 0
        if v != 0 and v < MIN_DURATION:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than {go_duration(MIN_DURATION)}")
    if (hc.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")


def normalize_config(hc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored form: API 1.41's fields only, zero ones left out (Go's `omitempty`)."""
    if hc is None:
        return None
    return {k: hc[k] for k in _FIELDS if hc.get(k)}


def merge_config(user: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """dockerd's merge of a create's `Healthcheck` over the image's: no user healthcheck takes the
    image's; otherwise each empty user field (Test [], zero durations, zero retries) takes the image's."""
    user, image = normalize_config(user), normalize_config(image)
    if user is None:
        return dict(image) if image is not None else None
    if image is None:
        return user
    return normalize_config({k: user.get(k) or image.get(k) for k in _FIELDS})


def set_config(cfg: dict[str, Any], image_cfg: dict[str, Any]) -> None:
    """Put the merged `Healthcheck` into a new container's config (no key when there is none)."""
    merged = merge_config(cfg.get("Healthcheck"), image_cfg.get("Healthcheck"))
    if merged is None:
        cfg.pop("Healthcheck", None)
    else:
        cfg["Healthcheck"] = merged


def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The argv a container's probe execs, `[]` for a CMD without one, None when it has no checks."""
    hc = config.get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test:
        return None
    kind = test[0]
    if kind == "CMD":
        return list(test[1:])
    if kind == "CMD-SHELL":
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + list(test[1:])
    if kind != "NONE":
        log.warning("Unknown healthcheck type '%s' (expected 'CMD')", kind)
    return None


def health_status(state: dict[str, Any]) -> str:
    """A container's health for `ps` and the `health` filter: starting, healthy, unhealthy or none."""
    h = state.get("Health")
    if not isinstance(h, dict):
        return NONE
    return h.get("Status") or UNHEALTHY  # dockerd: a record without a status reads as unhealthy


def validate_health_filter(values: list[str]) -> None:
    """The `health` filter of `GET /containers/json` takes only dockerd's four values."""
    for v in values:
        if v not in STATUSES:
            raise InvalidParameter(f"Unrecognised filter value for health: {v}")


# ---- State.Health bookkeeping (pure) ----------------------------------------------------------------

def _timing(hc: dict[str, Any], key: str, default: int) -> int:
    v = hc.get(key) or 0
    return v if v > 0 else default


def reset(state: dict[str, Any]) -> dict[str, Any]:
    """A (re)started container's record: status "starting", no failing streak, earlier results kept."""
    h = state.get("Health")
    if not isinstance(h, dict):
        h = {"Status": STARTING, "FailingStreak": 0, "Log": []}
        state["Health"] = h
    h["Status"], h["FailingStreak"] = STARTING, 0
    h["Log"] = list(h.get("Log") or [])
    return h


def result(start_ns: int, end_ns: int, exit_code: int, output: str) -> dict[str, Any]:
    """One `Log` entry, as dockerd's HealthcheckResult marshals."""
    return {"Start": rfc3339_nano(start_ns), "End": rfc3339_nano(end_ns), "ExitCode": exit_code, "Output": output}


def record(health: dict[str, Any], entry: dict[str, Any], *, retries: int, in_start_period: bool) -> bool:
    """Apply one probe result to a `State.Health` record; True when its status changed.

    Success makes it healthy and clears the streak; a failure grows the streak, unless the container is
    still starting and the probe began within the start period; `retries` failures in a row make it
    unhealthy. Only the last `MAX_LOG` results are kept."""
    old = health.get("Status")
    health["Log"] = (list(health.get("Log") or []) + [entry])[-MAX_LOG:]
    if entry["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    elif not (old == STARTING and in_start_period):
        health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
        if health["FailingStreak"] >= (retries if retries > 0 else DEFAULT_RETRIES):
            health["Status"] = UNHEALTHY
    return health.get("Status") != old


def probe_output(output: bytes, truncated: bool) -> str:
    """Captured bytes as dockerd stores them: invalid UTF-8 replaced, "..." when output was cut."""
    return output.decode("utf-8", errors="replace") + ("..." if truncated else "")


def timeout_message(timeout_ns: int) -> str:
    return f"Health check exceeded timeout ({go_duration(timeout_ns)})"


# ---- the monitor ------------------------------------------------------------------------------------

class Capture(Protocol):
    """What a capture-exec returns (`hatoba.engine.execs.Captured`)."""

    exit_code: int | None
    output: bytes
    truncated: bool
    timed_out: bool


class CaptureExec(Protocol):
    """Runs argv in a running container, collects at most `limit` bytes of output, kills it after
    `timeout` seconds (`Execs.run_capture`). Raises HatobaError when the process cannot start."""

    def __call__(self, c: Container, cmd: list[str], *, limit: int, timeout: float) -> Awaitable[Capture]: ...


class HealthChecks:
    """The health monitors of one engine: at most one task per container, each running its probe on
    its schedule and writing the results into `State.Health`.

    Hooks for the container manager: `start(c)` after a successful (re)start, before the record is
    saved; `stop(c)` when the container exits, is paused or removed; `resume(c)` after an unpause or
    when a running container is re-adopted at daemon start; `await close()` at daemon shutdown.
    """

    def __init__(self, *, events: Events, save: Callable[[Container], None], capture: CaptureExec | None = None):
        self._capture = capture
        self._events = events
        self._save = save
        self._tasks: dict[str, asyncio.Task] = {}

    def use_exec(self, capture: CaptureExec) -> None:
        """Wire the capture-exec (the exec manager is built after the container manager)."""
        self._capture = capture

    def start(self, c: Container) -> None:
        """A container just started: reset its record to "starting" and run its monitor (no-op when it
        has no checks). Does not save; the start path saves the record right after."""
        self.stop(c)
        if probe_command(c.config) is None or self._capture is None:
            return
        reset(c.state)
        self._spawn(c)

    def resume(self, c: Container) -> None:
        """Run the monitor again without resetting the record (unpause, live-restore)."""
        if probe_command(c.config) is None or self._capture is None or not c.running or c.state.get("Paused"):
            return
        task = self._tasks.get(c.id)
        if task is not None and not task.done():
            return
        if not isinstance(c.state.get("Health"), dict):
            reset(c.state)
        self._spawn(c)

    def stop(self, c: Container) -> None:
        """Stop the container's monitor; a probe in flight is killed and its result dropped."""
        task = self._tasks.pop(c.id, None)
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        """Stop every monitor and wait until their probes are killed (daemon shutdown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, c: Container) -> None:
        task = asyncio.ensure_future(self._monitor(c))
        self._tasks[c.id] = task

        def forget(t: asyncio.Task, cid: str = c.id) -> None:
            if self._tasks.get(cid) is t:
                del self._tasks[cid]

        task.add_done_callback(forget)

    async def _monitor(self, c: Container) -> None:
        hc = c.config.get("Healthcheck") or {}
        interval = _timing(hc, "Interval", DEFAULT_INTERVAL)
        timeout = _timing(hc, "Timeout", DEFAULT_TIMEOUT)
        start_period = _timing(hc, "StartPeriod", DEFAULT_START_PERIOD)
        retries = int(hc.get("Retries") or 0)
        argv = probe_command(c.config) or []
        started_ns = int(unix_seconds(c.state.get("StartedAt")) * SECOND)
        while True:
            await asyncio.sleep(interval / SECOND)
            start_ns = time.time_ns()
            try:
                code, out = await self._probe(c, argv, timeout)
            except Exception as e:  # noqa: BLE001 - a broken probe is a failed check, never a dead monitor
                log.warning("health check of %s failed: %s", c.id[:12], e)
                code, out = -1, str(e)
            entry = result(start_ns, time.time_ns(), code, out)
            health = c.state.get("Health")
            if not isinstance(health, dict):
                health = reset(c.state)
            changed = record(health, entry, retries=retries,
                             in_start_period=start_ns - started_ns < start_period)
            try:
                self._save(c)
            except Exception as e:  # noqa: BLE001 - the record in memory stays right; the next save retries
                log.warning("saving the health of %s failed: %s", c.id[:12], e)
            if changed:
                self._events.emit("container", f"health_status: {health['Status']}", c.id, c.event_attrs())

    async def _probe(self, c: Container, argv: list[str], timeout_ns: int) -> tuple[int, str]:
        if not argv:
            return -1, "No exec command specified"
        assert self._capture is not None
        try:
            cap = await self._capture(c, argv, limit=MAX_OUTPUT, timeout=timeout_ns / SECOND)
        except HatobaError as e:
            return -1, e.message
        if cap.timed_out or cap.exit_code is None:
            return -1, timeout_message(timeout_ns)
        return cap.exit_code, probe_output(cap.output, cap.truncated)
