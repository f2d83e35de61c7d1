"""The desktop window driven like a user would, headless, against real photos and the real
engine (tiny random-weight model)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import (QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence,  # noqa: E402
                           QTextDocument)
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QToolButton  # noqa: E402

from mmrag_desktop.core.config import load_config, save_config  # noqa: E402
from mmrag_desktop.library.facade import Library  # noqa: E402
from mmrag_desktop.gui.dialogs import first_run  # noqa: E402
from mmrag_desktop.gui.adapters.bridge import LibraryBridge  # noqa: E402
from mmrag_desktop.gui.window import MainWindow  # noqa: E402
from mmrag_desktop.gui.adapters.ops import Lanes  # noqa: E402
from mmrag_desktop.gui.dialogs.preview import metadata_rows  # noqa: E402
from mmrag_desktop.gui.widgets.results import RESULT_ROLE, ResultsModel, ResultsView  # noqa: E402
from mmrag_desktop.gui.adapters.thumbnail_loader import ThumbnailLoader  # noqa: E402
from mmrag_desktop.media.files import BadImage, file_hash  # noqa: E402
from mmrag_desktop.clip import onnx_download  # noqa: E402
from mmrag_desktop.clip.onnx_download import DownloadPlan  # noqa: E402
from mmrag_desktop.core.downloads import RemoteFile  # noqa: E402
from mmrag_desktop.domain.query import Result, Term, relevant  # noqa: E402
from mmrag_desktop.media.thumbnails import thumbnail  # noqa: E402
from conftest import REPO, cli_env, coco_photos, with_gps  # noqa: E402

SUMMER_2019 = 12  # photos dated July 2019; the other 28 are dated March 2023


@pytest.fixture
def dated_photos(tmp_path) -> Path:
    """40 coco-mini photos with EXIF dates: 12 taken in July 2019, 28 in March 2023."""
    folder = tmp_path / "holidays"
    folder.mkdir()
    for i, photo in enumerate(coco_photos()[:40]):
        exif = Image.Exif()
        exif[306] = (f"2019:07:{i + 1:02d} 12:00:00" if i < SUMMER_2019
                     else f"2023:03:{i - SUMMER_2019 + 1:02d} 09:30:00")
        with Image.open(photo) as img:
            img.save(folder / photo.name, "JPEG", quality=92, exif=exif)
    return folder


def _bridge(home: Path, config) -> LibraryBridge:
    """A bridge over a library at *home* with *config* (nothing started)."""
    home.mkdir(parents=True, exist_ok=True)
    return LibraryBridge(Library(home=home, config=config))


def _window(qtbot, home: Path, config) -> MainWindow:
    home.mkdir(parents=True, exist_ok=True)
    save_config(home, config)
    window = MainWindow(LibraryBridge(Library(home=home), settle=0.2))
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, home, config):
    window = _window(qtbot, home, config)
    yield window
    window.close()


def _wait_indexed(qtbot, window: MainWindow, photos: int) -> None:
    qtbot.waitUntil(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                    == [(photos, "up to date")], timeout=60_000)


def _search(qtbot, window: MainWindow, action) -> list[Result]:
    done = window.searches_done
    action()
    qtbot.waitUntil(lambda: window.searches_done > done, timeout=30_000)
    return window.results


def _select(window: MainWindow, rows: list[int]) -> None:
    """Select exactly *rows* of the grid (as ctrl-clicks would) and focus it."""
    from PySide6.QtCore import QItemSelectionModel

    selection = window.view.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(window.model.index(row), QItemSelectionModel.SelectionFlag.Select)
    window.view.setFocus()


def _drop(widget, path: Path) -> None:
    """Drag a file from a file manager and drop it on *widget*: enter, then drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    # Qt's signatures: a drag enter event at a QPoint, a drop at a QPointF.
    for kind, point in ((QDragEnterEvent, QPoint(10, 10)), (QDropEvent, QPointF(10, 10))):
        event = kind(point, Qt.DropAction.CopyAction, mime,
                     Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)
        assert event.isAccepted()


