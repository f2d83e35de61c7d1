"""Removing photos the way a desktop app should: into the system trash (``send2trash``),
never deleted, and back out of it on undo where the trash's layout is known (the
freedesktop.org trash of Linux and BSD desktops; on macOS and Windows the user restores from
the Trash / Recycle Bin). The watcher sees both moves as files leaving and coming back.

The freedesktop layout: ``TRASH/files/NAME`` holds the file and ``TRASH/info/NAME.trashinfo``
its original ``Path`` (URL-quoted; relative to the trash's top directory where it lies below
it) and ``DeletionDate`` (Trash specification 1.0, freedesktop.org).
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote

from ..core.errors import MmragError

INFO_SUFFIX = ".trashinfo"


class TrashError(MmragError, OSError):
    """A photo could not be moved to the trash, or back; the message says which and why,
    and ``done`` lists the paths handled before it."""

    def __init__(self, message: str, done: list[str] | None = None):
        super().__init__(message)
        self.done = done or []


def move_to_trash(paths: list[str]) -> list[str]:
    """Move each file to the system trash. Returns the paths moved.

    Raises:
        TrashError: one could not be moved (the message names it; ``done``, those moved
            before it).
    """
    from send2trash import send2trash
    from send2trash.exceptions import TrashPermissionError

    moved = []
    for path in paths:
        try:
            send2trash(path)
        except (OSError, TrashPermissionError) as exc:
            raise TrashError(f"{path} could not be moved to the trash: {exc}", moved) from exc
        moved.append(path)
    return moved


def can_restore() -> bool:
    """Whether :func:`restore` can put files back here (a freedesktop.org trash)."""
    return sys.platform not in ("win32", "darwin")


def _trash_dirs(path: str) -> list[tuple[Path, Path]]:
    """(trash folder, the top directory its relative paths start from) that may hold
    *path*: the home trash, then its volume's ``.Trash/UID`` and ``.Trash-UID``."""
    from send2trash import plat_other

    found = [(Path(plat_other.HOMETRASH), Path(os.fsdecode(plat_other.XDG_DATA_HOME)))]
    volume = Path(os.fsdecode(plat_other.find_mount_point(os.fsencode(path))))
    uid = str(os.getuid())
    for trash in (volume / ".Trash" / uid, volume / f".Trash-{uid}"):
        if trash.is_dir():
            found.append((trash, volume))
    return found


def restore(paths: list[str]) -> list[str]:
    """Put trashed files back where they were (the newest trashing of each path). Returns
    the paths restored.

    Raises:
        TrashError: not possible on this system, a file is no longer in the trash, or
            something now stands at its old place (nothing is overwritten).
    """
    if not can_restore():
        raise TrashError("restore it from the system's Trash: this system does not let "
                         "apps put files back")
    restored = []
    for path in paths:
        best: tuple[str, Path, Path] | None = None
        for trash, top in _trash_dirs(path):
            for info in (trash / "info").glob("*" + INFO_SUFFIX):
                parser = configparser.ConfigParser(interpolation=None)
                try:
                    parser.read(info, encoding="utf-8")
                    entry = parser["Trash Info"]
                    original = top / unquote(entry["Path"])  # an absolute Path wins
                    when = entry.get("DeletionDate", "")
                except (configparser.Error, KeyError, OSError, UnicodeDecodeError):
                    continue
                if str(original) == path and (best is None or when > best[0]):
                    best = (when, info, trash / "files" / info.name[:-len(INFO_SUFFIX)])
        if best is None or not best[2].exists():
            raise TrashError(f"{path} is no longer in the trash", restored)
        if os.path.lexists(path):
            raise TrashError(f"{path} exists again: its trashed copy stays in the trash",
                             restored)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.move(best[2], path)  # the home trash may be on another device
        best[1].unlink(missing_ok=True)
        restored.append(path)
    return restored
