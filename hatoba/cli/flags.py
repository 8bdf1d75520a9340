"""A small spf13/pflag-compatible command-line parser shared by every hatoba command.

Semantics follow pflag as docker's CLI uses it: ``--name=value``, ``--name value``, ``-n value``,
``-nvalue``, ``-n=value``, combined booleans (``-itd``), booleans only take a value through ``=``
(``--rm=false``, ``-d=true``), ``--`` ends flag parsing, a lone ``-`` is a positional, and with
``interspersed=False`` parsing stops at the first positional (``run``/``exec``/``create``).  Error
messages are byte-identical to pflag's so the CLI can print them verbatim.

Deliberately stdlib-only and import-cheap: :class:`Flag` is a slotted class with the same constructor,
``repr`` and equality as the equivalent ``@dataclass`` (``dataclasses`` costs ~14 ms to import).
"""

from __future__ import annotations

TYPE_CHECKING = False  # annotations only: keep `typing`/`collections` out of the CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType

__all__ = ["KINDS", "Flag", "FlagError", "FlagSet", "HelpRequested", "flag_usages", "usage"]

def _units() -> ModuleType:
    """hatoba.cli.units, imported on first use: only some value kinds and the messages need it."""
    from hatoba.cli import units

    return units


#: Accepted values of :attr:`Flag.kind`.
KINDS = frozenset({"bool", "str", "int", "list", "map", "float", "duration", "bytes"})

# The value placeholder pflag/docker print after the flag name in help output.
_VARNAMES = {
    "bool": "",
    "str": "string",
    "int": "int",
    "list": "list",
    "map": "map",
    "float": "decimal",
    "duration": "duration",
    "bytes": "bytes",
}


class FlagError(Exception):
    """A command-line error; ``str(err)`` is pflag's message, e.g. ``unknown flag: --foo``."""


class HelpRequested(Exception):
    """Raised by :meth:`FlagSet.parse` when ``-h``/``--help`` was given (and parsing otherwise succeeded)."""