def test_user_journey(qtbot, window, dated_photos, tmp_path, monkeypatch, no_network):
    """First run → add a folder → progress to done → text search → dropped-photo search →
    preview → date filter → remove the folder; no socket opened on the way."""
    progress = []
    window.bridge.progress.connect(progress.append)
    window.start()
    qtbot.waitUntil(lambda: window.wizard is not None and window.wizard.isVisible())
    wizard = window.wizard
    wizard.folders_page.add_folder(str(dated_photos))
    wizard.next()
    qtbot.waitUntil(wizard.model_page.isComplete, timeout=10_000)
    wizard.accept()

    _wait_indexed(qtbot, window, 40)
    indexing = [p for p in progress if p.phase == "index"]
    # Each run's progress ends complete; photos written just before (the fixture's) may
    # wait for a second run, so the last run may cover fewer than 40.
    assert indexing and indexing[-1].done == indexing[-1].total > 0
    assert sum(p.total for p in indexing if p.done == p.total) >= 40
    device = window.bridge.engine.embedder.describe()  # whatever this machine has and chose
    # the status line follows the folders panel's update (its own signal)
    qtbot.waitUntil(lambda: "40 photos" in window.indexing.library_label.text(), timeout=10_000)
    assert device in window.indexing.library_label.text()
    assert window.indexing.progress_label.isHidden()

    # text search: the grid shows the engine's ranking, best first, weak matches hidden
    # (below relevance_cutoff × the best score) until "Show all"
    window.query.setText("a dog on a beach")
    results = _search(qtbot, window, window.search)
    expected = window.bridge.engine.search.run([Term(text="a dog on a beach")], k=500)
    baseline = expected[0].baseline
    floor = baseline + window.bridge.engine.config.relevance_cutoff * (expected[0].score - baseline)
    shown = [r.path for r in expected if r.score >= floor]
    assert [r.path for r in results] == shown and 0 < len(shown) < 40
    assert window.model.rowCount() == len(shown) and window.filter_bar.show_all_button.isVisible()
    assert f"{40 - len(shown)} weak matches hidden" in window.filter_bar.result_count.text()
    window.filter_bar.show_all_button.click()
    assert [r.path for r in window.results] == [r.path for r in expected]
    assert window.model.rowCount() == 40 and window.filter_bar.result_count.text() == "40 results"
    results = window.results
    tooltip = window.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert results[0].path in tooltip and f"{results[0].score:.3f}" in tooltip

    # a near-duplicate from outside the library, dropped on the search field, finds its
    # original first; the text stays part of the query until cleared
    original = sorted(dated_photos.iterdir())[7]
    with Image.open(original) as img:
        small = img.resize((img.width * 3 // 5, img.height * 3 // 5))
    near_duplicate = tmp_path / "from-phone.jpg"
    small.save(near_duplicate, "JPEG", quality=60)
    window.query.clear()
    results = _search(qtbot, window, lambda: _drop(window.query, near_duplicate))
    assert window.query_photo == str(near_duplicate) and window.search_row.photo_chip.isVisible()
    assert results[0].path == str(original)

    # Enter opens the preview of the current (first) result, with its metadata
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    preview = window.preview
    assert preview is not None and preview.isVisible()
    qtbot.waitUntil(lambda: preview.image_label.pixmap() is not None
                    and not preview.image_label.pixmap().isNull(), timeout=10_000)
    labels = [preview.details.itemAt(i).widget().text() for i in range(preview.details.count())]
    assert original.name in labels and "2019-07-08 12:00:00" in labels
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.row == 1 and os.path.basename(results[1].path) in preview.windowTitle()
    preview.accept()

    # date filter: only July 2019 remains
    window.filter_bar.after.setDate(window.filter_bar.after.date().fromString("2019-07-01", "yyyy-MM-dd"))
    window.filter_bar.before.setDate(window.filter_bar.before.date().fromString("2019-07-31", "yyyy-MM-dd"))
    results = _search(qtbot, window, lambda: (window.filter_bar.after_check.setChecked(True),
                                              window.filter_bar.before_check.setChecked(True)))
    assert len(window.all_results) == SUMMER_2019
    assert all(r.meta["taken_at"].startswith("2019-07") for r in window.all_results)

    # remove the folder (after the confirmation): its photos leave the library, not the disk
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.folders_panel.tree.topLevelItem(0).setSelected(True)
    window.folders_panel.remove_button.click()
    qtbot.waitUntil(lambda: window.folders_panel.states == [], timeout=30_000)
    assert window.bridge.engine.status()["photos"] == 0
    assert load_config(window.bridge.engine.home).roots == []
    assert len(list(dated_photos.iterdir())) == 40
    assert no_network == []


def test_context_menu_actions(qtbot, window, photos):
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a cat")
    results = _search(qtbot, window, window.search)
    target = results[3]
    menu = window.context_menu(target)
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert list(actions) == ["Open", "Show in folder", "Copy path", "Find similar",
                             "Ask about this photo…", "Preview", "♥ Favourite", "Rating",
                             "Add to album", "Export…", "Add to a concept…", "Move to trash…"]
    actions["Copy path"].trigger()
    assert QGuiApplication.clipboard().text() == target.path
    results = _search(qtbot, window, actions["Find similar"].trigger)
    assert window.query.text() == "" and window.query_photo == target.path
    assert results[0].path == target.path and results[0].score > 0.99


def test_favourites_ratings_and_albums_from_the_grid(qtbot, window, photos):
    """Keys 1–5 / 0 rate and "." makes a favourite while the grid has the focus (not while
    typing in the search field); the thumbnail says so; the filter bar's rating and album
    menus filter; the context menu puts photos in an album and takes them out."""
    from mmrag_desktop.gui.widgets.results import marks_label

    window.show()
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a dog")
    results = _search(qtbot, window, window.search)
    engine = window.bridge.engine
    _select(window, [0, 1])
    qtbot.keyClick(window.view, Qt.Key.Key_4)
    qtbot.waitUntil(lambda: results[0].meta.get("rating") == 4, timeout=10_000)
    qtbot.keyClick(window.view, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: results[1].meta.get("favourite") is True, timeout=10_000)
    marks = engine.albums.marks([results[0].path, results[1].path, results[2].path])
    assert [(m.rating, m.favourite) for m in marks.values()] == [(4, True), (4, True), (0, False)]
    assert marks_label(results[0].meta) == "♥ ★★★★"
    window.query.setFocus()
    qtbot.keyClick(window.query, Qt.Key.Key_5)
    assert window.query.text() == "a dog5"
    assert engine.albums.marks([results[0].path])[results[0].path].rating == 4
    window.query.setText("a dog")

    # the filter bar: favourites, then at least 5 stars
    marks_menu = window.filter_bar.marks_filter
    shown = _search(qtbot, window, lambda: marks_menu.setCurrentIndex(marks_menu.findData("favourites")))
    assert {r.path for r in shown} == {results[0].path, results[1].path}
    shown = _search(qtbot, window, lambda: marks_menu.setCurrentIndex(marks_menu.findData(4)))
    assert {r.path for r in shown} == {results[0].path, results[1].path}
    assert _search(qtbot, window, lambda: marks_menu.setCurrentIndex(marks_menu.findData(5))) == []
    _search(qtbot, window, lambda: marks_menu.setCurrentIndex(0))

    # an album from the context menu, then its menu in the filter bar
    paths = [results[2].path, results[3].path]
    window.add_to_album(paths, "Dogs")
    qtbot.waitUntil(lambda: window.filter_bar.album_filter.count() == 2, timeout=10_000)
    assert window.filter_bar.album_filter.isVisible()
    shown = _search(qtbot, window, lambda: window.filter_bar.album_filter.setCurrentIndex(1))
    assert {r.path for r in shown} == set(paths)
    menu = window.context_menu(shown[0])
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert "Remove from Dogs" in actions
    _search(qtbot, window, actions["Remove from Dogs"].trigger)
    qtbot.waitUntil(lambda: len(window.results) == 1, timeout=10_000)
    assert engine.albums.photos("Dogs") == [p for p in paths if p != shown[0].path]

    # export from the context menu's action; a drag out of the grid carries the files
    out = photos.parent / "exported"
    out.mkdir()
    window.export([results[0].path, results[1].path], str(out))
    qtbot.waitUntil(lambda: "Exported 2 photo(s)" in window.statusBar().currentMessage(),
                    timeout=10_000)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(r.path) for r in results[:2])
    mime = window.model.mimeData([window.model.index(0), window.model.index(1)])
    assert [u.toLocalFile() for u in mime.urls()] == [r.path for r in window.results[:2]]


def test_thumbnail_size_select_all_and_the_shortcuts_list(qtbot, window, photos, home, config):
    """Ctrl+wheel and the View menu's Ctrl++ / Ctrl+− resize the thumbnails (remembered at
    the next start); Ctrl+A selects every result; Help lists every menu shortcut."""
    from PySide6.QtGui import QWheelEvent

    from mmrag_desktop.gui.dialogs.help import shortcut_rows

    window.show()
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a dog")
    _search(qtbot, window, window.search)
    before = window.view.delegate.size
    wheel = QWheelEvent(QPointF(20, 20), QPointF(20, 20), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(window.view.viewport(), wheel)
    assert window.view.delegate.size == before + 64 == window.zoom.value()
    assert window.timeline_view.delegate.size == before + 64
    smaller = next(a for a in window.menuBar().actions()[1].menu().actions()
                   if a.text() == "Smaller thumbnails")
    smaller.trigger()
    assert window.view.delegate.size == before + 32
    window.set_cell_size(10_000)
    assert window.view.delegate.size == 512  # the largest

    window.view.setFocus()
    qtbot.keySequence(window.view, QKeySequence.StandardKey.SelectAll)
    assert len(window.selected_results()) == len(window.results) > 1

    rows = shortcut_rows(window)
    keys = {(what, keys) for _, keys, what in rows}
    assert ("Rate ★★★", "3") in keys and ("Add to album…", "Ctrl+Shift+A") in keys
    assert any(what == "Larger thumbnails" for what, _ in keys)
    window.close()
    again = _window(qtbot, home, config)
    assert again.view.delegate.size == 512
    again.close()


def test_places_dialog_lists_countries_and_towns_and_searches_one(qtbot, home, config, tmp_path):
    config.understand = ["places"]
    window = _window(qtbot, home, config)
    folder = tmp_path / "trip"
    folder.mkdir()
    photos = coco_photos()
    with_gps(photos[0], folder / "a.jpg", 48.8584, 2.2945)     # Paris
    with_gps(photos[1], folder / "b.jpg", 35.6586, 139.7454)   # Tokyo
    with_gps(photos[2], folder / "c.jpg", 35.6600, 139.7400)   # Tokyo
    window.bridge.add_folder(str(folder))
    window.start()
    engine = window.bridge.engine
    qtbot.waitUntil(lambda: len(engine.search.places()) == 2, timeout=60_000)
    dialog = window.open_places()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 2, timeout=10_000)
    japan = dialog.tree.topLevelItem(0)  # most photos first
    assert (japan.text(0), japan.text(1)) == ("Japan", "2")
    tokyo = japan.child(0)
    assert (tokyo.text(0), tokyo.text(1)) == ("Tokyo", "2")
    results = _search(qtbot, window, lambda: dialog.tree.itemActivated.emit(tokyo, 0))
    assert window.query.text() == "in Tokyo"
    assert {r.path for r in results} == {str(folder / "b.jpg"), str(folder / "c.jpg")}
    window.close()


def test_the_albums_dialog_shows_renames_removes_and_undoes(qtbot, window, photos, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    engine = window.bridge.engine
    paths = sorted(str(p) for p in photos.iterdir())[:4]
    engine.albums.add("Trip", paths, create=True)
    dialog = window.open_albums()
    qtbot.waitUntil(lambda: dialog.list.count() == 1, timeout=10_000)
    assert dialog.list.item(0).text() == "Trip  (4 photos)"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Lisbon trip", True))
    dialog.list.setCurrentRow(0)
    dialog.rename("Trip")
    qtbot.waitUntil(lambda: dialog.list.count() == 1 and "Lisbon trip" in dialog.list.item(0).text(),
                    timeout=10_000)
    dialog.remove("Lisbon trip")
    qtbot.waitUntil(lambda: dialog.list.count() == 0, timeout=10_000)
    assert dialog.undo_button.isVisible() and engine.store.vector_count() == 40
    dialog.undo()
    qtbot.waitUntil(lambda: dialog.list.count() == 1, timeout=10_000)
    assert set(engine.albums.photos("Lisbon trip")) == set(paths)
    qtbot.waitUntil(lambda: window.filter_bar.album_filter.count() == 2, timeout=10_000)
    dialog.shown.emit("Lisbon trip")
    qtbot.waitUntil(lambda: {r.path for r in window.timeline_view.timeline} == set(paths),
                    timeout=10_000)


def test_pause_holds_indexing_until_resumed(qtbot, window, photos):
    window.bridge.start()  # the library has no folder yet: skip the first-run assistant
    qtbot.waitUntil(lambda: window.device != "", timeout=30_000)
    window.bridge.pause()
    window.bridge.add_folder(str(photos))
    qtbot.waitUntil(lambda: [s.state for s in window.folders_panel.states] == ["paused"])
    qtbot.wait(1500)  # several settle periods: nothing may be indexed meanwhile
    assert window.bridge.engine.store.vector_count() == 0
    assert window.indexing.pause_button.text() == "Resume"
    window.bridge.resume()
    _wait_indexed(qtbot, window, 40)
    assert window.bridge.engine.store.vector_count() == 40


def test_folder_errors_are_listed_with_reasons(qtbot, window, photos):
    (photos / "truncated.jpg").write_bytes(next(photos.iterdir()).read_bytes()[:2000])
    (photos / "notes.png").write_text("not a picture")
    window.bridge.add_folder(str(photos))
    window.start()
    qtbot.waitUntil(lambda: [(s.photos, s.errors, s.state) for s in window.folders_panel.states]
                    == [(40, 2, "up to date")], timeout=60_000)
    window.folders_panel.tree.topLevelItem(0).setSelected(True)
    top = window.folders_panel.tree.topLevelItem(0)
    assert top.text(2) == "up to date ⚠ 2" and "up to date, 2 errors" in top.toolTip(2)
    window.folders_panel.errors_button.click()
    qtbot.waitUntil(lambda: window.errors_dialog is not None, timeout=10_000)
    dialog = window.errors_dialog
    assert dialog.isVisible() and str(photos) in dialog.windowTitle()
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text()
            for r in range(dialog.table.rowCount())}
    assert set(rows) == {str(photos / "truncated.jpg"), str(photos / "notes.png")}
    assert all(reason for reason in rows.values())

    # the CLI counts as the window does: 40 photos in the library, 2 files not readable
    qtbot.waitUntil(lambda: "40 photos" in window.indexing.library_label.text(), timeout=10_000)
    out = subprocess.run([sys.executable, "-m", "mmrag_desktop", "folders"], capture_output=True,
                         text=True, env=cli_env(window.bridge.engine.home), check=True).stdout
    assert out.strip() == f"{photos}: 40 photos, indexed, 2 could not be read"


def test_settings_are_saved_with_the_engine_config(qtbot, window, photos):
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    dialog = window.open_settings()
    dialog.thumbnail_size.setValue(160)
    dialog.excludes.setPlainText("node_modules\nskip-me")
    assert not any(box.isChecked() for box in dialog.analyses.values())
    dialog.analyses["places"].setChecked(True)
    dialog.accept()
    home = window.bridge.engine.home
    qtbot.waitUntil(lambda: load_config(home).thumbnail_size == 160, timeout=10_000)
    assert load_config(home).excludes == ["node_modules", "skip-me"]
    assert load_config(home).understand == ["places"]
    assert window.view.delegate.size == 160 and window.loader.size == 160
    # restarted on the new settings (in the background: wait for it), nothing re-embedded
    qtbot.waitUntil(lambda: window.bridge.engine.config.excludes == ["node_modules", "skip-me"],
                    timeout=30_000)
    _wait_indexed(qtbot, window, 40)


def test_qt_signals_keep_pythons_reference_counts(qtbot, tmp_path):
    # PySide6 6.12.0 decrements True's reference count on every signal emit; after a few
    # thousand (scrolling a grid of thumbnails) the interpreter aborts in bool_dealloc.
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        text = Signal(str)

    emitter, got = Emitter(), []
    emitter.text.connect(got.append)
    loader = ThumbnailLoader(tmp_path, 64, Lanes())
    model = ResultsModel(loader)
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.text.emit("loaded")
        model.dataChanged.emit(model.index(0), model.index(0))
    loader.close()
    assert len(got) == 200
    assert abs(sys.getrefcount(True) - before) < 20


def test_first_run_model_page_imports_a_file_and_explains_a_download(qtbot, home, config,
                                                                      tiny_model, monkeypatch):
    config.weights = ""  # nothing on this computer yet
    page = first_run.ModelPage(_bridge(home, config))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "not on this computer" in page.state.text(), timeout=10_000)
    assert not page.isComplete()

    asked = []
    default = page.choice.currentData()
    monkeypatch.setattr(onnx_download, "plan", lambda model: DownloadPlan(model, (
        RemoteFile("https://huggingface.co/x/visual.onnx", f"{model.repo}/visual.onnx",
                   350_000_000, None),
        RemoteFile("https://huggingface.co/x/textual.onnx", f"{model.repo}/textual.onnx",
                   255_000_000, None))))

    def decline(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", decline)
    page.ask_download()
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    assert default == "ViT-B-32-256__datacomp_s34b_b86k" and "605 MB" in asked[0]
    assert "yurijmikhalevich/rclip-models/visual.onnx (350 MB)" in asked[0]
    assert "https://huggingface.co" in asked[0] and "MIT" in asked[0]
    assert not page.isComplete() and not (home / "models" / ".download").exists()

    page.import_file(str(tiny_model[1]))
    qtbot.waitUntil(page.isComplete, timeout=30_000)
    assert page.weights.parent == home / "models" and page.weights.is_file()


def test_first_run_in_the_bundle_imports_an_onnx_export(qtbot, home, config, tmp_path,
                                                      monkeypatch):
    # The bundle has no torch: the page offers ONNX exports only (a download of the
    # published one, tests/test_onnx_download.py, or a folder), which it imports and then
    # finds on the next start.
    import importlib.util

    from mmrag_desktop.clip.onnx_backend import export
    from mmrag_desktop.clip.embedder import Embedder

    made = export(Embedder(config, tmp_path / "maker").torch_backend(), tmp_path / "export")
    config.weights = ""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name == "open_clip" else real_find_spec(name, *args))
    page = first_run.ModelPage(_bridge(home, config))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "not on this computer" in page.state.text(), timeout=10_000)
    assert page.import_button.isHidden()  # weights files need torch
    assert not page.export_button.isHidden()
    assert "download it once" in page.subTitle() and "CLIP" not in page.subTitle()

    page.import_file(str(made))
    qtbot.waitUntil(page.isComplete, timeout=30_000)
    assert page.weights.parent == home / "models" / "onnx"
    assert (page.weights / "image.onnx").is_file()
    again = first_run.ModelPage(_bridge(home, config))
    qtbot.addWidget(again)
    qtbot.waitUntil(again.isComplete, timeout=10_000)
    assert again.weights == page.weights


