"""The main window's menus and the grids' keyboard actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from ..dialogs.help import about_dialog, shortcuts_dialog
from ..widgets import desktop

if TYPE_CHECKING:
    from .main_window import MainWindow


def add_menus(window: MainWindow) -> None:
    """File, View (with thumbnail size), Photos (favourite: ., ratings: 0–5, add to album,
    select all) and Help (keyboard shortcuts, about), and on each grid Ctrl+C (copy the
    selected photos' paths) and Delete (move them to the trash)."""
    file_menu = window.menuBar().addMenu("&File")
    for text, slot, shortcut in (
            ("Add folder…", window.folders_panel.choose_folder, None),
            ("Set up the model…", lambda: window.show_first_run(model_only=True), None),
            ("Set up Ask…", window.open_vlm_setup, None),
            ("Find duplicates…", window.open_duplicates, None),
            ("Settings…", window.open_settings, QKeySequence.StandardKey.Preferences),
            ("Quit", window.close, QKeySequence.StandardKey.Quit)):
        action = QAction(text, window)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(shortcut)
        file_menu.addAction(action)
    view_menu = window.menuBar().addMenu("&View")
    view_menu.addAction(window.folders_dock.toggleViewAction())
    view_menu.addAction(window.ask_dock.toggleViewAction())
    view_menu.addAction("Map of the library…", window.open_map)
    view_menu.addAction("People…", window.open_people)
    view_menu.addAction("Places…", window.open_places)
    view_menu.addAction("Albums…", window.open_albums)
    view_menu.addAction("Personal concepts…", window.open_concepts)
    find = QAction("Search field", window, shortcut=QKeySequence.StandardKey.Find)
    find.triggered.connect(lambda: (window.query.setFocus(), window.query.selectAll()))
    view_menu.addAction(find)
    clear = QAction("Clear search", window, shortcut=QKeySequence(Qt.Key.Key_Escape))
    clear.triggered.connect(window.clear_search)
    view_menu.addAction(clear)
    view_menu.addSeparator()
    for text, keys, step in (("Larger thumbnails", QKeySequence.StandardKey.ZoomIn, 1),
                             ("Smaller thumbnails", QKeySequence.StandardKey.ZoomOut, -1)):
        zoom = QAction(text, window, shortcut=keys)
        zoom.triggered.connect(lambda _=False, s=step: window.zoom_by(s))
        view_menu.addAction(zoom)
    # The Photos menu acts on the selection; its keys work while a grid has the focus (typed
    # in the search field, "4" is a 4).
    photos_menu = window.menuBar().addMenu("&Photos")
    marks = [("♥ Favourite / not", ".", lambda: window.mark(
        window.selected_results(), favourite=not all(r.meta.get("favourite")
                                                      for r in window.selected_results())))]
    marks += [(f"Rate {'★' * stars or 'no stars'}", str(stars),
               lambda _=False, s=stars: window.mark(window.selected_results(), rating=s))
              for stars in range(6)]
    marks.append(("Add to album…", "Ctrl+Shift+A",
                  lambda: window.add_to_album([r.path for r in window.selected_results()])))
    for text, keys, slot in marks:
        action = QAction(text, window, shortcut=QKeySequence(keys),
                         shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        action.triggered.connect(slot)
        photos_menu.addAction(action)
        for view in (window.view, window.timeline_view):
            view.addAction(action)
    select_all = QAction("Select all", window, shortcut=QKeySequence.StandardKey.SelectAll,
                         shortcutContext=Qt.ShortcutContext.WidgetShortcut)
    select_all.triggered.connect(lambda: window.current_grid().selectAll())
    photos_menu.addSeparator()
    photos_menu.addAction(select_all)
    for view in (window.view, window.timeline_view):
        view.addAction(select_all)
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction("Keyboard shortcuts", lambda: shortcuts_dialog(window).open())
    help_menu.addAction("About mmrag-desktop", lambda: about_dialog(window).open())
    # Ctrl+C on a grid copies the selected photos' paths (in a text field, its text).
    for view in (window.view, window.timeline_view):
        copy = QAction("Copy paths", view, shortcut=QKeySequence.StandardKey.Copy,
                       shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(
            lambda: desktop.copy_paths([r.path for r in window.selected_results()]))
        view.addAction(copy)
        delete = QAction("Move to trash", view, shortcut=QKeySequence.StandardKey.Delete,
                         shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda: window.trash(window.selected_results()))
        view.addAction(delete)
