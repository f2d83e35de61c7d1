"""Help: the keyboard shortcuts (read from the window's own actions, so the list cannot drift
from what the keys do) and About."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ... import __version__

FIXED_KEYS = [
    ("Grid", "Enter or Space", "Preview the photo"),
    ("Grid", "Arrow keys, Shift+arrows", "Move, select more"),
    ("Grid", "Right-click", "Everything you can do with the selected photos"),
    ("Grid", "Ctrl+wheel", "Larger or smaller thumbnails"),
    ("Grid", "Click a month's title", "Select that month's photos"),
    ("Preview", "← →", "Previous or next photo"),
    ("Preview", "F", "Fill the screen (again: back)"),
    ("Preview", "Wheel, + −, double-click", "Zoom in or out"),
    ("Preview", "Drag", "Move around a zoomed photo"),
    ("Preview", "1 / 0", "The photo's own pixels (1:1) / fit"),
    ("Preview", "K", "Play or pause a video (from the moment found)"),
    ("Preview", "Space or Esc", "Close the preview"),
    ("Search field", "Enter", "Search"),
]
"""Keys handled by the widgets themselves rather than by a menu's action."""


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(where, keys, what) of every menu action that has a shortcut, menu by menu, then
    :data:`FIXED_KEYS`."""
    rows = []
    for top in window.menuBar().actions():
        menu = top.menu()
        for action in menu.actions() if menu else []:
            if isinstance(action, QAction) and not action.shortcut().isEmpty():
                keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                rows.append((top.text().replace("&", ""), keys, action.text().replace("&", "")))
    return rows + FIXED_KEYS


def shortcuts_dialog(window: QMainWindow) -> QDialog:
    """Help → Keyboard shortcuts: a table of :func:`shortcut_rows`."""
    dialog = QDialog(window)
    dialog.setWindowTitle("Keyboard shortcuts")
    rows = shortcut_rows(window)
    table = QTableWidget(len(rows), 3)
    table.setHorizontalHeaderLabels(["Where", "Keys", "What it does"])
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, QTableWidgetItem(value))
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(QLabel("Keys that act on photos work while the grid has the focus."))
    layout.addWidget(table)
    layout.addWidget(buttons)
    dialog.resize(560, 520)
    return dialog


def about_dialog(window: QMainWindow) -> QMessageBox:
    """Help → About: the version, what the app promises, and whose work it stands on."""
    box = QMessageBox(window)
    box.setWindowTitle("About mmrag-desktop")
    box.setText(f"mmrag-desktop {__version__}")
    box.setInformativeText(
        "Search your own photos and videos by description, by example, by the text in them "
        "and by who is in them, and ask questions about them. Everything runs on this "
        "computer: nothing is sent anywhere, except a model download you confirmed.\n\n"
        "Built on open_clip, hnswlib, SQLite, Qt (PySide6), Pillow, rapidocr (PP-OCR), "
        "dlib, llama.cpp, PyAV and GeoNames place names (CC BY 4.0).")
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    return box
