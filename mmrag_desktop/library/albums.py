"""Favourites, star ratings and albums (``library.albums``): what the user says of photos,
kept by content (:mod:`.store.albums`), so it survives moves and renames."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

from ..core.errors import MmragError
from ..domain.query import Filters
from ..store.albums import MAX_RATING, AlbumRow, Marks

if TYPE_CHECKING:
    from .facade import Library


class AlbumError(MmragError, ValueError):
    """No such album, a name already taken or empty, a rating out of range, or a photo the
    library has not indexed."""


class Albums:
    """Favourites, ratings and albums of a library's photos, by path."""

    def __init__(self, lib: Library):
        self.lib = lib

    def _digests(self, paths: list[str]) -> list[str]:
        return self.lib.indexed_hashes(paths, AlbumError)

    # --- favourites and ratings -------------------------------------------------------------

    def rate(self, paths: list[str], stars: int) -> None:
        """Give the photos at *paths* *stars* (1–5; 0 takes the rating away).

        Raises:
            AlbumError: a rating outside 0–5, or a path the library has not indexed.
        """
        if not 0 <= stars <= MAX_RATING:
            raise AlbumError(f"a rating is 0 to {MAX_RATING} stars, not {stars}")
        digests = self._digests(paths)
        with self.lib.writing("rating photos"):
            self.lib.store.set_marks(digests, rating=stars)

    def favourite(self, paths: list[str], on: bool = True) -> None:
        """Make the photos at *paths* favourites (or, with *on* False, not).

        Raises:
            AlbumError: a path the library has not indexed.
        """
        digests = self._digests(paths)
        with self.lib.writing("marking favourites"):
            self.lib.store.set_marks(digests, favourite=on)

    def marks(self, paths: list[str]) -> dict[str, Marks]:
        """Path → its :class:`.store.albums.Marks`, for the indexed *paths* (unmarked ones
        too, as 0 stars and no favourite)."""
        digests = {p: self.lib.store.hash_of(os.path.abspath(p)) for p in paths}
        known = self.lib.store.marks_of([d for d in digests.values() if d])
        return {p: known.get(d, Marks()) for p, d in digests.items() if d}

    # --- albums ------------------------------------------------------------------------------

    def all(self) -> list[AlbumRow]:
        """Every album, by name, with the number of the library's photos in it."""
        return self.lib.store.albums()

    def get(self, name: str) -> AlbumRow:
        """The album called *name* (case aside).

        Raises:
            AlbumError: there is none.
        """
        album = self.lib.store.album_named(name)
        if album is None:
            known = ", ".join(a.name for a in self.all()) or "none yet"
            raise AlbumError(f"no album called {name!r} (albums: {known})")
        return album

    def photos(self, name: str) -> list[str]:
        """The paths of the library's photos in album *name*, newest first.

        Raises:
            AlbumError: no such album.
        """
        album = self.get(name)
        return [row[1] for row in self.lib.store.timeline(Filters(albums=[album.id]))]

    def favourites(self) -> list[str]:
        """The paths of the library's favourite photos, newest first."""
        return [row[1] for row in self.lib.store.timeline(Filters(favourites=True))]

    def create(self, name: str) -> AlbumRow:
        """A new, empty album.

        Raises:
            AlbumError: no name, or an album of that name exists.
        """
        name = " ".join(name.split())
        if not name:
            raise AlbumError("an album needs a name")
        with self.lib.writing("creating an album"):
            try:
                self.lib.store.create_album(name)
            except sqlite3.IntegrityError:
                raise AlbumError(f"there is an album called {name!r} already") from None
        return self.get(name)

    def rename(self, name: str, new: str) -> AlbumRow:
        """Rename album *name* to *new*.

        Raises:
            AlbumError: no such album, no new name, or another album has it.
        """
        album, new = self.get(name), " ".join(new.split())
        if not new:
            raise AlbumError("an album needs a name")
        with self.lib.writing("renaming an album"):
            try:
                self.lib.store.rename_album(album.id, new)
            except sqlite3.IntegrityError:
                raise AlbumError(f"there is an album called {new!r} already") from None
        return self.get(new)

    def delete(self, name: str) -> list[str]:
        """Remove album *name*; its photos stay in the library. Returns the contents it held
        (:meth:`restore` puts it back: undo).

        Raises:
            AlbumError: no such album.
        """
        album = self.get(name)
        with self.lib.writing("removing an album"):
            return self.lib.store.delete_album(album.id)

    def restore(self, name: str, digests: list[str]) -> AlbumRow:
        """Make album *name* again with the contents *digests* (what :meth:`delete`
        returned).

        Raises:
            AlbumError: an album of that name exists meanwhile.
        """
        album = self.create(name)
        with self.lib.writing("restoring an album"):
            self.lib.store.add_to_album(album.id, digests)
        return self.get(name)

    def add(self, name: str, paths: list[str], create: bool = False) -> int:
        """Put the photos at *paths* in album *name* (made first with *create*, when there
        is none); a photo can be in any number of albums. Returns how many were new to it.

        Raises:
            AlbumError: no such album (without *create*), or a path the library has not
                indexed.
        """
        digests = self._digests(paths)
        album = self.lib.store.album_named(name)
        album = album or (self.create(name) if create else self.get(name))
        with self.lib.writing("adding photos to an album"):
            return self.lib.store.add_to_album(album.id, digests)

    def remove(self, name: str, paths: list[str]) -> int:
        """Take the photos at *paths* out of album *name* (they stay in the library).
        Returns how many were in it.

        Raises:
            AlbumError: no such album, or a path the library has not indexed.
        """
        album, digests = self.get(name), self._digests(paths)
        with self.lib.writing("removing photos from an album"):
            return self.lib.store.remove_from_album(album.id, digests)
