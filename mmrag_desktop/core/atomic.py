"""Writing a file so that a crash, a full disk or a second process never leaves half of it:
the one way the app writes a single file (caches, settings, thumbnails, the lock's owner)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path, durable: bool = False) -> Iterator[Path]:
    """A new private (0600) temp file beside *path*, ``<name>.<random>.tmp``, for the block
    to write; renamed over *path* when the block ends, removed if it raises. Unique, so two
    processes writing at once never write into the same file. With *durable*, its bytes
    reach the disk before the rename (fsync), so a power cut leaves the old file or the new
    one.

    Raises:
        OSError: the temp file could not be made, written or renamed (it is removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        if durable:
            with open(temp, "rb+") as file:
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, write: Callable[[BinaryIO], None],
                     durable: bool = False) -> None:
    """Make *path* by ``write(file)`` (a binary file) through :func:`replacing`.

    Raises:
        OSError: it could not be written (nothing is left of the attempt).
    """
    with replacing(path, durable) as temp, open(temp, "wb") as file:
        write(file)
