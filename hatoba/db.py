"""The daemon's metadata store: one SQLite database, every change in a transaction.

Owns the schema. Rows hold JSON documents; the engine and the image store keep in-memory
indexes and write through here so a crash never loses an acknowledged change.

The database holds every container's environment: it is created 0600 before SQLite opens it, and
SQLite gives its `-wal` and `-shm` files the database's mode. Files of an older hatoba are chmodded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags (ref TEXT PRIMARY KEY, image_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (chain_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease_resources (lease TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                                            PRIMARY KEY (lease, kind, key));
"""


class Database:
    """A thin, thread-safe wrapper over sqlite3 in WAL mode."""

    def __init__(self, path: str):
        if path != ":memory:":
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            for p in (path, path + "-wal", path + "-shm"):
                try:
                    if os.stat(p).st_mode & 0o077:
                        os.chmod(p, 0o600)
                except FileNotFoundError:
                    pass
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def all(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r[0]) for r in self._conn.execute(f"SELECT doc FROM {table}")]

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        with self._lock:
            return list(self._conn.execute(sql, args))

    def put_container(self, cid: str, name: str, doc: dict) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?,?,?)",
                      (cid, name, json.dumps(doc)))

    def delete_container(self, cid: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM containers WHERE id=?", (cid,))

    def get_kv(self, key: str) -> str | None:
        r = self.rows("SELECT value FROM kv WHERE key=?", key)
        return r[0][0] if r else None

    def set_kv(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?,?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
