"""What the image store remembers about registries: its own tables in the metadata DB.

- `layer_blobs`: a compressed layer blob (digest, media type, size) and the diff id it unpacks
  to. A pulled layer is kept only as its compressed blob (extracted per chain id by the
  snapshotter); a pushed one keeps the blob it was compressed to, so a re-push sends the same bytes.
- `blob_sources`: the registry repositories a blob is known to be in (pulled from or pushed to),
  for `Layer already exists` without a HEAD and for cross-repository mounts on push.
- `repo_digests`: `repo@sha256:…` manifest digests of local images (their RepoDigests).
"""

from __future__ import annotations

from dataclasses import dataclass

from hatoba.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_blobs (digest TEXT PRIMARY KEY, diff_id TEXT NOT NULL,
                                        media_type TEXT NOT NULL, size INTEGER NOT NULL,
                                        diff_size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS layer_blobs_diff_id ON layer_blobs (diff_id);
CREATE TABLE IF NOT EXISTS blob_sources (digest TEXT NOT NULL, registry TEXT NOT NULL, repo TEXT NOT NULL,
                                         PRIMARY KEY (digest, registry, repo));
CREATE TABLE IF NOT EXISTS repo_digests (ref TEXT PRIMARY KEY, image_id TEXT NOT NULL);
"""


@dataclass(frozen=True)
class LayerBlob:
    digest: str
    diff_id: str
    media_type: str
    size: int
    diff_size: int  # size of the uncompressed tar


class DistributionMetadata:
    """Thin accessors over the three tables (each change is one transaction)."""

    def __init__(self, db: Database):
        self.db = db
        with db.tx() as c:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)

    # ---- layer blobs ----------------------------------------------------------------------------
    def add_blob(self, digest: str, diff_id: str, media_type: str, size: int, diff_size: int) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO layer_blobs (digest, diff_id, media_type, size, diff_size) "
                      "VALUES (?,?,?,?,?)", (digest, diff_id, media_type, size, diff_size))

    def blob(self, digest: str) -> LayerBlob | None:
        rows = self.db.rows("SELECT digest, diff_id, media_type, size, diff_size FROM layer_blobs WHERE digest=?", digest)
        return LayerBlob(*rows[0]) if rows else None

    def blobs_for(self, diff_id: str) -> list[LayerBlob]:
        rows = self.db.rows("SELECT digest, diff_id, media_type, size, diff_size FROM layer_blobs WHERE diff_id=? "
                            "ORDER BY rowid", diff_id)
        return [LayerBlob(*r) for r in rows]

    def all_blobs(self) -> list[LayerBlob]:
        return [LayerBlob(*r) for r in self.db.rows("SELECT digest, diff_id, media_type, size, diff_size FROM layer_blobs")]

    def forget_blob(self, digest: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM layer_blobs WHERE digest=?", (digest,))
            c.execute("DELETE FROM blob_sources WHERE digest=?", (digest,))

    # ---- where blobs are ------------------------------------------------------------------------
    def add_source(self, digest: str, registry: str, repo: str) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO blob_sources (digest, registry, repo) VALUES (?,?,?)",
                      (digest, registry, repo))

    def sources(self, digest: str, registry: str) -> list[str]:
        return [r[0] for r in self.db.rows("SELECT repo FROM blob_sources WHERE digest=? AND registry=?",
                                           digest, registry)]

    # ---- repo digests ---------------------------------------------------------------------------
    def set_repo_digest(self, ref: str, image_id: str) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO repo_digests (ref, image_id) VALUES (?,?)", (ref, image_id))

    def repo_digests(self, image_id: str) -> list[str]:
        return sorted(r[0] for r in self.db.rows("SELECT ref FROM repo_digests WHERE image_id=?", image_id))

    def image_for_digest(self, ref: str) -> str | None:
        rows = self.db.rows("SELECT image_id FROM repo_digests WHERE ref=?", ref)
        return rows[0][0] if rows else None

    def forget_image(self, image_id: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM repo_digests WHERE image_id=?", (image_id,))
