"""Walking photo folders: which files are candidate photos, and their size and mtime."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.paths import is_within
from ..media.files import is_media_name

CTIME_IS_CHANGE_TIME = os.name != "nt"
"""Whether ``st_ctime`` is the inode change time (POSIX), which every write or metadata
change moves on, or the creation time (Windows), which an edit in place keeps: there a scan
also compares a :func:`.media.files.sample_digest` of each file that looks unchanged."""


@dataclass(frozen=True)
class FileStat:
    """A candidate photo found by a scan: absolute path, size in bytes, mtime in ns, and
    the time its content or metadata last changed (``st_ctime_ns``), in ns: copy tools keep
    the source's old mtime, so only this says a file is being written now."""

    path: str
    root: str
    size: int
    mtime_ns: int
    changed_ns: int = 0


@dataclass
class Listing:
    """One folder (below library folder *root*) as a scan read it: the candidate photos
    directly in it; the entries that could not be examined, as (path, why) pairs (the
    library's rows for them must stay as they are); broken symbolic links. ``error`` says
    why the folder itself could not be read: then nothing in it or below it is known."""

    root: str
    folder: str
    files: list[FileStat] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    error: str | None = None


_WINDOWS_HIDDEN = getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 2)
_MAC_HIDDEN = getattr(stat, "UF_HIDDEN", 0x8000)


def os_hidden(st: os.stat_result) -> bool:
    """True when the OS marks the entry hidden: the Windows hidden attribute, or macOS's
    ``UF_HIDDEN`` flag (``chflags hidden``). Dot-names are handled by :class:`Excluder`."""
    attributes = getattr(st, "st_file_attributes", 0)
    flags = getattr(st, "st_flags", 0)
    return bool(attributes & _WINDOWS_HIDDEN) or bool(flags & _MAC_HIDDEN)


class Excluder:
    """Decides what a scan skips: hidden names and OS-hidden entries (unless included),
    the ``fnmatch`` patterns in the config, matched against each path component's name,
    and the app's own folders (*private*), wherever they lie."""

    def __init__(self, patterns: Iterable[str], include_hidden: bool = False,
                 private: Iterable[str | os.PathLike] = ()):
        self.patterns = tuple(patterns)
        self.include_hidden = include_hidden
        self.private = frozenset(os.path.realpath(p) for p in private)

    def skips(self, name: str) -> bool:
        if not self.include_hidden and name.startswith("."):
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def skips_entry(self, name: str, st: os.stat_result, path: str) -> bool:
        """Like :meth:`skips`, also by the entry's stat (OS hidden flag) and, for folders,
        whether it is one of the app's own."""
        if not self.include_hidden and os_hidden(st):
            return True
        return (stat.S_ISDIR(st.st_mode) and bool(self.private)
                and os.path.realpath(path) in self.private)

    def skips_path(self, path: str, root: str) -> bool:
        """True when any component of *path* below *root* is skipped by name, or *path*
        lies in one of the app's own folders."""
        real = os.path.realpath(path)
        if any(real == p or real.startswith(os.path.join(p, "")) for p in self.private):
            return True
        rel = os.path.relpath(path, root)
        return any(self.skips(part) for part in Path(rel).parts if part not in (".", ".."))


def scan(
    roots: Iterable[str],
    excluder: Excluder,
    scope: dict[str, list[str]] | None = None,
) -> Iterator[Listing]:
    """Yield a :class:`Listing` of every folder below *roots*, recursively, following
    symlinks once; below ``scope[root]`` only (folders inside *root*) where given. A scope
    folder that is gone or excluded yields nothing. Excluded folders are not listed.

    Symbolic links to folders inside the same root are not followed (the folder is walked
    under its real path), nor links to files inside any of *roots* (the photo is listed
    under its real path: one photo, one row, and nothing that acts on "the other copy"
    can reach the file a link keeps); other directory symlink loops are cut by remembering
    each directory's (device, inode). Files that vanish between listing and ``stat`` are
    left out silently.
    """
    roots = list(roots)
    real_roots = [os.path.realpath(r) for r in roots]
    for root in roots:
        real_root = os.path.realpath(root)
        visited: set[tuple[int, int]] = set()
        starts = (scope or {}).get(root) or [root]
        stack = [start for start in reversed(starts) if start == root
                 or (os.path.isdir(start) and not excluder.skips_path(start, root))]
        while stack:
            folder = stack.pop()
            listing = Listing(root, folder)
            try:
                st = os.stat(folder)
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    continue  # a symlink loop, or a second link to a folder already scanned
                visited.add(key)
                entries = list(os.scandir(folder))
            except OSError as exc:
                listing.error = f"folder unreadable: {exc.strerror or exc}"
                yield listing
                continue
            subfolders = []
            for entry in entries:
                if excluder.skips(entry.name):
                    continue
                try:
                    st = entry.stat()  # follows symlinks
                except FileNotFoundError:
                    if entry.is_symlink():
                        listing.broken_links.append(entry.path)
                    continue
                except OSError as exc:
                    listing.unreadable.append((entry.path, f"unreadable: {exc.strerror or exc}"))
                    continue
                if excluder.skips_entry(entry.name, st, entry.path):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if entry.is_symlink() and is_within(os.path.realpath(entry.path), real_root):
                        continue  # walked under its real path: each photo has one path
                    subfolders.append(entry.path)
                elif stat.S_ISREG(st.st_mode) and is_media_name(Path(entry.name)):
                    if entry.is_symlink() and any(
                            is_within(os.path.realpath(entry.path), r) for r in real_roots):
                        continue
                    listing.files.append(FileStat(entry.path, root, st.st_size, st.st_mtime_ns,
                                                  getattr(st, "st_ctime_ns", st.st_mtime_ns)))
            yield listing
            stack.extend(sorted(subfolders, reverse=True))
