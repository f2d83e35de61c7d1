"""The watched folders (roots): the device each was on when added, their rows, adoption of
a folder's photos by a new root, and removal."""

from __future__ import annotations

from ..core.paths import folder_range, path_to_db


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

    def delete_root(self, root: str) -> list[int]:
        """Delete every row of a root (tombstoned). Returns the deleted ids."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM photos WHERE root = ?",
                                             [path_to_db(root)])]
        if ids:
            self.write_batch([], [], ids)
        with self.transaction():
            self.db.execute("DELETE FROM roots WHERE root = ?", [path_to_db(root)])
        return ids
