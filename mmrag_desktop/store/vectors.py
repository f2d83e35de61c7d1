"""Embeddings in library.db: each photo's vector, the change sequence and tombstones the
HNSW cache replays, the checksum it is compared with, and other models' vectors by content."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..domain.folders import ERROR, OFFLINE, OK, PENDING
from .sql import chunks, marks


class Vectors:
    """Vectors, their change sequence and checksum."""

    def _set_checksum(self, value: int) -> None:
        # Inside the write transaction; kept as text: SQLite's integers are signed 64-bit.
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'checksum'", [str(value)])

    def _full_checksum(self) -> int:
        """The checksum of every stored pair, computed from the rows (migration, switch)."""
        total = 0
        for ids, vectors in self.vectors():
            total = vector_checksum(ids, vectors, total)
        return total

    def changes_since(self, seq: int) -> Changes:
        """What changed after *seq* (call inside :meth:`snapshot`, then read the changed
        vectors with ``vectors(after_seq=seq)`` in the same snapshot)."""
        now = self.seq()
        full = seq < int(self.get_meta("pruned_seq") or 0) or seq > now
        live = None
        if full:
            live = {r[0] for r in self.db.execute(
                "SELECT id FROM photos WHERE vector IS NOT NULL")}
        return Changes(now, int(self.get_meta("checksum") or 0), full,
                       [] if full else self.tombstones_after(seq), live)

    def vector_width(self) -> int | None:
        """The embedding width d of the stored vectors (float32), None when none is stored."""
        row = self.db.execute("SELECT length(vector) FROM photos WHERE vector IS NOT NULL "
                              "LIMIT 1").fetchone()
        return row[0] // 4 if row else None

    def vectors(self, ids: Iterable[int] | None = None, after_seq: int = 0,
                chunk: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stored embeddings in chunks: ((m,) int64 ids, (m, d) float32 vectors).

        Args:
            ids: only these rows; None for all rows with a vector.
            after_seq: only rows changed after this sequence number.
        """
        if ids is None:
            cursor = self.db.execute(
                "SELECT id, vector FROM photos WHERE vector IS NOT NULL AND seq > ? ORDER BY id",
                [after_seq],
            )
            while batch := cursor.fetchmany(chunk):
                yield _unpack(batch)
            return
        id_list = list(ids)
        for part in chunks(id_list):
            batch = self.db.execute(
                f"SELECT id, vector FROM photos WHERE vector IS NOT NULL AND id IN ({marks(part)})",
                part,
            ).fetchall()
            if batch:
                yield _unpack(batch)

    def tombstones_after(self, seq: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM tombstones WHERE seq > ?", [seq])]

    def prune_tombstones(self, upto_seq: int) -> None:
        """Forget tombstones up to *upto_seq* (a saved HNSW file reflects them) but the
        newest :data:`KEEP_TOMBSTONES`. A cache older than what is forgotten then compares
        id sets instead."""
        with self.transaction():
            row = self.db.execute("SELECT seq FROM tombstones ORDER BY seq DESC LIMIT 1 "
                                  "OFFSET ?", [KEEP_TOMBSTONES]).fetchone()
            if row is None:
                return
            upto_seq = min(upto_seq, row[0])
            self.db.execute("DELETE FROM tombstones WHERE seq <= ?", [upto_seq])
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'pruned_seq' "
                            "AND CAST(value AS INTEGER) < ?", [str(upto_seq), upto_seq])

    def checksum(self) -> int:
        """The checksum (:func:`vector_checksum`) of every stored (id, vector) pair."""
        return int(self.get_meta("checksum") or 0)

    def vector_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM photos WHERE vector IS NOT NULL").fetchone()[0]

    def offline_ids(self, limit: int) -> list[int] | None:
        """Ids of photos with a vector on offline roots, or None when there are more than
        *limit* of them."""
        rows = self.db.execute(
            "SELECT id FROM photos WHERE status = ? AND vector IS NOT NULL LIMIT ?",
            [OFFLINE, limit + 1]).fetchall()
        return None if len(rows) > limit else [r[0] for r in rows]

    def vectors_by_hash(self, digests: list[str]) -> dict[str, np.ndarray]:
        """Content hash → its (d,) float32 embedding, for the given contents that have one."""
        out: dict[str, np.ndarray] = {}
        unique = sorted(set(digests))
        for part in chunks(unique):
            for digest, data in self.db.execute(
                    "SELECT hash, vector FROM photos WHERE vector IS NOT NULL AND hash IN "
                    f"({marks(part)})", part):
                out.setdefault(digest, np.frombuffer(data, np.float32))
        return out

    def sample_vectors(self, n: int, seed: int, excluding: set[str]) -> np.ndarray:
        """Embeddings of up to *n* photos drawn at random (reproducibly, by *seed*) from
        those with one, not of the contents *excluding*: (m, d) float32."""
        ids = [i for i, digest in self.db.execute(
            "SELECT id, hash FROM photos WHERE vector IS NOT NULL ORDER BY id")
            if digest not in excluding]
        if len(ids) > n:
            chosen = np.random.default_rng(seed).choice(len(ids), n, replace=False)
            ids = [ids[i] for i in sorted(chosen.tolist())]
        found = [vectors for _, vectors in self.vectors(ids=ids)]
        return np.concatenate(found) if found else np.empty((0, 0), np.float32)

    def copy_embedding(self, source_id: int) -> tuple[dict, np.ndarray]:
        """Fields and vector of a row, to give an identical file its own row."""
        cursor = self.db.execute(
            "SELECT width, height, taken_at, camera_make, camera_model, gps_lat, gps_lon, "
            "duration, vector FROM photos WHERE id = ?", [source_id])
        names = [c[0] for c in cursor.description]
        values = dict(zip(names, cursor.fetchone()))
        vector = np.frombuffer(values.pop("vector"), dtype=np.float32)
        return values, vector

    def switch_model(self, old: str | None, new: str) -> tuple[int, int]:
        """Make *new* the library's model, in one transaction: the embeddings of *old* are
        kept by content hash (switching back restores them), those *new* made before are
        restored, and every other photo waits to be embedded (photos that could not be
        read too: their failure may have been the model's).

        Returns:
            (photos whose embeddings were restored, photos waiting to be embedded).
        """
        db = self.db
        with self.transaction():
            seq = self._next_seq()
            if old is not None:
                db.execute("INSERT OR REPLACE INTO model_vectors(model, hash, vector) "
                           "SELECT ?, hash, vector FROM photos "
                           "WHERE vector IS NOT NULL AND hash IS NOT NULL", [old])
            db.execute("UPDATE photos SET vector = (SELECT m.vector FROM model_vectors m "
                       "WHERE m.model = ? AND m.hash = photos.hash), seq = ?", [new, seq])
            restored = db.execute("SELECT COUNT(*) FROM photos WHERE vector IS NOT NULL"
                                  ).fetchone()[0]
            # ERROR rows too: what made them fail may have been the model
            waiting = db.execute("UPDATE photos SET status = ? WHERE vector IS NULL AND status "
                                 "IN (?, ?, ?)", [PENDING, OK, OFFLINE, ERROR]).rowcount
            db.execute("DELETE FROM model_vectors WHERE model = ? OR hash NOT IN "
                       "(SELECT hash FROM photos WHERE hash IS NOT NULL)", [new])
            db.execute("DELETE FROM tombstones")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('model_id', ?), "
                       "('checksum', ?), ('pruned_seq', ?)",
                       [new, str(self._full_checksum()), str(seq)])
        return restored, waiting


