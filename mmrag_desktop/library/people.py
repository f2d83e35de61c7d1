"""People in a library: faces (found by the understanding pass, :mod:`.understanding.faces`)
grouped into people incrementally (:mod:`.domain.people`), named, merged, split and corrected
by the user, and the photos each person is in. What the user says is never undone by the
machine: named people are not renamed or merged, faces placed by hand stay, a face said
"not this person" never goes back, "not a face" leaves every view."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..core.config import save_config
from ..core.errors import MmragError
from ..domain.people import JOIN_DISTANCE, clusters, joins
from ..domain.query import Filters
from ..index.faces import within
from ..media.photos import decode
from ..store.people import FaceRow, PersonRow
from ..understanding.faces import DESCRIBE_SIDE

if TYPE_CHECKING:
    from .facade import Library


class PersonError(MmragError, ValueError):
    """No such person or face, or a name that cannot be used; the message says which."""


@dataclass
class Grouping:
    """What :meth:`People.update` did: faces that joined a known person, new people made
    and the faces in them, and faces still waiting for a second photo of their person."""

    joined: int = 0
    new_people: int = 0
    grouped: int = 0
    waiting: int = 0


class People:
    """Faces and people (``library.people``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    # --- grouping ------------------------------------------------------------------------

    def update(self) -> Grouping:
        """Group the faces no person has yet: each joins the person of its nearest grouped
        face within :data:`.domain.people.JOIN_DISTANCE` (unless the user rejected that
        pairing); the rest are clustered among themselves, and each cluster with faces in
        two or more photos becomes a new, unnamed person. Existing people are kept as they
        are. Called after the understanding pass finds faces."""
        store, report = self.lib.store, Grouping()
        new_ids, new_vectors, _, new_photos = store.face_descriptors(assigned=False)
        if len(new_ids) == 0:
            return report
        known_ids, known_vectors, persons, _ = store.face_descriptors(assigned=True)
        joined = joins(within(new_vectors, known_vectors, JOIN_DISTANCE), new_ids.tolist(),
                       persons, store.rejections())
        by_person: dict[int, list[int]] = {}
        for face, person in joined.items():
            by_person.setdefault(person, []).append(face)
        left = np.array([face not in joined for face in new_ids.tolist()], dtype=bool)
        rest_ids, rest_vectors = new_ids[left], new_vectors[left]
        rest_photos = [photo for photo, keep in zip(new_photos, left) if keep]
        groups = clusters(within(rest_vectors, rest_vectors, JOIN_DISTANCE), rest_photos)
        with self.lib.writing("grouping faces into people"):
            for person, faces in by_person.items():
                store.assign_faces(faces, person, by_user=False)
            store.new_people([[int(rest_ids[i]) for i in group] for group in groups])
        report.joined = len(joined)
        report.new_people = len(groups)
        report.grouped = sum(len(g) for g in groups)
        report.waiting = len(rest_ids) - report.grouped
        return report

    # --- reading -------------------------------------------------------------------------

    def everyone(self, include_hidden: bool = False) -> list[PersonRow]:
        """The people, the most photographed first (hidden ones only with
        *include_hidden*)."""
        return self.lib.store.people(include_hidden)

    def get(self, person: int | str) -> PersonRow:
        """A person by id, or by name (compared without case).

        Raises:
            PersonError: no such person, or two people have that name.
        """
        ids = self.ids(person)
        if len(ids) > 1:
            raise PersonError(f"{len(ids)} people are called {person!r}: use an id "
                              "(mmrag people)")
        found = self.lib.store.person(ids[0])
        if found is None:
            raise PersonError(f"{person!r} has no faces in the library")
        return found

    def ids(self, person: int | str) -> list[int]:
        """The ids *person* names: itself when a known id, else the people so named.

        Raises:
            PersonError: nobody is called that.
        """
        if isinstance(person, int) or str(person).isdigit():
            if self.lib.store.person(int(person)) is not None:
                return [int(person)]
        found = self.lib.store.person_named(str(person).strip())
        if not found:
            raise PersonError(f"no person called {person!r} (mmrag people lists them; a "
                              "person is named with: mmrag people name ID NAME)")
        return found

    def photos(self, person: int) -> list[tuple[int, str]]:
        """(row id, path) of the library's photos that show *person*, newest first."""
        return [(row[0], row[1]) for row in self.lib.store.timeline(Filters(people=[person]))]

    def loose_faces(self) -> list[tuple[int, str]]:
        """(face id, a path of its photo) of each face in no person yet."""
        return self.lib.store.loose_faces()

    def faces(self, person: int) -> list[FaceRow]:
        """A person's faces, the largest first."""
        return self.lib.store.person_faces(person)

    def in_photos(self, digests: list[str]) -> dict[str, list[tuple[FaceRow, str]]]:
        """Content hash → its faces, each with its person's name ("" for nobody or an
        unnamed person), left to right."""
        names = self.lib.store.person_names()
        return {digest: [(face, names.get(face.person, "")) for face in faces]
                for digest, faces in self.lib.store.faces_of(digests).items()}

    def face_image(self, face: int, side: int = 128) -> Image.Image:
        """A square crop of *face* (its box with a margin), *side* pixels: the picture of a
        person in the people view.

        Raises:
            PersonError: no such face, or no photo of it is in the library.
            BadImage: the photo cannot be decoded.
        """
        row = self._check_faces([face])[0]
        paths = self.lib.store.paths_of_hash(row.hash)
        if not paths:
            raise PersonError(f"face {face} is in no photo of the library")
        # a draft-mode decode of about the size faces were described at, not the full photo
        image, _ = decode(Path(paths[0]), DESCRIBE_SIDE * 3 // 4, at=row.time)
        left, top, right, bottom = (v * s for v, s in zip(row.box, image.size * 2))
        margin = 0.35 * max(right - left, bottom - top)
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        half = max(right - left, bottom - top) / 2 + margin
        crop = image.crop((int(centre_x - half), int(centre_y - half),
                           int(centre_x + half), int(centre_y + half)))
        return crop.resize((side, side), Image.Resampling.LANCZOS)

    # --- the user's corrections ------------------------------------------------------------

    def name(self, person: int | str, name: str) -> None:
        """Name (or rename) a person; the machine never renames them."""
        name = " ".join(name.split())
        if not name:
            raise PersonError("a person needs a name")
        target = self.get(person).id
        with self.lib.writing("naming a person"):
            self.lib.store.rename_person(target, name)

    def merge(self, into: int | str, other: int | str) -> None:
        """*other* is the same person as *into*: one person with both's faces."""
        a, b = self.get(into).id, self.get(other).id
        if a == b:
            raise PersonError("a person cannot be merged with themselves")
        with self.lib.writing("merging people"):
            self.lib.store.merge_people(a, b)

    def move(self, faces: list[int], person: int | str | None) -> int | None:
        """Put *faces* with *person* (by hand: kept across every later grouping), or, with
        None, split them off as a new person. Returns the person's id."""
        self._check_faces(faces)
        with self.lib.writing("moving faces"):
            if person is None:
                return self.lib.store.create_person("", faces)
            target = self.get(person).id
            self.lib.store.assign_faces(faces, target, by_user=True)
            return target

    def not_this_person(self, face: int) -> None:
        """The face is not its person's: it leaves them and never joins them again."""
        row = self._check_faces([face])[0]
        if row.person is None:
            raise PersonError(f"face {face} is in no person")
        with self.lib.writing("correcting a face"):
            self.lib.store.reject_face(face, row.person)

    def not_a_face(self, face: int) -> None:
        """The detector was wrong: the face leaves its person and every view."""
        self._check_faces([face])
        with self.lib.writing("correcting a face"):
            self.lib.store.not_a_face(face)

    def hide(self, person: int | str, hidden: bool = True) -> None:
        """Hide a person from the people list (their faces stay grouped)."""
        target = self.get(person).id
        with self.lib.writing("hiding a person"):
            self.lib.store.hide_person(target, hidden)

    def forget(self) -> int:
        """Turn faces off (the setting ``understand`` loses ``faces``) and delete every
        face, person and correction stored. Returns the faces deleted."""
        if "faces" in self.lib.config.understand:
            self.lib.config.understand.remove("faces")
            save_config(self.lib.home, self.lib.config)
        with self.lib.writing("forgetting faces"):
            return self.lib.store.forget_faces()

    def _check_faces(self, faces: list[int]) -> list[FaceRow]:
        rows = [self.lib.store.face(face) for face in faces]
        missing = [face for face, row in zip(faces, rows) if row is None]
        if missing:
            raise PersonError(f"no face {', '.join(map(str, missing))} in the library "
                              "(mmrag people --all lists them)")
        return rows
