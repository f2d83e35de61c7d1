"""The library's folders: adding and removing watched folders (roots), their trees, states,
cameras and errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.config import save_config
from ..core.errors import MmragError
from ..core.paths import display_path, is_within, real_folder
from ..domain.folders import Activity, FolderState, folder_states, library_photos
from ..domain.timeline import FolderNode, folder_tree

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from .facade import Library


class FolderError(MmragError, ValueError):
    """A folder cannot be added to the library as asked; the message says why."""


MOVE_SAMPLE = 50
"""Photos of a missing library folder looked for below a new folder, to tell a moved
library folder from another one."""


MOVE_EVIDENCE = 0.8
"""Share of the sampled photos that must be at the same place below the new folder, with
the same size, for it to count as the missing folder moved (a few may have been deleted or
renamed since)."""


@dataclass
class Move:
    """Library folder *old* is not there; folder *new* holds *found* of the *checked*
    photos sampled from it, at the same places."""

    old: str
    new: str
    found: int
    checked: int


class Folders:
    """A library's folders (``library.folders``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    def add(self, folder: str | os.PathLike) -> str:
        """Add a photo folder to the library's roots (persisted), by its real path. A
        folder that holds library folders replaces them (their photos stay, nothing is
        re-embedded). Returns the root's path. Quick: the next index run does the work.

        Raises:
            NotADirectoryError: *folder* is not an existing folder.
            FolderError: *folder* lies inside a library folder, or is the app's own folder.
        """
        path = real_folder(folder)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"not a folder: {display_path(os.fspath(folder))}")
        private = {real_folder(self.lib.home), real_folder(self.lib.path)}
        if any(is_within(path, p) for p in private):
            raise FolderError(f"{display_path(path)} is the app's own data folder")
        roots = [real_folder(r) for r in self.lib.config.roots]
        if path in roots:
            return path
        for root in roots:
            if is_within(path, root):
                raise FolderError(
                    f"{display_path(path)} is inside {display_path(root)}, which is in the "
                    "library already: its photos are indexed with it")
        inside = [root for root in roots if is_within(root, path)]
        if inside:
            self.lib.store.adopt(path)  # root labels only: no vector changes, no writer lock
        self.lib.config.roots = [r for r in self.lib.config.roots if real_folder(r) not in inside]
        self.lib.config.roots.append(path)
        save_config(self.lib.home, self.lib.config)
        for root in inside:
            self.lib.notice("repair", f"{display_path(path)} contains {display_path(root)}, "
                            "which it replaces as a library folder (its photos are kept)")
        return path

    def remove(self, folder: str | os.PathLike) -> int:
        """Remove a root and its photos from the library (the files are not touched).
        Waits for an index run in progress to finish (see :meth:`Watcher.remove_folder`).
        Returns the number of photos removed, counted as the folder list counts them (the
        files that could not be read go too, uncounted)."""
        path = self.root_of(folder)
        with self.lib.index_lock, self.lib.writing("removing a folder"):
            photos = library_photos(self.lib.store.root_counts().get(path, {}))
            if path in self.lib.config.roots:
                self.lib.config.roots.remove(path)
                save_config(self.lib.home, self.lib.config)
            self.lib.store.delete_root(path)
            if self.lib.loaded_vector_index is not None:
                self.lib.sync().save(self.lib.store)
        return photos

    def moved_here(self, folder: str | os.PathLike) -> Move | None:
        """The library folder that *folder* seems to be, moved (say to another disk): a
        root that is not there, at least :data:`MOVE_EVIDENCE` of whose sampled photos
        are at the same places below *folder* with the same sizes. None when none is."""
        new = real_folder(folder)
        for old in self.lib.config.roots:
            if old == new or os.path.isdir(old) or is_within(new, old):
                continue
            sample = self.lib.store.sample_paths(old, MOVE_SAMPLE)
            found = sum(_has_file(os.path.join(new, os.path.relpath(p, old)), size)
                        for p, size in sample)
            if sample and found >= MOVE_EVIDENCE * len(sample):
                return Move(old, new, found, len(sample))
        return None

    def moves(self) -> list[Move]:
        """Library folders that are not there but whose photos another library folder
        holds (it was added after a move instead of moving the old one)."""
        found = (self.moved_here(root) for root in self.lib.config.roots if os.path.isdir(root))
        return [m for m in found if m is not None]

    def move(self, old: str | os.PathLike, new: str | os.PathLike) -> int:
        """Library folder *old* has moved to *new*: its photos keep their embeddings, text,
        places and everything learned about them, at their new paths; *new* replaces *old*
        among the folders (when *new* was added already, its rows of the same files are
        kept and the old ones dropped). The next index run checks the files. Waits for an
        index run in progress. Returns the photos moved.

        Raises:
            NotADirectoryError: *new* is not an existing folder.
            FolderError: *old* is not a library folder, is still there, or *new* is inside
                another library folder or the app's own folder.
        """
        source = self.root_of(old)
        if source not in self.lib.config.roots:
            raise FolderError(f"{display_path(os.fspath(old))} is not a library folder")
        if os.path.isdir(source):
            raise FolderError(f"{display_path(source)} is still there: move it first, "
                              "or add the other folder as a library folder of its own")
        with self.lib.index_lock, self.lib.writing("moving a folder"):
            self.lib.config.roots.remove(source)
            try:
                target = self.add(new)
            except (OSError, FolderError):
                self.lib.config.roots.append(source)
                raise
            moved = self.lib.store.move_root(source, target)
            if self.lib.loaded_vector_index is not None:
                self.lib.sync().save(self.lib.store)
        return moved

    def root_of(self, folder: str | os.PathLike) -> str:
        """The configured root that *folder* names (by real path, as added), else its
        absolute path."""
        wanted = real_folder(folder) if os.path.exists(folder) else os.path.abspath(folder)
        for root in self.lib.config.roots:
            if root == wanted or (os.path.exists(root) and real_folder(root) == wanted):
                return root
        return wanted

    def tree(self) -> list[FolderNode]:
        """The library's folders that hold photos, one tree per root folder."""
        return folder_tree(list(self.lib.config.roots), self.lib.store.folder_counts())

    def states(self, activity: Activity | None = None) -> list[FolderState]:
        """Each watched folder's state and photo counts (see :mod:`.domain.folders`);
        *activity* is what a running watcher knows."""
        return folder_states(list(self.lib.config.roots), self.lib.store.root_counts(), activity)

    def cameras(self) -> list[tuple[str, str, int]]:
        """(camera model, make, photos) of the library's cameras (EXIF), the most used
        first."""
        return self.lib.store.cameras()

    def errors(self, limit: int = 1000, root: str | None = None) -> list[tuple[str, str]]:
        """(path, reason) of up to *limit* files that could not be indexed, under *root* or
        in every folder."""
        return self.lib.store.errors(limit, root)

    def present(self, digests: list[str]) -> set[str]:
        """Which of the content hashes *digests* some photo in the library still has."""
        return self.lib.store.hashes_present(digests)


def _has_file(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False
