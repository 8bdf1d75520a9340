"""Container commands other than run/create/start/attach/exec: ps, logs, stop, kill, rm, cp, stats, …"""

from __future__ import annotations

import io
import sys
import time

from hatoba.cli.commands._resources import RESOURCE_FLAGS, RESOURCE_KEYS
from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.client.fastjson import dumps, loads
from hatoba.client.http import APIError, Client, ConnectError

TYPE_CHECKING = False  # `typing` costs 3 to 6 ms of CLI start-up; Any is only used in annotations
if TYPE_CHECKING:
    from typing import Any

# ---- ps -------------------------------------------------------------------------------------------------

PS = Command("ps", "ps [OPTIONS]", "List containers", [
    Flag("all", "a", "bool", help="Show all containers (default shows just running)"),
    Flag("filter", "f", "list", help="Filter output based on conditions provided"),
    Flag("format", None, "str", help="Format output using a custom template"),
    Flag("last", "n", "int", -1, help="Show n last created containers (includes all states)"),
    Flag("latest", "l", "bool", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", None, "bool", help="Don't truncate output"),
    Flag("quiet", "q", "bool", help="Only display container IDs"),
    Flag("size", "s", "bool", help="Display total file sizes"),
], max_args=0)

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES"}


def filters_param(specs: list[str]) -> str | None:
    if not specs:
        return None
    out: dict[str, dict[str, bool]] = {}
    for s in specs:
        if "=" not in s:
            raise StatusError(1, f"invalid argument \"{s}\" for \"-f, --filter\" flag: bad format of filter "
                                 "(expected name=value)\nSee 'hatoba --help'.")
        k, v = s.split("=", 1)
        out.setdefault(k.strip().lower(), {})[v] = True
    return dumps(out, separators=(",", ":"))


def ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def format_ports(ports: list[dict]) -> str:
    out = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""))):
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            out.append(f"{ip}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}")
        else:
            out.append(f"{p['PrivatePort']}/{p['Type']}")
    return ", ".join(out)


def ps_item(c: dict, now: float, trunc: bool) -> dict[str, Any]:
    from hatoba.cli.units import created_ago, human_size

    cmd = c.get("Command", "")
    size = ""
    if "SizeRw" in c:
        size = f"{human_size(c.get('SizeRw', 0))} (virtual {human_size(c.get('SizeRootFs', 0))})"
    names = [n.lstrip("/") for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    labels = c.get("Labels") or {}
    created = c.get("Created", 0)
    return {
        "ID": c["Id"][:12] if trunc else c["Id"], "Image": c.get("Image", ""),
        "Command": dumps(ellipsis(cmd, 20) if trunc else cmd, ensure_ascii=False),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "RunningFor": created_ago(created, now), "Ports": format_ports(c.get("Ports") or []),
        "State": c.get("State", ""), "Status": c.get("Status", ""), "Size": size, "Names": ",".join(names),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())), "Mounts": "",
        "Networks": ",".join(sorted((c.get("NetworkSettings") or {}).get("Networks") or {})), "LocalVolumes": "0",
    }


def cmd_ps(argv: list[str]) -> int:
    values, _ = PS.parse(argv)
    c = client()
    limit = 1 if values.get("latest") else values.get("last", -1)
    params = {"all": 1 if values.get("all") else None, "limit": limit if limit and limit > 0 else None,
              "size": 1 if values.get("size") else None, "filters": filters_param(values.get("filter") or [])}
    items = c.json("GET", "/containers/json", params)
    if values.get("quiet"):
        for it in items:
            print(it["Id"] if values.get("no_trunc") else it["Id"][:12])
        return 0
    from hatoba.cli.output import render

    now = time.time()
    trunc = not values.get("no_trunc")
    default = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    if values.get("size"):
        default += "\t{{.Size}}"
    sys.stdout.write(render(values.get("format") or "", [ps_item(i, now, trunc) for i in items], PS_HEADERS, default))
    return 0


# ---- simple per-container commands ------------------------------------------------------------------------

