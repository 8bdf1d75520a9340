"""Running mmdebstrap and turning its tar output into one image layer, as a stream.

mmdebstrap writes the rootfs as a tar on stdout (sorted, numeric owners, mtimes clamped to
SOURCE_DATE_EPOCH). `filter_layer` re-emits it entry by entry — without the ./dev device
nodes, without the "./" prefix, with fixed mtimes and owner names — and the result goes
straight into `ImageStore.add_layer`: the whole rootfs is never held in memory (only the
member being copied). stderr lines become progress messages.
"""

from __future__ import annotations

import collections
import fnmatch
import os
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from email.utils import parsedate_to_datetime
from typing import IO

from hatoba.errors import HatobaError

# mmdebstrap and the tools it runs (mmtarfilter is `#!/usr/bin/env python3`) must be Debian's,
# never a pyenv shim or a venv first on the daemon's PATH: each shim start costs ~0.3 s per package.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"

Progress = Callable[[str], None]
Sources = list[tuple[str, str]]  # (mirror URI, suite)


def default_sources(suite: str) -> Sources:
    """The suites an official Debian image is built from: SUITE, SUITE-updates, SUITE-security."""
    mirror = os.environ.get("HATOBA_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")
    security = os.environ.get("HATOBA_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security").rstrip("/")
    return [(mirror, suite), (mirror, f"{suite}-updates"), (security, f"{suite}-security")]


def archive_epoch(sources: Sources, timeout: float = 20.0) -> int:
    """The newest `Date:` of the suites' Release files, as a Unix time.

    Used as SOURCE_DATE_EPOCH and as the image's `created`: while the archive is unchanged the
    build is bit-for-bit the same, and when it changes the image id changes with it."""
    dates = []
    for uri, suite in sources:
        last_err: Exception | None = None
        for name in ("InRelease", "Release"):
            url = f"{uri}/dists/{suite}/{name}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - the configured mirror
                    for _ in range(64):
                        line = r.readline()
                        if not line:
                            break
                        if line.startswith(b"Date:"):
                            dates.append(parsedate_to_datetime(line[5:].decode().strip()).timestamp())
                            break
                    else:
                        raise ValueError("no Date field in the first lines")
                last_err = None
                break
            except (OSError, ValueError, urllib.error.URLError) as e:
                last_err = e
        if last_err is not None:
            raise HatobaError(f"cannot read the Release date of {uri} {suite}: {last_err}")
    if not dates:
        raise HatobaError("no Release date found in the archive")
    return int(max(dates))


# ---- the tar filter ---------------------------------------------------------------------------------------

def norm_name(name: str) -> str:
    """`./etc/passwd` → `etc/passwd`; the root entry (`./`, `.`) → ``."""
    n = name
    while n.startswith("./"):
        n = n[2:]
    n = n.lstrip("/").rstrip("/")
    return "" if n == "." else n


def drop_dev(name: str) -> bool:
    """Device nodes and friends under /dev: the runtime provides them (the dir itself stays)."""
    return name.startswith("dev/")


def drop_pycache(name: str) -> bool:
    return "__pycache__" in name.split("/")


def _literal(glob: str) -> str:
    """The part of a glob before its first wildcard."""
    cut = [i for i in (glob.find(c) for c in "*?[\\") if i >= 0]
    return glob[:min(cut)] if cut else glob