def test_first_run_download_failure_is_explained(qtbot, home, config, monkeypatch):
    config.weights = ""
    page = first_run.ModelPage(_bridge(home, config))
    qtbot.addWidget(page)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: offline
    page.ask_download()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "cannot be reached" in shown[0] and "visual.onnx" in shown[0]
    assert page.download_button.isEnabled() and not page.isComplete()


def test_grid_of_100k_results_asks_only_for_visible_thumbnails(qtbot, tmp_path):
    photos = coco_photos()
    results = [Result(i, str(photos[i % len(photos)]), 1.0 - i / 200_000,
                      {"hash": f"{i:032x}"}) for i in range(100_000)]
    lanes = Lanes(workers={"thumbnails": 2})
    loader = ThumbnailLoader(tmp_path / "thumbnails", 128, lanes)
    asked = []
    ask = loader.image
    loader.image = lambda path, digest, at=0.0: (asked.append(int(digest, 16)),
                                                 ask(path, digest, at))[1]
    model = ResultsModel(loader)
    view = ResultsView(128)
    view.setModel(model)
    view.resize(900, 700)
    qtbot.addWidget(view)
    model.set_results(results)
    view.show()
    qtbot.waitExposed(view)
    per_screen = (900 // 140 + 1) * (700 // 140 + 2)  # columns × (rows + partial rows)
    qtbot.waitUntil(lambda: loader.requested > 0)
    assert loader.requested <= per_screen
    qtbot.waitUntil(lambda: loader.image(results[0].path, results[0].meta["hash"]) is not None,
                    timeout=20_000)
    for fraction in (0.25, 0.5, 0.999):
        view.verticalScrollBar().setValue(int(view.verticalScrollBar().maximum() * fraction))
        qtbot.wait(50)
    assert loader.requested <= 4 * per_screen  # 4 screens seen out of ~16,000
    assert len(set(asked)) <= 4 * per_screen and max(asked) > 99_000
    loader.close()
    lanes.close()


def test_a_thumbnail_asked_for_while_the_size_changes_still_arrives(qtbot, tmp_path,
                                                                     monkeypatch):
    """A thumbnail in the works when the size changed was dropped without a word, so the
    grid, told "in the works" meanwhile, never asked again: the photo stayed blank."""
    import threading

    from mmrag_desktop.gui.adapters import thumbnail_loader

    photo = coco_photos()[0]
    digest = file_hash(photo)
    release, started = threading.Event(), threading.Event()
    make = thumbnail_loader.thumbnail_image

    def slow(*args, **kwargs):
        started.set()
        release.wait(10)
        return make(*args, **kwargs)

    monkeypatch.setattr(thumbnail_loader, "thumbnail_image", slow)
    lanes = Lanes(workers={"thumbnails": 2})
    loader = ThumbnailLoader(tmp_path / "thumbnails", 128, lanes)
    said = []
    loader.loaded.connect(said.append)
    assert loader.image(str(photo), digest) is None
    assert started.wait(10)
    loader.set_size(64)
    assert loader.image(str(photo), digest) is None  # in the works, at the old size
    release.set()
    qtbot.waitUntil(lambda: bool(said), timeout=10_000)
    qtbot.waitUntil(lambda: loader.image(str(photo), digest) is not None, timeout=10_000)
    image = loader.image(str(photo), digest)
    assert not image.isNull() and max(image.width(), image.height()) == 64
    loader.close()
    lanes.close()


def test_thumbnails_are_cached_by_content(tmp_path):
    photo = coco_photos()[0]
    folder = tmp_path / "thumbnails"
    first = thumbnail(photo, file_hash(photo), 128, folder)
    with Image.open(first) as img:
        assert max(img.size) == 128 and img.format == "JPEG"
    stamp = first.stat().st_mtime_ns
    moved = tmp_path / "renamed.jpg"
    shutil.copy2(photo, moved)
    assert thumbnail(moved, file_hash(moved), 128, folder) == first  # same content: reused
    assert first.stat().st_mtime_ns == stamp
    edited = tmp_path / "edited.jpg"
    with Image.open(photo) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited, quality=90)
    other = thumbnail(edited, file_hash(edited), 128, folder)
    assert other != first  # new content, new thumbnail
    with Image.open(other) as a, Image.open(first) as b:
        assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 5
    assert thumbnail(photo, file_hash(photo), 64, folder) != first
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(photo.read_bytes()[:100])
    with pytest.raises(BadImage):
        thumbnail(bad, "cd" * 16, 128, folder)
    assert not list((folder / "cd").glob("*"))  # no half-written file left


def test_a_failed_run_shows_as_failed(qtbot, window, photos, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(window.bridge.engine.updates, "index", full)
    window.bridge.add_folder(str(photos))
    window.start()
    qtbot.waitUntil(lambda: [s.state for s in window.folders_panel.states]
                    == ["failed: the disk holding the library is full: free some space, then "
                        "run again"], timeout=60_000)
    item = window.folders_panel.tree.topLevelItem(0)
    assert item.text(2) == "failed"
    assert "failed: the disk holding the library is full" in item.toolTip(2)


def test_photos_vanishing_at_once_are_removed_only_when_the_user_says(qtbot, window, photos,
                                                                       tmp_path):
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    asked = []
    window.bridge.removal_held.connect(lambda root, count: asked.append((root, count)))
    for photo in sorted(photos.iterdir())[:30]:
        photo.unlink()
    qtbot.waitUntil(lambda: asked == [(str(photos), 30)], timeout=60_000)
    box = next(b for b in window.findChildren(QMessageBox) if b.isVisible())
    assert "30 photos" in box.text() and box.textFormat() == Qt.TextFormat.PlainText
    assert window.bridge.engine.store.counts() == {"ok": 10, "offline": 30}
    qtbot.waitUntil(lambda: [s.state for s in window.folders_panel.states]
                    == ["up to date, 30 missing (kept)"], timeout=10_000)
    remove = next(b for b in box.buttons() if b.text() == "Remove from library")
    remove.click()
    qtbot.waitUntil(lambda: window.bridge.engine.store.counts() == {"ok": 10}, timeout=60_000)


def test_adding_a_moved_library_folder_asks_to_move_it(qtbot, window, photos, tmp_path):
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    moved = tmp_path / "other disk"
    shutil.copytree(photos, moved)
    shutil.rmtree(photos)
    window.bridge.add_folder(str(moved))
    qtbot.waitUntil(lambda: any(b.isVisible() and b.windowTitle() == "Folder moved?"
                                for b in window.findChildren(QMessageBox)), timeout=30_000)
    box = next(b for b in window.findChildren(QMessageBox) if b.isVisible())
    assert str(photos) in box.text() and "40 of 40" in box.text()
    assert window.bridge.engine.config.roots == [str(photos)]  # nothing added while asking
    next(b for b in box.buttons() if b.text() == "Move the library folder").click()
    qtbot.waitUntil(lambda: [(s.path, s.photos, s.state) for s in window.folders_panel.states]
                    == [(str(moved), 40, "up to date")], timeout=60_000)
    assert window.bridge.engine.store.counts() == {"ok": 40}


def test_markup_in_file_names_and_exif_is_shown_as_text(qtbot, window, tmp_path):
    folder = tmp_path / "markup"
    folder.mkdir()
    name = "<img src='x.png'><b>bold<b>.jpg"  # a valid file name on Linux and macOS
    exif = Image.Exif()
    exif[271] = "<i>Canon</i><a href='http://example.com'>link</a>"
    with Image.open(coco_photos()[0]) as img:
        img.save(folder / name, "JPEG", exif=exif)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 1)
    window.query.setText("a photo")
    _search(qtbot, window, window.search)
    tooltip = window.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    doc = QTextDocument()
    doc.setHtml(tooltip)
    assert name in doc.toPlainText() and "<b>" in doc.toPlainText()  # shown, not rendered
    window.view.setCurrentIndex(window.model.index(0))
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    preview = window.preview
    labels = [preview.details.itemAt(i).widget() for i in range(preview.details.count())]
    camera = next(w for w in labels if isinstance(w, QLabel) and "Canon" in w.text())
    assert camera.textFormat() == Qt.TextFormat.PlainText
    assert "<i>Canon</i>" in camera.text()
    preview.accept()


def test_thumbnails_of_removed_photos_and_pasted_images_are_evicted(home, config, photos):
    from mmrag_desktop.media import thumbnails

    engine = Library(home=home, config=config)
    engine.updates.index([str(photos)])
    folder = thumbnails.cache_dir(home)
    made = {p: thumbnail(p, file_hash(p), 128, folder) for p in sorted(photos.iterdir())[:3]}
    pasted = thumbnails.paste_dir(home)
    pasted.mkdir()
    (pasted / "pasted-1.png").write_bytes(b"x")
    gone = next(iter(made))
    gone.unlink()
    engine.updates.index([str(photos)])
    assert thumbnails.evict(home, engine.store.hashes_present, batch=2) == 1
    assert [p for p, t in made.items() if t.exists()] == list(made)[1:]
    assert (pasted / "pasted-1.png").exists()  # maybe the query on screen
    thumbnails.evict(home, engine.store.hashes_present, pasted=True)
    assert not any(pasted.iterdir())


