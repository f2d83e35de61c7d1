"""The library database (SQLite through sqlite-utils): photo metadata and embeddings.

This is the source of truth. Every change to a vector happens in a transaction that takes
the next value of a global change sequence (``seq``): changed rows carry it, deleted rows
leave a tombstone with it. The HNSW cache records the last ``seq`` it holds, so on open it
replays only what came after (see :mod:`mmrag_desktop.vector_index`).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .imaging import PhotoMeta

SCHEMA_VERSION = 1

OK, ERROR, PENDING, OFFLINE = "ok", "error", "pending", "offline"
"""Row states: embedded; could not be read (``error`` holds why); waiting to be
(re-)embedded; on a root folder that is not reachable now."""

_RAW_PREFIX = "\x00raw:"


def path_to_db(path: str) -> str:
    """Paths are TEXT in SQLite, which must be valid UTF-8; a name with undecodable bytes
    (surrogate-escaped by Python) is stored as base64 of its raw bytes behind a NUL marker,
    which no real path can contain."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return _RAW_PREFIX + base64.b64encode(raw).decode("ascii")


def path_from_db(text: str) -> str:
    """Inverse of :func:`path_to_db`."""
    if text.startswith(_RAW_PREFIX):
        return os.fsdecode(base64.b64decode(text[len(_RAW_PREFIX):]))
    return text


def display_path(path: str) -> str:
    """A printable form of *path* (undecodable bytes shown as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class Row:
    """One photo's bookkeeping row (vector not loaded)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str


