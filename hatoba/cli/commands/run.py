"""run, create, start, attach and exec: the commands that build containers and stream their stdio.

The sequence follows the docker CLI (see shared/reference/cli-traces): create → attach (hijack) →
wait (on its own connection) → start → resize; output streams until the daemon closes the
hijacked connection, then the exit status comes from the wait result.
"""

from __future__ import annotations

import sys
from _socket import SHUT_RDWR, SHUT_WR  # hijacked connections are _socket objects (hatoba.client.http)

from hatoba.cli.commands._resources import RESOURCE_FLAGS
from hatoba.cli.common import Command, StatusError, client
from hatoba.cli.flags import Flag
from hatoba.client.fastjson import loads
from hatoba.client.http import APIError, Client

# `exec ID cmd` without -i/-t loads neither os, threading nor signal: they are imported where needed
TYPE_CHECKING = False  # `typing` costs 3 to 6 ms of CLI start-up; Any is only used in annotations
if TYPE_CHECKING:
    from socket import socket
    from typing import Any

CONTAINER_FLAGS = RESOURCE_FLAGS + [
    Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("add-host", None, "list", help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("cap-add", None, "list", help="Add Linux capabilities"),
    Flag("cap-drop", None, "list", help="Drop Linux capabilities"),
    Flag("cgroup-parent", None, "str", help="Optional parent cgroup for the container"),
    Flag("cidfile", None, "str", help="Write the container ID to the file"),
    Flag("device", None, "list", help="Add a host device to the container"),
    Flag("dns", None, "list", help="Set custom DNS servers"),
    Flag("dns-option", None, "list", help="Set DNS options"),
    Flag("dns-search", None, "list", help="Set custom DNS search domains"),
    Flag("domainname", None, "str", help="Container NIS domain name"),
    Flag("entrypoint", None, "str", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("env", "e", "list", help="Set environment variables"),
    Flag("env-file", None, "list", help="Read in a file of environment variables"),
    Flag("expose", None, "list", help="Expose a port or a range of ports"),
    Flag("group-add", None, "list", help="Add additional groups to join"),
    Flag("health-cmd", None, "str", help="Command to run to check health"),
    Flag("health-interval", None, "duration", help="Time between running the check (ms|s|m|h) (default 0s)"),
    Flag("health-retries", None, "int", help="Consecutive failures needed to report unhealthy"),
    Flag("health-start-period", None, "duration", help="Start period for the container to initialize before "
         "starting health-retries countdown (ms|s|m|h) (default 0s)"),
    Flag("health-timeout", None, "duration", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
    Flag("hostname", "h", "str", help="Container host name"),
    Flag("init", None, "bool", help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", "i", "bool", help="Keep STDIN open even if not attached"),
    Flag("ipc", None, "str", help="IPC mode to use"),
    Flag("label", "l", "list", help="Set meta data on a container"),
    Flag("label-file", None, "list", help="Read in a line delimited file of labels"),
    Flag("link", None, "list", help="Add link to another container"),
    Flag("log-driver", None, "str", help="Logging driver for the container"),
    Flag("log-opt", None, "list", help="Log driver options"),
    Flag("mount", None, "list", help="Attach a filesystem mount to the container"),
    Flag("name", None, "str", help="Assign a name to the container"),
    Flag("network", None, "str", help="Connect a container to a network"),
    Flag("no-healthcheck", None, "bool", help="Disable any container-specified HEALTHCHECK"),
    Flag("net", None, "str", help="Connect a container to a network", hidden=True),
    Flag("oom-kill-disable", None, "bool", help="Disable OOM Killer"),
    Flag("oom-score-adj", None, "int", help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("pid", None, "str", help="PID namespace to use"),
    Flag("platform", None, "str", help="Set platform if server is multi-platform capable"),
    Flag("privileged", None, "bool", help="Give extended privileges to this container"),
    Flag("publish", "p", "list", help="Publish a container's port(s) to the host"),
    Flag("publish-all", "P", "bool", help="Publish all exposed ports to random ports"),
    Flag("pull", None, "str", "missing", help='Pull image before creating ("always", "missing", "never")'),
    Flag("quiet", "q", "bool", help="Suppress the pull output"),
    Flag("read-only", None, "bool", help="Mount the container's root filesystem as read only"),
    Flag("restart", None, "str", "no", help="Restart policy to apply when a container exits"),
    Flag("runtime", None, "str", help="Runtime to use for this container"),
    Flag("security-opt", None, "list", help="Security Options"),
    Flag("shm-size", None, "bytes", help="Size of /dev/shm"),
    Flag("stop-signal", None, "str", help="Signal to stop the container"),
    Flag("stop-timeout", None, "int", help="Timeout (in seconds) to stop a container"),
    Flag("sysctl", None, "list", help="Sysctl options"),
    Flag("tmpfs", None, "list", help="Mount a tmpfs directory"),
    Flag("tty", "t", "bool", help="Allocate a pseudo-TTY"),
    Flag("ulimit", None, "list", help="Ulimit options"),
    Flag("user", "u", "str", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("uts", None, "str", help="UTS namespace to use"),
    Flag("volume", "v", "list", help="Bind mount a volume"),
    Flag("workdir", "w", "str", help="Working directory inside the container"),
]

RUN_FLAGS = CONTAINER_FLAGS + [
    Flag("detach", "d", "bool", help="Run container in background and print container ID"),
    Flag("detach-keys", None, "str", help="Override the key sequence for detaching a container"),
    Flag("rm", None, "bool", help="Automatically remove the container and its associated anonymous volumes when it exits"),
    Flag("sig-proxy", None, "bool", True, help="Proxy received signals to the process"),
]

RUN = Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
              RUN_FLAGS, min_args=1, interspersed=False, error_status=125)
CREATE = Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
                 CONTAINER_FLAGS, min_args=1, interspersed=False, error_status=125)


# ---- create body ------------------------------------------------------------------------------------

def _parse_env_file(path: str) -> list[str]:
    import os

    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if "=" not in line:
                    line = f"{line}={os.environ.get(line, '')}" if line in os.environ else line
                out.append(line)
    except OSError as e:
        raise StatusError(125, f"hatoba: open {path}: {e.strerror.lower() if e.strerror else e}.\n"
                               "See 'hatoba run --help'.") from None
    return out


def _env(values: dict) -> list[str]:
    env = []
    for f in values.get("env_file") or []:
        env += _parse_env_file(f)
    for e in values.get("env") or []:
        if "=" not in e:
            import os

            if e in os.environ:
                env.append(f"{e}={os.environ[e]}")
            continue
        env.append(e)
    return env


def _ports(specs: list[str], expose: list[str]) -> tuple[dict, dict]:
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for e in expose:
        p = e if "/" in e else e + "/tcp"
        exposed[p] = {}
    for spec in specs:
        proto = "tcp"
        if "/" in spec:
            spec, proto = spec.rsplit("/", 1)
        parts = spec.rsplit(":", 2) if not spec.startswith("[") else [spec]
        if len(parts) == 1:
            ip, host, cport = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, cport = "", parts[0], parts[1]
        else:
            ip, host, cport = parts
        if not cport.split("-")[0].isdigit():
            raise StatusError(125, f"hatoba: invalid containerPort: {cport}.\nSee 'hatoba run --help'.")
        key = f"{cport}/{proto}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host})
    return exposed, bindings


def _ulimits(specs: list[str]) -> list[dict]:
    out = []
    for s in specs:
        name, _, lim = s.partition("=")
        soft, _, hard = lim.partition(":")
        try:
            out.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        except ValueError:
            raise StatusError(125, f"hatoba: invalid ulimit argument: {s}.\nSee 'hatoba run --help'.") from None
    return out


def _mount_flag(spec: str) -> dict[str, Any]:
    """`--mount type=bind,source=/a,target=/b,readonly` → a HostConfig.Mounts entry."""
    m: dict[str, Any] = {"Type": "volume"}
    for part in spec.split(","):
        k, eq, v = part.partition("=")
        k = k.strip().lower()
        if k == "type":
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("target", "destination", "dst"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = (not eq) or v.lower() in ("1", "true")
        elif k == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = v
        elif k == "tmpfs-size":
            from hatoba.cli.units import parse_ram
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_ram(v)
        elif k == "tmpfs-mode":
            m.setdefault("TmpfsOptions", {})["Mode"] = int(v, 8)
        else:
            raise StatusError(125, f"hatoba: invalid argument \"{spec}\" for \"--mount\" flag: "
                                   f"unexpected key '{k}' in '{part}'\nSee 'hatoba run --help'.")
    return m


def healthcheck(values: dict) -> dict[str, Any] | None:
    """`Healthcheck` from --health-* / --no-healthcheck, with the docker CLI's checks and messages
    (durations in nanoseconds; None when no flag was given, so the image's HEALTHCHECK applies)."""
    cmd = values.get("health_cmd") or ""
    ns = {k: round((values.get(k) or 0) * 1e9) for k in ("health_interval", "health_timeout", "health_start_period")}
    retries = values.get("health_retries") or 0
    given = bool(cmd) or any(ns.values()) or retries != 0
    if values.get("no_healthcheck"):
        if given:
            raise StatusError(125, "hatoba: --no-healthcheck conflicts with --health-* options.\n"
                                   "See 'hatoba run --help'.")
        return {"Test": ["NONE"]}
    if not given:
        return None
    for flag, v in (("interval", ns["health_interval"]), ("timeout", ns["health_timeout"]),
                    ("retries", retries), ("start-period", ns["health_start_period"])):
        if v < 0:
            raise StatusError(125, f"hatoba: --health-{flag} cannot be negative.\nSee 'hatoba run --help'.")
    hc = {"Test": ["CMD-SHELL", cmd] if cmd else None, "Interval": ns["health_interval"],
          "Timeout": ns["health_timeout"], "StartPeriod": ns["health_start_period"], "Retries": retries}
    return {k: v for k, v in hc.items() if v}  # Go's omitempty


def build_body(values: dict, args: list[str]) -> dict[str, Any]:
    image, cmd = args[0], args[1:]
    labels: dict[str, str] = {}
    for f in values.get("label_file") or []:
        for line in _parse_env_file(f):
            k, _, v = line.partition("=")
            labels[k] = v
    for lbl in values.get("label") or []:
        k, _, v = lbl.partition("=")
        labels[k] = v
    exposed, bindings = _ports(values.get("publish") or [], values.get("expose") or [])
    attach = [a.lower() for a in values.get("attach") or []]
    detach = bool(values.get("detach"))
    interactive, tty = bool(values.get("interactive")), bool(values.get("tty"))
    if attach:
        a_in, a_out, a_err = "stdin" in attach, "stdout" in attach, "stderr" in attach
    else:
        a_in, a_out, a_err = (interactive and not detach), not detach, not detach
    binds, volumes = [], {}
    for v in values.get("volume") or []:
        if ":" in v:
            binds.append(v)
        else:
            volumes[v] = {}
    tmpfs = {}
    for t in values.get("tmpfs") or []:
        path, _, opts = t.partition(":")
        tmpfs[path] = opts
    sysctls = {}
    for s in values.get("sysctl") or []:
        k, _, v = s.partition("=")
        sysctls[k] = v
    log_cfg = {}
    for o in values.get("log_opt") or []:
        k, _, v = o.partition("=")
        log_cfg[k] = v
    restart = values.get("restart") or "no"
    rname, _, rcount = restart.partition(":")
    network = values.get("network") or values.get("net") or "default"
    entrypoint = values.get("entrypoint")
    nano = int(round((values.get("cpus") or 0) * 1e9))
    memory = values.get("memory") or 0
    hc: dict[str, Any] = {
        "Binds": binds or None, "ContainerIDFile": values.get("cidfile") or "",
        "LogConfig": {"Type": values.get("log_driver") or "", "Config": log_cfg},
        "NetworkMode": network, "PortBindings": bindings,
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": int(rcount) if rcount.isdigit() else 0},
        "AutoRemove": bool(values.get("rm")), "CapAdd": values.get("cap_add") or None,
        "CapDrop": values.get("cap_drop") or None, "Dns": values.get("dns") or [],
        "DnsOptions": values.get("dns_option") or [], "DnsSearch": values.get("dns_search") or [],
        "ExtraHosts": values.get("add_host") or None, "GroupAdd": values.get("group_add") or None,
        "IpcMode": values.get("ipc") or "", "Links": values.get("link") or None,
        "OomScoreAdj": values.get("oom_score_adj") or 0, "PidMode": values.get("pid") or "",
        "Privileged": bool(values.get("privileged")), "PublishAllPorts": bool(values.get("publish_all")),
        "ReadonlyRootfs": bool(values.get("read_only")), "SecurityOpt": values.get("security_opt") or None,
        "UTSMode": values.get("uts") or "", "ShmSize": values.get("shm_size") or 0,
        "ConsoleSize": [0, 0], "CpuShares": values.get("cpu_shares") or 0, "Memory": memory,
        "NanoCpus": nano, "CgroupParent": values.get("cgroup_parent") or "",
        "CpuPeriod": values.get("cpu_period") or 0, "CpuQuota": values.get("cpu_quota") or 0,
        "CpusetCpus": values.get("cpuset_cpus") or "", "CpusetMems": values.get("cpuset_mems") or "",
        "MemoryReservation": values.get("memory_reservation") or 0, "MemorySwap": values.get("memory_swap") or 0,
        "OomKillDisable": bool(values.get("oom_kill_disable")), "PidsLimit": values.get("pids_limit"),
        "Ulimits": _ulimits(values.get("ulimit") or []), "Tmpfs": tmpfs or None, "Sysctls": sysctls or None,
        "Init": True if values.get("init") else None,
        "Mounts": [_mount_flag(m) for m in values.get("mount") or []] or None,
    }
    if values.get("runtime"):
        hc["Runtime"] = values["runtime"]
    if tty and sys.stdout.isatty():
        size = _term_size()
        if size:
            hc["ConsoleSize"] = list(size)
    body: dict[str, Any] = {
        "Hostname": values.get("hostname") or "", "Domainname": values.get("domainname") or "",
        "User": values.get("user") or "", "AttachStdin": a_in, "AttachStdout": a_out, "AttachStderr": a_err,
        "ExposedPorts": exposed or None, "Tty": tty, "OpenStdin": interactive, "StdinOnce": interactive and a_in,
        "Env": _env(values), "Cmd": cmd or None, "Image": image, "Volumes": volumes or None,
        "WorkingDir": values.get("workdir") or "",
        "Entrypoint": ([entrypoint] if entrypoint else [""]) if entrypoint is not None else None,
        "OnBuild": None, "Labels": labels, "HostConfig": hc,
        "NetworkingConfig": {"EndpointsConfig": {}},
    }
    if values.get("stop_signal"):
        body["StopSignal"] = values["stop_signal"]
    if values.get("stop_timeout") is not None:
        body["StopTimeout"] = values["stop_timeout"]
    hc = healthcheck(values)
    if hc is not None:
        body["Healthcheck"] = hc
    return body


def _term_size() -> tuple[int, int] | None:
    import os

    try:
        sz = os.get_terminal_size(sys.stdout.fileno())
        return sz.lines, sz.columns
    except OSError:
        return None


def create_container(c: Client, body: dict, name: str | None, quiet: bool) -> str:
    params = {"name": name} if name else None
    try:
        res = c.json("POST", "/containers/create", params, body=body)
    except APIError as e:
        if e.status != 404 or not e.message.startswith("No such image"):
            raise
        from hatoba.images.reference import parse

        image = body["Image"]
        ref = parse(image)
        sys.stderr.write(f"Unable to find image '{ref.familiar()}' locally\n")
        from hatoba.cli.commands.registry import pull_stream
        from hatoba.cli.jsonmessage import StreamError, display

        try:  # progress on stderr, as `docker run` shows it
            stream = pull_stream(c, ref)
            display(stream if not quiet else (m for m in stream if m.get("error") or m.get("errorDetail")),
                    sys.stderr)
        except StreamError as e:
            raise APIError(500, e.message) from None
        res = c.json("POST", "/containers/create", params, body=body)
    for w in res.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {w}\n")
    if body["HostConfig"].get("ContainerIDFile"):
        with open(body["HostConfig"]["ContainerIDFile"], "w") as f:
            f.write(res["Id"])
    return res["Id"]


def cmd_create(argv: list[str]) -> int:
    values, args = CREATE.parse(argv)
    c = client()
    cid = create_container(c, build_body(values, args), values.get("name"), bool(values.get("quiet")))
    print(cid)
    return 0


# ---- streaming ----------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, sock: socket, pre: bytes):
        self.sock, self.buf = sock, bytearray(pre)

    def read_some(self) -> bytes:
        if self.buf:
            b = bytes(self.buf)
            self.buf.clear()
            return b
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except OSError:
                chunk = b""
            if not chunk:
                return b""
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def pump_output(sock: socket, pre: bytes, tty: bool) -> None:
    r = _Reader(sock, pre)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if tty:
        while True:
            data = r.read_some()
            if not data:
                return
            out.write(data)
            out.flush()
    while True:
        head = r.read_exact(8)
        if len(head) < 8:
            return
        n = int.from_bytes(head[4:8], "big")
        payload = r.read_exact(n) if n else b""
        target = err if head[0] == 2 else out
        target.write(payload)
        target.flush()


def _parse_detach_keys(spec: str | None) -> bytes:
    spec = spec or "ctrl-p,ctrl-q"
    out = bytearray()
    for k in spec.split(","):
        k = k.strip()
        if k.startswith("ctrl-") and len(k) == 6:
            ch = k[5]
            if ch == "@":
                out.append(0)
            elif ch.isalpha():
                out.append(ord(ch.lower()) - ord("a") + 1)
            else:
                out.append({"[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(ch, 0))
        elif len(k) == 1:
            out.append(ord(k))
        else:
            raise StatusError(125, f"hatoba: Invalid detach keys ({spec}) provided")
    return bytes(out)


class _Thread:
    """`run` on a daemon thread once `start` is called (`threading` is imported only then)."""

    def start(self) -> None:
        import threading

        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def run(self) -> None:
        raise NotImplementedError


class _StdinPump(_Thread):
    """Copies stdin to the hijacked socket; half-closes on EOF; watches for the detach keys on a TTY."""

    def __init__(self, sock: socket, detach_keys: bytes | None):
        self.sock, self.keys = sock, detach_keys
        self.detached = False

    def run(self) -> None:
        import os

        fd = sys.stdin.fileno()
        matched = b""
        while True:
            try:
                data = os.read(fd, 32768)
            except OSError:
                data = b""
            if not data:
                try:
                    self.sock.shutdown(SHUT_WR)
                except OSError:
                    pass
                return
            if self.keys:
                out = bytearray()
                for b in data:
                    nxt = matched + bytes([b])
                    if self.keys.startswith(nxt):
                        matched = nxt
                        if matched == self.keys:
                            self.detached = True
                            try:
                                if out:
                                    self.sock.sendall(bytes(out))
                                self.sock.shutdown(SHUT_RDWR)
                            except OSError:
                                pass
                            return
                        continue
                    out += matched + bytes([b])
                    matched = b""
                data = bytes(out)
                if not data:
                    continue
            try:
                self.sock.sendall(data)
            except OSError:
                return


class _RawTerminal:
    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stdin.isatty()
        self.saved: Any = None

    def __enter__(self) -> _RawTerminal:
        if self.enabled:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(fd)
            tty.setraw(fd, termios.TCSANOW)  # like docker (TCSETS): keep what was typed ahead
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)


def _resize(c: Client, path: str) -> None:
    size = _term_size()
    if size:
        try:
            Client(c.host).call("POST", path, {"h": size[0], "w": size[1]})
        except (APIError, OSError):
            pass


class _Waiter(_Thread):
    def __init__(self, host: str, cid: str, condition: str | None):
        import threading

        self.host, self.cid, self.condition = host, cid, condition
        self.result: dict | None = None
        self.error: Exception | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        c = Client(self.host)
        try:
            params = {"condition": self.condition} if self.condition else None
            resp = c.request("POST", f"/containers/{self.cid}/wait", params, new_conn=True)
            self.ready.set()
            raw = resp.read()
            self.result = loads(raw) if raw.strip() else {}
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e
        finally:
            self.ready.set()

    def status(self) -> int:
        self.join()
        if self.error is not None:
            if isinstance(self.error, APIError):
                raise self.error
            return 125
        return int((self.result or {}).get("StatusCode", 0))


def _start_error_status(msg: str) -> int:
    if "executable file not found" in msg or "no such file or directory" in msg:
        return 127
    if "permission denied" in msg or "is a directory" in msg:
        return 126
    return 125


def _stream_session(c: Client, sock: socket, pre: bytes, *, tty: bool, stdin: bool, resize_path: str | None,
                    detach_keys: bytes | None, sig_proxy_cid: str | None) -> bool:
    """Run a hijacked session to its end; returns True when the user detached."""
    pump = None
    old_handlers: dict[int, Any] = {}
    resize = bool(resize_path and tty and sys.stdout.isatty())
    proxy = bool(sig_proxy_cid and not tty)
    if resize or proxy:
        import signal
    if resize and resize_path:
        _resize(c, resize_path)
        old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, lambda *_: _resize(c, resize_path))
    if proxy:
        def forward(signum: int, _frame: Any) -> None:
            try:
                Client(c.host).call("POST", f"/containers/{sig_proxy_cid}/kill", {"signal": signal.Signals(signum).name[3:]})
            except (APIError, OSError):
                pass
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT):
            old_handlers[s] = signal.signal(s, forward)
    try:
        with _RawTerminal(tty and stdin):
            if stdin:
                pump = _StdinPump(sock, detach_keys if tty else None)
                pump.start()
            else:
                try:
                    sock.shutdown(SHUT_WR)
                except OSError:
                    pass
            pump_output(sock, pre, tty)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)  # imported above whenever a handler was set
        sock.close()
    # run and start -a end quietly (status 0); attach and exec report "read escape sequence" (status 1)
    return pump is not None and pump.detached


def _run(values: dict, args: list[str]) -> int:
    c = client()
    body = build_body(values, args)
    detach = bool(values.get("detach"))
    cid = create_container(c, body, values.get("name"), bool(values.get("quiet")))
    if detach:
        try:
            c.call("POST", f"/containers/{cid}/start")
        except APIError as e:
            raise StatusError(_start_error_status(e.message),
                              f"hatoba: Error response from daemon: {e.message}.") from None
        print(cid)
        return 0
    tty, stdin = body["Tty"], body["AttachStdin"]
    params = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1 if body["AttachStdout"] else None,
              "stderr": 1 if body["AttachStderr"] else None}
    sock, pre = c.hijack("POST", f"/containers/{cid}/attach", params)
    waiter = _Waiter(c.host, cid, "removed" if values.get("rm") else "next-exit")
    waiter.start()
    waiter.ready.wait(5)
    try:
        c.call("POST", f"/containers/{cid}/start")
    except APIError as e:
        sock.close()
        raise StatusError(_start_error_status(e.message), f"hatoba: Error response from daemon: {e.message}.") from None
    keys = _parse_detach_keys(values.get("detach_keys")) if tty and stdin else None
    detached = _stream_session(c, sock, pre, tty=tty, stdin=stdin, resize_path=f"/containers/{cid}/resize",
                               detach_keys=keys, sig_proxy_cid=cid if values.get("sig_proxy", True) else None)
    if detached:
        return 0
    return waiter.status()


def cmd_run(argv: list[str]) -> int:
    values, args = RUN.parse(argv)
    return _run(values, args)


# ---- start / attach -------------------------------------------------------------------------------------

START = Command("start", "start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", [
    Flag("attach", "a", "bool", help="Attach STDOUT/STDERR and forward signals"),
    Flag("detach-keys", None, "str", help="Override the key sequence for detaching a container"),
    Flag("interactive", "i", "bool", help="Attach container's STDIN"),
], min_args=1)


def cmd_start(argv: list[str]) -> int:
    values, args = START.parse(argv)
    c = client()
    if values.get("attach") or values.get("interactive"):
        if len(args) > 1:
            raise StatusError(1, "you cannot start and attach multiple containers at once")
        info = c.json("GET", f"/containers/{args[0]}/json")
        cid, tty = info["Id"], info["Config"]["Tty"]
        stdin = bool(values.get("interactive")) and info["Config"]["OpenStdin"]
        params = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1}
        sock, pre = c.hijack("POST", f"/containers/{cid}/attach", params)
        waiter = _Waiter(c.host, cid, "removed" if info["HostConfig"].get("AutoRemove") else "next-exit")
        waiter.start()
        waiter.ready.wait(5)
        try:
            c.call("POST", f"/containers/{cid}/start")
        except APIError as e:
            sock.close()
            raise StatusError(1, f"Error response from daemon: {e.message}") from None
        keys = _parse_detach_keys(values.get("detach_keys")) if tty and stdin else None
        if _stream_session(c, sock, pre, tty=tty, stdin=stdin, resize_path=f"/containers/{cid}/resize",
                           detach_keys=keys, sig_proxy_cid=cid):
            return 0
        return waiter.status()
    failed = []
    for name in args:
        try:
            c.call("POST", f"/containers/{name}/start")
            print(name)
        except APIError as e:
            sys.stderr.write(f"Error response from daemon: {e.message}\n")
            failed.append(name)
    if failed:
        raise StatusError(1, "Error: failed to start containers: " + ", ".join(failed))
    return 0


ATTACH = Command("attach", "attach [OPTIONS] CONTAINER",
                 "Attach local standard input, output, and error streams to a running container", [
                     Flag("detach-keys", None, "str", help="Override the key sequence for detaching a container"),
                     Flag("no-stdin", None, "bool", help="Do not attach STDIN"),
                     Flag("sig-proxy", None, "bool", True, help="Proxy all received signals to the process"),
                 ], min_args=1, max_args=1)


def cmd_attach(argv: list[str]) -> int:
    values, args = ATTACH.parse(argv)
    c = client()
    name = args[0]
    waiter = _Waiter(c.host, name, None)
    waiter.start()
    info = c.json("GET", f"/containers/{name}/json")
    if not info["State"]["Running"]:
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if info["State"].get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    tty = info["Config"]["Tty"]
    stdin = info["Config"]["OpenStdin"] and not values.get("no_stdin")
    params = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1}
    sock, pre = c.hijack("POST", f"/containers/{name}/attach", params)
    keys = _parse_detach_keys(values.get("detach_keys")) if tty and stdin else None
    if tty and sys.stdout.isatty():
        size = _term_size()
        if size:
            try:
                c.call("POST", f"/containers/{name}/resize", {"h": size[0] + 1, "w": size[1] + 1})
            except APIError:
                pass
    detached = _stream_session(c, sock, pre, tty=tty, stdin=stdin, resize_path=f"/containers/{name}/resize",
                               detach_keys=keys, sig_proxy_cid=name if values.get("sig_proxy", True) else None)
    if detached:
        sys.stderr.write("read escape sequence\n")
        return 1
    return waiter.status()


