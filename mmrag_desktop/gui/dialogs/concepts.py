"""The personal concepts (:mod:`..concepts`): each with what it was learned from and how many
photos it tags; *Show photos* searches for it, *Remove…* forgets it (asked first). Concepts
are made from the grid: right-click photos → *Add to a concept…*."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..adapters.bridge import LibraryBridge

HINT = ("A concept is someone or something of your own — a person, a pet, a place — learned "
        "from a few photos of it. Select photos in the results, right-click and choose "
        "“Add to a concept…”; then search for its name, alone or in a query (“Rex at the "
        "beach”), and answer its suggestions with “Yes, this is …” or “No, …”.")


class ConceptsDialog(QDialog):
    """Emits ``show_requested(name)`` to search for a concept."""

    show_requested = Signal(str)

    def __init__(self, bridge: LibraryBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("Personal concepts")
        self.resize(560, 420)
        hint = QLabel(HINT, wordWrap=True)
        hint.setTextFormat(Qt.TextFormat.PlainText)
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(lambda _item: self._show())
        self.show_button = QPushButton("Show photos")
        self.show_button.clicked.connect(self._show)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.list.currentItemChanged.connect(lambda *_: self._enable())
        self._enable()

    def load(self) -> None:
        """List the concepts again (learned in the background)."""
        self.bridge.op(lambda engine: engine.concepts.all()).success(self._listed).run()

    def _listed(self, concepts: list) -> None:
        self.list.clear()
        for probe, tagged, why in concepts:
            if probe is None:
                item = QListWidgetItem(f"(not learned: {why})")
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            else:
                rejected = f", {probe.rejected} rejected" if probe.rejected else ""
                item = QListWidgetItem(f"{probe.name} — {probe.examples} examples{rejected}, "
                                       f"{tagged:,} photos tagged")
                item.setData(Qt.ItemDataRole.UserRole, probe.name)
            self.list.addItem(item)
        if not concepts:
            self.list.addItem(QListWidgetItem("No concepts yet."))
        self._enable()

    def _chosen(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _enable(self) -> None:
        chosen = self._chosen() is not None
        self.show_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def _show(self) -> None:
        if self._chosen():
            self.show_requested.emit(self._chosen())

    def remove(self) -> QMessageBox | None:
        """Ask, then forget the chosen concept (its photos stay as they are)."""
        name = self._chosen()
        if name is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Remove concept",
                          f"Remove the concept “{name}”? Its photos stay; only what it was "
                          "learned from is forgotten.",
                          QMessageBox.StandardButton.Cancel, self)
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.buttonClicked.connect(lambda button: button is remove and self.bridge.op(
            lambda engine: engine.concepts.forget(name), lane="jobs").success(
            lambda _n: (self.load(), self.bridge.refresh_concepts())).run())
        box.open()
        return box
