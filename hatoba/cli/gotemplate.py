"""Go ``text/template`` engine for the CLI's ``--format`` flag.

This module owns everything needed to render a docker-style ``--format``
string: a hand-written lexer and recursive-descent parser for Go's
``text/template`` language, a tree-walking evaluator, Go's builtin template
functions (``and or not len index slice print printf println eq ne lt le gt
ge html js urlquery call``), the extra functions the docker CLI registers
(``json split join title lower upper pad truncate``), an approximation of
Go's ``fmt`` printing rules (``%v`` and the ``printf`` verbs), and the
``table`` directive helper ``cli.output.split_table``.

Data is JSON-shaped (dicts, lists, str, int, float, bool, None) or arbitrary
Python objects, whose public attributes and methods are reached with
``.Field`` the way Go reaches struct fields and methods.  A key missing from
a dict behaves like a missing key of Go's ``map[string]interface{}`` (it
prints ``<no value>``); a missing attribute of an object is an error.

Public API: :class:`TemplateError`, :func:`parse`, :class:`Template`,
:func:`render` (the ``table`` directive is ``cli.output.split_table``).  Standard library only, nothing
compiled at import time.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: keep typing out of the import path
    from collections.abc import Callable, Iterable
    from typing import Any, NoReturn

__all__ = ["JSON_ESCAPE_HTML", "Template", "TemplateError", "parse", "render"]

# docker's ``json`` function uses an encoder with SetEscapeHTML(false), so
# "<", ">" and "&" are left alone.  Flip this to get json.Marshal's escaping.
JSON_ESCAPE_HTML = False

# Nesting limit for {{template}} calls (Go allows 100000; Python's stack can't).
_MAX_TEMPLATE_DEPTH = 100


class TemplateError(Exception):
    """A template failed to parse or to execute; the message mimics Go's."""


class _Missing:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


_MISSING: Any = _Missing()
# "No final argument": the first command of a pipeline gets no piped value.
_NOARG: Any = object()

_WS = " \t\r\n"
_TERMINATORS = " \t\r\n.,|:)("
_KEYWORDS = frozenset(
    ("block", "break", "continue", "define", "else", "end", "if", "range", "template", "with")
)


# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------


class _Tok:
    __slots__ = ("typ", "val", "pos", "line")

    def __init__(self, typ: str, val: str, pos: int, line: int) -> None:
        self.typ = typ
        self.val = val
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        # Mirrors Go's item.String(), used in "unexpected X in Y" messages.
        if self.typ == "eof":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in ("kw", "dot", "nil"):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