# ---- exec -----------------------------------------------------------------------------------------------

EXEC = Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", [
    Flag("detach", "d", "bool", help="Detached mode: run command in the background"),
    Flag("detach-keys", None, "str", help="Override the key sequence for detaching a container"),
    Flag("env", "e", "list", help="Set environment variables"),
    Flag("env-file", None, "list", help="Read in a file of environment variables"),
    Flag("interactive", "i", "bool", help="Keep STDIN open even if not attached"),
    Flag("privileged", None, "bool", help="Give extended privileges to the command"),
    Flag("tty", "t", "bool", help="Allocate a pseudo-TTY"),
    Flag("user", "u", "str", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
    Flag("workdir", "w", "str", help="Working directory inside the container"),
], min_args=2, interspersed=False, error_status=125)


def cmd_exec(argv: list[str]) -> int:
    values, args = EXEC.parse(argv)
    c = client()
    name, cmd = args[0], args[1:]
    # (the docker CLI inspects the container first; creating the exec fails with the same message)
    tty, stdin, detach = bool(values.get("tty")), bool(values.get("interactive")), bool(values.get("detach"))
    body = {"User": values.get("user") or "", "Privileged": bool(values.get("privileged")), "Tty": tty,
            "AttachStdin": stdin and not detach, "AttachStderr": not detach, "AttachStdout": not detach,
            "Detach": detach, "DetachKeys": values.get("detach_keys") or "", "Env": _env(values),
            "WorkingDir": values.get("workdir") or "", "Cmd": cmd}
    if tty and sys.stdout.isatty():
        size = _term_size()
        if size:
            body["ConsoleSize"] = list(size)
    try:
        eid = c.json("POST", f"/containers/{name}/exec", body=body)["Id"]
    except APIError as e:
        raise StatusError(1, f"Error response from daemon: {e.message}") from None
    if detach:
        c.call("POST", f"/exec/{eid}/start", body={"Detach": True, "Tty": tty})
        return 0
    sock, pre = c.hijack("POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": tty})
    keys = _parse_detach_keys(values.get("detach_keys")) if tty and stdin else None
    if _stream_session(c, sock, pre, tty=tty, stdin=stdin, resize_path=f"/exec/{eid}/resize", detach_keys=keys,
                       sig_proxy_cid=None):
        sys.stderr.write("read escape sequence\n")  # docker exec: the detach is an error, status 1
        return 1
    info = Client(c.host).json("GET", f"/exec/{eid}/json")
    return int(info.get("ExitCode") or 0)
