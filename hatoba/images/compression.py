"""Layer compression: reading gzip / zstd / plain tars by their magic bytes, and fast gzip writing.

`open_decompressed` sniffs the stream (registries mislabel media types often enough that dockerd
sniffs too). `gzip_compress` is pigz-style: the input is cut into blocks that threads deflate
at level 1 (zlib releases the GIL), each block primed with the 32 KiB before it, and the pieces
are joined into one gzip member. The output only depends on the input and the settings, so the
same layer always compresses to the same blob.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


def sniff(head: bytes) -> str:
    """'gzip', 'zstd' or 'plain' from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "plain"


class _Gunzip:
    """Streaming gunzip over a file object; handles concatenated members."""

    def __init__(self, f: IO[bytes], head: bytes):
        self._f = f
        self._pending = head
        self._d = zlib.decompressobj(31)
        self._buf = bytearray()
        self._eof = False

    def _raw(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._f.read(_CHUNK)

    def _fill(self) -> None:
        while not self._buf and not self._eof:
            data = self._d.unconsumed_tail or self._raw()
            if not data:
                if not self._d.eof:
                    raise OSError("unexpected end of gzip stream")
                self._eof = True
                return
            self._buf += self._d.decompress(data, 4 * _CHUNK)
            if self._d.eof:
                rest = self._d.unused_data
                self._d = zlib.decompressobj(31)
                rest = rest.lstrip(b"\0")  # padding after a member is allowed
                if rest:
                    self._pending = rest
                else:
                    nxt = self._f.read(_CHUNK)
                    if not nxt:
                        self._eof = True
                    else:
                        self._pending = nxt

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = bytearray()
            while True:
                chunk = self.read(4 * _CHUNK)
                if not chunk:
                    return bytes(out)
                out += chunk
        self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


class _Prefixed:
    def __init__(self, head: bytes, f: IO[bytes]):
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._f.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._f.read(n)


def open_decompressed(f: IO[bytes]) -> IO[bytes]:
    """A readable of the uncompressed bytes of a gzip, zstd or plain stream."""
    head = f.read(4)
    kind = sniff(head)
    if kind == "gzip":
        return _Gunzip(f, head)  # type: ignore[return-value]
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(_Prefixed(head, f), read_size=_CHUNK,
                                                          read_across_frames=True)  # type: ignore[return-value]
    return _Prefixed(head, f)  # type: ignore[return-value]


def open_layer_stream(f: IO[bytes]) -> IO[bytes]:
    """What `apply_layer` should read for a layer blob: zstd is decompressed here; gzip and plain
    are passed on as they are (apply_layer decompresses gzip itself, in its reader thread, with
    ISA-L when it is installed)."""
    head = f.read(4)
    if sniff(head) == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(_Prefixed(head, f), read_size=_CHUNK,
                                                          read_across_frames=True)  # type: ignore[return-value]
    return _Prefixed(head, f)  # type: ignore[return-value]


def _deflate_block(data: bytes, zdict: bytes, level: int, last: bool) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict) if zdict else \
        zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def gzip_compress(src: IO[bytes], write: Callable[[bytes], object], *, level: int = 1,
                  threads: int | None = None, block: int = 1 << 20) -> int:
    """Compress `src` into one gzip member written through `write`; returns the input size."""
    threads = max(1, threads or min(8, os.cpu_count() or 1))
    write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + (b"\x04" if level == 1 else b"\x00") + b"\xff")
    crc = 0
    total = 0
    pending: deque[Future[bytes]] = deque()
    prev_tail = b""
    with ThreadPoolExecutor(threads, thread_name_prefix="gzip") as pool:
        cur = src.read(block)
        while True:
            nxt = src.read(block) if cur else b""
            last = not nxt
            crc = zlib.crc32(cur, crc)
            total += len(cur)
            pending.append(pool.submit(_deflate_block, cur, prev_tail, level, last))
            prev_tail = cur[-32768:]
            while len(pending) > threads * 2 or (pending and pending[0].done()):
                write(pending.popleft().result())
            if last:
                break
            cur = nxt
        while pending:
            write(pending.popleft().result())
    write(crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))
    return total
