"""The folders panel: the library's watched folders, their photo counts and states, and the
files that could not be indexed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog,
                               QHBoxLayout, QHeaderView, QMessageBox, QPushButton, QTableWidget,
                               QTableWidgetItem, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from ..paths import display_path
from . import plain
from .bridge import FolderState


class FoldersPanel(QWidget):
    """Emits ``add_requested(path)``, ``remove_requested(path)`` and
    ``errors_requested(path)``; :meth:`set_folders` shows the bridge's states."""

    add_requested = Signal(str)
    remove_requested = Signal(str)
    errors_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Photos", "State"])
        self.tree.setRootIsDecorated(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda item, _: self._show_errors())
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.errors_button = QPushButton("Errors…")
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button.clicked.connect(self._remove)
        self.errors_button.clicked.connect(self._show_errors)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.errors_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self.states: list[FolderState] = []
        self._update_buttons()

    def set_folders(self, states: list[FolderState]) -> None:
        selected = self.selected()
        self.states = states
        self.tree.clear()
        for state in states:
            errors = f"{state.errors} error{'s' if state.errors > 1 else ''}"
            text = state.state + (f", {errors}" if state.errors else "")
            item = QTreeWidgetItem([display_path(state.path), f"{state.photos:,}", text])
            item.setData(0, Qt.ItemDataRole.UserRole, state.path)
            item.setToolTip(0, plain.tooltip(display_path(state.path)))
            item.setToolTip(2, plain.tooltip(text))  # the whole state, when the column is narrow
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.tree.addTopLevelItem(item)
            if state.path == selected:
                item.setSelected(True)
        self._update_buttons()

    def selected(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _update_buttons(self) -> None:
        path = self.selected()
        self.remove_button.setEnabled(path is not None)
        errors = next((s.errors for s in self.states if s.path == path), 0)
        self.errors_button.setEnabled(bool(errors))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if folder:
            self.add_requested.emit(folder)

    def _remove(self) -> None:
        path = self.selected()
        if path is None:
            return
        answer = QMessageBox.question(
            self, "Remove folder",
            f"Remove {path} from the library?\n\nIts photos leave the search results; the "
            "files themselves are not touched. Adding the folder again re-indexes it.")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_requested.emit(path)

    def _show_errors(self) -> None:
        path = self.selected()
        if path is not None:
            self.errors_requested.emit(path)


class ErrorsDialog(QDialog):
    """The files of one folder that could not be indexed, with their reasons."""

    def __init__(self, root: str, errors: list[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Not indexed in {root}")
        self.resize(900, 420)
        table = QTableWidget(len(errors), 2)
        table.setHorizontalHeaderLabels(["File", "Reason"])
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.verticalHeader().setVisible(False)
        for row, (path, reason) in enumerate(errors):
            table.setItem(row, 0, QTableWidgetItem(path))
            table.setItem(row, 1, QTableWidgetItem(reason))
        table.resizeColumnToContents(0)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
