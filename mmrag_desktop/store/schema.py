"""The library's tables, created and migrated: a ladder of versions, each step inside the
opening transaction (rclip's db.py keeps its migrations the same way)."""

from __future__ import annotations

import base64
import os

from ..core.errors import MmragError
from ..core.paths import db_parent, path_to_db
from ..media.files import POSITION_SQL


class Schema:
    """Creating the tables and migrating an older library (:data:`SCHEMA_VERSION`)."""

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
                "changed_ns": int, "sample": str,
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
        self._create_people_tables()
        self._create_album_tables()
        db["photos"].create_index(["path"], unique=True, if_not_exists=True)
        for column in ("taken_at", "path", "hash"):  # what filters use, without the rows
            db.execute(f"CREATE INDEX IF NOT EXISTS photos_embedded_{column} ON photos({column}, "
                       "status) WHERE vector IS NOT NULL")
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
        if "changed_ns" not in columns:
            db.execute("ALTER TABLE photos ADD COLUMN changed_ns INTEGER")
        if "sample" not in columns:
            db.execute("ALTER TABLE photos ADD COLUMN sample TEXT")
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
        if version <= 5:  # positions read before they were checked: dropped, with their place
            bad = f"gps_lat IS NOT NULL AND NOT ({POSITION_SQL})"
            if db.execute(f"SELECT 1 FROM photos WHERE {bad} LIMIT 1").fetchone():
                seq = self._next_seq()  # the keyword cache re-reads these rows
                db.execute("DELETE FROM understanding WHERE kind = 'place' AND hash IN "
                           f"(SELECT hash FROM photos WHERE {bad})")
                db.execute(f"UPDATE photos SET gps_lat = NULL, gps_lon = NULL, seq = ? "
                           f"WHERE {bad}", [seq])
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", [str(SCHEMA_VERSION)])


SCHEMA_VERSION = 8
"""The database layout this code reads and writes. 1: paths with undecodable bytes stored
as base64 behind a marker; 2: the prefix-preserving path encoding of
:mod:`mmrag_desktop.core.paths`, the vector checksum, the per-model vector archive, root devices;
3: each photo's folder, indexed (a run compares the library with the disk folder by folder);
4: what the understanding pass learned about each photo's content (:mod:`.understanding.passes`);
5: videos: a row's ``duration`` (seconds; NULL for a photo) and its keyframes' embeddings
(``frames``, by model and content hash); personal concepts and their example photos
(:mod:`.domain.concepts`); 6: no stored GPS position outside the Earth's ranges or at (0, 0)
(:func:`.media.files.position`), and each row's ``changed_ns`` (the file's ``st_ctime_ns``
when it was last read: an edit that keeps size and mtime still changes it); 7: faces and
people (:mod:`.store.people`); 8: each row's ``sample`` (:func:`.media.files.sample_digest`,
kept where ``st_ctime`` is the creation time, :data:`.library.scanner.CTIME_IS_CHANGE_TIME`);
favourites, star ratings and albums (:mod:`.store.albums`)."""


class LibraryVersionError(MmragError, RuntimeError):
    """library.db was written by a newer version of the app."""
