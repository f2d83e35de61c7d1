"""The watched folders (roots): the device each was on when added, their rows, adoption of
a folder's photos by a new root, and removal."""

from __future__ import annotations

import os

from ..core.paths import db_parent, folder_range, path_from_db, path_to_db
from ..domain.folders import OFFLINE, OK


class Roots:
    """Roots and their rows."""

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

    def sample_paths(self, root: str, n: int) -> list[tuple[str, int]]:
        """(path, size in bytes) of up to *n* of *root*'s photos, spread over its rows."""
        total = self.row_count(root)
        step = max(1, total // max(1, n))
        return [(path_from_db(p), size) for p, size in self.db.execute(
            "SELECT path, size FROM (SELECT path, size, ROW_NUMBER() OVER (ORDER BY id) AS k "
            "FROM photos WHERE root = ?) WHERE (k - 1) % ? = 0 LIMIT ?",
            [path_to_db(root), step, n])]

    def move_root(self, old: str, new: str) -> int:
        """The rows of root *old* now lie at the same places below *new* (the folder was
        moved, say to another disk): their paths, folders and root change, offline rows are
        online again, the old device record goes; embeddings and understanding stay. A row
        whose new path the library holds already (*new* was indexed as a folder of its own)
        is deleted instead: that path is never in the library twice. One new ``seq``, so the
        caches that show names and folders catch up. Returns the rows moved or merged."""
        rows = self.db.execute("SELECT id, path FROM photos WHERE root = ?",
                               [path_to_db(old)]).fetchall()
        moved, twins = [], []
        for row_id, stored in rows:
            path = path_to_db(os.path.join(new, os.path.relpath(path_from_db(stored), old)))
            taken = self.db.execute("SELECT 1 FROM photos WHERE path = ?", [path]).fetchone()
            (twins if taken else moved).append((path, row_id))
        if twins:
            self.write_batch([], [], [row_id for _, row_id in twins])
        with self.transaction():
            seq = self._next_seq()
            self.db.execute("DELETE FROM roots WHERE root = ?", [path_to_db(old)])
            self.db.conn.executemany(
                "UPDATE photos SET path = ?, folder = ?, root = ?, seq = ?, "
                "status = CASE status WHEN ? THEN ? ELSE status END WHERE id = ?",
                [(path, db_parent(path), path_to_db(new), seq, OFFLINE, OK, row_id)
                 for path, row_id in moved])
        return len(rows)

    def delete_root(self, root: str) -> list[int]:
        """Delete every row of a root (tombstoned). Returns the deleted ids."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM photos WHERE root = ?",
                                             [path_to_db(root)])]
        if ids:
            self.write_batch([], [], ids)
        with self.transaction():
            self.db.execute("DELETE FROM roots WHERE root = ?", [path_to_db(root)])
        return ids
