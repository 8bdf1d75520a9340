"""Docker-format seccomp profiles → OCI ``linux.seccomp`` objects.

Docker's profile format (``hatoba/runtime/data/seccomp-default.json`` is Docker's default) extends
the OCI object with an ``archMap`` and with per-rule ``includes``/``excludes`` filters on the
container's capabilities (its *bounding* set), the host architecture and the kernel version. This
module evaluates those filters the way dockerd does and returns a plain OCI object:

* ``architectures``: the ``archMap`` entry for the native arch plus its sub-architectures
  (x86_64 → SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32); a profile that lists
  ``architectures`` itself keeps them (both at once is an error, as in Docker).
* ``syscalls``: rules kept when no ``excludes`` matches and every ``includes`` condition holds.
  Arch names in filters are libseccomp's native names (``amd64``, ``x86``, ``arm64`` …), compared
  with the host's one native name only, like Docker.
* Docker-only keys (``comment``, ``includes``, ``excludes``, the legacy ``name``) are dropped.

``docker_default_profile(caps)`` gives the default profile; ``load_profile(text, caps)`` handles a
user's ``--security-opt seccomp=<json>`` (the docker CLI sends the file's content).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import platform
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

__all__ = ["SeccompError", "docker_default_profile", "load_profile", "native_arch", "kernel_version"]


class SeccompError(ValueError):
    """The seccomp profile is malformed or contradictory."""


# platform.machine() → libseccomp "native" arch name (the strings Docker's profiles use in filters).
_MACHINE_TO_NATIVE = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "arm": "arm",
    "loongarch64": "loong64",
    "mips64": "mips64",
    "mips64el": "mipsel64",
    "mipsel": "mipsle",
    "ppc": "ppc",
    "ppc64": "ppc64",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
    "s390": "s390",
    "s390x": "s390x",
}

# native name → SCMP_ARCH_* (Docker's nativeToSeccomp table).
_NATIVE_TO_SECCOMP = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
}

_DOCKER_ONLY_RULE_KEYS = ("comment", "includes", "excludes", "name")


def native_arch(machine: str | None = None) -> str:
    """libseccomp native arch name for ``machine`` (default: this host), e.g. ``amd64``."""
    m = (machine or platform.machine()).lower()
    if m in _NATIVE_TO_SECCOMP:
        return m
    return _MACHINE_TO_NATIVE.get(m, m)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(kernel, major) of the running kernel, e.g. ``(6, 18)`` for ``6.18.44-fc``."""
    rel = release if release is not None else os.uname().release
    m = re.match(r"(\d+)\.(\d+)", rel)
    if not m:
        raise SeccompError(f"cannot parse kernel version {rel!r}")
    return int(m.group(1)), int(m.group(2))


def _parse_min_kernel(v: Any) -> tuple[int, int] | None:
    if v in (None, ""):
        return None
    if not isinstance(v, str):
        raise SeccompError(f'invalid kernel version: {json.dumps(v)}, expected "<kernel>.<major>"')
    parts = v.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise SeccompError(f'invalid kernel version: "{v}", expected "<kernel>.<major>"')
    kv = (int(parts[0]), int(parts[1]))
    if kv == (0, 0):
        raise SeccompError(
            f'invalid kernel version: "{v}", expected "<kernel>.<major>": version cannot be 0.0'
        )
    return kv


def _norm_caps(caps: Iterable[str]) -> set[str]:
    out = set()
    for c in caps:
        c = c.strip().upper()
        out.add(c if c.startswith("CAP_") else "CAP_" + c)
    return out


@functools.lru_cache(maxsize=1)
def _default_profile_json() -> dict[str, Any]:
    try:
        text = resources.files("hatoba.runtime").joinpath("data/seccomp-default.json").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "seccomp-default.json")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return json.loads(text)


def _convert(
    profile: dict[str, Any],
    caps: Iterable[str],
    arch: str | None,
    kernel: tuple[int, int] | None,
) -> dict[str, Any] | None:
    if not isinstance(profile, dict):
        raise SeccompError("Decoding seccomp profile failed: expected a JSON object")
    caps_set = _norm_caps(caps)
    native = native_arch(arch)
    syscalls_in = profile.get("syscalls") or []
    if not profile.get("defaultAction") and not syscalls_in:
        return None  # Docker: no default action and no syscalls = seccomp disabled
    if profile.get("architectures") and profile.get("archMap"):
        raise SeccompError(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    kver = kernel if kernel is not None else kernel_version()

    out: dict[str, Any] = {}
    for k, v in profile.items():
        if k in ("archMap", "syscalls"):
            continue
        out[k] = copy.deepcopy(v)
    archs = list(out.get("architectures") or [])
    want = _NATIVE_TO_SECCOMP.get(native)
    if want:
        for entry in profile.get("archMap") or []:
            if entry.get("architecture") == want:
                archs.append(entry["architecture"])
                archs.extend(entry.get("subArchitectures") or [])
                break
    if archs:
        out["architectures"] = archs
    else:
        out.pop("architectures", None)

    rules: list[dict[str, Any]] = []
    for call in syscalls_in:
        if not isinstance(call, dict):
            raise SeccompError("Decoding seccomp profile failed: syscall rule is not an object")
        names = call.get("names") or []
        if call.get("name"):
            if names:
                raise SeccompError(
                    "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
                )
            names = [call["name"]]
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if exc.get("arches") and native in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps_set for c in _norm_caps(exc["caps"])):
            continue
        mk = _parse_min_kernel(exc.get("minKernel"))
        if mk is not None and kver >= mk:
            continue
        if inc.get("arches") and native not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps_set for c in _norm_caps(inc["caps"])):
            continue
        mk = _parse_min_kernel(inc.get("minKernel"))
        if mk is not None and kver < mk:
            continue
        rule = {k: copy.deepcopy(v) for k, v in call.items() if k not in _DOCKER_ONLY_RULE_KEYS}
        rule["names"] = list(names)
        if not rule.get("args"):
            rule.pop("args", None)
        rules.append(rule)
    out["syscalls"] = rules
    return out


def docker_default_profile(
    caps: set[str],
    arch: str = platform.machine(),
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Docker's default profile as an OCI ``linux.seccomp`` object for a container with bounding ``caps``."""
    result = _convert(_default_profile_json(), caps, arch, kernel)
    assert result is not None
    return result


def load_profile(
    json_text: str,
    caps: set[str],
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any] | None:
    """Convert a user-supplied profile (Docker format or plain OCI format).

    Returns ``None`` when the profile has neither a ``defaultAction`` nor syscalls (Docker treats
    that as "seccomp disabled"). Raises :class:`SeccompError` on malformed input.
    """
    try:
        profile = json.loads(json_text)
    except (TypeError, ValueError) as e:
        raise SeccompError(f"Decoding seccomp profile failed: {e}") from e
    return _convert(profile, caps, arch, kernel)
