"""The library without a query: its photos newest first, grouped by month (the timeline),
and the folders that hold them (the folder tree)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from ..core.paths import is_within
from .query import Result


@dataclass(frozen=True)
class Month:
    """Photos ``start`` to ``start + count`` of a :class:`Timeline`, all dated in ``key``
    (``YYYY-MM``)."""

    key: str
    start: int
    count: int

    @property
    def title(self) -> str:
        """``March 2024``."""
        year, month = int(self.key[:4]), int(self.key[5:7])
        return date(year, month, 1).strftime("%B %Y")


class Timeline(Sequence[Result]):
    """Photos, newest first, as parallel lists (a 100,000-photo library costs a few tens of
    MB, not a dict per photo); ``timeline[i]`` is a :class:`Result` with ``score`` None and
    ``meta`` holding ``hash``, ``date`` and, where known, ``gps_lat`` and ``gps_lon``,
    ``rating`` and ``favourite``.

    Args:
        rows: (row id, path, content hash, date, GPS latitude, longitude[, marks]) sorted
            newest first; the date is ISO 8601, the EXIF time taken, else the file's
            modification time; the coordinates may be None; marks, where set, are
            ``2 × stars + favourite`` (:meth:`.store.database.Store.timeline`).
    """

    def __init__(self, rows: list[tuple]):
        self.ids = [row[0] for row in rows]
        self.paths = [row[1] for row in rows]
        self.hashes = [row[2] for row in rows]
        self.dates = [row[3] for row in rows]
        self._places = {i: (row[4], row[5]) for i, row in enumerate(rows) if row[4] is not None}
        self._marks = {i: row[6] for i, row in enumerate(rows) if len(row) > 6 and row[6]}
        self.months: list[Month] = []
        self._positions: dict[str, int] | None = None
        for i, day in enumerate(self.dates):
            if self.months and self.months[-1].key == day[:7]:
                last = self.months[-1]
                self.months[-1] = Month(last.key, last.start, last.count + 1)
            else:
                self.months.append(Month(day[:7], i, 1))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # noqa: ANN001 - an int or a slice, as Sequence has it
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # a negative index, or IndexError
        meta = {"hash": self.hashes[i], "date": self.dates[i]}
        if i in self._places:
            meta["gps_lat"], meta["gps_lon"] = self._places[i]
        if i in self._marks:
            meta["rating"], meta["favourite"] = self._marks[i] // 2, bool(self._marks[i] % 2)
        return Result(self.ids[i], self.paths[i], None, meta)

    def __iter__(self) -> Iterator[Result]:
        return (self[i] for i in range(len(self)))

    def position(self, path: str) -> int | None:
        """Where the photo at *path* is, or None."""
        if self._positions is None:
            self._positions = {p: i for i, p in enumerate(self.paths)}
        return self._positions.get(path)


@dataclass
class FolderNode:
    """A folder in the library: its photos, those of its subfolders included, and its
    subfolders by name."""

    path: str
    photos: int = 0
    children: list[FolderNode] = field(default_factory=list)

    @property
    def name(self) -> str:
        return os.path.basename(self.path) or self.path


def folder_tree(roots: list[str], counts: dict[str, int]) -> list[FolderNode]:
    """One tree per root folder (in *roots*' order) from *counts*, the photos directly in
    each folder. Folders without photos below them are left out; a chain of folders that
    only hold one subfolder each is kept (it is how the disk looks)."""
    trees = []
    for root in roots:
        top = FolderNode(root)
        nodes = {root: top}
        for folder in sorted(counts):
            if not is_within(folder, root):
                continue
            chain, parent = [], folder
            while parent not in nodes:
                chain.append(parent)
                parent = os.path.dirname(parent)
            for path in reversed(chain):
                nodes[path] = FolderNode(path)
                nodes[parent].children.append(nodes[path])
                parent = path
            node = folder
            while True:
                nodes[node].photos += counts[folder]
                if node == root:
                    break
                node = os.path.dirname(node)
        for node in nodes.values():
            node.children.sort(key=lambda child: child.name.lower())
        trees.append(top)
    return trees