class Store:
    """The library database. Each thread gets its own connection (SQLite in WAL mode lets
    readers run while one writer commits).

    Raises:
        sqlite3.DatabaseError: the file is not a database (reported to the user as is).
    """

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._init_schema()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts.
            conn.execute("PRAGMA synchronous=NORMAL")
            db = self._local.db = sqlite_utils.Database(conn)
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    def _init_schema(self) -> None:
        db = self.db
        with db.conn:
            db["photos"].create(
                {
                    "id": int, "path": str, "root": str, "size": int, "mtime_ns": int,
                    "hash": str, "width": int, "height": int, "taken_at": str,
                    "camera_make": str, "camera_model": str, "gps_lat": float,
                    "gps_lon": float, "status": str, "error": str, "vector": bytes,
                    "seq": int, "indexed_at": float,
                },
                pk="id", not_null={"path", "root", "status"}, if_not_exists=True,
            )
            db["tombstones"].create({"id": int, "seq": int}, pk="id", if_not_exists=True)
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            db["photos"].create_index(["path"], unique=True, if_not_exists=True)
            for column in ("hash", "seq", "root", "taken_at", "status"):
                db["photos"].create_index([column], if_not_exists=True)
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', '0'), ('schema', ?)",
                [str(SCHEMA_VERSION)],
            )

    # --- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.conn:
            self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def seq(self) -> int:
        """The last change sequence number committed."""
        return int(self.get_meta("seq") or 0)

    def _next_seq(self) -> int:
        # Called inside a write transaction, so the read-increment is atomic.
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='seq'")
        return self.seq()

    # --- reads ----------------------------------------------------------------------------

    def rows_under(self, roots: Iterable[str]) -> dict[str, Row]:
        """Bookkeeping rows of every photo whose root is one of *roots*, keyed by path."""
        roots = list(roots)
        if not roots:
            return {}
        marks = ",".join("?" * len(roots))
        cursor = self.db.execute(
            f"SELECT id, path, size, mtime_ns, hash, status FROM photos WHERE root IN ({marks})",
            roots,
        )
        rows = (Row(r[0], path_from_db(r[1]), *r[2:]) for r in cursor)
        return {row.path: row for row in rows}

    def hashes_with_vectors(self) -> dict[str, int]:
        """Content hash → id of a row holding that photo's embedding."""
        cursor = self.db.execute("SELECT hash, id FROM photos WHERE vector IS NOT NULL")
        return dict(cursor.fetchall())

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
        for start in range(0, len(id_list), 900):  # stay under SQLite's variable limit
            part = id_list[start:start + 900]
            marks = ",".join("?" * len(part))
            batch = self.db.execute(
                f"SELECT id, vector FROM photos WHERE vector IS NOT NULL AND id IN ({marks})",
                part,
            ).fetchall()
            if batch:
                yield _unpack(batch)

    def tombstones_after(self, seq: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM tombstones WHERE seq > ?", [seq])]

    def prune_tombstones(self, upto_seq: int) -> None:
        """Forget tombstones the HNSW cache saved at *upto_seq* already reflects."""
        with self.db.conn:
            self.db.execute("DELETE FROM tombstones WHERE seq <= ?", [upto_seq])

    def vector_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM photos WHERE vector IS NOT NULL").fetchone()[0]

    def any_with_status(self, status: str) -> bool:
        """True when at least one row is in *status* (an index lookup)."""
        return self.db.execute(
            "SELECT EXISTS(SELECT 1 FROM photos WHERE status = ?)", [status]).fetchone()[0] == 1

    def counts(self) -> dict[str, int]:
        """Number of rows per status."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM photos GROUP BY status"))

    def root_counts(self) -> dict[str, dict[str, int]]:
        """Number of rows per root folder and status: ``{root: {status: n}}``."""
        out: dict[str, dict[str, int]] = {}
        cursor = self.db.execute("SELECT root, status, COUNT(*) FROM photos GROUP BY root, status")
        for root, status, n in cursor:
            out.setdefault(root, {})[status] = n
        return out

    def errors(self, limit: int = 1000, root: str | None = None) -> list[tuple[str, str]]:
        """(path, reason) of photos that could not be indexed, optionally under one root."""
        where = "status = ?" + (" AND root = ?" if root is not None else "")
        params = [ERROR] + ([root] if root is not None else [])
        cursor = self.db.execute(
            f"SELECT path, error FROM photos WHERE {where} ORDER BY path LIMIT ?", params + [limit]
        )
        return [(path_from_db(p), e) for p, e in cursor]

    def details(self, ids: list[int]) -> dict[int, dict]:
        """Metadata of the given rows (no vectors), keyed by id; ``path`` decoded."""
        out: dict[int, dict] = {}
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            marks = ",".join("?" * len(part))
            cursor = self.db.execute(
                "SELECT id, path, root, hash, size, mtime_ns, width, height, taken_at, camera_make, "
                f"camera_model, gps_lat, gps_lon, status FROM photos WHERE id IN ({marks})",
                part,
            )
            names = [c[0] for c in cursor.description]
            for values in cursor:
                item = dict(zip(names, values))
                item["path"] = path_from_db(item["path"])
                out[item["id"]] = item
        return out

    def ids_matching(self, where: str, params: list) -> set[int]:
        """Ids of embedded, online rows that satisfy an SQL condition on ``photos``."""
        sql = f"SELECT id FROM photos WHERE vector IS NOT NULL AND status = '{OK}' AND ({where})"
        return {r[0] for r in self.db.execute(sql, params)}

    # --- writes ---------------------------------------------------------------------------

    def write_batch(self, embedded: list[tuple[int | None, dict, np.ndarray]],
                    others: list[tuple[int | None, dict]], deleted: list[int]) -> list[int]:
        """Commit one batch of changes in one transaction, under one new ``seq``.

        Args:
            embedded: (id or None for a new photo, row fields, (d,) float32 vector).
            others: (id or None, row fields) for rows without a new vector (errors, moves,
                touched files); a row that loses its vector gets a tombstone.
            deleted: ids of rows to delete.

        Returns:
            The ids of *embedded* rows, in order (new rows get theirs here).
        """
        db = self.db
        ids: list[int] = []
        with db.conn:
            seq = self._next_seq()
            now = time.time()
            for row_id in deleted:  # first, so that a path can be taken over in this batch
                db.execute("DELETE FROM photos WHERE id = ?", [row_id])
                db.execute("INSERT OR REPLACE INTO tombstones(id, seq) VALUES (?, ?)",
                           [row_id, seq])
            for row_id, fields, vector in embedded:
                fields = _encode_fields(fields) | {
                    "vector": vector.astype(np.float32).tobytes(), "status": OK, "error": None,
                    "seq": seq, "indexed_at": now,
                }
                ids.append(self._put(row_id, fields))
            for row_id, fields in others:
                fields = _encode_fields(fields)
                if fields.get("vector", 0) is None and row_id is not None:
                    db.execute("INSERT OR REPLACE INTO tombstones(id, seq) VALUES (?, ?)",
                               [row_id, seq])
                self._put(row_id, fields)
        return ids

    def _put(self, row_id: int | None, fields: dict) -> int:
        if row_id is None:
            return self.db["photos"].insert(fields).last_pk
        self.db["photos"].update(row_id, fields)
        return row_id

    def copy_embedding(self, source_id: int) -> tuple[dict, np.ndarray]:
        """Fields and vector of a row, to give an identical file its own row."""
        cursor = self.db.execute(
            "SELECT width, height, taken_at, camera_make, camera_model, gps_lat, gps_lon, "
            "vector FROM photos WHERE id = ?", [source_id])
        names = [c[0] for c in cursor.description]
        values = dict(zip(names, cursor.fetchone()))
        vector = np.frombuffer(values.pop("vector"), dtype=np.float32)
        return values, vector

    def set_status(self, root: str, status: str, only: str | None = None) -> int:
        """Set the status of a root's rows (optionally only those now in state *only*)."""
        sql, params = "UPDATE photos SET status = ? WHERE root = ?", [status, root]
        if only:
            sql += " AND status = ?"
            params.append(only)
        with self.db.conn:
            return self.db.execute(sql, params).rowcount

    def delete_root(self, root: str) -> list[int]:
        """Delete every row of a root (tombstoned). Returns the deleted ids."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM photos WHERE root = ?", [root])]
        if ids:
            self.write_batch([], [], ids)
        return ids

    def forget_vectors(self) -> int:
        """Drop every embedding (a different model will re-embed). Returns rows affected."""
        with self.db.conn:
            self.db.execute("DELETE FROM tombstones")
            count = self.db.execute(
                "UPDATE photos SET vector = NULL, seq = NULL, status = ? "
                "WHERE vector IS NOT NULL", [PENDING]).rowcount
        return count


def meta_fields(meta: PhotoMeta) -> dict:
    """Row fields for a photo's metadata."""
    return {
        "width": meta.width, "height": meta.height, "taken_at": meta.taken_at,
        "camera_make": meta.camera_make, "camera_model": meta.camera_model,
        "gps_lat": meta.gps_lat, "gps_lon": meta.gps_lon,
    }


def _encode_fields(fields: dict) -> dict:
    if "path" in fields:
        fields = fields | {"path": path_to_db(fields["path"])}
    return fields


def _unpack(batch: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch])
    return ids, vectors
