"""Tests for hatoba.cli.flags: pflag-compatible parsing, error texts and docker-style help output."""

import pytest

from hatoba.cli.flags import KINDS, Flag, FlagError, FlagSet, HelpRequested, flag_usages, usage

RUN_FLAGS = [
    Flag("detach", "d", "bool", False, "Run container in background and print container ID"),
    Flag("interactive", "i", "bool", False, "Keep STDIN open even if not attached"),
    Flag("tty", "t", "bool", False, "Allocate a pseudo-TTY"),
    Flag("rm", None, "bool", False, "Automatically remove the container when it exits"),
    Flag("env", "e", "list", None, "Set environment variables"),
    Flag("publish", "p", "list", None, "Publish a container's port(s) to the host"),
    Flag("volume", "v", "list", None, "Bind mount a volume"),
    Flag("label", "l", "list", None, "Set meta data on a container"),
    Flag("sysctl", None, "map", None, "Sysctl options"),
    Flag("name", None, "str", None, "Assign a name to the container"),
    Flag("hostname", "h", "str", None, "Container host name"),
    Flag("memory", "m", "bytes", 0, "Memory limit"),
    Flag(
        "memory-swap", None, "bytes", 0, "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"
    ),
    Flag("cpus", None, "float", None, "Number of CPUs"),
    Flag("stop-timeout", None, "int", None, "Timeout (in seconds) to stop a container"),
    Flag("health-interval", None, "duration", 0, "Time between running the check (ms|s|m|h)"),
    Flag("log-driver", None, "str", "json-file", "Logging driver for the container"),
    Flag("secret-knob", None, "str", None, "Not shown", hidden=True),
]

PS_FLAGS = [
    Flag("all", "a", "bool", False, "Show all containers (default shows just running)"),
    Flag("filter", "f", "list", None, "Filter output based on conditions provided"),
    Flag("last", "n", "int", -1, "Show n last created containers (includes all states)"),
    Flag("quiet", "q", "bool", False, "Only display container IDs"),
]


def run_parse(*argv: str) -> tuple[dict, list[str]]:
    return FlagSet(RUN_FLAGS, interspersed=False).parse(list(argv))


def ps_parse(*argv: str) -> tuple[dict, list[str]]:
    return FlagSet(PS_FLAGS).parse(list(argv))


def flag_error(fs_flags: list[Flag], argv: list[str], interspersed: bool = True) -> str:
    with pytest.raises(FlagError) as exc:
        FlagSet(fs_flags, interspersed=interspersed).parse(argv)
    return str(exc.value)


# --- Flag -------------------------------------------------------------------------------------------------


def test_flag_behaves_like_a_dataclass():
    a = Flag("name", None, "str", None, "Assign a name")
    b = Flag(name="name", short=None, kind="str", default=None, help="Assign a name")
    assert a == b
    assert a != Flag("name", None, "str", "x", "Assign a name")
    assert repr(a) == (
        "Flag(name='name', short=None, kind='str', default=None, help='Assign a name', hidden=False)"
    )
    assert a.key == "name"
    assert Flag("log-driver", kind="str").key == "log_driver"


def test_flag_rejects_bad_definitions():
    with pytest.raises(ValueError):
        Flag("x", None, "complex", None)
    with pytest.raises(ValueError):
        Flag("x", "xy", "str", None)
    with pytest.raises(ValueError):
        FlagSet([Flag("a", "x"), Flag("b", "x")])
    with pytest.raises(ValueError):
        FlagSet([Flag("a"), Flag("a")])


def test_kinds():
    assert KINDS == {"bool", "str", "int", "list", "map", "float", "duration", "bytes"}


# --- parsing ----------------------------------------------------------------------------------------------


def test_defaults():
    values, args = run_parse()
    assert args == []
    assert values["detach"] is False
    assert values["env"] == []
    assert values["sysctl"] == []
    assert values["name"] is None
    assert values["log_driver"] == "json-file"
    assert values["memory"] == 0
    assert values["_set"] == set()
    assert "help" not in values


def test_list_default_is_copied():
    fs = FlagSet([Flag("x", None, "list", ["a"])])
    v1, _ = fs.parse([])
    v1["x"].append("b")
    v2, _ = fs.parse([])
    assert v2["x"] == ["a"]
    v3, _ = fs.parse(["--x", "c", "--x", "d"])
    assert v3["x"] == ["c", "d"]  # an explicit value replaces the default, like pflag slices


