"""Places: the countries and towns the library's photos were taken in, with how many each,
from the offline place names of their EXIF GPS. Choosing one searches the photos taken there."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)


class PlacesDialog(QDialog):
    """A tree of countries (photos in all) and their towns (photos each), most photos first.
    Double-click or Enter on one emits ``chosen(name)``."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Places")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Place", "Photos"])
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(lambda item, _column: self.chosen.emit(
            item.data(0, Qt.ItemDataRole.UserRole)))
        self.note = QLabel("Loading…")
        self.note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(420, 520)

    def set_places(self, places: dict[str, list[tuple[str, int]]]) -> None:
        """Show *places* (country → [(town, photos)], most first:
        :meth:`.library.search.Search.places`)."""
        self.tree.clear()
        for country, towns in places.items():
            top = QTreeWidgetItem([country or "Elsewhere", f"{sum(n for _, n in towns):,}"])
            top.setData(0, Qt.ItemDataRole.UserRole, country)
            for town, photos in towns:
                item = QTreeWidgetItem([town, f"{photos:,}"])
                item.setData(0, Qt.ItemDataRole.UserRole, town)
                top.addChild(item)
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        self.note.setText(
            "Double-click a country or town to see the photos taken there." if places else
            "No places yet: they are named from the photos' GPS positions (EXIF) by the "
            "understanding pass, offline.")
