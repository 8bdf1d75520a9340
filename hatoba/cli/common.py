"""Shared plumbing of CLI commands: flag parsing with Docker's usage errors, error → exit status."""

from __future__ import annotations

import sys

from hatoba.cli.flags import Flag, FlagError, FlagSet, HelpRequested, usage
from hatoba.client.http import APIError, Client, ConnectError

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Callable


class StatusError(Exception):
    """Exit with `status`, after printing `message` (if any) on stderr."""

    def __init__(self, status: int, message: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message


class Command:
    """A command's definition: usage line, description, flags and argument count."""

    def __init__(self, name: str, use: str, desc: str, flags: list[Flag], *, min_args: int = 0,
                 max_args: int | None = None, interspersed: bool = True, error_status: int = 1):
        self.name, self.use, self.desc, self.flags = name, use, desc, flags
        self.min_args, self.max_args, self.interspersed = min_args, max_args, interspersed
        self.error_status = error_status

    def parse(self, argv: list[str]) -> tuple[dict, list[str]]:
        try:
            values, args = FlagSet(self.flags, interspersed=self.interspersed).parse(argv)
        except HelpRequested:
            sys.stdout.write(usage(self.use, self.desc, self.flags))
            raise StatusError(0) from None
        except FlagError as e:
            raise StatusError(self.error_status if self.error_status != 1 else 125,
                              f"{e}\nSee 'hatoba {self.name} --help'.") from None
        n = len(args)
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            if self.max_args == self.min_args:
                what = f"exactly {self.min_args} argument" + ("s" if self.min_args != 1 else "")
            elif n < self.min_args:
                what = f"at least {self.min_args} argument" + ("s" if self.min_args != 1 else "")
            else:
                what = f"at most {self.max_args} argument" + ("s" if self.max_args != 1 else "")
            msg = (f"\"hatoba {self.name}\" requires {what}.\nSee 'hatoba {self.name} --help'.\n\n"
                   f"Usage:  hatoba {self.use.removeprefix('hatoba ')}\n\n{self.desc}")
            raise StatusError(self.error_status, msg)
        return values, args


def client() -> Client:
    return Client()


def run_command(name: str, fn: Callable[[list[str]], int | None], argv: list[str]) -> int:
    try:
        rc = fn(argv)
        return int(rc or 0)
    except StatusError as e:
        if e.message:
            sys.stderr.write(e.message.rstrip("\n") + "\n")
        return e.status
    except APIError as e:
        prefix = "hatoba: " if name in ("run", "create") else ""
        sys.stderr.write(f"{prefix}Error response from daemon: {e.message}\n")
        if name in ("run", "create"):
            sys.stderr.write(f"\nRun 'hatoba {name} --help' for more information\n")
            return 125
        return 1
    except ConnectError as e:
        sys.stderr.write(f"{e}\n")
        return 125 if name in ("run", "create") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
