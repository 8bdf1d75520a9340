"""Official-style images from Debian packages: debian:bookworm(-slim), python:3.11-slim, redis:7.

Each recipe is one mmdebstrap run (variant minbase, merged /usr) plus a few hooks, giving one
layer. SOURCE_DATE_EPOCH is the archive's newest Release date, so the same recipe gives the
same image id for as long as the archive is unchanged; that date is also the image's `created`.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hatoba.golang import rfc3339
from hatoba.images.recipes import mmdebstrap
from hatoba.images.store import Image, ImageStore, default_config

# bump when a recipe's output changes for the same archive content (it is part of the labels)
RECIPE_VERSION = 1

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LANG = "LANG=C.UTF-8"

SLIM_DPKG = [
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*", "path-exclude=/usr/share/groff/*",
]

SLIM_CFG = "/etc/dpkg/dpkg.cfg.d/docker"  # where the official slim images keep them

# what the official images carry in /etc/apt/apt.conf.d (debuerreotype's "docker" tweaks)
APT_FILES = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'),
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
}

REDIS_ENTRYPOINT = r"""#!/bin/sh
# hatoba's redis image entrypoint, after the official image's docker-entrypoint.sh
set -e

# first arg is `-f` or `--some-option`, or a .conf file: run redis-server with it
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
	# the official image builds redis with protected mode off (the container's network is the
	# boundary); Debian's keeps it on: turn it off unless a config file or the option is given
	case " $* " in
		*" --protected-mode "*) ;;
		*) case "$2" in *.conf) ;; *) set -- "$@" --protected-mode no ;; esac ;;
	esac
	# allow the container to be started with `--user`; as root, step down to the redis user
	if [ "$(id -u)" = '0' ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
"""

REDIS_UID = 999


def upstream_version(v: str) -> str:
    """Debian version → upstream: `5:7.0.15-1~deb12u5` → `7.0.15`, `23.0.1+dfsg-1` → `23.0.1`."""
    v = v.split(":", 1)[1] if ":" in v else v
    m = re.match(r"[0-9][0-9.]*[0-9]|[0-9]", v)
    return m.group(0) if m else v


def debian_config(pkgs: dict[str, str], debver: str) -> dict:
    return {"Env": [PATH, LANG], "Cmd": ["bash"]}


def python_config(pkgs: dict[str, str], debver: str) -> dict:
    py = next((pkgs[p] for p in sorted(pkgs) if re.fullmatch(r"python3\.\d+", p)), pkgs.get("python3", ""))
    env = ["PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", LANG,
           f"PYTHON_VERSION={upstream_version(py)}"]
    if "python3-pip" in pkgs:
        env.append(f"PYTHON_PIP_VERSION={upstream_version(pkgs['python3-pip'])}")
    return {"Env": env, "Cmd": ["python3"]}


def redis_config(pkgs: dict[str, str], debver: str) -> dict:
    return {"Env": [PATH, LANG, f"REDIS_VERSION={upstream_version(pkgs.get('redis-server', ''))}"],
            "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["redis-server"],
            "ExposedPorts": {"6379/tcp": {}}, "Volumes": {"/data": {}}, "WorkingDir": "/data"}


@dataclass(frozen=True)
class DebianRecipe:
    name: str                                   # canonical tag, e.g. "debian:bookworm-slim"
    aliases: tuple[str, ...]
    summary: str
    suite: str = "bookworm"
    slim: bool = True
    include: tuple[str, ...] = ()
    essential_hooks: tuple[str, ...] = ()
    customize_hooks: tuple[str, ...] = ()
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path in image → (text, mode)
    drop_pycache: bool = False
    config: Callable[[dict[str, str], str], dict] = debian_config  # (packages, debian_version) → config

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def drop(self) -> list[Callable[[str], bool]]:
        preds = [mmdebstrap.drop_dev]
        if self.drop_pycache:
            preds.append(mmdebstrap.drop_pycache)
        return preds

    def describe(self) -> str:
        """What the image was made with (its history's created_by)."""
        s = f"mmdebstrap --variant=minbase{' (slim)' if self.slim else ''}"
        if self.include:
            s += f" --include={','.join(self.include)}"
        return f"{s} {self.suite}"

    def options(self, work: str) -> list[str]:
        """mmdebstrap options; `work` is a host directory the hooks may read files from and write facts to."""
        opts = ["--variant=minbase", f"--hook-dir={mmdebstrap.MERGED_USR_HOOKS}",  # merged /usr without usrmerge+perl
                '--aptopt=Acquire::Languages "none"',
                "--dpkgopt=force-unsafe-io"]  # as the official images' docker-apt-speedup
        q = shlex.quote
        if self.slim:
            # The slim path filters go in a dpkg.cfg.d file of their own, not --dpkgopt: mmdebstrap then
            # extracts the essential packages with plain tar instead of a Python mmtarfilter per package
            # (3-8 s of a 25 s build), and one pass of hatoba's own filter removes what that extraction
            # unpacked against the rules before any maintainer script runs.
            rules = q(os.path.join(work, "dpkg-slim"))
            opts.append(f'--setup-hook=install -D -m 0644 {rules} "$1"{SLIM_CFG}')
            opts.append(f'--extract-hook={q(sys.executable)} -m hatoba.images.recipes.mmdebstrap prune "$1" {rules}')
        if self.include:
            opts.append("--include=" + ",".join(self.include))
        opts += [f"--essential-hook={h}" for h in self.essential_hooks]
        hooks = [
            # else the host's resolv.conf and hostname are baked into the image
            'rm -f "$1"/etc/resolv.conf "$1"/etc/hostname',
            'rm -rf "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old "$1"/var/cache/ldconfig/aux-cache',
        ]
        for i, (path, (_, mode)) in enumerate(sorted(self.all_files().items())):
            hooks.append(f'install -D -m {mode:04o} {q(os.path.join(work, f"file{i}"))} "$1"{q(path)}')
        hooks += list(self.customize_hooks)
        # with docker-clean's empty Dir::Cache::pkgcache mmdebstrap's cleanup no longer finds these (74 MB)
        hooks.append('rm -f "$1"/var/cache/apt/*.bin')
        hooks.append("chroot \"$1\" dpkg-query -W -f='${Package}\\t${Version}\\n' > "
                     + q(os.path.join(work, "packages")) + ' && cp "$1"/etc/debian_version '
                     + q(os.path.join(work, "debian_version")))
        opts += [f"--customize-hook={h}" for h in hooks]
        return opts

    def all_files(self) -> dict[str, tuple[str, int]]:
        files = {f"/etc/apt/apt.conf.d/{k}": (v, 0o644) for k, v in APT_FILES.items()}
        files.update(self.files)
        return files

    def write_files(self, work: str) -> None:
        for i, (_, (text, _mode)) in enumerate(sorted(self.all_files().items())):
            with open(os.path.join(work, f"file{i}"), "w") as f:
                f.write(text)
        if self.slim:
            with open(os.path.join(work, "dpkg-slim"), "w") as f:
                f.write("".join(line + "\n" for line in SLIM_DPKG))


def version_of(recipe: DebianRecipe, pkgs: dict[str, str], debver: str) -> str:
    env = dict(e.split("=", 1) for e in recipe.config(pkgs, debver).get("Env") or [])
    return env.get("PYTHON_VERSION") or env.get("REDIS_VERSION") or debver


def image_config(recipe: DebianRecipe, diff_id: str, epoch: int, sources: mmdebstrap.Sources,
                 pkgs: dict[str, str], debver: str) -> dict:
    """The image config: deterministic for the same layer, archive date and package set."""
    created = rfc3339(epoch)
    cc = recipe.config(pkgs, debver)
    cc["Labels"] = {
        "org.hatoba.recipe": recipe.name,
        "org.hatoba.recipe.version": str(RECIPE_VERSION),
        "org.hatoba.archive-date": created,
        "org.hatoba.source": ", ".join(f"{uri} {suite}" for uri, suite in sources),
        "org.opencontainers.image.version": version_of(recipe, pkgs, debver),
    }
    cfg = default_config([diff_id], cmd=cc.get("Cmd"), created=created,
                         created_by=f"hatoba image bootstrap {recipe.name}: {recipe.describe()}",
                         comment=f"hatoba recipe v{RECIPE_VERSION}, Debian {debver}")
    cfg["config"] = cc
    return cfg


REDIS_USER_HOOK = (f"echo 'redis:x:{REDIS_UID}:{REDIS_UID}::/var/lib/redis:/usr/sbin/nologin' >> \"$1\"/etc/passwd"
                   f" && echo 'redis:x:{REDIS_UID}:' >> \"$1\"/etc/group")

DEBIAN_RECIPES = [
    DebianRecipe("debian:bookworm-slim", ("debian:12-slim",),
                 "Debian 12 without docs, man pages and locales, as the official debian:bookworm-slim"),
    DebianRecipe("debian:bookworm", ("debian:12", "debian:latest"),
                 "Debian 12 minbase, as the official debian:bookworm", slim=False),
    DebianRecipe("python:3.11-slim", ("python:3.11-slim-bookworm", "python:3.11", "python:3-slim", "python:3",
                                      "python:latest"),
                 "Debian's Python 3.11 with pip and venv on debian:bookworm-slim",
                 include=("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"),
                 # `pip install` outside a venv works, as in the official image
                 customize_hooks=('rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',),
                 drop_pycache=True, config=python_config),
    DebianRecipe("redis:7", ("redis:7.0", "redis:latest"),
                 "Debian's redis-server 7 on debian:bookworm-slim, set up as the official redis image",
                 include=("redis-server",),
                 # the official image's redis user (999:999), there before the package's postinst looks
                 essential_hooks=(REDIS_USER_HOOK,),
                 customize_hooks=(f'mkdir -p "$1"/data && chown {REDIS_UID}:{REDIS_UID} "$1"/data',),
                 files={"/usr/local/bin/docker-entrypoint.sh": (REDIS_ENTRYPOINT, 0o755)},
                 config=redis_config),
]


def _read_facts(work: str) -> tuple[dict[str, str], str]:
    pkgs: dict[str, str] = {}
    try:
        with open(os.path.join(work, "packages")) as f:
            for line in f:
                name, _, ver = line.rstrip("\n").partition("\t")
                if name:
                    pkgs[name.split(":", 1)[0]] = ver
        with open(os.path.join(work, "debian_version")) as f:
            debver = f.read().strip()
    except OSError:
        debver = ""
    return pkgs, debver


def build(store: ImageStore, recipe: DebianRecipe, progress: Callable[[str], None]) -> Image:
    t0 = time.monotonic()
    sources = mmdebstrap.default_sources(recipe.suite)
    epoch = mmdebstrap.archive_epoch(sources)
    progress(f"Building {recipe.name}: {recipe.describe()}")
    progress(f"Archive date {rfc3339(epoch)} (SOURCE_DATE_EPOCH={epoch})")
    with tempfile.TemporaryDirectory(prefix="hatoba-bootstrap-") as work:
        recipe.write_files(work)
        diff_id = mmdebstrap.build_layer(store.add_layer, suite=recipe.suite, sources=sources, epoch=epoch,
                                         options=recipe.options(work), drop=recipe.drop(), progress=progress)
        pkgs, debver = _read_facts(work)
    size = store.content.size(diff_id)
    progress(f"Layer {diff_id[7:19]}: {size / 1e6:.1f} MB, {len(pkgs)} packages, Debian {debver}")
    img = store.create(image_config(recipe, diff_id, epoch, sources, pkgs, debver), tag=recipe.name)
    progress(f"Built {recipe.name} in {time.monotonic() - t0:.1f}s")
    return img