CHECKSUM_MOD = 1 << 64
"""Vector checksums (:func:`vector_checksum`) are sums modulo this."""


KEEP_TOMBSTONES = 10_000
"""The newest tombstones are kept even once the saved HNSW file reflects them, so that the
other caches (the keyword index, another process's HNSW) catch up by replaying deletions
instead of comparing every id."""


def vector_checksum(ids: Iterable[int], vectors: Iterable[bytes | np.ndarray],
                    start: int = 0, sign: int = 1) -> int:
    """Order-independent checksum of (row id, embedding) pairs: the sum modulo
    :data:`CHECKSUM_MOD` of each pair's 64-bit BLAKE2b, added to (*sign* 1) or taken from
    (*sign* -1) the checksum *start*. Adding and removing pairs keeps it current without
    reading the rest, so the database and the HNSW cache each maintain one and compare
    them in O(1). Vectors are (d,) float32 (or their bytes)."""
    total = start
    for row_id, vector in zip(ids, vectors):
        data = vector if isinstance(vector, bytes) else (
            np.ascontiguousarray(vector, dtype=np.float32).tobytes())
        digest = hashlib.blake2b(int(row_id).to_bytes(8, "little", signed=True) + data,
                                 digest_size=8).digest()
        total += sign * int.from_bytes(digest, "little")
    return total % CHECKSUM_MOD


@dataclass
class Changes:
    """What the database changed after some ``seq``, read in one snapshot.

    ``full`` means the tombstones that would say what was deleted are gone (pruned, or the
    database was replaced): the reader must compare id sets instead.
    """

    seq: int
    checksum: int
    full: bool
    deleted: list[int]
    live_ids: set[int] | None  # with ``full``: every id holding a vector


def _unpack(batch: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch])
    return ids, vectors
