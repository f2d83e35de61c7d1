"""Folder watching on real photos: live changes, offline roots, polling fallback, searching
while indexing, and the `mmrag watch` command's clean shutdown."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from mmrag_desktop.library import watcher as watcher_module
from mmrag_desktop.domain.query import Term
from mmrag_desktop.library.watcher import Watcher
from conftest import Repairs, coco_photos, cli_env

TIMEOUT = 30.0


def wait_for(condition, timeout: float = TIMEOUT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def top_path(engine, photo) -> str | None:
    results = engine.search.run([Term(photo=str(photo))], k=1)
    return results[0].path if results and results[0].score > 0.999 else None


@pytest.fixture
def watching(engine, photos):
    reports, messages = [], []
    engine.folders.add(photos)
    w = Watcher(engine, settle=0.3, max_delay=5, rescan_interval=0,
                on_report=lambda r, roots: reports.append(r), on_message=messages.append)
    w.start()
    wait_for(lambda: w.runs >= 1 and w.idle(), what="the reconciliation run")
    yield w, reports, messages
    w.stop()


def test_changes_show_up_in_search(engine, photos, watching, tmp_path):
    w, reports, _ = watching
    assert sum(r.embedded for r in reports) == 40  # the first run defers files just copied
    new = coco_photos()[100]
    shutil.copy2(new, photos / "new.jpg")
    wait_for(lambda: top_path(engine, new) == str(photos / "new.jpg"), what="the new photo")
    wait_for(w.idle, what="the new photo's run to report")  # searchable before its report

    embedded_before = sum(r.embedded for r in reports)
    (photos / "album").mkdir()
    os.rename(photos / "new.jpg", photos / "album" / "moved.jpg")
    wait_for(lambda: top_path(engine, new) == str(photos / "album" / "moved.jpg"),
             what="the moved photo")
    os.rename(photos / "album", photos / "renamed album")
    wait_for(lambda: top_path(engine, new) == str(photos / "renamed album" / "moved.jpg"),
             what="the renamed folder")
    assert sum(r.embedded for r in reports) == embedded_before  # moves never re-embed

    (photos / "renamed album" / "moved.jpg").unlink()
    wait_for(lambda: top_path(engine, new) is None, what="the deletion")
    assert engine.store.vector_count() == engine.vector_index().count() == 40


def test_file_being_written_is_indexed_once_complete(engine, photos, watching):
    w, reports, _ = watching
    data = coco_photos()[101].read_bytes()
    target = photos / "slow.jpg"
    with target.open("wb") as f:
        for start in range(0, len(data), len(data) // 5):
            f.write(data[start:start + len(data) // 5])
            f.flush()
            time.sleep(0.15)  # a slow copy: never quiet for `settle` seconds
    wait_for(lambda: top_path(engine, coco_photos()[101]) == str(target), what="the slow file")
    assert all(not r.errors for r in reports)  # the half-written file was never recorded


def test_temporary_and_hidden_files_are_ignored(engine, photos, watching):
    w, reports, _ = watching
    runs = w.runs
    for name in ("upload.jpg.part", "edit.jpg~", "download.tmp", ".hidden.jpg"):
        shutil.copy2(coco_photos()[102], photos / name)
    time.sleep(1.5)
    assert w.runs == runs and w.idle()
    assert engine.store.vector_count() == 40


def test_unplugged_root_goes_offline_and_comes_back(engine, photos, watching, tmp_path):
    w, reports, _ = watching
    query = tmp_path / "query.jpg"
    shutil.copy2(next(photos.iterdir()), query)
    os.rename(photos, tmp_path / "unplugged")
    wait_for(lambda: engine.store.counts() == {"offline": 40}, what="offline")
    assert engine.search.run([Term(photo=str(query))], k=5) == []
    embedded = sum(r.embedded for r in reports)
    os.rename(tmp_path / "unplugged", photos)
    wait_for(lambda: engine.store.counts() == {"ok": 40}, what="back online")
    assert top_path(engine, query) is not None
    assert sum(r.embedded for r in reports) == embedded


def test_watch_limit_falls_back_to_polling(engine, photos, monkeypatch):
    class Exhausted(watcher_module.Observer):
        def start(self):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", Exhausted)
    messages = []
    engine.folders.add(photos)
    w = Watcher(engine, settle=0.3, rescan_interval=0, on_message=messages.append)
    w.start()
    try:
        wait_for(lambda: w.runs >= 1 and w.idle(), what="the reconciliation run")
        assert any("max_user_watches" in m and str(photos) in m for m in messages)
        new = coco_photos()[103]
        shutil.copy2(new, photos / "polled.jpg")
        wait_for(lambda: top_path(engine, new) == str(photos / "polled.jpg"),
                 what="the change seen by polling")
    finally:
        w.stop()


def test_search_works_while_indexing(engine, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for photo in coco_photos():
        shutil.copy2(photo, folder / photo.name)
    engine.vector_index()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (engine.updates.index([str(folder)]), done.set()))
    worker.start()
    answered = 0
    while not done.is_set():
        results = engine.search.run([Term(text="a photo")], k=10)
        paths = [r.path for r in results]
        assert len(set(paths)) == len(paths) and all(os.path.exists(p) for p in paths)
        answered += 1
    worker.join()
    assert answered >= 5  # searches were answered during the run, not after it
    assert engine.store.vector_count() == len(coco_photos())


def test_watch_command_indexes_changes_and_stops_on_sigterm(engine, photos):
    engine.on_notice = repairs = Repairs()
    engine.folders.add(photos)
    proc = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "watch", "--settle", "0.3"],
                            env=cli_env(engine.home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: engine.store.vector_count() == 40, timeout=60, what="the first run")
        new = coco_photos()[104]
        shutil.copy2(new, photos / "added.jpg")
        wait_for(lambda: engine.store.vector_count() == 41, what="the added photo")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping" in err and "1 embedded" in out
    assert engine.vector_index().count() == 41 and repairs == []


def test_periodic_rescan_finds_changes_without_events(engine, photos, monkeypatch):
    """A network share delivers no events: the periodic rescan still finds its changes."""
    class Deaf(watcher_module.Observer):
        def schedule(self, *args, **kwargs):  # an observer that never reports anything
            return None

    monkeypatch.setattr(watcher_module, "Observer", Deaf)
    engine.folders.add(photos)
    w = Watcher(engine, settle=0.3, rescan_interval=1.0)
    w.start()
    try:
        wait_for(lambda: w.runs >= 1, what="the reconciliation run")
        new = coco_photos()[105]
        shutil.copy2(new, photos / "unnoticed.jpg")
        wait_for(lambda: top_path(engine, new) == str(photos / "unnoticed.jpg"),
                 what="the periodic rescan")
    finally:
        w.stop()


def test_photo_with_future_mtime_is_not_deferred_forever(engine, photos, watching):
    new = coco_photos()[106]
    target = photos / "from the future.jpg"
    shutil.copy2(new, target)
    tomorrow = time.time() + 86400
    os.utime(target, (tomorrow, tomorrow))  # a camera with a wrong clock
    wait_for(lambda: top_path(engine, new) == str(target), what="the future-dated photo")


def test_a_change_reindexes_its_folder_not_the_whole_root(engine, photos, watching):
    w, reports, _ = watching
    album = photos / "2024" / "summer"
    album.mkdir(parents=True)
    wait_for(lambda: w.idle(), what="the new folder's run")
    before = len(reports)
    new = coco_photos()[110]
    shutil.copy2(new, album / "new.jpg")
    # the run's report comes after its commit: wait for both
    wait_for(lambda: top_path(engine, new) == str(album / "new.jpg") and len(reports) > before,
             what="the new photo and its run's report")
    later = reports[before:]
    assert later and all(r.found <= 1 for r in later)  # one folder read, not 41 files
    assert sum(r.embedded for r in later) == 1
    os.rename(photos / "2024", photos / "2025")  # a folder move: both ends are covered
    moved = photos / "2025" / "summer" / "new.jpg"
    wait_for(lambda: top_path(engine, new) == str(moved), what="the moved folder")
    assert sum(r.embedded for r in reports[before:]) == 1 and engine.store.vector_count() == 41


def test_deleting_a_subfolder_is_not_a_mass_removal(engine, photos, watching):
    """Held removals compare with the whole library folder, not with the folder a watch run
    covered: deleting one album of 25 photos from a folder of 65 just deletes them."""
    w, reports, _ = watching
    album = photos / "album"
    album.mkdir()
    for photo in coco_photos()[120:145]:
        shutil.copy2(photo, album / photo.name)
    wait_for(lambda: engine.store.vector_count() == 65 and w.idle(), timeout=60, what="the album")
    shutil.rmtree(album)
    wait_for(lambda: engine.store.vector_count() == 40, what="the deletion")
    assert all(not r.held_back for r in reports) and engine.store.counts() == {"ok": 40}