def test_entry_points_and_desktop_entry(home, config, tmp_path):
    import configparser
    import subprocess
    import sys
    import tomllib

    from conftest import REPO
    from mmrag_desktop.gui import resource

    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(resource("mmrag-desktop.desktop"))
    desktop = entry["Desktop Entry"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["gui-scripts"]
    assert desktop["Type"] == "Application" and desktop["Exec"].split()[0] in scripts
    assert resource(desktop["Icon"] + ".svg").is_file()
    from PySide6.QtGui import QIcon
    assert not QIcon(str(resource("mmrag-desktop.svg"))).pixmap(64, 64).isNull()

    home.mkdir(parents=True)
    save_config(home, config)
    shown = subprocess.run([sys.executable, "-m", "mmrag_desktop", "gui", "--quit-when-shown"],
                           env=cli_env(home) | {"QT_QPA_PLATFORM": "offscreen"},
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.strip() == "shown"


def test_answering_never_undoes_the_users_pause(qtbot, window, photos):
    bridge = window.bridge
    release = bridge._hold_indexing()  # an answer starts
    bridge.pause()  # the user pauses meanwhile
    release()  # the answer ends
    assert bridge.watcher.paused
    bridge.resume()
    bridge.pause()  # paused before the answer
    bridge._hold_indexing()()
    assert bridge.watcher.paused

    window.bridge.add_folder(str(photos))
    window.start()  # paused: the watcher must not index until resumed
    qtbot.wait(3000)
    assert bridge.engine.store.vector_count() == 0
    bridge.resume()
    _wait_indexed(qtbot, window, 40)


def test_keyboard_habits(qtbot, window, photos):
    # Ctrl+F focuses the search field, Space opens a quick look and closes it, Ctrl+C on the
    # grid copies the selected photos' paths, Esc clears the search.
    from PySide6.QtGui import QKeySequence

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.view.setFocus()
    qtbot.keySequence(window, QKeySequence.StandardKey.Find)
    assert window.query.hasFocus()
    window.query.setText("a dog")
    results = _search(qtbot, window, window.search)
    assert len(window.all_results) == 40 and len(results) >= 6

    window.view.setFocus()
    window.view.setCurrentIndex(window.model.index(2))
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    preview = window.preview
    assert preview is not None and preview.isVisible() and preview.result == results[2]
    qtbot.keyClick(preview, Qt.Key.Key_Space)
    assert not preview.isVisible()

    _select(window, [5, 2])
    qtbot.keySequence(window.view, QKeySequence.StandardKey.Copy)
    assert QGuiApplication.clipboard().text().splitlines() == [results[2].path, results[5].path]

    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert window.query.text() == "" and window.query_photo is None
    assert window.results == [] and window.browsing()  # back to the library


def test_delete_moves_photos_to_the_trash_and_undo_puts_them_back(qtbot, window, photos,
                                                                    tmp_path, monkeypatch):
    from PySide6.QtGui import QKeySequence
    from send2trash import plat_other

    trash_home = tmp_path / "xdg-data"  # the freedesktop trash, in here, not the user's
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(trash_home))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(trash_home / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(trash_home / "Trash"))
    asked = []

    def agree(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QMessageBox, "question", agree)

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a dog")
    results = _search(qtbot, window, window.search)
    chosen = [results[1].path, results[4].path]
    content = {path: Path(path).read_bytes() for path in chosen}
    _select(window, [1, 4])
    qtbot.keySequence(window.view, QKeySequence.StandardKey.Delete)
    assert asked and "these 2 photos" in asked[0]
    # the grid forgets them when the move is reported (after the files left)
    qtbot.waitUntil(lambda: not {r.path for r in window.results} & set(chosen), timeout=30_000)
    assert not any(os.path.exists(p) for p in chosen)
    trashed = sorted(p.name for p in (trash_home / "Trash" / "files").iterdir())
    assert trashed == sorted(os.path.basename(p) for p in chosen)  # kept, not deleted
    _wait_indexed(qtbot, window, 38)  # the watcher drops them from the library
    assert window.undo_button.isVisible()

    window.undo_button.click()
    qtbot.waitUntil(lambda: all(os.path.exists(p) for p in chosen), timeout=10_000)
    assert all(Path(p).read_bytes() == content[p] for p in chosen)
    assert list((trash_home / "Trash" / "info").iterdir()) == []
    _wait_indexed(qtbot, window, 40)  # and back in the library


def test_the_search_field_takes_the_typed_query_syntax(qtbot, window, photos):
    from mmrag_desktop.domain.query import parse_query

    def parsed(text):
        return [(t.text, t.weight) for t in parse_query(text)]
    assert parsed("two dogs in the snow") == [("two dogs in the snow", 1.0)]
    assert parsed("beach -people") == [("beach", 1.0), ("people", -1.0)]
    assert parsed('2*sunset + "red car"') == [("sunset", 2.0), ("red car", 1.0)]
    assert parsed('dogs -"red car"') == [("dogs", 1.0), ("red car", -1.0)]
    assert parsed("it's a dog's life") == [("it's a dog's life", 1.0)]
    assert parsed('"open quote') == [('"open quote', 1.0)]
    assert parsed("  ") == []

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a kitchen -food")
    shown = _search(qtbot, window, window.search)
    expected = window.bridge.engine.search.run([Term(text="a kitchen"), Term(text="food", weight=-1)],
                                           k=len(shown))
    assert [r.path for r in shown] == [r.path for r in expected]
    plain = window.bridge.engine.search.run([Term(text="a kitchen -food")], k=len(shown),
                                            understand=False)
    assert [r.path for r in shown] != [r.path for r in plain]  # not read as one description


def test_camera_filter_in_the_window_and_the_cli(qtbot, window, tmp_path, capsys):
    import json

    from mmrag_desktop.cli import main

    folder = tmp_path / "cameras"
    folder.mkdir()
    cameras = {}
    for i, photo in enumerate(coco_photos()[:20]):
        exif = Image.Exif()
        if i < 6:
            exif[271], exif[272] = "SONY", "DSC-RX100"
        elif i < 10:
            exif[271], exif[272] = "Apple", "iPhone 12"
        with Image.open(photo) as img:
            img.save(folder / photo.name, "JPEG", quality=92, exif=exif)
        cameras[str(folder / photo.name)] = exif.get(272)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 20)
    qtbot.waitUntil(lambda: window.filter_bar.camera_filter.count() == 3, timeout=10_000)
    assert [window.filter_bar.camera_filter.itemText(i) for i in range(3)] == [
        "All cameras", "DSC-RX100 (6)", "iPhone 12 (4)"]

    window.query.setText("a photo")
    _search(qtbot, window, window.search)
    assert len(window.all_results) == 20
    _search(qtbot, window, lambda: window.filter_bar.camera_filter.setCurrentIndex(2))
    assert sorted(r.path for r in window.all_results) == sorted(
        p for p, m in cameras.items() if m == "iPhone 12")

    home = window.bridge.engine.home
    assert main(["--home", str(home), "search", "a photo", "--camera", "DSC-RX100", "-k", "20",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert sorted(h["path"] for h in hits) == sorted(p for p, m in cameras.items()
                                                     if m == "DSC-RX100")


def test_browse_the_library_by_month_and_folder(qtbot, window, dated_photos):
    # Without a query the window shows every photo newest first under month headers; a
    # search replaces it and Esc comes back to the same place; the folder tree browses one
    # folder; Space previews a photo and the arrows step through the timeline.
    from mmrag_desktop.gui.widgets.results import HEADER_ROLE

    summer = dated_photos / "summer 2019"
    summer.mkdir()
    names = sorted(p.name for p in dated_photos.glob("*.jpg"))
    for name in names[:SUMMER_2019]:
        (dated_photos / name).rename(summer / name)
    window.resize(1600, 900)
    window.bridge.add_folder(str(dated_photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    view = window.timeline_view
    qtbot.waitUntil(lambda: window.browsing() and len(view.timeline) == 40, timeout=30_000)
    model = view.timeline_model
    assert window.filter_bar.result_count.text() == "40 photos"
    newest_first = [str(dated_photos / n) for n in reversed(names[SUMMER_2019:])] + \
        [str(summer / n) for n in reversed(names[:SUMMER_2019])]
    assert list(view.timeline.paths) == newest_first
    headers = model.header_rows()
    assert [model.index(r, 0).data(HEADER_ROLE) for r in headers] == [
        "March 2023  ·  28 photos", "July 2019  ·  12 photos"]
    columns = model.columns
    assert columns >= 3 and headers[1] == 1 + -(-28 // columns)
    assert model.index(1, 0).data(RESULT_ROLE).path == newest_first[0]
    assert model.index(headers[1] + 1, 0).data(RESULT_ROLE).path == newest_first[28]
    # the last row of March is not full: its empty cells are neither photos nor selectable
    if 28 % columns:
        empty = model.index(headers[1] - 1, columns - 1)
        assert empty.data(RESULT_ROLE) is None and not empty.flags()

    # scrolled down, a search replaces the timeline; Esc brings it back where it was
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum() // 2)
    scrolled, top = view.verticalScrollBar().value(), view.top_photo()
    assert scrolled > 0 and top not in (None, newest_first[0])
    window.query.setText("a dog")
    _search(qtbot, window, window.search)
    assert window.stack.currentWidget() is window.view and len(window.all_results) == 40
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert window.browsing() and window.filter_bar.result_count.text() == "40 photos"
    assert (view.verticalScrollBar().value(), view.top_photo()) == (scrolled, top)
    # a narrower window lays the timeline out in fewer columns, the same photo in view
    columns = model.columns
    window.resize(1300, 900)
    qtbot.waitUntil(lambda: model.columns < columns, timeout=5_000)
    top_row = model.index_of(view.timeline.position(top)).row()
    assert view.rowAt(0) in (top_row, top_row - 1)  # its row at the top (under its month's title)

    # Space previews the current photo of the timeline; → steps to the next one
    headers = model.header_rows()
    view.setFocus()
    view.setCurrentIndex(model.index(headers[1] + 1, 0))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    preview = window.preview
    assert preview.isVisible() and preview.result.path == newest_first[28]
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.result.path == newest_first[29]
    assert ("Date", "2019-07-11 12:00:00") in metadata_rows(preview.result)
    preview.accept()

    # the folder tree: the subfolder with its count; choosing it browses it alone
    panel = window.folders_panel
    root = panel.tree.topLevelItem(0)
    assert [(root.child(i).text(0), root.child(i).text(1)) for i in range(root.childCount())] \
        == [("summer 2019", "12")]
    done = window.browses_done
    panel.tree.setCurrentItem(root.child(0))
    qtbot.waitUntil(lambda: window.browses_done > done, timeout=10_000)
    assert list(view.timeline.paths) == newest_first[28:]
    assert window.filter_bar.folder_chip.isVisible() and "summer 2019" in window.filter_bar.folder_chip.text()
    assert [model.index(r, 0).data(HEADER_ROLE) for r in model.header_rows()] == [
        "July 2019  ·  12 photos"]
    done = window.browses_done
    window.filter_bar.folder_chip.click()
    qtbot.waitUntil(lambda: window.browses_done > done, timeout=10_000)
    assert len(view.timeline) == 40 and not window.filter_bar.folder_chip.isVisible()


def test_place_filter_from_a_photo_in_the_window_and_the_cli(qtbot, window, tmp_path, capsys):
    import json

    from mmrag_desktop.cli import main

    # Photos from Lisbon's centre, Sintra (about 20 km away), Porto (about 275 km) and
    # some without GPS: "Taken within 10 km of here" on a Lisbon photo keeps Lisbon's.
    places = {"lisbon": (38.7223, -9.1393), "belem": (38.6916, -9.2160),
              "sintra": (38.8029, -9.3817), "porto": (41.1579, -8.6291)}
    folder = tmp_path / "trip"
    folder.mkdir()
    where = {}
    for i, photo in enumerate(coco_photos()[:12]):
        target = folder / photo.name
        name = list(places)[i % 4] if i < 8 else None
        if name:
            with_gps(photo, target, *places[name])
        else:
            shutil.copyfile(photo, target)
        where[str(target)] = name
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 12)
    view = window.timeline_view
    qtbot.waitUntil(lambda: window.browsing() and len(view.timeline) == 12, timeout=30_000)
    lisbon = next(r for r in view.timeline if where[r.path] == "lisbon")
    assert abs(lisbon.meta["gps_lat"] - 38.7223) < 1e-3
    no_gps = next(r for r in view.timeline if where[r.path] is None)
    assert not any("km of here" in a.text() for a in window.context_menu(no_gps).actions())
    action = next(a for a in window.context_menu(lisbon).actions() if "km of here" in a.text())
    done = window.browses_done
    action.trigger()
    qtbot.waitUntil(lambda: window.browses_done > done, timeout=10_000)
    near = {p for p, name in where.items() if name in ("lisbon", "belem")}  # Belém: 7 km
    assert set(view.timeline.paths) == near
    assert window.filter_bar.place_chip.isVisible() and lisbon.path.rsplit("/", 1)[1] in \
        window.filter_bar.place_chip.text()
    window.query.setText("a photo")
    _search(qtbot, window, window.search)
    assert {r.path for r in window.all_results} == near
    done = window.searches_done
    window.filter_bar.place_chip.click()
    qtbot.waitUntil(lambda: window.searches_done > done, timeout=10_000)
    assert len(window.all_results) == 12 and not window.filter_bar.place_chip.isVisible()

    home = window.bridge.engine.home
    assert main(["--home", str(home), "search", "a photo", "--near", "38.72,-9.14,30", "-k",
                 "20", "--json"]) == 0
    hits = {h["path"] for h in json.loads(capsys.readouterr().out)}
    assert hits == {p for p, name in where.items() if name in ("lisbon", "belem", "sintra")}
    with pytest.raises(SystemExit):
        main(["--home", str(home), "search", "a photo", "--near", "95,0"])
    assert "expected LAT,LON" in capsys.readouterr().err


def test_relevance_cutoff_is_measured_from_the_models_baseline():
    """The weak-match cut must mean the same for CLIP (unrelated photos near 0.2) and
    SigLIP (near 0, many negative): a fraction of the best score did not (shifted below 0
    it hid nothing; shifted up, it hid nothing either)."""
    scores = [0.32, 0.30, 0.26, 0.252, 0.248, 0.20, 0.15]

    def kept(scale: float, shift: float, cutoff: float = 0.5) -> list[int]:
        results = [Result(i, f"/p/{i}.jpg", scale * s + shift, {}, baseline=scale * 0.18 + shift)
                   for i, s in enumerate(scores)]
        return [r.id for r in relevant(results, cutoff)]

    assert kept(1, 0) == [0, 1, 2, 3]  # ≥ 0.18 + 0.5 × (0.32 − 0.18) = 0.25
    # SigLIP-like: another scale, shifted below zero; and one shifted up
    assert kept(0.5, -0.15) == kept(3, 0.4) == kept(1, 0)
    unmeasured = [Result(i, f"/p/{i}.jpg", s, {}) for i, s in enumerate(scores)]
    assert [r.id for r in relevant(unmeasured, 0.8)] == [0, 1, 2]  # from 0: ≥ 0.256
    results = [Result(i, f"/p/{i}.jpg", s, {}, baseline=0.18) for i, s in enumerate(scores)]
    assert relevant(results, 0) == results and relevant([], 0.5) == []
    below = [Result(0, "/a.jpg", -0.01, {}, -0.005), Result(1, "/b.jpg", -0.2, {}, -0.005)]
    assert relevant(below, 0.5) == below  # nothing above the baseline: nothing to scale
    matched = Result(9, "/t.jpg", 0.0, {"matched": "text"}, baseline=0.18)
    assert matched in relevant(results + [matched], 0.5)



def test_ask_panel_renders_markdown_and_loads_nothing_an_answer_names(qtbot, tmp_path):
    # Lists, tables and code render; HTML stays text; an image an answer names is not read
    # (a plain QTextBrowser would read it from disk).
    from PySide6.QtWidgets import QTextBrowser

    from mmrag_desktop.domain.answers import Answer, Judgement
    from mmrag_desktop.gui.widgets.ask_panel import AskPanel

    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4), "red").save(secret)
    lanes = Lanes()
    loader = ThumbnailLoader(tmp_path / "thumbnails", 96, lanes)
    panel = AskPanel(loader, tmp_path / "pasted")
    qtbot.addWidget(panel)
    photos = coco_photos()[:2]
    candidates = [Result(i, str(p), 0.3, {"hash": f"{i:032x}"}) for i, p in enumerate(photos)]
    body = ("Two photos:\n\n- a **dog** [1]\n- a cat\n\n| photo | animal |\n| --- | --- |\n"
            f"| 1 | dog |\n\n```\ncode_block()\n```\n\n<b>not bold</b> ![x]({secret.as_uri()})")
    text = f"[1] relevant: yes - a dog\n[2] relevant: no - a cat indoors\nAnswer: {body}"
    panel.question.setText("Which is the *dog*?")
    panel.ask()
    panel.add_text(text)
    panel.finish(Answer(text, candidates, [Judgement(1, True, "a dog"),
                                           Judgement(2, False, "a cat indoors")], [1]))
    html = panel.answer.document().toHtml()
    assert "<table" in html and "<li" in html and "code_block()" in html
    plain_text = panel.answer.toPlainText()
    assert "Which is the *dog*?" in plain_text  # the question as typed, not as Markdown
    assert "<b>not bold</b>" in plain_text and "relevant: yes" not in plain_text
    assert "<img" not in html and "secret.png" in html  # a link to it, not an image
    plain_browser = QTextBrowser()  # without the guard, the layout reads the file
    plain_browser.setMarkdown(f"![x]({secret.as_uri()})")
    assert "<img" in plain_browser.document().toHtml()
    assert [panel.cited_list.item(i).text() for i in range(2)] == [
        "✓ [1] a dog", "✗ [2] a cat indoors"]
    panel.copy_button.click()
    assert QGuiApplication.clipboard().text() == body
    loader.close()
    lanes.close()


def test_ask_set_up_page_is_reached_from_the_first_run_and_the_settings(qtbot, window):
    # First run ends on an optional Ask page; Settings has a way there too. Both open the
    # one set-up page, which says what is missing.
    wizard = window.show_first_run()
    assert wizard.pageIds()[-1] == wizard.pageIds()[2]
    page = wizard.ask_page
    assert page.state.text() == window.bridge.vlm_status() and page.isComplete()
    dialog = page.open_setup()
    assert dialog.isVisible() and dialog.windowTitle() == "Set up Ask"
    dialog.reject()
    wizard.reject()
    settings = window.open_settings()
    settings.vlm_button.click()
    assert window.vlm_dialog is not None and window.vlm_dialog.isVisible()
    window.vlm_dialog.reject()
    settings.reject()


def test_adding_a_folder_writes_the_library_off_the_gui_thread(qtbot, window, photos):
    import threading

    engine, threads = window.bridge.engine, []
    add = engine.folders.add
    engine.folders.add = lambda folder: (threads.append(threading.current_thread()),
                                         add(folder))[1]
    window.bridge.add_folder(str(photos))
    assert window.bridge.has_folders()  # at once, so the first run is not offered
    window.start()
    _wait_indexed(qtbot, window, 40)
    assert threads and threads[0] is not threading.main_thread()
    assert window.wizard is None


def test_text_and_places_are_read_in_the_background_and_say_why_a_photo_matched(
        qtbot, home, config, tmp_path):
    from mmrag_desktop.gui.dialogs.preview import PreviewDialog, metadata_rows
    from mmrag_desktop.bench.text import render_phrases

    config.understand = ["text", "places"]
    folder = tmp_path / "photos"
    made = render_phrases(coco_photos(), folder, count=3)
    with_gps(coco_photos()[10], folder / "paris.jpg", 48.8584, 2.2945)
    window = _window(qtbot, home, config)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 4)
    qtbot.waitUntil(lambda: window.indexing.understand_label.isVisible(), timeout=30_000)
    qtbot.waitUntil(lambda: window.indexing.understand_label.isHidden(), timeout=60_000)
    assert window.bridge.engine.updates.understanding_pass().pending() == {
        "text": (4, 4), "places": (1, 1)}
    window.query.setText("Midnight Bakery")
    results = _search(qtbot, window, window.search)
    assert results[0].path == str(made[1][0])
    tooltip = window.model.data(window.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Matched the text in the photo" in tooltip and "[Midnight]" in tooltip
    rows = dict(metadata_rows(results[0]))
    assert "Midnight Bakery" in rows["Text in photo"] and "[Midnight]" in rows["Why"]
    # a photo of the timeline: the preview reads its place
    window.query.clear()
    window.search()
    view = window.timeline_view
    qtbot.waitUntil(lambda: window.browsing() and len(view.timeline) == 4, timeout=30_000)
    paris = next(r for r in view.timeline if r.path.endswith("paris.jpg"))
    dialog = PreviewDialog([paris], 0, window.bridge)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "Neuilly-sur-Seine (Paris), Île-de-France, France" in
                    dict(metadata_rows(dialog.result)).get("Place", ""), timeout=10_000)
    dialog.close()
    window.close()


def test_captions_show_in_the_preview_and_extract_saves_json_and_csv(qtbot, home, config,
                                                                    tmp_path, gemma, mmproj,
                                                                    monkeypatch):
    pytest.importorskip("llama_cpp", reason="the vlm extra (llama-cpp-python) is needed")
    from PySide6.QtWidgets import QFileDialog

    from mmrag_desktop.gui.dialogs.extraction import ExtractionDialog
    from mmrag_desktop.gui.dialogs.preview import PreviewDialog, metadata_rows

    config.understand = ["captions"]
    config.vlm_model, config.vlm_mmproj, config.vlm_context = str(gemma), str(mmproj), 2048
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in coco_photos()[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    window = _window(qtbot, home, config)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 2)
    # the pass captions both photos in the background with the app's own model
    qtbot.waitUntil(lambda: window.bridge.engine.updates.understanding_pass().pending() ==
                    {"captions": (2, 2)}, timeout=120_000)
    qtbot.waitUntil(lambda: window.indexing.understand_label.isHidden(), timeout=30_000)
    window.search()
    view = window.timeline_view
    qtbot.waitUntil(lambda: window.browsing() and len(view.timeline) == 2, timeout=30_000)
    dialog = PreviewDialog(list(view.timeline), 0, window.bridge)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "Caption" in dict(metadata_rows(dialog.result)), timeout=10_000)
    extraction = dialog._extract()
    qtbot.addWidget(extraction)
    assert isinstance(extraction, ExtractionDialog) and not extraction.save_csv.isEnabled()
    extraction.schema.setCurrentText("business card")
    extraction.extract()
    qtbot.waitUntil(lambda: extraction.extraction is not None, timeout=120_000)
    shown = json.loads(extraction.result.toPlainText())
    assert shown == extraction.extraction.value and "name" in shown
    assert "stored in the library" in extraction.status.text()
    target = tmp_path / "card.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    extraction.save_csv.click()
    header, row = target.read_text().splitlines()[:2]
    assert header.startswith("photo,name") and row.startswith(dialog.result.path)
    extraction.close()
    dialog.close()
    window.close()


