"""Official-style base images built without Docker Hub: `hatoba image bootstrap NAME`.

busybox: Debian's static busybox with a symlink per applet. hello-world: a tiny static ELF
written here byte by byte (no compiler needed). debian:bookworm(-slim), python:3.11-slim and
redis:7: mmdebstrap from Debian's archive (hatoba.images.recipes.debian). Layers are built
deterministically (sorted entries, fixed owners and mtimes), so the same inputs always give
the same image id.

For the pull path: `recipe_for(ref)` says which recipe builds a reference (None if none),
`hint(ref)` is the sentence telling the user how to build it, and `bootstrap(store, ref,
progress)` builds it and tags every alias of the recipe.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hatoba.errors import InvalidParameter, NotFound
from hatoba.golang import rfc3339
from hatoba.images import reference
from hatoba.images.recipes import debian
from hatoba.images.store import Image, ImageStore, default_config

HELLO_EPOCH = 1767225600  # 2026-01-01T00:00:00Z

HELLO_TEXT = """
Hello from hatoba!
This message shows that your installation appears to be working correctly.

To generate this message, hatoba took the following steps:
 1. The hatoba client contacted the hatoba daemon.
 2. The daemon created a new container from the "hello-world" image,
    which runs the executable that produced the output you are reading.
 3. The daemon streamed that output to the client, which sent it
    to your terminal.

To try something more ambitious, you can run a shell in a busybox container with:
 $ hatoba run -it busybox sh

"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n"

Progress = Callable[[str], None]


def hello_elf(message: bytes) -> bytes:
    """A static x86-64 ELF executable that writes `message` to stdout and exits 0."""
    base = 0x400000
    code = (b"\xb8\x01\x00\x00\x00"            # mov eax, 1 (write)
            b"\xbf\x01\x00\x00\x00"            # mov edi, 1
            b"\x48\x8d\x35" + struct.pack("<i", 16)  # lea rsi, [rip+16] -> message
            + b"\xba" + struct.pack("<I", len(message))  # mov edx, len
            + b"\x0f\x05"                      # syscall
            b"\xb8\x3c\x00\x00\x00"            # mov eax, 60 (exit)
            b"\x31\xff"                        # xor edi, edi
            b"\x0f\x05")                       # syscall
    assert len(code) == 33
    ehsize, phsize = 64, 56
    total = ehsize + phsize + len(code) + len(message)
    entry = base + ehsize + phsize
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, entry, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return eh + ph + code + message


def _is_static_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            h = f.read(64)
            if h[:4] != b"\x7fELF" or h[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", h, 32)
            phentsize, phnum = struct.unpack_from("<HH", h, 54)
            f.seek(phoff)
            for _ in range(phnum):
                if struct.unpack("<I", f.read(phentsize)[:4])[0] == 3:  # PT_INTERP
                    return False
            return True
    except OSError:
        return False


def _find_busybox(tmp: str, progress: Progress) -> tuple[str, str]:
    """Path of a static busybox binary and its Debian version."""
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if _is_static_elf(p):
            ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "busybox-static"],
                                 capture_output=True, text=True).stdout.strip()
            return p, ver or "unknown"
    progress("Downloading busybox-static from the Debian archive")
    r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=tmp, capture_output=True, text=True)
    debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    if r.returncode != 0 or not debs:
        raise NotFound("busybox-static is not installed and could not be downloaded: " + r.stderr.strip())
    subprocess.run(["dpkg-deb", "-x", debs[0], os.path.join(tmp, "x")], check=True)
    ver = debs[0].split("_")[1] if "_" in debs[0] else "unknown"
    return os.path.join(tmp, "x", "bin", "busybox"), ver


