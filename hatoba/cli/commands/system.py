"""System commands: version, info, events and system df.

Layouts follow the docker CLI 28.x (shared/reference/cli-traces 01, 02, 50, 51, 87) with hatoba's own
values: "Python version" where docker shows the Go version and "Hatoba Root Dir" for "Docker Root Dir".
The formatting is done by pure functions (:func:`format_version`, :func:`format_info`,
:func:`format_event`, :func:`format_df`) that take the Engine API's JSON and return text.
"""

from __future__ import annotations

import sys
import time
from posix import uname  # os.uname; `os` itself costs 1 to 2 ms of start-up

from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.cli.units import bytes_size, created_ago, human_size, truncate_id
from hatoba.client.http import APIError, ConnectError

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

API_VERSION = "1.41"

INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _go(v: Any) -> str:
    """A value as Go's fmt.Println prints it."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "<nil>"
    return str(v)


def go_tabwrite(text: str, minwidth: int, padding: int) -> str:
    """Go's text/tabwriter (pad with spaces, no flags): tab-terminated cells aligned per column block."""
    lines = [ln.split("\t") for ln in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(cells) - 1) for cells in lines]

    def fmt(col: int, start: int, end: int) -> None:
        i = start
        while i < end:
            if len(lines[i]) - 1 <= col:
                i += 1
                continue
            j, width = i, minwidth
            while j < end and len(lines[j]) - 1 > col:
                width = max(width, len(lines[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][col] = width
            fmt(col + 1, i, j)
            i = j

    fmt(0, 0, len(lines))
    return "\n".join("".join(c.ljust(widths[n][k]) for k, c in enumerate(cells[:-1])) + cells[-1]
                     for n, cells in enumerate(lines))


def _template(fmt: str, status: int = 64, prefix: str = "template parsing error: ") -> Any:
    from hatoba.cli import gotemplate

    if fmt == "json":
        fmt = "{{json .}}"
    try:
        return gotemplate.parse(fmt)
    except gotemplate.TemplateError as e:
        raise StatusError(status, f"{prefix}{e}") from None


def _execute(tmpl: Any, data: Any) -> str:
    from hatoba.cli import gotemplate

    try:
        return tmpl.execute(data)
    except gotemplate.TemplateError as e:
        raise StatusError(1, f"template parsing error: {e}") from None


# ---------------------------------------------------------------------------------------------------------
# version

VERSION = Command("version", "version [OPTIONS]", "Show the hatoba version information", [
    Flag("format", "f", "str", help=INSPECT_FORMAT_HELP),
], max_args=0)


def client_version(context: str = "default") -> dict[str, Any]:
    """The Client half of `version` (docker's clientVersion, GoVersion holding the Python version)."""
    from hatoba import __version__

    v = sys.version_info
    machine = uname().machine
    return {"Version": __version__, "ApiVersion": API_VERSION, "DefaultAPIVersion": API_VERSION, "GitCommit": "",
            "GoVersion": f"python{v.major}.{v.minor}.{v.micro}", "Os": sys.platform.rstrip("0123456789"),
            "Arch": _GOARCH.get(machine, machine), "BuildTime": "", "Context": context}


def reformat_build_time(value: str) -> str:
    """docker's reformatDate: an RFC 3339 time as Go's ANSIC layout in its own zone, else unchanged."""
    from hatoba.cli.units import parse_rfc3339

    try:
        secs = parse_rfc3339(value)
    except ValueError:
        return value
    if not value:
        return value
    off = 0
    tail = value[-6:]
    if value[-1:] not in ("Z", "z") and tail[:1] in ("+", "-") and tail[3:4] == ":":
        off = (int(tail[1:3]) * 3600 + int(tail[4:6]) * 60) * (1 if tail[0] == "+" else -1)
    t = time.gmtime(int(secs // 1) + off)
    return time.strftime("%a %b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", t)


def server_version(doc: dict[str, Any]) -> dict[str, Any]:
    """GET /version as `version` shows it: Engine BuildTime reformatted, an Engine component ensured."""
    doc = dict(doc)
    comps = [dict(c) for c in doc.get("Components") or []]
    found = False
    for comp in comps:
        if comp.get("Name") == "Engine":
            found = True
            details = dict(comp.get("Details") or {})
            if "BuildTime" in details:
                details["BuildTime"] = reformat_build_time(str(details["BuildTime"]))
            comp["Details"] = details
    if not found:
        comps.append({"Name": "Engine", "Version": doc.get("Version", ""), "Details": {
            "ApiVersion": doc.get("ApiVersion", ""), "MinAPIVersion": doc.get("MinAPIVersion", ""),
            "GitCommit": doc.get("GitCommit", ""), "GoVersion": doc.get("GoVersion", ""),
            "Os": doc.get("Os", ""), "Arch": doc.get("Arch", ""),
            "BuildTime": reformat_build_time(str(doc.get("BuildTime", ""))),
            "Experimental": _go(bool(doc.get("Experimental")))}})
    doc["Components"] = comps
    return doc


def format_version(data: Mapping[str, Any]) -> str:
    """The default `version` output for {"Client": ..., "Server": ... or None}."""
    cl = data["Client"]
    plat = (cl.get("Platform") or {}).get("Name")
    rows = ["Client:" + (f" {plat}" if plat else "")]
    api, default = cl.get("ApiVersion", ""), cl.get("DefaultAPIVersion", "")
    rows += [f" Version:\t{cl.get('Version', '')}",
             f" API version:\t{api}" + (f" (downgraded from {default})" if api != default else ""),
             f" Python version:\t{cl.get('GoVersion', '')}",
             f" Git commit:\t{cl.get('GitCommit', '')}",
             f" Built:\t{cl.get('BuildTime', '')}",
             f" OS/Arch:\t{cl.get('Os', '')}/{cl.get('Arch', '')}",
             f" Context:\t{cl.get('Context', '')}"]
    srv = data.get("Server")
    if srv is not None:
        name = (srv.get("Platform") or {}).get("Name")
        rows += ["", "Server:" + (f" {name}" if name else "")]
        for comp in srv.get("Components") or []:
            d = comp.get("Details") or {}
            rows.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                rows += [f"  Version:\t{comp.get('Version', '')}",
                         f"  API version:\t{d.get('ApiVersion', '')} (minimum version {d.get('MinAPIVersion', '')})",
                         f"  Python version:\t{d.get('GoVersion', '')}",
                         f"  Git commit:\t{d.get('GitCommit', '')}",
                         f"  Built:\t{d.get('BuildTime', '')}",
                         f"  OS/Arch:\t{d.get('Os', '')}/{d.get('Arch', '')}",
                         f"  Experimental:\t{d.get('Experimental', '')}"]
            else:
                rows.append(f"  Version:\t{comp.get('Version', '')}")
                rows += [f"  {k}:\t{d[k]}" for k in sorted(d)]
    return go_tabwrite("\n".join(rows), 20, 1) + "\n"


def cmd_version(argv: list[str]) -> int:
    values, _ = VERSION.parse(argv)
    fmt = values["format"] or ""
    tmpl = _template(fmt) if fmt else None
    data: dict[str, Any] = {"Client": client_version(), "Server": None}
    failure: Exception | None = None
    try:
        data["Server"] = server_version(client().json("GET", "/version") or {})
    except (APIError, ConnectError) as e:
        failure = e
    if tmpl is None:
        _write(format_version(data))
    else:
        # templates name Go struct fields: APIVersion (JSON ApiVersion), DefaultAPIVersion, MinAPIVersion
        for part in (data["Client"], data["Server"] or {}):
            if "ApiVersion" in part:
                part["APIVersion"] = part["ApiVersion"]
        _write(go_tabwrite(_execute(tmpl, data), 20, 1) + "\n")
    if failure is not None:
        raise failure
    return 0


# ---------------------------------------------------------------------------------------------------------
# info

INFO = Command("info", "info [OPTIONS]", "Display system-wide information", [
    Flag("format", "f", "str", help=INSPECT_FORMAT_HELP),
], max_args=0)


def client_info(context: str = "default") -> dict[str, Any]:
    cv = client_version(context)
    cv.pop("ApiVersion")
    return {**cv, "Debug": False, "Plugins": [], "Warnings": None}


def _security_options(opts: Iterable[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    out = []
    for opt in opts:
        if "=" not in opt:
            out.append((opt, []))
            continue
        name = ""
        kvs = []
        for kv in opt.split(","):
            k, _, v = kv.partition("=")
            if k == "name":
                name = v
            else:
                kvs.append((k, v))
        out.append((name, kvs))
    return out


def format_info(info: Mapping[str, Any] | None, cinfo: Mapping[str, Any]) -> str:
    """The default `info` output (docker's prettyPrintInfo); ``info`` None prints only the headings."""
    out: list[str] = ["Client:"]

    def line(*parts: Any) -> None:
        out.append(" ".join(_go(p) for p in parts))

    def nonempty(label: str, value: Any) -> None:
        if value:
            line(label, value)

    nonempty(" Version:   ", cinfo.get("Version"))
    line(" Context:   ", cinfo.get("Context", "default"))
    line(" Debug Mode:", bool(cinfo.get("Debug")))
    out += ["", "Server:"]
    if info is None:
        return "\n".join(out) + "\n"
    i = info
    line(" Containers:", i.get("Containers", 0))
    line("  Running:", i.get("ContainersRunning", 0))
    line("  Paused:", i.get("ContainersPaused", 0))
    line("  Stopped:", i.get("ContainersStopped", 0))
    line(" Images:", i.get("Images", 0))
    nonempty(" Server Version:", i.get("ServerVersion"))
    nonempty(" Storage Driver:", i.get("Driver"))
    for pair in i.get("DriverStatus") or []:
        out.append(f"  {pair[0]}: {pair[1]}")
    for pair in i.get("SystemStatus") or []:
        out.append(f" {pair[0]}: {pair[1]}")
    nonempty(" Logging Driver:", i.get("LoggingDriver"))
    nonempty(" Cgroup Driver:", i.get("CgroupDriver"))
    nonempty(" Cgroup Version:", i.get("CgroupVersion"))
    plugins = i.get("Plugins") or {}
    line(" Plugins:")
    line("  Volume:", " ".join(plugins.get("Volume") or []))
    line("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        line("  Authorization:", " ".join(plugins["Authorization"]))
    line("  Log:", " ".join(plugins.get("Log") or []))
    if i.get("CDISpecDirs"):
        line(" CDI spec directories:")
        out += [f"  {d}" for d in i["CDISpecDirs"]]
    swarm = i.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "")
    line(" Swarm:", state)
    if state not in ("inactive", "locked", ""):
        line("  NodeID:", swarm.get("NodeID", ""))
        if swarm.get("Error"):
            line("  Error:", swarm["Error"])
        line("  Is Manager:", bool(swarm.get("ControlAvailable")))
        line("  Node Address:", swarm.get("NodeAddr", ""))
    runtimes = i.get("Runtimes") or {}
    if runtimes:
        line(" Runtimes:", " ".join(runtimes))
        line(" Default Runtime:", i.get("DefaultRuntime", ""))
    if i.get("OSType") == "linux":
        line(" Init Binary:", i.get("InitBinary", ""))
        line(" containerd version:", (i.get("ContainerdCommit") or {}).get("ID", ""))
        line(" runc version:", (i.get("RuncCommit") or {}).get("ID", ""))
        line(" init version:", (i.get("InitCommit") or {}).get("ID", ""))
        if i.get("SecurityOptions"):
            line(" Security Options:")
            for name, kvs in _security_options(i["SecurityOptions"]):
                out.append("  " + name)
                for k, v in kvs:
                    if k == "profile":
                        line("   Profile:", v)
    if i.get("OSType") == "windows":
        line(" Default Isolation:", i.get("Isolation", ""))
    nonempty(" Kernel Version:", i.get("KernelVersion"))
    nonempty(" Operating System:", i.get("OperatingSystem"))
    nonempty(" OSType:", i.get("OSType"))
    nonempty(" Architecture:", i.get("Architecture"))
    line(" CPUs:", i.get("NCPU", 0))
    line(" Total Memory:", bytes_size(float(i.get("MemTotal") or 0)))
    nonempty(" Name:", i.get("Name"))
    nonempty(" ID:", i.get("ID"))
    line(" Hatoba Root Dir:", i.get("DockerRootDir", ""))
    line(" Debug Mode:", bool(i.get("Debug")))
    if i.get("Debug") or cinfo.get("Debug"):
        line("  File Descriptors:", i.get("NFd", 0))
        line("  Goroutines:", i.get("NGoroutines", 0))
        line("  System Time:", i.get("SystemTime", ""))
        line("  EventsListeners:", i.get("NEventsListener", 0))
    nonempty(" HTTP Proxy:", i.get("HttpProxy"))
    nonempty(" HTTPS Proxy:", i.get("HttpsProxy"))
    nonempty(" No Proxy:", i.get("NoProxy"))
    if i.get("Labels"):
        line(" Labels:")
        out += ["  " + lbl for lbl in i["Labels"]]
    line(" Experimental:", bool(i.get("ExperimentalBuild")))
    reg = i.get("RegistryConfig") or {}
    if reg and (reg.get("InsecureRegistryCIDRs") or reg.get("IndexConfigs")):
        line(" Insecure Registries:")
        out += ["  " + c.get("Name", "") for c in (reg.get("IndexConfigs") or {}).values() if not c.get("Secure")]
        out += ["  " + str(cidr) for cidr in reg.get("InsecureRegistryCIDRs") or []]
    if reg.get("Mirrors"):
        line(" Registry Mirrors:")
        out += ["  " + m for m in reg["Mirrors"]]
    line(" Live Restore Enabled:", bool(i.get("LiveRestoreEnabled")))
    if i.get("ProductLicense"):
        line(" Product License:", i["ProductLicense"])
    if i.get("DefaultAddressPools"):
        line(" Default Address Pools:")
        out += [f"   Base: {p.get('Base', '')}, Size: {p.get('Size', 0)}" for p in i["DefaultAddressPools"]]
    out.append("")
    return "\n".join(out) + "\n"


def cmd_info(argv: list[str]) -> int:
    values, _ = INFO.parse(argv)
    fmt = values["format"] or ""
    cinfo = client_info()
    if fmt:
        tmpl = _template(fmt)
        info = client().json("GET", "/info") or {}
        _write(_execute(tmpl, {**info, "ClientInfo": cinfo}) + "\n")
        return 0
    try:
        info = client().json("GET", "/info") or {}
    except ConnectError:
        _write(format_info(None, cinfo))
        raise
    except APIError as e:
        _write(format_info(None, cinfo))
        sys.stderr.write(f"ERROR: Error response from daemon: {e.message}\n")
        raise StatusError(1, "errors pretty printing info") from None
    _write(format_info(info, cinfo))
    for w in info.get("Warnings") or []:
        sys.stderr.write(f"{w}\n")
    return 0


# ---------------------------------------------------------------------------------------------------------
# events

EVENTS = Command("events", "events [OPTIONS]", "Get real time events from the server", [
    Flag("filter", "f", "list", help="Filter output based on conditions provided"),
    Flag("format", None, "str", help=INSPECT_FORMAT_HELP),
    Flag("since", None, "str", help="Show all events created since timestamp"),
    Flag("until", None, "str", help="Stream events until this timestamp"),
], max_args=0)


def rfc3339_nano_fixed(ts_ns: int, tz: int | None = None) -> str:
    """Go's "2006-01-02T15:04:05.000000000Z07:00" layout (what `events` prints), local zone unless ``tz``."""
    from hatoba.golang import format_rfc3339

    off = time.localtime(int(ts_ns) // 1_000_000_000).tm_gmtoff if tz is None else tz
    return format_rfc3339(ts_ns, frac="fixed", tz=off)


def format_event(ev: Mapping[str, Any], tz: int | None = None) -> str:
    """One `events` line: time, type, action, actor ID and its attributes sorted by key."""
    out = ""
    if ev.get("timeNano"):
        out = rfc3339_nano_fixed(int(ev["timeNano"]), tz) + " "
    elif ev.get("time"):
        out = rfc3339_nano_fixed(int(ev["time"]) * 1_000_000_000, tz) + " "
    actor = ev.get("Actor") or {}
    out += f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        out += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return out + "\n"


def time_param(value: str, now: float) -> str:
    """docker's timetypes.GetTimestamp: a --since/--until value as the API's string of Unix seconds."""
    from hatoba.cli.units import parse_duration_ns, parse_time_arg

    try:
        secs = parse_time_arg(value, now)
    except ValueError as e:
        raise StatusError(1, str(e)) from None
    if value != "0":
        try:
            parse_duration_ns(value)
            return str(int(secs))
        except ValueError:
            pass
    if "-" not in value:
        return value  # a Unix timestamp goes through as given
    whole = int(secs // 1)
    return f"{whole}.{round((secs - whole) * 1e9):09d}"


def cmd_events(argv: list[str]) -> int:
    from hatoba.cli.commands.images import encode_filters, parse_filters
    from hatoba.cli.events import EventMessage

    values, _ = EVENTS.parse(argv)
    fmt = values["format"] or ""
    tmpl = _template(fmt, 64, "Error parsing format: ") if fmt else None
    now = time.time()
    params: dict[str, Any] = {}
    filters = parse_filters(values["filter"], "events")
    if filters:
        params["filters"] = encode_filters(filters)
    if values["since"]:
        params["since"] = time_param(values["since"], now)
    if values["until"]:
        params["until"] = time_param(values["until"], now)
    for ev in client().stream_json("GET", "/events", params or None):
        if tmpl is None:
            _write(format_event(ev))
        else:
            _write(_execute(tmpl, EventMessage(ev)) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------
# system df

DF = Command("system df", "system df [OPTIONS]", "Show hatoba disk usage", [
    Flag("format", None, "str", help="Format output using a custom template:\n"
         "'table':            Print output in table format with column headers (default)\n"
         "'table TEMPLATE':   Print output in table format using the given Go template\n"
         "'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template.\n"
         "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output "
         "with templates"),
    Flag("verbose", "v", "bool", help="Show detailed information on space usage"),
], max_args=0)

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DEFAULT_DF_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
RAW_DF_FORMAT = "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\n" \
                "reclaimable: {{.Reclaimable}}\n"


def _hs(n: float) -> str:
    return human_size(n, 4)


def _reclaim(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{_hs(reclaimable)} ({reclaimable * 100 // total}%)"
    return _hs(reclaimable)


def _container_active(c: Mapping[str, Any]) -> bool:
    return c.get("State") in ("running", "paused", "restarting")


def df_rows(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """The four summary rows of `system df` (docker's diskUsage*Context) for GET /system/df."""
    images = doc.get("Images") or []
    layers = int(doc.get("LayersSize") or 0)
    used = 0
    for i in images:
        if i.get("Containers"):
            size, shared = int(i.get("Size", -1)), i.get("SharedSize", -1)
            shared = -1 if shared is None else int(shared)
            if size != -1 and shared != -1:
                used += size - shared
    containers = doc.get("Containers") or []
    c_total = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if not _container_active(c))
    volumes = doc.get("Volumes") or []
    v_total = v_reclaim = v_active = 0
    for v in volumes:
        usage = v.get("UsageData") or {}
        size, refs = int(usage.get("Size", -1)), int(usage.get("RefCount", 0))
        v_active += refs > 0
        if size != -1:
            v_total += size
            if refs == 0:
                v_reclaim += size
    cache = doc.get("BuildCache") or []
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    b_inuse = sum(int(b.get("Size") or 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    return [
        {"Active": str(sum(1 for i in images if (i.get("Containers") or 0) > 0)), "Reclaimable":
         _reclaim(layers - used, layers), "Size": _hs(layers), "TotalCount": str(len(images)), "Type": "Images"},
        {"Active": str(sum(1 for c in containers if _container_active(c))), "Reclaimable":
         _reclaim(c_reclaim, c_total), "Size": _hs(c_total), "TotalCount": str(len(containers)),
         "Type": "Containers"},
        {"Active": str(v_active), "Reclaimable": _reclaim(v_reclaim, v_total), "Size": _hs(v_total),
         "TotalCount": str(len(volumes)), "Type": "Local Volumes"},
        {"Active": str(sum(1 for b in cache if b.get("InUse"))), "Reclaimable": _hs(b_size - b_inuse),
         "Size": _hs(b_size), "TotalCount": str(len(cache)), "Type": "Build Cache"},
    ]


def _ctr_image(c: Mapping[str, Any], trunc: bool) -> str:
    image = str(c.get("Image") or "")
    if not image:
        return "<no image>"
    if trunc:
        if truncate_id(str(c.get("ImageID") or "")) == truncate_id(image):
            return truncate_id(image)
        from hatoba.cli.commands.images import split_reference

        parsed = split_reference(image)
        if parsed:
            return parsed[0] + (f":{parsed[1]}" if parsed[1] else "")
    return image


def _ctr_names(names: list[str], trunc: bool) -> str:
    stripped = [n[1:] for n in names]
    if trunc:
        for n in stripped:
            if "/" not in n:
                return n
    return ",".join(stripped)


def df_verbose(doc: Mapping[str, Any], *, trunc: bool = True, now: float | None = None) -> dict[str, list]:
    """The per-object rows of `system df -v` (Images, Containers, Volumes, BuildCache)."""
    from hatoba.cli.commands.images import _image_row, _is_dangling, ellipsis, split_reference
    from hatoba.cli.units import go_quote, human_duration

    now = time.time() if now is None else now
    images = []
    for img in doc.get("Images") or []:
        repo = tag = "<none>"
        tags = img.get("RepoTags") or []
        if tags and not _is_dangling(img):
            parsed = split_reference(tags[0])
            if parsed is None:
                continue
            if parsed[1] is not None:
                repo, tag = parsed[0], parsed[1]
        images.append(_image_row(img, repo, tag, "", trunc, now, None))
    containers = []
    for c in doc.get("Containers") or []:
        cid = str(c.get("Id") or "")
        command = str(c.get("Command") or "")
        containers.append({
            "ID": truncate_id(cid) if trunc else cid,
            "Image": _ctr_image(c, trunc),
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
            "Size": human_size(int(c.get("SizeRw") or 0), 3),
            "RunningFor": created_ago(int(c.get("Created") or 0), now),
            "Status": str(c.get("Status") or ""),
            "Names": _ctr_names(c.get("Names") or [], trunc),
        })
    volumes = []
    for v in doc.get("Volumes") or []:
        usage = v.get("UsageData")
        volumes.append({"Name": v.get("Name", ""),
                        "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
                        "Size": "N/A" if usage is None else _hs(int(usage.get("Size", 0)))})
    cache = []
    for b in sorted(doc.get("BuildCache") or [], key=lambda b: (not b.get("InUse"), str(b.get("LastUsedAt")))):
        bid = str(b.get("ID") or "")
        cache.append({"ID": bid[:12] if trunc else bid, "CacheType": b.get("Type", ""),
                      "Size": _hs(int(b.get("Size") or 0)),
                      "CreatedSince": human_duration(now - _rfc(b.get("CreatedAt"))) + " ago",
                      "LastUsedSince": (human_duration(now - _rfc(b.get("LastUsedAt"))) + " ago"
                                        if b.get("LastUsedAt") else ""),
                      "UsageCount": str(b.get("UsageCount", 0)), "Shared": _go(bool(b.get("Shared")))})
    return {"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": cache}


def _rfc(value: Any) -> float:
    from hatoba.cli.units import parse_rfc3339

    try:
        return parse_rfc3339(str(value or ""))
    except ValueError:
        return 0.0


_VERBOSE_TABLES = (
    ("Images space usage:\n\n",
     "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}"
     "\t{{.Containers}}", "Images",
     {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE",
      "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}),
    ("\nContainers space usage:\n\n",
     "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}"
     "\t{{.Names}}", "Containers",
     {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
      "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}),
    ("\nLocal Volumes space usage:\n\n", "table {{.Name}}\t{{.Links}}\t{{.Size}}", "Volumes",
     {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    (None, "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}"
     "\t{{.Shared}}", "BuildCache",
     {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
      "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}),
)


def format_df(doc: Mapping[str, Any], *, fmt: str = "", verbose: bool = False, now: float | None = None) -> str:
    """`system df` output for GET /system/df (the summary table, or with ``verbose`` one table per kind)."""
    from hatoba.cli.commands.images import render_rows

    source = fmt or "table"
    if not verbose:
        template = DEFAULT_DF_FORMAT if source == "table" else RAW_DF_FORMAT if source == "raw" else source
        return render_rows(template, df_rows(doc), DF_HEADERS)
    detail = df_verbose(doc, trunc=source.startswith("table"), now=now)
    if source != "table":
        return _execute(_template(source, 1), detail) + "\n"
    out = ""
    for heading, template, key, headers in _VERBOSE_TABLES:
        if heading is None:
            b_size = sum(int(b.get("Size") or 0) for b in doc.get("BuildCache") or [] if not b.get("Shared"))
            heading = f"\nBuild cache usage: {_hs(b_size)}\n\n"
        out += heading + render_rows(template, detail[key], headers)
    return out


def cmd_df(argv: list[str]) -> int:
    values, _ = DF.parse(argv)
    doc = client().json("GET", "/system/df") or {}
    _write(format_df(doc, fmt=values["format"] or "", verbose=values["verbose"]))
    return 0
