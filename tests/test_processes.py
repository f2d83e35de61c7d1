"""Several processes on one library: one writer at a time, readers that notice what others
changed, caches that never claim changes they do not hold, settings that merge."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from mmrag_desktop.core.config import ConfigError, load_config, save_config
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from mmrag_desktop.store.writer_lock import LibraryBusyError
from conftest import Repairs, cli_env, coco_photos


def cli(home, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmrag_desktop", *args], env=cli_env(home),
                          capture_output=True, text=True, timeout=timeout)


def test_a_second_writer_waits_and_says_for_whom(engine, photos, home):
    engine.folders.add(photos)
    lines: queue.Queue[str] = queue.Queue()
    with engine.lock.hold("indexing"):
        child = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "index"],
                                 env=cli_env(home), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        threading.Thread(target=lambda: [lines.put(line) for line in child.stderr],
                         daemon=True).start()
        first = lines.get(timeout=180)
        assert f"waiting for indexing (process {os.getpid()}" in first
        assert child.poll() is None and engine.store.vector_count() == 0
        with pytest.raises(LibraryBusyError, match=f"process {os.getpid()}"):
            with Library(home=home).lock.hold("another", wait=0.3):
                pass
    child.wait(timeout=300)
    assert child.returncode == 0
    assert engine.store.vector_count() == 40


def test_a_reader_sees_what_another_process_changed(engine, photos, home):
    engine.folders.add(photos)
    engine.updates.index()
    reader = Library(home=home, read_only=True)  # the GUI, open all day
    reader.search.run([Term(text="a dog")], k=5)

    added = coco_photos()[70]
    shutil.copy2(added, photos / "added.jpg")
    replaced = sorted(photos.glob("*.jpg"))[0]
    with Image.open(replaced) as img:
        img.rotate(180).save(replaced, quality=90)
    removed = sorted(photos.glob("*.jpg"))[1]
    removed.unlink()
    run = cli(home, "index")
    assert run.returncode == 0, run.stderr

    assert reader.search.run([Term(photo=str(photos / "added.jpg"))], k=1)[0].path == \
        str(photos / "added.jpg")
    hit = reader.search.run([Term(photo=str(replaced))], k=1)[0]
    assert hit.path == str(replaced) and hit.score > 0.999  # the new vector, not the old
    paths = {r.path for r in reader.search.run([Term(text="a photo")], k=100)}
    assert str(removed) not in paths and len(paths) == 40
    assert reader.vector_index().ids() == {r[0] for r in reader.store.db.execute(
        "SELECT id FROM photos WHERE vector IS NOT NULL")}


def test_a_stale_process_never_saves_changes_it_did_not_apply(engine, photos, home):
    engine.folders.add(photos)
    engine.updates.index()
    stale = Library(home=home)
    stale.vector_index()  # loaded now; another process changes the library next
    for photo in coco_photos()[80:85]:
        shutil.copy2(photo, photos / photo.name)
    assert cli(home, "index").returncode == 0
    stale.vector_index().save(stale.store)  # e.g. on its way out

    fresh = Library(home=home, read_only=True, on_notice=(repairs := Repairs()))
    fresh.vector_index()
    assert repairs == []  # caught up from its real seq, nothing to rebuild
    assert fresh.vector_index().count() == 45
    assert fresh.search.run([Term(photo=str(coco_photos()[82]))], k=1)[0].score > 0.999


def test_the_cache_check_compares_vectors_not_counts(engine, photos, home):
    engine.folders.add(photos)
    engine.updates.index()
    vectors = engine.vector_index()
    row_id = sorted(vectors.ids())[0]
    wrong = np.roll(next(engine.store.vectors(ids=[row_id]))[1][0], 1)
    vectors.add(np.array([row_id]), wrong[None, :])  # same ids and count, one vector differs
    vectors.save()
    engine.close()

    reopened = Library(home=home, on_notice=(repairs := Repairs()))
    reopened.vector_index()
    assert any("checksum" in r for r in repairs)
    stored = next(reopened.store.vectors(ids=[row_id]))[1][0]
    photo = reopened.store.details([row_id])[row_id]["path"]
    hit = reopened.search.run([Term(photo=photo)], k=1)[0]
    assert hit.id == row_id and hit.score > 0.999 and not np.allclose(stored, wrong)


def test_settings_from_another_process_are_merged_not_undone(engine, photos, tmp_path):
    home = engine.home
    app = load_config(home)  # what the open app holds in memory
    assert cli(home, "config", "batch_size", "7").returncode == 0
    assert cli(home, "folders", "add", str(photos)).returncode == 0
    app.thumbnail_size = 192
    save_config(home, app)
    on_disk = load_config(home)
    assert (on_disk.batch_size, on_disk.thumbnail_size) == (7, 192)
    assert on_disk.roots == [str(photos)]
    assert (app.batch_size, app.roots) == (7, [str(photos)])  # the app learns them too
    assert (home / "config.toml").stat().st_mode & 0o777 == 0o600
    assert not list(home.glob("config.*.tmp"))

    removed = load_config(home)
    removed.roots.remove(str(photos))
    other = tmp_path / "other"
    other.mkdir()
    assert cli(home, "folders", "add", str(other)).returncode == 0
    save_config(home, removed)
    assert load_config(home).roots == [str(other)]


def test_a_hand_edited_setting_of_the_wrong_type_is_named(home, capsys):
    from mmrag_desktop.cli import main

    home.mkdir(parents=True)
    (home / "config.toml").write_text('batch_size = "big"\n')
    with pytest.raises(ConfigError, match="'batch_size' must be a whole number"):
        load_config(home)
    assert main(["status"]) == 2
    assert "batch_size" in capsys.readouterr().err
    (home / "config.toml").write_text('roots = ["/a", 3]\n')
    with pytest.raises(ConfigError, match="'roots' must be a list of texts"):
        load_config(home)


def test_the_ocr_helper_ends_with_its_parent_however_it_ends(home, config, photos):
    """``kill -9`` of ``mmrag understand`` left its OCR worker (~320 MB) running for good:
    every helper now ends with the process that started it."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import cli_env, render_receipt
    from mmrag_desktop.core.config import save_config

    for i in range(6):
        render_receipt(photos / f"receipt{i}.jpg")
    home.mkdir(parents=True)
    config.roots, config.understand = [str(photos)], ["text"]
    save_config(home, config)
    run = [sys.executable, "-m", "mmrag_desktop"]
    subprocess.run(run + ["index", "--no-understand"], env=cli_env(home), check=True,
                   capture_output=True)
    parent = subprocess.Popen(run + ["understand"], env=cli_env(home),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    worker = None
    for _ in range(600):  # until the OCR worker is there (spawned on the first photo)
        found = [p for p in children()
                 if "spawn_main" in open(f"/proc/{p}/cmdline").read().replace("\0", " ")]
        if found:
            worker = found[0]
            break
        assert parent.poll() is None, "understand ended before its worker started"
        time.sleep(0.1)
    assert worker is not None
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(600):  # the worker notices at once; a busy machine may take a while
        try:
            state = open(f"/proc/{worker}/stat").read().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":  # ended, not yet reaped by init
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        raise AssertionError("the OCR worker outlived its parent")
