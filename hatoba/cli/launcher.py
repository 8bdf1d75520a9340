"""A fast `hatoba` program: writes a launcher script that starts the CLI without `site`.

pip's console script (`[project.scripts]`) runs the interpreter with `site` (every `.pth` file of
the environment, e.g. setuptools' distutils hack, and the site-packages scan) and then imports `re`
to clean up `argv[0]`: about 10 ms of every command before hatoba's own code runs. The launcher
written here starts the same interpreter with `-sSP` (no user site, no `site`, no script directory
on `sys.path`) and appends the directory that holds the `hatoba` package to `sys.path` itself. The
CLI needs only the standard library and hatoba, so nothing else is missing. The path is appended,
not prepended, so that nothing installed next to hatoba (a `dataclasses` backport, say) can shadow
a standard module.

Which interpreter: the CLI is standard library only, so any CPython of this one's X.Y runs it with
the same bytecode files.  `--python auto` (the default of the command below) takes the
distribution's `/usr/bin/python3` when it is of the same X.Y: a distribution build links libpython
in and has `_socket` built in, and starts 2 to 4 ms faster than a `--enable-shared` build such as
pyenv's (about a fifth of `hatoba ps`).  Otherwise it is this interpreter (the venv's).

`scripts/setup.sh` writes it over the console script in `.venv/bin/hatoba` (and quickstart links
`/usr/local/bin/hatoba` to that); a plain `pip install` keeps the console script, which works the
same, only slower to start:

    python -m hatoba.cli.launcher [--python auto|PATH] DEST [DEST...]
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


SYSTEM_PYTHON = "/usr/bin/python3"


def pick_python(candidates: tuple[str, ...] = (SYSTEM_PYTHON,)) -> str:
    """The first candidate that is a CPython of this interpreter's X.Y, else this interpreter."""
    import subprocess

    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for cand in candidates:
        if not os.access(cand, os.X_OK):
            continue
        try:
            code = "import sys; v = sys.version_info; print(f'{v[0]}.{v[1]}', sys.implementation.name)"
            got = subprocess.run([cand, "-sSP", "-c", code], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if got.split() == [want, "cpython"]:
            return cand
    return sys.executable


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
    python = "auto"
    if args[:1] == ["--python"] and len(args) > 1:
        python, args = args[1], args[2:]
    elif args[:1] and args[0].startswith("--python="):
        python, args = args[0].split("=", 1)[1], args[1:]
    if not args or args[0].startswith("-"):
        sys.stdout.write(__doc__.strip() + "\n")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    python = pick_python() if python == "auto" else python
    for dest in args:
        write(dest, python=python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