@pytest.mark.parametrize(
    "argv, key, value",
    [
        (["--name=web"], "name", "web"),
        (["--name", "web"], "name", "web"),
        (["--name="], "name", ""),
        (["--name", "-x"], "name", "-x"),
        (["--name=a=b"], "name", "a=b"),
        (["-h", "box"], "hostname", "box"),
        (["-hbox"], "hostname", "box"),
        (["-h=box"], "hostname", "box"),
        (["-h="], "hostname", "="),
        (["-m", "32m"], "memory", 33554432),
        (["-m1g"], "memory", 1073741824),
        (["--memory=512k"], "memory", 524288),
        (["--memory", "100"], "memory", 100),
        (["--memory-swap", "-1"], "memory_swap", -1),
        (["--cpus", "1.5"], "cpus", 1.5),
        (["--stop-timeout", "10"], "stop_timeout", 10),
        (["--stop-timeout=-1"], "stop_timeout", -1),
        (["--stop-timeout", "0x10"], "stop_timeout", 16),
        (["--stop-timeout", "010"], "stop_timeout", 8),
        (["--stop-timeout", "1_000"], "stop_timeout", 1000),
        (["--health-interval", "10s"], "health_interval", 10.0),
        (["--health-interval=1m30s"], "health_interval", 90.0),
        (["--health-interval", "500ms"], "health_interval", 0.5),
        (["--health-interval", "2h"], "health_interval", 7200.0),
    ],
)
def test_value_forms(argv, key, value):
    values, args = run_parse(*argv)
    assert values[key] == value
    assert type(values[key]) is type(value)
    assert args == []
    assert key in values["_set"]


def test_set_records_both_spellings():
    values, _ = run_parse("--log-driver", "none")
    assert values["_set"] == {"log-driver", "log_driver"}
    assert values["log_driver"] == "none"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-it"], {"interactive": True, "tty": True, "detach": False}),
        (["-itd"], {"interactive": True, "tty": True, "detach": True}),
        (["-d=true"], {"detach": True}),
        (["-d=false"], {"detach": False}),
        (["--rm=false"], {"rm": False}),
        (["--rm=0"], {"rm": False}),
        (["--rm=T"], {"rm": True}),
        (["--rm"], {"rm": True}),
        (["-ite", "A=1"], {"interactive": True, "tty": True, "env": ["A=1"]}),
        (["-itehello"], {"env": ["hello"]}),
        (["-dp", "80:80"], {"detach": True, "publish": ["80:80"]}),
    ],
)
def test_combined_and_bool_forms(argv, expected):
    values, _ = run_parse(*argv)
    for key, value in expected.items():
        assert values[key] == value


def test_bool_does_not_consume_next_arg():
    values, args = ps_parse("--all", "false")
    assert values["all"] is True
    assert args == ["false"]


def test_lists_accumulate():
    values, args = run_parse(
        "-e", "A", "-eB", "--env=C", "--env", "D", "-p", "80:80", "-p8443:443", "-v", "/a:/b", "-l", "x=y",
        "--sysctl", "net.ipv4.ip_forward=1", "--sysctl=kernel.msgmax=1", "alpine",
    )  # fmt: skip
    assert values["env"] == ["A", "B", "C", "D"]
    assert values["publish"] == ["80:80", "8443:443"]
    assert values["volume"] == ["/a:/b"]
    assert values["label"] == ["x=y"]
    assert values["sysctl"] == ["net.ipv4.ip_forward=1", "kernel.msgmax=1"]
    assert args == ["alpine"]


def test_filter_list():
    values, args = ps_parse("--filter", "status=exited", "-f", "label=a=b", "-fname=web")
    assert values["filter"] == ["status=exited", "label=a=b", "name=web"]
    assert args == []


def test_non_interspersed_stops_at_first_positional():
    values, args = run_parse("-d", "--name", "web", "alpine", "ls", "-la", "--name", "x", "--")
    assert values["name"] == "web"
    assert args == ["alpine", "ls", "-la", "--name", "x", "--"]


def test_interspersed_collects_positionals_everywhere():
    values, args = ps_parse("one", "-a", "two", "--last", "3", "three")
    assert values["all"] is True
    assert values["last"] == 3
    assert args == ["one", "two", "three"]


def test_double_dash_ends_flags():
    values, args = ps_parse("-a", "--", "-q", "--last=2", "x")
    assert values["quiet"] is False
    assert values["last"] == -1
    assert args == ["-q", "--last=2", "x"]


def test_lone_dash_is_positional():
    values, args = ps_parse("-", "-q")
    assert args == ["-"]
    assert values["quiet"] is True
    _, args = FlagSet(PS_FLAGS, interspersed=False).parse(["-", "-q"])
    assert args == ["-", "-q"]


def test_empty_string_is_positional():
    _, args = ps_parse("", "-a")
    assert args == [""]