class _LexError(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


def _sharp_u(c: str) -> str:
    """Go's %#U for a single rune."""
    if c.isprintable():
        return f"U+{ord(c):04X} '{c}'"
    return f"U+{ord(c):04X}"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[_Tok] = []
        self._line = 1
        self._line_pos = 0

    def _line_at(self, pos: int) -> int:
        # Tokens are emitted in increasing position order, so count lazily.
        if pos > self._line_pos:
            self._line += self.text.count("\n", self._line_pos, pos)
            self._line_pos = pos
        return self._line

    def emit(self, typ: str, val: str, pos: int) -> None:
        self.toks.append(_Tok(typ, val, pos, self._line_at(pos)))

    def run(self) -> list[_Tok]:
        text = self.text
        n = len(text)
        pos = 0
        trim = False  # the previous action ended with " -}}"
        try:
            while True:
                i = text.find("{{", pos)
                end = n if i < 0 else i
                ltrim = i >= 0 and i + 3 < n and text[i + 2] == "-" and text[i + 3] in _WS
                start = pos
                if trim:
                    while start < end and text[start] in _WS:
                        start += 1
                stop = end
                if ltrim:
                    while stop > start and text[stop - 1] in _WS:
                        stop -= 1
                if stop > start:
                    self.emit("text", text[start:stop], start)
                if i < 0:
                    self.emit("eof", "", n)
                    return self.toks
                pos = i + (4 if ltrim else 2)
                if text.startswith("/*", pos):
                    pos, trim = self._comment(pos)
                    continue
                self.emit("ld", "{{", i)
                pos, trim = self._action(pos)
        except _LexError as e:
            self.emit("error", e.msg, e.pos)
            return self.toks

    def _comment(self, pos: int) -> tuple[int, bool]:
        text = self.text
        j = text.find("*/", pos + 2)
        if j < 0:
            raise _LexError("unclosed comment", pos)
        k = j + 2
        if text.startswith("}}", k):
            return k + 2, False
        if k < len(text) and text[k] in _WS and text.startswith("-}}", k + 1):
            return k + 4, True
        raise _LexError("comment ends before closing delimiter", pos)

    def _check_term(self, j: int) -> None:
        text = self.text
        if j < len(text) and text[j] not in _TERMINATORS and not text.startswith("}}", j):
            raise _LexError(f"bad character {_sharp_u(text[j])}", j)

    def _scan_alnum(self, j: int) -> int:
        text = self.text
        n = len(text)
        while j < n and _is_alnum(text[j]):
            j += 1
        return j

    def _scan_quote(self, pos: int, quote: str, msg: str) -> int:
        text = self.text
        n = len(text)
        j = pos + 1
        while True:
            if j >= n or text[j] == "\n":
                raise _LexError(msg, pos)
            c = text[j]
            if c == "\\":
                if j + 1 >= n or text[j + 1] == "\n":
                    raise _LexError(msg, pos)
                j += 2
                continue
            j += 1
            if c == quote:
                return j

    def _scan_number(self, pos: int) -> int:
        text = self.text
        n = len(text)
        j = pos
        if j < n and text[j] in "+-":
            j += 1
        digits = "0123456789_"
        if j < n and text[j] == "0":
            j += 1
            if j < n and text[j] in "xX":
                j += 1
                digits = "0123456789abcdefABCDEF_"
            elif j < n and text[j] in "oO":
                j += 1
                digits = "01234567_"
            elif j < n and text[j] in "bB":
                j += 1
                digits = "01_"
        while j < n and text[j] in digits:
            j += 1
        if j < n and text[j] == ".":
            j += 1
            while j < n and text[j] in digits:
                j += 1
        if len(digits) == 11 and j < n and text[j] in "eE":
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            while j < n and text[j] in "0123456789_":
                j += 1
        if len(digits) == 23 and j < n and text[j] in "pP":
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            while j < n and text[j] in "0123456789_":
                j += 1
        if j < n and text[j] == "i":
            j += 1
        if j < n and _is_alnum(text[j]):
            raise _LexError(f"bad number syntax: {_go_quote(text[pos : j + 1])}", pos)
        return j

    def _action(self, pos: int) -> tuple[int, bool]:
        """Lex the inside of an action; returns (position after "}}", trim)."""
        text = self.text
        n = len(text)
        paren = 0
        while True:
            if pos >= n:
                raise _LexError("unclosed action", pos)
            c = text[pos]
            if c in _WS:
                if text.startswith("-}}", pos + 1):
                    if paren:
                        raise _LexError("unclosed left paren", pos)
                    self.emit("rd", "}}", pos + 2)
                    return pos + 4, True
                j = pos + 1
                while j < n and text[j] in _WS and not text.startswith("-}}", j + 1):
                    j += 1
                self.emit("space", text[pos:j], pos)
                pos = j
            elif c == "}" and text.startswith("}}", pos):
                if paren:
                    raise _LexError("unclosed left paren", pos)
                self.emit("rd", "}}", pos)
                return pos + 2, False
            elif c == '"':
                j = self._scan_quote(pos, '"', "unterminated quoted string")
                self.emit("str", text[pos:j], pos)
                pos = j
            elif c == "'":
                j = self._scan_quote(pos, "'", "unterminated character constant")
                self.emit("charconst", text[pos:j], pos)
                pos = j
            elif c == "`":
                j = text.find("`", pos + 1)
                if j < 0:
                    raise _LexError("unterminated raw quoted string", pos)
                self.emit("rawstr", text[pos : j + 1], pos)
                pos = j + 1
            elif c == ":":
                if not text.startswith(":=", pos):
                    raise _LexError("expected :=", pos)
                self.emit("declare", ":=", pos)
                pos += 2
            elif c == "=":
                self.emit("assign", "=", pos)
                pos += 1
            elif c == "|":
                self.emit("pipe", "|", pos)
                pos += 1
            elif c == "(":
                paren += 1
                self.emit("lparen", "(", pos)
                pos += 1
            elif c == ")":
                paren -= 1
                if paren < 0:
                    raise _LexError("unexpected right paren", pos)
                self.emit("rparen", ")", pos)
                pos += 1
            elif c == "$":
                j = self._scan_alnum(pos + 1)
                self._check_term(j)
                self.emit("var", text[pos:j], pos)
                pos = j
            elif c == "." and not (pos + 1 < n and "0" <= text[pos + 1] <= "9"):
                j = self._scan_alnum(pos + 1)
                self._check_term(j)
                if j == pos + 1:
                    self.emit("dot", ".", pos)
                else:
                    self.emit("field", text[pos:j], pos)
                pos = j
            elif c in "+-." or "0" <= c <= "9":
                j = self._scan_number(pos)
                self.emit("num", text[pos:j], pos)
                pos = j
            elif _is_alnum(c):
                j = self._scan_alnum(pos)
                self._check_term(j)
                word = text[pos:j]
                if word in _KEYWORDS:
                    self.emit("kw", word, pos)
                elif word in ("true", "false"):
                    self.emit("bool", word, pos)
                elif word == "nil":
                    self.emit("nil", word, pos)
                else:
                    self.emit("ident", word, pos)
                pos = j
            elif c < "\x7f" and c.isprintable():
                self.emit("char", c, pos)
                pos += 1
            else:
                raise _LexError(f"unrecognized character in action: {_sharp_u(c)}", pos)


# --------------------------------------------------------------------------
# Literal decoding
# --------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_HEX = "0123456789abcdefABCDEF"


class _SyntaxError(Exception):
    pass


def _unescape_one(body: str, i: int, quote: str) -> tuple[int, bool, int]:
    """Decode the escape starting after the backslash at body[i].

    Returns (value, is_byte, next_index); is_byte means a raw byte (\\x, octal).
    """
    if i >= len(body):
        raise _SyntaxError
    e = body[i]
    i += 1
    if e in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[e], False, i
    if e == quote:
        return ord(e), False, i
    if e in "xuU":
        width = {"x": 2, "u": 4, "U": 8}[e]
        digits = body[i : i + width]
        if len(digits) != width or any(d not in _HEX for d in digits):
            raise _SyntaxError
        v = int(digits, 16)
        if e != "x" and (v > 0x10FFFF or 0xD800 <= v < 0xE000):
            raise _SyntaxError
        return v, e == "x", i + width
    if "0" <= e <= "7":
        digits = body[i - 1 : i + 2]
        if len(digits) != 3 or any(d not in "01234567" for d in digits):
            raise _SyntaxError
        v = int(digits, 8)
        if v > 255:
            raise _SyntaxError
        return v, True, i + 2
    raise _SyntaxError


def _unquote(raw: str) -> str:
    """strconv.Unquote for a double-quoted or backquoted literal."""
    quote = raw[0]
    body = raw[1:-1]
    if quote == "`":
        return body.replace("\r", "")
    if "\\" not in body:
        return body
    buf = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            buf += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        v, is_byte, i = _unescape_one(body, i + 1, quote)
        if is_byte:
            buf.append(v)
        else:
            buf += chr(v).encode("utf-8")
    return buf.decode("utf-8", "replace")


def _unquote_char(raw: str) -> int:
    body = raw[1:-1]
    if not body:
        raise _SyntaxError
    if body[0] == "\\":
        v, _, i = _unescape_one(body, 1, "'")
    else:
        v, i = ord(body[0]), 1
    if i != len(body):
        raise _SyntaxError
    return v


def _parse_number(text: str) -> int | float:
    """Turn a number literal into Go's "ideal constant": int, or float64."""
    if text.endswith("i"):
        raise ValueError(f"complex constants are not supported: {_go_quote(text)}")
    body = text.lstrip("+-")
    neg = text.startswith("-")
    is_hex = body[:2] in ("0x", "0X")
    floaty = any(c in body for c in (".pP" if is_hex else ".eEpP"))
    if not floaty:
        try:
            if len(body) > 1 and body[0] == "0" and body[1] in "01234567_":
                v = int(body, 8)  # legacy octal, as Go's ParseInt(s, 0, 64)
            else:
                v = int(body, 0)
        except ValueError:
            raise ValueError(f"illegal number syntax: {_go_quote(text)}") from None
        return -v if neg else v
    try:
        f = float.fromhex(body.replace("_", "")) if is_hex else float(body)
    except ValueError:
        raise ValueError(f"illegal number syntax: {_go_quote(text)}") from None
    return -f if neg else f


# --------------------------------------------------------------------------
# Parse tree
# --------------------------------------------------------------------------


class _Node:
    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos)
        self.text = text

    def __str__(self) -> str:
        return _go_quote(self.text)


class _List(_Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int, nodes: list[_Node] | None = None) -> None:
        super().__init__(pos)
        self.nodes: list[_Node] = nodes if nodes is not None else []

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class _Command(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.args: list[_Node] = []

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _Pipe) else str(a) for a in self.args)


class _Pipe(_Node):
    __slots__ = ("decl", "is_assign", "cmds")

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.decl: list[str] = []
        self.is_assign = False
        self.cmds: list[_Command] = []

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: _Pipe) -> None:
        super().__init__(pos)
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class _Field(_Node):
    __slots__ = ("idents",)

    def __init__(self, pos: int, idents: list[str]) -> None:
        super().__init__(pos)
        self.idents = idents

    def __str__(self) -> str:
        return "." + ".".join(self.idents)


class _Variable(_Node):
    __slots__ = ("idents",)

    def __init__(self, pos: int, idents: list[str]) -> None:
        super().__init__(pos)
        self.idents = idents

    def __str__(self) -> str:
        return ".".join(self.idents)


class _Chain(_Node):
    __slots__ = ("node", "fields")

    def __init__(self, pos: int, node: _Node, fields: list[str]) -> None:
        super().__init__(pos)
        self.node = node
        self.fields = fields

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return inner + "." + ".".join(self.fields)


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        super().__init__(pos)
        self.name = name

    def __str__(self) -> str:
        return self.name


