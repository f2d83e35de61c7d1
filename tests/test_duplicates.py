"""Near-duplicate groups on real photos: exact byte copies, resized and re-compressed copies
made here from coco-mini photos, grouped with their originals, the original suggested to
keep; distinct photos left alone."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.domain.duplicates import group
from conftest import coco_photos

# The tests' tiny random-weight model puts distinct photos up to cosine 0.997 apart and
# copies at ≥ 0.9996; real CLIP models separate them far more (the default is 0.99).
THRESHOLD = 0.999


def test_copies_are_grouped_with_their_original_first(engine, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    originals = coco_photos()[:12]
    for photo in originals:
        shutil.copy2(photo, folder / photo.name)
    expected = []
    for photo in originals[:3]:
        exact = folder / f"copy of {photo.name}"
        shutil.copy2(photo, exact)
        smaller = folder / f"{photo.stem}-small.jpg"
        with Image.open(photo) as img:
            img.resize((img.width // 2, img.height // 2)).save(smaller, "JPEG", quality=60)
        expected.append(sorted([str(folder / photo.name), str(exact), str(smaller)]))
    engine.updates.index([str(folder)])
    assert engine.store.vector_count() == 18

    groups = engine.analyses.duplicates(THRESHOLD)
    assert sorted(sorted(r.path for r in g.photos) for g in groups) == sorted(expected)
    for found in groups:
        assert not found.exact  # a resized copy is in every group
        keep = os.path.basename(found.keep.path)
        assert "-small" not in keep and not keep.startswith("copy of")  # the original
        assert os.path.basename(found.photos[-1].path).startswith("copy of")  # named a copy

    assert main(["--home", str(engine.home), "duplicates", "--threshold", str(THRESHOLD),
                 "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(sorted(p["path"] for p in g["photos"]) for g in listed) == sorted(expected)


def test_grouping_is_transitive_and_exact_copies_join_without_neighbours():
    import numpy as np

    ids = np.array([1, 2, 3, 4, 5])
    near = np.array([[1, 2], [2, 3], [3, 2], [4, 1], [5, 1]])
    scores = np.array([[1.0, 0.995], [1.0, 0.992], [1.0, 0.992], [1.0, 0.5], [1.0, 0.5]])
    hashes = {1: "a", 2: "b", 3: "c", 4: "d", 5: "d"}
    assert group(ids, near, scores, hashes, 0.99) == [[1, 2, 3], [4, 5]]
    assert group(ids, near, scores, hashes, 0.999) == [[4, 5]]


def indexed_window(qtbot, home, config, folder, photos: int):
    """The app's window on a new library of *folder*, once its *photos* are indexed."""
    from mmrag_desktop.core.config import save_config
    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.window import MainWindow
    from mmrag_desktop.library.facade import Library

    home.mkdir(parents=True)
    config.roots = [str(folder)]
    save_config(home, config)
    window = MainWindow(LibraryBridge(Library(home=home), settle=0.2))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                    == [(photos, "up to date")], timeout=60_000)
    return window


