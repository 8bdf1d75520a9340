"""Leases: what the operations in progress hold, so that garbage collection leaves it alone
(containerd's idea).

An operation that writes blobs or unpacks layers (pull, load, import, commit, bootstrap) takes a
lease first, and every blob (`CONTENT`, by digest) and unpacked layer (`SNAPSHOT`, by chain id) it
writes or relies on joins the lease *before* it appears in the store (`ContentStore.ingest`'s
`claim`). While the lease lives, the garbage collector keeps what it holds even though no image
references it yet; the operation records its image (which then references them) and ends the lease.

A lease is a row in the metadata DB (its resources are rows too), owned by the running daemon. The
daemon holds the data-root lock, so at the next start no lease of a previous run can be alive:
`expire_all` drops their rows (returning what interrupted operations held) and the start-up
collection removes whatever they left that nothing references. Which leases are alive is known
from memory; the rows are the record of what a crash interrupted.

The current operation's lease travels in a context variable, as containerd's travels in its ctx:
code that stores a blob for some operation need not pass the lease down, and `asyncio.to_thread`
carries it into worker threads. `current()` is that lease (or None).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hatoba.db import Database

log = logging.getLogger("hatoba.storage")

CONTENT = "content"
SNAPSHOT = "snapshot"
KINDS = (CONTENT, SNAPSHOT)

_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("hatoba_lease", default=None)


def current() -> Lease | None:
    """The lease of the operation this code runs for, if any."""
    return _current.get()


class Lease:
    """One operation's hold on blobs and unpacked layers."""

    def __init__(self, leases: Leases, id: str, what: str):
        self.id = id
        self.what = what
        self._leases = leases
        self.resources: dict[str, set[str]] = {k: set() for k in KINDS}
        self.released = False

    def add(self, kind: str, *keys: str) -> None:
        """Hold `keys` (of `kind`) until the lease ends."""
        self._leases.add(self, kind, keys)

    def content(self, *digests: str) -> None:
        self.add(CONTENT, *digests)

    def snapshot(self, *chain_ids: str) -> None:
        self.add(SNAPSHOT, *chain_ids)

    def __repr__(self) -> str:
        return f"<Lease {self.id} {self.what!r}>"


class Leases:
    """The live leases of this daemon and their rows in the metadata DB.

    `lock` is held while a resource joins a lease and by a garbage collection from its check of
    `held` to its last deletion, so nothing can join a lease between the check and the deletion."""

    def __init__(self, db: Database):
        self.db = db
        self.lock = threading.RLock()
        self._live: dict[str, Lease] = {}
        self._count: dict[tuple[str, str], int] = {}

    @contextmanager
    def lease(self, what: str) -> Iterator[Lease]:
        """A new lease for the block, current for the code it runs; ended on the way out."""
        lease = self.create(what)
        token = _current.set(lease)
        try:
            yield lease
        finally:
            _current.reset(token)
            self.release(lease)

    def create(self, what: str) -> Lease:
        lease = Lease(self, secrets.token_hex(8), what)
        with self.lock:
            self._live[lease.id] = lease
        doc = {"what": what, "created": time.time(), "pid": os.getpid()}
        with self.db.tx() as c:
            c.execute("INSERT INTO leases (id, doc) VALUES (?,?)", (lease.id, json.dumps(doc)))
        return lease

    def add(self, lease: Lease, kind: str, keys: tuple[str, ...]) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown lease resource kind {kind!r}")
        new = []
        with self.lock:
            if lease.released:
                raise RuntimeError(f"{lease!r} has ended")
            held = lease.resources[kind]
            for k in keys:
                if k not in held:
                    held.add(k)
                    self._count[(kind, k)] = self._count.get((kind, k), 0) + 1
                    new.append(k)
        if new:
            with self.db.tx() as c:
                c.executemany("INSERT OR IGNORE INTO lease_resources (lease, kind, key) VALUES (?,?,?)",
                              [(lease.id, kind, k) for k in new])

    def release(self, lease: Lease) -> None:
        """End the lease: what it held is no longer kept for it."""
        with self.lock:
            if lease.released:
                return
            lease.released = True
            self._live.pop(lease.id, None)
            for kind, keys in lease.resources.items():
                for k in keys:
                    n = self._count.get((kind, k), 0) - 1
                    if n > 0:
                        self._count[(kind, k)] = n
                    else:
                        self._count.pop((kind, k), None)
        with self.db.tx() as c:
            c.execute("DELETE FROM lease_resources WHERE lease=?", (lease.id,))
            c.execute("DELETE FROM leases WHERE id=?", (lease.id,))

    def holds(self, kind: str, key: str) -> bool:
        with self.lock:
            return (kind, key) in self._count

    def held(self, kind: str) -> set[str]:
        """Everything of `kind` some live lease holds."""
        with self.lock:
            return {k for (kd, k) in self._count if kd == kind}

    def live(self) -> list[Lease]:
        with self.lock:
            return list(self._live.values())

    def expire_all(self) -> list[dict]:
        """Drop the rows of leases that are not alive in this process (at start: every row, since no
        other daemon can hold the data root); returns them, each with what it held."""
        with self.lock:
            alive = set(self._live)
        out = []
        rows = self.db.rows("SELECT id, doc FROM leases")
        for lid, doc in rows:
            if lid in alive:
                continue
            res = self.db.rows("SELECT kind, key FROM lease_resources WHERE lease=?", lid)
            info = json.loads(doc)
            info["id"] = lid
            info["resources"] = {k: sorted(key for kind, key in res if kind == k) for k in KINDS}
            out.append(info)
            with self.db.tx() as c:
                c.execute("DELETE FROM lease_resources WHERE lease=?", (lid,))
                c.execute("DELETE FROM leases WHERE id=?", (lid,))
        return out