class _Dot(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "."


class _Nil(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "nil"


class _Literal(_Node):
    """Bool, number or string constant; ``text`` is its source spelling."""

    __slots__ = ("value", "text")

    def __init__(self, pos: int, value: Any, text: str) -> None:
        super().__init__(pos)
        self.value = value
        self.text = text

    def __str__(self) -> str:
        return self.text


class _Branch(_Node):
    __slots__ = ("pipe", "list", "else_list")
    keyword = ""

    def __init__(self, pos: int, pipe: _Pipe, lst: _List, else_list: _List | None) -> None:
        super().__init__(pos)
        self.pipe = pipe
        self.list = lst
        self.else_list = else_list

    def __str__(self) -> str:
        s = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


class _If(_Branch):
    __slots__ = ()
    keyword = "if"


class _With(_Branch):
    __slots__ = ()
    keyword = "with"


class _Range(_Branch):
    __slots__ = ()
    keyword = "range"


class _BreakNode(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{break}}"


class _ContinueNode(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{continue}}"


class _TemplateCall(_Node):
    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, name: str, pipe: _Pipe | None) -> None:
        super().__init__(pos)
        self.name = name
        self.pipe = pipe

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + _go_quote(self.name) + "}}"
        return "{{template " + _go_quote(self.name) + " " + str(self.pipe) + "}}"


class _EndMark(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{end}}"


class _ElseMark(_Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{else}}"


_OPERAND_START = frozenset(
    ("bool", "charconst", "dot", "field", "ident", "num", "nil", "rawstr", "str", "var", "lparen")
)


def _is_empty_tree(lst: _List) -> bool:
    return all(isinstance(n, _Text) and not n.text.strip(_WS) for n in lst.nodes)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.toks = _Lexer(text).run()
        self.i = 0
        self.line = 1
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defs: dict[str, _List] = {}

    # token stream -----------------------------------------------------------

    def error(self, msg: str) -> NoReturn:
        raise TemplateError(f"template: {self.name}:{self.line}: {msg}")

    def next(self) -> _Tok:
        toks = self.toks
        tok = toks[self.i] if self.i < len(toks) else toks[-1]
        self.i += 1
        self.line = tok.line
        if tok.typ == "error":
            self.error(tok.val)
        return tok

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> _Tok:
        tok = self.next()
        self.backup()
        return tok

    def next_nonspace(self) -> _Tok:
        while True:
            tok = self.next()
            if tok.typ != "space":
                return tok

    def peek_nonspace(self) -> _Tok:
        tok = self.next_nonspace()
        self.backup()
        return tok

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        self.error(f"unexpected {tok} in {context}")

    def expect(self, typ: str, context: str) -> _Tok:
        tok = self.next_nonspace()
        if tok.typ != typ:
            self.unexpected(tok, context)
        return tok

    # structure --------------------------------------------------------------

    def parse(self) -> _List:
        root = _List(0)
        while True:
            tok = self.peek()
            if tok.typ == "eof":
                return root
            if tok.typ == "ld":
                save = self.i
                self.next()
                kw = self.next_nonspace()
                if kw.typ == "kw" and kw.val == "define":
                    self.parse_definition()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, (_EndMark, _ElseMark)):
                self.error(f"unexpected {node}")
            root.nodes.append(node)

    def add_def(self, name: str, body: _List) -> None:
        old = self.defs.get(name)
        if old is None or _is_empty_tree(old):
            self.defs[name] = body
        elif not _is_empty_tree(body):
            self.error(f"template: multiple definition of template {_go_quote(name)}")

    def sub_tree(self, context: str) -> _List:
        """Parse a define/block body: a fresh variable scope, no enclosing range."""
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        if not isinstance(end, _EndMark):
            self.error(f"unexpected {end} in {context}")
        self.vars, self.range_depth = saved
        return body

    def parse_definition(self) -> None:
        context = "define clause"
        name = self.template_name(self.next_nonspace(), context)
        self.expect("rd", context)
        self.add_def(name, self.sub_tree(context))

    def template_name(self, tok: _Tok, context: str) -> str:
        if tok.typ not in ("str", "rawstr"):
            self.unexpected(tok, context)
        try:
            return _unquote(tok.val)
        except _SyntaxError:
            self.error("invalid syntax")

    def item_list(self) -> tuple[_List, _Node]:
        lst = _List(self.peek_nonspace().pos)
        while self.peek_nonspace().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, (_EndMark, _ElseMark)):
                return lst, node
            lst.nodes.append(node)
        self.error("unexpected EOF")

    def text_or_action(self) -> _Node:
        tok = self.next_nonspace()
        if tok.typ == "text":
            return _Text(tok.pos, tok.val)
        if tok.typ == "ld":
            return self.action()
        self.unexpected(tok, "input")

    def action(self) -> _Node:
        tok = self.next_nonspace()
        if tok.typ == "kw":
            kw = tok.val
            if kw == "if":
                return _If(*self.parse_control("if"))
            if kw == "range":
                return _Range(*self.parse_control("range"))
            if kw == "with":
                return _With(*self.parse_control("with"))
            if kw == "end":
                return _EndMark(self.expect("rd", "end").pos)
            if kw == "else":
                return self.else_control()
            if kw in ("break", "continue"):
                return self.loop_control(tok)
            if kw == "template":
                return self.template_control()
            if kw == "block":
                return self.block_control()
        self.backup()
        pos = self.peek().pos
        return _Action(pos, self.pipeline("command", "rd"))

    def parse_control(self, context: str) -> tuple[int, _Pipe, _List, _List | None]:
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, "rd")
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _ElseMark):
                peek = self.peek()
                if context in ("if", "with") and peek.typ == "kw" and peek.val == context:
                    # {{else if x}} / {{else with x}}: a nested control that
                    # shares our {{end}}.
                    self.next()
                    inner = (
                        _If(*self.parse_control("if"))
                        if context == "if"
                        else _With(*self.parse_control("with"))
                    )
                    else_list = _List(nxt.pos, [inner])
                else:
                    else_list, end = self.item_list()
                    if not isinstance(end, _EndMark):
                        self.error(f"expected end; found {end}")
            return pipe.pos, pipe, lst, else_list
        finally:
            del self.vars[nvars:]

    def else_control(self) -> _Node:
        peek = self.peek_nonspace()
        if peek.typ == "kw" and peek.val in ("if", "with"):
            return _ElseMark(peek.pos)
        return _ElseMark(self.expect("rd", "else").pos)

    def loop_control(self, tok: _Tok) -> _Node:
        ctx = "{{" + tok.val + "}}"
        nxt = self.next_nonspace()
        if nxt.typ != "rd":
            self.unexpected(nxt, ctx)
        if self.range_depth == 0:
            self.error(ctx + " outside {{range}}")
        return _BreakNode(tok.pos) if tok.val == "break" else _ContinueNode(tok.pos)

    def template_control(self) -> _Node:
        context = "template clause"
        tok = self.next_nonspace()
        name = self.template_name(tok, context)
        pipe = None
        if self.next_nonspace().typ != "rd":
            self.backup()
            pipe = self.pipeline(context, "rd")
        return _TemplateCall(tok.pos, name, pipe)

    def block_control(self) -> _Node:
        context = "block clause"
        tok = self.next_nonspace()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, "rd")
        self.add_def(name, self.sub_tree(context))
        return _TemplateCall(tok.pos, name, pipe)

    # pipelines --------------------------------------------------------------

    def pipeline(self, context: str, end: str) -> _Pipe:
        pipe = _Pipe(self.peek_nonspace().pos)
        while True:  # declarations
            v = self.peek_nonspace()
            if v.typ != "var":
                break
            save = self.i
            self.next()
            nxt = self.peek_nonspace()
            if nxt.typ in ("assign", "declare"):
                pipe.is_assign = nxt.typ == "assign"
                self.next_nonspace()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                break
            if nxt.typ == "char" and nxt.val == ",":
                self.next_nonspace()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_nonspace().typ in ("var", "rd", "rparen"):
                        continue
                    self.error("range can only initialize variables")
                self.error(f"too many declarations in {context}")
            self.i = save
            break
        while True:
            tok = self.next_nonspace()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: _Pipe, context: str) -> None:
        if not pipe.cmds:
            self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (_Literal, _Dot, _Nil)):
                self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> _Command:
        cmd = _Command(self.peek_nonspace().pos)
        while True:
            self.peek_nonspace()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == "space":
                continue
            if tok.typ in ("rd", "rparen"):
                self.backup()
            elif tok.typ != "pipe":
                self.error(f"unexpected {tok} in operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, _Field):
                return _Field(node.pos, node.idents + fields)
            if isinstance(node, _Variable):
                return _Variable(node.pos, node.idents + fields)
            if isinstance(node, (_Literal, _Nil, _Dot)):
                self.error(f"unexpected . after term {_go_quote(str(node))}")
            return _Chain(pos, node, fields)
        return node

    def term(self) -> _Node | None:
        tok = self.next_nonspace()
        typ = tok.typ
        if typ == "ident":
            if tok.val not in _FUNCS:
                self.error(f"function {_go_quote(tok.val)} not defined")
            return _Ident(tok.pos, tok.val)
        if typ == "field":
            return _Field(tok.pos, [tok.val[1:]])
        if typ == "var":
            if tok.val not in self.vars:
                self.error(f"undefined variable {_go_quote(tok.val)}")
            return _Variable(tok.pos, [tok.val])
        if typ == "dot":
            return _Dot(tok.pos)
        if typ == "nil":
            return _Nil(tok.pos)
        if typ == "str" or typ == "rawstr":
            try:
                return _Literal(tok.pos, _unquote(tok.val), tok.val)
            except _SyntaxError:
                self.error("invalid syntax")
        if typ == "num":
            try:
                return _Literal(tok.pos, _parse_number(tok.val), tok.val)
            except ValueError as e:
                self.error(str(e))
        if typ == "charconst":
            try:
                return _Literal(tok.pos, _unquote_char(tok.val), tok.val)
            except _SyntaxError:
                self.error(f"malformed character constant: {tok.val}")
        if typ == "bool":
            return _Literal(tok.pos, tok.val == "true", tok.val)
        if typ == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            return pipe
        self.backup()
        return None


# --------------------------------------------------------------------------
# Values: Go type names, truth, fmt-style printing
# --------------------------------------------------------------------------


def _tname(v: Any) -> str:
    """The Go type a value stands for (as %T would print it)."""
    if v is None or v is _MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, (bytes, bytearray)):
        return "[]uint8"
    return type(v).__name__