def test_the_map_of_the_library_zooms_hovers_and_turns_a_lasso_into_a_query(qtbot, window,
                                                                           photos):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent, QPainterPath
    from PySide6.QtWidgets import QApplication

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    dialog = window.open_map()
    assert dialog.status.text().startswith("Laying out the library… 0 s")  # from the first second
    qtbot.waitUntil(lambda: dialog.view is not None, timeout=60_000)
    canvas = dialog.canvas
    assert len(canvas.xy) == 40 and "40 photos" in dialog.status.text()
    assert not dialog._clock.isActive()
    # hovering a dot shows that photo's name (its thumbnail as it loads)
    screen = canvas._screen()
    row = 7
    point = QPointF(*screen[row])
    QApplication.sendEvent(canvas, QMouseEvent(  # offscreen Qt sends no real pointer moves
        QEvent.Type.MouseMove, point, canvas.mapToGlobal(point), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert canvas.hover == row
    assert dialog.caption.text() == os.path.basename(dialog.view.paths[canvas.hover])
    qtbot.waitUntil(lambda: dialog.photo.pixmap() is not None and
                    not dialog.photo.pixmap().isNull(), timeout=10_000)
    # the wheel zooms in around the pointer: the dot under it stays put
    at = QPointF(*screen[row])
    canvas.zoom_at(4.0, at)
    assert canvas.zoom == 4.0 and np.allclose(canvas._screen()[row], screen[row], atol=1e-6)
    canvas.zoom_at(0.25, at)
    # a lasso around a few dots chooses exactly those, and they become the query
    centre = canvas._screen()[row]
    lasso = QPainterPath(QPointF(centre[0] - 40, centre[1] - 40))
    for dx, dy in ((40, -40), (40, 40), (-40, 40)):
        lasso.lineTo(QPointF(centre[0] + dx, centre[1] + dy))
    lasso.closeSubpath()
    canvas.select_in(lasso)
    inside = np.flatnonzero((np.abs(canvas._screen() - centre) < 40).all(axis=1)).tolist()
    assert dialog.chosen == inside and row in inside and dialog.query_button.isEnabled()
    results = _search(qtbot, window, dialog.query_button.click)
    assert results and results[0].path in {dialog.view.paths[r] for r in inside}
    assert f"photos like the {len(inside)} chosen on the map" in window.statusBar().currentMessage()
    # or what a question is about: the Ask panel takes the chosen photos' ids
    dialog.ask_button.click()
    assert window.ask_panel.photo == tuple(int(dialog.view.ids[r]) for r in inside)
    assert f"About {len(inside)} photos from the map" in window.ask_panel.subject.text()
    dialog.close()


def test_a_video_is_found_at_its_moment_shown_there_and_played_from_there(
        qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QPushButton

    from conftest import encode_video
    from mmrag_desktop.gui.widgets.desktop import PLAYERS

    folder = tmp_path / "clips"
    folder.mkdir()
    scenes = coco_photos()[40:44]
    encode_video(folder / "holiday.mp4", scenes, seconds=3.0)
    for photo in coco_photos()[:8]:
        shutil.copy2(photo, folder / photo.name)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 9)
    # the third scene's photo finds the video, at that scene
    results = _search(qtbot, window, lambda: window.find_similar(str(scenes[2])))
    video = results[0]
    assert video.path == str(folder / "holiday.mp4") and 6.0 <= video.meta["moment"] < 9.0
    tooltip = window.model.data(window.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert f"video, 0:12, best at 0:0{int(video.meta['moment'])}" in tooltip
    # its thumbnail is that moment's frame, not the video's first
    qtbot.waitUntil(lambda: window.model.data(window.model.index(0),
                                              Qt.ItemDataRole.DecorationRole) is not None)
    shown = window.model.data(window.model.index(0), Qt.ItemDataRole.DecorationRole)
    cache = window.loader.folder
    at_moment = Image.open(thumbnail(Path(video.path), video.meta["hash"], window.loader.size,
                                     cache, video.meta["moment"]))
    at_start = Image.open(thumbnail(Path(video.path), video.meta["hash"], window.loader.size,
                                    cache))
    from PySide6.QtGui import QImage

    def pixels(image: QImage) -> np.ndarray:
        rgb = image.convertToFormat(QImage.Format.Format_RGB888)
        return np.frombuffer(rgb.constBits(), np.uint8).reshape(
            rgb.height(), rgb.bytesPerLine())[:, :3 * rgb.width()].reshape(
            rgb.height(), rgb.width(), 3).astype(np.float32)

    assert (shown.width(), shown.height()) == at_moment.size
    assert np.abs(pixels(shown) - np.asarray(at_moment, np.float32)).mean() < 2
    assert np.abs(pixels(shown) - np.asarray(at_start, np.float32)).mean() > 10
    # the preview says where in the video this is; Open plays from there
    launched = tmp_path / "launched.txt"
    player = tmp_path / "bin" / "mpv"
    player.parent.mkdir()
    player.write_text(f'#!/bin/sh\necho "$@" > "{launched}"\n')
    player.chmod(0o755)
    monkeypatch.setenv("PATH", f"{player.parent}{os.pathsep}{os.environ['PATH']}")
    assert list(PLAYERS)[0] == "mpv"
    preview = window.open_preview(0)
    rows = dict(metadata_rows(video))
    assert rows["Video"].startswith("0:12 long; this moment is 0:0")
    open_button = next(b for b in preview.findChildren(QPushButton) if b.text() == "Open")
    open_button.click()
    # the shell makes the file before it writes to it: wait for what it writes
    qtbot.waitUntil(lambda: launched.exists() and launched.read_text().endswith("\n"),
                    timeout=10_000)
    assert launched.read_text().split() == [f"--start={video.meta['moment']:.2f}", video.path]
    # it plays here too (K), from that moment: the first position is the moment's, and the
    # frame shown is the scene playing, not the moment's still
    bar = preview.video
    assert bar.isVisible() and bar.time.text().startswith(f"0:0{int(video.meta['moment'])} / 0:12")
    positions: list[int] = []
    bar.player.positionChanged.connect(positions.append)
    qtbot.keyClick(preview.image_label, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: preview._playing and positions and positions[-1] > positions[0] + 500,
                    timeout=30_000)
    qtbot.keyClick(preview.image_label, Qt.Key.Key_K)  # pause
    qtbot.waitUntil(lambda: not bar.playing)
    assert video.meta["moment"] * 1000 - 1000 <= positions[0] < video.meta["moment"] * 1000 + 1000
    scene = min(bar.player.position() // 3000, 3)
    frame = pixels(preview._image)
    sizes = [np.asarray(Image.open(p).convert("RGB").resize((160, 120)), np.float32) for p in scenes]
    errors = [np.abs(frame - s).mean() for s in sizes]
    assert int(np.argmin(errors)) == scene, errors
    assert bar.button.text().endswith("Play") and bar.slider.value() == bar.player.position()
    # stepping on while it plays stops it: the next photo shows no frame of it
    qtbot.keyClick(preview.image_label, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: bar.playing)
    qtbot.keyClick(preview.image_label, Qt.Key.Key_Right)
    assert bar.player.source().isEmpty() and not bar.isVisible()
    qtbot.waitUntil(lambda: not preview._image.isNull(), timeout=10_000)  # the photo, decoded
    qtbot.wait(300)
    assert not preview._playing
    qtbot.keyClick(preview.image_label, Qt.Key.Key_Left)
    preview.close()
    assert bar.player.source().isEmpty()  # closed: stopped, the file let go


def test_personal_concepts_are_made_taught_filtered_and_removed_in_the_window(
        qtbot, window, tmp_path):
    from PySide6.QtWidgets import QInputDialog

    from test_concepts import shots_of

    folder = tmp_path / "phone"
    folder.mkdir()
    for photo in coco_photos()[2:42]:
        shutil.copy2(photo, folder / photo.name)
    shots = [str(p) for p in shots_of(coco_photos()[1], folder, 12)]
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 52)
    results = _search(qtbot, window, lambda: window.find_similar(shots[0]))
    rows = [n for n, r in enumerate(results) if r.path in shots[:4]]
    assert len(rows) == 4
    _select(window, rows)
    # right-click → Add to a concept… → a new name
    menu = window.context_menu(results[rows[0]])
    next(a for a in menu.actions() if a.text() == "Add to a concept…").trigger()
    dialog = window.findChildren(QInputDialog)[-1]
    dialog.setTextValue("The Millers")
    dialog.accept()
    qtbot.waitUntil(lambda: window.filter_bar.concept_names == ["The Millers"], timeout=20_000)
    assert "learned from 4 photos" in window.statusBar().currentMessage()
    assert window.filter_bar.concept_filter.isVisibleTo(window)
    # its name is a query; its suggestions carry a confidence and can be answered
    window.query.setText("the millers")
    results = _search(qtbot, window, lambda: window.set_query_photo(None))  # the name alone
    assert all("The Millers" in r.meta["concepts"] for r in results)
    wrong = next(r for r in results if r.path not in shots)
    _select(window, [results.index(wrong)])
    menu = window.context_menu(wrong)
    texts = [a.text() for a in menu.actions()]
    assert "Yes, this is The Millers" in texts and "No, this is not The Millers" in texts
    before = wrong.meta["concepts"]["The Millers"]
    done = window.searches_done
    next(a for a in menu.actions() if a.text() == "No, this is not The Millers").trigger()
    qtbot.waitUntil(lambda: window.searches_done > done, timeout=20_000)  # searched again
    after = {r.path: r.meta["concepts"]["The Millers"] for r in window.results}
    assert after.get(wrong.path, 0.0) < before
    # the preview names the concepts a photo is tagged with
    tagged = next(r for r in window.results if r.meta["concepts"]["The Millers"] >= 0.5)
    rows = dict(metadata_rows(tagged))
    assert rows["Concepts"].startswith("The Millers (") and "how sure" in rows["Score"]
    untagged = next(r for r in window.all_results if r.meta["concepts"]["The Millers"] < 0.5)
    assert "Concepts" not in dict(metadata_rows(untagged))
    # as a filter
    window.query.setText("a photo")
    window.filter_bar.concept_filter.setCurrentIndex(window.filter_bar.concept_filter.findData("The Millers"))
    results = _search(qtbot, window, window.search)
    assert results and all(r.meta["concepts"]["The Millers"] >= 0.5 for r in results)
    window.filter_bar.concept_filter.setCurrentIndex(0)
    # the list of concepts: what each was learned from; show, remove
    concepts = window.open_concepts()
    qtbot.waitUntil(lambda: concepts.list.count() == 1 and concepts.list.item(0).data(
        Qt.ItemDataRole.UserRole) == "The Millers", timeout=10_000)
    assert "4 examples, 1 rejected" in concepts.list.item(0).text()
    window.resize(1200, 800)
    concepts.list.setCurrentRow(0)
    _search(qtbot, window, concepts.show_button.click)
    assert window.query.text() == "The Millers"
    box = concepts.remove()
    next(b for b in box.buttons() if b.text() == "Remove").click()
    qtbot.waitUntil(lambda: concepts.list.item(0).text() == "No concepts yet.", timeout=10_000)
    qtbot.waitUntil(lambda: window.filter_bar.concept_names == [], timeout=10_000)
    assert not window.filter_bar.concept_filter.isVisibleTo(window)
    concepts.close()


def test_the_window_process_never_loads_a_models_native_library(home, config, photos):
    """The window reaches every model through a helper process: after the first run (a
    model check that finds nothing, an imported weights file), indexing and a search, no
    torch, open_clip, ONNX Runtime or llama.cpp module is in its process (they cost ~0.9 GB
    resident and seconds to load). A fresh process: this one imported them long ago."""
    weights = config.weights
    config.weights = ""  # a new user's first run: nothing on this computer yet
    home.mkdir(parents=True, exist_ok=True)
    save_config(home, config)
    out = subprocess.run([sys.executable, str(REPO / "tests" / "gui_process.py"), weights,
                          str(photos)], capture_output=True, text=True, env=cli_env(home),
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_damaged_cached_thumbnail_is_made_again(qtbot, tmp_path):
    """A cached thumbnail truncated (a full disk) or overwritten was shown broken for ever."""
    from mmrag_desktop.media.files import file_hash

    photo = coco_photos()[5]
    digest = file_hash(photo)
    lanes = Lanes(workers={"thumbnails": 1})
    loader = ThumbnailLoader(tmp_path / "thumbnails", 128, lanes)
    cached = thumbnail(photo, digest, 128, tmp_path / "thumbnails")
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 3])  # truncated
    got = []
    loader.loaded.connect(got.append)
    try:
        assert loader.image(str(photo), digest) is None  # being made
        qtbot.waitUntil(lambda: bool(got), timeout=30_000)
        image = loader.image(str(photo), digest)
        assert image is not None and not image.isNull() and max(image.width(), image.height()) == 128
        assert cached.stat().st_size > len(good) // 3
    finally:
        loader.close()
        lanes.close()


def test_people_view_names_a_person_and_filters_the_library_to_them(qtbot, home, config,
                                                                    tmp_path, monkeypatch):
    pytest.importorskip("dlib", reason="finding faces needs dlib-bin")
    from mmrag_desktop.gui.dialogs.preview import PreviewDialog

    faces = REPO.parent / "shared" / "data" / "faces-dev" / "images"
    if not faces.is_dir():
        pytest.skip("faces-dev not found (see shared/README.md)")
    folder = tmp_path / "people"
    shutil.copytree(faces, folder)
    config.understand = ["faces"]
    window = _window(qtbot, home, config)
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 20)
    engine = window.bridge.engine
    qtbot.waitUntil(lambda: len(engine.people.everyone()) == 5, timeout=120_000)
    dialog = window.open_people()
    qtbot.waitUntil(lambda: dialog.list.count() == 5, timeout=30_000)
    first = dialog.list.item(0)
    assert "8 photos" in first.text() and not first.icon().isNull()  # Obama: a face shown
    first.setSelected(True)
    dialog._change(lambda engine: engine.people.name(first.data(Qt.ItemDataRole.UserRole),
                                                     "Barack"))
    qtbot.waitUntil(lambda: dialog.list.count() == 5 and dialog.list.item(0).text()
                    .startswith("Barack"), timeout=30_000)
    dialog.list.item(0).setSelected(True)
    dialog.buttons["Show photos"].click()
    assert window.filter_bar.people_chip.isVisible()
    assert "Barack" in window.filter_bar.people_chip.text()
    view = window.timeline_view
    qtbot.waitUntil(lambda: len(view.timeline) == 8, timeout=30_000)
    # The preview draws the faces with names, and offers to correct each.
    group = next(i for i, r in enumerate(view.timeline) if "group_obama_biden" in r.path)
    preview = PreviewDialog(list(view.timeline), group, window.bridge)
    qtbot.addWidget(preview)
    qtbot.waitUntil(lambda: len(preview._faces) >= 2, timeout=30_000)
    assert "Barack" in [name for _, name in preview._faces]
    assert preview.faces_row.count() == len(preview._faces)
    preview.close()
    window.filter_bar.people_chip.click()  # the chip clears the filter
    qtbot.waitUntil(lambda: len(view.timeline) == 20, timeout=30_000)
    dialog.close()
    # Settings: turning faces off asks, then deletes every face and name.
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or
                        QMessageBox.StandardButton.Yes)
    settings = window.open_settings()
    settings.analyses["faces"].setChecked(False)
    settings.accept()
    assert asked and "deletes every face" in asked[0]
    qtbot.waitUntil(lambda: window.bridge.engine.config.understand == [], timeout=60_000)
    # after the pass under way stops: then nothing of faces is left
    qtbot.waitUntil(lambda: window.bridge.engine.store.face_count() == (0, 0), timeout=60_000)
    assert window.bridge.engine.people.everyone() == []
    window.close()


