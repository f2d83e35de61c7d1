"""The search row: the field (a description, or a dropped or pasted photo), the chip of the
query's photo, and the Search button."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QToolButton, QWidget

from ..adapters.thumbnail_loader import small_icon
from .photo_input import PhotoLineEdit

TYPING_PAUSE_MS = 350  # search once typing pauses this long


class SearchRow(QWidget):
    """``requested``: search now (Enter, the button, or a pause in typing);
    ``photo_removed``: the photo's chip was clicked. ``query.photo`` is a photo given."""

    requested = Signal()
    photo_removed = Signal()

    def __init__(self, paste_folder: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.query = PhotoLineEdit(paste_folder, "Describe a photo — or drop or paste a photo here")
        self.query.returnPressed.connect(self.requested)
        self._typing = QTimer(self, singleShot=True, interval=TYPING_PAUSE_MS)
        self._typing.timeout.connect(self.requested)
        self.query.textEdited.connect(lambda _: self._typing.start())
        self.photo_chip = QToolButton()
        self.photo_chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.photo_chip.setToolTip("The photo in the query — click to remove it")
        self.photo_chip.clicked.connect(self.photo_removed)
        self.photo_chip.hide()
        button = QPushButton("Search")
        button.clicked.connect(self.requested)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.query, 1)
        row.addWidget(self.photo_chip)
        row.addWidget(button)

    def show_photo(self, path: str | None) -> None:
        """The chip of the query's photo at *path*; None hides it."""
        if path:
            self.photo_chip.setIcon(small_icon(path, 48))
            self.photo_chip.setText(f"{os.path.basename(path)}  ✕")
        self.photo_chip.setVisible(bool(path))

    def searched(self) -> None:
        """A search started: a pause in typing no longer needs to start one."""
        self._typing.stop()
