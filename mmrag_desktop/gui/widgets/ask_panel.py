"""The Ask panel: questions to the local vision-language model about the library, or about
one photo (dropped, pasted or chosen) helped by the library, with follow-ups; the answer
streams in and is shown as Markdown, and every photo the model looked at is shown with its
judgement (relevant or not, and why) under its thumbnail."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPixmap, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.paths import display_path
from ...domain.answers import Answer
from ...domain.query import Filters, Result
from ..adapters.bridge import LibraryBridge
from ..adapters.thumbnail_loader import ThumbnailLoader, small_icon
from . import plain
from .photo_input import PhotoDrops, PhotoLineEdit

CITED_SIZE = 96  # pixels
MARKDOWN = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
            | QTextDocument.MarkdownFeature.MarkdownNoHTML)  # the model's HTML stays text
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def markdown_text(text: str) -> str:
    """*text* with Markdown's special characters escaped: shown as typed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def without_images(markdown: str) -> str:
    """*markdown* with every image (``![alt](url)``, ``![alt][ref]``) made a plain link:
    Qt's text layout would read an image a model's answer names from the disk."""
    return markdown.replace("![", "\\![")


class AskPanel(PhotoDrops, QWidget):
    """Emits ``asked(question, photo path, chosen photos' ids as a tuple, or None)``,
    ``cancelled()``, ``reset()`` and
    ``photo_opened(result)``; the window wires them to the bridge."""

    asked = Signal(str, object)
    setup_requested = Signal()
    cancelled = Signal()
    reset = Signal()
    photo_opened = Signal(object)

    def __init__(self, loader: ThumbnailLoader, paste_dir: Path,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.loader = loader
        self.photo: str | tuple[int, ...] | None = None  # a photo, or chosen photos' ids
        self.busy = False
        self.turns: list[tuple[str, str]] = []  # (question, answer as Markdown)
        self.setAcceptDrops(True)
        self.question = PhotoLineEdit(paste_dir, "Ask about your photos, e.g. when was I last "
                                                 "at the beach? Drop a photo to ask about it")
        self.question.setClearButtonEnabled(False)
        self.question.photo.connect(self.set_photo)
        self.photo_field = self.question
        self.question.returnPressed.connect(self.ask)
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.clicked.connect(self.cancelled.emit)
        self.cancel_button.setEnabled(False)
        self.new_button = QPushButton("New conversation")
        self.new_button.clicked.connect(self.new_conversation)
        self.copy_button = QPushButton("Copy answer")
        self.copy_button.setToolTip("Copy the last answer (Markdown)")
        self.copy_button.clicked.connect(self.copy_answer)
        self.copy_button.setEnabled(False)
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
        self.cited_list.setGridSize(QSize(CITED_SIZE + 40, CITED_SIZE + 56))
        self.cited_list.setWordWrap(True)
        self.cited_list.setFixedHeight(CITED_SIZE + 80)
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
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.setup_box)
        layout.addWidget(self.subject)  # a row of its own: a long name never widens the panel
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addWidget(self.answer, 1)
        looked = QLabel("Photos the model looked at (✓ relevant, ✗ not):")
        looked.setWordWrap(True)
        layout.addWidget(looked)
        layout.addWidget(self.cited_list)


    def attach(self, bridge: LibraryBridge, filters: Callable[[], Filters]) -> None:
        """Ask through *bridge* about the library's photos that pass ``filters()``, and show
        its answers as they stream in."""
        self.asked.connect(lambda question, photo: bridge.ask(question, filters(), photo))
        self.cancelled.connect(bridge.cancel_answer)
        self.reset.connect(bridge.new_conversation)
        bridge.answer_text.connect(self.add_text)
        bridge.answer_photos.connect(self.looking_at)
        bridge.answered.connect(self.finish)
        bridge.answer_failed.connect(self.fail)
        bridge.vlm_needed.connect(self.needs_setup)
        bridge.vlm_ready.connect(lambda _description: self.needs_setup(None))
        self.needs_setup(bridge.vlm_status())
    def set_photos(self, ids: list[int], paths: list[str]) -> None:
        """Ask about these library photos (row ids, with their paths): the map's lasso."""
        self.set_photo(None)
        self.photo = tuple(ids)
        self.subject.setText(f"About {len(ids):,} photos from the map  ✕")
        self.subject.setIcon(small_icon(paths[0], 32))
        self.subject.show()

    def set_photo(self, path: str | None) -> None:
        """Ask about this photo (None: about the library)."""
        self.photo = path
        if path:
            plain.chip_text(self.subject, f"About {os.path.basename(path)}")
            self.subject.setIcon(small_icon(path, 32))
            self.subject.show()
        else:
            self.subject.hide()
        self.new_conversation()
        self.question.setFocus()

    def new_conversation(self) -> None:
        self.turns = []
        self._render()
        self.cited_list.clear()
        self.copy_button.setEnabled(False)
        self.reset.emit()

    def ask(self) -> None:
        question = self.question.text().strip()
        if not question or self.busy:
            return
        self.busy = True
        self.ask_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.turns.append((question, ""))
        self._render()
        self.question.clear()
        self.asked.emit(question, self.photo)

    def add_text(self, piece: str) -> None:
        """A streamed piece of the answer."""
        question, text = self.turns[-1]
        self.turns[-1] = (question, text + piece)
        self._render()

    def finish(self, answer: Answer) -> None:
        """The answer is complete (or was stopped): show it without the judgement lines,
        which go under the photos' thumbnails."""
        self._idle()
        text = answer.body or ("" if answer.cancelled or not answer.judgements else
                               "*The model judged the photos (below) but wrote no answer.*")
        if answer.description:
            text = f"*{markdown_text(answer.description)}*\n\n{text}"
        if answer.cancelled:
            text += " *[stopped]*"
        if answer.candidates and not answer.shown:
            text += "\n\n*No photo was judged relevant.*"
        self.turns[-1] = (self.turns[-1][0], text)
        self._render()
        self.copy_button.setEnabled(bool(text))
        if answer.candidates:  # a follow-up keeps the first answer's photos and verdicts
            self._show_candidates(answer)

    def looking_at(self, photos: list) -> None:
        """The photos the model was given, before it judges them (no ✓ or ✗ yet)."""
        self.cited_list.clear()
        for number, result in enumerate(photos, 1):
            item = QListWidgetItem(f"[{number}] …")
            item.setData(Qt.ItemDataRole.UserRole, result)
            item.setToolTip(plain.tooltip(display_path(result.path)))
            self.cited_list.addItem(item)
            self._set_icon(item)
        if self.busy:
            self._render()

    def _show_candidates(self, answer: Answer) -> None:
        verdicts = {j.number: j for j in answer.judgements}
        shown = {id(r) for r in answer.shown}
        self.cited_list.clear()
        for number, result in enumerate(answer.candidates, 1):
            verdict = verdicts.get(number)
            mark = "✓" if id(result) in shown else "✗"
            label = f"{mark} [{number}]" + (f" {verdict.reason}" if verdict and verdict.reason
                                            else "")
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, result)
            item.setToolTip(plain.tooltip(f"{display_path(result.path)}\n{label}"))
            if id(result) not in shown:
                item.setForeground(QColor(128, 128, 128))
            self.cited_list.addItem(item)
            self._set_icon(item)

    def _render(self) -> None:
        parts = [f"**{markdown_text(question)}**\n\n{without_images(text)}"
                 for question, text in self.turns]
        if self.busy and self.turns and not self.turns[-1][1]:
            looking = self.cited_list.count()
            parts[-1] += (f"*Thinking… looking at {looking} photos (below).*" if looking else
                          "*Thinking… choosing the photos to look at.*")
            parts[-1] += " *The first words can take a minute on this computer.*"
        self.answer.document().setMarkdown("\n\n---\n\n".join(parts), MARKDOWN)
        bar = self.answer.verticalScrollBar()
        bar.setValue(bar.maximum())

    def last_answer(self) -> str:
        """The last answer's text (Markdown)."""
        return self.turns[-1][1] if self.turns else ""

    def copy_answer(self) -> None:
        QGuiApplication.clipboard().setText(self.last_answer())

    def needs_setup(self, why: str | None) -> None:
        """Show why Ask cannot answer yet, with the button to the set-up page (None: it
        can; the note goes away)."""
        self._idle()
        self.setup_note.setText(why or "")
        self.setup_box.setVisible(bool(why))

    def fail(self, message: str) -> None:
        self._idle()
        if self.turns:
            question, text = self.turns[-1]
            self.turns[-1] = (question, f"{text}\n\n**⚠ {markdown_text(message)}**")
        self._render()

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