def _truth(v: Any) -> bool:
    if v is None or v is _MISSING:
        return False
    try:
        return bool(v)
    except Exception:
        return True


def _sort_key(k: Any) -> tuple[int, Any]:
    if k is None:
        return (0, 0)
    if isinstance(k, bool):
        return (1, k)
    if isinstance(k, (int, float)):
        return (2, k)
    if isinstance(k, str):
        return (3, k)
    return (4, str(k))


def _sorted_items(m: Mapping) -> list[tuple[Any, Any]]:
    try:
        keys = sorted(m, key=_sort_key)
    except TypeError:
        keys = list(m)
    return [(k, m[k]) for k in keys]


def _public_fields(v: Any) -> list[tuple[str, Any]] | None:
    """Fields of a dataclass or plain object, like a Go struct's."""
    dc = getattr(type(v), "__dataclass_fields__", None)
    if dc is not None:
        return [(name, getattr(v, name)) for name in dc if not name.startswith("_")]
    d = getattr(v, "__dict__", None)
    if isinstance(d, dict):
        return [(k, x) for k, x in d.items() if not k.startswith("_")]
    return None


def _obj_str(v: Any) -> str:
    if type(v).__str__ is not object.__str__:
        return str(v)
    fields = _public_fields(v)
    if fields is not None:
        return "{" + " ".join(_fmt_v(x) for _, x in fields) + "}"
    return str(v)


def _float_digits(a: float) -> tuple[str, int]:
    """Shortest decimal digits of a positive finite float and the decimal
    point position: a == 0.<digits> * 10**dp."""
    r = repr(a)
    exp = 0
    if "e" in r:
        r, e = r.split("e")
        exp = int(e)
    ip, _, fp = r.partition(".")
    if fp == "0":
        fp = ""
    digits = ip + fp
    dp = len(ip) + exp
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    return stripped.rstrip("0"), dp


def _fmt_e(digits: str, dp: int, sep_pad: bool = True) -> str:
    exp = dp - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exp < 0 else "+"
    e = abs(exp)
    return f"{mant}e{sign}{e:02d}" if sep_pad else f"{mant}e{sign}{e}"