def test_last_value_wins_for_scalars():
    values, _ = ps_parse("-n", "1", "--last=5")
    assert values["last"] == 5


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--foo"], "unknown flag: --foo"),
        (["--foo=bar"], "unknown flag: --foo"),
        (["-z"], "unknown shorthand flag: 'z' in -z"),
        (["-az"], "unknown shorthand flag: 'z' in -z"),
        (["-zq"], "unknown shorthand flag: 'z' in -zq"),
        (["-1"], "unknown shorthand flag: '1' in -1"),
        (["--last"], "flag needs an argument: --last"),
        (["-n"], "flag needs an argument: 'n' in -n"),
        (["-qn"], "flag needs an argument: 'n' in -n"),
        (["--filter"], "flag needs an argument: --filter"),
        (["-f"], "flag needs an argument: 'f' in -f"),
        (
            ["-n", "abc"],
            'invalid argument "abc" for "-n, --last" flag: strconv.ParseInt: parsing "abc": invalid syntax',
        ),
        (
            ["--last="],
            'invalid argument "" for "-n, --last" flag: strconv.ParseInt: parsing "": invalid syntax',
        ),
        (
            ["-n", "99999999999999999999"],
            'invalid argument "99999999999999999999" for "-n, --last" flag: '
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (
            ["-n", "1.5"],
            'invalid argument "1.5" for "-n, --last" flag: strconv.ParseInt: parsing "1.5": invalid syntax',
        ),
        (
            ["-a=yes"],
            'invalid argument "yes" for "-a, --all" flag: strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (["---all"], "bad flag syntax: ---all"),
        (["--=x"], "bad flag syntax: --=x"),
    ],
)
def test_ps_errors(argv, message):
    assert flag_error(PS_FLAGS, argv) == message


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--name"], "flag needs an argument: --name"),
        (["-e"], "flag needs an argument: 'e' in -e"),
        (["-ite"], "flag needs an argument: 'e' in -e"),
        (["-m", "abc"], 'invalid argument "abc" for "-m, --memory" flag: invalid size: \'abc\''),
        (["-m", "1x"], 'invalid argument "1x" for "-m, --memory" flag: invalid suffix: \'x\''),
        (["-m", "-2"], 'invalid argument "-2" for "-m, --memory" flag: invalid size: \'-2\''),
        (
            ["--cpus", "lots"],
            'invalid argument "lots" for "--cpus" flag: strconv.ParseFloat: parsing "lots": invalid syntax',
        ),
        (
            ["--health-interval", "10"],
            'invalid argument "10" for "--health-interval" flag: time: missing unit in duration "10"',
        ),
        (
            ["--health-interval", "abc"],
            'invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"',
        ),
        (
            ["--health-interval", "5y"],
            'invalid argument "5y" for "--health-interval" flag: time: unknown unit "y" in duration "5y"',
        ),
        (
            ["--rm=maybe"],
            'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (
            ["--stop-timeout", 'a"b'],
            'invalid argument "a\\"b" for "--stop-timeout" flag: strconv.ParseInt: parsing "a\\"b": invalid syntax',
        ),
        (["--secret-knob"], "flag needs an argument: --secret-knob"),
    ],
)
def test_run_errors(argv, message):
    assert flag_error(RUN_FLAGS, argv, interspersed=False) == message


def test_hidden_flags_still_parse():
    values, _ = run_parse("--secret-knob", "on")
    assert values["secret_knob"] == "on"


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["--help"], ["-h"], ["-a", "-h"], ["-ah"], ["x", "--help"], ["--help=true"]]
)
def test_help_requested(argv):
    with pytest.raises(HelpRequested):
        ps_parse(*argv)


def test_help_false_is_not_help():
    values, _ = ps_parse("--help=false")
    assert "help" not in values
    assert values["_set"] == set()


def test_help_after_command_is_not_help_when_not_interspersed():
    _, args = run_parse("alpine", "--help")
    assert args == ["alpine", "--help"]


def test_short_h_belongs_to_command_flag_when_defined():
    # `run` uses -h for --hostname, so only --help asks for help
    with pytest.raises(HelpRequested):
        run_parse("--help")
    assert flag_error(RUN_FLAGS, ["-h"], interspersed=False) == "flag needs an argument: 'h' in -h"


def test_errors_win_over_help():
    assert flag_error(PS_FLAGS, ["--help", "--bogus"]) == "unknown flag: --bogus"


def test_command_defined_help_flag_is_a_normal_flag():
    values, _ = FlagSet([Flag("help", None, "bool", False, "custom")]).parse(["--help"])
    assert values["help"] is True


