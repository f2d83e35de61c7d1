"""The main window: search field (text, a dropped or pasted photo, or both), filters, the
timeline (the library without a query) or the search results, the folders panel, indexing
progress and the status bar."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QPoint, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...domain.concepts import mentioned
from ...domain.query import Filters, Result, Term, parse_query, relevant
from ..adapters.bridge import LibraryBridge
from ..adapters.instance import InstanceServer
from ..adapters.thumbnail_loader import ThumbnailLoader
from ..dialogs.albums import AlbumsDialog
from ..dialogs.concepts import ConceptsDialog
from ..dialogs.duplicates import DuplicatesDialog
from ..dialogs.first_run import FirstRunWizard
from ..dialogs.map import MapDialog
from ..dialogs.people import PeopleDialog
from ..dialogs.places import PlacesDialog
from ..dialogs.preview import PreviewDialog
from ..dialogs.removal import ask_move, ask_removal
from ..dialogs.settings import SettingsDialog
from ..dialogs.vlm import VLMDialog
from ..widgets import desktop
from ..widgets.ask_panel import AskPanel
from ..widgets.filter_bar import FilterBar
from ..widgets.folders import ErrorsDialog, FoldersPanel
from ..widgets.indexing_status import IndexingStatus
from ..widgets.photo_input import PhotoDrops
from ..widgets.results import RESULT_ROLE, ResultsModel, ResultsView
from ..widgets.search_row import SearchRow
from ..widgets.timeline_view import TimelineView
from .menus import add_menus

if TYPE_CHECKING:
    from ...library.indexer import IndexReport, Progress

TOP_K = 500  # results per search: a few screens of thumbnails, still instant from HNSW
NEAR_KM = 10.0  # "taken near here": a town, or a day's outing
CELL_SIZES = (96, 512)  # the thumbnail cells' smallest and largest width, pixels
CELL_STEP = 32
EXPORT_SIDE = 2048  # pixels on the longest side of a photo exported "smaller": a screen's worth
BROWSE_EVERY = 2.0  # seconds between showing the photos an index run has added so far


class MainWindow(PhotoDrops, QMainWindow):
    """The app's window over an :class:`LibraryBridge`. Call :meth:`start` once shown."""

    def __init__(self, bridge: LibraryBridge, icon: QIcon | None = None):
        super().__init__()
        self.bridge = bridge
        engine = bridge.engine
        self.setWindowTitle("mmrag-desktop")
        if icon is not None:
            self.setWindowIcon(icon)
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        # one window per library: a later launch hands its photo or folder to this one
        self.instance = InstanceServer(engine.path, self)
        self.instance.received.connect(self.open_arguments)
        self.generation = 0
        self.results: list[Result] = []  # shown: the search's relevant results, or all
        self.all_results: list[Result] = []
        self.query_photo: str | None = None
        self.searches_done = 0  # answers shown (tests wait on it)
        self.browses_done = 0
        self.browse_generation = 0
        self.last_report: IndexReport | None = None

        size = engine.config.thumbnail_size
        self.loader = ThumbnailLoader(bridge.thumbnail_folder, size, bridge.lanes, parent=self)
        self.model = ResultsModel(self.loader, self)
        self.view = ResultsView(size)
        self.view.setModel(self.model)
        self.view.opened.connect(self.open_preview)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.timeline_view = TimelineView(self.loader, size)
        self.timeline_view.opened.connect(
            lambda position: self.preview_results(self.timeline_view.timeline, position))
        self.timeline_view.customContextMenuRequested.connect(self._context_menu)

        self.search_row = SearchRow(bridge.paste_folder)
        self.search_row.requested.connect(self.search)
        self.search_row.photo_removed.connect(lambda: self.set_query_photo(None))
        self.query = self.photo_field = self.search_row.query
        self.query.photo.connect(self.set_query_photo)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self._filters_changed)
        self.filter_bar.folder_cleared.connect(lambda: self.folders_panel.choose(""))
        self.filter_bar.place_cleared.connect(lambda: self.set_place(None))
        self.filter_bar.show_all.connect(lambda _: self._show_results())
        self.filter_bar.understood_removed.connect(self.remove_from_query)

        self.placeholder = QLabel("Loading the library…", alignment=Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.timeline_view)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.search_row)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        # folders panel
        self.folders_panel = FoldersPanel()
        self.folders_panel.add_requested.connect(bridge.add_folder)
        self.folders_panel.remove_requested.connect(bridge.remove_folder)
        self.folders_panel.errors_requested.connect(bridge.list_errors)
        self.folders_panel.folder_chosen.connect(self._folder_chosen)
        self.folders_dock = self._dock("Folders", self.folders_panel,
                                       Qt.DockWidgetArea.LeftDockWidgetArea, 360)

        # ask panel (the local vision-language model)
        self.ask_panel = AskPanel(self.loader, bridge.paste_folder)
        self.ask_panel.attach(bridge, self.filters)
        self.ask_panel.photo_opened.connect(self.preview_result)
        self.ask_panel.setup_requested.connect(self.open_vlm_setup)
        self.ask_dock = self._dock("Ask", self.ask_panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                   320)

        # status bar: indexing progress with pause / resume, then library facts
        status = self.statusBar()
        self.indexing = IndexingStatus(status)
        self.indexing.pause_button.clicked.connect(self._toggle_pause)
        self.undo_button = QPushButton("Undo")
        self.undo_button.hide()
        self.undo_button.clicked.connect(self.undo_trash)
        status.addPermanentWidget(self.undo_button)  # a temporary message hides others
        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(CELL_SIZES[0], CELL_SIZES[-1])
        self.zoom.setSingleStep(CELL_STEP)
        self.zoom.setPageStep(CELL_STEP)
        self.zoom.setFixedWidth(90)
        self.zoom.setToolTip("Thumbnail size (Ctrl+wheel, Ctrl++ / Ctrl+−)")
        self.zoom.valueChanged.connect(self.set_cell_size)
        status.addPermanentWidget(self.zoom)
        for view in (self.view, self.timeline_view):
            view.viewport().installEventFilter(self)
        self._trashed: list[str] = []
        bridge.trashed.connect(self._trashed_photos)
        bridge.restored.connect(self._restored_photos)

        add_menus(self)
        bridge.model_ready.connect(self._model_ready)
        bridge.model_missing.connect(self._model_missing)
        bridge.progress.connect(self.indexing.progress)
        bridge.progress.connect(self._progress)
        bridge.understanding.connect(self.indexing.understanding)
        bridge.indexed.connect(self._indexed)
        bridge.message.connect(self.show_message)
        bridge.searched.connect(self._searched)
        bridge.search_failed.connect(self._search_failed)
        bridge.folders.connect(self.folders_panel.set_folders)
        bridge.folders.connect(lambda _states: self._empty_library_says())
        bridge.folder_tree.connect(self.folders_panel.set_tree)
        bridge.browsed.connect(self._browsed)
        bridge.cameras.connect(self.filter_bar.set_cameras)
        bridge.concepts.connect(self.filter_bar.set_concepts)
        bridge.albums.connect(self.filter_bar.set_albums)
        bridge.status.connect(lambda status: self.indexing.library(status, self.device))
        bridge.errors.connect(self._errors)
        bridge.paused_changed.connect(self.indexing.paused)
        bridge.removal_held.connect(self.ask_removal)
        bridge.folder_moved.connect(self.ask_move)
        bridge.understood.connect(lambda generation, understood: generation == self.generation
                                  and self.filter_bar.set_understood(understood.phrases))
        self.device = ""
        self.progress: Progress | None = None  # the index run's latest, None between runs
        self._browsed_at = 0.0  # when photos arriving in a run were last shown (monotonic)
        self.wizard: FirstRunWizard | None = None
        self.vlm_dialog: VLMDialog | None = None
        self.duplicates_dialog: DuplicatesDialog | None = None
        self.map_dialog: MapDialog | None = None
        self.concepts_dialog: ConceptsDialog | None = None
        self.people_dialog: PeopleDialog | None = None
        # the window's size and place and its panels', as the user left them
        self.layout_settings = QSettings(str(engine.home / "window.ini"),
                                         QSettings.Format.IniFormat)
        geometry = self.layout_settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self.restoreState(self.layout_settings.value("state") or b"")
        self.zoom.setValue(int(self.layout_settings.value("cell_size") or size))
        self.preview: PreviewDialog | None = None
        self.errors_dialog: ErrorsDialog | None = None

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea,
              width: int) -> QDockWidget:
        """*widget* in a dock beside the grid, *width* pixels wide (its place is saved)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        return dock

    # --- start-up ---------------------------------------------------------------------------

    def start(self) -> None:
        """First run (no folders yet) opens the assistant; otherwise the model loads in the
        background and watching starts."""
        if not self.bridge.has_folders():
            self.show_first_run()
        else:
            self.bridge.start()
            self.bridge.refresh()
        self.browse()

    def show_first_run(self, model_only: bool = False) -> FirstRunWizard:
        wizard = FirstRunWizard(self.bridge, self)
        if model_only:
            wizard.setStartId(wizard.pageIds()[1])
        wizard.accepted.connect(lambda: self._first_run_done(wizard))
        wizard.rejected.connect(lambda: self.show_message(
            "The model is not set up: File → Set up the model… when you are ready."))
        self.wizard = wizard
        wizard.open()
        return wizard

    def _first_run_done(self, wizard: FirstRunWizard) -> None:
        for folder in wizard.folders():
            self.bridge.add_folder(folder)
        self.bridge.start()

    def _model_ready(self, device: str) -> None:
        self.device = device
        self._empty_library_says()
        if self.query.text() or self.query_photo:
            self.search()

    def _model_missing(self, message: str) -> None:
        self.indexing.library_label.setText("No model")
        self.show_message(message.splitlines()[0])
        if self.wizard is None or not self.wizard.isVisible():
            self.show_first_run(model_only=True)

    # --- search -----------------------------------------------------------------------------

    def filters(self) -> Filters:
        return self.filter_bar.filters()

    def terms(self) -> list[Term]:
        """The field's text in the typed syntax (:func:`.domain.query.parse_query`), and the
        query photo."""
        terms = parse_query(self.query.text())
        if self.query_photo:
            terms.append(Term(photo=self.query_photo))
        return terms

    def search(self) -> None:
        """Search for the text and/or photo in the field, with the filters."""
        self.search_row.searched()
        terms = self.terms()
        if not terms:
            self.filter_bar.set_understood([])
            self.generation = -1  # a search still on its way is no longer wanted
            self.results, self.all_results = [], []
            self.model.set_results([])
            self.filter_bar.show_all_button.hide()
            self._show_timeline()
            return
        self.filter_bar.result_count.setText("Searching…")
        self.generation = self.bridge.search(terms, self.filters(), TOP_K)

    def open_arguments(self, argv: list[str]) -> None:
        """What a launch was given (this one, or a later one handed over): a photo searches
        for similar ones, a folder is added to the library; the window comes to the front."""
        self.show()
        self.raise_()
        self.activateWindow()
        for arg in argv:
            path = Path(arg)
            if path.is_file():
                self.find_similar(str(path.resolve()))
            elif path.is_dir():
                self.bridge.add_folder(str(path.resolve()))

    def remove_from_query(self, words: str) -> None:
        """Search again without *words* (a part of the query understood as a filter)."""
        text = self.query.text()
        at = text.lower().find(words.lower())
        if at >= 0:
            self.query.setText(" ".join((text[:at] + " " + text[at + len(words):]).split()))
        self.search()

    def set_query_photo(self, path: str | None) -> None:
        """Search by a photo (combined with any text in the field); None removes it."""
        self.query_photo = path
        self.search_row.show_photo(path)
        self.search()

    def trash(self, results: list[Result]) -> None:
        """Move photos to the system trash after asking (never a permanent delete)."""
        if not results:
            return
        what = (os.path.basename(results[0].path) if len(results) == 1
                else f"these {len(results)} photos")
        answer = QMessageBox.question(
            self, "Move to trash?", f"Move {what} to the trash?\n\nThe files leave their "
            "folders and the library; you can undo this right after.")
        if answer == QMessageBox.StandardButton.Yes:
            self.bridge.trash([r.path for r in results])

    def _trashed_photos(self, paths: list[str], can_undo: bool) -> None:
        gone = set(paths)
        self.all_results = [r for r in self.all_results if r.path not in gone]
        if self.terms():
            self._show_results()
        self.browse()
        self._trashed = paths if can_undo else []
        self.undo_button.setVisible(can_undo)
        self.show_message(f"Moved {len(paths)} photo{'s' if len(paths) > 1 else ''} to the "
                          "trash" + ("" if can_undo else " (restore from the system's Trash)"))

    def undo_trash(self) -> None:
        """Put the photos last moved to the trash back where they were."""
        self.undo_button.hide()
        if self._trashed:
            self.bridge.restore(self._trashed)
            self._trashed = []

    def _restored_photos(self, paths: list[str]) -> None:
        self.show_message(f"Put back {len(paths)} photo{'s' if len(paths) > 1 else ''}")
        self.browse()
        if self.terms():
            self.search()

    def clear_search(self) -> None:
        """Esc: no text, no query photo, no results."""
        self.query.clear()
        self.set_query_photo(None)

    def find_similar(self, path: str) -> None:
        """Photos like *path*: the query becomes that photo alone."""
        self.query.clear()
        self.set_query_photo(path)

    def find_similar_to(self, paths: list[str]) -> None:
        """Photos like all of *paths* together (the map's lasso): their embeddings summed."""
        self.query.clear()
        self.set_query_photo(None)  # clears the results
        self.filter_bar.result_count.setText("Searching…")
        self.show_message(f"Showing photos like the {len(paths)} chosen on the map, all of "
                          "them together.")
        self.generation = self.bridge.search([Term(photo=p) for p in paths], self.filters(),
                                             TOP_K)

    def ask_about_photos(self, ids: list[int], paths: list[str]) -> None:
        """Open the Ask panel on chosen library photos (the map's lasso)."""
        self.ask_dock.show()
        self.ask_dock.raise_()
        self.ask_panel.set_photos(ids, paths)

    def ask_about(self, path: str) -> None:
        """Open the Ask panel on one photo; a conversation under way ends only when the
        user says so."""
        self.ask_dock.show()
        if self.ask_panel.turns and self.ask_panel.photo != path:
            answer = QMessageBox.question(
                self, "Ask about this photo?", f"Start a new conversation about "
                f"{os.path.basename(path)}? The current one is closed (Copy answer keeps its "
                "last answer).")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.ask_panel.set_photo(path)

    def _filters_changed(self) -> None:
        if self.terms():
            self.search()
        self.browse()

    def set_place(self, result: Result | None, km: float = NEAR_KM) -> None:
        """Only photos taken within *km* of where *result* was taken (EXIF GPS); None shows
        photos from everywhere."""
        lat, lon = (result.meta.get("gps_lat"), result.meta.get("gps_lon")) if result else \
            (None, None)
        place = (lat, lon, km) if lat is not None and lon is not None else None
        self.filter_bar.set_place(place, os.path.basename(result.path) if place else "")
        self._filters_changed()

    def _folder_chosen(self, folder: str) -> None:
        self.filter_bar.set_folder(folder)
        self._filters_changed()

    # --- browsing (no query) ----------------------------------------------------------------

    def browse(self) -> None:
        """Show the library newest first with the filters (asked off the GUI thread)."""
        self.browse_generation = self.bridge.browse(self.filters())

    def _browsed(self, generation: int, timeline) -> None:
        if generation != self.browse_generation:
            return
        self.timeline_view.set_timeline(timeline)
        self.browses_done += 1
        if not self.terms():
            self._show_timeline()

    def _show_timeline(self) -> None:
        photos = len(self.timeline_view.timeline)
        if photos:
            self.stack.setCurrentWidget(self.timeline_view)
            self.filter_bar.result_count.setText(f"{photos:,} photos")
            return
        self.filter_bar.result_count.clear()
        self.placeholder.setText(self._empty_text())
        self.stack.setCurrentWidget(self.placeholder)

    def _empty_text(self) -> str:
        """What an empty library view says: what is happening from the first second of the
        first run (the model loading, the folders scanned, N of M indexed), else why."""
        if not self.filters().is_empty():
            return "No photos match the filters."
        if not self.bridge.has_folders():
            return "Add a folder of photos to begin (File → Add folder…)."
        progress = self.progress
        if progress is not None and progress.phase == "scan":
            return f"Looking for photos in your folders… {progress.done:,} found so far"
        if progress is not None and progress.phase == "index":
            return (f"Reading photos: {progress.done:,} of {progress.total:,}. They appear "
                    "here as they are ready.")
        if not self.device:
            return "Loading the search model… (the first time takes a little while)"
        return "No photos yet: they appear here as they are indexed."

    def _empty_library_says(self) -> None:
        """Bring the empty view's text up to date (nothing to do once photos show)."""
        if not self.terms() and self.stack.currentWidget() is self.placeholder:
            self.placeholder.setText(self._empty_text())

    def _progress(self, progress: Progress) -> None:
        """An index run's progress: photos are shown as they arrive (the first batch at
        once, then every :data:`BROWSE_EVERY` seconds) and the empty view says how far."""
        self.progress = None if progress.phase == "done" else progress
        self._empty_library_says()
        now = time.monotonic()
        if (progress.phase == "index" and progress.done and not self.terms()
                and (not len(self.timeline_view.timeline) or now - self._browsed_at >= BROWSE_EVERY)):
            self._browsed_at = now
            self.browse()

    def _searched(self, generation: int, results: list[Result]) -> None:
        if generation != self.generation:
            return
        self.all_results = results
        self.filter_bar.show_all_button.setChecked(False)
        self._show_results()
        self.searches_done += 1

    def _show_results(self) -> None:
        """The search's results, weak matches hidden unless "Show all" is on."""
        results = self.all_results
        if not self.filter_bar.show_all_button.isChecked():
            results = relevant(results, self.bridge.engine.config.relevance_cutoff)
        self.results = results
        self.model.set_results(results)
        self.stack.setCurrentWidget(self.view if results else self.placeholder)
        if not results:
            self.placeholder.setText("No photos match (check the filters).")
        hidden = len(self.all_results) - len(results)
        more = "+" if len(self.all_results) >= TOP_K else ""  # the search stopped at TOP_K
        self.filter_bar.result_count.setText(
            f"{len(results):,} results" + (f" · {hidden:,}{more} weak matches hidden"
                                           if hidden else ""))
        self.filter_bar.show_all_button.setVisible(bool(hidden) or self.filter_bar.show_all_button.isChecked())
        if results:
            self.view.setCurrentIndex(self.model.index(0))

    def _search_failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self.filter_bar.result_count.setText("")
            self.show_message(message.splitlines()[0])
            self.searches_done += 1

    # --- results ----------------------------------------------------------------------------

    def browsing(self) -> bool:
        """Whether the timeline (not search results) is shown."""
        return self.stack.currentWidget() is self.timeline_view

    def selected_results(self) -> list[Result]:
        """The selected photos of the grid shown, in its order."""
        if self.browsing():
            return self.timeline_view.selected_results()
        indexes = sorted(self.view.selectionModel().selectedIndexes(), key=lambda i: i.row())
        return [index.data(RESULT_ROLE) for index in indexes]

    def open_preview(self, row: int) -> PreviewDialog:
        return self.preview_results(self.results, row)

    def preview_in_grid(self, result: Result) -> PreviewDialog:
        """Preview *result* among the photos of the grid shown (arrows step through them)."""
        if self.browsing():
            timeline = self.timeline_view.timeline
            return self.preview_results(timeline, timeline.position(result.path) or 0)
        return self.open_preview(self.results.index(result))

    def preview_result(self, result: Result) -> PreviewDialog:
        """Preview one photo (a photo an answer used)."""
        return self.preview_results([result], 0)

    def preview_results(self, results: list[Result], row: int) -> PreviewDialog:
        preview = PreviewDialog(results, row, self.bridge, self)
        preview.find_similar.connect(self.find_similar)
        preview.ask_about.connect(self.ask_about)
        self.preview = preview
        preview.open()
        return preview

    def context_menu(self, result: Result) -> QMenu:
        """The actions on a result (and on every selected one, where that makes sense)."""
        menu = QMenu(self)
        selected = self.selected_results()
        if result not in selected:
            selected = [result]
        menu.addAction("Open", lambda: desktop.open_or_say(result.path, result.meta.get("moment"),
                                                           self.show_message))
        menu.addAction("Show in folder", lambda: desktop.reveal_in_file_manager(result.path))
        menu.addAction("Copy path" if len(selected) == 1 else f"Copy {len(selected)} paths",
                       lambda: desktop.copy_paths([r.path for r in selected]))
        menu.addSeparator()
        menu.addAction("Find similar", lambda: self.find_similar(result.path))
        if result.meta.get("gps_lat") is not None:
            menu.addAction(f"Taken within {NEAR_KM:g} km of here", lambda: self.set_place(result))
        menu.addAction("Ask about this photo…", lambda: self.ask_about(result.path))
        menu.addAction("Preview", lambda: self.preview_in_grid(result))
        menu.addSeparator()
        paths = [r.path for r in selected]
        favourite = not all(r.meta.get("favourite") for r in selected)
        menu.addAction("♥ Favourite" if favourite else "Not a favourite",
                       lambda: self.mark(selected, favourite=favourite))
        rating = menu.addMenu("Rating")
        for stars in range(6):
            rating.addAction(f"{'★' * stars or 'No rating'}\t{stars}",
                             lambda _=False, s=stars: self.mark(selected, rating=s))
        albums = menu.addMenu("Add to album")
        for name in self.filter_bar.album_names.values():
            albums.addAction(name, lambda _=False, n=name: self.add_to_album(paths, n))
        albums.addAction("New album…", lambda: self.add_to_album(paths))
        if self.filter_bar.album():
            name = self.filter_bar.album()
            menu.addAction(f"Remove from {name}", lambda: self.remove_from_album(paths, name))
        menu.addAction("Export…" if len(paths) == 1 else f"Export {len(paths)} photos…",
                       lambda: self.export(paths))
        menu.addAction("Add to a concept…", lambda: self.add_to_concept(paths))
        for name in mentioned(self.query.text(), self.filter_bar.concept_names)[0]:
            menu.addAction(f"Yes, this is {name}", lambda n=name: self.label(n, paths, True))
            menu.addAction(f"No, this is not {name}",
                           lambda n=name: self.label(n, paths, False))
        menu.addSeparator()
        menu.addAction("Move to trash…" if len(selected) == 1 else
                       f"Move {len(selected)} photos to trash…", lambda: self.trash(selected))
        return menu

    def _context_menu(self, point: QPoint) -> None:
        view = self.current_grid()
        index = view.indexAt(point)
        if index.isValid() and index.data(RESULT_ROLE) is not None:
            if not view.selectionModel().isSelected(index):  # as in file managers
                view.setCurrentIndex(index)
            self.context_menu(index.data(RESULT_ROLE)).popup(view.viewport().mapToGlobal(point))

    # --- indexing, folders, status -------------------------------------------------------------

    def _indexed(self, report: IndexReport, roots: list[str]) -> None:
        self.last_report = report
        if not self.bridge.watcher.paused:
            self.indexing.indexed()
        changes = report.embedded + report.moved + report.copied + report.deleted
        if changes or report.errors:
            self.show_message(
                f"Indexed: {report.embedded} new or changed, {report.moved} moved, "
                f"{report.deleted} removed, {len(report.errors)} could not be read "
                f"({report.seconds:.1f} s)")
        if changes:
            self.browse()
            if self.terms():
                self.search()  # the results may have changed

    def _toggle_pause(self) -> None:
        if self.bridge.watcher.paused:
            self.bridge.resume()
        else:
            self.bridge.pause()

    def mark(self, results: list[Result], rating: int | None = None,
             favourite: bool | None = None) -> None:
        """Rate *results* (0–5 stars) and/or make them favourites (or not): shown on their
        thumbnails at once; a filter on either is applied again."""
        def marked(_) -> None:
            for result in results:
                if rating is not None:
                    result.meta["rating"] = rating
                if favourite is not None:
                    result.meta["favourite"] = favourite
            self.view.viewport().update()
            filters = self.filter_bar.filters()
            if self.browsing():
                self.browse()
            elif filters.favourites or filters.min_rating:
                self.search()

        if results:
            self.bridge.mark([r.path for r in results], rating, favourite) \
                .success(marked).failure(self.show_message).run()

    def export(self, paths: list[str], folder: str | None = None,
               max_side: int | None = None) -> None:
        """Copy *paths* into a folder (asked for when not given) as they are, or, when the
        user asks, made at most :data:`EXPORT_SIDE` pixels long; says what was done."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, f"Export {len(paths)} photo(s) to")
            if not folder:
                return
            smaller = QMessageBox.question(
                self, "Export", f"Make the photos smaller ({EXPORT_SIDE} pixels long) for "
                "sharing? No copies them as they are.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            max_side = EXPORT_SIDE if smaller == QMessageBox.StandardButton.Yes else None

        def done(report) -> None:
            skipped = f"; {len(report.skipped)} could not be read" if report.skipped else ""
            self.show_message(f"Exported {len(report.written)} photo(s) to {folder}{skipped}.")

        self.show_message(f"Exporting {len(paths)} photo(s)…")
        self.bridge.export(paths, folder, max_side).success(done).failure(self.show_message).run()

    def add_to_album(self, paths: list[str], name: str | None = None) -> QInputDialog | None:
        """Put *paths* in album *name*; without one, ask for a name (a new album)."""
        def add(album: str) -> None:
            album = " ".join(album.split())
            if album and paths:
                self.bridge.album_add(album, paths).success(
                    lambda n: self.show_message(f"Added {n} photo(s) to “{album}”.")
                ).failure(self.show_message).run()

        if name is not None:
            add(name)
            return None
        dialog = QInputDialog(self)
        dialog.setWindowTitle("New album")
        dialog.setLabelText(f"Put {'these photos' if len(paths) > 1 else 'this photo'} in a "
                            "new album called:")
        dialog.textValueSelected.connect(add)
        dialog.open()
        return dialog

    def remove_from_album(self, paths: list[str], name: str) -> None:
        """Take *paths* out of album *name* (they stay in the library), then show the album
        again."""
        def removed(n: int) -> None:
            self.show_message(f"Took {n} photo(s) out of “{name}”.")
            if self.browsing():
                self.browse()
            else:
                self.search()

        self.bridge.album_remove(name, paths).success(removed).failure(self.show_message).run()

    def add_to_concept(self, paths: list[str]) -> QInputDialog:
        """Ask which concept *paths* show (a new name makes one), then learn it."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Add to a concept")
        dialog.setLabelText(f"Who or what do {'these' if len(paths) > 1 else 'this'} show? "
                            "A concept's name, or a new one (a person, a pet, a place):")
        dialog.setComboBoxItems(self.filter_bar.concept_names)
        dialog.setComboBoxEditable(True)
        dialog.setTextValue("")
        dialog.textValueSelected.connect(lambda name: self.label(name, paths, True))
        dialog.open()
        return dialog

    def label(self, name: str, paths: list[str], yes: bool) -> None:
        """Teach concept *name*: *paths* are (*yes*) or are not examples of it. A search
        that names the concept is run again with what it learned."""
        def learned(probe) -> None:
            rejected = f" and {probe.rejected} rejected" if probe.rejected else ""
            self.show_message(f"“{probe.name}” learned from {probe.examples} "
                              f"photos{rejected}. Search for its name to see it.")
            self.bridge.refresh_concepts()
            if mentioned(self.query.text(), [probe.name])[0]:
                self.search()

        self.bridge.label(name, paths, yes).success(learned).failure(self.show_message).run()

    def open_albums(self) -> AlbumsDialog:
        """View → Albums: show, rename or remove (with undo) an album."""
        dialog = AlbumsDialog(self.bridge, self)
        dialog.shown.connect(self.show_album)
        dialog.open()
        return dialog

    def show_album(self, name: str) -> None:
        """Show the photos of album *name* (the filter bar's album menu set to it)."""
        menu = self.filter_bar.album_filter
        found = next((i for i in range(menu.count())
                      if self.filter_bar.album_names.get(menu.itemData(i)) == name), -1)
        if found >= 0:
            menu.setCurrentIndex(found)

    def open_places(self) -> PlacesDialog:
        """View → Places: where the photos were taken; choosing one searches them."""
        dialog = PlacesDialog(self)
        dialog.chosen.connect(lambda name: (self.search_place(name), dialog.accept()))
        self.bridge.op(lambda engine: engine.search.places()).success(dialog.set_places) \
            .failure(self.show_message).run()
        dialog.open()
        return dialog

    def search_place(self, name: str) -> None:
        """Photos taken in the place *name* (a country or town the library knows), with
        what the search field asks: "in NAME" is added to it, understood as the place."""
        if name:
            text = self.query.text().strip()
            self.query.setText(f"{text} in {name}".strip())
            self.search()

    def open_people(self) -> PeopleDialog:
        """The people in the library; *Show photos* adds a person to the filters."""
        if self.people_dialog is None:
            self.people_dialog = PeopleDialog(self.bridge, self)
            self.people_dialog.show_requested.connect(self.filter_bar.add_person)
        self.people_dialog.show()
        self.people_dialog.load()
        return self.people_dialog

    def open_concepts(self) -> ConceptsDialog:
        """The list of personal concepts."""
        if self.concepts_dialog is None:
            self.concepts_dialog = ConceptsDialog(self.bridge, self)
            self.concepts_dialog.show_requested.connect(
                lambda name: (self.query.setText(name), self.search()))
        self.concepts_dialog.show()
        self.concepts_dialog.load()
        return self.concepts_dialog

    def _errors(self, root: str, errors: list[tuple[str, str]]) -> None:
        self.errors_dialog = ErrorsDialog(root, errors, self)
        self.errors_dialog.open()

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def ask_removal(self, root: str, count: int) -> QMessageBox:
        """Ask before removing photos that vanished from *root* in large numbers."""
        return ask_removal(self, root, count, lambda: self.bridge.confirm_removal(root))

    def ask_move(self, move) -> QMessageBox:
        """Ask whether a folder being added is a missing library folder, moved."""
        return ask_move(self, move.old, move.new, move.found, move.checked,
                        lambda: self.bridge.move_folder(move.old, move.new),
                        lambda: self.bridge.add_folder(move.new, as_new=True))

    def open_duplicates(self) -> DuplicatesDialog:
        """The near-duplicate finder (it searches at once)."""
        if self.duplicates_dialog is None:
            self.duplicates_dialog = DuplicatesDialog(self.bridge, self.loader, self)
            self.duplicates_dialog.trash_requested.connect(self.trash)
            self.bridge.trashed.connect(lambda paths, _undo: self.duplicates_dialog.forget(paths))
            # photos coming back (undo) or new copies: look again once they are indexed
            self.bridge.indexed.connect(lambda *_: self.duplicates_dialog.isVisible()
                                        and self.duplicates_dialog.find())
        self.duplicates_dialog.show()
        self.duplicates_dialog.find()
        return self.duplicates_dialog

    def open_map(self) -> MapDialog:
        """The map of the library (laid out, or brought up to date, in the background)."""
        if self.map_dialog is None:
            self.map_dialog = MapDialog(self.bridge, self.loader, self)
            self.map_dialog.query_requested.connect(self.find_similar_to)
            self.map_dialog.ask_requested.connect(self.ask_about_photos)
        self.map_dialog.show()
        self.map_dialog.load()
        return self.map_dialog

    def open_vlm_setup(self) -> VLMDialog:
        """The page that sets up Ask (download or choose a vision-language model)."""
        if self.vlm_dialog is None:
            self.vlm_dialog = VLMDialog(self.bridge, self)
        self.vlm_dialog.open()
        return self.vlm_dialog

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.bridge.engine.config, self,
                                self.bridge.engine.model_files.catalogue(),
                                self.bridge.check_weights)

        def save() -> None:
            config = dialog.config()
            self.loader.set_size(config.thumbnail_size)
            self.view.set_thumbnail_size(config.thumbnail_size)
            self.timeline_view.set_thumbnail_size(config.thumbnail_size)
            self.indexing.library_label.setText("Applying the settings…")
            # a new model whose files are not here yet: model_missing opens the model page
            self.bridge.apply_config(config)

        dialog.accepted.connect(save)
        dialog.vlm_setup_requested.connect(self.open_vlm_setup)
        dialog.open()
        return dialog

    # --- window -----------------------------------------------------------------------------

    def set_cell_size(self, size: int) -> None:
        """Show thumbnails in cells *size* pixels wide (the slider, Ctrl+wheel, Ctrl++ and
        Ctrl+−): the grid and the timeline reflow; remembered for the next start."""
        size = min(max(size, CELL_SIZES[0]), CELL_SIZES[-1])
        if self.zoom.value() != size:
            self.zoom.setValue(size)  # comes back here through valueChanged
            return
        self.view.set_thumbnail_size(size)
        self.timeline_view.set_thumbnail_size(size)
        self.layout_settings.setValue("cell_size", size)

    def zoom_by(self, steps: int) -> None:
        """Thumbnails *steps* × :data:`CELL_STEP` pixels larger (negative: smaller)."""
        self.set_cell_size(self.zoom.value() + steps * CELL_STEP)

    def current_grid(self) -> ResultsView | TimelineView:
        """The grid on show: the timeline while browsing, else the results."""
        return self.timeline_view if self.browsing() else self.view

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Wheel and \
                event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1))
            return True
        return super().eventFilter(watched, event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.layout_settings.setValue("geometry", self.saveGeometry())
        self.layout_settings.setValue("state", self.saveState())
        self.layout_settings.sync()
        self.instance.close()
        self.statusBar().showMessage("Finishing the current batch…")
        self.loader.close()
        self.bridge.close()
        super().closeEvent(event)