def _fmt_f(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _go_float(f: float) -> str:
    """fmt's %v for a float64: shortest digits, %e form for exponents < -4 or >= 6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    neg = f < 0 or (f == 0 and str(f).startswith("-"))
    a = -f if f < 0 else f
    if a == 0:
        return "-0" if neg else "0"
    digits, dp = _float_digits(a)
    exp = dp - 1
    body = _fmt_e(digits, dp) if exp < -4 or exp >= 6 else _fmt_f(digits, dp)
    return "-" + body if neg else body


def _fmt_v(v: Any) -> str:
    """fmt.Sprint of a single value (the %v verb)."""
    if v is None:
        return "<nil>"
    if v is _MISSING:
        return "<no value>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt_v(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{_fmt_v(k)}:{_fmt_v(x)}" for k, x in _sorted_items(v)) + "]"
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    return _obj_str(v)


# --------------------------------------------------------------------------
# Quoting and escaping
# --------------------------------------------------------------------------

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote_rune_body(ch: str, quote: str, ascii_only: bool, out: list[str]) -> None:
    o = ord(ch)
    if ch == quote or ch == "\\":
        out.append("\\" + ch)
    elif 0x20 <= o < 0x7F:
        out.append(ch)
    elif o >= 0x80 and not ascii_only and ch.isprintable() and not 0xD800 <= o < 0xE000:
        out.append(ch)
    elif ch in _QUOTE_ESCAPES:
        out.append(_QUOTE_ESCAPES[ch])
    elif o < 0x20 or o == 0x7F:
        out.append(f"\\x{o:02x}")
    elif 0xD800 <= o < 0xE000:
        out.append("\\ufffd")
    elif o < 0x10000:
        out.append(f"\\u{o:04x}")
    else:
        out.append(f"\\U{o:08x}")


def _go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII)."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        _go_quote_rune_body(ch, '"', ascii_only, out)
    out.append('"')
    return "".join(out)


def _go_quote_rune(r: int, ascii_only: bool = False) -> str:
    ch = chr(r) if 0 <= r <= 0x10FFFF and not 0xD800 <= r < 0xE000 else "\ufffd"
    out = ["'"]
    _go_quote_rune_body(ch, "'", ascii_only, out)
    out.append("'")
    return "".join(out)


def _html_escape(s: str) -> str:
    if not any(c in s for c in "<>&'\"\x00"):
        return s
    return (
        s.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\x00", "\ufffd")
    )


_JS_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _js_escape(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif o < 0x20:
            out.append(f"\\u{o:04X}")
        elif o >= 0x80 and not ch.isprintable():
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    return "".join(out)


_URL_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _query_escape(s: str) -> str:
    out = []
    for b in s.encode("utf-8", "surrogatepass"):
        if b in _URL_SAFE:
            out.append(chr(b))
        elif b == 0x20:
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


# --------------------------------------------------------------------------
# JSON (docker's ``json`` function)
# --------------------------------------------------------------------------


class _Unsupported(Exception):
    pass


def _json_str(s: str, out: list[str]) -> None:
    out.append('"')
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            esc = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch)
            out.append(esc if esc else f"\\u{o:04x}")
        elif JSON_ESCAPE_HTML and ch in "<>&":
            out.append(f"\\u{o:04x}")
        elif o == 0x2028 or o == 0x2029:
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o < 0xE000:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')


def _json_float(f: float) -> str:
    if f != f or f in (float("inf"), float("-inf")):
        raise _Unsupported
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    a = abs(f)
    digits, dp = _float_digits(a)
    if a < 1e-6 or a >= 1e21:
        body = _fmt_e(digits, dp, sep_pad=dp - 1 >= 0)
    else:
        body = _fmt_f(digits, dp)
    return "-" + body if f < 0 else body


def _json_encode(v: Any, out: list[str], depth: int = 0) -> None:
    if depth > 200:
        raise _Unsupported
    if v is None or v is _MISSING:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        _json_str(v, out)
    elif isinstance(v, int):
        out.append(str(int(v)))
    elif isinstance(v, float):
        out.append(_json_float(v))
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _json_encode(x, out, depth + 1)
        out.append("]")
    elif isinstance(v, Mapping):
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if i:
                out.append(",")
            _json_str(k if isinstance(k, str) else _fmt_v(k), out)
            out.append(":")
            _json_encode(x, out, depth + 1)
        out.append("}")
    elif isinstance(v, (bytes, bytearray)):
        import base64

        out.append('"' + base64.b64encode(bytes(v)).decode("ascii") + '"')
    else:
        fields = _public_fields(v)
        if fields is None or type(v).__str__ is not object.__str__:
            _json_str(str(v), out)
        else:
            _json_encode(dict(fields), out, depth + 1)


# --------------------------------------------------------------------------
# printf
# --------------------------------------------------------------------------


class _Spec:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "sharpv", "wid", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = self.sharpv = False
        self.wid: int | None = None
        self.prec: int | None = None


_PLAIN = _Spec()


def _pad(s: str, sp: _Spec, zero_ok: bool = True) -> str:
    w = sp.wid
    if w is None or len(s) >= w:
        return s
    fill = w - len(s)
    if sp.minus:
        return s + " " * fill
    if sp.zero and zero_ok:
        return "0" * fill + s
    return " " * fill + s


def _bad_verb(v: Any, verb: str) -> str:
    if v is None or v is _MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_tname(v)}={_fmt_value(v, 'v', _PLAIN, 0)})"


def _fmt_int(v: int, verb: str, sp: _Spec) -> str:
    if verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF and not 0xD800 <= v < 0xE000 else "\ufffd", sp)
    if verb == "q":
        return _pad(_go_quote_rune(v, sp.plus), sp)
    if verb == "U":
        s = f"U+{v:04X}" if v >= 0 else f"U+-{-v:04X}"
        if sp.sharp and 0 <= v <= 0x10FFFF and chr(v).isprintable():
            s += f" '{chr(v)}'"
        return _pad(s, sp)
    neg = v < 0
    a = -v if neg else v
    if verb in "vd":
        digits = str(a)
    elif verb == "b":
        digits = format(a, "b")
    elif verb in "oO":
        digits = format(a, "o")
    elif verb == "x":
        digits = format(a, "x")
    elif verb == "X":
        digits = format(a, "X")
    else:
        return _bad_verb(v, verb)
    sign = "-" if neg else ("+" if sp.plus else (" " if sp.space else ""))
    if sp.prec is not None:
        digits = "" if sp.prec == 0 and a == 0 else digits.zfill(sp.prec)
    elif sp.zero and sp.wid is not None and not sp.minus:
        digits = digits.zfill(sp.wid - len(sign))
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif sp.sharp:
        if verb == "o" and not digits.startswith("0"):
            prefix = "0"
        elif verb in "xX":
            prefix = "0" + verb
        elif verb == "b":
            prefix = "0b"
    return _pad(sign + prefix + digits, sp, zero_ok=False)


def _fmt_float(f: float, verb: str, sp: _Spec) -> str:
    if verb not in "vbeEfFgGxX":
        return _bad_verb(f, verb)
    neg = f < 0 or (f == 0 and str(f).startswith("-"))
    sign = "-" if neg else ("+" if sp.plus else (" " if sp.space else ""))
    if f != f:
        return _pad(("+" if sp.plus else " " if sp.space else "") + "NaN", sp, zero_ok=False)
    a = abs(f)
    if a == float("inf"):
        return _pad(("-" if neg else "+" if sp.plus or not sp.space else " ") + "Inf", sp, zero_ok=False)
    prec = sp.prec
    if verb in "eE":
        body = f"{a:.{6 if prec is None else prec}e}"
    elif verb in "fF":
        body = f"{a:.{6 if prec is None else prec}f}"
    elif verb == "b":
        import math

        m, e = math.frexp(a)
        body = f"{int(m * (1 << 53))}p{e - 53:+d}"
    elif verb in "xX":
        body = _hex_float(a, prec)
    elif prec is None:
        if a == 0:
            body = "0"
        else:
            digits, dp = _float_digits(a)
            exp = dp - 1
            body = _fmt_e(digits, dp) if exp < -4 or exp >= 6 else _fmt_f(digits, dp)
    else:
        body = f"{a:.{prec}g}"
    if verb in "EGX":
        body = body.upper()
    if sp.zero and sp.wid is not None and not sp.minus:
        body = body.zfill(sp.wid - len(sign))
    return _pad(sign + body, sp, zero_ok=False)


def _hex_float(a: float, prec: int | None) -> str:
    if a == 0:
        return "0x0p+00"
    h = a.hex()  # 0x1.8000000000000p+1
    mant, _, exp = h[2:].partition("p")
    ip, _, fp = mant.partition(".")
    fp = fp.rstrip("0")
    if prec is not None:
        fp = (fp + "0" * prec)[:prec]
    e = int(exp)
    return "0x" + ip + ("." + fp if fp else "") + "p" + ("-" if e < 0 else "+") + f"{abs(e):02d}"


def _fmt_str(s: str, verb: str, sp: _Spec) -> str:
    if verb in "vs":
        if sp.sharpv:
            return _pad(_go_quote(s), sp)
        if sp.prec is not None:
            s = s[: sp.prec]
        return _pad(s, sp)
    if verb == "q":
        if sp.prec is not None:
            s = s[: sp.prec]
        if sp.sharp and "`" not in s and all(c == "\t" or (c.isprintable() and c != "\ufeff") for c in s):
            return _pad("`" + s + "`", sp)
        return _pad(_go_quote(s, sp.plus), sp)
    if verb in "xX":
        data = s.encode("utf-8", "surrogatepass")
        if sp.prec is not None:
            data = data[: sp.prec]
        return _pad(_hex_bytes(data, verb, sp), sp)
    return _bad_verb(s, verb)


def _hex_bytes(data: bytes, verb: str, sp: _Spec) -> str:
    pattern = "%02x" if verb == "x" else "%02X"
    prefix = ("0" + verb) if sp.sharp else ""
    if sp.space:
        return " ".join(prefix + pattern % b for b in data)
    return prefix + "".join(pattern % b for b in data)


def _fmt_value(v: Any, verb: str, sp: _Spec, depth: int) -> str:
    if v is None or v is _MISSING:
        if depth and sp.sharpv:
            return "interface {}(nil)"
        return _pad("<nil>", sp)
    if isinstance(v, bool):
        if verb in "vt":
            return _pad("true" if v else "false", sp)
        return _bad_verb(v, verb)
    if isinstance(v, int):
        return _fmt_int(int(v), "d" if verb == "v" else verb, sp)
    if isinstance(v, float):
        return _fmt_float(v, verb, sp)
    if isinstance(v, str):
        return _fmt_str(v, verb, sp)
    if isinstance(v, (bytes, bytearray)):
        if verb in "sq":
            return _fmt_str(bytes(v).decode("utf-8", "replace"), verb, sp)
        if verb in "xX":
            return _pad(_hex_bytes(bytes(v), verb, sp), sp)
        v = list(v)
    if isinstance(v, (list, tuple)):
        if sp.sharpv:
            return "[]interface {}{" + ", ".join(_fmt_value(x, verb, sp, depth + 1) for x in v) + "}"
        return "[" + " ".join(_fmt_value(x, verb, sp, depth + 1) for x in v) + "]"
    if isinstance(v, Mapping):
        items = _sorted_items(v)
        if sp.sharpv:
            return (
                "map[string]interface {}{"
                + ", ".join(
                    f"{_fmt_value(k, verb, sp, depth + 1)}:{_fmt_value(x, verb, sp, depth + 1)}"
                    for k, x in items
                )
                + "}"
            )
        return (
            "map["
            + " ".join(
                f"{_fmt_value(k, verb, sp, depth + 1)}:{_fmt_value(x, verb, sp, depth + 1)}" for k, x in items
            )
            + "]"
        )
    if verb in "vs":
        return _pad(_obj_str(v), sp)
    if verb == "q":
        return _pad(_go_quote(_obj_str(v)), sp)
    return _bad_verb(v, verb)


def _sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf, approximately."""
    out: list[str] = []
    n = len(fmt)
    i = 0
    argi = 0
    reordered = False
    nargs = len(args)

    def take_index(i: int) -> tuple[int, bool]:
        # "[n]" explicit argument index; returns (new i, ok)
        nonlocal argi, reordered
        j = fmt.find("]", i)
        if j < 0 or not fmt[i + 1 : j].isdigit():
            return (j + 1 if j >= 0 else n), False
        idx = int(fmt[i + 1 : j]) - 1
        reordered = True
        if idx < 0 or idx >= nargs:
            return j + 1, False
        argi = idx
        return j + 1, True

    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        sp = _Spec()
        while i < n and fmt[i] in "+-# 0":
            c = fmt[i]
            if c == "+":
                sp.plus = True
            elif c == "-":
                sp.minus = True
                sp.zero = False
            elif c == "#":
                sp.sharp = True
            elif c == " ":
                sp.space = True
            elif not sp.minus:
                sp.zero = True
            i += 1
        bad_index = False
        if i < n and fmt[i] == "[":
            i, ok = take_index(i)
            bad_index = not ok
        if i < n and fmt[i] == "*":
            i += 1
            if argi < nargs and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                w = args[argi]
                if w < 0:
                    sp.minus, sp.zero, w = True, False, -w
                sp.wid = w
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            k = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > k:
                sp.wid = int(fmt[k:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "[":
                i, ok = take_index(i)
                bad_index = bad_index or not ok
            if i < n and fmt[i] == "*":
                i += 1
                if argi < nargs and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                    p = args[argi]
                    sp.prec = p if p >= 0 else None
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                k = i
                while i < n and fmt[i].isdigit():
                    i += 1
                sp.prec = int(fmt[k:i]) if i > k else 0
        if i < n and fmt[i] == "[":
            i, ok = take_index(i)
            bad_index = bad_index or not ok
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if bad_index:
            out.append(f"%!{verb}(BADINDEX)")
            continue
        if argi >= nargs:
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        if verb == "v":
            sp.sharpv, sp.sharp, sp.plus = sp.sharp, False, False
        if verb == "T":
            out.append(_pad(_tname(arg), sp))
        elif arg is None or arg is _MISSING:
            out.append(_pad("<nil>", sp) if verb == "v" else f"%!{verb}(<nil>)")
        else:
            out.append(_fmt_value(arg, verb, sp, 0))
    if not reordered and argi < nargs:
        extra = ", ".join("<nil>" if a is None else f"{_tname(a)}={_fmt_v(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _sprint(args: Iterable[Any]) -> str:
    parts: list[str] = []
    prev_str = False
    for i, a in enumerate(args):
        is_str = isinstance(a, str)
        if i and not is_str and not prev_str:
            parts.append(" ")
        parts.append(_fmt_v(a))
        prev_str = is_str
    return "".join(parts)


# --------------------------------------------------------------------------
# Builtin and docker functions
# --------------------------------------------------------------------------


class _FuncError(Exception):
    """A function failed: reported as 'error calling NAME: msg'."""


def _not(v: Any) -> bool:
    return not _truth(v)


def _len(v: Any) -> int:
    if v is None:
        return 0  # a nil slice or map in Go; friendlier than Go's error for nil interfaces
    if isinstance(v, str):
        return len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, (bool, int, float)):
        raise _FuncError(f"len of type {_tname(v)}")
    try:
        return len(v)
    except TypeError:
        raise _FuncError(f"len of type {_tname(v)}") from None


def _index_arg(ix: Any, cap: int, inclusive: bool) -> int:
    if ix is None:
        raise _FuncError("cannot index slice/array with nil")
    if isinstance(ix, bool) or not isinstance(ix, int):
        raise _FuncError(f"cannot index slice/array with type {_tname(ix)}")
    if ix < 0 or ix > cap or (not inclusive and ix == cap):
        raise _FuncError(f"index out of range: {ix}")
    return ix


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _FuncError("index of untyped nil")
    for ix in indexes:
        if item is None or item is _MISSING:
            raise _FuncError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            item = data[_index_arg(ix, len(data), False)]
        elif isinstance(item, (list, tuple, bytes, bytearray)):
            item = item[_index_arg(ix, len(item), False)]
        elif isinstance(item, Mapping):
            try:
                item = item[ix] if ix in item else _MISSING
            except TypeError:
                raise _FuncError(f"value has type {_tname(ix)}; should be string") from None
        else:
            raise _FuncError(f"can't index item of type {_tname(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise _FuncError(f"too many slice indexes: {len(indexes)}")
    data: Any
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _FuncError("cannot 3-index slice a string")
        data = item if item.isascii() else item.encode("utf-8", "surrogatepass")
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise _FuncError(f"can't slice item of type {_tname(item)}")
    idx = [0, len(data), len(data)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, len(data), True)
    if idx[0] > idx[1]:
        raise _FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise _FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    out = data[idx[0] : idx[1]]
    if isinstance(out, bytes):
        return out.decode("utf-8", "replace")
    return out


def _printf(fmt: str, *args: Any) -> str:
    return _sprintf(fmt, list(args))


def _print(*args: Any) -> str:
    return _sprint(args)


def _println(*args: Any) -> str:
    return " ".join(_fmt_v(a) for a in args) + "\n"


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint("<no value>" if a is None else a for a in args)


def _html(*args: Any) -> str:
    return _html_escape(_eval_args(args))


def _js(*args: Any) -> str:
    return _js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    return _query_escape(_eval_args(args))


def _kind(v: Any) -> str:
    if v is None or v is _MISSING:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka != "nil" and kb != "nil":
                raise _FuncError("incompatible types for comparison")
            truth = False
        elif ka == "nil":
            truth = True
        elif ka == "other":
            for x in (a, b):
                if isinstance(x, (list, tuple, Mapping, bytearray)):
                    raise _FuncError(f"non-comparable type {_fmt_v(x)}: {_tname(x)}")
            truth = a == b
        else:
            truth = a == b
        if truth:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("nil", "other") or kb in ("nil", "other"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    if ka == "bool":
        raise _FuncError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise _FuncError("call of nil")
    if not callable(fn):
        raise _FuncError(f"non-function of type {_tname(fn)}")
    return fn(*args)


def _json(v: Any) -> str:
    out: list[str] = []
    try:
        _json_encode(v, out)
    except (_Unsupported, RecursionError):
        return ""  # docker ignores the encoder's error and prints nothing
    return "".join(out)


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(items: Any, sep: str) -> str:
    return sep.join(x if isinstance(x, str) else _fmt_v(x) for x in items)


def _title(s: str) -> str:
    out = []
    prev = " "
    for ch in s:
        if prev.isascii():
            sep = not (prev.isalnum() or prev == "_")
        else:
            sep = not prev.isalnum() and prev.isspace()
        if sep:
            t = ch.title()
            out.append(t if len(t) == 1 else ch.upper() if len(ch.upper()) == 1 else ch)
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _lower(s: str) -> str:
    return s.lower()


def _upper(s: str) -> str:
    return s.upper()


def _padfn(s: str, left: int, right: int) -> str:
    if s == "":
        return s
    if left < 0 or right < 0:
        raise _FuncError("strings: negative Repeat count")
    return " " * left + s + " " * right


def _truncate(s: str, n: int) -> str:
    if n < 0:
        raise _FuncError(f"runtime error: slice bounds out of range [:{n}]")
    return s[:n]


# name -> (function, fixed arg count, variadic, arg kinds (last one repeats))
_FUNCS: dict[str, tuple[Callable[..., Any], int, bool, tuple[str, ...]]] = {
    "and": (_not, 1, True, ("any",)),  # special-cased: short-circuits
    "or": (_not, 1, True, ("any",)),  # special-cased: short-circuits
    "not": (_not, 1, False, ("any",)),
    "len": (_len, 1, False, ("any",)),
    "index": (_index, 1, True, ("any",)),
    "slice": (_slice, 1, True, ("any",)),
    "print": (_print, 0, True, ("any",)),
    "printf": (_printf, 1, True, ("string", "any")),
    "println": (_println, 0, True, ("any",)),
    "eq": (_eq, 1, True, ("any",)),
    "ne": (_ne, 2, False, ("any", "any")),
    "lt": (_lt, 2, False, ("any", "any")),
    "le": (_le, 2, False, ("any", "any")),
    "gt": (_gt, 2, False, ("any", "any")),
    "ge": (_ge, 2, False, ("any", "any")),
    "html": (_html, 0, True, ("any",)),
    "js": (_js, 0, True, ("any",)),
    "urlquery": (_urlquery, 0, True, ("any",)),
    "call": (_call, 1, True, ("any",)),
    # docker/cli templates
    "json": (_json, 1, False, ("any",)),
    "split": (_split, 2, False, ("string", "string")),
    "join": (_join, 2, False, ("[]string", "string")),
    "title": (_title, 1, False, ("string",)),
    "lower": (_lower, 1, False, ("string",)),
    "upper": (_upper, 1, False, ("string",)),
    "pad": (_padfn, 3, False, ("string", "int", "int")),
    "truncate": (_truncate, 2, False, ("string", "int")),
}


# --------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------


class _BreakSignal(Exception):
    pass


class _ContinueSignal(Exception):
    pass


_BREAK = _BreakSignal()
_CONTINUE = _ContinueSignal()


class _State:
    __slots__ = ("tmpl", "name", "out", "vars", "node", "depth")

    def __init__(self, tmpl: Template, name: str, out: list[str], data: Any, depth: int) -> None:
        self.tmpl = tmpl
        self.name = name
        self.out = out
        self.vars: list[list[Any]] = [["$", data]]
        self.node: _Node | None = None
        self.depth = depth

    def error(self, msg: str) -> NoReturn:
        raise TemplateError(self.tmpl._exec_message(self.name, self.node, msg))

    # variables --------------------------------------------------------------

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.error(f"undefined variable: {name}")

    # statements -------------------------------------------------------------

    def walk(self, dot: Any, node: _Node) -> None:
        self.node = node
        t = type(node)
        if t is _Text:
            self.out.append(node.text)  # type: ignore[attr-defined]
        elif t is _Action:
            pipe = node.pipe  # type: ignore[attr-defined]
            val = self.eval_pipeline(dot, pipe)
            if not pipe.decl:
                self.node = node
                self.out.append(_fmt_v(val))
        elif t is _List:
            for n in node.nodes:  # type: ignore[attr-defined]
                self.walk(dot, n)
        elif t is _If or t is _With:
            self.walk_if_with(dot, node)  # type: ignore[arg-type]
        elif t is _Range:
            self.walk_range(dot, node)  # type: ignore[arg-type]
        elif t is _BreakNode:
            raise _BREAK
        elif t is _ContinueNode:
            raise _CONTINUE
        elif t is _TemplateCall:
            self.walk_template(dot, node)  # type: ignore[arg-type]
        else:  # pragma: no cover - parser never produces anything else
            self.error(f"unknown node: {node}")

    def walk_if_with(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if _truth(val):
                self.walk(val if type(node) is _With else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: _Branch) -> None:
        mark0 = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            pipe = node.pipe
            items: Iterable[tuple[Any, Any]] | None = None
            if val is None or val is _MISSING:
                pass
            elif isinstance(val, (list, tuple)):
                items = enumerate(val)
            elif isinstance(val, Mapping):
                items = _sorted_items(val)
            elif isinstance(val, int) and not isinstance(val, bool):
                if len(pipe.decl) > 1:
                    self.error(f"can't use {val} to iterate over more than one variable")
                items = ((i, i) for i in range(val))
            elif isinstance(val, (str, bytes, bytearray, bool, float)) or not hasattr(val, "__iter__"):
                self.error(f"range can't iterate over {_fmt_v(val)}")
            else:
                items = enumerate(list(val))
            ran = False
            if items is not None:
                mark = len(self.vars)
                decl = pipe.decl
                for index, elem in items:
                    ran = True
                    if decl:
                        if pipe.is_assign:
                            if len(decl) > 1:
                                self.set_var(decl[0], index)
                                self.set_var(decl[1], elem)
                            else:
                                self.set_var(decl[0], elem)
                        else:
                            self.vars[mark - 1][1] = elem
                            if len(decl) > 1:
                                self.vars[mark - 2][1] = index
                    try:
                        self.walk(elem, node.list)
                    except _ContinueSignal:
                        pass
                    except _BreakSignal:
                        break
                    finally:
                        del self.vars[mark:]
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark0:]

    def walk_template(self, dot: Any, node: _TemplateCall) -> None:
        tree = self.tmpl._defs.get(node.name)
        if tree is None:
            self.error(f"template {_go_quote(node.name)} not defined")
        if self.depth >= _MAX_TEMPLATE_DEPTH:
            self.error(f"exceeded maximum template depth ({_MAX_TEMPLATE_DEPTH})")
        newdot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else _MISSING
        _State(self.tmpl, node.name, self.out, newdot, self.depth + 1).walk(newdot, tree)

    # expressions ------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        self.node = pipe
        value = _NOARG
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if pipe.decl:
            for name in pipe.decl:
                if pipe.is_assign:
                    self.set_var(name, value)
                else:
                    self.vars.append([name, value])
        return value

    def not_a_function(self, args: list[_Node], final: Any) -> None:
        if len(args) > 1 or final is not _NOARG:
            self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        t = type(first)
        if t is _Field:
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)  # type: ignore[attr-defined]
        if t is _Chain:
            return self.eval_chain(dot, first, cmd.args, final)  # type: ignore[arg-type]
        if t is _Ident:
            return self.eval_function(dot, first, cmd.args, final)  # type: ignore[arg-type]
        if t is _Variable:
            return self.eval_variable(dot, first, cmd.args, final)  # type: ignore[arg-type]
        self.node = first
        self.not_a_function(cmd.args, final)
        if t is _Pipe:
            return self.eval_pipeline(dot, first)  # type: ignore[arg-type]
        if t is _Dot:
            return dot
        if t is _Nil:
            self.error("nil is not a command")
        return first.value  # type: ignore[attr-defined]

    def eval_arg(self, dot: Any, n: _Node) -> Any:
        self.node = n
        t = type(n)
        if t is _Literal:
            return n.value  # type: ignore[attr-defined]
        if t is _Field:
            return self.eval_field_chain(dot, dot, n, n.idents, [n], _NOARG)  # type: ignore[attr-defined]
        if t is _Variable:
            return self.eval_variable(dot, n, [n], _NOARG)  # type: ignore[arg-type]
        if t is _Dot:
            return dot
        if t is _Nil:
            return None
        if t is _Pipe:
            return self.eval_pipeline(dot, n)  # type: ignore[arg-type]
        if t is _Ident:
            return self.eval_function(dot, n, [n], _NOARG)  # type: ignore[arg-type]
        if t is _Chain:
            return self.eval_chain(dot, n, [n], _NOARG)  # type: ignore[arg-type]
        self.error(f"can't handle {n} for arg")  # pragma: no cover

    def eval_chain(self, dot: Any, chain: _Chain, args: list[_Node], final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, _Nil):
            self.error(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, chain.node)
        self.node = chain
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, var: _Variable, args: list[_Node], final: Any) -> Any:
        self.node = var
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: _Node, idents: list[str], args: list[_Node], final: Any
    ) -> Any:
        last = len(idents) - 1
        for i, name in enumerate(idents):
            if i < last:
                receiver = self.eval_field(dot, name, node, (), _NOARG, receiver)
            else:
                receiver = self.eval_field(dot, name, node, args, final, receiver)
        return receiver

    def eval_field(self, dot: Any, name: str, node: _Node, args: Any, final: Any, receiver: Any) -> Any:
        if receiver is _MISSING:
            return _MISSING
        if receiver is None:
            self.error(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _NOARG
        if isinstance(receiver, dict):
            if has_args:
                self.error(f"{name} is not a method but has arguments")
            return receiver.get(name, _MISSING)
        if isinstance(receiver, (str, int, float, list, tuple, bytes, bytearray)):
            self.error(f"can't evaluate field {name} in type {_tname(receiver)}")
        if isinstance(receiver, Mapping):
            if has_args:
                self.error(f"{name} is not a method but has arguments")
            return receiver[name] if name in receiver else _MISSING
        if name.startswith("_"):
            self.error(f"{name} is an unexported field of struct type {_tname(receiver)}")
        try:
            attr = getattr(receiver, name)
        except AttributeError:
            self.error(f"can't evaluate field {name} in type {_tname(receiver)}")
        except TemplateError:
            raise
        except Exception as e:
            self.error(f"error calling {name}: {e}")
        if callable(attr) and not isinstance(attr, type):
            argv = [self.eval_arg(dot, a) for a in args[1:]]
            if final is not _NOARG:
                argv.append(final)
            self.node = node
            try:
                return attr(*[None if a is _MISSING else a for a in argv])
            except TemplateError:
                raise
            except Exception as e:
                self.error(f"error calling {name}: {e}")
        if has_args:
            self.error(f"{name} has arguments but cannot be invoked as function")
        return attr

    def check_arg(self, v: Any, kind: str) -> Any:
        if kind == "any":
            return None if v is _MISSING else v
        if kind == "[]string" and (v is None or v is _MISSING):
            return []
        if v is _MISSING:
            self.error(f"invalid value; expected {kind}")
        if kind == "string":
            if isinstance(v, str):
                return v
        elif kind == "int":
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        elif kind == "[]string":
            if isinstance(v, (list, tuple)):
                return v
        got = "interface {}" if v is None else _tname(v)
        self.error(f"wrong type for value; expected {kind}; got {got}")

    def eval_function(self, dot: Any, ident: _Ident, args: list[_Node], final: Any) -> Any:
        self.node = ident
        name = ident.name
        fn, nfixed, variadic, kinds = _FUNCS[name]
        argnodes = args[1:]
        num_in = len(argnodes) + (final is not _NOARG)
        if variadic:
            if num_in < nfixed:
                self.error(f"wrong number of args for {name}: want at least {nfixed} got {num_in}")
        elif num_in != nfixed:
            self.error(f"wrong number of args for {name}: want {nfixed} got {num_in}")
        if name == "and" or name == "or":
            want = name == "or"
            v: Any = _MISSING
            for a in argnodes:
                v = self.eval_arg(dot, a)
                if _truth(v) == want:
                    return v
            if final is not _NOARG:
                v = final
            return v
        last = len(kinds) - 1
        argv = [self.check_arg(self.eval_arg(dot, a), kinds[min(i, last)]) for i, a in enumerate(argnodes)]
        if final is not _NOARG:
            argv.append(self.check_arg(final, kinds[min(len(argnodes), last)]))
        self.node = ident
        try:
            return fn(*argv)
        except TemplateError:
            raise
        except _FuncError as e:
            self.error(f"error calling {name}: {e}")
        except RecursionError:
            self.error(f"error calling {name}: value too deeply nested")
        except Exception as e:
            self.error(f"error calling {name}: {e}")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


class Template:
    """A parsed template.  Immutable and safe to execute repeatedly."""

    __slots__ = ("text", "name", "_root", "_defs")

    def __init__(self, text: str, name: str, root: _List, defs: dict[str, _List]) -> None:
        self.text = text
        self.name = name
        self._root = root
        self._defs = defs

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def _exec_message(self, name: str, node: _Node | None, msg: str) -> str:
        if node is None:
            return f"template: {name}: {msg}"
        text = self.text
        pos = min(node.pos, len(text))
        nl = text.rfind("\n", 0, pos)
        line = text.count("\n", 0, pos) + 1
        col = len(text[nl + 1 : pos].encode("utf-8", "surrogatepass"))
        ctx = str(node)
        if len(ctx) > 20:
            ctx = ctx[:20] + "..."
        return f"template: {self.name}:{line}:{col}: executing {_go_quote(name)} at <{ctx}>: {msg}"

    def execute(self, data: Any) -> str:
        """Render the template against ``data``; raises TemplateError."""
        out: list[str] = []
        dot = _MISSING if data is None else data
        state = _State(self, self.name, out, dot, 0)
        try:
            state.walk(dot, self._root)
        except RecursionError:
            state.error("value or template too deeply nested")
        return "".join(out)


def parse(text: str, name: str = "") -> Template:
    """Parse a Go template; raises TemplateError on syntax errors."""
    parser = _Parser(text, name)
    try:
        root = parser.parse()
    except RecursionError:
        raise TemplateError(f"template: {name}:{parser.line}: expression too deeply nested") from None
    return Template(text, name, root, parser.defs)


_CACHE: dict[str, Template] = {}
_CACHE_SIZE = 64


def render(text: str, data: Any) -> str:
    """Parse (cached) and execute ``text`` against ``data``."""
    tmpl = _CACHE.pop(text, None)
    if tmpl is None:
        tmpl = parse(text)
        if len(_CACHE) >= _CACHE_SIZE:
            try:
                del _CACHE[next(iter(_CACHE))]
            except (StopIteration, KeyError, RuntimeError):
                pass
    _CACHE[text] = tmpl
    return tmpl.execute(data)
