"""Container networking: the network namespace a container joins and the files that name its peers.

Until the bridge driver lands, a container gets a private netns with loopback only (runc creates
it), or the host's (`--network host`), none, or another container's (`container:<id>`).

- `sandbox`: which network namespace a container's spec names, from its NetworkMode.
- `etcfiles`: `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` of a container, written into its
  data dir and bind-mounted read-write as dockerd does.
"""
