"""Folders as users have them: nested and symlinked roots, names that are not UTF-8, the
app's own folder inside a library folder, OS-hidden files, and drives that come and go."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmrag_desktop.library import scanner
from mmrag_desktop.core.config import load_config, save_config
from mmrag_desktop.library.facade import Library
from mmrag_desktop.library.folders import FolderError
from mmrag_desktop.library.indexer import MASS_REMOVAL_MIN
from mmrag_desktop.domain.query import Filters, Term
from mmrag_desktop.library.watcher import Watcher
from conftest import cli_env, coco_photos
from test_watcher import wait_for


def row_paths(engine: Library) -> list[str]:
    return [r["path"] for r in engine.store.details(
        [r[0] for r in engine.store.db.execute("SELECT id FROM photos")]).values()]


def test_nested_and_symlinked_roots_are_one_library(engine, photos, tmp_path):
    sub = photos / "sub"
    sub.mkdir()
    for photo in coco_photos()[40:45]:
        shutil.copy2(photo, sub / photo.name)
    engine.folders.add(photos)
    with pytest.raises(FolderError, match="inside"):
        engine.folders.add(sub)
    link = tmp_path / "link"
    link.symlink_to(photos)
    assert engine.folders.add(link) == str(photos) and engine.config.roots == [str(photos)]
    assert engine.updates.index().embedded == 45

    # A folder holding the root replaces it; nothing is embedded again.
    parent = tmp_path
    extra = tmp_path / "more"
    extra.mkdir()
    shutil.copy2(coco_photos()[50], extra / "x.jpg")
    assert engine.folders.add(parent) == str(parent)
    assert engine.config.roots == [str(parent)] and load_config(engine.home).roots == [str(parent)]
    report = engine.updates.index()
    assert (report.embedded, report.unchanged, report.deleted) == (1, 45, 0)
    paths = row_paths(engine)
    assert len(paths) == len(set(paths)) == 46


def test_hand_edited_nested_roots_never_abort_or_duplicate(home, config, photos):
    sub = photos / "2023"
    sub.mkdir()
    for photo in coco_photos()[40:44]:
        shutil.copy2(photo, sub / photo.name)
    config.roots = [str(photos), str(sub)]
    home.mkdir(parents=True)
    save_config(home, config)
    for _ in range(2):
        run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "index"],
                             env=cli_env(home), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    engine = Library(home=home)
    paths = row_paths(engine)
    assert len(paths) == len(set(paths)) == 44
    assert engine.vector_index().count() == 44


def test_folder_names_that_are_not_utf8(engine, tmp_path):
    folder = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9 photos"))
    inner = os.path.join(folder, os.fsdecode(b"\xff\xfeinner"))
    os.makedirs(inner)
    photos = coco_photos()
    for photo in photos[:6]:
        shutil.copy2(photo, os.path.join(folder, photo.name))
    for photo in photos[6:9]:
        shutil.copy2(photo, os.path.join(inner, photo.name))
    other = tmp_path / "plain"
    other.mkdir()
    for photo in photos[9:12]:
        shutil.copy2(photo, other / photo.name)
    engine.folders.add(folder)
    engine.folders.add(other)
    assert load_config(engine.home).roots == [folder, str(other)]
    assert engine.updates.index().embedded == 12
    hits = engine.search.run([Term(text="a photo")], k=50, filters=Filters(folders=[inner]))
    assert sorted(h.path for h in hits) == sorted(os.path.join(inner, p.name)
                                                   for p in photos[6:9])
    mine = engine.search.run([Term(text="a photo")], k=50, filters=Filters(folders=[folder]))
    assert len(mine) == 9 and all(h.path.startswith(folder) for h in mine)
    assert engine.store.root_counts()[folder] == {"ok": 9}


def test_the_app_folder_inside_a_library_folder_is_never_indexed(tmp_path, config, photos):
    home = photos / "app data"
    home.mkdir()
    save_config(home, config)
    engine = Library(home=home)
    thumbnails = home / "thumbnails" / "ab"
    thumbnails.mkdir(parents=True)
    shutil.copy2(coco_photos()[60], thumbnails / "abc-256.jpg")
    with pytest.raises(FolderError, match="own data folder"):
        engine.folders.add(home)
    engine.folders.add(photos)
    assert engine.updates.index().embedded == 40
    assert not any(p.startswith(str(home)) for p in row_paths(engine))
    watcher = Watcher(engine)
    assert not watcher.relevant(str(thumbnails / "new.jpg"), str(photos), False)


def test_os_hidden_flag_is_honoured(tmp_path, monkeypatch):
    mac = SimpleNamespace(st_mode=stat.S_IFREG, st_flags=stat.UF_HIDDEN)
    windows = SimpleNamespace(st_mode=stat.S_IFDIR, st_file_attributes=2)
    plain = SimpleNamespace(st_mode=stat.S_IFREG, st_flags=0, st_file_attributes=0)
    assert scanner.os_hidden(mac) and scanner.os_hidden(windows) and not scanner.os_hidden(plain)

    (tmp_path / "Hidden folder").mkdir()
    for name in ("shown.jpg", "hidden.jpg", "Hidden folder/inside.jpg"):
        shutil.copy2(coco_photos()[0], tmp_path / name)
    hidden = {"hidden.jpg", "Hidden folder"}
    real_scandir = os.scandir

    class Entry:
        """A directory entry whose stat carries the flag macOS would report for it (this
        file system has none)."""

        def __init__(self, entry):
            self._entry, self.name, self.path = entry, entry.name, entry.path

        def stat(self):
            st = self._entry.stat()
            return SimpleNamespace(st_mode=st.st_mode, st_size=st.st_size,
                                   st_mtime_ns=st.st_mtime_ns,
                                   st_flags=stat.UF_HIDDEN if self.name in hidden else 0)

        def is_symlink(self):
            return self._entry.is_symlink()

    monkeypatch.setattr(scanner.os, "scandir", lambda p: [Entry(e) for e in real_scandir(p)])

    def found(include_hidden):
        excluder = scanner.Excluder([], include_hidden=include_hidden)
        return sorted(os.path.basename(f.path)
                      for listing in scanner.scan([str(tmp_path)], excluder)
                      for f in listing.files)

    assert found(False) == ["shown.jpg"]
    assert found(True) == ["hidden.jpg", "inside.jpg", "shown.jpg"]


def test_a_root_on_another_device_goes_offline_not_deleted(engine, photos, capsys):
    engine.folders.add(photos)
    engine.updates.index()
    engine.store.record_root(str(photos), 987654321)  # the drive's device, now elsewhere
    report = engine.updates.index()
    assert report.offline_roots == [str(photos)] and report.deleted == 0
    assert "another disk" in report.offline_reasons[str(photos)]
    assert engine.store.counts() == {"offline": 40}
    assert engine.search.run([Term(text="a dog")], k=5) == []
    back = engine.updates.index(allow_removal=True)  # the user says the folder really moved
    assert (back.embedded, back.unchanged) == (0, 40)
    assert engine.store.counts() == {"ok": 40}


def test_an_empty_mount_point_goes_offline_and_comes_back(engine, photos, tmp_path):
    engine.folders.add(photos)
    engine.updates.index()
    away = tmp_path / "away"
    away.mkdir()
    for photo in photos.iterdir():
        photo.rename(away / photo.name)
    report = engine.updates.index()
    assert report.offline_roots == [str(photos)] and report.deleted == 0
    assert "empty" in report.offline_reasons[str(photos)]
    for photo in away.iterdir():
        photo.rename(photos / photo.name)
    back = engine.updates.index()
    # renamed back, their change time moved: read again to be sure, nothing re-embedded
    assert (back.embedded, back.unchanged + back.touched, back.deleted) == (0, 40, 0)


def test_mass_removal_is_held_until_confirmed(engine, photos, tmp_path, home):
    engine.folders.add(photos)
    engine.updates.index()
    away = tmp_path / "away"
    away.mkdir()
    victims = sorted(photos.iterdir())[:30]
    assert len(victims) >= MASS_REMOVAL_MIN
    for photo in victims:
        photo.rename(away / photo.name)
    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "index"], env=cli_env(home),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "--allow-removal" in run.stdout and "0 removed" in run.stdout
    assert engine.store.counts() == {"ok": 10, "offline": 30}
    assert len(engine.search.run([Term(text="a photo")], k=50)) == 10

    for photo in away.iterdir():  # the drive is back
        photo.rename(photos / photo.name)
    back = engine.updates.index()
    assert (back.embedded, back.deleted) == (0, 0) and engine.store.counts() == {"ok": 40}

    for photo in victims:
        photo.unlink()
    assert engine.updates.index().held_back == {str(photos): 30}
    assert engine.updates.index(allow_removal=True).deleted == 30
    assert engine.store.counts() == {"ok": 10} and engine.vector_index().count() == 10


def test_watcher_removes_held_photos_once_the_user_confirms(engine, photos):
    engine.folders.add(photos)
    held = []
    watcher = Watcher(engine, settle=0.2, rescan_interval=0,
                      on_report=lambda report, roots: held.append(report.held_back))
    watcher.start()
    try:
        wait_for(lambda: engine.store.counts() == {"ok": 40}, timeout=120, what="first run")
        for photo in sorted(photos.iterdir())[:25]:
            photo.unlink()
        wait_for(lambda: {str(photos): 25} in held, what="the removal held back")
        assert engine.store.counts() == {"ok": 15, "offline": 25}
        watcher.confirm_removal(str(photos))
        wait_for(lambda: engine.store.counts() == {"ok": 15}, what="the confirmed removal")
    finally:
        watcher.stop()


def test_an_unreadable_folder_or_file_keeps_its_photos(engine, photos, monkeypatch):
    # A folder or a file the scan cannot read this time (permissions changed, a share's
    # hiccup, an I/O error) says nothing about its photos: they stay, embeddings and all.
    trip = photos / "trip" / "day 1"
    trip.mkdir(parents=True)
    for photo in coco_photos()[40:45]:
        shutil.copy2(photo, trip / photo.name)
    flaky = photos / coco_photos()[0].name
    engine.updates.index([str(photos)])
    before = set(row_paths(engine))
    assert len(before) == 45
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry):
            self._entry, self.name, self.path = entry, entry.name, entry.path

        def stat(self):
            if self.path == str(flaky):
                raise OSError(5, "Input/output error")
            return self._entry.stat()

        def is_symlink(self):
            return self._entry.is_symlink()

    class Entries:  # what os.scandir returns: an iterator and a context manager
        def __init__(self, entries):
            self._entries = iter(entries)

        def __iter__(self):
            return self

        def __next__(self):
            return next(self._entries)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def scandir(path):
        if os.fspath(path) == str(photos / "trip"):
            raise PermissionError(13, "Permission denied")
        with real_scandir(path) as entries:
            return Entries([Entry(e) for e in entries])

    monkeypatch.setattr(scanner.os, "scandir", scandir)
    report = engine.updates.index([str(photos)])
    assert report.deleted == 0 and not report.held_back
    assert (str(photos / "trip"), "folder unreadable: Permission denied") in report.skipped
    assert (str(flaky), "unreadable: Input/output error") in report.skipped
    assert set(row_paths(engine)) == before
    assert {r.path for r in engine.search.run([Term(text="a photo")], k=45)} == before
    monkeypatch.undo()
    report = engine.updates.index([str(photos)])
    assert (report.unchanged, report.embedded, report.deleted) == (45, 0, 0)
    shutil.rmtree(photos / "trip")  # gone for real now: removed
    assert engine.updates.index([str(photos)]).deleted == 5


def test_a_link_to_a_photo_in_the_library_is_not_a_second_photo(engine, photos, tmp_path):
    """A symbolic link to a photo inside a library folder was indexed as a second photo:
    Find duplicates suggested keeping the link, and trashing "the others" trashed the real
    photo. A link to a photo the library has is that photo; a link to one outside is the
    library's only path to it, and trashing it moves the link, never the file."""
    import os

    from mmrag_desktop.library.trash import move_to_trash

    target = sorted(photos.iterdir())[0]
    os.symlink(target, photos / "link.jpg")
    outside = tmp_path / "elsewhere" / "away.jpg"
    outside.parent.mkdir()
    outside.write_bytes(coco_photos()[100].read_bytes())
    os.symlink(outside, photos / "away-link.jpg")
    engine.folders.add(photos)
    report = engine.updates.index()
    paths = {Path(r[0]).name for r in engine.store.db.execute("SELECT path FROM photos")}
    assert "link.jpg" not in paths and target.name in paths and "away-link.jpg" in paths
    assert report.embedded == 41
    assert not [g for g in engine.analyses.duplicates() if
                any(Path(r.path).name == "link.jpg" for r in g.photos)]
    move_to_trash([str(photos / "away-link.jpg")])
    assert outside.read_bytes() == coco_photos()[100].read_bytes()  # the file is untouched


