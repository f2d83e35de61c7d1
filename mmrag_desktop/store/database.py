"""The library database (SQLite through sqlite-utils): photo metadata and embeddings.

This is the source of truth. Every change to a vector happens in a transaction that takes
the next value of a global change sequence (``seq``): changed rows carry it, deleted rows
leave a tombstone with it, and the same transaction updates a checksum of all (id, vector)
pairs. The HNSW cache records the last ``seq`` it reflects, so it catches up by replaying
only what came after, in this process or another (see :mod:`mmrag_desktop.index.vectors`),
and proves it holds the same vectors by comparing checksums.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from ..core.errors import MmragError
from ..core.paths import db_parent, folder_range, path_from_db, path_to_db
from ..domain.folders import ERROR, OFFLINE, OK, PENDING
from ..media.files import PhotoMeta

SCHEMA_VERSION = 5
"""The database layout this code reads and writes. 1: paths with undecodable bytes stored
as base64 behind a marker; 2: the prefix-preserving path encoding of
:mod:`mmrag_desktop.core.paths`, the vector checksum, the per-model vector archive, root devices;
3: each photo's folder, indexed (a run compares the library with the disk folder by folder);
4: what the understanding pass learned about each photo's content (:mod:`.understanding.passes`);
5: videos: a row's ``duration`` (seconds; NULL for a photo) and its keyframes' embeddings
(``frames``, by model and content hash); personal concepts and their example photos
(:mod:`.domain.concepts`)."""

CHECKSUM_MOD = 1 << 64
"""Vector checksums (:func:`vector_checksum`) are sums modulo this."""
_VARIABLES = 900  # rows per IN (...) list: under SQLite's bound-variable limit
KEEP_TOMBSTONES = 10_000
"""The newest tombstones are kept even once the saved HNSW file reflects them, so that the
other caches (the keyword index, another process's HNSW) catch up by replaying deletions
instead of comparing every id."""


class LibraryVersionError(MmragError, RuntimeError):
    """library.db was written by a newer version of the app."""


def describe_db_error(exc: sqlite3.Error) -> str:
    """A sentence for the user about a failed database operation, by its cause."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return f"the library database refused a change (constraint failed: {text})"
    if "full" in lowered:
        return "the disk holding the library is full: free some space, then run again"
    if "locked" in lowered or "busy" in lowered:
        return ("the library database is locked by another program; close it or wait, "
                "then run again")
    if "readonly" in lowered or "read-only" in lowered:
        return "the library database is read-only: check the permissions of its folder"
    if "disk i/o" in lowered:
        return f"the disk holding the library reported an error: {text}"
    if "not a database" in lowered or "malformed" in lowered:
        return f"the library database is damaged or not a database: {text}"
    return f"the library database failed: {text}"


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
class Row:
    """One photo's bookkeeping row (vector not loaded)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str


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


class Store:
    """The library database. Each thread gets its own connection (SQLite in WAL mode lets
    readers run while one writer commits). A new database file is created private (0600;
    SQLite gives its WAL the same mode); the engine keeps existing ones private.

    Raises:
        LibraryVersionError: the database is newer than this code.
        sqlite3.DatabaseError: the file is not a database (see :func:`describe_db_error`).
    """

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        try:
            # Only ever created here: opening an existing database would be unsafe, since
            # closing any descriptor of a file drops every POSIX lock this process holds on
            # it (SQLite's "How To Corrupt An SQLite Database File", section 2.2).
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        self._init_schema()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite_utils.Database(self._connect())
        return db

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    # --- schema ---------------------------------------------------------------------------

    def _init_schema(self) -> None:
        db = self.db
        with self.transaction():  # two processes opening a new library: one creates it
            if db["meta"].exists():
                version = int(self.get_meta("schema") or 1)
                if version > SCHEMA_VERSION:
                    raise LibraryVersionError(
                        f"{self.path} was written by a newer version of mmrag-desktop "
                        f"(library format {version}; this version reads up to "
                        f"{SCHEMA_VERSION}). Update the app, or use another library folder.")
                if version < SCHEMA_VERSION:
                    self._migrate(version)
                return
            self._create_tables()
            db.execute("INSERT INTO meta(key, value) VALUES ('seq', '0'), ('schema', ?), "
                       "('checksum', '0'), ('pruned_seq', '0')", [str(SCHEMA_VERSION)])

    def _create_tables(self) -> None:
        db = self.db
        db["photos"].create(
            {
                "id": int, "path": str, "root": str, "size": int, "mtime_ns": int,
                "hash": str, "width": int, "height": int, "taken_at": str,
                "camera_make": str, "camera_model": str, "gps_lat": float,
                "gps_lon": float, "status": str, "error": str, "vector": bytes,
                "seq": int, "indexed_at": float, "folder": str, "duration": float,
            },
            pk="id", not_null={"path", "root", "status"}, if_not_exists=True,
        )
        db["tombstones"].create({"id": int, "seq": int}, pk="id", if_not_exists=True)
        db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        # Embeddings of other models, by content: switching the model back restores them.
        db["model_vectors"].create({"model": str, "hash": str, "vector": bytes},
                                   pk=("model", "hash"), if_not_exists=True)
        # Each root's device when it was added: an empty mount point is not an empty folder.
        db["roots"].create({"root": str, "device": int}, pk="root", if_not_exists=True)
        # By content hash, so a moved photo or a copy keeps it; ``seq`` as for photos.
        db["understanding"].create({"hash": str, "kind": str, "version": int, "data": str,
                                    "text": str, "seq": int},
                                   pk=("hash", "kind"), if_not_exists=True)
        db["understanding"].create_index(["seq"], if_not_exists=True)
        db["understanding"].create_index(["kind", "seq"], if_not_exists=True)
        # A video's keyframes (:mod:`.media.video`): time in seconds, embedding; by content hash
        # and model like ``model_vectors``, so moves, copies and model switches keep them.
        db["frames"].create({"model": str, "hash": str, "time": float, "vector": bytes,
                             "seq": int}, pk=("model", "hash", "time"), if_not_exists=True)
        db["frames"].create_index(["model", "seq"], if_not_exists=True)
        db["frames"].create_index(["hash"], if_not_exists=True)
        # Personal concepts (:mod:`.domain.concepts`): names, and example contents, yes or no.
        db.execute("CREATE TABLE IF NOT EXISTS concepts (name TEXT PRIMARY KEY COLLATE NOCASE, "
                   "created REAL)")
        db.execute("CREATE TABLE IF NOT EXISTS concept_examples (concept TEXT NOT NULL COLLATE "
                   "NOCASE, hash TEXT NOT NULL, yes INTEGER NOT NULL, added REAL, "
                   "PRIMARY KEY (concept, hash))")
        db["photos"].create_index(["path"], unique=True, if_not_exists=True)
        for column in ("hash", "seq", "root", "taken_at", "status", "folder"):
            db["photos"].create_index([column], if_not_exists=True)

    def _migrate(self, version: int) -> None:
        """Bring a version-*version* database to :data:`SCHEMA_VERSION` (inside the open
        transaction: a failed migration leaves the old database untouched)."""
        db = self.db
        columns = db["photos"].columns_dict
        if "folder" not in columns:
            db.execute("ALTER TABLE photos ADD COLUMN folder TEXT")
        if "duration" not in columns:
            db.execute("ALTER TABLE photos ADD COLUMN duration REAL")
        self._create_tables()
        if version == 1:
            marker = "\x00raw:"
            for row_id, text in db.execute(  # a range: SQLite's substr stops at NUL
                    "SELECT id, path FROM photos WHERE path >= ? AND path < ?",
                    [marker, marker[:-1] + ";"]).fetchall():
                path = os.fsdecode(base64.b64decode(text[len(marker):]))
                db.execute("UPDATE photos SET path = ? WHERE id = ?", [path_to_db(path), row_id])
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('checksum', ?), "
                       "('pruned_seq', (SELECT value FROM meta WHERE key = 'seq'))",
                       [str(self._full_checksum())])
        if version <= 2:
            db.conn.create_function("db_parent", 1, db_parent, deterministic=True)
            db.execute("UPDATE photos SET folder = db_parent(path)")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", [str(SCHEMA_VERSION)])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: begun IMMEDIATE (the write lock first, so it never has to
        upgrade from reading, which can fail at once with SQLITE_BUSY), committed at the end,
        rolled back on any error. Every write goes through here: sqlite-utils' ``execute()``
        commits each statement that opened a transaction of its own, so a batch written
        without an explicit one would be committed statement by statement."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # some errors (SQLITE_FULL) end it themselves
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def seq(self) -> int:
        """The last change sequence number committed."""
        return int(self.get_meta("seq") or 0)

    def _next_seq(self) -> int:
        # Called inside a write transaction, so the read-increment is atomic.
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='seq'")
        return self.seq()

    def _set_checksum(self, value: int) -> None:
        # Inside the write transaction; kept as text: SQLite's integers are signed 64-bit.
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'checksum'", [str(value)])

    def _full_checksum(self) -> int:
        """The checksum of every stored pair, computed from the rows (migration, switch)."""
        total = 0
        for ids, vectors in self.vectors():
            total = vector_checksum(ids, vectors, total)
        return total

    # --- reads ----------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the reads inside the block on one consistent snapshot of the database (a
        read transaction: commits of other connections made meanwhile are not seen)."""
        conn = self.db.conn
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

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

    def rows_in_folder(self, folder: str) -> dict[str, Row]:
        """Bookkeeping rows of the photos directly in *folder* (not in its subfolders),
        whatever root they were found under, keyed by path (an index lookup)."""
        cursor = self.db.execute("SELECT id, path, size, mtime_ns, hash, status FROM photos "
                                 "WHERE folder = ?", [path_to_db(folder)])
        return {row.path: row for row in (Row(r[0], path_from_db(r[1]), *r[2:]) for r in cursor)}

    def folders_under(self, folder: str) -> Iterator[str]:
        """Each folder at or below *folder* that holds photos in the library, once."""
        low, high = folder_range(folder)
        for (stored,) in self.db.execute(
                "SELECT DISTINCT folder FROM photos WHERE folder = ? OR "
                "(folder >= ? AND folder < ?)", [path_to_db(folder), low, high]):
            yield path_from_db(stored)

    def vector_width(self) -> int | None:
        """The embedding width d of the stored vectors (float32), None when none is stored."""
        row = self.db.execute("SELECT length(vector) FROM photos WHERE vector IS NOT NULL "
                              "LIMIT 1").fetchone()
        return row[0] // 4 if row else None

    def ids_with_hash(self, digest: str) -> list[int]:
        """Ids of the rows holding an embedding of the content *digest* (an index lookup)."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM photos WHERE hash = ? AND vector IS NOT NULL ORDER BY id",
            [digest])]

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
        for start in range(0, len(id_list), _VARIABLES):
            part = id_list[start:start + _VARIABLES]
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

    def counts(self) -> dict[str, int]:
        """Number of rows per status."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM photos GROUP BY status"))

    def cameras(self) -> list[tuple[str, str, int]]:
        """(camera model, make, photos) of the indexed photos' cameras (EXIF), the most
        used first."""
        return [tuple(row) for row in self.db.execute(
            "SELECT camera_model, COALESCE(MAX(camera_make), ''), COUNT(*) FROM photos "
            "WHERE status = ? AND camera_model IS NOT NULL AND camera_model != '' "
            "GROUP BY camera_model ORDER BY COUNT(*) DESC, camera_model", [OK])]

    def root_counts(self) -> dict[str, dict[str, int]]:
        """Number of rows per root folder and status: ``{root: {status: n}}``."""
        out: dict[str, dict[str, int]] = {}
        cursor = self.db.execute("SELECT root, status, COUNT(*) FROM photos GROUP BY root, status")
        for root, status, n in cursor:
            out.setdefault(path_from_db(root), {})[status] = n
        return out

    def errors(self, limit: int = 1000, root: str | None = None) -> list[tuple[str, str]]:
        """(path, reason) of photos that could not be indexed, optionally under one root."""
        where = "status = ?" + (" AND root = ?" if root is not None else "")
        params = [ERROR] + ([path_to_db(root)] if root is not None else [])
        cursor = self.db.execute(
            f"SELECT path, error FROM photos WHERE {where} ORDER BY path LIMIT ?", params + [limit]
        )
        return [(path_from_db(p), e) for p, e in cursor]

    def details(self, ids: list[int]) -> dict[int, dict]:
        """Metadata of the given rows (no vectors), keyed by id; ``path`` and ``root``
        decoded."""
        out: dict[int, dict] = {}
        for start in range(0, len(ids), _VARIABLES):
            part = ids[start:start + _VARIABLES]
            marks = ",".join("?" * len(part))
            cursor = self.db.execute(
                "SELECT id, path, root, hash, size, mtime_ns, width, height, taken_at, camera_make, "
                f"camera_model, gps_lat, gps_lon, status, duration FROM photos "
                f"WHERE id IN ({marks})",
                part,
            )
            names = [c[0] for c in cursor.description]
            for values in cursor:
                item = dict(zip(names, values))
                item["path"] = path_from_db(item["path"])
                item["root"] = path_from_db(item["root"])
                out[item["id"]] = item
        return out

    def timeline(self, where: str, params: list) -> list[tuple]:
        """(id, path, content hash, date, GPS latitude, longitude) of the embedded, online
        photos that satisfy an SQL condition on ``photos``, newest first. The date is the
        EXIF time taken, else the file's modification time in local time (ISO 8601, to the
        second); the coordinates are None without EXIF GPS."""
        cursor = self.db.execute(
            "SELECT id, path, hash, COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', "
            "mtime_ns / 1000000000, 'unixepoch', 'localtime')) AS day, gps_lat, gps_lon "
            f"FROM photos WHERE vector IS NOT NULL AND status = ? AND ({where}) "
            "ORDER BY day DESC, path", [OK] + params)
        return [(i, path_from_db(p), *rest) for i, p, *rest in cursor]

    def keyword_rows(self, after_seq: int) -> list[tuple]:
        """(id, path, root, camera make, camera model, taken at, mtime_ns, {kind:
        understood text}, searchable) of the rows changed after *after_seq*, or whose
        content's understanding did; searchable means embedded and online."""
        cursor = self.db.execute(
            "SELECT id, path, root, camera_make, camera_model, taken_at, mtime_ns, hash, "
            f"vector IS NOT NULL AND status = '{OK}' FROM photos WHERE seq > ? OR hash IN "
            "(SELECT hash FROM understanding WHERE seq > ?)", [after_seq, after_seq])
        rows = cursor.fetchall()
        understood = self.understood([r[7] for r in rows if r[7]])
        return [(i, path_from_db(p), path_from_db(root), make, model, taken, mtime,
                 {kind: text for kind, (_, text) in understood.get(digest, {}).items()},
                 bool(searchable))
                for i, p, root, make, model, taken, mtime, digest, searchable in rows]

    # --- understanding (by content hash; see :mod:`.understanding.passes`) --------------------------

    def understanding_todo(self, kind: str, version: int, limit: int,
                           with_gps: bool = False) -> list[tuple[str, str, float, float]]:
        """Up to *limit* (content hash, path, GPS latitude, longitude) of embedded, online
        photos whose content has no *kind* result of *version* or later, one path per
        content; *with_gps*: only photos with EXIF GPS."""
        cursor = self.db.execute(
            "SELECT p.hash, MIN(p.path), p.gps_lat, p.gps_lon FROM photos p "
            "LEFT JOIN understanding u ON u.hash = p.hash AND u.kind = ? "
            f"WHERE {_understandable(with_gps)} AND (u.version IS NULL OR u.version < ?) "
            "GROUP BY p.hash LIMIT ?", [kind, version, limit])
        return [(digest, path_from_db(path), lat, lon) for digest, path, lat, lon in cursor]

    def understanding_counts(self, kind: str, version: int,
                             with_gps: bool = False) -> tuple[int, int]:
        """(contents done, contents in all) for *kind* at *version*, over embedded, online
        photos (with EXIF GPS for *with_gps*)."""
        done, total = self.db.execute(
            "SELECT COUNT(u.hash), COUNT(*) FROM (SELECT DISTINCT hash FROM photos p "
            f"WHERE {_understandable(with_gps)}) AS c LEFT JOIN understanding u "
            "ON u.hash = c.hash AND u.kind = ? AND u.version >= ?", [kind, version]).fetchone()
        return done, total

    def put_understanding(self, kind: str, version: int,
                          results: list[tuple[str, str, str]]) -> None:
        """Store *kind* results ``(content hash, JSON data, searchable text)`` in one
        transaction under one new ``seq`` (the keyword index picks them up)."""
        with self.transaction():
            seq = self._next_seq()
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO understanding(hash, kind, version, data, text, seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(digest, kind, version, data, text, seq) for digest, data, text in results])

    def forget_orphans(self) -> int:
        """Delete what is understood of contents no photo has any more (a deleted
        receipt's text goes with it), and the keyframes of videos no longer there; call
        between index runs, since a run may delete a moved photo's old row before adding
        its new one. Returns the rows deleted."""
        gone = "hash NOT IN (SELECT hash FROM photos WHERE hash IS NOT NULL)"
        with self.transaction():
            return (self.db.execute(f"DELETE FROM understanding WHERE {gone}").rowcount
                    + self.db.execute(f"DELETE FROM frames WHERE {gone}").rowcount)

    # --- personal concepts (see :mod:`.domain.concepts`) -------------------------------------------

    def concept_names(self) -> list[str]:
        """The concepts' names, as the user wrote them, alphabetically."""
        return [r[0] for r in self.db.execute("SELECT name FROM concepts ORDER BY name")]

    def concept_examples(self, name: str) -> list[tuple[str, bool]]:
        """(content hash, yes) of a concept's examples; empty for an unknown concept."""
        return [(digest, bool(yes)) for digest, yes in self.db.execute(
            "SELECT hash, yes FROM concept_examples WHERE concept = ? ORDER BY added, hash",
            [name])]

    def label_examples(self, name: str, digests: list[str], yes: bool) -> None:
        """Make contents yes (or no) examples of concept *name*, creating it if new (names
        are compared without case); an example said again takes the new answer."""
        now = time.time()
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO concepts(name, created) VALUES (?, ?)",
                            [name, now])
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO concept_examples(concept, hash, yes, added) "
                "VALUES ((SELECT name FROM concepts WHERE name = ?), ?, ?, ?)",
                [(name, digest, int(yes), now) for digest in digests])

    def forget_concept(self, name: str, digests: list[str] | None = None) -> int:
        """Remove a concept (with *digests*: only those examples). Returns the examples
        removed."""
        with self.transaction():
            if digests is None:
                self.db.execute("DELETE FROM concepts WHERE name = ?", [name])
                return self.db.execute("DELETE FROM concept_examples WHERE concept = ?",
                                       [name]).rowcount
            return sum(self.db.execute("DELETE FROM concept_examples WHERE concept = ? AND "
                                       "hash = ?", [name, digest]).rowcount for digest in digests)

    def vectors_by_hash(self, digests: list[str]) -> dict[str, np.ndarray]:
        """Content hash → its (d,) float32 embedding, for the given contents that have one."""
        out: dict[str, np.ndarray] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), _VARIABLES):
            part = unique[start:start + _VARIABLES]
            for digest, data in self.db.execute(
                    "SELECT hash, vector FROM photos WHERE vector IS NOT NULL AND hash IN "
                    f"({','.join('?' * len(part))})", part):
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
        chunks = [vectors for _, vectors in self.vectors(ids=ids)]
        return np.concatenate(chunks) if chunks else np.empty((0, 0), np.float32)

    # --- video keyframes (see :mod:`.media.video`) ------------------------------------------------

    def frame_state(self, model: str) -> tuple[int, int]:
        """(keyframes of *model*, the newest one's ``seq``): a cache of them is current
        while this has not changed."""
        count, newest = self.db.execute(
            "SELECT COUNT(*), MAX(seq) FROM frames WHERE model = ?", [model]).fetchone()
        return count, newest or 0

    def frame_rows(self, model: str, after_seq: int = 0) -> list[tuple[str, float, bytes]]:
        """(content hash, time in s, (d,) float32 embedding bytes) of *model*'s keyframes
        stored after *after_seq*."""
        return self.db.execute("SELECT hash, time, vector FROM frames WHERE model = ? "
                               "AND seq > ?", [model, after_seq]).fetchall()

    def frame_keys(self, model: str) -> set[tuple[str, float]]:
        """(content hash, time in s) of every keyframe of *model*."""
        return set(self.db.execute("SELECT hash, time FROM frames WHERE model = ?", [model]))

    def frames_of(self, model: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
        """A video's keyframes under *model*: ((n,) float64 times in s, ascending;
        (n, d) float32 embeddings); n is 0 for a photo."""
        rows = self.db.execute("SELECT time, vector FROM frames WHERE model = ? AND hash = ? "
                               "ORDER BY time", [model, digest]).fetchall()
        if not rows:
            return np.empty(0), np.empty((0, 0), np.float32)
        return (np.array([r[0] for r in rows], np.float64),
                np.stack([np.frombuffer(r[1], np.float32) for r in rows]))

    def understood(self, digests: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
        """Content hash → {kind: (JSON data, searchable text)} for the given contents."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), _VARIABLES):
            part = unique[start:start + _VARIABLES]
            for digest, kind, data, text in self.db.execute(
                    "SELECT hash, kind, data, text FROM understanding "
                    f"WHERE hash IN ({','.join('?' * len(part))})", part):
                out.setdefault(digest, {})[kind] = (data, text)
        return out

    def hash_of(self, path: str) -> str | None:
        """The content hash of the embedded photo at *path*, None if the library has none."""
        row = self.db.execute("SELECT hash FROM photos WHERE path = ? AND vector IS NOT NULL",
                              [path_to_db(path)]).fetchone()
        return row[0] if row else None

    def understanding_state(self, kind: str) -> tuple[int, int]:
        """(results of *kind*, the newest one's ``seq``): a cache of them is current while
        this has not changed (a deletion changes the count, anything new the ``seq``)."""
        count, newest = self.db.execute(
            "SELECT COUNT(*), MAX(seq) FROM understanding WHERE kind = ?", [kind]).fetchone()
        return count, newest or 0

    def understanding_rows(self, kind: str, after_seq: int = 0) -> list[tuple[str, str]]:
        """(content hash, JSON data) of the *kind* results stored after *after_seq*."""
        return self.db.execute("SELECT hash, data FROM understanding WHERE kind = ? AND seq > ?",
                               [kind, after_seq]).fetchall()

    def understanding_hashes(self, kind: str) -> set[str]:
        """The contents that have a *kind* result."""
        return {r[0] for r in self.db.execute("SELECT hash FROM understanding WHERE kind = ?",
                                              [kind])}

    def ids_by_hash(self, digests: list[str], where: str = "1",
                    params: list | None = None) -> dict[str, list[int]]:
        """Content hash → ids of the embedded, online photos with it that satisfy an SQL
        condition on ``photos`` (copies share a hash)."""
        out: dict[str, list[int]] = {}
        unique = sorted(set(digests))
        params = list(params or [])
        size = max(100, _VARIABLES - len(params))  # room for the filter's own variables
        for start in range(0, len(unique), size):
            part = unique[start:start + size]
            for row_id, digest in self.db.execute(
                    f"SELECT id, hash FROM photos WHERE vector IS NOT NULL AND status = '{OK}' "
                    f"AND hash IN ({','.join('?' * len(part))}) AND ({where}) ORDER BY id",
                    part + params):
                out.setdefault(digest, []).append(row_id)
        return out

    def folder_counts(self) -> dict[str, int]:
        """Folder → number of embedded, online photos directly in it."""
        cursor = self.db.execute("SELECT folder, COUNT(*) FROM photos WHERE vector IS NOT NULL "
                                 "AND status = ? GROUP BY folder", [OK])
        return {path_from_db(folder): n for folder, n in cursor}

    def ids_matching(self, where: str, params: list,
                     among: list[int] | None = None) -> set[int]:
        """Ids of embedded, online rows that satisfy an SQL condition on ``photos``; with
        *among*, only those of these ids (an index lookup, not a scan of the library)."""
        sql = f"SELECT id FROM photos WHERE vector IS NOT NULL AND status = '{OK}' AND ({where})"
        if among is None:
            return {r[0] for r in self.db.execute(sql, params)}
        found: set[int] = set()
        for start in range(0, len(among), _VARIABLES):
            part = among[start:start + _VARIABLES]
            found.update(r[0] for r in self.db.execute(
                f"{sql} AND id IN ({','.join('?' * len(part))})", params + part))
        return found

    def content_hashes(self) -> dict[int, str]:
        """Row id → content hash of every embedded, online photo."""
        return dict(self.db.execute(
            "SELECT id, hash FROM photos WHERE vector IS NOT NULL AND status = ?", [OK]))

    def hashes_present(self, digests: list[str]) -> set[str]:
        """Which of the content hashes *digests* some photo in the library has."""
        found: set[str] = set()
        for start in range(0, len(digests), _VARIABLES):
            part = digests[start:start + _VARIABLES]
            found.update(r[0] for r in self.db.execute(
                f"SELECT DISTINCT hash FROM photos WHERE hash IN ({','.join('?' * len(part))})",
                part))
        return found

    # --- roots ----------------------------------------------------------------------------

    def root_device(self, root: str) -> int | None:
        """The device (``st_dev``) *root* was on when it was recorded, if recorded."""
        row = self.db.execute("SELECT device FROM roots WHERE root = ?",
                              [path_to_db(root)]).fetchone()
        return row[0] if row else None

    def row_count(self, root: str) -> int:
        """Number of photos found under *root*."""
        return self.db.execute("SELECT COUNT(*) FROM photos WHERE root = ?",
                               [path_to_db(root)]).fetchone()[0]

    def has_rows(self, root: str) -> bool:
        """True when the library holds photos found under *root*."""
        return self.db.execute("SELECT EXISTS(SELECT 1 FROM photos WHERE root = ?)",
                               [path_to_db(root)]).fetchone()[0] == 1

    def record_root(self, root: str, device: int) -> None:
        """Remember the device *root* is on (see :meth:`root_device`)."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO roots(root, device) VALUES (?, ?)",
                            [path_to_db(root), device])

    def adopt(self, root: str) -> int:
        """Rows whose path lies below *root* belong to it (they were found under a folder
        that *root* now contains); their folder's device record goes. No vector changes.
        Returns the rows moved."""
        low, high = folder_range(root)
        with self.transaction():
            self.db.execute("DELETE FROM roots WHERE root >= ? AND root < ?", [low, high])
            return self.db.execute(
                "UPDATE photos SET root = ? WHERE path >= ? AND path < ? AND root != ?",
                [path_to_db(root), low, high, path_to_db(root)]).rowcount

    # --- writes ---------------------------------------------------------------------------

    def write_batch(self, embedded: list[tuple[int | None, dict, np.ndarray]],
                    others: list[tuple[int | None, dict]], deleted: list[int],
                    frames: dict[str, list[tuple[float, np.ndarray]]] | None = None
                    ) -> list[int]:
        """Commit one batch of changes in one transaction, under one new ``seq``.

        A row given as new (id None) whose path the library already holds updates that
        row: a path is never in the library twice, and a stale view never aborts a run.

        Args:
            embedded: (id or None for a new photo, row fields, (d,) float32 vector).
            others: (id or None, row fields) for rows without a new vector (errors, moves,
                touched files); a row that loses its vector gets a tombstone.
            deleted: ids of rows to delete.
            frames: videos' keyframes, content hash → [(time in s, (d,) float32
                embedding)], stored under the library's model (replacing its earlier ones).

        Returns:
            The ids of *embedded* rows, in order (new rows get theirs here).
        """
        db = self.db
        ids: list[int] = []
        with self.transaction():
            seq = self._next_seq()
            now = time.time()
            before = total = self.checksum()
            for row_id in deleted:  # first, so that a path can be taken over in this batch
                total = self._without(row_id, total)
                db.execute("DELETE FROM photos WHERE id = ?", [row_id])
                db.execute("INSERT OR REPLACE INTO tombstones(id, seq) VALUES (?, ?)",
                           [row_id, seq])
            for row_id, fields, vector in embedded:
                data = vector.astype(np.float32).tobytes()
                fields = _encode_fields(fields) | {
                    "vector": data, "status": OK, "error": None, "seq": seq, "indexed_at": now,
                }
                row_id = self._existing(row_id, fields)
                if row_id is not None:
                    total = self._without(row_id, total)
                row_id = self._put(row_id, fields)
                total = vector_checksum([row_id], [data], total)
                ids.append(row_id)
            for row_id, fields in others:
                # seq too: a move changes what the keyword index holds (name, folder)
                fields = _encode_fields(fields) | {"seq": seq}
                row_id = self._existing(row_id, fields)
                if fields.get("vector", 0) is None and row_id is not None:
                    total = self._without(row_id, total)
                    db.execute("INSERT OR REPLACE INTO tombstones(id, seq) VALUES (?, ?)",
                               [row_id, seq])
                self._put(row_id, fields)
            if frames:
                model = self.get_meta("model_id")
                for digest, stills in frames.items():
                    db.execute("DELETE FROM frames WHERE model = ? AND hash = ?", [model, digest])
                    db.conn.executemany(
                        "INSERT INTO frames(model, hash, time, vector, seq) VALUES (?, ?, ?, ?, ?)",
                        [(model, digest, float(at), np.asarray(vector, np.float32).tobytes(), seq)
                         for at, vector in stills])
            if total != before:
                self._set_checksum(total)
        return ids

    def _existing(self, row_id: int | None, fields: dict) -> int | None:
        if row_id is not None or "path" not in fields:
            return row_id
        row = self.db.execute("SELECT id FROM photos WHERE path = ?", [fields["path"]]).fetchone()
        return row[0] if row else None

    def _without(self, row_id: int, total: int) -> int:
        """*total* without the row's current (id, vector) pair, if it has a vector."""
        row = self.db.execute("SELECT vector FROM photos WHERE id = ? AND vector IS NOT NULL",
                              [row_id]).fetchone()
        return vector_checksum([row_id], [row[0]], total, sign=-1) if row else total

    def _put(self, row_id: int | None, fields: dict) -> int:
        if row_id is None:
            return self.db["photos"].insert(fields).last_pk
        self.db["photos"].update(row_id, fields)
        return row_id

    def copy_embedding(self, source_id: int) -> tuple[dict, np.ndarray]:
        """Fields and vector of a row, to give an identical file its own row."""
        cursor = self.db.execute(
            "SELECT width, height, taken_at, camera_make, camera_model, gps_lat, gps_lon, "
            "duration, vector FROM photos WHERE id = ?", [source_id])
        names = [c[0] for c in cursor.description]
        values = dict(zip(names, cursor.fetchone()))
        vector = np.frombuffer(values.pop("vector"), dtype=np.float32)
        return values, vector

    def set_status(self, root: str, status: str, only: str | None = None,
                   ids: list[int] | None = None) -> int:
        """Set the status of a root's rows (optionally only those now in state *only*, or
        only the rows *ids*)."""
        sql, params = "UPDATE photos SET status = ? WHERE root = ?", [status, path_to_db(root)]
        if only:
            sql += " AND status = ?"
            params.append(only)
        with self.transaction():
            if ids is None:
                return self.db.execute(sql, params).rowcount
            done = 0
            for start in range(0, len(ids), _VARIABLES):
                part = ids[start:start + _VARIABLES]
                done += self.db.execute(f"{sql} AND id IN ({','.join('?' * len(part))})",
                                        params + part).rowcount
            return done

    def delete_root(self, root: str) -> list[int]:
        """Delete every row of a root (tombstoned). Returns the deleted ids."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM photos WHERE root = ?",
                                             [path_to_db(root)])]
        if ids:
            self.write_batch([], [], ids)
        with self.transaction():
            self.db.execute("DELETE FROM roots WHERE root = ?", [path_to_db(root)])
        return ids

    def switch_model(self, old: str | None, new: str) -> tuple[int, int]:
        """Make *new* the library's model, in one transaction: the embeddings of *old* are
        kept by content hash (switching back restores them), those *new* made before are
        restored, and every other photo waits to be embedded.

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
            waiting = db.execute("UPDATE photos SET status = ? WHERE vector IS NULL AND status "
                                 "IN (?, ?)", [PENDING, OK, OFFLINE]).rowcount
            db.execute("DELETE FROM model_vectors WHERE model = ? OR hash NOT IN "
                       "(SELECT hash FROM photos WHERE hash IS NOT NULL)", [new])
            db.execute("DELETE FROM tombstones")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('model_id', ?), "
                       "('checksum', ?), ('pruned_seq', ?)",
                       [new, str(self._full_checksum()), str(seq)])
        return restored, waiting


def _understandable(with_gps: bool) -> str:
    """The SQL condition on ``photos p`` for photos the understanding pass reads:
    embedded, online, with a content hash (and EXIF GPS for *with_gps*)."""
    gps = " AND p.gps_lat IS NOT NULL AND p.gps_lon IS NOT NULL" if with_gps else ""
    return (f"p.status = '{OK}' AND p.vector IS NOT NULL AND p.hash IS NOT NULL "
            f"AND p.duration IS NULL{gps}")


def meta_fields(meta: PhotoMeta) -> dict:
    """Row fields for a photo's metadata (a video's too: its ``duration`` in seconds)."""
    return {
        "width": meta.width, "height": meta.height, "taken_at": meta.taken_at,
        "camera_make": meta.camera_make, "camera_model": meta.camera_model,
        "gps_lat": meta.gps_lat, "gps_lon": meta.gps_lon,
        "duration": getattr(meta, "duration", None),
    }


def _encode_fields(fields: dict) -> dict:
    encoded = dict(fields)
    for key in ("path", "root"):
        if key in encoded:
            encoded[key] = path_to_db(encoded[key])
    if "path" in encoded:
        encoded["folder"] = db_parent(encoded["path"])
    return encoded


def _unpack(batch: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch])
    return ids, vectors
