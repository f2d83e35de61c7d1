"""Asking about photos that are not where the library saw them: before those that vanished in
large numbers leave it, and whether a folder being added is a library folder moved."""

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


def ask_move(parent: QWidget, old: str, new: str, found: int, checked: int,
             move: Callable[[], None], add: Callable[[], None]) -> QMessageBox:
    """Ask whether folder *new*, being added, is library folder *old* moved (say to another
    disk: *found* of *checked* sampled photos are at the same places): ``move()`` keeps
    every photo once, with all that is known of it; ``add()`` indexes *new* as another
    folder. Non-modal; returns the box."""
    box = QMessageBox(QMessageBox.Icon.Question, "Folder moved?",
                      f"{display_path(new)} looks like the library folder {display_path(old)}, "
                      f"which is no longer there: {found} of {checked} photos checked are at "
                      "the same places.\n\nMove the library folder there? Its photos keep "
                      "their text, places, people and everything else the library knows, and "
                      "nothing is read again. Added as another folder, each photo would be in "
                      "the library twice.", parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    yes = box.addButton("Move the library folder", QMessageBox.ButtonRole.AcceptRole)
    other = box.addButton("Add as another folder", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(yes)
    box.buttonClicked.connect(lambda button: move() if button is yes
                              else add() if button is other else None)
    box.open()
    return box
