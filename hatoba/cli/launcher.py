"""A fast `hatoba` program: writes a launcher script that starts the CLI without `site`.

pip's console script (`[project.scripts]`) runs the interpreter with `site` (every `.pth` file of
the environment, e.g. setuptools' distutils hack, and the site-packages scan) and then imports `re`
to clean up `argv[0]`: about 10 ms of every command before hatoba's own code runs. The launcher
written here starts the same interpreter with `-sSP` (no user site, no `site`, no script directory
on `sys.path`) and appends the directory that holds the `hatoba` package to `sys.path` itself. The
CLI needs only the standard library and hatoba, so nothing else is missing. The path is appended,
not prepended, so that nothing installed next to hatoba (a `dataclasses` backport, say) can shadow
a standard module.

Which interpreter: the venv's, by default.  The CLI is standard library only, and a distribution
build (libpython linked in, `_socket` built in) would start 2 to 4 ms faster than pyenv's
`--enable-shared` one, but a different patch level is a different standard library (Debian's 3.11.2
has no `tarfile` extraction filters, which `cp` uses), so `--python` is for an interpreter known to
match.

`scripts/setup.sh` writes it over the console script in `.venv/bin/hatoba` (and quickstart links
`/usr/local/bin/hatoba` to that); a plain `pip install` keeps the console script, which works the
same, only slower to start:

    python -m hatoba.cli.launcher [--python PATH] DEST [DEST...]
"""

from __future__ import annotations

import os
import sys

TEMPLATE = """#!{python} -sSP
# The hatoba CLI, started without `site` for a fast start-up (see hatoba/cli/launcher.py).
# Written by `python -m hatoba.cli.launcher`; a plain `pip install` has its own `hatoba` script instead.
import sys
sys.path.append({path!r})
from hatoba.cli.main import main
main()
"""


def package_root() -> str:
    """The directory on `sys.path` that holds this `hatoba` package (a site-packages or a checkout)."""
    import hatoba

    return os.path.dirname(os.path.dirname(os.path.abspath(hatoba.__file__)))


def render(python: str | None = None, path: str | None = None) -> str:
    """The launcher's text for interpreter `python` (default: this one) and package root `path`."""
    python = python or sys.executable
    if not python or any(c.isspace() for c in python):
        raise ValueError(f"cannot use {python!r} in a #! line")
    return TEMPLATE.format(python=python, path=path or package_root())


def write(dest: str, python: str | None = None, path: str | None = None) -> None:
    """Write the launcher to `dest` (mode 755), replacing a file or symlink there atomically."""
    text = render(python, path)
    tmp = f"{dest}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    python = None
    if args[:1] == ["--python"] and len(args) > 1:
        python, args = args[1], args[2:]
    elif args[:1] and args[0].startswith("--python="):
        python, args = args[0].split("=", 1)[1], args[1:]
    if not args or args[0].startswith("-"):
        sys.stdout.write(__doc__.strip() + "\n")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    for dest in args:
        write(dest, python=python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
