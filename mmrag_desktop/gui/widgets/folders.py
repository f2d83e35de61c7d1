"""The folders panel: the library's watched folders, their photo counts and states, the
folders below them to browse, and the files that could not be indexed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.paths import display_path
from ...domain.folders import FolderState
from ...domain.timeline import FolderNode
from . import plain


def short_state(state: str) -> str:
    """A folder's state in a word or two for its column ("offline (the disk is not
    connected)" → "offline", "up to date, 3 missing (kept)" → "up to date"): the folder
    names beside it keep their width (a long state squeezed them to "2019 Va…ortugal")."""
    return state.split(",")[0].split(" (")[0].split(":")[0]


class FoldersPanel(QWidget):
    """The watched folders (:meth:`set_folders`, the bridge's states) as a tree of the
    folders below them that hold photos (:meth:`set_tree`). Selecting a folder browses it:
    ``folder_chosen(path)``, or ``folder_chosen("")`` for the whole library. Emits
    ``add_requested(path)``, and ``remove_requested(root)`` and ``errors_requested(root)``
    for the watched folder of the selection."""

    add_requested = Signal(str)
    remove_requested = Signal(str)
    errors_requested = Signal(str)
    folder_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Photos", "State"])
        self.tree.setRootIsDecorated(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)  # else State shares the free width with the names
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemSelectionChanged.connect(lambda: self.folder_chosen.emit(self.chosen()))
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
        self.nodes: list[FolderNode] = []
        self._update_buttons()

    def set_folders(self, states: list[FolderState]) -> None:
        self.states = states
        self._rebuild()

    def set_tree(self, nodes: list[FolderNode]) -> None:
        """The folders below the watched ones, with their photo counts."""
        self.nodes = nodes
        self._rebuild()

    def _rebuild(self) -> None:
        chosen = self.chosen()
        expanded = {item.data(0, Qt.ItemDataRole.UserRole) for item in self._items()
                    if item.isExpanded()}
        self.tree.blockSignals(True)
        self.tree.clear()
        below = {node.path: node for node in self.nodes}
        for state in self.states:
            errors = f"{state.errors:,} error{'s' if state.errors > 1 else ''}"
            text = state.state + (f", {errors} (double-click to see them)" if state.errors else "")
            item = self._item(state.path, display_path(state.path), state.photos,
                              short_state(state.state) + (f" ⚠ {state.errors:,}" if state.errors else ""))
            item.setToolTip(2, plain.tooltip(text))  # the column holds its first words
            self.tree.addTopLevelItem(item)
            if state.path in below:
                self._add_children(item, below[state.path])
        for item in self._items():
            path = item.data(0, Qt.ItemDataRole.UserRole)
            item.setExpanded(path in expanded)
            if path == chosen:
                item.setSelected(True)
                parent = item.parent()
                while parent is not None:
                    parent.setExpanded(True)
                    parent = parent.parent()
        self.tree.blockSignals(False)
        self._update_buttons()
        if chosen and self.chosen() != chosen:  # the folder left the library
            self.folder_chosen.emit(self.chosen())

    def _item(self, path: str, name: str, photos: int, state: str = "") -> QTreeWidgetItem:
        item = QTreeWidgetItem([name, f"{photos:,}", state])
        item.setData(0, Qt.ItemDataRole.UserRole, path)
        item.setToolTip(0, plain.tooltip(display_path(path)))
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return item

    def _add_children(self, item: QTreeWidgetItem, node: FolderNode) -> None:
        for child in node.children:
            child_item = self._item(child.path, child.name, child.photos)
            item.addChild(child_item)
            self._add_children(child_item, child)

    def _items(self) -> list[QTreeWidgetItem]:
        out, todo = [], [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while todo:
            item = todo.pop()
            out.append(item)
            todo += [item.child(i) for i in range(item.childCount())]
        return out

    def choose(self, path: str) -> None:
        """Select the folder at *path* ("" selects none: the whole library)."""
        self.tree.clearSelection()
        for item in self._items():
            if item.data(0, Qt.ItemDataRole.UserRole) == path:
                self.tree.setCurrentItem(item)

    def chosen(self) -> str:
        """The selected folder, or "" for none."""
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else ""

    def selected(self) -> str | None:
        """The watched folder of the selection."""
        items = self.tree.selectedItems()
        if not items:
            return None
        item = items[0]
        while item.parent() is not None:
            item = item.parent()
        return item.data(0, Qt.ItemDataRole.UserRole)

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