class _TarBuilder:
    """Deterministic tar: fixed mtime, root owner, entries in the order added (callers sort)."""

    def __init__(self, mtime: int):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.mtime = mtime

    def _info(self, name: str, type_: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = type_, mode, self.mtime, 0, 0, "", ""
        return ti

    def dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def bootstrap_busybox(store: ImageStore, progress: Progress) -> Image:
    with tempfile.TemporaryDirectory(prefix="hatoba-bootstrap-") as tmp:
        path, version = _find_busybox(tmp, progress)
        mtime = int(os.stat(path).st_mtime)
        with open(path, "rb") as f:
            binary = f.read()
        applets = subprocess.run([path, "--list"], capture_output=True, text=True, check=True).stdout.split()
    progress(f"Building busybox from busybox-static {version} ({len(applets)} applets)")
    t = _TarBuilder(mtime)
    for d in ("bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/sbin", "var", "var/spool",
              "var/spool/mail", "var/www"):
        t.dir(d, 0o1777 if d == "tmp" else (0o700 if d == "root" else 0o755))
    t.file("bin/busybox", binary, 0o755)
    for a in sorted(set(applets) - {"busybox"}):
        t.symlink(f"bin/{a}", "busybox")
    t.file("etc/group", GROUP.encode())
    t.file("etc/passwd", PASSWD.encode())
    diff_id = store.add_layer(io.BytesIO(t.bytes()))
    created = rfc3339(mtime)
    cfg = default_config([diff_id], cmd=["sh"], created=created,
                         created_by="hatoba image bootstrap busybox",
                         extra={"Labels": {"org.hatoba.recipe": "busybox",
                                           "org.hatoba.source": f"debian:busybox-static={version}"}})
    return store.create(cfg, tag="busybox:latest")


def bootstrap_hello_world(store: ImageStore, progress: Progress) -> Image:
    import platform

    if platform.machine() != "x86_64":
        raise InvalidParameter("hello-world can only be bootstrapped on x86_64")
    progress("Building hello-world (a static x86-64 binary)")
    t = _TarBuilder(HELLO_EPOCH)
    t.file("hello", hello_elf(HELLO_TEXT.encode()), 0o755)
    diff_id = store.add_layer(io.BytesIO(t.bytes()))
    cfg = default_config([diff_id], cmd=["/hello"], created=rfc3339(HELLO_EPOCH), env=[
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        created_by="hatoba image bootstrap hello-world",
        extra={"Labels": {"org.hatoba.recipe": "hello-world"}})
    return store.create(cfg, tag="hello-world:latest")


@dataclass(frozen=True)
class Recipe:
    name: str                                   # canonical tag, e.g. "debian:bookworm-slim"
    aliases: tuple[str, ...]                    # more tags given to the same image
    summary: str
    build: Callable[[ImageStore, Progress], Image]

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _debian_builder(r: debian.DebianRecipe) -> Callable[[ImageStore, Progress], Image]:
    return lambda store, progress: debian.build(store, r, progress)


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    *[Recipe(d.name, d.aliases, d.summary, _debian_builder(d)) for d in debian.DEBIAN_RECIPES],
    Recipe("busybox:latest", (), "Debian's static busybox with a symlink per applet", bootstrap_busybox),
    Recipe("hello-world:latest", (), "a tiny static x86-64 program printing a greeting", bootstrap_hello_world),
]}

_BY_TAG: dict[str, str] = {tag: r.name for r in RECIPES.values() for tag in r.tags}
_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in RECIPES}


def recipe_for(ref: str) -> str | None:
    """The name of the recipe that builds `ref` (`debian` → `debian:bookworm`), or None.

    Only Docker Hub's official names match (`redis`, `docker.io/library/redis:7`), never a digest."""
    try:
        r = reference.parse(ref)
    except InvalidParameter:
        return None
    if r.digest or r.domain != reference.DEFAULT_DOMAIN or not r.path.startswith("library/"):
        return None
    return _BY_TAG.get(r.familiar())


def hint(ref: str) -> str:
    """How to get `ref` without a registry, as a sentence for an error message; "" if no recipe builds it."""
    name = recipe_for(ref)
    if name is None:
        return ""
    want = reference.parse(ref).familiar()
    what = "from Debian packages" if name.split(":")[0] in ("debian", "python", "redis") else "locally"
    return f"hatoba can build {want} {what}: run 'hatoba image bootstrap {want}'"


def known() -> str:
    return ", ".join(sorted(_BY_TAG))


def bootstrap(store: ImageStore, name: str, progress: Progress) -> Image:
    """Build the image of the recipe for `name` and tag all its aliases; returns the image.

    Blocking (20-60 s for the mmdebstrap recipes): run it in a thread. `progress` is called from
    that thread with one line at a time. For a pull that no registry serves, when the daemon's
    `bootstrap_missing_images` is set: `if bootstrap.recipe_for(ref): bootstrap.bootstrap(...)`."""
    key = recipe_for(name)
    if key is None:
        raise NotFound(f"no bootstrap recipe for {name!r}; known: {known()}")
    recipe = RECIPES[key]
    # one build of a recipe at a time (a second caller rebuilds: same result); what the build stores
    # is held by its lease until the image is recorded
    with _locks[key], store.lease(f"bootstrap {key}"):
        img = recipe.build(store, progress)
        for tag in recipe.tags:
            store.tag(img.id, tag)
    if recipe.aliases:
        progress(f"Tagged {img.id[7:19]} as {', '.join(recipe.tags)}")
    return img
