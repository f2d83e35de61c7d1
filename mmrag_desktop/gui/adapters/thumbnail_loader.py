"""Thumbnails for the grid, made on the ``thumbnails`` lane (:mod:`.ops`), newest request
first.

The view asks only for the items it paints, so scrolling through 100,000 results loads only
what comes into view; the newest request is served first, so what the user looks at now
comes before what scrolled past.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QImageReader, QPixmap

from ...media.files import BadImage
from ...media.photos import decode
from ...media.thumbnails import thumbnail_image
from .ops import Lanes

MEMORY_ITEMS = 3000
"""Thumbnails kept in memory (about 200 KB each at 256 px: ~600 MB at most)."""

BROKEN = QImage()  # the answer for a photo that cannot be decoded (a null image)
PREVIEW_SIDE = 1600  # pixels: decode JPEGs in draft mode to about this, not to 12 MP


def to_qimage(image: Image.Image) -> QImage:
    """An RGB Pillow image as a QImage that owns its pixels (safe to pass between threads)."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def preview_image(path: str, at: float = 0.0) -> QImage:
    """The photo at *path* (a video's frame *at* seconds) at about :data:`PREVIEW_SIDE`
    pixels, for a worker thread.

    Raises:
        BadImage: the photo cannot be decoded.
    """
    image, _ = decode(Path(path), min_side=PREVIEW_SIDE // 2, at=at)
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return to_qimage(image)


def full_image(path: str, at: float = 0.0) -> QImage:
    """The photo at *path* (a video's frame *at* seconds) at full size, upright, for a worker
    thread: the viewer's 1:1.

    Raises:
        BadImage: the photo cannot be decoded.
    """
    image, _ = decode(Path(path), at=at)
    return to_qimage(image)


def small_icon(path: str, side: int) -> QIcon:
    """An icon of the photo at *path*, at most *side* pixels; JPEGs are scaled while decoding,
    so this is quick enough for the GUI thread even for 12 MP photos."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    reader.setScaledSize(reader.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    return QIcon(QPixmap.fromImage(reader.read()))


class ThumbnailLoader(QObject):
    """Loads thumbnails of *size* pixels through the disk cache in *folder*.

    ``image(path, digest, at)`` answers at once from memory, or returns None and emits
    ``loaded(key)`` (:func:`thumbnail_key`) when the thumbnail is ready. ``requested`` counts the photos sent to
    the *lanes*' ``thumbnails`` lane (tests check that the grid asks only for what it
    shows); each request there makes the newest photo asked for.
    """

    loaded = Signal(str)

    def __init__(self, folder: Path, size: int, lanes: Lanes, parent: QObject | None = None):
        super().__init__(parent)
        self.folder, self.size = folder, size
        self.requested = 0
        self._lanes = lanes
        self._images: OrderedDict[str, QImage] = OrderedDict()
        # thumbnail_key → (path, digest, moment in s), newest last
        self._queue: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._busy: set[str] = set()
        self._wake = threading.Lock()
        self._closed = False

    def image(self, path: str, digest: str, at: float = 0.0) -> QImage | None:
        """The thumbnail (of a video's frame *at* seconds) if ready (a null QImage for an
        unreadable photo), else None."""
        key = thumbnail_key(digest, at)
        with self._wake:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
            if key in self._queue:
                self._queue.move_to_end(key)  # asked again: it is on screen now
            elif key not in self._busy:
                self._queue[key] = (path, digest, at)
                self.requested += 1
                self._lanes.submit("thumbnails", self._make_newest)
        return None

    def set_size(self, size: int) -> None:
        """Switch to another thumbnail size (drops what is in memory)."""
        with self._wake:
            self.size = size
            self._images.clear()
            self._queue.clear()

    def close(self) -> None:
        """Make no more thumbnails (what is queued is dropped)."""
        with self._wake:
            self._closed = True
            self._queue.clear()

    def _make_newest(self) -> None:
        with self._wake:
            if self._closed or not self._queue:
                return  # served by an earlier request's run, or dropped
            key, (path, digest, at) = self._queue.popitem(last=True)
            self._busy.add(key)
            size = self.size
        try:
            result = to_qimage(thumbnail_image(Path(path), digest, size, self.folder, at))
        except (BadImage, OSError):
            result = BROKEN
        with self._wake:
            self._busy.discard(key)
            stale = size != self.size
            if not stale:
                self._images[key] = result
                while len(self._images) > MEMORY_ITEMS:
                    self._images.popitem(last=False)
        # Said even when made at a size no longer wanted: a view that asked for it meanwhile
        # (and was told it was in the works) asks again, at the new size.
        self.loaded.emit(key)


def thumbnail_key(digest: str, at: float = 0.0) -> str:
    """What a thumbnail is of: a content hash, and a video's moment (s) where not 0."""
    return f"{digest}@{at:g}" if at else digest
