"""hatobad, the process: flags and daemon.json, pidfile, API listeners, signals; wires an Engine to the API.

Start-up order: config → pidfile → metadata DB → content store/snapshots/images → runtime →
containers (live-restore) → API listeners. SIGTERM/SIGINT stop the listeners only: containers
keep running under their conmon and are re-adopted by the next hatobad.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import ssl
import sys
from urllib.parse import urlparse

from hatoba.engine.config import DaemonConfig, load_file
from hatoba.engine.core import Engine

log = logging.getLogger("hatoba.daemon")


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
            raise SystemExit(f"hatobad: pid file found, ensure hatobad is not running or delete {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def _tls_context(cfg: DaemonConfig) -> ssl.SSLContext | None:
    if not (cfg.tls or cfg.tlsverify):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.tlscert, cfg.tlskey)
    if cfg.tlsverify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cfg.tlscacert)
    return ctx


async def serve(cfg: DaemonConfig) -> None:
    from aiohttp import web

    from hatoba.api.server import make_app

    _check_pidfile(cfg.resolved_pidfile())
    engine = Engine(cfg)
    await engine.containers.restore()
    rotator = asyncio.ensure_future(engine.containers.rotate_logs_forever())
    app = make_app(**engine.backends())
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    sites = []
    for host in cfg.hosts:
        u = urlparse(host if "://" in host else "unix://" + host)
        if u.scheme in ("unix", ""):
            path = u.path or "/run/hatoba/hatoba.sock"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            site = web.UnixSite(runner, path)
            await site.start()
            os.chmod(path, 0o660)
            if cfg.group:
                import grp
                with contextlib.suppress(KeyError):
                    os.chown(path, 0, grp.getgrnam(cfg.group).gr_gid)
        elif u.scheme == "tcp":
            hostname = u.hostname or "127.0.0.1"
            try:
                loopback = ipaddress.ip_address(hostname).is_loopback
            except ValueError:
                loopback = hostname == "localhost"
            if not loopback and not cfg.tlsverify:
                raise SystemExit(f"hatobad: refusing to listen on {host} without --tlsverify "
                                 "(anyone who can reach it would be root on this host)")
            site = web.TCPSite(runner, hostname, u.port or (2376 if cfg.tlsverify else 2375),
                               ssl_context=_tls_context(cfg))
            await site.start()
        else:
            raise SystemExit(f"hatobad: unsupported host {host}")
        sites.append(site)
    log.info("hatobad listening on %s (data-root %s)", ", ".join(cfg.hosts), cfg.data_root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    log.info("hatobad shutting down; containers keep running")
    rotator.cancel()
    await runner.cleanup()
    await engine.containers.health.close()  # probes in flight killed, before the database closes
    for host in cfg.hosts:
        u = urlparse(host if "://" in host else "unix://" + host)
        if u.scheme in ("unix", ""):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(u.path)
    engine.db.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.resolved_pidfile())


def parse_args(argv: list[str]) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="hatobad", description="The hatoba container engine daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts", help="daemon socket(s) to listen on")
    p.add_argument("--data-root", help="root of persistent state (default /var/lib/hatoba)")
    p.add_argument("--exec-root", help="root of runtime state (default /run/hatoba)")
    p.add_argument("--config-file", default="/etc/hatoba/daemon.json")
    p.add_argument("-p", "--pidfile")
    p.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
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
            raise SystemExit(f"hatobad: unable to configure the daemon with file {a.config_file}: {e}") from None
    for k in ("hosts", "data_root", "exec_root", "pidfile", "log_level", "tls", "tlsverify", "tlscacert",
              "tlscert", "tlskey", "cgroup_parent", "default_runtime", "group"):
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    if a.debug:
        cfg.log_level = "debug"
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}.get(cfg.log_level, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        raise SystemExit("hatobad: must run as root")
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
