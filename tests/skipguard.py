"""pytest plugin: a green run means that what this machine should run did run.

``--require-host`` (scripts/test.sh passes it): before anything runs, the session stops with a clear
message (exit status 4) unless it runs as root and finds runc, conmon, the docker CLI, ``ip`` and
``nft``: without them the integration tests would turn into skips.

``--strict-skips`` (scripts/test.sh passes it): every skipped test, skipped module or directory and
xfail must match an entry of `ALLOWED_SKIPS`, each of which says *when* that skip is allowed (its
check runs on this machine at the end of the session). Any other skip fails the run (exit status 1)
and is listed in a "skip guard" section. There is deliberately no other way to skip: a test that
needs something this machine lacks either gets it from scripts/setup.sh or gets an entry here.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_ARCHIVE = "http://deb.debian.org/debian/dists/bookworm/InRelease"


def dockerpy_harness() -> str | None:
    """docker-py's integration-suite harness (``DOCKERPY_PEER``, as scripts/dockerpy.sh takes it, else
    ``../shared/peers/dockerpy`` next to the checkout), or None where it is absent."""
    path = os.environ.get("DOCKERPY_PEER") or os.path.join(os.path.dirname(REPO), "shared", "peers", "dockerpy")
    return path if os.access(os.path.join(path, "run.sh"), os.X_OK) else None


def swagger_absent() -> bool:
    """Docker's Engine API swagger is not where scripts/gen_engine_schema.py looks for it
    (``../shared/reference`` or ``../../shared/reference`` from the checkout)."""
    return not any(os.path.exists(os.path.join(REPO, up, "shared", "reference", "engine-api", "swagger-v1.41.yaml"))
                   for up in ("..", os.path.join("..", "..")))


def debian_archive_unreachable() -> bool:
    try:
        with urllib.request.urlopen(DEBIAN_ARCHIVE, timeout=15) as r:
            return r.status != 200
    except OSError:
        return True


@dataclass(frozen=True)
class AllowedSkip:
    pattern: str  # a regular expression searched in the skip's reason
    allowed: Callable[[], bool]  # is this skip legitimate on this machine now?
    why: str


ALLOWED_SKIPS: list[AllowedSkip] = [
    AllowedSkip(r"needs \.\./shared/peers/dockerpy", lambda: dockerpy_harness() is None,
                "docker-py's suite runs only where its harness is present (DOCKERPY_PEER or "
                "../shared/peers/dockerpy)"),
    AllowedSkip(r"the swagger \(\.\./shared/reference\) is not here", swagger_absent,
                "the committed engine schema is compared with the swagger only where the shared reference is"),
    AllowedSkip(r"the Debian archive \(deb\.debian\.org\) is not reachable", debian_archive_unreachable,
                "building base images needs the Debian archive; allowed only while it is unreachable"),
    AllowedSkip(r"the archive changed between the two builds", lambda: True,
                "the reproducibility check needs the archive to hold still between two builds"),
]


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str
    kind: str = "skipped"  # or "xfail"


def unexpected(skips: list[Skip], allowed: list[AllowedSkip] = ALLOWED_SKIPS) -> list[tuple[Skip, str]]:
    """The skips the allow-list does not permit on this machine, each with why not."""
    out = []
    verdicts: dict[int, bool] = {}  # each entry's check runs at most once
    for s in skips:
        entry = next((i for i, a in enumerate(allowed) if re.search(a.pattern, s.reason)), None)
        if entry is None:
            out.append((s, "not on the allow-list"))
            continue
        if entry not in verdicts:
            verdicts[entry] = bool(allowed[entry].allowed())
        if not verdicts[entry]:
            out.append((s, f"on the allow-list, but not allowed on this machine ({allowed[entry].why})"))
    return out


def _reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    if getattr(report, "wasxfail", None) is not None:
        return str(report.wasxfail) or "xfail"
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        msg = str(lr[2])
    else:
        msg = str(lr)
    return msg.removeprefix("Skipped: ")


def missing_host_requirements() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root: the integration tests start hatobad and run containers with runc "
                        "(run scripts/test.sh as root)")
    for tool in ("runc", "conmon", "ip", "nft"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            problems.append(f"{tool} is not installed (scripts/setup.sh installs it)")
    docker = os.environ.get("HATOBA_TEST_DOCKER") or shutil.which("docker")
    if not docker or not os.path.exists(docker):
        problems.append(f"no docker CLI ({docker or 'docker not on PATH'}; scripts/setup.sh installs Debian's "
                        "docker.io CLI where there is none)")
    return problems


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hatoba")
    g.addoption("--require-host", action="store_true",
                help="stop unless root, runc, conmon, the docker CLI, ip and nft are there")
    g.addoption("--strict-skips", action="store_true",
                help="fail the run for any skip not permitted by tests/skipguard.py's ALLOWED_SKIPS")


class _Guard:
    def __init__(self) -> None:
        self.skips: list[Skip] = []
        self.violations: list[tuple[Skip, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skips.append(Skip(report.nodeid or "<collection>", _reason(report)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            kind = "xfail" if getattr(report, "wasxfail", None) is not None else "skipped"
            self.skips.append(Skip(report.nodeid, _reason(report), kind))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.violations = unexpected(self.skips)
        if self.violations and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001
        if not self.violations:
            return
        tr = terminalreporter
        tr.section("skip guard", sep="=", red=True, bold=True)
        tr.line(f"{len(self.violations)} skip(s) that this machine should not have (tests/skipguard.py):", red=True)
        for s, why in self.violations:
            tr.line(f"  {s.kind} {s.nodeid}: {s.reason}  -- {why}")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--require-host"):
        problems = missing_host_requirements()
        if problems:
            raise pytest.UsageError("this host cannot run the whole test suite:\n  " + "\n  ".join(problems))
    if config.getoption("--strict-skips"):
        config.pluginmanager.register(_Guard(), "hatoba-skip-guard")