def test_a_library_folder_moved_to_another_disk_is_moved_not_doubled(engine, photos, tmp_path,
                                                                      home):
    sub = photos / "2023 trip"
    sub.mkdir()
    for photo in sorted(photos.glob("*.jpg"))[:5]:
        photo.rename(sub / photo.name)
    engine.folders.add(photos)
    engine.updates.index()
    before = {os.path.relpath(p, photos) for p in row_paths(engine)}
    disk = tmp_path / "new disk"
    disk.mkdir()
    moved = disk / "photos"
    shutil.move(str(photos), str(moved))  # like `mv` to another disk: a copy, then a delete
    next(moved.glob("*.jpg")).unlink()  # one deleted since

    # `mmrag index NEW` says how to move the folder instead of adding a second copy.
    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "index", str(moved)],
                         env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert f"mmrag folders move {photos} '{moved}'" in run.stderr.replace("\n", " ")
    assert load_config(home).roots == [str(photos)]

    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "folders", "move", str(photos),
                          str(moved)], env=cli_env(home), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and "40 photos" in run.stdout, run.stderr
    engine = Library(home=home)
    try:
        assert engine.config.roots == [str(moved)]
        report = engine.updates.index()
        assert (report.embedded, report.deleted) == (0, 1)
        paths = row_paths(engine)
        assert len(paths) == len(set(paths)) == 39
        assert {os.path.relpath(p, moved) for p in paths} < before
        assert all(os.path.exists(p) for p in paths)
        assert engine.store.counts() == {"ok": 39}
    finally:
        engine.close()