def test_a_query_understood_shows_chips_that_remove_their_part(qtbot, window, dated_photos):
    window.bridge.add_folder(str(dated_photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    window.query.setText("a photo from July 2019")
    results = _search(qtbot, window, window.search)
    assert len(window.all_results) == SUMMER_2019  # the date became a filter
    assert all(r.meta["taken_at"].startswith("2019-07") for r in results)
    chips = [w for w in window.filter_bar.understood.findChildren(QToolButton)]
    assert window.filter_bar.understood.isVisible()
    assert [c.text() for c in chips] == ["2019-07-01 – 2019-07-31  ✕"]
    _search(qtbot, window, chips[0].click)
    assert window.query.text() == "a photo" and len(window.all_results) == 40
    assert not window.filter_bar.understood.isVisible()


def test_no_chip_label_or_progress_widens_the_window(qtbot, window, photos):
    from mmrag_desktop.library.indexer import Progress
    from mmrag_desktop.understanding.passes import Progress as UnderstandProgress

    window.resize(1280, 800)
    long = "A folder with a very long name from a camera import 2019-07-14 (copy) final"
    window.filter_bar.set_folder(str(photos / long))
    window.filter_bar.set_place((38.7223, -9.1393, 10.0), "IMG_20190714_123456_HDR_panorama_edit.jpg")
    window.filter_bar.set_people({1: "Alexandra Konstantinopoulou", 2: "Maximilian Oberhausen"})
    window.ask_panel.set_photo(str(photos / f"{long}.jpg"))
    window.indexing.progress(Progress("index", 12345, 67890, rate=3.2, eta=8000.0))
    window.indexing.understanding(UnderstandProgress("text", 12, 400, paused=True))
    window.indexing.library({"photos": 470, "model": "XLM-Roberta-Base-ViT-B-32 "
                             "(laion5b_s13b_b90k)"}, " · cpu: images bf16, text fp32")
    from mmrag_desktop.store.albums import AlbumRow
    window.filter_bar.set_albums([AlbumRow(1, "Grandma's 90th birthday party in Lisbon", 1234)])
    window.filter_bar.set_cameras([("Canon EOS 5D Mark IV with a long lens", "Canon", 4567)])
    window.filter_bar.result_count.setText("500 results · 12,345+ weak matches hidden")
    QApplication.processEvents()
    assert window.minimumSizeHint().width() <= 1280, window.minimumSizeHint()
    assert window.width() <= 1280


def test_folder_names_keep_their_width_beside_a_long_state(qtbot, window):
    """At 1280 × 800 and the dock's first width, a folder's state ("offline (the disk is not
    connected)", "up to date, 1,234 missing (kept)", errors) no longer squeezes the names
    beside it ("Lisbo…y two"): it shows its first words, the rest in its tooltip."""
    from mmrag_desktop.domain.folders import FolderState
    from mmrag_desktop.domain.timeline import FolderNode

    window.resize(1280, 800)
    root = "/home/anna/Pictures"
    trip = FolderNode(f"{root}/Trip", 101, [FolderNode(f"{root}/Trip/Lisbon day two", 40)])
    panel = window.folders_panel
    for state in ("up to date, 1,234 missing (kept)", "offline (the disk is not connected)"):
        panel.set_folders([FolderState(root, 12_345, 17, state)])
        panel.set_tree([FolderNode(root, 12_345, [FolderNode(f"{root}/Downloads", 100), trip])])
        for item in panel._items():
            item.setExpanded(True)
        QApplication.processEvents()
        top = panel.tree.topLevelItem(0)
        assert top.text(2) == f"{state.split(',')[0].split(' (')[0]} ⚠ 17"
        assert state in top.toolTip(2) and "17 errors" in top.toolTip(2)
        metrics, indent = panel.tree.fontMetrics(), panel.tree.indentation()
        for item, depth in ((top.child(0), 1), (top.child(1).child(0), 2)):
            needed = (depth + 1) * indent + metrics.horizontalAdvance(item.text(0)) + 8
            assert panel.tree.header().sectionSize(0) >= needed, (item.text(0), needed)


def test_the_preview_keys_step_and_close_whatever_has_the_focus(qtbot, window, photos):
    from PySide6.QtWidgets import QPushButton

    from mmrag_desktop.gui.dialogs.preview import PreviewDialog

    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    view = window.timeline_view
    qtbot.waitUntil(lambda: len(view.timeline) == 40, timeout=30_000)
    asked = []
    preview = PreviewDialog(list(view.timeline), 0, window.bridge, window)
    preview.ask_about.connect(asked.append)
    qtbot.addWidget(preview)
    preview.show()
    preview.activateWindow()
    qtbot.waitActive(preview)
    assert not isinstance(preview.focusWidget(), QPushButton)  # the photo has the focus
    qtbot.keyClick(preview.focusWidget(), Qt.Key.Key_Right)
    assert preview.row == 1
    opened = next(b for b in preview.findChildren(QPushButton) if b.text() == "Ask…")
    opened.setFocus()  # even a focused button leaves the arrows and Space to the preview
    qtbot.keyClick(opened, Qt.Key.Key_Right)
    qtbot.keyClick(opened, Qt.Key.Key_Left)
    qtbot.keyClick(opened, Qt.Key.Key_Left)
    assert preview.row == 0
    qtbot.keyClick(opened, Qt.Key.Key_Space)
    assert not preview.isVisible() and asked == []


def test_the_viewer_zooms_pans_shows_1_to_1_and_fills_the_screen(qtbot, window, tmp_path):
    """The wheel and + / − zoom, a drag pans, 1 shows the photo's own pixels (decoded at full
    size: the preview is 1600 px), 0 fits it again, F fills the screen and back."""
    from PySide6.QtGui import QMouseEvent, QWheelEvent

    from mmrag_desktop.gui.dialogs.preview import PreviewDialog

    folder = tmp_path / "big"
    folder.mkdir()
    with Image.open(coco_photos()[0]) as image:
        image.resize((3200, 2400)).save(folder / "big.jpg")
    window.bridge.add_folder(str(folder))
    window.start()
    _wait_indexed(qtbot, window, 1)
    qtbot.waitUntil(lambda: len(window.timeline_view.timeline) == 1, timeout=30_000)
    preview = PreviewDialog(list(window.timeline_view.timeline), 0, window.bridge, window)
    qtbot.addWidget(preview)
    preview.show()
    qtbot.waitUntil(lambda: not preview._image.isNull(), timeout=10_000)
    assert preview._image.width() == 1600 and preview._zoom is None
    label = preview.image_label
    wheel = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(label, wheel)
    assert preview._zoom is not None and preview._zoom > preview.fitted_scale()
    qtbot.keyClick(label, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: preview._image.width() == 3200, timeout=10_000)
    assert preview._zoom == 1.0
    assert label.pixmap().size() == label.size()  # a part of the photo, pixel for pixel
    centre = QPointF(preview._centre)
    for kind, x in ((QEvent.Type.MouseButtonPress, 200), (QEvent.Type.MouseMove, 100),
                    (QEvent.Type.MouseButtonRelease, 100)):
        QApplication.sendEvent(label, QMouseEvent(kind, QPointF(x, 100), QPointF(x, 100),
                                                  Qt.MouseButton.LeftButton,
                                                  Qt.MouseButton.LeftButton,
                                                  Qt.KeyboardModifier.NoModifier))
    assert preview._centre.x() == pytest.approx(centre.x() + 100)  # dragged left: further right
    qtbot.keyClick(label, Qt.Key.Key_Minus)
    assert preview._zoom == pytest.approx(0.8)
    qtbot.keyClick(label, Qt.Key.Key_0)
    assert preview._zoom is None
    qtbot.keyClick(label, Qt.Key.Key_F)
    qtbot.waitUntil(preview.isFullScreen, timeout=5_000)
    qtbot.keyClick(label, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: not preview.isFullScreen(), timeout=5_000)
    preview.close()


def test_a_months_title_selects_it_and_the_scrubber_jumps_through_the_years(
        qtbot, window, dated_photos):
    window.bridge.add_folder(str(dated_photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    view = window.timeline_view
    qtbot.waitUntil(lambda: len(view.timeline) == 40, timeout=30_000)
    window.resize(1280, 800)
    QApplication.processEvents()
    newest, oldest = view.timeline.months  # March 2023 (28 photos), July 2019 (12)
    second = view.timeline_model.header_rows()[1]
    view.scrollTo(view.timeline_model.index(second, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(20, view.rowViewportPosition(second) + 10))
    picked = window.selected_results()
    assert len(picked) == oldest.count == 12
    assert all(r.meta["date"].startswith("2019-07") for r in picked)

    scrubber = view.scrubber
    assert scrubber.isVisible() and scrubber.month_at(0) == 0
    assert scrubber.month_at(scrubber.height() - 1) == 1
    view.scrollToTop()
    qtbot.mouseClick(scrubber, Qt.MouseButton.LeftButton, pos=QPoint(10, scrubber.height() - 2))
    assert view.top_photo() in set(view.timeline.paths[oldest.start:])
    qtbot.mouseClick(scrubber, Qt.MouseButton.LeftButton, pos=QPoint(10, 1))
    assert view.verticalScrollBar().value() == 0


def test_timeline_rows_keep_their_height_after_photos_arrive_or_the_size_changes(
        qtbot, window, dated_photos, tmp_path):
    window.bridge.add_folder(str(dated_photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    view = window.timeline_view
    qtbot.waitUntil(lambda: len(view.timeline) == 40, timeout=30_000)

    def heights_ok() -> bool:
        model, headers = view.timeline_model, set(view.timeline_model.header_rows())
        return all(view.rowHeight(row) == (40 if row in headers else view._cell)
                   for row in range(model.rowCount()))

    assert heights_ok()
    view.set_thumbnail_size(128)  # more columns: the header rows move
    assert heights_ok()
    for photo in coco_photos()[40:52]:  # photos arrive in the newer month
        exif = Image.Exif()
        exif[306] = "2023:03:15 10:00:00"
        with Image.open(photo) as img:
            img.save(dated_photos / photo.name, "JPEG", exif=exif)
    qtbot.waitUntil(lambda: len(view.timeline) == 52, timeout=60_000)
    assert heights_ok()
    view.set_thumbnail_size(256)
    assert heights_ok()


def test_a_second_launch_hands_its_photo_to_the_open_window(qtbot, window, photos, home):
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    assert window.instance.listening
    photo = sorted(photos.iterdir())[3]
    env = cli_env(home) | {"QT_QPA_PLATFORM": "offscreen"}
    launch = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "gui", str(photo)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    qtbot.waitUntil(lambda: launch.poll() is not None, timeout=120_000)
    out, err = launch.communicate()
    assert launch.returncode == 0 and "has your request" in out, (out, err)
    qtbot.waitUntil(lambda: window.query_photo == str(photo), timeout=30_000)


def test_the_first_indexing_shows_what_happens_and_photos_as_they_arrive(qtbot, window, photos):
    seen, browses = [], []
    window.bridge.progress.connect(lambda p: (seen.append((p.phase, window.placeholder.text())),
                                              browses.append(window.browse_generation)))
    done = []
    window.bridge.indexed.connect(lambda *_: done.append(window.browse_generation))
    window.bridge.add_folder(str(photos))
    assert "Add a folder" not in window._empty_text()  # being added already counts
    window.start()
    _wait_indexed(qtbot, window, 40)
    qtbot.waitUntil(lambda: bool(done), timeout=30_000)
    texts = [text for _, text in seen]
    assert not any("Add a folder" in t for t in texts)
    assert any(t.startswith(("Looking for photos", "Reading photos")) for t in texts), texts
    assert seen[0][0] == "scan"  # progress from the first second
    index_browses = [b for (phase, _), b in zip(seen, browses) if phase == "index"]
    assert index_browses and index_browses[-1] > browses[0]  # browsed during the run


def test_the_window_and_its_panels_keep_their_size(qtbot, home, config):
    window = _window(qtbot, home, config)
    window.resize(780, 520)  # within the offscreen platform's 800×600 screen
    window.resizeDocks([window.folders_dock], [222], Qt.Orientation.Horizontal)
    window.ask_dock.hide()
    QApplication.processEvents()
    width, size = window.folders_dock.width(), (window.width(), window.height())
    assert size[1] == 520
    window.close()
    again = _window(qtbot, home, config)
    QApplication.processEvents()
    assert again.height() == size[1]  # (its width is held at the 800-pixel screen's)
    assert again.ask_dock.isHidden() and abs(again.folders_dock.width() - width) <= 2
    again.close()


def test_open_says_so_when_no_application_can(qtbot, window, photos, monkeypatch):
    from mmrag_desktop.gui.widgets import desktop

    monkeypatch.setattr(desktop, "open_with_default_app", lambda path: False)
    monkeypatch.setattr(desktop, "player_command", lambda path, at: None)
    said = []
    desktop.open_or_say(str(photos / "a.jpg"), None, said.append)
    assert said and "No application could open a.jpg" in said[0]


def test_the_text_reading_pass_can_be_paused_from_the_status_bar(qtbot, home, config, photos):
    from mmrag_desktop.understanding.passes import Progress as UnderstandProgress

    config.understand = ["text"]
    window = _window(qtbot, home, config)
    paused = []
    window.bridge.understanding.connect(
        lambda p: isinstance(p, UnderstandProgress) and p.paused and paused.append(p))
    window.bridge.add_folder(str(photos))
    window.start()
    _wait_indexed(qtbot, window, 40)
    status = window.indexing
    qtbot.waitUntil(lambda: status.understand_label.isVisible(), timeout=60_000)
    assert status.pause_button.isVisible() and status.progress_label.isHidden()
    status.pause_button.click()
    qtbot.waitUntil(lambda: bool(paused), timeout=60_000)  # the pass waits between photos
    assert status.pause_button.text() == "Resume"
    status.pause_button.click()
    qtbot.waitUntil(lambda: status.understand_label.isHidden(), timeout=300_000)
    assert status.pause_button.isHidden()
    window.close()


def test_ask_shows_it_is_thinking_and_the_photos_at_once(qtbot, tmp_path):
    from mmrag_desktop.gui.widgets.ask_panel import AskPanel

    lanes = Lanes()
    loader = ThumbnailLoader(tmp_path / "thumbnails", 96, lanes)
    panel = AskPanel(loader, tmp_path / "pasted")
    qtbot.addWidget(panel)
    panel.question.setText("Which photo shows a dog?")
    panel.ask()
    assert "Thinking… choosing the photos" in panel.answer.toPlainText()
    photos = [Result(i, str(p), 0.3, {"hash": f"{i:032x}"})
              for i, p in enumerate(coco_photos()[:2])]
    panel.looking_at(photos)  # chosen: shown before the model writes a word
    assert panel.cited_list.count() == 2
    assert "looking at 2 photos" in panel.answer.toPlainText()
    panel.add_text("The first")
    assert "Thinking" not in panel.answer.toPlainText()
    lanes.close("thumbnails")


def test_asking_about_a_photo_keeps_a_conversation_unless_the_user_says(qtbot, window,
                                                                         photos, monkeypatch):
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    panel = window.ask_panel
    panel.turns = [("Which photo shows a dog?", "The second.")]
    photo = str(sorted(photos.iterdir())[0])
    window.ask_about(photo)
    assert panel.turns and panel.photo is None  # "No": the conversation stays
    window.ask_about(photo)
    assert panel.turns == [] and panel.photo == photo


def test_the_projector_picker_opens_in_the_models_folder_and_refuses_the_model(
        qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    model = tmp_path / "models" / "gemma.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")
    asked = []

    def pick(_parent, title, start, _filter):
        asked.append(start)
        return str(model), ""  # the model chosen twice: a slip

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    used = []
    dialog = window.open_vlm_setup()
    monkeypatch.setattr(dialog, "use_files", lambda *files: used.append(files))
    dialog._choose_files()
    assert asked == ["", str(model.parent)]  # the folder, not the model file pre-chosen
    assert used == [] and "another file than the model" in dialog.state.text()
    dialog.reject()
