"""What the user says of photos: favourites, star ratings (0–5) and albums. Stored by content
hash, like ``understanding``: a moved or renamed photo keeps them, and so does a copy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .sql import chunks, marks

MAX_RATING = 5


@dataclass
class AlbumRow:
    """An album: id, name (unique, compared without case) and the number of photos of the
    library in it (contents no longer in the library are not counted)."""

    id: int
    name: str
    photos: int


@dataclass
class Marks:
    """A content's star rating (0: none, 1–5) and whether it is a favourite."""

    rating: int = 0
    favourite: bool = False


class Albums:
    """The ``marks``, ``albums`` and ``album_photos`` tables."""

    def _create_album_tables(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS marks (hash TEXT PRIMARY KEY, rating INTEGER NOT "
                   "NULL DEFAULT 0, favourite INTEGER NOT NULL DEFAULT 0, changed REAL)")
        db.execute("CREATE INDEX IF NOT EXISTS marks_rating ON marks(rating)")
        db.execute("CREATE TABLE IF NOT EXISTS albums (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
                   "UNIQUE COLLATE NOCASE, created REAL)")
        db.execute("CREATE TABLE IF NOT EXISTS album_photos (album INTEGER NOT NULL, hash TEXT "
                   "NOT NULL, added REAL, PRIMARY KEY (album, hash))")
        db.execute("CREATE INDEX IF NOT EXISTS album_photos_hash ON album_photos(hash)")

    # --- favourites and ratings ------------------------------------------------------------

    def set_marks(self, digests: list[str], rating: int | None = None,
                  favourite: bool | None = None) -> None:
        """Set the star *rating* (0–5; 0 clears it) and/or *favourite* of contents
        *digests*, in one transaction; None leaves that one as it is.

        Raises:
            ValueError: a rating outside 0–5.
        """
        if rating is not None and not 0 <= rating <= MAX_RATING:
            raise ValueError(f"a rating is 0 to {MAX_RATING} stars, not {rating}")
        now = time.time()
        with self.transaction():
            self.db.conn.executemany("INSERT OR IGNORE INTO marks(hash, changed) VALUES (?, ?)",
                                     [(digest, now) for digest in digests])
            self.db.conn.executemany(
                "UPDATE marks SET rating = COALESCE(?, rating), favourite = COALESCE(?, favourite),"
                " changed = ? WHERE hash = ?",
                [(rating, None if favourite is None else int(favourite), now, digest)
                 for digest in digests])

    def marks_of(self, digests: list[str]) -> dict[str, Marks]:
        """Content hash → its :class:`Marks`, for those of *digests* that have any."""
        found: dict[str, Marks] = {}
        for part in chunks(sorted(set(digests))):
            for digest, rating, favourite in self.db.execute(
                    f"SELECT hash, rating, favourite FROM marks WHERE hash IN ({marks(part)}) "
                    "AND (rating > 0 OR favourite = 1)", part):
                found[digest] = Marks(rating, bool(favourite))
        return found

    # --- albums ------------------------------------------------------------------------------

    def albums(self, name: str | None = None) -> list[AlbumRow]:
        """Every album (or the one called *name*, case aside), by name, with its photo count."""
        where, params = ("WHERE a.name = ?", [name.strip()]) if name is not None else ("", [])
        return [AlbumRow(*row) for row in self.db.execute(
            "SELECT a.id, a.name, (SELECT COUNT(DISTINCT p.hash) FROM album_photos ap JOIN photos p "
            f"ON p.hash = ap.hash WHERE ap.album = a.id) FROM albums a {where} ORDER BY a.name",
            params)]

    def album_names(self) -> list[str]:
        """The albums' names, alphabetically (no counts: what query understanding needs)."""
        return [r[0] for r in self.db.execute("SELECT name FROM albums ORDER BY name")]

    def album_named(self, name: str) -> AlbumRow | None:
        """The album called *name* (without case: the column's collation), if there is one."""
        return next(iter(self.albums(name)), None)

    def create_album(self, name: str) -> int:
        """A new album called *name*; its id.

        Raises:
            sqlite3.IntegrityError: an album of that name exists.
        """
        with self.transaction():
            return self.db.execute("INSERT INTO albums(name, created) VALUES (?, ?)",
                                   [name.strip(), time.time()]).lastrowid

    def rename_album(self, album: int, name: str) -> None:
        """Rename an album.

        Raises:
            sqlite3.IntegrityError: another album has that name.
        """
        with self.transaction():
            self.db.execute("UPDATE albums SET name = ? WHERE id = ?", [name.strip(), album])

    def delete_album(self, album: int) -> list[str]:
        """Remove an album (its photos stay in the library); the contents it held, in the
        order they were added (to put it back: :meth:`create_album`, :meth:`add_to_album`)."""
        with self.transaction():
            held = [r[0] for r in self.db.execute(
                "SELECT hash FROM album_photos WHERE album = ? ORDER BY added, hash", [album])]
            self.db.execute("DELETE FROM album_photos WHERE album = ?", [album])
            self.db.execute("DELETE FROM albums WHERE id = ?", [album])
        return held

    def add_to_album(self, album: int, digests: list[str]) -> int:
        """Put contents in an album (those already there stay as they are); how many were
        new to it."""
        now = time.time()
        with self.transaction():
            return sum(self.db.execute(
                "INSERT OR IGNORE INTO album_photos(album, hash, added) VALUES (?, ?, ?)",
                [album, digest, now]).rowcount for digest in dict.fromkeys(digests))

    def remove_from_album(self, album: int, digests: list[str]) -> int:
        """Take contents out of an album; how many were in it."""
        with self.transaction():
            return sum(self.db.execute("DELETE FROM album_photos WHERE album = ? AND hash = ?",
                                       [album, digest]).rowcount for digest in set(digests))

    def albums_of(self, digests: list[str]) -> dict[str, list[str]]:
        """Content hash → the names of the albums it is in, by name."""
        found: dict[str, list[str]] = {}
        for part in chunks(sorted(set(digests))):
            for digest, name in self.db.execute(
                    "SELECT ap.hash, a.name FROM album_photos ap JOIN albums a ON a.id = ap.album "
                    f"WHERE ap.hash IN ({marks(part)}) ORDER BY a.name", part):
                found.setdefault(digest, []).append(name)
        return found
