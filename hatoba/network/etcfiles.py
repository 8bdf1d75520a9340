"""`/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` of a container.

They are written into the container's data dir at every start and bind-mounted into its rootfs
(rbind, rprivate, read-write), as dockerd does. With `--network host` the host's /etc/hosts is
copied and loopback name servers are kept; otherwise loopback name servers are dropped (they
would point into the container's own namespace) and Google's are the fallback, as dockerd does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from typing import Any

_HOSTS_HEAD = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
               "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]


def hosts_text(hostname: str, domainname: str, extra_hosts: Iterable[str]) -> str:
    """A private namespace's /etc/hosts: loopback names, `--add-host` entries, then the container's name."""
    lines = list(_HOSTS_HEAD)
    for h in extra_hosts:
        host, _, ip = h.partition(":")
        lines.append(f"{ip}\t{host}")
    lines.append(f"127.0.1.1\t{hostname}.{domainname} {hostname}" if domainname else f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf_text(host_text: str, *, dns: list[str], search: list[str], options: list[str],
                     host_mode: bool) -> str:
    """The container's resolv.conf from the host's, with `--dns`, `--dns-search`, `--dns-option` overrides."""
    ns: list[str] = []
    host_search: list[str] = []
    host_opts: list[str] = []
    for line in host_text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            ns.append(parts[1])
        elif parts[0] == "search":
            host_search = parts[1:]
        elif parts[0] == "options":
            host_opts = parts[1:]
    if not host_mode:
        ns = [n for n in ns if not n.startswith("127.") and n != "::1"] or ["8.8.8.8", "8.8.4.4"]
    ns = list(dns) or ns
    search = list(search) or host_search
    options = list(options) or host_opts
    out = [f"nameserver {n}" for n in ns]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _read_host_resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


def write(directory: str, *, hostname: str, domainname: str, host_config: dict[str, Any],
          host_mode: bool) -> list[dict[str, Any]]:
    """Write the three files into `directory`; returns their OCI bind mounts."""
    with open(os.path.join(directory, "hostname"), "w") as f:
        f.write(hostname + "\n")
    if host_mode:
        shutil.copyfile("/etc/hosts", os.path.join(directory, "hosts"))
    else:
        with open(os.path.join(directory, "hosts"), "w") as f:
            f.write(hosts_text(hostname, domainname, host_config.get("ExtraHosts") or []))
    with open(os.path.join(directory, "resolv.conf"), "w") as f:
        f.write(resolv_conf_text(_read_host_resolv_conf(), dns=host_config.get("Dns") or [],
                                 search=host_config.get("DnsSearch") or [],
                                 options=host_config.get("DnsOptions") or [], host_mode=host_mode))
    return [{"destination": f"/etc/{n}", "type": "bind", "source": os.path.join(directory, n),
             "options": ["rbind", "rprivate"]} for n in ("resolv.conf", "hostname", "hosts")]
