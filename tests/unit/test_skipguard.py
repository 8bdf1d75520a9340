"""The skip guard (tests/skipguard.py): its allow-list logic, and whole pytest runs with it.

The runs are inner pytest processes on small generated test files, with the plugin loaded by ``-p``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)
import skipguard  # noqa: E402
from skipguard import AllowedSkip, Skip, unexpected  # noqa: E402

# --------------------------------------------------------------------------- the logic


def test_unexpected() -> None:
    calls = []

    def yes() -> bool:
        calls.append("yes")
        return True

    allowed = [AllowedSkip(r"needs the moon", yes, "moon"), AllowedSkip(r"needs a sun", lambda: False, "no sun")]
    skips = [Skip("a::t1", "needs the moon (tonight)"), Skip("a::t2", "needs the moon"),
             Skip("a::t3", "needs root"), Skip("a::t4", "needs a sun"), Skip("a::t5", "flaky", "xfail")]
    out = unexpected(skips, allowed)
    assert [(s.nodeid, why.split(" (")[0]) for s, why in out] == [
        ("a::t3", "not on the allow-list"),
        ("a::t4", "on the allow-list, but not allowed on this machine"),
        ("a::t5", "not on the allow-list"),
    ]
    assert calls == ["yes"]  # each entry's check runs once
    assert unexpected([], allowed) == []


def test_dockerpy_entry_follows_the_harness(tmp_path, monkeypatch) -> None:
    skip = [Skip("t", "needs ../shared/peers/dockerpy (absent)")]
    monkeypatch.setenv("DOCKERPY_PEER", str(tmp_path / "nothing"))
    assert unexpected(skip) == []
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    monkeypatch.setenv("DOCKERPY_PEER", str(tmp_path))
    assert skipguard.dockerpy_harness() == str(tmp_path)
    assert len(unexpected(skip)) == 1  # the harness is there: its tests must run


def test_swagger_entry_follows_the_reference(monkeypatch, tmp_path) -> None:
    skip = [Skip("t", "the swagger (../shared/reference) is not here")]
    (tmp_path / "checkout").mkdir()
    monkeypatch.setattr(skipguard, "REPO", str(tmp_path / "checkout"))
    assert skipguard.swagger_absent() and unexpected(skip) == []
    ref = tmp_path / "shared" / "reference" / "engine-api"
    ref.mkdir(parents=True)
    (ref / "swagger-v1.41.yaml").write_text("swagger: '2.0'\n")
    assert not skipguard.swagger_absent() and len(unexpected(skip)) == 1


def test_host_requirements_name_what_is_missing(monkeypatch) -> None:
    monkeypatch.setenv("HATOBA_TEST_DOCKER", "/nonexistent/docker")
    problems = skipguard.missing_host_requirements()
    assert any("no docker CLI (/nonexistent/docker" in p for p in problems), problems
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert any(p.startswith("not running as root") for p in skipguard.missing_host_requirements())


# --------------------------------------------------------------------------- whole runs

SAMPLE = '''
import pytest

def test_ok():
    pass

def test_skips():
    pytest.skip(REASON)
'''


def _run(tmp_path, reason: str, *opts: str, module_skip: bool = False,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    body = SAMPLE.replace("REASON", repr(reason))
    if module_skip:
        body = f"import pytest\npytest.skip({reason!r}, allow_module_level=True)\n" + body
    (tmp_path / "test_sample.py").write_text(body)
    full_env = dict(os.environ, PYTHONPATH=TESTS, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "skipguard", "-p", "no:cacheprovider", "-q",
                           "--rootdir", str(tmp_path), *opts, str(tmp_path)],
                          capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=120)


def test_run_fails_on_a_skip_not_on_the_list(tmp_path) -> None:
    p = _run(tmp_path, "integration tests need root, runc and conmon", "--strict-skips")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "skip guard" in p.stdout
    assert "test_sample.py::test_skips: integration tests need root, runc and conmon  -- not on the allow-list" \
        in p.stdout
    assert "1 passed, 1 skipped" in p.stdout


def test_run_fails_on_a_module_skip(tmp_path) -> None:
    p = _run(tmp_path, "mmdebstrap is not installed", "--strict-skips", module_skip=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "test_sample.py: mmdebstrap is not installed  -- not on the allow-list" in p.stdout


def test_run_passes_with_an_allowed_skip(tmp_path) -> None:
    reason = "needs ../shared/peers/dockerpy (see its README)"
    p = _run(tmp_path, reason, "--strict-skips", env={"DOCKERPY_PEER": str(tmp_path / "nothing")})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "skip guard" not in p.stdout
    # the same skip where the harness is present fails the run
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "harness" / "run.sh").chmod(0o755)
    p = _run(tmp_path, reason, "--strict-skips", env={"DOCKERPY_PEER": str(tmp_path / "harness")})
    assert p.returncode == 1 and "not allowed on this machine" in p.stdout, p.stdout + p.stderr


def test_run_without_the_option_only_skips(tmp_path) -> None:
    p = _run(tmp_path, "integration tests need root, runc and conmon")
    assert p.returncode == 0, p.stdout + p.stderr


def test_run_keeps_a_failure_a_failure(tmp_path) -> None:
    (tmp_path / "test_fail.py").write_text("def test_fail():\n    assert 0\n")
    p = _run(tmp_path, "not on the list", "--strict-skips")
    assert p.returncode == 1 and "skip guard" in p.stdout


def test_require_host_stops_with_a_clear_message(tmp_path) -> None:
    p = _run(tmp_path, "x", "--require-host", env={"HATOBA_TEST_DOCKER": "/nonexistent/docker"})
    assert p.returncode == pytest.ExitCode.USAGE_ERROR, p.stdout + p.stderr
    assert "this host cannot run the whole test suite" in p.stderr and "no docker CLI" in p.stderr
    assert "passed" not in p.stdout
