"""Walking photo folders: which files are candidate photos, and their size and mtime."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .imaging import is_image_name


@dataclass(frozen=True)
class FileStat:
    """A candidate photo found by a scan: absolute path, size in bytes, mtime in ns."""

    path: str
    root: str
    size: int
    mtime_ns: int


class Excluder:
    """Decides which names a scan skips: hidden names (unless included) and the
    ``fnmatch`` patterns in the config, matched against each path component's name."""

    def __init__(self, patterns: Iterable[str], include_hidden: bool = False):
        self.patterns = tuple(patterns)
        self.include_hidden = include_hidden

    def skips(self, name: str) -> bool:
        if not self.include_hidden and name.startswith("."):
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def skips_path(self, path: str, root: str) -> bool:
        """True when any component of *path* below *root* is skipped."""
        rel = os.path.relpath(path, root)
        return any(self.skips(part) for part in Path(rel).parts if part not in (".", ".."))


def scan(
    roots: Iterable[str],
    excluder: Excluder,
    on_skip: Callable[[str, str], None],
) -> Iterator[FileStat]:
    """Yield every candidate photo below *roots*, recursively, following symlinks once.

    Directory symlink loops are cut by remembering each directory's (device, inode).
    Files and directories that cannot be read are reported through ``on_skip(path, reason)``
    and skipped; files that vanish between listing and ``stat`` are skipped silently.
    """
    for root in roots:
        visited: set[tuple[int, int]] = set()
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
            except OSError as exc:
                on_skip(folder, f"folder unreadable: {exc.strerror or exc}")
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                continue  # a symlink loop, or a second link to a folder already scanned
            visited.add(key)
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                on_skip(folder, f"folder unreadable: {exc.strerror or exc}")
                continue
            subfolders = []
            for entry in entries:
                if excluder.skips(entry.name):
                    continue
                try:
                    st = entry.stat()  # follows symlinks
                except FileNotFoundError:
                    if entry.is_symlink():
                        on_skip(entry.path, "broken symbolic link")
                    continue
                except OSError as exc:
                    on_skip(entry.path, f"unreadable: {exc.strerror or exc}")
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subfolders.append(entry.path)
                elif stat.S_ISREG(st.st_mode) and is_image_name(Path(entry.name)):
                    yield FileStat(entry.path, root, st.st_size, st.st_mtime_ns)
            stack.extend(sorted(subfolders, reverse=True))
