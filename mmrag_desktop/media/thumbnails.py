"""Thumbnails on disk: one small JPEG per photo content and size, made once and reused.

Keyed by the photo's content hash (not its path), so a moved or renamed photo keeps its
thumbnail and an edited one gets a new one. Qt-free: the GUI loads the files on its worker
threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ..core.atomic import write_atomically
from .photos import decode

QUALITY = 85  # JPEG quality of cached thumbnails: small files, no visible blocking at 256 px


def cache_dir(home: Path) -> Path:
    """The thumbnail cache folder inside the app's home."""
    return home / "thumbnails"


def thumbnail(photo: Path, digest: str, size: int, folder: Path, at: float = 0.0) -> Path:
    """The cached thumbnail of *photo*, made first if need be.

    Args:
        photo: the image file (or video).
        digest: its content hash (the cache key with *size* and *at*).
        size: the longest edge of the thumbnail, pixels.
        folder: the cache folder (see :func:`cache_dir`).
        at: for a video, the moment shown, seconds from its start.

    Returns:
        The path of a JPEG at most *size* × *size* pixels, aspect ratio kept.

    Raises:
        BadImage: the photo cannot be read or decoded.
    """
    moment = f"-{round(at * 1000)}" if at else ""  # milliseconds
    target = folder / digest[:2] / f"{digest}-{size}{moment}.jpg"
    if target.is_file():
        return target
    image, _ = decode(photo, min_side=size, at=at)
    image.thumbnail((size, size))
    # a crash or a second thread never leaves a half-written thumbnail under the final name
    write_atomically(target, lambda out: image.save(out, "JPEG", quality=QUALITY))
    return target


def thumbnail_image(photo: Path, digest: str, size: int, folder: Path,
                    at: float = 0.0) -> Image.Image:
    """The thumbnail of *photo* (see :func:`thumbnail`), decoded; a cached file that
    cannot be decoded (truncated by a full disk, overwritten) is made again from the photo
    rather than shown broken for ever.

    Raises:
        BadImage: the photo cannot be read or decoded.
        OSError: the thumbnail made again cannot be decoded either.
    """
    path = thumbnail(photo, digest, size, folder, at)
    try:
        return _decoded(path)
    except OSError:
        path.unlink(missing_ok=True)
        return _decoded(thumbnail(photo, digest, size, folder, at))


def _decoded(path: Path) -> Image.Image:
    with Image.open(path) as cached:
        cached.load()
        return cached.copy()


def paste_dir(home: Path) -> Path:
    """Where pasted query images (a screenshot pasted into the search field) are kept while
    they are the query."""
    return home / "pasted"


def evict(home: Path, in_library: Callable[[list[str]], set[str]],
          pasted: bool = False, batch: int = 500) -> int:
    """Remove thumbnails of photos no longer in the library, and with *pasted* every pasted
    query image (at start and close, when none is in use).

    Args:
        in_library: which of some content hashes the library holds (asked *batch* at a
            time, so a million thumbnails never mean a million hashes in memory).

    Returns:
        The number of files removed.
    """
    removed = 0
    folder = cache_dir(home)
    thumbs = iter(folder.glob("*/*.jpg") if folder.is_dir() else ())
    while chunk := list(itertools.islice(thumbs, batch)):
        keep = in_library([thumb.name.split("-", 1)[0] for thumb in chunk])
        for thumb in chunk:
            if thumb.name.split("-", 1)[0] not in keep:
                thumb.unlink(missing_ok=True)
                removed += 1
    for leftover in folder.glob("*/*.tmp") if folder.is_dir() else ():
        leftover.unlink(missing_ok=True)
    folder = paste_dir(home)
    for image in folder.iterdir() if pasted and folder.is_dir() else ():
        image.unlink(missing_ok=True)
        removed += 1
    return removed
