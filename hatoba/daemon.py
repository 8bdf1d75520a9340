"""hatobad, the process: flags and daemon.json, the data-root lock, pidfile, API listeners, signals;
wires an Engine to the API.

Start-up order, so that a refused start leaves nothing behind and never touches another daemon's
files: config (flags over daemon.json) → listener addresses checked (no public TCP without
--tlsverify, TLS files loaded) → a pidfile naming a live hatobad refuses the start → exclusive
locks on the data root and the exec root (a second hatobad on either refuses, naming the holder's
pid) → pidfile written → listeners bound (a unix socket that
another daemon answers on is refused, not unlinked) → private state made private
(`engine.private`) → metadata DB, stores, runtime (`Engine`) →
containers reconciled and live-restored → serving. Whatever a failed start created (pidfile,
sockets, a data root or exec root it made) is removed again. SIGTERM/SIGINT stop the listeners
only: containers keep running under their conmon and are re-adopted by the next hatobad.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from urllib.parse import urlparse

from hatoba.engine.config import LOG_LEVELS, DaemonConfig, load_file

log = logging.getLogger("hatoba.daemon")

LOCK_NAME = "hatobad.lock"
DEFAULT_UNIX_PATH = "/run/hatoba/hatoba.sock"


class StartError(SystemExit):
    """hatobad cannot start; the message says why (exit status 1)."""

    def __init__(self, message: str):
        super().__init__(f"hatobad: {message}")


# ---- listeners -------------------------------------------------------------------------------------


@dataclass
class Listener:
    spec: str                      # as given (-H)
    path: str = ""                 # unix socket path
    host: str = ""                 # tcp
    port: int = 0
    tls: ssl.SSLContext | None = None


def _tls_context(cfg: DaemonConfig) -> ssl.SSLContext | None:
    if not (cfg.tls or cfg.tlsverify):
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cfg.tlscert, cfg.tlskey)
        if cfg.tlsverify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cfg.tlscacert)
    except (OSError, ssl.SSLError) as e:
        raise StartError(f"could not load the TLS certificates: {e}") from None
    return ctx


def plan_listeners(cfg: DaemonConfig) -> list[Listener]:
    """Parse and check every -H before anything is created (refusing public TCP without --tlsverify)."""
    out: list[Listener] = []
    tls: ssl.SSLContext | None = None
    for spec in cfg.hosts:
        u = urlparse(spec if "://" in spec else "unix://" + spec)
        if u.scheme in ("unix", ""):
            out.append(Listener(spec, path=os.path.abspath(u.path or DEFAULT_UNIX_PATH)))
        elif u.scheme == "tcp":
            hostname = u.hostname or "127.0.0.1"
            try:
                loopback = ipaddress.ip_address(hostname).is_loopback
            except ValueError:
                loopback = hostname == "localhost"
            if not loopback and not cfg.tlsverify:
                raise StartError(f"refusing to listen on {spec} without --tlsverify "
                                 "(anyone who can reach it would be root on this host)")
            try:
                port = u.port or (2376 if cfg.tlsverify else 2375)
            except ValueError:
                raise StartError(f"invalid port in {spec}") from None
            if tls is None:
                tls = _tls_context(cfg)
            out.append(Listener(spec, host=hostname, port=port, tls=tls))
        else:
            raise StartError(f"unsupported host {spec}")
    return out


def _bind_unix(path: str, group: str) -> socket.socket:
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1)
        try:
            probe.connect(path)
        except OSError:
            pass  # a stale socket of a daemon that is gone
        else:
            raise StartError(f"another daemon is listening on {path}; stop it or pick another -H")
        finally:
            probe.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
        os.chmod(path, 0o660)
        if group:
            import grp
            with contextlib.suppress(KeyError):
                os.chown(path, 0, grp.getgrnam(group).gr_gid)
        s.listen(1024)
    except BaseException:
        s.close()
        raise
    return s


def _bind_tcp(host: str, port: int) -> list[socket.socket]:
    out: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, type_, proto, _, addr in infos:
            s = socket.socket(family, type_, proto)
            out.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            s.listen(1024)
    except OSError as e:
        for s in out:
            s.close()
        raise StartError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return out


# ---- locks, pidfile, created dirs ------------------------------------------------------------------


def _holder_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def lock_root(path: str, what: str) -> int:
    """Hold an exclusive lock on `path` (a directory) for this process's lifetime; returns the fd.

    The lock file records the holder's pid, for the refusal message of a second daemon."""
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        pid = _holder_pid(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            by = f"another hatobad (pid {pid})" if pid else "another hatobad"
            raise StartError(f"the {what} {path} is in use by {by}; stop it or pick another --{what.replace(' ', '-')}") from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _check_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            argv = []
        # a hatobad is `hatobad ...`, `python .../hatobad ...` or `python -m hatoba.daemon ...`;
        # after a crash the pid may belong to anything else now (even `tail -f hatobad.log`)
        if any(os.path.basename(a) == b"hatobad" for a in argv[:2]) or (b"hatoba.daemon" in argv[1:3] or b"hatoba.engine.daemon" in argv[1:3]):
            raise StartError(f"pid file found, ensure hatobad is not running or delete {path}")


class StartUp:
    """What a start has created so far, undone if the start fails."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, str]] = []   # (kind, path), in creation order
        self.fds: list[int] = []
        self.socks: list[socket.socket] = []

    def makedirs(self, path: str, mode: int) -> None:
        """Create `path` (and missing parents); a failed start removes the topmost dir it created."""
        top = None
        p = os.path.abspath(path)
        while not os.path.exists(p):
            top = p
            p = os.path.dirname(p)
        os.makedirs(path, mode=mode, exist_ok=True)
        if top is not None:
            self._undo.append(("tree", top))

    def created_file(self, path: str) -> None:
        self._undo.append(("file", path))

    def undo(self) -> None:
        for s in self.socks:
            s.close()
        for kind, path in reversed(self._undo):
            if kind == "tree":
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        for fd in self.fds:
            os.close(fd)
        self._undo.clear()
        self.fds.clear()
        self.socks.clear()


def prepare(cfg: DaemonConfig, listeners: list[Listener], st: StartUp) -> list[tuple[Listener, socket.socket]]:
    """Locks, pidfile and bound listeners, in that order (see the module docstring)."""
    pidfile = cfg.resolved_pidfile()
    _check_pidfile(pidfile)  # dockerd's first check (and message); reads only
    st.makedirs(cfg.data_root, 0o711)
    st.fds.append(lock_root(cfg.data_root, "data root"))
    st.makedirs(cfg.exec_root, 0o711)
    st.fds.append(lock_root(cfg.exec_root, "exec root"))
    st.makedirs(os.path.dirname(pidfile) or ".", 0o755)
    st.created_file(pidfile)
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    bound: list[tuple[Listener, socket.socket]] = []
    for lst in listeners:
        if lst.path:
            st.makedirs(os.path.dirname(lst.path), 0o755)
            s = _bind_unix(lst.path, cfg.group)
            st.socks.append(s)
            st.created_file(lst.path)
            bound.append((lst, s))
        else:
            for s in _bind_tcp(lst.host, lst.port):
                st.socks.append(s)
                bound.append((lst, s))
    return bound


async def serve(cfg: DaemonConfig) -> None:
    from aiohttp import web

    listeners = plan_listeners(cfg)  # nothing is created before this
    st = StartUp()
    try:
        bound = prepare(cfg, listeners, st)
        from hatoba.api.server import make_app
        from hatoba.engine.core import Engine
        from hatoba.engine.private import secure_state

        secure_state(cfg.data_root, cfg.exec_root)

        engine = Engine(cfg)
        await engine.containers.restore()
        app = make_app(**engine.backends())
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        for lst, sock in bound:
            await web.SockSite(runner, sock, ssl_context=lst.tls).start()
    except BaseException:
        st.undo()
        raise
    rotator = asyncio.ensure_future(engine.containers.rotate_logs_forever())
    log.info("hatobad listening on %s (data-root %s)", ", ".join(cfg.hosts), cfg.data_root)
    log.debug("configuration: %s", cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    log.info("hatobad shutting down; containers keep running")
    rotator.cancel()
    await runner.cleanup()
    await engine.containers.health.close()  # probes in flight killed, before the database closes
    for lst, _ in bound:
        if lst.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lst.path)
    engine.db.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.resolved_pidfile())
    for fd in st.fds:
        os.close(fd)


def parse_args(argv: list[str]) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="hatobad", description="The hatoba container engine daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts", help="daemon socket(s) to listen on")
    p.add_argument("--data-root", help="root of persistent state (default /var/lib/hatoba)")
    p.add_argument("--exec-root", help="root of runtime state (default /run/hatoba)")
    p.add_argument("--config-file", default="/etc/hatoba/daemon.json")
    p.add_argument("-p", "--pidfile")
    p.add_argument("-l", "--log-level", choices=list(LOG_LEVELS))
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("--tls", action="store_true", default=None)
    p.add_argument("--tlsverify", action="store_true", default=None)
    p.add_argument("--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--cgroup-parent")
    p.add_argument("--default-runtime")
    p.add_argument("-G", "--group")
    p.add_argument("-v", "--version", action="store_true")
    a = p.parse_args(argv)
    if a.version:
        from hatoba import __version__
        print(f"hatobad version {__version__}")
        raise SystemExit(0)
    cfg = DaemonConfig()
    if a.config_file and os.path.exists(a.config_file):
        try:
            load_file(cfg, a.config_file)
        except (ValueError, OSError) as e:
            raise StartError(f"unable to configure the daemon with file {a.config_file}: {e}") from None
    for k in ("hosts", "data_root", "exec_root", "pidfile", "log_level", "tls", "tlsverify", "tlscacert",
              "tlscert", "tlskey", "cgroup_parent", "default_runtime", "group"):
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    if a.debug:
        cfg.log_level = "debug"
    cfg.data_root = os.path.abspath(cfg.data_root)
    cfg.exec_root = os.path.abspath(cfg.exec_root)
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}.get(cfg.log_level, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        raise StartError("must run as root")
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