def test_the_duplicates_window_trashes_the_others_with_undo(qtbot, home, config, tmp_path,
                                                            monkeypatch):
    import os

    pytest.importorskip("pytestqt")
    from PySide6.QtWidgets import QMessageBox, QPushButton
    from send2trash import plat_other


    trash_home = tmp_path / "xdg-data"  # a private freedesktop trash
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(trash_home))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(trash_home / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(trash_home / "Trash"))
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Yes)
    folder = tmp_path / "photos"
    folder.mkdir()
    original = coco_photos()[7]
    for photo in coco_photos()[:6] + [original]:
        shutil.copy2(photo, folder / photo.name)
    with Image.open(original) as img:
        img.resize((img.width // 2, img.height // 2)).save(folder / "small.jpg", quality=60)
    shutil.copy2(original, folder / "copy.jpg")

    window = indexed_window(qtbot, home, config, folder, 9)
    dialog = window.open_duplicates()
    dialog.threshold.setValue(THRESHOLD * 100)
    dialog.find()
    qtbot.waitUntil(lambda: len(dialog.groups) == 1 and dialog.find_button.isEnabled(),
                    timeout=30_000)
    found, choice = dialog.groups[0]
    assert sorted(os.path.basename(r.path) for r in found.photos) == sorted(
        ["copy.jpg", original.name, "small.jpg"])
    assert choice.checkedId() == 0 and "small" not in found.keep.path
    assert "3 photos" not in dialog.summary.text() and "2 photos" in dialog.summary.text()

    choice.button(2).setChecked(True)  # keep the small one instead, as a user may
    kept = found.photos[2].path
    trash = [b for b in dialog.findChildren(QPushButton) if b.text().startswith("Move")][0]
    trash.click()
    gone = [r.path for r in found.photos if r.path != kept]
    qtbot.waitUntil(lambda: not any(os.path.exists(p) for p in gone), timeout=30_000)
    assert os.path.exists(kept)
    qtbot.waitUntil(lambda: dialog.groups == [] and "No copies" in dialog.summary.text(),
                    timeout=30_000)
    window.undo_button.click()
    qtbot.waitUntil(lambda: all(os.path.exists(p) for p in gone), timeout=30_000)
    qtbot.waitUntil(lambda: len(dialog.groups) == 1, timeout=30_000)  # indexed again
    window.close()


def test_the_original_is_suggested_over_downloads_and_copies_and_says_why():
    from mmrag_desktop.domain.duplicates import keep_first, why_kept
    from mmrag_desktop.domain.query import Result

    def photo(path, width, size, taken=None, camera=None):
        return Result(0, path, 1.0, {"width": width, "height": width * 3 // 4, "size": size,
                                     "taken_at": taken, "camera_model": camera})

    original = photo("/home/a/Pictures/2019 Lisbon/IMG_0042.jpg", 4000, 3_100_000,
                     "2019-07-14T12:00:00", "iPhone 12 Pro")
    download = photo("/home/a/Downloads/copy of IMG_0042.jpg", 4000, 3_900_000)  # larger
    messenger = photo("/home/a/Pictures/WhatsApp Images/IMG-20190714-WA0001.jpg", 1600, 300_000)
    renamed = photo("/home/a/Pictures/2019 Lisbon/IMG_0042 (1).jpg", 4000, 3_100_000,
                    "2019-07-14T12:00:00", "iPhone 12 Pro")
    ordered = keep_first([download, messenger, renamed, original])
    assert ordered[0] is original and ordered[1] is renamed
    why = why_kept(ordered)
    assert "downloads folder or named as copies" in why and "EXIF" in why
    # without a copy-like path, EXIF still wins over a larger file stripped of it
    stripped = photo("/home/a/Pictures/export/IMG_0042.jpg", 4000, 3_900_000)
    assert keep_first([stripped, original])[0] is original


def test_a_wide_group_keeps_its_button_in_the_window_and_says_why(qtbot, home, config,
                                                                   tmp_path):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QLabel, QPushButton


    folder = tmp_path / "photos"
    (folder / "Downloads").mkdir(parents=True)
    original = coco_photos()[7]
    shutil.copy2(original, folder / "IMG_0007.jpg")
    for n in range(9):  # nine copies: a group far wider than the dialog
        shutil.copy2(original, folder / "Downloads" / f"IMG_0007 ({n + 1}).jpg")
    window = indexed_window(qtbot, home, config, folder, 10)
    dialog = window.open_duplicates()
    dialog.resize(1000, 700)
    qtbot.waitUntil(lambda: len(dialog.groups) == 1 and dialog.find_button.isEnabled(),
                    timeout=30_000)
    trash = next(b for b in dialog.findChildren(QPushButton) if b.text().startswith("Move"))
    qtbot.waitUntil(lambda: trash.isVisible(), timeout=5_000)
    right = trash.mapTo(dialog, QPoint(trash.width(), 0)).x()
    assert 0 < right <= dialog.width()  # on screen, not past the widest group's edge
    assert dialog.groups[0][0].keep.path == str(folder / "IMG_0007.jpg")
    why = [w.text() for w in dialog.findChildren(QLabel) if w.text().startswith("Suggested")]
    assert why and "named as copies" in why[0]
    window.close()