def _each(names: list[str], fn: Any) -> int:
    failed = False
    for n in names:
        try:
            fn(n)
            print(n)
        except APIError as e:
            sys.stderr.write(f"Error response from daemon: {e.message}\n")
            failed = True
    return 1 if failed else 0


STOP = Command("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", [
    Flag("signal", "s", "str", help="Signal to send to the container"),
    Flag("time", "t", "int", help="Seconds to wait before killing the container"),
], min_args=1)


def cmd_stop(argv: list[str]) -> int:
    values, args = STOP.parse(argv)
    c = client()
    params = {"t": values.get("time"), "signal": values.get("signal")}
    return _each(args, lambda n: c.call("POST", f"/containers/{n}/stop", params))


RESTART = Command("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", [
    Flag("signal", "s", "str", help="Signal to send to the container"),
    Flag("time", "t", "int", help="Seconds to wait before killing the container"),
], min_args=1)


def cmd_restart(argv: list[str]) -> int:
    values, args = RESTART.parse(argv)
    c = client()
    params = {"t": values.get("time"), "signal": values.get("signal")}
    return _each(args, lambda n: c.call("POST", f"/containers/{n}/restart", params))


KILL = Command("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", [
    Flag("signal", "s", "str", help="Signal to send to the container"),
], min_args=1)


def cmd_kill(argv: list[str]) -> int:
    values, args = KILL.parse(argv)
    c = client()
    params = {"signal": values.get("signal") or None}
    return _each(args, lambda n: c.call("POST", f"/containers/{n}/kill", params))


RM = Command("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", [
    Flag("force", "f", "bool", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("link", "l", "bool", help="Remove the specified link"),
    Flag("volumes", "v", "bool", help="Remove anonymous volumes associated with the container"),
], min_args=1)


def cmd_rm(argv: list[str]) -> int:
    values, args = RM.parse(argv)
    c = client()
    params = {"force": 1 if values.get("force") else None, "v": 1 if values.get("volumes") else None,
              "link": 1 if values.get("link") else None}
    return _each(args, lambda n: c.call("DELETE", f"/containers/{n}", params))


PAUSE = Command("pause", "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", [],
                min_args=1)
UNPAUSE = Command("unpause", "unpause CONTAINER [CONTAINER...]",
                  "Unpause all processes within one or more containers", [], min_args=1)


def cmd_pause(argv: list[str]) -> int:
    _, args = PAUSE.parse(argv)
    c = client()
    return _each(args, lambda n: c.call("POST", f"/containers/{n}/pause"))


def cmd_unpause(argv: list[str]) -> int:
    _, args = UNPAUSE.parse(argv)
    c = client()
    return _each(args, lambda n: c.call("POST", f"/containers/{n}/unpause"))


RENAME = Command("rename", "rename CONTAINER NEW_NAME", "Rename a container", [], min_args=2, max_args=2)


def cmd_rename(argv: list[str]) -> int:
    _, args = RENAME.parse(argv)
    client().call("POST", f"/containers/{args[0]}/rename", {"name": args[1]})
    return 0


WAIT = Command("wait", "wait CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes",
               [], min_args=1)


def cmd_wait(argv: list[str]) -> int:
    _, args = WAIT.parse(argv)
    c = client()
    failed = False
    for n in args:
        try:
            res = c.json("POST", f"/containers/{n}/wait")
            print(res.get("StatusCode", 0))
        except APIError as e:
            sys.stderr.write(f"Error response from daemon: {e.message}\n")
            failed = True
    return 1 if failed else 0


UPDATE = Command("update", "update [OPTIONS] CONTAINER [CONTAINER...]",
                 "Update configuration of one or more containers", RESOURCE_FLAGS + [
                     Flag("restart", None, "str", help="Restart policy to apply when a container exits"),
                 ], min_args=1)


def cmd_update(argv: list[str]) -> int:
    values, args = UPDATE.parse(argv)
    body: dict[str, Any] = {}
    for key, flag in RESOURCE_KEYS:
        if values.get(flag) not in (None, 0, ""):
            body[key] = values[flag]
    if values.get("cpus"):
        body["NanoCpus"] = int(round(values["cpus"] * 1e9))
    if values.get("restart"):
        name, _, count = values["restart"].partition(":")
        body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count) if count.isdigit() else 0}
    c = client()
    return _each(args, lambda n: c.json("POST", f"/containers/{n}/update", body=body))


