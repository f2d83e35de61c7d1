"""Albums: the library's albums with how many photos each; show one, rename it, or remove it
(its photos stay in the library, and *Undo* puts it back)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..adapters.bridge import LibraryBridge


class AlbumsDialog(QDialog):
    """The albums (kept current through ``bridge.albums``). Emits ``shown(name)`` to show
    an album's photos."""

    shown = Signal(str)

    def __init__(self, bridge: LibraryBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("Albums")
        self.list = QListWidget()
        self.list.itemActivated.connect(lambda item: self.shown.emit(self._name(item)))
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.hide()
        self._removed: tuple[str, list[str]] | None = None  # (name, contents) to put back
        buttons = QHBoxLayout()
        for text, slot in (("Show", lambda: self._selected(self.shown.emit)),
                           ("Rename…", lambda: self._selected(self.rename)),
                           ("Remove…", lambda: self._selected(self.remove))):
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.undo_button)
        self.undo_button.clicked.connect(self.undo)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(close)
        bridge.albums.connect(self.set_albums)
        bridge.refresh_albums()
        self.resize(420, 460)

    @staticmethod
    def _name(item: QListWidgetItem) -> str:
        return item.data(Qt.ItemDataRole.UserRole)

    def _selected(self, action) -> None:
        item = self.list.currentItem()
        if item is not None:
            action(self._name(item))

    def set_albums(self, albums: list) -> None:
        """Show *albums* (:class:`.store.albums.AlbumRow`)."""
        current = self.list.currentItem() and self._name(self.list.currentItem())
        self.list.clear()
        for album in albums:
            item = QListWidgetItem(f"{album.name}  ({album.photos:,} photos)")
            item.setData(Qt.ItemDataRole.UserRole, album.name)
            self.list.addItem(item)
            if album.name == current:
                self.list.setCurrentItem(item)
        self.note.setText("Double-click an album to see its photos." if albums else
                          "No albums yet: select photos, right-click, Add to album → New album…")

    def rename(self, name: str) -> None:
        new, ok = QInputDialog.getText(self, "Rename album", f"New name for “{name}”:", text=name)
        if ok and new.strip() and new.strip() != name:
            self._change(lambda engine: engine.albums.rename(name, new))

    def remove(self, name: str) -> None:
        """Remove album *name* (its photos stay); *Undo* puts it back."""
        def removed(contents: list[str]) -> None:
            self._removed = (name, contents)
            self.undo_button.setText(f"Undo removing “{name}”")
            self.undo_button.show()
            self.bridge.refresh_albums()

        self.bridge.op(lambda engine: engine.albums.delete(name), lane="jobs") \
            .success(removed).failure(self.bridge.message.emit).run()

    def undo(self) -> None:
        if self._removed is not None:
            name, contents = self._removed
            self._removed = None
            self.undo_button.hide()
            self._change(lambda engine: engine.albums.restore(name, contents))

    def _change(self, fn) -> None:
        self.bridge.op(fn, lane="jobs").success(lambda _r: self.bridge.refresh_albums()) \
            .failure(self.bridge.message.emit).run()
