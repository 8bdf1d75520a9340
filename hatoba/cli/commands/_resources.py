"""Resource-limit flags shared by `run`/`create` and `update`, and their HostConfig keys."""

from __future__ import annotations

from hatoba.cli.flags import Flag

RESOURCE_FLAGS = [
    Flag("cpu-period", None, "int", help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", None, "int", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
    Flag("cpus", None, "float", help="Number of CPUs"),
    Flag("cpuset-cpus", None, "str", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", None, "str", help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("memory", "m", "bytes", help="Memory limit"),
    Flag("memory-reservation", None, "bytes", help="Memory soft limit"),
    Flag("memory-swap", None, "bytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    Flag("pids-limit", None, "int", help="Tune container pids limit (set -1 for unlimited)"),
]

# HostConfig key → flag value key
RESOURCE_KEYS = (("CpuPeriod", "cpu_period"), ("CpuQuota", "cpu_quota"), ("CpuShares", "cpu_shares"),
                 ("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems"), ("Memory", "memory"),
                 ("MemoryReservation", "memory_reservation"), ("MemorySwap", "memory_swap"),
                 ("PidsLimit", "pids_limit"))
