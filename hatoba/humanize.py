"""Docker's human-readable texts shared by the CLI and the daemon: durations (go-units HumanDuration and
Go's `time.Duration.String`), the `docker ps` STATUS text (the daemon renders it in
`GET /containers/json`), and Go's RFC3339Nano time format. Stdlib only, no imports at module level.
"""


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: "Less than a second", "1 second", "5 minutes", "About an hour", ..."""
    if seconds != seconds:  # NaN
        return "Less than a second"
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _trim_frac(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` of a nanosecond count: "0s", "500ms", "1.5s", "1m30s", "2h0m0s"."""
    d = int(ns)
    if d == 0:
        return "0s"
    sign = "-" if d < 0 else ""
    u = -d if d < 0 else d
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return sign + _trim_frac(u, 3) + "\u00b5s"
        return sign + _trim_frac(u, 6) + "ms"
    secs, frac = divmod(u, 1_000_000_000)
    hours, rem = divmod(secs, 3600)
    minutes, sec = divmod(rem, 60)
    out = _trim_frac(sec * 1_000_000_000 + frac, 9) + "s"
    if hours:
        out = f"{hours}h{minutes}m" + out
    elif minutes:
        out = f"{minutes}m" + out
    return sign + out


def status_text(state: str, *, exit_code: object, started: float, finished: float, now: float,
                health: str = "") -> str:
    """`docker ps` STATUS for a state name (created, running, paused, restarting, removing, dead, exited):
    "Up 3 minutes", "Up 3 minutes (Paused)", "Up 2 hours (healthy)", "Restarting (1) 5 seconds ago",
    "Exited (0) 2 seconds ago", "Created", "Removal In Progress", "Dead"."""
    if state == "paused":
        return f"Up {human_duration(now - started)} (Paused)"
    if state == "restarting":
        return f"Restarting ({exit_code}) {human_duration(now - finished)} ago"
    if state == "running":
        if health and health != "none":
            return f"Up {human_duration(now - started)} ({'health: starting' if health == 'starting' else health})"
        return f"Up {human_duration(now - started)}"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    if state == "created":
        return "Created"
    return f"Exited ({exit_code}) {human_duration(now - finished)} ago"


def rfc3339_nano(ns: int) -> str:
    """Unix nanoseconds as Go's `time.RFC3339Nano` in UTC: "2026-11-22T09:40:50.541672225Z" (trailing
    zeros of the fraction trimmed)."""
    import time

    sec, frac = divmod(int(ns), 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"
