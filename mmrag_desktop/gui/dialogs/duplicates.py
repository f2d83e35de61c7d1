"""The near-duplicate finder: groups of copies side by side with resolution, file size and
date, the suggested photo to keep chosen, and *Move the others to trash* per group (asked
first, with Undo, like every trash action)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDoubleSpinBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ...core.text import size_text
from ...domain.duplicates import NEAR_COSINE, DuplicateGroup
from ...domain.query import Result
from ..adapters.bridge import LibraryBridge
from ..adapters.thumbnail_loader import ThumbnailLoader
from ..widgets.layouts import Retired

CARD_SIZE = 160  # pixels


class DuplicatesDialog(QDialog):
    """Emits ``trash_requested(results)`` for the window's trash flow."""

    trash_requested = Signal(list)

    def __init__(self, bridge: LibraryBridge, loader: ThumbnailLoader,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.loader = bridge, loader
        self.setWindowTitle("Duplicates")
        self.threshold = QDoubleSpinBox(minimum=90.0, maximum=100.0, decimals=1,
                                        singleStep=0.1, suffix=" %",
                                        value=NEAR_COSINE * 100)
        self.threshold.setToolTip("How similar two photos must be (cosine similarity of "
                                  "their embeddings) to count as copies")
        self.find_button = QPushButton("Find")
        self.find_button.clicked.connect(self.find)
        self.summary = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel("Similarity at least"))
        top.addWidget(self.threshold)
        top.addWidget(self.find_button)
        top.addWidget(self.summary, 1)
        self.groups_box = QWidget()
        self.groups_layout = QVBoxLayout(self.groups_box)
        self._retired = Retired()
        self.groups_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.groups_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self.groups: list[tuple[DuplicateGroup, QButtonGroup]] = []
        self._pictures: dict[str, list] = {}  # content hash → (label, result) awaiting it
        self._pending = 0  # searches asked for and not answered yet (answered in order)
        bridge.duplicates.connect(self._found)
        loader.loaded.connect(self._thumbnail_loaded)
        self.resize(1000, 700)

    def find(self) -> None:
        self._pending += 1
        self.find_button.setEnabled(False)
        self.summary.setText("Looking for copies…")
        self.bridge.find_duplicates(self.threshold.value() / 100)

    def _found(self, groups: list[DuplicateGroup]) -> None:
        self._pending -= 1
        if self._pending == 0:  # an older search's answer is not shown over a newer one
            self.show_groups(groups)

    def show_groups(self, groups: list[DuplicateGroup]) -> None:
        self._retired.empty(self.groups_layout, keep_last=1)  # the stretch below the groups
        self.groups, self._pictures = [], {}
        for found in groups:
            self.groups_layout.insertWidget(self.groups_layout.count() - 1, self._box(found))
        extra = sum(len(g.photos) - 1 for g in groups)
        self.summary.setText(f"{len(groups)} groups, {extra} photos that are copies"
                             if groups else "No copies found.")
        self.find_button.setEnabled(True)

    def forget(self, paths: list[str]) -> None:
        """Photos that left (moved to the trash): out of their groups at once."""
        gone = set(paths)
        groups = [DuplicateGroup([r for r in found.photos if r.path not in gone], found.exact)
                  for found, _ in self.groups]
        self.show_groups([g for g in groups if len(g.photos) > 1])

    def _box(self, found: DuplicateGroup) -> QGroupBox:
        box = QGroupBox("Exact copies" if found.exact else "Near copies")
        choice = QButtonGroup(box)
        row = QHBoxLayout()
        for number, result in enumerate(found.photos):
            card = QVBoxLayout()
            picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
            picture.setFixedSize(CARD_SIZE, CARD_SIZE)
            self._picture(picture, result)
            meta = result.meta
            facts = QLabel(f"{os.path.basename(result.path)}\n{meta.get('width')}×"
                           f"{meta.get('height')} · {size_text(meta.get('size'))}\n"
                           f"{(meta.get('taken_at') or 'no date')[:10]}")
            facts.setTextFormat(Qt.TextFormat.PlainText)
            facts.setToolTip(result.path)
            keep = QRadioButton("Keep" + (" (suggested)" if number == 0 else ""))
            keep.setChecked(number == 0)
            choice.addButton(keep, number)
            for widget in (picture, facts, keep):
                card.addWidget(widget)
            row.addLayout(card)
        row.addStretch(1)
        # the cards scroll sideways inside their group: a wide group never pushes the
        # dialog (and its button) past the screen's edge
        cards = QWidget()
        cards.setLayout(row)
        strip = QScrollArea()
        strip.setWidget(cards)
        strip.setWidgetResizable(True)
        strip.setFrameShape(QFrame.Shape.NoFrame)
        strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        strip.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        strip.setFixedHeight(cards.sizeHint().height()
                             + strip.horizontalScrollBar().sizeHint().height())
        why = QLabel(f"Suggested: {os.path.basename(found.keep.path)}, because {found.reason}.")
        why.setTextFormat(Qt.TextFormat.PlainText)
        why.setWordWrap(True)
        trash = QPushButton("Move the others to trash…")
        trash.clicked.connect(lambda: self.trash_requested.emit(self.others(found, choice)))
        actions = QHBoxLayout()
        actions.addWidget(why, 1)
        actions.addWidget(trash)
        layout = QVBoxLayout(box)
        layout.addWidget(strip)
        layout.addLayout(actions)
        self.groups.append((found, choice))
        return box

    @staticmethod
    def others(found: DuplicateGroup, choice: QButtonGroup) -> list[Result]:
        """The photos of *found* not chosen to keep."""
        kept = choice.checkedId()
        return [r for number, r in enumerate(found.photos) if number != kept]

    def _picture(self, label: QLabel, result: Result) -> None:
        """The thumbnail now, or when the loader has it (``_thumbnail_loaded``)."""
        image = self.loader.image(result.path, result.meta["hash"])
        if image is None:
            self._pictures.setdefault(result.meta["hash"], []).append((label, result))
        elif not image.isNull():
            label.setPixmap(QPixmap.fromImage(image).scaled(
                CARD_SIZE, CARD_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))

    def _thumbnail_loaded(self, digest: str) -> None:
        for label, result in self._pictures.pop(digest, []):
            self._picture(label, result)