def test_a_moved_folder_added_as_new_is_merged_when_moved(engine, photos, tmp_path):
    engine.folders.add(photos)
    engine.updates.index()
    moved = tmp_path / "moved"
    shutil.copytree(photos, moved)
    shutil.rmtree(photos)
    assert engine.folders.moved_here(moved).old == str(photos)
    assert engine.folders.moved_here(tmp_path / "moved" / "..") is None  # holds it, not it
    engine.folders.add(moved)
    # `mmrag index NEW` indexes only NEW: the old rows are not checked, each photo is twice
    assert engine.updates.index([str(moved)]).embedded == 0  # copies of embedded contents
    assert engine.store.counts() == {"ok": 80}
    found = engine.search.run([Term(text="a photo")], k=80)
    assert len(found) == 80 and sum(bool(r.meta.get("missing")) for r in found) == 40
    assert all(bool(r.meta.get("missing")) != os.path.exists(r.path) for r in found)

    [move] = engine.folders.moves()
    assert (move.old, move.new, move.found) == (str(photos), str(moved), move.checked)
    assert engine.folders.move(photos, moved) == 40
    assert engine.config.roots == [str(moved)]
    paths = row_paths(engine)
    assert len(paths) == len(set(paths)) == 40 and all(p.startswith(str(moved)) for p in paths)
    assert engine.vector_index().count() == 40
    assert engine.updates.index().embedded == 0 and engine.folders.moves() == []


