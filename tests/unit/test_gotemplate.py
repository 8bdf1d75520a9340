"""Unit tests for hatoba.cli.gotemplate, the Go text/template engine behind --format."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from hatoba.cli import gotemplate
from hatoba.cli.gotemplate import Template, TemplateError, parse, render
from hatoba.cli.output import split_table


def r(text: str, data: object = None) -> str:
    return render(text, data)


def err(text: str, data: object = None) -> str:
    with pytest.raises(TemplateError) as info:
        render(text, data)
    return str(info.value)


# --------------------------------------------------------------------------
# Fields, dot, root, printing
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data", "want"),
    [
        ("plain text", {}, "plain text"),
        ("", {}, ""),
        ("{{.}}", "hello", "hello"),
        ("{{.Name}}", {"Name": "web"}, "web"),
        ("{{.A.B.C}}", {"A": {"B": {"C": "deep"}}}, "deep"),
        ("{{.Missing}}", {}, "<no value>"),
        ("{{.Missing.Sub.Deeper}}", {}, "<no value>"),
        ("{{.N}}", {"N": None}, "<nil>"),
        ("{{.}}", None, "<no value>"),
        ("{{.X}}", None, "<no value>"),
        ("{{.T}} {{.F}}", {"T": True, "F": False}, "true false"),
        ("{{.I}}", {"I": 1234567890123}, "1234567890123"),
        ("{{.L}}", {"L": ["a", "b", "c"]}, "[a b c]"),
        ("{{.L}}", {"L": []}, "[]"),
        ("{{.L}}", {"L": [1, None, [2, 3]]}, "[1 <nil> [2 3]]"),
        ("{{.M}}", {"M": {"b": 2, "a": 1}}, "map[a:1 b:2]"),
        ("{{.M}}", {"M": {}}, "map[]"),
        ("{{.}}", {"k": ["x"], "j": {"z": None}}, "map[j:map[z:<nil>] k:[x]]"),
        ("{{range .L}}{{$.Top}}{{.}} {{end}}", {"L": [1, 2], "Top": "T"}, "T1 T2 "),
        ("{{$}}", "root", "root"),
        ("{{$.A}}", {"A": "a"}, "a"),
        ("{{(index .L 0).Name}}", {"L": [{"Name": "n0"}]}, "n0"),
        ("{{(.M).k}}", {"M": {"k": "v"}}, "v"),
    ],
)
def test_fields_and_printing(text: str, data: object, want: str) -> None:
    assert r(text, data) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (-0.5, "-0.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (123456789.0, "1.23456789e+08"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.0, "0"),
        (float("inf"), "+Inf"),
        (float("nan"), "NaN"),
        (3, "3"),
        (10**6, "1000000"),
    ],
)
def test_number_printing_like_go(value: object, want: str) -> None:
    assert r("{{.}}", value) == want


def test_none_in_list_and_missing_key_print_differently() -> None:
    assert r("{{.A}} {{.B}}", {"A": None}) == "<nil> <no value>"


# --------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{{"a\\tb\\n"}}', "a\tb\n"),
        ('{{"\\x41\\u00e9\\U0001F600\\101\\\\\\""}}', 'Aé😀A\\"'),
        ("{{`raw \\n {{ }}`}}", "raw \\n {{ }}"),
        ("{{`multi\nline`}}", "multi\nline"),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{1}} {{-3}} {{+4}}", "1 -3 4"),
        ("{{0x1F}} {{0o17}} {{0b101}} {{017}} {{1_000}}", "31 15 5 15 1000"),
        ("{{1.5}} {{.5}} {{1e3}} {{1.0}} {{1e-3}}", "1.5 0.5 1000 1 0.001"),
        ("{{true}} {{false}}", "true false"),
    ],
)
def test_literals(text: str, want: str) -> None:
    assert r(text, {}) == want


# --------------------------------------------------------------------------
# Variables
# --------------------------------------------------------------------------


def test_variable_declare_and_assign() -> None:
    assert r("{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}", {}) == "12"


def test_variable_declared_from_field_and_pipeline() -> None:
    assert r("{{$n := .Name | upper}}{{$n}}-{{$n}}", {"Name": "db"}) == "DB-DB"


def test_variable_assignment_inside_range_is_visible_after() -> None:
    assert r("{{$last := 0}}{{range .}}{{$last = .}}{{end}}{{$last}}", [1, 2, 3]) == "3"


def test_variable_scope_ends_with_block() -> None:
    assert 'undefined variable "$x"' in err("{{if true}}{{$x := 1}}{{end}}{{$x}}", {})


def test_variable_with_field_chain() -> None:
    assert r("{{$c := .C}}{{$c.Name}}", {"C": {"Name": "x"}}) == "x"


def test_undefined_variable_is_parse_error() -> None:
    assert err("{{$nope}}", {}) == 'template: :1: undefined variable "$nope"'


def test_assign_to_undeclared_variable_fails_at_exec() -> None:
    assert "undefined variable: $x" in err("{{$x = 1}}", {})


def test_with_declares_variable() -> None:
    assert r("{{with $v := .A}}{{$v}}/{{.}}{{end}}", {"A": "val"}) == "val/val"


# --------------------------------------------------------------------------
# if / with / range
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "want"),
    [
        ({"A": 1}, "a"),
        ({"B": "x"}, "b"),
        ({"A": 0, "B": ""}, "none"),
        ({}, "none"),
    ],
)
def test_if_else_if_else(data: object, want: str) -> None:
    assert r("{{if .A}}a{{else if .B}}b{{else}}none{{end}}", data) == want


@pytest.mark.parametrize(
    "value",
    [False, 0, 0.0, "", [], {}, None],
)
def test_go_falsy_values(value: object) -> None:
    assert r("{{if .V}}T{{else}}F{{end}}", {"V": value}) == "F"


@pytest.mark.parametrize("value", [True, 1, -1, 0.5, "x", [0], {"k": 0}, object()])
def test_go_truthy_values(value: object) -> None:
    assert r("{{if .V}}T{{else}}F{{end}}", {"V": value}) == "T"


def test_with_rebinds_dot() -> None:
    assert r("{{with .State}}{{.Status}}{{end}}", {"State": {"Status": "running"}}) == "running"


def test_with_else() -> None:
    assert r("{{with .Health}}{{.Status}}{{else}}no healthcheck{{end}}", {"Health": None}) == "no healthcheck"


def test_else_with_chain() -> None:
    tmpl = "{{with .A}}a={{.}}{{else with .B}}b={{.}}{{else}}none{{end}}"
    assert r(tmpl, {"B": "bee"}) == "b=bee"
    assert r(tmpl, {"A": "ay", "B": "bee"}) == "a=ay"
    assert r(tmpl, {}) == "none"


def test_range_list_with_index_and_element() -> None:
    assert r("{{range $i, $e := .}}{{$i}}:{{$e}} {{end}}", ["a", "b"]) == "0:a 1:b "


def test_range_single_variable_gets_element() -> None:
    assert r("{{range $e := .}}<{{$e}}>{{end}}", ["x", "y"]) == "<x><y>"


def test_range_map_sorted_by_key() -> None:
    data = {"zeta": 1, "alpha": 2, "mid": 3}
    assert r("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", data) == "alpha=2;mid=3;zeta=1;"
    assert r("{{range .}}{{.}}{{end}}", data) == "231"


def test_range_else_on_empty_and_nil() -> None:
    tmpl = "{{range .L}}{{.}}{{else}}empty{{end}}"
    assert r(tmpl, {"L": []}) == "empty"
    assert r(tmpl, {"L": {}}) == "empty"
    assert r(tmpl, {"L": None}) == "empty"
    assert r(tmpl, {}) == "empty"
    assert r(tmpl, {"L": [1]}) == "1"


def test_range_over_int() -> None:
    assert r("{{range 3}}{{.}}{{end}}", {}) == "012"
    assert r("{{range $i := 2}}[{{$i}}]{{end}}", {}) == "[0][1]"


def test_range_break_and_continue() -> None:
    tmpl = "{{range .}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}"
    assert r(tmpl, [0, 1, 2, 3, 4]) == "02"


def test_break_only_leaves_innermost_range() -> None:
    tmpl = "{{range .}}{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}};{{end}}"
    assert r(tmpl, [[1, 2, 3], [4]]) == "1;4;"


def test_range_body_variables_reset_each_iteration() -> None:
    assert r("{{range .}}{{$x := .}}{{$x}}{{end}}", [1, 2]) == "12"


def test_nested_range_with_root_access() -> None:
    data = {"Nets": {"b": {"IP": "2"}, "a": {"IP": "1"}}, "Name": "c"}
    assert r("{{range $n, $c := .Nets}}{{$.Name}}@{{$n}}={{$c.IP}} {{end}}", data) == "c@a=1 c@b=2 "


def test_range_over_string_is_error() -> None:
    assert "range can't iterate over str" in err("{{range .S}}x{{end}}", {"S": "str"})


# --------------------------------------------------------------------------
# Trim markers and comments
# --------------------------------------------------------------------------


def test_trim_markers() -> None:
    assert r("a  \n {{- .X -}} \n  b", {"X": 1}) == "a1b"


def test_trim_only_left_or_right() -> None:
    assert r("a  {{- .X}}  b", {"X": 1}) == "a1  b"
    assert r("a  {{.X -}}  b", {"X": 1}) == "a  1b"


def test_minus_without_space_is_a_number_not_a_trim() -> None:
    assert r("a {{-3}} b", {}) == "a -3 b"


def test_range_with_trims_produces_clean_lines() -> None:
    tmpl = "{{range .}}\n  {{- .}}\n{{end}}"
    assert r(tmpl, ["a", "b"]) == "a\nb\n"


def test_comments() -> None:
    assert r("a{{/* a comment */}}b", {}) == "ab"
    assert r("a {{- /* trimmed */ -}} b", {}) == "ab"
    assert r("x{{/* multi\nline */}}y", {}) == "xy"


# --------------------------------------------------------------------------
# Pipelines and parentheses
# --------------------------------------------------------------------------


def test_pipeline_passes_value_as_last_argument() -> None:
    assert r('{{.A | printf "%s-%s" "x"}}', {"A": "y"}) == "x-y"


def test_multi_stage_pipeline() -> None:
    assert r('{{.Name | lower | printf "<%s>"}}', {"Name": "WEB"}) == "<web>"


def test_nested_parenthesised_calls() -> None:
    assert (
        r('{{printf "%s|%d" (upper (lower .A)) (len (split .B ","))}}', {"A": "MiX", "B": "a,b,c"}) == "MIX|3"
    )


def test_pipeline_into_len_and_index() -> None:
    assert r("{{.L | len}} {{index .L 1 | upper}}", {"L": ["a", "b"]}) == "2 B"


def test_if_with_function_conditions() -> None:
    tmpl = "{{if and .A (not .B)}}yes{{else}}no{{end}}"
    assert r(tmpl, {"A": 1}) == "yes"
    assert r(tmpl, {"A": 1, "B": 1}) == "no"


def test_newline_inside_action() -> None:
    assert r("{{.A\n  | upper}}", {"A": "m"}) == "M"


# --------------------------------------------------------------------------
# Builtin functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{and 1 0 2}}", "0"),
        ("{{and 1 2 3}}", "3"),
        ('{{or 0 "" "x" "y"}}', "x"),
        ('{{or 0 ""}}', ""),
        ("{{not 0}} {{not 1}} {{not .Missing}}", "true false true"),
        ('{{len .L}} {{len .M}} {{len "héllo"}} {{len .Missing}}', "3 1 6 0"),
        ('{{index .L 1}} {{index .M "k"}} {{index .N "a" 0 "b"}}', "2 v deep"),
        ('{{index .M "absent"}}', "<no value>"),
        ('{{index "abc" 1}}', "98"),
        ("{{index .L}}", "[1 2 3]"),
        ('{{slice .L 1}} {{slice .L 1 2}} {{slice .L}} {{slice "hello" 1 3}}', "[2 3] [2] [1 2 3] el"),
        ('{{print "a" 1 2 "b" 3}}', "a1 2b3"),
        ("{{print nil}}", "<nil>"),
        ('{{println "a" 1}}', "a 1\n"),
        ('{{printf "%s=%d" "n" 5}}', "n=5"),
        ('{{eq 1 1}} {{eq 1 2}} {{eq .S "x" "y" "s"}}', "true false true"),
        ("{{eq .Missing nil}} {{eq .N0 nil}} {{eq 1 nil}}", "true true false"),
        ('{{ne 1 2}} {{ne "a" "a"}}', "true false"),
        ('{{lt 1 2}} {{lt 2 1}} {{lt "a" "b"}} {{lt 1.5 2.5}}', "true false true true"),
        ("{{le 2 2}} {{le 3 2}}", "true false"),
        ("{{gt 3 2}} {{gt 2 2}}", "true false"),
        ("{{ge 2 2}} {{ge 1 2}}", "true false"),
        ("{{eq 1 1.0}} {{lt 1 1.5}}", "true true"),
        ('{{html "<a href=\'x\'>&\\"</a>"}}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"),
        ('{{js "it\'s <b> \\"q\\" a=b\\n"}}', 'it\\\'s \\u003Cb\\u003E \\"q\\" a\\u003Db\\u000A'),
        ('{{urlquery "a b&c=d/é~_.-"}}', "a+b%26c%3Dd%2F%C3%A9~_.-"),
        ("{{html .Missing}}", "&lt;no value&gt;"),
        ("{{call .F 21}}", "42"),
    ],
)
def test_builtin_functions(text: str, want: str) -> None:
    data = {
        "L": [1, 2, 3],
        "M": {"k": "v"},
        "N": {"a": [{"b": "deep"}]},
        "S": "s",
        "N0": None,
        "F": lambda x: x * 2,
    }
    assert r(text, data) == want


def test_and_or_short_circuit() -> None:
    # the second argument would fail if evaluated
    assert r("{{and .F (index .Missing 1)}}", {"F": 0}) == "0"
    assert r("{{or .T (index .Missing 1)}}", {"T": "yes"}) == "yes"


def test_and_or_pipeline_final_argument() -> None:
    assert r("{{1 | and 2}}", {}) == "1"
    assert r('{{0 | or ""}}', {}) == "0"


# --------------------------------------------------------------------------
# printf verbs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%s", '"x"', "x"),
        ("%5s|", '"ab"', "   ab|"),
        ("%-5s|", '"ab"', "ab   |"),
        ("%-10s|", '"container"', "container |"),
        ("%.2s", '"abcdef"', "ab"),
        ("%d", "42", "42"),
        ("%5d|%-5d|%05d", "42 42 -42", "   42|42   |-0042"),
        ("%+d % d", "5 5", "+5  5"),
        ("%x %X %#x %o %#o %b %O", "255 255 255 8 8 5 8", "ff FF 0xff 10 010 101 0o10"),
        ("%x % x", '"hi" "hi"', "6869 68 69"),
        ("%c %U %q", "65 65 65", "A U+0041 'A'"),
        ("%f %.2f %8.3f %-8.1f|", "3.14159 3.14159 3.14159 2.5", "3.141590 3.14    3.142 2.5     |"),
        ("%e %E %.1e", "1234.5678 1234.5678 12345.678", "1.234568e+03 1.234568E+03 1.2e+04"),
        ("%g %g %.3g %G", "1.5 0.000012345 3.14159 1e20", "1.5 1.2345e-05 3.14 1E+20"),
        ("%08.3f|%+.1f", "-3.14159 2.0", "-003.142|+2.0"),
        ("%v %v %v %v", "1 1.5 true nil", "1 1.5 true <nil>"),
        ("%t %t", "true false", "true false"),
        ("%q %+q %#q", '"é\\n" "é" "x"', '"é\\n" "\\u00e9" `x`'),
        ("%T %T %T %T %T %T", '1 1.5 "s" true nil .L', "int float64 string bool <nil> []interface {}"),
        ("%%|%d%%", "50", "%|50%"),
        ("%*d|%-*d|%.*f", "5 1 4 2 2 3.14159", "    1|2   |3.14"),
        ("%[2]s %[1]s", '"a" "b"', "b a"),
        ("%d", '"x"', "%!d(string=x)"),
        ("%s", "3", "%!s(int=3)"),
        ("%d", "1.5", "%!d(float64=1.5)"),
        ("%s", "nil", "%!s(<nil>)"),
        ("%d %d", "1", "1 %!d(MISSING)"),
        ("%d", "1 2", "1%!(EXTRA int=2)"),
        ("%", "", "%!(NOVERB)"),
        ("%z", "1", "%!z(int=1)"),
        ("%v|%s|%d", ".L .L .L", "[1 a]|[%!s(int=1) a]|[1 %!d(string=a)]"),
        ("%v", ".M", "map[a:1 b:<nil>]"),
        ("%#v %#v", '.L "s"', '[]interface {}{1, "a"} "s"'),
        ("%5v|", ".L", "[    1     a]|"),
    ],
)
def test_printf_verbs(fmt: str, args: str, want: str) -> None:
    data = {"L": [1, "a"], "M": {"b": None, "a": 1}}
    quoted = '"' + fmt.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert r("{{printf " + quoted + (" " + args if args else "") + "}}", data) == want


# --------------------------------------------------------------------------
# docker functions
# --------------------------------------------------------------------------


def test_json_compact_ordered_no_trailing_newline() -> None:
    data = {"b": 1, "a": [1, 2.5, None, True, False], "c": {"z": "é", "y": {}}}
    assert r("{{json .}}", data) == '{"b":1,"a":[1,2.5,null,true,false],"c":{"z":"é","y":{}}}'


def test_json_string_escaping() -> None:
    data = {"s": 'q"b\\\n\r\t\b\f\x01\u2028\u2029<>&'}
    want = '{"s":"q\\"b\\\\\\n\\r\\t\\b\\f\\u0001\\u2028\\u2029<>&"}'
    assert r("{{json .}}", data) == want


def test_json_html_escaping_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gotemplate, "JSON_ESCAPE_HTML", True)
    assert r("{{json .}}", "<a&b>") == '"\\u003ca\\u0026b\\u003e"'


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, "null"),
        ("s", '"s"'),
        (1.0, "1"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        ([], "[]"),
        ({}, "{}"),
        (float("nan"), ""),
    ],
)
def test_json_values(value: object, want: str) -> None:
    assert r("{{json .V}}", {"V": value}) == want


def test_json_of_missing_is_null() -> None:
    assert r("{{json .Nope}}", {}) == "null"


def test_split_and_join() -> None:
    assert r('{{split .I ":"}}', {"I": "nginx:1.25:x"}) == "[nginx 1.25 x]"
    assert r('{{index (split .I ":") 0}}', {"I": "nginx:1.25"}) == "nginx"
    assert r('{{split "abc" ""}}', {}) == "[a b c]"
    assert r('{{join .L ", "}}', {"L": ["a", "b"]}) == "a, b"
    assert r('{{join .L ","}}|', {"L": []}) == "|"
    assert r('{{join .Missing ","}}|', {}) == "|"


def test_title_lower_upper() -> None:
    assert r('{{title "hello wide-world foo_bar"}}', {}) == "Hello Wide-World Foo_bar"
    assert r('{{lower "MiXeD"}} {{upper "MiXeD"}}', {}) == "mixed MIXED"


def test_pad() -> None:
    assert r('[{{pad "x" 2 3}}]', {}) == "[  x   ]"
    assert r('[{{pad "" 2 3}}]', {}) == "[]"


def test_truncate_counts_runes() -> None:
    assert r('{{truncate "abcdef" 3}} {{truncate "ab" 5}}', {}) == "abc ab"
    assert r('{{truncate "日本語テキスト" 2}}', {}) == "日本"


def test_docker_ps_style_row() -> None:
    data = {"ID": "0123456789ab", "Names": "web", "Ports": "", "Labels": {"b": "2", "a": "1"}}
    tmpl = "{{.ID}}\t{{.Names}}\t{{if .Ports}}{{.Ports}}{{else}}-{{end}}\t{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}"
    assert r(tmpl, data) == "0123456789ab\tweb\t-\ta=1,b=2,"


def test_docker_inspect_style_ports() -> None:
    data = {
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}}
    }
    tmpl = "{{range $p, $conf := .NetworkSettings.Ports}}{{$p}}->{{if $conf}}{{(index $conf 0).HostPort}}{{else}}none{{end}} {{end}}"
    assert r(tmpl, data) == "443/tcp->none 80/tcp->8080 "


# --------------------------------------------------------------------------
# Python objects
# --------------------------------------------------------------------------


@dataclass
class Ctr:
    ID: str
    Names: list[str] = field(default_factory=list)
    _secret: str = "hidden"

    def Short(self, n: int = 3) -> str:
        return self.ID[:n]

    @property
    def Upper(self) -> str:
        return self.ID.upper()

    def Boom(self) -> str:
        raise ValueError("kaput")


def test_object_attributes_methods_and_properties() -> None:
    c = Ctr("abcdef", ["x", "y"])
    assert r("{{.ID}} {{.Short}} {{.Short 2}} {{.Upper}} {{.Names}}", c) == "abcdef abc ab ABCDEF [x y]"
    assert r("{{.ID | len}} {{2 | .Short}}", c) == "6 ab"


def test_object_printed_like_a_struct() -> None:
    assert r("{{.}}", Ctr("i", ["n"])) == "{i [n]}"


def test_object_json() -> None:
    assert r("{{json .}}", Ctr("i", ["n"])) == '{"ID":"i","Names":["n"]}'


def test_object_missing_attribute_is_error() -> None:
    assert err("{{.Nope}}", Ctr("i")) == (
        'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type Ctr'
    )


def test_object_private_attribute_is_error() -> None:
    assert "_secret is an unexported field" in err("{{._secret}}", Ctr("i"))


def test_object_method_exception_is_reported() -> None:
    assert "error calling Boom: kaput" in err("{{.Boom}}", Ctr("i"))


def test_object_field_with_arguments_is_error() -> None:
    assert "ID has arguments but cannot be invoked as function" in err("{{.ID 1}}", Ctr("i"))


# --------------------------------------------------------------------------
# define / template / block
# --------------------------------------------------------------------------


def test_define_and_template() -> None:
    assert (
        r('{{define "T"}}[{{.}}]{{end}}{{template "T" .A}}{{template "T" .B}}', {"A": 1, "B": 2}) == "[1][2]"
    )


def test_template_without_pipeline_gets_no_value() -> None:
    assert r('{{define "T"}}{{.}}{{end}}{{template "T"}}', {}) == "<no value>"


def test_block() -> None:
    assert r('{{block "B" .}}blk:{{.}}{{end}}', 5) == "blk:5"


def test_undefined_template() -> None:
    assert 'template "nope" not defined' in err('{{template "nope"}}', {})


def test_template_recursion_limit() -> None:
    assert "exceeded maximum template depth" in err(
        '{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}', {}
    )


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{foo}}", 'template: :1: function "foo" not defined'),
        ("a\n{{foo}}", 'template: :2: function "foo" not defined'),
        ("{{.A", "template: :1: unclosed action"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{`abc}}", "template: :1: unterminated raw quoted string"),
        ("{{/* abc", "template: :1: unclosed comment"),
        ("{{/* abc */ .A}}", "template: :1: comment ends before closing delimiter"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{if .A}}x", "template: :1: unexpected EOF"),
        ("{{if}}{{end}}", "template: :1: missing value for if"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{continue}}", "template: :1: {{continue}} outside {{range}}"),
        ("{{(.A}}", "template: :1: unclosed left paren"),
        ("{{.A)}}", "template: :1: unexpected right paren"),
        ("{{.A | 1}}", "template: :1: non executable command in pipeline stage 2"),
        ('{{"a".X}}', 'template: :1: unexpected . after term "\\"a\\""'),
        ("{{.A %}}", 'template: :1: unexpected "%" in operand'),
        ("{{1.X}}", 'template: :1: bad number syntax: "1.X"'),
        ("{{'ab'}}", "template: :1: malformed character constant: 'ab'"),
        ('{{"\\q"}}', "template: :1: invalid syntax"),
        ("{{$x, $y := 1}}", "template: :1: too many declarations in command"),
        (
            '{{define "a"}}x{{end}}{{define "a"}}y{{end}}',
            'template: :1: template: multiple definition of template "a"',
        ),
    ],
)
def test_parse_errors(text: str, want: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(text)
    assert str(info.value) == want


@pytest.mark.parametrize(
    ("text", "data", "want"),
    [
        (
            "{{.A.B}}",
            {"A": None},
            'template: :1:2: executing "" at <.A.B>: nil pointer evaluating interface {}.B',
        ),
        (
            "line1\n  {{.A.B}}",
            {"A": None},
            'template: :2:4: executing "" at <.A.B>: nil pointer evaluating interface {}.B',
        ),
        ("{{.Foo}}", 5, 'template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type int'),
        (
            "{{.A.x}}",
            {"A": "s"},
            'template: :1:2: executing "" at <.A.x>: can\'t evaluate field x in type string',
        ),
        (
            "{{index .L 5}}",
            {"L": [1]},
            'template: :1:2: executing "" at <index>: error calling index: index out of range: 5',
        ),
        (
            '{{index .M "x"}}',
            {},
            'template: :1:2: executing "" at <index>: error calling index: index of untyped nil',
        ),
        (
            "{{slice .L 2 1}}",
            {"L": [1, 2]},
            'template: :1:2: executing "" at <slice>: error calling slice: invalid slice index: 2 > 1',
        ),
        ("{{len 3}}", {}, 'template: :1:2: executing "" at <len>: error calling len: len of type int'),
        ("{{len}}", {}, 'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0'),
        (
            "{{and}}",
            {},
            'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0',
        ),
        (
            '{{eq 1 "a"}}',
            {},
            'template: :1:2: executing "" at <eq>: error calling eq: incompatible types for comparison',
        ),
        (
            "{{lt true false}}",
            {},
            'template: :1:2: executing "" at <lt>: error calling lt: invalid type for comparison',
        ),
        (
            "{{upper 5}}",
            {},
            'template: :1:8: executing "" at <5>: wrong type for value; expected string; got int',
        ),
        ("{{upper .M}}", {}, 'template: :1:8: executing "" at <.M>: invalid value; expected string'),
        (
            "{{printf 1}}",
            {},
            'template: :1:9: executing "" at <1>: wrong type for value; expected string; got int',
        ),
        ("{{.A 1}}", {"A": 1}, 'template: :1:2: executing "" at <.A>: A is not a method but has arguments'),
        ("{{1 2}}", {}, 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
        ("{{nil}}", {}, 'template: :1:2: executing "" at <nil>: nil is not a command'),
        (
            '{{truncate "abc" -1}}',
            {},
            'template: :1:2: executing "" at <truncate>: error calling truncate: runtime error: slice bounds out of range [:-1]',
        ),
    ],
)
def test_exec_errors(text: str, data: object, want: str) -> None:
    assert err(text, data) == want


def test_error_context_is_abbreviated() -> None:
    msg = err("{{.Aaaaaaaaaaaa.Bbbbbbbbbbbbbbbbbb.C}}", {"Aaaaaaaaaaaa": {"Bbbbbbbbbbbbbbbbbb": 3}})
    assert "at <.Aaaaaaaaaaaa.Bbbbbb...>" in msg


def test_template_error_is_an_exception() -> None:
    assert issubclass(TemplateError, Exception)


# --------------------------------------------------------------------------
# API: parse/execute, render cache, split_table, import cost
# --------------------------------------------------------------------------


def test_parse_once_execute_many() -> None:
    t = parse("{{.N}}-")
    assert isinstance(t, Template)
    assert "".join(t.execute({"N": i}) for i in range(3)) == "0-1-2-"


def test_render_cache_is_bounded() -> None:
    for i in range(gotemplate._CACHE_SIZE + 10):
        assert render("{{.}}" + str(i), "x") == "x" + str(i)
    assert len(gotemplate._CACHE) <= gotemplate._CACHE_SIZE


def test_render_reuses_cached_template() -> None:
    render("{{.}}cached", 1)
    cached = gotemplate._CACHE["{{.}}cached"]
    render("{{.}}cached", 2)
    assert gotemplate._CACHE["{{.}}cached"] is cached


def test_execution_does_not_mutate_data() -> None:
    data = {"L": [3, 1, 2], "M": {"b": 1, "a": 2}}
    r("{{range .M}}{{end}}{{range .L}}{{end}}{{json .}}", data)
    assert data == {"L": [3, 1, 2], "M": {"b": 1, "a": 2}}
    assert list(data["M"]) == ["b", "a"]


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("table {{.ID}}\\t{{.Name}}", (True, "{{.ID}}\t{{.Name}}")),
        ("table", (True, "")),
        ("{{.ID}}\\n", (False, "{{.ID}}\n")),
        ("  {{.ID}}  ", (False, "{{.ID}}")),
        ("{{.ID}}\t{{.Name}}", (False, "{{.ID}}\t{{.Name}}")),
        ("json", (False, "{{json .}}")),
    ],
)
def test_split_table(fmt: str, want: tuple[bool, str]) -> None:
    assert split_table(fmt) == want


def test_split_table_output_renders() -> None:
    is_table, body = split_table("table {{.ID}}\\t{{.Name}}")
    assert is_table
    assert render(body, {"ID": "1", "Name": "n"}) == "1\tn"


def test_import_is_light() -> None:
    code = (
        "import sys, hatoba.cli; before = set(sys.modules); import hatoba.cli.gotemplate; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m in ('re', 'typing', 'json', 'string', 'urllib.parse', 'dataclasses')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