def path_filter(rules: Iterable[str]) -> Callable[..., bool]:
    """dpkg's `path-exclude=GLOB` / `path-include=GLOB` as a predicate `skip(name, dir_or_link=False)`.

    As dpkg (src/main/filters.c): the globs match the absolute path as fnmatch(3) without
    FNM_PATHNAME (`*` spans `/`), the last match wins, and a skipped directory or symlink is kept
    when an include pattern's literal part starts with its path (`/usr/share/doc/*/copyright`
    keeps everything that is a directory or symlink under /usr/share/doc). `skip.roots` are the
    directories the exclude patterns can reach."""
    parsed: list[tuple[bool, str]] = []
    for r in rules:
        kind, _, glob = r.partition("=")
        if kind not in ("path-exclude", "path-include"):
            raise ValueError(f"not a dpkg path filter: {r!r}")
        parsed.append((kind == "path-exclude", glob))
    keep_prefixes = [_literal(g).rstrip("/") for ex, g in parsed if not ex]

    def skip(name: str, dir_or_link: bool = False) -> bool:
        path = "/" + name.strip("/")
        verdict = False
        for exclude, glob in parsed:
            if fnmatch.fnmatchcase(path, glob):
                verdict = exclude
        if verdict and dir_or_link and any(path.startswith(p) for p in keep_prefixes):
            return False
        return verdict

    skip.roots = sorted({_literal(g).rsplit("/", 1)[0] or "/" for ex, g in parsed if ex})  # type: ignore[attr-defined]
    return skip


def prune_tree(root: str, rules: Iterable[str]) -> int:
    """Remove from the tree at `root` what dpkg's path filters would not have unpacked; returns the count.

    For mmdebstrap's --extract-hook: its first extraction of the essential packages ignores path
    filters that are not in its own dpkg.cfg.d file, and maintainer scripts must not see those
    files (update-alternatives would link man pages that the image then lacks)."""
    skip = path_filter(rules)
    removed = 0
    for top in skip.roots:  # type: ignore[attr-defined]
        base = os.path.join(root, top.lstrip("/"))
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            rel = os.path.relpath(dirpath, root)
            for f in filenames:
                p = os.path.join(dirpath, f)
                if skip(f"{rel}/{f}", os.path.islink(p)):
                    os.unlink(p)
                    removed += 1
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if os.path.islink(p):
                    if skip(f"{rel}/{d}", True):
                        os.unlink(p)
                        removed += 1
                elif skip(f"{rel}/{d}", True) and not os.listdir(p):
                    os.rmdir(p)
                    removed += 1
    return removed


class _Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def write(self, b: bytes) -> int:
        self.chunks.append(bytes(b))
        self.size += len(b)
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks, self.size = [], 0
        return data


def filter_layer(src: IO[bytes], *, mtime_max: int | None = None,
                 drop: Iterable[Callable[[str], bool]] = (drop_dev,), chunk: int = 1 << 20) -> Iterator[bytes]:
    """Re-emit the tar on `src` as a layer tar, in chunks of about `chunk` bytes.

    Files for which a `drop` predicate holds (on the normalised name) are left out, as are hard
    links to dropped files and the root entry. A directory a predicate drops is only kept when
    something kept lies below it (as dpkg's path-exclude does); this relies on mmdebstrap's order
    (`tar --sort=name`: a directory, then everything below it). Names lose their `./` prefix,
    owner names go (ids stay), mtimes are clamped to `mtime_max`, pax atime/ctime go; xattrs stay."""
    preds = list(drop)
    sink = _Sink()
    out = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    inp = tarfile.open(fileobj=src, mode="r|")  # type: ignore[call-overload]
    dropped: set[str] = set()
    pending: list[tarfile.TarInfo] = []  # dropped directories on the path to the current entry
    for m in inp:
        name = norm_name(m.name)
        if not name:
            continue
        while pending and not name.startswith(pending[-1].name + "/"):
            pending.pop()
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid = m.type, m.mode, m.uid, m.gid
        ti.uname = ti.gname = ""
        ti.mtime = int(m.mtime) if mtime_max is None else min(int(m.mtime), mtime_max)
        ti.devmajor, ti.devminor = m.devmajor, m.devminor
        ti.pax_headers = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        if any(p(name) for p in preds):
            if m.isdir():
                pending.append(ti)
            else:
                dropped.add(name)
            continue
        if m.islnk():
            target = norm_name(m.linkname)
            if target in dropped:
                dropped.add(name)
                continue
            ti.linkname = target
        elif m.issym():
            ti.linkname = m.linkname
        for d in pending:
            out.addfile(d)
        pending.clear()
        if m.isreg():
            ti.size = m.size
            out.addfile(ti, inp.extractfile(m))
        else:
            out.addfile(ti)
        if sink.size >= chunk:
            yield sink.take()
    out.close()
    yield sink.take()


