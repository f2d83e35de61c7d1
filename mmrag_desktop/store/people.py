"""Faces and people: each face found in a photo's content (box, detection score, size, 128-d
face descriptor), the person it belongs to, and what the user said (named, hidden, moved,
"not this person", "not a face"), which the machine never undoes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..core.paths import path_from_db
from ..domain.folders import OK
from .sql import chunks, marks

DESCRIPTOR_DIM = 128


@dataclass
class FaceRow:
    """One stored face: its id, the content hash of its photo, the box ``(left, top, right,
    bottom)`` as fractions of the displayed (EXIF-oriented) photo, the keyframe time in
    seconds (0 for a photo), the detector's score, the face's side in pixels of the
    full-size photo, its person (None: nobody yet), and whether the user put it there."""

    id: int
    hash: str
    box: tuple[float, float, float, float]
    time: float
    score: float
    size: float
    person: int | None
    by_user: bool


@dataclass
class PersonRow:
    """A person: id, name ("" while unnamed), hidden, faces and distinct photo contents,
    and the id of the face that shows them best (the largest)."""

    id: int
    name: str
    hidden: bool
    faces: int
    photos: int
    cover: int | None


_FACE_COLUMNS = "id, hash, left_, top_, right_, bottom_, time, score, size, person, by_user"


def _face(row) -> FaceRow:
    return FaceRow(row[0], row[1], tuple(row[2:6]), row[6], row[7], row[8], row[9], bool(row[10]))


class People:
    """The ``faces``, ``people`` and ``face_rejections`` tables."""

    def _create_people_tables(self) -> None:
        db = self.db
        # By content hash, like ``understanding``: a moved photo or a copy keeps its faces.
        db.execute("CREATE TABLE IF NOT EXISTS faces (id INTEGER PRIMARY KEY, hash TEXT NOT NULL, "
                   "left_ REAL, top_ REAL, right_ REAL, bottom_ REAL, time REAL NOT NULL "
                   "DEFAULT 0, score REAL, size REAL, descriptor BLOB NOT NULL, person INTEGER, "
                   "by_user INTEGER NOT NULL DEFAULT 0, not_face INTEGER NOT NULL DEFAULT 0)")
        db.execute("CREATE INDEX IF NOT EXISTS faces_hash ON faces(hash)")
        db.execute("CREATE INDEX IF NOT EXISTS faces_person ON faces(person)")
        db.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
                   "DEFAULT '' COLLATE NOCASE, hidden INTEGER NOT NULL DEFAULT 0, created REAL)")
        # "Not this person": the face is never put back with them, by any later clustering.
        db.execute("CREATE TABLE IF NOT EXISTS face_rejections (face INTEGER NOT NULL, "
                   "person INTEGER NOT NULL, PRIMARY KEY (face, person))")

    # --- the understanding pass's writes ----------------------------------------------------

    def put_faces(self, version: int, results: list[tuple[str, str, list[dict]]]) -> None:
        """Store each content's faces, ``(content hash, JSON data, faces)`` with each face
        a dict of ``box`` (4 fractions), ``time``, ``score``, ``size`` and ``descriptor``
        ((128,) float32), with the ``faces`` understanding record, in one transaction.
        A content read again loses its old faces, except those the user placed."""
        with self.transaction():
            seq = self._next_seq()
            for digest, data, faces in results:
                self.db.execute("DELETE FROM faces WHERE hash = ? AND by_user = 0", [digest])
                self.db.conn.executemany(
                    "INSERT INTO faces(hash, left_, top_, right_, bottom_, time, score, size, "
                    "descriptor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(digest, *face["box"], face["time"], face["score"], face["size"],
                      np.asarray(face["descriptor"], np.float32).tobytes()) for face in faces])
                self.db.execute(
                    "INSERT OR REPLACE INTO understanding(hash, kind, version, data, text, seq) "
                    "VALUES (?, 'faces', ?, ?, '', ?)", [digest, version, data, seq])

    # --- reads -------------------------------------------------------------------------------

    def face_descriptors(self, assigned: bool) -> tuple[np.ndarray, np.ndarray, list[int | None],
                                                         list[str]]:
        """(face ids (n,) int64, descriptors (n, 128) float32, persons, content hashes) of
        the faces of photos in the library that are faces (not rejected as one): those
        with a person when *assigned*, else those without."""
        where = "person IS NOT NULL" if assigned else "person IS NULL"
        rows = self.db.execute(
            f"SELECT id, descriptor, person, hash FROM faces WHERE {where} AND not_face = 0 "
            f"AND hash IN (SELECT hash FROM photos WHERE status = '{OK}') ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                   .reshape(len(rows), DESCRIPTOR_DIM))
        return ids, vectors, [r[2] for r in rows], [r[3] for r in rows]

    def faces_of(self, digests: list[str]) -> dict[str, list[FaceRow]]:
        """Content hash → its faces (not those rejected as faces), left to right."""
        out: dict[str, list[FaceRow]] = {}
        for part in chunks(sorted(set(digests))):
            for row in self.db.execute(
                    f"SELECT {_FACE_COLUMNS} FROM faces WHERE not_face = 0 AND "
                    f"hash IN ({marks(part)}) ORDER BY left_", part):
                out.setdefault(row[1], []).append(_face(row))
        return out

    def face(self, face_id: int) -> FaceRow | None:
        row = self.db.execute(f"SELECT {_FACE_COLUMNS} FROM faces WHERE id = ?",
                              [face_id]).fetchone()
        return _face(row) if row else None

    def person_faces(self, person: int) -> list[FaceRow]:
        """A person's faces, the largest first."""
        return [_face(r) for r in self.db.execute(
            f"SELECT {_FACE_COLUMNS} FROM faces WHERE person = ? AND not_face = 0 "
            "ORDER BY size DESC, id", [person])]

    def people(self, include_hidden: bool = True) -> list[PersonRow]:
        """Every person with at least one face in a photo of the library, the most
        photographed first."""
        hidden = "" if include_hidden else "AND p.hidden = 0"
        rows = self.db.execute(
            "SELECT p.id, p.name, p.hidden, COUNT(f.id), COUNT(DISTINCT f.hash), "
            "(SELECT id FROM faces WHERE person = p.id AND not_face = 0 "
            " ORDER BY size DESC, id LIMIT 1) "
            "FROM people p JOIN faces f ON f.person = p.id AND f.not_face = 0 "
            f"AND f.hash IN (SELECT hash FROM photos WHERE status = '{OK}') "
            f"WHERE 1 {hidden} GROUP BY p.id ORDER BY COUNT(DISTINCT f.hash) DESC, p.id")
        return [PersonRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def loose_faces(self) -> list[tuple[int, str]]:
        """(face id, a path of its photo) of the faces in no person, in online photos."""
        return [(face, path_from_db(path)) for face, path in self.db.execute(
            "SELECT f.id, MIN(p.path) FROM faces f JOIN photos p ON p.hash = f.hash "
            f"WHERE f.person IS NULL AND f.not_face = 0 AND p.status = '{OK}' "
            "GROUP BY f.id ORDER BY f.id")]

    def person(self, person: int) -> PersonRow | None:
        return next((p for p in self.people() if p.id == person), None)

    def person_named(self, name: str) -> list[int]:
        """Ids of the people called *name* (compared without case)."""
        return [r[0] for r in self.db.execute("SELECT id FROM people WHERE name = ? ORDER BY id",
                                              [name])]

    def person_names(self) -> dict[int, str]:
        """Id → name of the named people."""
        return dict(self.db.execute("SELECT id, name FROM people WHERE name != ''"))

    def rejections(self) -> set[tuple[int, int]]:
        """(face, person) pairs the user said are not the same."""
        return {(f, p) for f, p in self.db.execute("SELECT face, person FROM face_rejections")}

    def face_count(self) -> tuple[int, int]:
        """(faces, of them in a person)."""
        return self.db.execute("SELECT COUNT(*), COUNT(person) FROM faces WHERE not_face = 0"
                               ).fetchone()

    # --- clustering's and the user's writes --------------------------------------------------

    def new_people(self, groups: list[list[int]]) -> list[int]:
        """A new unnamed person for each group of face ids (clustering's). Returns their ids."""
        ids = []
        with self.transaction():
            for faces in groups:
                person = self.db.execute("INSERT INTO people(created) VALUES (?)",
                                         [time.time()]).lastrowid
                self._assign(faces, person, by_user=False)
                ids.append(person)
        return ids

    def assign_faces(self, faces: list[int], person: int | None, by_user: bool) -> None:
        """Put *faces* with *person* (None: with nobody); a machine's assignment only moves
        faces nobody placed by hand."""
        with self.transaction():
            self._assign(faces, person, by_user)
            self._drop_empty_people()

    def _assign(self, faces: list[int], person: int | None, by_user: bool) -> None:
        guard = "" if by_user else " AND by_user = 0"
        for part in chunks(faces):
            self.db.execute(f"UPDATE faces SET person = ?, by_user = ? WHERE id IN ({marks(part)})"
                            f"{guard}", [person, int(by_user), *part])

    def reject_face(self, face: int, person: int) -> None:
        """"Not this person": the face leaves *person*, for good."""
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO face_rejections(face, person) VALUES (?, ?)",
                            [face, person])
            self.db.execute("UPDATE faces SET person = NULL, by_user = 0 WHERE id = ? AND "
                            "person = ?", [face, person])
            self._drop_empty_people()

    def not_a_face(self, face: int) -> None:
        """"Not a face": it leaves its person and every view, for good."""
        with self.transaction():
            self.db.execute("UPDATE faces SET person = NULL, not_face = 1, by_user = 1 "
                            "WHERE id = ?", [face])
            self._drop_empty_people()

    def create_person(self, name: str, faces: list[int]) -> int:
        """A new person named *name* ("" for none) made of *faces* (the user's split)."""
        with self.transaction():
            person = self.db.execute("INSERT INTO people(name, created) VALUES (?, ?)",
                                     [name, time.time()]).lastrowid
            self._assign(faces, person, by_user=True)
            self._drop_empty_people()
        return person

    def rename_person(self, person: int, name: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE people SET name = ? WHERE id = ?", [name, person])

    def hide_person(self, person: int, hidden: bool) -> None:
        with self.transaction():
            self.db.execute("UPDATE people SET hidden = ? WHERE id = ?", [int(hidden), person])

    def merge_people(self, into: int, other: int) -> None:
        """*other*'s faces (and the faces rejected from it) become *into*'s; *into* keeps
        its name, or takes *other*'s when it had none."""
        with self.transaction():
            self.db.execute("UPDATE faces SET person = ? WHERE person = ?", [into, other])
            self.db.execute("INSERT OR IGNORE INTO face_rejections(face, person) "
                            "SELECT face, ? FROM face_rejections WHERE person = ?", [into, other])
            self.db.execute("DELETE FROM face_rejections WHERE person = ?", [other])
            self.db.execute("UPDATE people SET name = (SELECT name FROM people WHERE id = ?) "
                            "WHERE id = ? AND name = ''", [other, into])
            self.db.execute("UPDATE people SET hidden = 0 WHERE id = ? AND "
                            "(SELECT hidden FROM people WHERE id = ?) = 0", [into, other])
            self.db.execute("DELETE FROM people WHERE id = ?", [other])

    def _drop_empty_people(self) -> None:
        # A named person keeps their name even with no face left (a face may come back).
        self.db.execute("DELETE FROM people WHERE name = '' AND id NOT IN "
                        "(SELECT person FROM faces WHERE person IS NOT NULL AND not_face = 0)")

    def forget_faces(self) -> int:
        """Delete every face, person and correction, and the record that photos were read
        for faces (privacy: faces turned off). Returns the faces deleted."""
        with self.transaction():
            count = self.db.execute("DELETE FROM faces").rowcount
            self.db.execute("DELETE FROM people")
            self.db.execute("DELETE FROM face_rejections")
            self.db.execute("DELETE FROM understanding WHERE kind = 'faces'")
        return count
