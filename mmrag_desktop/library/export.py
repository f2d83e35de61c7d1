"""Export: copies of photos in a folder of the user's choice (to share, to print, to a USB
stick), as they are or made smaller. The library and its files are never changed."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..core.atomic import replacing
from ..core.errors import MmragError
from ..media.files import BadImage, is_video_name
from ..media.photos import decode, fit_within

RESIZED_QUALITY = 90  # JPEG quality of a made-smaller copy


class ExportError(MmragError, OSError):
    """The destination cannot be written (missing, not a folder, read-only, or full)."""


@dataclass
class ExportReport:
    """What an export did: the files ``written`` (their new paths, in order), the photos
    ``skipped`` with why, and whether it was ``cancelled``."""

    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False


def _free_name(folder: Path, name: str, taken: set[str]) -> Path:
    """*name* in *folder*, or ``stem (2).ext``, ``stem (3).ext``… when a file (or an earlier
    photo of this export) has it: nothing already there is overwritten."""
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.casefold() in taken or (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){ext}"
    taken.add(candidate.casefold())
    return folder / candidate


def export_photos(paths: list[str], folder: str | os.PathLike, max_side: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None,
                  cancel: threading.Event | None = None) -> ExportReport:
    """Copy the photos at *paths* into *folder*, under their names (``name (2).jpg`` where
    one is taken). With *max_side*, photos longer than that many pixels are written as
    JPEGs of at most *max_side* on their longest side (EXIF orientation applied and reset,
    the rest of the EXIF kept); videos and smaller photos are copied as they are. Each file
    appears whole or not at all (written to a temporary name, then renamed).

    Args:
        on_progress: told (done, total) after each photo.
        cancel: set to stop after the photo under way.

    Raises:
        ExportError: *folder* is not a writable folder, or the disk filled up (what was
            written so far stays; the report says which).
    """
    target = Path(folder)
    if not target.is_dir():
        raise ExportError(f"{target} is not a folder: choose an existing folder to export to")
    if not os.access(target, os.W_OK):
        raise ExportError(f"{target} cannot be written to (read-only or not yours)")
    report, taken = ExportReport(), set()
    for done, path in enumerate(paths, 1):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        source = Path(path)
        try:
            shrink = max_side is not None and not is_video_name(source)
            if shrink:
                with Image.open(source) as probe:
                    shrink = max(probe.size) > max_side
            name = source.stem + ".jpg" if shrink else source.name
            out = _free_name(target, name, taken)
            with replacing(out) as temp:
                if shrink:
                    _write_smaller(source, temp, max_side)
                else:
                    shutil.copyfile(source, temp)
            shutil.copymode(source, out)  # the source's permissions, not a temp file's 0600
            report.written.append(str(out))
        except OSError as exc:
            if getattr(exc, "errno", None) == 28:  # ENOSPC
                raise ExportError(f"the disk holding {target} is full after "
                                  f"{len(report.written)} photos") from exc
            report.skipped.append((path, f"could not be read: {exc.strerror or exc}"))
        except (BadImage, Image.DecompressionBombError, ValueError) as exc:
            report.skipped.append((path, str(exc)))
        if on_progress is not None:
            on_progress(done, len(paths))
    return report


def _write_smaller(source: Path, temp: Path, max_side: int) -> None:
    image, _ = decode(source, min_side=max_side)
    with Image.open(source) as original:
        exif = original.getexif()
    exif[0x0112] = 1  # the pixels are upright now
    fit_within(image, max_side).save(temp, "JPEG", quality=RESIZED_QUALITY, exif=exif.tobytes())
