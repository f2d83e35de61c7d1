"""The library database (SQLite through sqlite-utils): photo metadata and embeddings.

This is the source of truth. Every change to a vector happens in a transaction that takes
the next value of a global change sequence (``seq``): changed rows carry it, deleted rows
leave a tombstone with it, and the same transaction updates a checksum of all (id, vector)
pairs. The HNSW cache records the last ``seq`` it reflects, so it catches up by replaying
only what came after, in this process or another (see :mod:`mmrag_desktop.index.vectors`),
and proves it holds the same vectors by comparing checksums.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from .albums import Albums
from .concepts import Concepts
from .frames import Frames
from .people import People
from .photos import Photos
from .roots import Roots
from .schema import Schema
from .understanding import Understanding
from .vectors import Vectors


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


class Store(Schema, Photos, Roots, Vectors, Understanding, Concepts, Frames, People, Albums):
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
            self._local.matching = {}  # Photos.ids_matching's, keyed by this connection's counters
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