def test_flag_usages_table():
    assert flag_usages(PS_FLAGS) == (
        "  -a, --all           Show all containers (default shows just running)\n"
        "  -f, --filter list   Filter output based on conditions provided\n"
        "  -n, --last int      Show n last created containers (includes all states) (default -1)\n"
        "  -q, --quiet         Only display container IDs\n"
    )


def test_usage_ps():
    text = usage(
        "hatoba ps [OPTIONS]",
        "List containers",
        PS_FLAGS,
        aliases=["hatoba container ls", "hatoba container list", "hatoba container ps", "hatoba ps"],
        width=200,
    )
    assert text == (
        "\n"
        "Usage:  hatoba ps [OPTIONS]\n"
        "\n"
        "List containers\n"
        "\n"
        "Aliases:\n"
        "  hatoba container ls, hatoba container list, hatoba container ps, hatoba ps\n"
        "\n"
        "Options:\n"
        "  -a, --all           Show all containers (default shows just running)\n"
        "  -f, --filter list   Filter output based on conditions provided\n"
        "  -n, --last int      Show n last created containers (includes all states) (default -1)\n"
        "  -q, --quiet         Only display container IDs\n"
    )


def test_usage_run_kinds_defaults_and_hidden():
    text = usage(
        "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container", RUN_FLAGS, width=0
    )
    lines = text.splitlines()
    assert lines[1] == "Usage:  hatoba run [OPTIONS] IMAGE [COMMAND] [ARG...]"
    assert "  -d, --detach                     Run container in background and print container ID" in lines
    assert "      --cpus decimal               Number of CPUs" in lines
    assert "  -m, --memory bytes               Memory limit" in lines
    assert "      --health-interval duration   Time between running the check (ms|s|m|h)" in lines
    assert "      --stop-timeout int           Timeout (in seconds) to stop a container" in lines
    assert (
        '      --log-driver string          Logging driver for the container (default "json-file")' in lines
    )
    assert "      --sysctl map                 Sysctl options (default map[])" in lines
    assert "  -e, --env list                   Set environment variables" in lines
    assert not any("secret-knob" in line for line in lines)


def test_usage_wraps_like_pflag():
    flags = [
        Flag("all", "a", "bool", False, "Show all containers (default shows just running)"),
        Flag("format", None, "str", None, "Format output using a custom template: 'table' prints output in table format with column headers (default)"),
    ]  # fmt: skip
    text = usage("hatoba ps [OPTIONS]", "List containers", flags, width=80)
    assert text.endswith(
        "Options:\n"
        "  -a, --all             Show all containers (default shows just running)\n"
        "      --format string   Format output using a custom template: 'table'\n"
        "                        prints output in table format with column headers\n"
        "                        (default)\n"
    )


def test_usage_multiline_help_and_backquoted_varname():
    flags = [
        Flag("format", None, "str", None, "Format output using a custom `template`:\n'json': Print in JSON")
    ]
    assert flag_usages(flags) == (
        "      --format template   Format output using a custom template:\n"
        "                          'json': Print in JSON\n"
    )


def test_usage_defaults_for_other_kinds():
    flags = [
        Flag("force", "f", "bool", True, "Force"),
        Flag("interval", None, "duration", 30.0, "Interval"),
        Flag("shm-size", None, "bytes", 64 * 1024 * 1024, "Size of /dev/shm"),
        Flag("cpus", None, "float", 2.0, "CPUs"),
        Flag("dns", None, "list", ["1.1.1.1", "8.8.8.8"], "DNS servers"),
        Flag("opt", None, "map", ["b=2", "a=1"], "Options"),
    ]
    assert flag_usages(flags) == (
        "      --cpus decimal        CPUs (default 2)\n"
        "      --dns list            DNS servers (default [1.1.1.1 8.8.8.8])\n"
        "  -f, --force               Force (default true)\n"
        "      --interval duration   Interval (default 30s)\n"
        "      --opt map             Options (default map[a:1 b:2])\n"
        "      --shm-size bytes      Size of /dev/shm (default 64MiB)\n"
    )


def test_usage_management_command():
    text = usage(
        "hatoba container COMMAND",
        "Manage containers",
        [],
        commands=[("ls", "List containers"), ("rm", "Remove one or more containers")],
        width=80,
    )
    assert text == (
        "\n"
        "Usage:  hatoba container COMMAND\n"
        "\n"
        "Manage containers\n"
        "\n"
        "Commands:\n"
        "  ls          List containers\n"
        "  rm          Remove one or more containers\n"
        "\n"
        "Run 'hatoba container COMMAND --help' for more information on a command.\n"
    )
