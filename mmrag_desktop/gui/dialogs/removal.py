"""Asking before photos that vanished in large numbers leave the library."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from ...core.paths import display_path


def ask_removal(parent: QWidget, root: str, count: int, remove: Callable[[], None]
                ) -> QMessageBox:
    """Ask whether the *count* photos that vanished from *root* should leave the library (an
    unplugged drive looks the same as a deletion); ``remove()`` on a yes. Non-modal; returns
    the box."""
    box = QMessageBox(QMessageBox.Icon.Question, "Photos missing",
                      f"{count} photos of {display_path(root)} are no longer there.\n\n"
                      "If a drive or network share is not connected, keep them: they come "
                      "back, without re-indexing, when it is. If you deleted or moved them "
                      "yourself, remove them from the library (the files are not touched).",
                      parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    yes = box.addButton("Remove from library", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(box.addButton("Keep", QMessageBox.ButtonRole.RejectRole))
    box.buttonClicked.connect(lambda button: button is yes and remove())
    box.open()
    return box
