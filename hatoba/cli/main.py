"""Entry point of the `hatoba` CLI: global flags, command lookup (plain and management forms), errors.

Commands live in hatoba.cli.commands.* and are imported only when used.
"""

from __future__ import annotations

import sys

# command → (module, function); the management forms map onto the same functions
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "cmd_run"), "create": ("run", "cmd_create"), "start": ("run", "cmd_start"),
    "attach": ("run", "cmd_attach"), "exec": ("run", "cmd_exec"),
    "stop": ("containers", "cmd_stop"), "restart": ("containers", "cmd_restart"), "kill": ("containers", "cmd_kill"),
    "rm": ("containers", "cmd_rm"), "ps": ("containers", "cmd_ps"), "logs": ("containers", "cmd_logs"),
    "wait": ("containers", "cmd_wait"), "top": ("containers", "cmd_top"), "port": ("containers", "cmd_port"),
    "pause": ("containers", "cmd_pause"), "unpause": ("containers", "cmd_unpause"),
    "rename": ("containers", "cmd_rename"), "update": ("containers", "cmd_update"), "cp": ("containers", "cmd_cp"),
    "diff": ("containers", "cmd_diff"), "export": ("containers", "cmd_export"), "stats": ("containers", "cmd_stats"),
    "inspect": ("inspect", "cmd_inspect"),
    "images": ("images", "cmd_images"), "rmi": ("images", "cmd_rmi"), "tag": ("images", "cmd_tag"),
    "import": ("images", "cmd_import"), "history": ("images", "cmd_history"),
    "version": ("system", "cmd_version"), "info": ("system", "cmd_info"), "events": ("system", "cmd_events"),
}

MANAGEMENT: dict[str, dict[str, str]] = {
    "container": {"ls": "ps", "list": "ps", "ps": "ps", "run": "run", "create": "create", "start": "start",
                  "stop": "stop", "restart": "restart", "kill": "kill", "rm": "rm", "remove": "rm", "logs": "logs",
                  "attach": "attach", "exec": "exec", "wait": "wait", "top": "top", "port": "port",
                  "pause": "pause", "unpause": "unpause", "rename": "rename", "update": "update", "cp": "cp",
                  "diff": "diff", "export": "export", "stats": "stats", "inspect": "container inspect",
                  "prune": "container prune"},
    "image": {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag", "import": "import",
              "history": "history", "inspect": "image inspect", "bootstrap": "image bootstrap",
              "prune": "image prune"},
    "system": {"df": "system df", "info": "info", "events": "events"},
}

EXTRA: dict[str, tuple[str, str]] = {
    "container inspect": ("inspect", "cmd_container_inspect"), "image inspect": ("inspect", "cmd_image_inspect"),
    "container prune": ("containers", "cmd_prune"), "image bootstrap": ("images", "cmd_bootstrap"),
    "image prune": ("images", "cmd_image_prune"), "system df": ("system", "cmd_df"),
}

# moving images: save, load (image save/load) and commit (container commit)
COMMANDS.update({"save": ("moving", "cmd_save"), "load": ("moving", "cmd_load"), "commit": ("moving", "cmd_commit")})
MANAGEMENT["image"].update({"save": "save", "load": "load"})
MANAGEMENT["container"]["commit"] = "commit"

# registries: pull, push (image pull/push), login, logout, search
COMMANDS.update({c: ("registry", f"cmd_{c}") for c in ("pull", "push", "login", "logout", "search")})
MANAGEMENT["image"].update({"pull": "pull", "push": "push"})

USAGE = """
Usage:  hatoba [OPTIONS] COMMAND

A Docker-compatible container engine

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  images      List images
  logs        Fetch the logs of a container
  inspect     Return low-level information on hatoba objects
  version     Show the hatoba version information
  info        Display system-wide information

Management Commands:
  container   Manage containers
  image       Manage images
  system      Manage hatoba

Global Options:
  -H, --host string   Daemon socket to connect to (also DOCKER_HOST, HATOBA_HOST)
  -v, --version       Print version information and quit
"""


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    host = None
    env: dict[str, str] = {}  # for the client (hatoba.client.http.getenv); `os` only if needed
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("-H", "--host"):
            if not args:
                sys.stderr.write("flag needs an argument: --host\n")
                sys.exit(125)
            host = args.pop(0)
        elif a.startswith("--host="):
            host = a.split("=", 1)[1]
        elif a.startswith("-H") and len(a) > 2:
            host = a[2:]
        elif a in ("-v", "--version"):
            from hatoba import __version__
            print(f"hatoba version {__version__}")
            return
        elif a in ("-h", "--help"):
            sys.stdout.write(USAGE.lstrip("\n"))
            return
        elif a in ("-D", "--debug"):
            continue
        elif a in ("--tls", "--tlsverify"):
            import os

            os.environ["HATOBA_TLS_VERIFY"] = "1" if a == "--tlsverify" else os.environ.get("HATOBA_TLS_VERIFY", "")
            if a == "--tls":
                os.environ.setdefault("HATOBA_HOST_TLS", "1")
        elif a.split("=", 1)[0] in ("--tlscacert", "--tlscert", "--tlskey"):
            name, eq, val = a.partition("=")
            if not eq:
                if not args:
                    sys.stderr.write(f"flag needs an argument: {name}\n")
                    sys.exit(125)
                val = args.pop(0)
            env["HATOBA_TLS_" + name[5:].upper()] = val
        else:
            sys.stderr.write(f"unknown flag: {a}\nSee 'hatoba --help'.\n")
            sys.exit(125)
    if host:
        env["HATOBA_HOST"] = host
    if env:
        import os

        os.environ.update(env)
    if not args:
        sys.stdout.write(USAGE.lstrip("\n"))
        return
    cmd = args.pop(0)
    if cmd in MANAGEMENT:
        if not args or args[0] in ("-h", "--help"):
            sys.stdout.write(f"\nUsage:  hatoba {cmd} COMMAND\n\nCommands:\n"
                             + "".join(f"  {k}\n" for k in MANAGEMENT[cmd]))
            return
        sub = args.pop(0)
        target = MANAGEMENT[cmd].get(sub)
        if target is None:
            sys.stderr.write(f"hatoba: '{cmd} {sub}' is not a hatoba command.\nSee 'hatoba --help'\n")
            sys.exit(1)
        cmd = target
    entry = COMMANDS.get(cmd) or EXTRA.get(cmd)
    if entry is None:
        sys.stderr.write(f"hatoba: '{cmd}' is not a hatoba command.\nSee 'hatoba --help'\n")
        sys.exit(1)
    from hatoba.cli.common import run_command

    mod = __import__(f"hatoba.cli.commands.{entry[0]}", fromlist=[entry[1]])  # importlib costs start-up
    rc = run_command(cmd, getattr(mod, entry[1]), args)
    if argv is None:
        # As the `hatoba` program: skip interpreter teardown (module and thread clean-up, 5 to 7 ms of
        # every command, see bench/README.md). Commands close their files; flush what is buffered.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        from posix import _exit  # os._exit, without importing os

        _exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    main()
