"""The Ask panel: questions to the local vision-language model about the library (with
follow-ups) or about one photo; the answer streams in, and the photos it used are shown as
clickable thumbnails."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QTextBrowser, QToolButton, QVBoxLayout, QWidget)

from ..ask import Answer
from ..paths import display_path
from ..search import Result
from . import plain
from .thumbnail_loader import ThumbnailLoader, small_icon

CITED_SIZE = 96  # pixels


class AskPanel(QWidget):
    """Emits ``asked(question, photo or None)``, ``cancelled()``, ``reset()`` and
    ``photo_opened(result)``; the window wires them to the bridge."""

    asked = Signal(str, object)
    setup_requested = Signal()
    cancelled = Signal()
    reset = Signal()
    photo_opened = Signal(object)

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.loader = loader
        self.photo: str | None = None
        self.busy = False
        self.question = QLineEdit(placeholderText="Ask about your photos, e.g. when was I "
                                                  "last at the beach?")
        self.question.returnPressed.connect(self.ask)
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.clicked.connect(self.cancelled.emit)
        self.cancel_button.setEnabled(False)
        self.new_button = QPushButton("New conversation")
        self.new_button.clicked.connect(self.new_conversation)
        self.subject = QToolButton()
        self.subject.setToolTip("Asking about this photo — click to ask about the library")
        self.subject.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.subject.clicked.connect(lambda: self.set_photo(None))
        self.subject.hide()
        self.setup_note = QLabel()
        self.setup_note.setWordWrap(True)
        self.setup_button = QPushButton("Set up Ask…")
        self.setup_button.clicked.connect(self.setup_requested.emit)
        self.setup_box = QWidget()
        setup_layout = QHBoxLayout(self.setup_box)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.addWidget(self.setup_note, 1)
        setup_layout.addWidget(self.setup_button)
        self.setup_box.hide()
        self.answer = QTextBrowser()
        self.answer.setOpenLinks(False)
        self.cited_list = QListWidget()
        self.cited_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.cited_list.setIconSize(QSize(CITED_SIZE, CITED_SIZE))
        self.cited_list.setFixedHeight(CITED_SIZE + 40)
        self.cited_list.setFlow(QListWidget.Flow.LeftToRight)
        self.cited_list.setWrapping(False)
        self.cited_list.itemActivated.connect(
            lambda item: self.photo_opened.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.cited_list.itemDoubleClicked.connect(
            lambda item: self.photo_opened.emit(item.data(Qt.ItemDataRole.UserRole)))
        loader.loaded.connect(self._thumbnail_loaded)
        row = QHBoxLayout()
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_button)
        row.addWidget(self.cancel_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.subject)
        buttons.addStretch(1)
        buttons.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.setup_box)
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addWidget(self.answer, 1)
        layout.addWidget(QLabel("Photos the answer used:"))
        layout.addWidget(self.cited_list)

    def set_photo(self, path: str | None) -> None:
        """Ask about this photo (None: about the library)."""
        self.photo = path
        if path:
            self.subject.setText(f"About {os.path.basename(path)}  ✕")
            self.subject.setIcon(small_icon(path, 32))
            self.subject.show()
        else:
            self.subject.hide()
        self.new_conversation()
        self.question.setFocus()

    def new_conversation(self) -> None:
        self.answer.clear()
        self.cited_list.clear()
        self.reset.emit()

    def ask(self) -> None:
        question = self.question.text().strip()
        if not question or self.busy:
            return
        self.busy = True
        self.ask_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.answer.append(f"<p><b>{html.escape(question)}</b></p>")
        self.answer.append("")
        self.question.clear()
        self.asked.emit(question, self.photo)

    def add_text(self, piece: str) -> None:
        """A streamed piece of the answer."""
        cursor = self.answer.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(piece)
        self.answer.setTextCursor(cursor)

    def finish(self, answer: Answer | str) -> None:
        """The answer is complete (or was stopped): show the photos it used."""
        self._idle()
        if isinstance(answer, Answer):
            if answer.cancelled:
                self.add_text(" [stopped]")
            self.cited_list.clear()
            for result in answer.shown:
                number = answer.candidates.index(result) + 1
                item = QListWidgetItem(f"[{number}]")
                item.setData(Qt.ItemDataRole.UserRole, result)
                item.setToolTip(plain.tooltip(display_path(result.path)))
                self.cited_list.addItem(item)
                self._set_icon(item)
            if not answer.shown:
                self.answer.append("<i>No photo was judged relevant.</i>")

    def needs_setup(self, why: str | None) -> None:
        """Show why Ask cannot answer yet, with the button to the set-up page (None: it
        can; the note goes away)."""
        self._idle()
        self.setup_note.setText(why or "")
        self.setup_box.setVisible(bool(why))

    def fail(self, message: str) -> None:
        self._idle()
        self.answer.append(f"<p style='color:#b00020'>{html.escape(message)}</p>")

    def _idle(self) -> None:
        self.busy = False
        self.ask_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _set_icon(self, item: QListWidgetItem) -> None:
        result: Result = item.data(Qt.ItemDataRole.UserRole)
        image = self.loader.image(result.path, result.meta["hash"])
        if image is not None and not image.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _thumbnail_loaded(self, digest: str) -> None:
        for row in range(self.cited_list.count()):
            item = self.cited_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole).meta.get("hash") == digest:
                self._set_icon(item)
