"""Compressed streams, the one place hatoba reads and writes them: layers, `docker load`/`import`,
pulls and pushes.

Reading sniffs the magic bytes (registries mislabel media types often enough that dockerd sniffs
too): gzip (ISA-L when installed: about 3x zlib's speed), zstd, bzip2, xz or plain. Concatenated
gzip members and zstd frames are read through; padding or garbage after the last one is ignored,
as Go's readers do. Output comes in bounded chunks, so a small bomb cannot take the daemon's memory.
A corrupt stream raises CompressionError.

Writing is `gzip_compress`, pigz-style: the input is cut into blocks that threads deflate at level 1
(zlib releases the GIL), each block primed with the 32 KiB before it, joined into one gzip member.
The output only depends on the input and the settings, so the same layer always compresses to the
same blob.
"""

from __future__ import annotations

import bz2
import lzma
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

try:
    from isal import igzip_lib as _igzip
except ImportError:  # pragma: no cover - isal is a dependency; plain zlib still works
    _igzip = None

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAGIC = {"gzip": GZIP_MAGIC, "zstd": ZSTD_MAGIC, "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}
_ERRORS: tuple[type[BaseException], ...] = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) + (
    (_igzip.IsalError,) if _igzip is not None else ())


class CompressionError(ValueError):
    """A compressed stream is corrupt or ends early."""


def sniff(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or 'plain' from the first bytes (6 suffice) of a stream."""
    for kind, magic in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "plain"


class _Finished:
    """Decompressor stand-in after the last member: produces nothing."""

    eof = True
    needs_input = False
    unused_data = b""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return b""


class Decompressing:
    """The uncompressed bytes of a stream, in chunks of at most `chunk` bytes (`next_chunk`), or as a
    readable file (`read`)."""

    def __init__(self, raw: IO[bytes], *, chunk: int = CHUNK):
        self._raw = raw
        self._chunk = chunk
        head = b""
        while len(head) < 6:
            more = raw.read(6 - len(head))
            if not more:
                break
            head += more
        self.kind = sniff(head)
        self._pending = head
        self._buf = bytearray()
        self._eof = False
        self._zstd: Any = None
        self._dec: Any = None
        if self.kind == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdDecompressor().stream_reader(
                _Prefixed(head, raw), read_size=chunk, read_across_frames=True)
            self._pending = b""
        elif self.kind != "plain":
            self._dec = self._new()

    def _new(self) -> Any:
        if self.kind == "gzip":
            if _igzip is not None:
                return _igzip.IgzipDecompressor(flag=_igzip.DECOMP_GZIP)
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def _raw_read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._raw.read(self._chunk)

    def _step(self, dec: Any, data: bytes) -> bytes:
        try:
            return dec.decompress(data, self._chunk)
        except _ERRORS as e:
            raise CompressionError(f"invalid {self.kind} stream: {e}") from None

    def next_chunk(self) -> bytes:
        """The next chunk of uncompressed data; b"" at the end of the stream."""
        if self._eof:
            return b""
        if self._zstd is not None:
            try:
                out = self._zstd.read(self._chunk)
            except Exception as e:  # noqa: BLE001 - zstandard.ZstdError and its I/O wrappers
                raise CompressionError(f"invalid zstd stream: {e}") from None
            self._eof = not out
            return out
        if self._dec is None:
            out = self._raw_read()
            self._eof = not out
            return out
        while True:
            dec = self._dec
            if isinstance(dec, _Finished):
                self._eof = True
                return b""
            if hasattr(dec, "unconsumed_tail"):  # zlib
                if dec.eof:
                    out = b""
                else:
                    data = dec.unconsumed_tail or self._raw_read()
                    if not data and not dec.unconsumed_tail:
                        raise CompressionError(f"invalid {self.kind} stream: unexpected end")
                    out = self._step(dec, data)
            elif dec.eof:
                out = b""
            elif dec.needs_input:
                data = self._raw_read()
                if not data:
                    raise CompressionError(f"invalid {self.kind} stream: unexpected end")
                out = self._step(dec, data)
            else:
                out = self._step(dec, b"")
            if dec.eof:  # a member ended: another may follow (concatenated gzip members)
                rest = dec.unused_data
                while len(rest) < 3:
                    more = self._raw.read(self._chunk)
                    if not more:
                        break
                    rest += more
                if rest.startswith(_MAGIC[self.kind][:3]):
                    self._pending = rest
                    self._dec = self._new()
                else:
                    self._dec = _Finished()  # trailing padding or garbage is ignored, as Go's readers do
            if out:
                return out

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.next_chunk():
            yield chunk

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = bytearray(self._buf)
            self._buf.clear()
            for chunk in self.chunks():
                out += chunk
            return bytes(out)
        while len(self._buf) < n:
            chunk = self.next_chunk()
            if not chunk:
                break
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def close(self) -> None:
        if self._zstd is not None:
            self._zstd.close()


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


def open_decompressed(f: IO[bytes]) -> Decompressing:
    """A readable of the uncompressed bytes of a gzip, zstd, bzip2, xz or plain stream."""
    return Decompressing(f)


# ---- writing ------------------------------------------------------------------------------------------

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
