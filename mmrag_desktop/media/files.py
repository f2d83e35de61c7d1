"""Media files before decoding: which names the library indexes, a file's content hash, what
a photo's metadata holds, and reading errors as :class:`BadImage` reasons."""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import MmragError
from .xmp import Xmp

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)


VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
"""Videos, read by :mod:`.media.video` (animated GIFs too, found by their content)."""


class BadImage(MmragError):
    """A file that cannot be indexed; ``str(exc)`` is the reason shown to the user."""


@dataclass
class PhotoMeta:
    """Metadata of one photo. Sizes in pixels after EXIF orientation; GPS in degrees."""

    width: int
    height: int
    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    xmp: Xmp = Xmp()  # what other apps wrote in the file's XMP (:mod:`.media.xmp`)


MAX_PIXELS = 180_000_000
"""Images and video frames above this many pixels are refused as possible decompression
bombs (a 180 MP picture decodes to ~540 MB of RGB), by every decoder, before decoding."""


def check_pixels(width: int, height: int) -> None:
    """Refuse a picture or video frame of *width* × *height* pixels above :data:`MAX_PIXELS`.

    Raises:
        BadImage: it is above the limit (the message says by how much).
    """
    if width * height > MAX_PIXELS:
        raise BadImage(f"{width}×{height} is {width * height / 1e6:.0f} megapixels, above the "
                       f"{MAX_PIXELS / 1e6:.0f} MP limit (decompression bomb guard)")


def position(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """(latitude, longitude) in degrees when together they are a place on Earth: both
    finite, latitude in [-90, 90], longitude in [-180, 180], and not exactly (0, 0), the
    "null island" that some cameras write when they had no fix. Otherwise (None, None):
    a photo without a position rather than one at a position no one took it."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None, None
    if abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None, None
    return lat, lon


POSITION_SQL = ("gps_lat BETWEEN -90 AND 90 AND gps_lon BETWEEN -180 AND 180 "
                "AND NOT (gps_lat = 0 AND gps_lon = 0)")
""":func:`position`'s test in SQL, for a library's stored rows."""


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turns the OS errors of reading *path* into :class:`BadImage` reasons, after refusing
    what is not a regular file: opening a named pipe would wait for a writer for ever, and
    a device may never end."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise IsADirectoryError if stat.S_ISDIR(mode) else \
                BadImage("not a regular file (a pipe, device or socket): not read")
        yield
    except FileNotFoundError as exc:
        raise BadImage("vanished before it could be read") from exc
    except PermissionError as exc:
        raise BadImage("permission denied") from exc
    except IsADirectoryError as exc:
        raise BadImage("is a directory") from exc
    except OSError as exc:
        raise BadImage(f"unreadable: {exc.strerror or exc}") from exc


def file_hash(path: Path) -> str:
    """BLAKE2b-128 of a file's bytes, hex, read in chunks (never the whole file in memory):
    identifies a photo across renames and moves.

    Raises:
        BadImage: the file is empty, unreadable, vanished, or is a folder.
    """
    with reading(path), path.open("rb") as f:
        digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16))
        if f.tell() == 0:
            raise BadImage("empty file (0 bytes)")
        return digest.hexdigest()


SAMPLE_BYTES = 4096
"""Bytes read at each of a file's start, middle and end by :func:`sample_digest`."""


def sample_digest(path: Path | str) -> str:
    """BLAKE2b-128 (hex) of a file's size and of :data:`SAMPLE_BYTES` at its start, middle
    and end: three small reads, cheap enough for every unchanged file of a scan. An edit in
    place that keeps size and mtime still rewrites the EXIF block at the start (a tag edit)
    or the compressed data throughout (a re-encode), so this changes with it; where the OS
    gives no inode change time (Windows: ``st_ctime`` is the creation time) it stands in.

    Raises:
        OSError: the file cannot be opened or read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


def is_image_name(path: Path) -> bool:
    """True when the file name has a supported image extension (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video_name(path: Path) -> bool:
    """True when the file name has a supported video extension (case-insensitive)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_media_name(path: Path) -> bool:
    """True for the names the library indexes: photos and videos."""
    return is_image_name(path) or is_video_name(path)