class Flag:
    """One flag definition.

    ``kind`` selects the value type: "bool", "str", "int", "float" (``--cpus 1.5``), "duration" (Go
    duration -> seconds as float), "bytes" (docker size such as ``32m`` -> int bytes, ``-1`` allowed
    for "unlimited"), "list" (repeatable, accumulates strings) and "map" (repeatable ``k=v`` strings,
    kept as a list).  ``default`` of ``None`` becomes ``False`` for bools and ``[]`` for list/map kinds
    and stays ``None`` otherwise.
    """

    __slots__ = ("name", "short", "kind", "default", "help", "hidden")

    def __init__(
        self,
        name: str,
        short: str | None = None,
        kind: str = "str",
        default: object = None,
        help: str = "",
        hidden: bool = False,
    ) -> None:
        if not name or name.startswith("-"):
            raise ValueError(f"invalid flag name {name!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown flag kind {kind!r} for --{name}")
        if short is not None and len(short) != 1:
            raise ValueError(f"shorthand for --{name} must be one character, got {short!r}")
        self.name = name
        self.short = short or None
        self.kind = kind
        self.default = default
        self.help = help
        self.hidden = hidden

    @property
    def key(self) -> str:
        """The key of this flag's value in :meth:`FlagSet.parse` results ('-' replaced by '_')."""
        return self.name.replace("-", "_")

    def display_name(self) -> str:
        """``-n, --last`` or ``--name``, as pflag names the flag in "invalid argument" errors."""
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def _astuple(self) -> tuple[object, ...]:
        return (self.name, self.short, self.kind, self.default, self.help, self.hidden)

    def __repr__(self) -> str:
        return (
            f"Flag(name={self.name!r}, short={self.short!r}, kind={self.kind!r}, "
            f"default={self.default!r}, help={self.help!r}, hidden={self.hidden!r})"
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, like a non-frozen dataclass


# ---------------------------------------------------------------------------------------------------------
# Value conversion (Go strconv semantics and messages)

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _parse_bool(s: str) -> bool:
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {_units().go_quote(s)}: invalid syntax")


def _underscores_ok(s: str) -> bool:
    # Go: underscores only between digits, or between a base prefix and a digit.
    if s[:1] in ("+", "-"):
        s = s[1:]
    saw = "^"
    i = 0
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "bBoOxX":
        i = 2
        saw = "0"
        hexa = s[1] in "xX"
    for ch in s[i:]:
        if ch.isdigit() or (hexa and ch in "abcdefABCDEF"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


_BASE_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_int(s: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)`` (what pflag's int flags use)."""
    def syntax() -> ValueError:
        return ValueError(f"strconv.ParseInt: parsing {_units().go_quote(s)}: invalid syntax")

    body = s[1:] if s[:1] in ("+", "-") else s
    base = 10
    digits = body
    if len(body) >= 2 and body[0] == "0":
        prefix = body[1].lower()
        if prefix in "xbo":
            base = {"x": 16, "b": 2, "o": 8}[prefix]
            digits = body[2:]
        else:
            base = 8
            digits = body[1:]
    if "_" in digits:
        if not _underscores_ok(s):
            raise syntax()
        digits = digits.replace("_", "")
    if not digits or any(ch not in _BASE_DIGITS[base] for ch in digits):
        raise syntax()
    value = int(digits, base)
    if s[:1] == "-":
        value = -value
    if not -(1 << 63) <= value <= (1 << 63) - 1:
        raise ValueError(f"strconv.ParseInt: parsing {_units().go_quote(s)}: value out of range")
    return value


def _parse_bytes(s: str) -> int:
    return -1 if s == "-1" else _units().parse_ram(s)


def _convert(kind: str, raw: str) -> object:
    if kind == "str" or kind == "list" or kind == "map":
        return raw
    if kind == "bool":
        return _parse_bool(raw)
    if kind == "int":
        return _parse_int(raw)
    if kind == "float":
        return _units().parse_go_float(raw)
    if kind == "duration":
        return _units().parse_duration_ns(raw) / 1e9
    return _parse_bytes(raw)  # "bytes"


def _initial(flag: Flag) -> object:
    default = flag.default
    if flag.kind in ("list", "map"):
        return list(default) if default else []
    if flag.kind == "bool" and default is None:
        return False
    return default


# ---------------------------------------------------------------------------------------------------------
# Parsing


class FlagSet:
    """A set of flags for one command; :meth:`parse` turns argv into (values, positionals).

    Unless the command defines ``--help`` itself, ``--help`` (and ``-h`` when no flag uses that
    shorthand, e.g. ``run`` has ``-h, --hostname``) raise :class:`HelpRequested` once the whole command
    line parsed without errors, as with cobra.
    """

    def __init__(self, flags: Iterable[Flag], *, interspersed: bool = True) -> None:
        self.flags: list[Flag] = list(flags)
        self.interspersed = interspersed
        self._long: dict[str, Flag] = {}
        self._short: dict[str, Flag] = {}
        for flag in self.flags:
            self._register(flag)
        self._help: Flag | None = None
        if "help" not in self._long:
            self._help = Flag("help", None if "h" in self._short else "h", "bool", False, "Print usage")
            self._register(self._help)

    def _register(self, flag: Flag) -> None:
        if flag.name in self._long:
            raise ValueError(f"flag redefined: {flag.name}")
        self._long[flag.name] = flag
        if flag.short:
            other = self._short.get(flag.short)
            if other is not None:
                raise ValueError(
                    f"unable to redefine {flag.short!r} shorthand: it's already used for {other.name!r} flag"
                )
            self._short[flag.short] = flag

    def lookup(self, name: str) -> Flag | None:
        """The flag with long name ``name`` (or one-character shorthand ``name``), if defined."""
        flag = self._long.get(name) or (self._short.get(name) if len(name) == 1 else None)
        return None if flag is self._help else flag

    def defaults(self) -> dict[str, object]:
        """Values as :meth:`parse` returns them for an empty command line (``_set`` empty)."""
        values: dict[str, object] = {flag.key: _initial(flag) for flag in self.flags}
        values["_set"] = set()
        return values

    def parse(self, argv: Iterable[str]) -> tuple[dict[str, object], list[str]]:
        """Parse ``argv`` (without the command name).

        Returns ``(values, positionals)``.  ``values`` maps every flag's long name with '-' -> '_' to its
        value (default if not given); ``values["_set"]`` is the set of flags given explicitly, holding
        both spellings of each name ("log-driver" and "log_driver").  Raises :class:`FlagError` or
        :class:`HelpRequested`.
        """
        args = list(argv)
        values: dict[str, object] = {flag.key: _initial(flag) for flag in self.flags}
        if self._help is not None:
            values["help"] = False
        changed: set[str] = set()
        positionals: list[str] = []
        i = 0
        n = len(args)
        while i < n:
            s = args[i]
            i += 1
            if len(s) < 2 or s[0] != "-":
                positionals.append(s)
                if not self.interspersed:
                    positionals.extend(args[i:])
                    break
                continue
            if s[1] == "-":
                if len(s) == 2:  # "--" terminates the flags
                    positionals.extend(args[i:])
                    break
                i = self._parse_long(s, args, i, values, changed)
            else:
                shorthands = s[1:]
                while shorthands:
                    shorthands, i = self._parse_short(shorthands, args, i, values, changed)
        if self._help is not None:
            wants_help = values.pop("help")
            changed.discard("help")
            if wants_help:
                raise HelpRequested("help requested")
        values["_set"] = changed | {name.replace("-", "_") for name in changed}
        return values, positionals

    def _parse_long(
        self, s: str, args: list[str], i: int, values: dict[str, object], changed: set[str]
    ) -> int:
        body = s[2:]
        if not body or body[0] in "-=":
            raise FlagError(f"bad flag syntax: {s}")
        name, eq, value = body.partition("=")
        flag = self._long.get(name)
        if flag is None:
            raise FlagError(f"unknown flag: --{name}")
        if eq:
            pass
        elif flag.kind == "bool":
            value = "true"
        elif i < len(args):
            value = args[i]
            i += 1
        else:
            raise FlagError(f"flag needs an argument: --{name}")
        self._apply(flag, value, values, changed)
        return i

    def _parse_short(
        self, shorthands: str, args: list[str], i: int, values: dict[str, object], changed: set[str]
    ) -> tuple[str, int]:
        c = shorthands[0]
        rest = shorthands[1:]
        flag = self._short.get(c)
        if flag is None:
            raise FlagError(f"unknown shorthand flag: {_units().go_quote_rune(c)} in -{shorthands}")
        if len(shorthands) > 2 and shorthands[1] == "=":
            value = shorthands[2:]  # -f=arg
            rest = ""
        elif flag.kind == "bool":
            value = "true"  # -f
        elif len(shorthands) > 1:
            value = shorthands[1:]  # -farg
            rest = ""
        elif i < len(args):
            value = args[i]  # -f arg
            i += 1
        else:
            raise FlagError(f"flag needs an argument: {_units().go_quote_rune(c)} in -{shorthands}")
        self._apply(flag, value, values, changed)
        return rest, i

    @staticmethod
    def _apply(flag: Flag, raw: str, values: dict[str, object], changed: set[str]) -> None:
        try:
            value = _convert(flag.kind, raw)
        except ValueError as e:
            raise FlagError(
                f"invalid argument {_units().go_quote(raw)} for {_units().go_quote(flag.display_name())} flag: {e}"
            ) from None
        key = flag.key
        if flag.kind == "list" or flag.kind == "map":
            if flag.name not in changed:  # the first explicit value replaces the default
                values[key] = []
            values[key].append(value)  # type: ignore[attr-defined]
        else:
            values[key] = value
        changed.add(flag.name)


# ---------------------------------------------------------------------------------------------------------
# Help output


def _float_text(v: float) -> str:
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _default_text(flag: Flag) -> str:
    """pflag's " (default ...)" suffix, empty when the default is the zero value."""
    d = flag.default
    kind = flag.kind
    if kind == "bool":
        return " (default true)" if d else ""
    if kind == "str":
        return f" (default {_units().go_quote(str(d))})" if d else ""
    if kind == "map":
        pairs = sorted(str(item).replace("=", ":", 1) for item in (d or ()))
        return " (default map[" + " ".join(pairs) + "])"
    if kind == "list":
        return " (default [" + " ".join(str(item) for item in d) + "])" if d else ""
    if not d:
        return ""
    if kind == "duration":
        return f" (default {_units().format_duration(float(d))})"  # type: ignore[arg-type]
    if kind == "bytes":
        return f" (default {_units().bytes_size(float(d))})"  # type: ignore[arg-type]
    if kind == "float":
        return f" (default {_float_text(float(d))})"  # type: ignore[arg-type]
    return f" (default {d})"


def _unquote_usage(flag: Flag) -> tuple[str, str]:
    """A `backquoted` word in the help text names the value placeholder (pflag UnquoteUsage)."""
    text = flag.help
    start = text.find("`")
    if start != -1:
        end = text.find("`", start + 1)
        if end != -1:
            name = text[start + 1 : end]
            return name, text[:start] + name + text[end + 1 :]
    return _VARNAMES[flag.kind], text


def _wrap_n(limit: int, slop: int, s: str) -> tuple[str, str]:
    if limit + slop > len(s):
        return s, ""
    head = s[:limit]
    w = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n"))
    if w <= 0:
        return s, ""
    nl = head.rfind("\n")
    if 0 < nl < w:
        return s[:nl], s[nl + 1 :]
    return s[:w], s[w + 1 :]


def _wrap(indent: int, cols: int, s: str) -> str:
    if cols == 0:
        return s.replace("\n", "\n" + " " * indent)
    room = cols - indent
    out = ""
    if room < 24:  # not enough room: put the text as a block on the next line
        indent = 16
        room = cols - indent
        out = "\n" + " " * indent
    if room < 24:
        return s.replace("\n", out)
    slop = 5
    room -= slop
    pad = " " * indent
    line, s = _wrap_n(room, slop, s)
    out += line.replace("\n", "\n" + pad)
    while s:
        line, s = _wrap_n(room, slop, s)
        out += "\n" + pad + line.replace("\n", "\n" + pad)
    return out


def _terminal_width() -> int:
    try:
        import os

        return os.get_terminal_size(0).columns or 80
    except OSError:
        return 80


def flag_usages(flags: Iterable[Flag], cols: int = 0) -> str:
    """The flag table (pflag ``FlagUsagesWrapped(cols)``): sorted, hidden flags skipped, help column
    aligned, help text wrapped to ``cols`` columns (0 = no wrapping).  Ends with a newline unless empty."""
    rows: list[tuple[str, str]] = []
    maxlen = 0
    for flag in sorted(flags, key=lambda f: f.name):
        if flag.hidden:
            continue
        if flag.short:
            line = f"  -{flag.short}, --{flag.name}"
        else:
            line = f"      --{flag.name}"
        varname, text = _unquote_usage(flag)
        if varname:
            line += " " + varname
        maxlen = max(maxlen, len(line) + 1)
        rows.append((line, text + _default_text(flag)))
    out = []
    for line, text in rows:
        spacing = " " * (maxlen - len(line))
        out.append(f"{line} {spacing} {_wrap(maxlen + 2, cols, text)}\n")
    return "".join(out)


def usage(
    cmd_line: str,
    description: str,
    flags: Iterable[Flag],
    *,
    aliases: Iterable[str] | None = None,
    commands: Iterable[tuple[str, str]] | None = None,
    width: int | None = None,
) -> str:
    """Docker-style ``--help`` text, exactly what ``hatoba CMD --help`` prints (leading blank line,
    trailing newline)::

        Usage:  hatoba run [OPTIONS] IMAGE [COMMAND] [ARG...]

        Create and run a new container from an image

        Options:
          -d, --detach    Run container in background and print container ID

    ``cmd_line`` gets a "hatoba " prefix if it lacks one.  ``aliases`` is the complete, ordered list of
    full command lines shown under "Aliases:" (docker: "docker container ls, ..., docker ps").  ``commands`` are (name, summary)
    pairs for management commands, followed by the "Run '... COMMAND --help'" hint.  ``width`` is the
    terminal width (default: that of stdin, else 80); 0 disables wrapping.
    """
    if not (cmd_line == "hatoba" or cmd_line.startswith("hatoba ")):
        cmd_line = "hatoba " + cmd_line
    if width is None:
        width = _terminal_width()
    parts = [f"Usage:  {cmd_line}", description.strip()]
    alias_list = list(aliases or ())
    if alias_list:
        parts.append("Aliases:\n  " + ", ".join(alias_list))
    table = flag_usages(flags, width - 1 if width > 0 else 0).rstrip()
    if table:
        parts.append("Options:\n" + table)
    command_list = list(commands or ())
    if command_list:
        pad = max(11, *(len(name) for name, _ in command_list))
        parts.append(
            "Commands:\n" + "\n".join(f"  {name.ljust(pad)} {summary}" for name, summary in command_list)
        )
        parts.append(f"Run '{_command_path(cmd_line)} COMMAND --help' for more information on a command.")
    return "\n" + "\n\n".join(parts) + "\n"


def _command_path(cmd_line: str) -> str:
    """Words of ``cmd_line`` up to the first placeholder: "hatoba container ls [OPTIONS]" -> "hatoba container ls"."""
    words = []
    for word in cmd_line.split():
        if word[:1] in ("[", "<", "-") or word[:1].isupper():
            break
        words.append(word)
    return " ".join(words)
