"""Photo rows: bookkeeping (path, size, mtime, hash, status), metadata, and the batches the
indexer writes."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from ..core.paths import db_parent, folder_range, path_from_db, path_to_db
from ..domain.folders import ERROR, OK
from ..domain.query import Filters
from ..media.files import PhotoMeta
from ..media.xmp import Xmp
from .filters import filter_sql
from .sql import VARIABLES, chunks, marks
from .vectors import vector_checksum

EMBEDDED = f"vector IS NOT NULL AND +status = '{OK}'"
"""The condition for an embedded, online row, written for the partial indexes on
(``taken_at``, ``status``), (``path``, ``status``) and (``hash``, ``status``) of embedded rows
(:meth:`.store.schema.Schema._create_tables`): a filtered query reads only the index, never the
rows (their 2 KB vectors): 1.3 s → 3–45 ms for a date range or folder of a million photos.
The ``+`` keeps SQLite off the plain ``status`` index, which every row matches."""


MATCHING_KEPT = 4
"""Filters whose photos' ids :meth:`Photos.ids_matching` keeps per thread: a filter stays
while the user types query after query, and its ids can cost more than the search (a person
in 8,000 of a million photos: 16.5 ms, each face's content hash looked up; a month: 1.6 ms)."""


class Photos:
    """Photo rows: reads and the indexer's writes."""

    def rows_in_folder(self, folder: str) -> dict[str, Row]:
        """Bookkeeping rows of the photos directly in *folder* (not in its subfolders),
        whatever root they were found under, keyed by path (an index lookup)."""
        cursor = self.db.execute("SELECT id, path, size, mtime_ns, hash, status, changed_ns, "
                                 "sample FROM photos WHERE folder = ?", [path_to_db(folder)])
        return {row.path: row for row in (Row(r[0], path_from_db(r[1]), *r[2:]) for r in cursor)}

    def folders_under(self, folder: str) -> Iterator[str]:
        """Each folder at or below *folder* that holds photos in the library, once."""
        low, high = folder_range(folder)
        for (stored,) in self.db.execute(
                "SELECT DISTINCT folder FROM photos WHERE folder = ? OR "
                "(folder >= ? AND folder < ?)", [path_to_db(folder), low, high]):
            yield path_from_db(stored)

    def ids_with_hash(self, digest: str) -> list[int]:
        """Ids of the rows holding an embedding of the content *digest* (an index lookup)."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM photos WHERE hash = ? AND vector IS NOT NULL ORDER BY id",
            [digest])]

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
        for part in chunks(ids):
            cursor = self.db.execute(
                "SELECT id, path, root, hash, size, mtime_ns, width, height, taken_at, camera_make, "
                f"camera_model, gps_lat, gps_lon, status, duration FROM photos "
                f"WHERE id IN ({marks(part)})",
                part,
            )
            names = [c[0] for c in cursor.description]
            for values in cursor:
                item = dict(zip(names, values))
                item["path"] = path_from_db(item["path"])
                item["root"] = path_from_db(item["root"])
                out[item["id"]] = item
        return out

    def timeline(self, filters: Filters | None = None) -> list[tuple]:
        """(id, path, content hash, date, GPS latitude, longitude, marks) of the embedded,
        online photos that pass *filters*, newest first. The date is the
        EXIF time taken, else the file's modification time in local time (ISO 8601, to the
        second); the coordinates are None without EXIF GPS; marks are ``2 × stars +
        favourite`` (:mod:`.store.albums`), None where none were set."""
        where, params = filter_sql(filters)
        cursor = self.db.execute(
            "SELECT id, path, hash, COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', "
            "mtime_ns / 1000000000, 'unixepoch', 'localtime')) AS day, gps_lat, gps_lon, "
            "(SELECT rating * 2 + favourite FROM marks WHERE marks.hash = photos.hash) "
            f"FROM photos WHERE {EMBEDDED} AND ({where}) "
            "ORDER BY day DESC, path", params)
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

    def hash_of(self, path: str) -> str | None:
        """The content hash of the embedded photo at *path*, None if the library has none."""
        row = self.db.execute("SELECT hash FROM photos WHERE path = ? AND vector IS NOT NULL",
                              [path_to_db(path)]).fetchone()
        return row[0] if row else None

    def paths_of_hash(self, digest: str) -> list[str]:
        """Paths of the online photos with content *digest*."""
        return [path_from_db(r[0]) for r in self.db.execute(
            "SELECT path FROM photos WHERE hash = ? AND status = ? ORDER BY path",
            [digest, OK])]

    def ids_by_hash(self, digests: list[str],
                    filters: Filters | None = None) -> dict[str, list[int]]:
        """Content hash → ids of the embedded, online photos with it that pass *filters*
        (copies share a hash)."""
        out: dict[str, list[int]] = {}
        unique = sorted(set(digests))
        where, params = filter_sql(filters)
        # room for the filter's own variables
        for part in chunks(unique, max(100, VARIABLES - len(params))):
            for row_id, digest in self.db.execute(
                    f"SELECT id, hash FROM photos WHERE vector IS NOT NULL AND status = '{OK}' "
                    f"AND hash IN ({marks(part)}) AND ({where}) ORDER BY id",
                    part + params):
                out.setdefault(digest, []).append(row_id)
        return out

    def folder_counts(self) -> dict[str, int]:
        """Folder → number of embedded, online photos directly in it."""
        cursor = self.db.execute("SELECT folder, COUNT(*) FROM photos WHERE vector IS NOT NULL "
                                 "AND status = ? GROUP BY folder", [OK])
        return {path_from_db(folder): n for folder, n in cursor}

    def ids_matching(self, filters: Filters | None = None,
                     among: list[int] | None = None) -> AbstractSet[int]:
        """Ids of embedded, online rows that pass *filters*; with *among*, only those of
        these ids (an index lookup, not a scan of the library). Without *among*, the
        answers for the last :data:`MATCHING_KEPT` filters are kept until anything is
        committed (by any connection)."""
        if among is None:
            where, params = filter_sql(filters)
            db = self.db
            kept = self._local.matching  # this connection's: both counters below are
            key = (db.conn.total_changes,  # its own writes
                   db.execute("PRAGMA data_version").fetchone()[0],  # the others' commits
                   repr(filters))
            if key not in kept:
                # One row of text parsed by numpy, not a Python row per id: 100,000 ids (a
                # year of a 1M-photo library) in 30 ms instead of 44.
                joined = db.execute(f"SELECT group_concat(id) FROM photos WHERE {EMBEDDED} "
                                    f"AND ({where})", params).fetchone()[0]
                kept[key] = frozenset(np.fromstring(joined, np.int64, sep=",").tolist()
                                      if joined else ())
                for old in list(kept)[:-MATCHING_KEPT]:
                    del kept[old]
            return kept[key]
        # NOT INDEXED: each of *among* looked up by its row id, never a range of a filter's
        # index (a year's 100,000 rows scanned to check 300 ids: 50 ms instead of 1).
        where, params = filter_sql(filters, per_row=True)
        sql = f"SELECT id FROM photos NOT INDEXED WHERE {EMBEDDED} AND ({where})"
        found: set[int] = set()
        for part in chunks(among):
            found.update(r[0] for r in self.db.execute(
                f"{sql} AND id IN ({marks(part)})", params + part))
        return found

    def content_hashes(self) -> dict[int, str]:
        """Row id → content hash of every embedded, online photo."""
        return dict(self.db.execute(
            "SELECT id, hash FROM photos WHERE vector IS NOT NULL AND status = ?", [OK]))

    def hashes_present(self, digests: list[str]) -> set[str]:
        """Which of the content hashes *digests* some photo in the library has."""
        found: set[str] = set()
        for part in chunks(digests):
            found.update(r[0] for r in self.db.execute(
                f"SELECT DISTINCT hash FROM photos WHERE hash IN ({marks(part)})",
                part))
        return found

    def record_changed(self, stamps: list[tuple[int, int, str | None]]) -> None:
        """Remember each row's file change time and sample, ``(row id, st_ctime_ns,
        sample digest or None to keep the stored one)``, for rows read before the library kept
        them (nothing a cache shows changes: no new sequence)."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE photos SET changed_ns = ?, sample = COALESCE(?, sample) WHERE id = ?",
                [(changed, sample, row_id) for row_id, changed, sample in stamps])

    def write_batch(self, embedded: list[tuple[int | None, dict, np.ndarray]],
                    others: list[tuple[int | None, dict]], deleted: list[int],
                    frames: dict[str, list[tuple[float, np.ndarray]]] | None = None,
                    xmp: dict[str, Xmp] | None = None,
                    edited: list[tuple[str, str]] | None = None) -> list[int]:
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
            xmp: content hash → what other apps wrote in its XMP (:mod:`.media.xmp`): its
                keywords and description become the searchable ``keywords`` record, its
                rating the content's stars unless the user rated it here.
            edited: (old content hash, new) of photos changed in place: what the user said
                of the old content (favourite, stars, albums) goes to the new one.

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
            for old, new in edited or []:
                db.execute("INSERT OR IGNORE INTO marks(hash, rating, favourite, changed) "
                           "SELECT ?, rating, favourite, changed FROM marks WHERE hash = ?",
                           [new, old])
                db.execute("INSERT OR IGNORE INTO album_photos(album, hash, added) "
                           "SELECT album, ?, added FROM album_photos WHERE hash = ?", [new, old])
            for digest, facts in (xmp or {}).items():
                db.execute("INSERT OR REPLACE INTO understanding(hash, kind, version, data, text, "
                           "seq) VALUES (?, 'keywords', 1, ?, ?, ?)",
                           [digest, json.dumps(dataclasses.asdict(facts)), facts.text(), seq])
                if facts.rating:
                    db.execute("INSERT OR IGNORE INTO marks(hash, rating, changed) VALUES (?, ?, ?)",
                               [digest, facts.rating, now])
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
            for part in chunks(ids):
                done += self.db.execute(f"{sql} AND id IN ({marks(part)})",
                                        params + part).rowcount
            return done


@dataclass
class Row:
    """One photo's bookkeeping row (vector not loaded)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str
    changed_ns: int | None = None  # st_ctime_ns when last read; None: from an older format
    sample: str | None = None  # sample_digest when last read, where st_ctime is no change time


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