class IterReader:
    """A read()-able file over an iterator of byte chunks."""

    def __init__(self, it: Iterable[bytes]):
        self._it = iter(it)
        self._buf = bytearray()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data = bytes(self._buf) + b"".join(self._it)
            self._buf.clear()
            return data
        while len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


# ---- running mmdebstrap -----------------------------------------------------------------------------------

def mmdebstrap_path() -> str | None:
    return shutil.which("mmdebstrap", path=SYSTEM_PATH)


def _env(epoch: int) -> dict[str, str]:
    env = {"PATH": SYSTEM_PATH, "SOURCE_DATE_EPOCH": str(epoch), "HOME": "/root"}
    for k in ("TMPDIR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


def build_layer(add_layer: Callable[[IO[bytes]], str], *, suite: str, sources: Sources, epoch: int,
                options: list[str], drop: Iterable[Callable[[str], bool]], progress: Progress) -> str:
    """Run mmdebstrap and stream its filtered tar into `add_layer`; returns the layer's diff id."""
    exe = mmdebstrap_path()
    if exe is None:
        raise HatobaError("mmdebstrap is not installed on the daemon's host: apt-get install mmdebstrap")
    mode = "root" if os.geteuid() == 0 else "unshare"
    argv = [exe, f"--mode={mode}", "--format=tar", *options, suite, "-",
            *[f"deb {uri} {s} main" for uri, s in sources]]
    t0 = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=30)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(epoch), close_fds=True)
    assert proc.stdout is not None and proc.stderr is not None

    def pump(f: IO[bytes]) -> None:
        for raw in f:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            tail.append(line)
            if line[:3] in ("I: ", "W: ", "E: "):
                msg = line[3:] if line.startswith("I: ") else line
                if len(msg) > 100:
                    msg = msg[:97] + "..."
                progress(f"[{time.monotonic() - t0:5.1f}s] {msg}")

    reader = threading.Thread(target=pump, args=(proc.stderr,), name="mmdebstrap-stderr", daemon=True)
    reader.start()

    def failed(cause: BaseException | None = None) -> HatobaError:
        reader.join(5)
        detail = "\n".join(tail)
        return HatobaError(f"mmdebstrap failed (exit {proc.returncode})" + (f": {cause}" if cause else "")
                           + (f"\n{detail}" if detail else ""))

    try:
        diff_id = add_layer(IterReader(filter_layer(proc.stdout, mtime_max=epoch, drop=drop)))  # type: ignore[arg-type]
    except BaseException as e:
        if proc.poll() is None:
            proc.terminate()  # mmdebstrap cleans its temporary directory up on SIGTERM
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0 and isinstance(e, (tarfile.TarError, OSError, EOFError)):
            raise failed(e) from e
        raise
    while proc.stdout.read(1 << 16):  # the tar's end padding: let mmdebstrap finish writing
        pass
    proc.stdout.close()
    if proc.wait() != 0:
        raise failed()
    reader.join(5)
    return diff_id


if __name__ == "__main__":  # python -m hatoba.images.recipes.mmdebstrap prune ROOT RULES-FILE (an mmdebstrap hook)
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "prune":
        sys.exit("usage: python -m hatoba.images.recipes.mmdebstrap prune ROOT RULES-FILE")
    with open(sys.argv[3]) as f:
        n = prune_tree(sys.argv[2], [line.strip() for line in f if line.strip()])
    print(f"pruned {n} paths excluded by {sys.argv[3]}", file=sys.stderr)
