"""Docker's human-readable texts shared by the CLI and the daemon: go-units durations and sizes, the
`docker ps` STATUS text (the daemon renders it in `GET /containers/json`) and jsonmessage's progress
text. Go's own formats (quoting, durations, RFC 3339) are in `hatoba.golang`. Stdlib only.
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


# ---- sizes and progress (docker/go-units, jsonmessage) ---------------------------------------------------

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(x: float, precision: int) -> str:
    """Go's %.<precision>g: like Python's, but the exponent has at least two digits."""
    s = f"{x:.{precision}g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"
    return s


def _scaled(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(n: float, precision: int = 4) -> str:
    """go-units ``HumanSizeWithPrecision`` (decimal units): 3678 → "3.678kB", 2129920 → "2.13MB".
    `docker ps`/`images` SIZE columns use precision 3; progress bars and `HumanSize` 4."""
    size, unit = _scaled(float(n), 1000.0, _DECIMAL)
    return _go_g(size, precision) + unit


def bytes_size(n: float) -> str:
    """go-units ``BytesSize`` (binary units, 4 significant digits): "1.5MiB", "64MiB", "0B"."""
    size, unit = _scaled(float(n), 1024.0, _BINARY)
    return _go_g(size, 4) + unit


def progress_string(detail: dict | None, width: int = 200) -> str:
    """jsonmessage's JSONProgress.String(): the `progress` text of a pull/push/load message, e.g.
    `[=====>      ]  32.77kB/307.6kB` (no bar under 111 columns; dockerd renders it at 200)."""
    if not detail:
        return ""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = detail.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}" if not units else f"{current} {units}"
    pct = min(int(current / total * 100) // 2, 50)
    box = ""
    if width > 110:
        box = "[" + "=" * pct + ">" + " " * max(50 - pct, 0) + "] "
    if detail.get("hidecounts"):
        nums = ""
    elif not units:
        nums = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            nums = f"{human_size(current):>8}"
    else:
        nums = f"{current}/{total} {units}"
        if current > total:
            nums = f"{current} {units}"
    return box + nums
