"""Near-duplicate groups on real photos: exact byte copies, resized and re-compressed copies
made here from coco-mini photos, grouped with their originals, the original suggested to
keep; distinct photos left alone."""

from __future__ import annotations

import json
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
        keep = found.keep.path
        assert "-small" not in keep  # the full-size original or its byte copy
        assert found.photos[-1].path.endswith("-small.jpg")

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


def test_the_duplicates_window_trashes_the_others_with_undo(qtbot, home, config, tmp_path,
                                                            monkeypatch):
    import os

    pytest.importorskip("pytestqt")
    from PySide6.QtWidgets import QMessageBox, QPushButton
    from send2trash import plat_other

    from mmrag_desktop.core.config import save_config
    from mmrag_desktop.library.facade import Library
    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.window import MainWindow

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

    home.mkdir(parents=True)
    config.roots = [str(folder)]
    save_config(home, config)
    window = MainWindow(LibraryBridge(Library(home=home), settle=0.2))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                    == [(9, "up to date")], timeout=60_000)
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