# ---- logs -------------------------------------------------------------------------------------------------

LOGS = Command("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", [
    Flag("details", None, "bool", help="Show extra details provided to logs"),
    Flag("follow", "f", "bool", help="Follow log output"),
    Flag("since", None, "str", help="Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
    Flag("tail", "n", "str", "all", help="Number of lines to show from the end of the logs"),
    Flag("timestamps", "t", "bool", help="Show timestamps"),
    Flag("until", None, "str", help="Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
], min_args=1, max_args=1)


def _time_arg(s: str | None) -> str | None:
    if not s:
        return None
    from hatoba.cli.units import parse_time_arg

    try:
        return f"{parse_time_arg(s, time.time()):.9f}".rstrip("0").rstrip(".")
    except ValueError as e:
        raise StatusError(1, str(e)) from None


def demux_to(resp: Any, tty: bool) -> None:
    """Copy a logs/attach body to stdout/stderr: raw with a TTY, else Docker's 8-byte frames undone.

    Runs of frames of one stream are written with one call per chunk read (a 100k-line log is
    100k frames); the input is parsed in place, by offset, not by slicing the rest of the buffer.
    """
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if tty:
        while chunk := resp.read1(1 << 20):
            out.write(chunk)
            out.flush()
        return
    buf = b""
    while chunk := resp.read1(1 << 20):
        data = buf + chunk if buf else chunk
        end, pos = len(data), 0
        run: list[bytes] = []
        target = out
        while pos + 8 <= end:
            n = int.from_bytes(data[pos + 4:pos + 8], "big")
            if pos + 8 + n > end:
                break
            dest = err if data[pos] == 2 else out
            if dest is not target:
                if run:
                    target.write(b"".join(run))
                    target.flush()
                    run = []
                target = dest
            run.append(data[pos + 8:pos + 8 + n])
            pos += 8 + n
        if run:
            target.write(b"".join(run))
            target.flush()
        buf = data[pos:]


def cmd_logs(argv: list[str]) -> int:
    values, args = LOGS.parse(argv)
    c = client()
    info = c.json("GET", f"/containers/{args[0]}/json")
    params = {"stdout": 1, "stderr": 1, "follow": 1 if values.get("follow") else None,
              "timestamps": 1 if values.get("timestamps") else None, "tail": values.get("tail") or "all",
              "since": _time_arg(values.get("since")), "until": _time_arg(values.get("until")),
              "details": 1 if values.get("details") else None}
    resp = c.request("GET", f"/containers/{info['Id']}/logs", params)
    demux_to(resp, bool(info["Config"].get("Tty")))
    return 0


# ---- top, port, diff, export ---------------------------------------------------------------------------------

TOP = Command("top", "top CONTAINER [ps OPTIONS]", "Display the running processes of a container", [],
              min_args=1, interspersed=False)


def cmd_top(argv: list[str]) -> int:
    _, args = TOP.parse(argv)
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    res = client().json("GET", f"/containers/{args[0]}/top", params)
    from hatoba.cli.output import tabwrite

    rows = [res.get("Titles") or []] + [list(p) for p in res.get("Processes") or []]
    sys.stdout.write(tabwrite(rows, minwidth=1, padding=3) if rows[0] else "")
    return 0


PORT = Command("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container",
               [], min_args=1, max_args=2)


def cmd_port(argv: list[str]) -> int:
    _, args = PORT.parse(argv)
    info = client().json("GET", f"/containers/{args[0]}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) == 2:
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
        binds = ports.get(want)
        if not binds:
            raise StatusError(1, f"Error: No public port '{want}' published for {args[0]}")
        for b in binds:
            print(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}")
        return 0

    def key(k: str) -> tuple[int, str]:
        p, _, proto = k.partition("/")
        return (int(p) if p.isdigit() else 0, proto)

    for k in sorted(ports, key=key):
        for b in ports[k] or []:
            print(f"{k} -> {b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}")
    return 0


DIFF = Command("diff", "diff CONTAINER", "Inspect changes to files or directories on a container's filesystem", [],
               min_args=1, max_args=1)


def cmd_diff(argv: list[str]) -> int:
    _, args = DIFF.parse(argv)
    res = client().json("GET", f"/containers/{args[0]}/changes") or []
    for ch in res:
        print(f"{'CAD'[ch['Kind']]} {ch['Path']}")
    return 0


EXPORT = Command("export", "export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", [
    Flag("output", "o", "str", help="Write to a file, instead of STDOUT"),
], min_args=1, max_args=1)


def cmd_export(argv: list[str]) -> int:
    values, args = EXPORT.parse(argv)
    out_path = values.get("output")
    if not out_path and sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = client().request("GET", f"/containers/{args[0]}/export")
    f = open(out_path, "wb") if out_path else sys.stdout.buffer
    try:
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)
    finally:
        if out_path:
            f.close()
        else:
            f.flush()
    return 0


# ---- cp -------------------------------------------------------------------------------------------------------

CP = Command("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\thatoba cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
             "Copy files/folders between a container and the local filesystem", [
                 Flag("archive", "a", "bool", help="Archive mode (copy all uid/gid information)"),
                 Flag("follow-link", "L", "bool", help="Always follow symbol link in SRC_PATH"),
                 Flag("quiet", "q", "bool", help="Suppress progress output during copy"),
             ], min_args=2, max_args=2)


def _split_cp(arg: str) -> tuple[str | None, str]:
    if arg.startswith("/") or arg.startswith(".") or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def cmd_cp(argv: list[str]) -> int:
    import base64
    import os
    import tarfile

    values, args = CP.parse(argv)
    (sc, sp), (dc, dp) = _split_cp(args[0]), _split_cp(args[1])
    if sc and dc:
        raise StatusError(1, "copying between containers is not supported")
    if not sc and not dc:
        raise StatusError(1, "must specify at least one container source")
    c = client()
    if sc:
        resp = c.request("GET", f"/containers/{sc}/archive", {"path": sp})
        stat = loads(base64.b64decode(resp.getheader("X-Docker-Container-Path-Stat") or "e30="))
        data = resp.read()
        if dp == "-":
            sys.stdout.buffer.write(data)
            return 0
        src_name = stat.get("name") or os.path.basename(sp.rstrip("/"))
        if os.path.isdir(dp):
            dest_dir, new_name = dp, src_name
        else:
            if dp.endswith("/"):
                raise StatusError(1, f"destination directory \"{dp}\" must exist")
            dest_dir, new_name = os.path.dirname(dp) or ".", os.path.basename(dp)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            members = tf.getmembers()
            for m in members:
                first, sep, rest = m.name.partition("/")
                if first == src_name:
                    m.name = new_name + (sep + rest if sep else "")
            tf.extractall(dest_dir, members=members, numeric_owner=bool(values.get("archive")),
                          filter="fully_trusted")
        return 0
    # host → container
    if sp == "-":
        body = sys.stdin.buffer.read()
        c.call("PUT", f"/containers/{dc}/archive", {"path": dp, "noOverwriteDirNonDir": "true"}, body=body)
        return 0
    if not os.path.lexists(sp):
        raise StatusError(1, f"lstat {os.path.abspath(sp)}: no such file or directory")
    dest_is_dir = False
    try:
        resp = c.request("HEAD", f"/containers/{dc}/archive", {"path": dp})
        resp.read()
        st = loads(base64.b64decode(resp.getheader("X-Docker-Container-Path-Stat") or "e30="))
        dest_is_dir = bool(int(st.get("mode", 0)) & (1 << 31))
        if not dest_is_dir and os.path.isdir(sp):
            raise StatusError(1, "cannot copy a directory to a file")
    except APIError as e:
        if e.status != 404:
            raise
        if dp.endswith("/"):
            raise StatusError(1, f"Error response from daemon: Could not find the file {dp} in container {dc}") from None
    if dest_is_dir:
        target_dir, name = dp, os.path.basename(os.path.abspath(sp))
    else:
        target_dir, name = (os.path.dirname(dp.rstrip("/")) or "/"), os.path.basename(dp.rstrip("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(sp, arcname=name, filter=None if values.get("archive") else _root_owner)
    c.call("PUT", f"/containers/{dc}/archive", {"path": target_dir, "noOverwriteDirNonDir": "true"},
           body=buf.getvalue())
    return 0


def _root_owner(ti: Any) -> Any:
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


# ---- stats ----------------------------------------------------------------------------------------------------

STATS = Command("stats", "stats [OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", [
    Flag("all", "a", "bool", help="Show all containers (default shows just running)"),
    Flag("format", None, "str", help="Format output using a custom template"),
    Flag("no-stream", None, "bool", help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", None, "bool", help="Do not truncate output"),
])

STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}


def stats_item(s: dict, name: str, trunc: bool = True) -> dict[str, str]:
    from hatoba.cli.units import bytes_size, human_size

    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage = mem.get("usage", 0)
    mstats = mem.get("stats") or {}
    inactive = mstats.get("total_inactive_file", mstats.get("inactive_file"))
    if inactive is not None and inactive < usage:
        usage -= inactive
    limit = mem.get("limit", 0)
    mem_pct = usage / limit * 100.0 if limit else 0.0
    rd = wr = 0
    for e in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (e.get("op") or "").lower()
        if op == "read":
            rd += e.get("value", 0)
        elif op == "write":
            wr += e.get("value", 0)
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    cid = s.get("id", "")
    return {"Container": name, "ID": cid[:12] if trunc else cid, "Name": (s.get("name") or "").lstrip("/"),
            "CPUPerc": f"{cpu_pct:.2f}%", "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
            "MemPerc": f"{mem_pct:.2f}%", "NetIO": f"{human_size(rx)} / {human_size(tx)}",
            "BlockIO": f"{human_size(rd)} / {human_size(wr)}",
            "PIDs": str((s.get("pids_stats") or {}).get("current", 0))}


def cmd_stats(argv: list[str]) -> int:
    import threading

    values, args = STATS.parse(argv)
    c = client()
    names = args or [x["Id"][:12] for x in c.json("GET", "/containers/json",
                                                   {"all": 1 if values.get("all") else None})]
    default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
    from hatoba.cli.output import render

    def sample() -> tuple[list[dict], list[str]]:
        results: dict[str, dict] = {}
        errors: list[str] = []
        failures: list[ConnectError] = []

        def one(n: str) -> None:
            try:
                results[n] = Client(c.host).json("GET", f"/containers/{n}/stats", {"stream": 0})
            except APIError as e:
                errors.append(e.message)
            except ConnectError as e:
                failures.append(e)

        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        return [stats_item(results[n], n, not values.get("no_trunc")) for n in names if n in results], errors

    while True:
        items, errors = sample()
        if errors and args:
            for e in errors:
                sys.stderr.write(f"Error response from daemon: {e}\n")
            return 1
        text = render(values.get("format") or "", items, STATS_HEADERS, default)
        if values.get("no_stream"):
            sys.stdout.write(text)
            return 0
        sys.stdout.write("\x1b[2J\x1b[H" + text)
        sys.stdout.flush()
        time.sleep(0.5)


# ---- prune ----------------------------------------------------------------------------------------------------

PRUNE = Command("container prune", "container prune [OPTIONS]", "Remove all stopped containers", [
    Flag("filter", None, "list", help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", "f", "bool", help="Do not prompt for confirmation"),
], max_args=0)


def cmd_prune(argv: list[str]) -> int:
    values, _ = PRUNE.parse(argv)
    if not values.get("force"):
        sys.stdout.write("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    res = client().json("POST", "/containers/prune", {"filters": filters_param(values.get("filter") or [])})
    from hatoba.cli.units import human_size

    deleted = res.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for d in deleted:
            print(d)
        print()
    print(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed', 0))}")
    return 0
