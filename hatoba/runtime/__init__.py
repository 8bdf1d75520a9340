"""Runtime: OCI spec generation, conmon + runc driving, container log files, cgroup stats. The only place that spawns runc/conmon."""
