"""Text fields that also take a photo, dropped from a file manager or pasted (a file, or
image data such as a screenshot): the search field and the Ask panel's question."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QMimeData, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import QLineEdit, QWidget

from ..adapters.bridge import LibraryBridge


def photo_paths(mime: QMimeData) -> list[str]:
    """Local image files in a drop or a paste."""
    return [url.toLocalFile() for url in mime.urls()
            if url.isLocalFile() and LibraryBridge.is_photo_name(Path(url.toLocalFile()))]


def has_photo(mime: QMimeData) -> bool:
    """Whether a drag or a paste carries a photo file or image data."""
    return bool(photo_paths(mime)) or mime.hasImage()


class PhotoDrops:
    """For a widget (listed before its Qt class) that hands a photo dropped anywhere on it
    to its ``photo_field``, a :class:`PhotoLineEdit`."""

    photo_field: PhotoLineEdit

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if has_photo(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        if self.photo_field.take_photo(event.mimeData()):
            event.acceptProposedAction()


class PhotoLineEdit(QLineEdit):
    """A text field that also takes a photo: one dropped on it or pasted into it emits
    ``photo(path)``; pasted image data (a screenshot) is saved to *paste_dir* first."""

    photo = Signal(str)

    def __init__(self, paste_dir: Path, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.paste_dir = paste_dir
        self.setAcceptDrops(True)
        self.setClearButtonEnabled(True)
        self.setPlaceholderText(placeholder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if has_photo(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if self.take_photo(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dropEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Paste) and \
                self.take_photo(QGuiApplication.clipboard().mimeData()):
            return
        super().keyPressEvent(event)

    def take_photo(self, mime: QMimeData) -> bool:
        """Emit ``photo`` for a photo file or image data in *mime*; False if it holds none."""
        paths = photo_paths(mime)
        if paths:
            self.photo.emit(paths[0])
            return True
        if mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                self.paste_dir.mkdir(parents=True, exist_ok=True)
                path = self.paste_dir / f"pasted-{time.strftime('%Y%m%d-%H%M%S')}.png"
                image.save(str(path))
                self.photo.emit(str(path))
                return True
        return False
