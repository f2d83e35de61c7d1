"""What the understanding pass learned, by content hash and kind (text, place, caption,
extraction), with its version and change sequence."""

from __future__ import annotations

from ..core.paths import path_from_db
from ..domain.folders import OK
from .sql import chunks, marks


class Understanding:
    """Understanding results by content hash."""

    def understanding_todo(self, kind: str, version: int, limit: int,
                           reads: str = "photos") -> list[tuple[str, str, float, float]]:
        """Up to *limit* (content hash, path, GPS latitude, longitude) of embedded, online
        photos whose content has no *kind* result of *version* or later, one path per
        content, of what *reads* names (:func:`_understandable`)."""
        cursor = self.db.execute(
            "SELECT p.hash, MIN(p.path), p.gps_lat, p.gps_lon FROM photos p "
            "LEFT JOIN understanding u ON u.hash = p.hash AND u.kind = ? "
            f"WHERE {_understandable(reads)} AND (u.version IS NULL OR u.version < ?) "
            "GROUP BY p.hash LIMIT ?", [kind, version, limit])
        return [(digest, path_from_db(path), lat, lon) for digest, path, lat, lon in cursor]

    def understanding_counts(self, kind: str, version: int,
                             reads: str = "photos") -> tuple[int, int]:
        """(contents done, contents in all) for *kind* at *version*, over embedded, online
        photos (see :func:`_understandable` for *reads*)."""
        done, total = self.db.execute(
            "SELECT COUNT(u.hash), COUNT(*) FROM (SELECT DISTINCT hash FROM photos p "
            f"WHERE {_understandable(reads)}) AS c LEFT JOIN understanding u "
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
                    + self.db.execute(f"DELETE FROM frames WHERE {gone}").rowcount
                    + self.db.execute(f"DELETE FROM faces WHERE {gone}").rowcount)

    def place_names(self) -> set[str]:
        """Every name of the places the library's photos were taken in (towns, cities,
        counties, regions, countries)."""
        names: set[str] = set()
        for row in self.db.execute(
                "SELECT DISTINCT json_extract(data, '$.locality'), json_extract(data, '$.city'), "
                "json_extract(data, '$.county'), json_extract(data, '$.region'), "
                "json_extract(data, '$.country') FROM understanding WHERE kind = 'place'"):
            names.update(name for name in row if name)
        return names

    def place_counts(self) -> list[tuple[str, str, int]]:
        """(country, town, photos) for the places the library's embedded, online photos were
        taken in (the town: the city around the locality, else the locality), by country,
        then most photos first."""
        return self.db.execute(
            "SELECT COALESCE(json_extract(u.data, '$.country'), '') AS country, "
            "COALESCE(NULLIF(json_extract(u.data, '$.city'), ''), json_extract(u.data, "
            "'$.locality'), '') AS town, COUNT(*) AS photos FROM photos p JOIN understanding u "
            "ON u.hash = p.hash AND u.kind = 'place' WHERE p.vector IS NOT NULL AND "
            "+p.status = 'ok' GROUP BY country, town ORDER BY country, photos DESC, town"
        ).fetchall()

    def understood(self, digests: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
        """Content hash → {kind: (JSON data, searchable text)} for the given contents."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        unique = sorted(set(digests))
        for part in chunks(unique):
            for digest, kind, data, text in self.db.execute(
                    "SELECT hash, kind, data, text FROM understanding "
                    f"WHERE hash IN ({marks(part)})", part):
                out.setdefault(digest, {})[kind] = (data, text)
        return out

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


def _understandable(reads: str) -> str:
    """The SQL condition on ``photos p`` for what an analysis reads: embedded, online, with
    a content hash, and *reads* ``photos`` (no videos), ``gps`` (photos with EXIF GPS) or
    ``media`` (photos and videos)."""
    which = {"photos": " AND p.duration IS NULL",
             "gps": " AND p.duration IS NULL AND p.gps_lat IS NOT NULL AND p.gps_lon IS NOT NULL",
             "media": ""}[reads]
    return f"p.status = '{OK}' AND p.vector IS NOT NULL AND p.hash IS NOT NULL{which}"