def test_a_folder_still_there_is_not_moved(engine, photos, tmp_path):
    engine.folders.add(photos)
    engine.updates.index()
    copy = tmp_path / "copy"
    shutil.copytree(photos, copy)
    assert engine.folders.moved_here(copy) is None  # a copy: the original is still there
    with pytest.raises(FolderError, match="still there"):
        engine.folders.move(photos, copy)


def test_a_result_whose_file_vanished_is_marked(engine, photos, capsys):
    engine.folders.add(photos)
    engine.updates.index()
    results = engine.search.run([Term(text="a photo")], k=40)
    gone = results[0].path
    os.unlink(gone)  # no index run since
    again = {r.path: r for r in engine.search.run([Term(text="a photo")], k=40)}
    assert again[gone].meta["missing"] is True
    assert sum("missing" in r.meta for r in again.values()) == 1


def test_removing_a_folder_says_as_many_photos_as_the_list_showed(engine, photos):
    (photos / "broken.jpg").write_bytes(b"not a photo at all")
    engine.folders.add(photos)
    engine.updates.index()
    [state] = engine.folders.states()
    assert state.photos == 40 and state.errors == 1
    assert engine.folders.remove(photos) == 40  # not 41: the unreadable file was no photo
    assert engine.store.counts() == {}
