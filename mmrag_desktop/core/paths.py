"""File-system paths as the library stores and shows them, and what a library folder is.

POSIX file names are bytes; Python carries the ones that are not valid UTF-8 as lone
surrogates (``surrogateescape``), which neither SQLite TEXT nor TOML can hold. Such bytes are
stored as ``NUL`` + two hex digits: no real path contains NUL, every valid UTF-8 run stays
as it is, and the encoding of a folder is a prefix of the encoding of every file in it, so
folder filters and range scans work on stored paths the same way for every name.
"""

from __future__ import annotations

import os
import re

_ESCAPED = re.compile("\x00([0-9a-f]{2})")


def path_to_db(path: str) -> str:
    """The stored (TEXT, valid UTF-8) form of *path*; the identity for valid UTF-8 names."""
    if "\x00" not in path:
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    raw = os.fsencode(path)
    out, i = [], 0
    while i < len(raw):
        try:
            out.append(raw[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(raw[i:i + exc.start].decode("utf-8"))
            for byte in raw[i + exc.start:i + exc.end]:
                out.append(f"\x00{byte:02x}")
            i += exc.end
    return "".join(out)


def path_from_db(text: str) -> str:
    """Inverse of :func:`path_to_db`."""
    if "\x00" not in text:
        return text
    raw = bytearray()
    pos = 0
    for match in _ESCAPED.finditer(text):
        raw += text[pos:match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += text[pos:].encode("utf-8")
    return os.fsdecode(bytes(raw))


def db_parent(stored: str) -> str:
    """The stored form of the folder holding the file whose stored path is *stored*: the
    encoding leaves separators alone, so this is ``path_to_db(os.path.dirname(path))``."""
    return os.path.dirname(stored)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def display_path(path: str) -> str:
    """A form of *path* safe to print on a terminal: undecodable bytes, control characters
    (a name holding ``ESC [2J`` would clear the screen) and bidirectional overrides (which
    reorder what follows) shown as ``\\xNN`` / ``\\uNNNN``."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def folder_range(folder: str) -> tuple[str, str]:
    """Stored paths of the files below *folder* are those ``>= low`` and ``< high``: a
    range an index answers, and (unlike SQLite's ``substr``, which stops at NUL) exact for
    every stored name."""
    low = path_to_db(os.path.join(os.path.abspath(folder), ""))
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def real_folder(folder: str | os.PathLike) -> str:
    """A library folder's identity: absolute, symbolic links resolved, so that one folder
    reached two ways is one folder."""
    return os.path.realpath(os.path.abspath(folder))


def is_within(path: str, folder: str) -> bool:
    """True when *path* is *folder* or lies below it (both absolute, normalised)."""
    return path == folder or path.startswith(os.path.join(folder, ""))


def outermost(folders: list[str]) -> list[str]:
    """*folders* without duplicates and without those inside another one, order kept."""
    kept: list[str] = []
    for folder in folders:
        if any(is_within(folder, other) for other in folders if other != folder):
            continue
        if folder not in kept:
            kept.append(folder)
    return kept
