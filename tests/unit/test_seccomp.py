"""Unit tests of hatoba.runtime.seccomp (Docker profile format → OCI linux.seccomp)."""

from __future__ import annotations

import json

import pytest

from hatoba.runtime import seccomp
from hatoba.runtime.seccomp import (
    SeccompError,
    docker_default_profile,
    kernel_version,
    load_profile,
    native_arch,
)

DEFAULT_CAPS = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
}
NEW_KERNEL = (6, 1)


def names(profile: dict) -> set[str]:
    return {n for r in profile["syscalls"] for n in r["names"]}


def allowed_unconditionally(profile: dict) -> set[str]:
    return {
        n
        for r in profile["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
        for n in r["names"]
    }


def test_default_profile_header_x86_64() -> None:
    p = docker_default_profile(DEFAULT_CAPS, "x86_64", NEW_KERNEL)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert "archMap" not in p
    json.dumps(p)


def test_default_profile_other_arches() -> None:
    assert docker_default_profile(DEFAULT_CAPS, "aarch64", NEW_KERNEL)["architectures"] == [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ]
    assert docker_default_profile(DEFAULT_CAPS, "riscv64", NEW_KERNEL)["architectures"] == [
        "SCMP_ARCH_RISCV64"
    ]
    assert "architectures" not in docker_default_profile(DEFAULT_CAPS, "sparc64", NEW_KERNEL)


def test_docker_only_keys_dropped() -> None:
    p = docker_default_profile(DEFAULT_CAPS, "x86_64", NEW_KERNEL)
    for rule in p["syscalls"]:
        assert not set(rule) & {"comment", "includes", "excludes", "name"}
        assert rule["names"] and rule["action"]


def test_default_caps_filtering() -> None:
    p = docker_default_profile(DEFAULT_CAPS, "x86_64", NEW_KERNEL)
    allowed = allowed_unconditionally(p)
    assert {"read", "write", "execve", "chroot"} <= allowed  # chroot: CAP_SYS_CHROOT is a default cap
    # CAP_SYS_ADMIN-only syscalls are absent; the non-admin clone rule (with a flags mask) is present
    assert "mount" not in names(p)
    assert "unshare" not in allowed
    clone_rules = [r for r in p["syscalls"] if "clone" in r["names"]]
    assert len(clone_rules) == 1 and clone_rules[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    # clone3 returns ENOSYS without CAP_SYS_ADMIN (glibc then falls back to clone)
    clone3 = [r for r in p["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 and clone3[0]["action"] == "SCMP_ACT_ERRNO" and clone3[0]["errnoRet"] == 38
    assert "ptrace" in allowed  # allowed on >= 4.8 kernels
    assert "reboot" not in names(p)
    assert "arch_prctl" in allowed  # amd64/x32 rule
    assert "sync_file_range2" not in names(p)  # ppc64le/arm only
    assert "s390_pci_mmio_read" not in names(p)


def test_sys_admin_and_other_caps() -> None:
    p = docker_default_profile(
        DEFAULT_CAPS | {"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "SYS_PTRACE"}, "x86_64", NEW_KERNEL
    )
    allowed = allowed_unconditionally(p)
    assert {"mount", "umount2", "unshare", "setns", "clone", "reboot", "process_vm_readv"} <= allowed
    assert not [r for r in p["syscalls"] if r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO"]


def test_min_kernel_filter() -> None:
    old = docker_default_profile(DEFAULT_CAPS, "x86_64", (4, 4))
    new = docker_default_profile(DEFAULT_CAPS, "x86_64", (4, 8))
    assert "ptrace" not in names(old)
    assert "ptrace" in names(new)


def test_arch_filter_arm64() -> None:
    p = docker_default_profile(DEFAULT_CAPS, "aarch64", NEW_KERNEL)
    assert "arch_prctl" not in names(p)
    assert "sync_file_range2" in names(p)


def test_default_json_parsed_once_and_not_mutated() -> None:
    a = docker_default_profile(DEFAULT_CAPS, "x86_64", NEW_KERNEL)
    a["syscalls"][0]["names"].append("bogus")
    a["architectures"].append("X")
    b = docker_default_profile(DEFAULT_CAPS, "x86_64", NEW_KERNEL)
    assert "bogus" not in b["syscalls"][0]["names"]
    assert "X" not in b["architectures"]
    assert seccomp._default_profile_json.cache_info().currsize == 1


def test_load_profile_docker_format() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "comment": "legacy name key"},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_FOWNER"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}},
                {"names": ["x"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "99.0"}},
            ],
        }
    )
    p = load_profile(text, {"CAP_CHOWN"}, "x86_64", NEW_KERNEL)
    assert p == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 1, "names": ["mkdir"]}],
    }


def test_load_profile_oci_format_passthrough() -> None:
    oci = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
    }
    assert load_profile(json.dumps(oci), set(), "x86_64", NEW_KERNEL) == oci


def test_load_profile_errors() -> None:
    with pytest.raises(SeccompError, match="Decoding seccomp profile failed"):
        load_profile("{nope", set())
    with pytest.raises(SeccompError, match="both 'architectures' and 'archMap'"):
        load_profile(
            json.dumps(
                {
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["A"],
                    "archMap": [{"architecture": "A"}],
                }
            ),
            set(),
        )
    with pytest.raises(SeccompError, match="both 'name' and 'names'"):
        load_profile(
            json.dumps(
                {
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"name": "a", "names": ["b"], "action": "X"}],
                }
            ),
            set(),
        )
    with pytest.raises(SeccompError, match="invalid kernel version"):
        load_profile(
            json.dumps(
                {
                    "defaultAction": "A",
                    "syscalls": [{"names": ["a"], "action": "X", "includes": {"minKernel": "4"}}],
                }
            ),
            set(),
            kernel=NEW_KERNEL,
        )


def test_empty_profile_means_disabled() -> None:
    assert load_profile("{}", set()) is None


def test_helpers() -> None:
    assert native_arch("x86_64") == "amd64"
    assert native_arch("aarch64") == "arm64"
    assert native_arch("amd64") == "amd64"
    assert kernel_version("6.18.44-fc-v657") == (6, 18)
    assert kernel_version("3.12-1-amd64") == (3, 12)
    assert isinstance(kernel_version(), tuple)
