"""Indexing on real photos: fidelity, near-duplicates, incremental runs, interruption."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np
import open_clip
import torch
from PIL import Image

from mmrag_desktop.domain.query import Term
from conftest import COCO, Repairs, coco_photos, cli_env


def stored_vectors(engine) -> dict[str, np.ndarray]:
    out = {}
    for ids, vectors in engine.store.vectors():
        details = engine.store.details([int(i) for i in ids])
        for i, v in zip(ids, vectors):
            out[details[int(i)]["path"]] = v
    return out


def test_embeddings_match_open_clip_reference(engine):
    """Each stored embedding equals open_clip's own preprocess + encode_image (cos ≥ 0.999)."""
    photos = coco_photos()
    report = engine.updates.index([str(COCO / "images")])
    assert report.embedded == len(photos) and not report.errors
    model, _, preprocess = open_clip.create_model_and_transforms(
        engine.config.model, pretrained=engine.config.weights)
    model.eval()
    stored = stored_vectors(engine)
    assert len(stored) == len(photos)
    worst = 1.0
    with torch.no_grad():
        for start in range(0, len(photos), 32):
            chunk = photos[start:start + 32]
            batch = torch.stack([preprocess(Image.open(p)) for p in chunk])
            ref = model.encode_image(batch)
            ref = (ref / ref.norm(dim=-1, keepdim=True)).numpy()
            for path, r in zip(chunk, ref):
                worst = min(worst, float(stored[str(path)] @ r))
    assert worst >= 0.999, worst
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in stored.values())


def test_half_size_recompressed_copy_finds_its_original_first(engine, tmp_path):
    photos = coco_photos()
    engine.updates.index([str(COCO / "images")])
    query = tmp_path / "query.jpg"
    misses = []
    for photo in photos:
        with Image.open(photo) as img:
            img.convert("RGB").resize((img.width // 2, img.height // 2)).save(query, quality=80)
        results = engine.search.run([Term(photo=str(query))], k=1)
        if results[0].path != str(photo):
            misses.append(photo.name)
    assert misses == []


def test_incremental_add_move_delete_unchanged(engine, photos, tmp_path):
    first = engine.updates.index([str(photos)])
    assert (first.embedded, first.found) == (40, 40)
    assert engine.updates.index([str(photos)]).embedded == 0  # unchanged tree

    extra = coco_photos()[40]
    shutil.copy2(extra, photos / extra.name)
    added = engine.updates.index([str(photos)])
    assert (added.embedded, added.unchanged) == (1, 40)

    (photos / "sub").mkdir()
    moved_to = photos / "sub" / "renamed ✓.jpg"
    os.rename(photos / extra.name, moved_to)
    moved = engine.updates.index([str(photos)])
    assert (moved.embedded, moved.moved, moved.deleted) == (0, 1, 0)
    hit = engine.search.run([Term(photo=str(moved_to))], k=1)[0]
    assert hit.path == str(moved_to) and hit.score > 0.999

    os.utime(moved_to, (time.time() + 5, time.time() + 5))  # touched, same bytes
    touched = engine.updates.index([str(photos)])
    assert (touched.embedded, touched.touched) == (0, 1)

    copy = photos / "copy.jpg"
    shutil.copy2(moved_to, copy)
    copied = engine.updates.index([str(photos)])
    assert (copied.embedded, copied.copied) == (0, 1)

    outside = tmp_path / "kept.jpg"
    shutil.copy2(moved_to, outside)
    moved_to.unlink()
    copy.unlink()
    deleted = engine.updates.index([str(photos)])
    assert (deleted.embedded, deleted.deleted) == (0, 2)
    paths = [r.path for r in engine.search.run([Term(photo=str(outside))], k=50)]
    assert str(moved_to) not in paths and str(copy) not in paths
    assert engine.store.counts() == {"ok": 40} and engine.vector_index().count() == 40


def test_changed_content_is_re_embedded_in_place(engine, photos):
    engine.updates.index([str(photos)])
    target = sorted(photos.iterdir())[0]
    before = engine.search.run([Term(photo=str(target))], k=1)[0]
    with Image.open(target) as img:
        img.rotate(90, expand=True).save(target, quality=90)
    report = engine.updates.index([str(photos)])
    assert report.embedded == 1
    after = engine.search.run([Term(photo=str(target))], k=1)[0]
    assert after.id == before.id and after.path == str(target) and after.score > 0.999
    assert engine.vector_index().count() == engine.store.vector_count() == 40


def test_swapped_file_contents_reuse_embeddings(engine, photos):
    engine.updates.index([str(photos)])
    a, b = sorted(photos.iterdir())[:2]
    tmp = photos / "swap.tmp"
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    os.utime(a)  # make sure sizes/mtimes do not hide the swap
    os.utime(b)
    report = engine.updates.index([str(photos)])
    assert report.embedded == 0
    for path in (a, b):
        assert engine.search.run([Term(photo=str(path))], k=1)[0].path == str(path)


def test_missing_root_goes_offline_and_returns_without_re_embedding(engine, photos, tmp_path):
    engine.folders.add(photos)
    engine.updates.index()
    unplugged = tmp_path / "unplugged"
    os.rename(photos, unplugged)
    report = engine.updates.index()
    assert report.offline_roots == [str(photos)] and report.deleted == 0
    assert engine.store.counts() == {"offline": 40}
    shutil.copy2(next(unplugged.iterdir()), tmp_path / "query.jpg")
    query = Term(photo=str(tmp_path / "query.jpg"))
    assert engine.search.run([query], k=5) == []
    os.rename(unplugged, photos)
    back = engine.updates.index()
    assert (back.embedded, back.unchanged) == (0, 40)
    assert len(engine.search.run([query], k=5)) == 5


def _interrupt_cli_index(home, photos, sig) -> tuple[subprocess.Popen, int]:
    """Start `mmrag index` in a child process and send it *sig* once a few batches are
    committed. Returns the finished process and the rows it had committed by then."""
    # SIGINT as a terminal delivers it: a test run started in the background (`cmd &` in a
    # script, as CI runners may) ignores SIGINT, and a child inherits that.
    errors = tempfile.TemporaryFile("w+")  # read afterwards: a pipe could fill and block
    proc = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "index", str(photos)],
                            env=cli_env(home), stdout=subprocess.PIPE, stderr=errors, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    committed = 0
    deadline = time.monotonic() + 120
    while committed < 24 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
        try:
            with sqlite3.connect(home / "library.db", timeout=1) as conn:
                committed = conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
        except sqlite3.OperationalError:
            pass  # the child is still creating the database
    proc.send_signal(sig)
    proc.wait(timeout=60)
    errors.seek(0)
    proc.error_text = errors.read()[-2000:]  # for an assertion's message
    return proc, committed


def test_ctrl_c_stops_cleanly_and_the_next_run_continues(engine, photos):
    engine.on_notice = repairs = Repairs()
    for photo in coco_photos()[40:160]:
        shutil.copy2(photo, photos / photo.name)
    proc, committed = _interrupt_cli_index(engine.home, photos, signal.SIGINT)
    out = proc.stdout.read()
    assert proc.returncode == 130 and 0 < committed < 160, (proc.returncode, committed, out,
                                                            proc.error_text)
    assert "interrupted" in out
    engine.vector_index()  # the HNSW file was saved on the way out: nothing to repair
    done = engine.store.vector_count()
    assert repairs == [] and engine.vector_index().count() == done >= committed
    rest = engine.updates.index([str(photos)])
    assert (rest.embedded, rest.unchanged) == (160 - done, done)
    assert engine.store.vector_count() == engine.vector_index().count() == 160


def test_killed_run_resumes_without_duplicates(engine, photos):
    """SIGKILL an indexing process mid-run, then rerun: every photo present exactly once."""
    for photo in coco_photos()[40:160]:
        shutil.copy2(photo, photos / photo.name)
    total = len(list(photos.iterdir()))
    proc, committed = _interrupt_cli_index(engine.home, photos, signal.SIGKILL)
    assert 0 < committed < total, "the run was not caught mid-way"

    resumed = engine.updates.index([str(photos)])
    assert resumed.embedded + resumed.unchanged == total and resumed.embedded < total
    rows = engine.store.db.execute("SELECT path, COUNT(*) FROM photos GROUP BY path").fetchall()
    assert len(rows) == total and all(n == 1 for _, n in rows)
    assert engine.vector_index().count() == engine.store.vector_count() == total
    for photo in sorted(photos.iterdir())[::20]:
        assert engine.search.run([Term(photo=str(photo))], k=1)[0].path == str(photo)


def test_exif_orientation_and_metadata(engine, tmp_path):
    folder = tmp_path / "exif"
    folder.mkdir()
    source = coco_photos()[0]
    with Image.open(source) as img:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90° clockwise on display
        exif[271], exif[272] = "Canon", "EOS 5D"
        exif.get_ifd(0x8769)[36867] = "2021:07:14 18:30:05"
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 36.0), "E", (151.0, 12.0, 36.0)
        img.save(folder / "rotated.jpg", exif=exif, quality=92)
        width, height = img.size
    engine.updates.index([str(folder)])
    row = next(iter(engine.store.details([1]).values()))
    assert (row["width"], row["height"]) == (height, width)
    assert row["taken_at"] == "2021-07-14T18:30:05"
    assert (row["camera_make"], row["camera_model"]) == ("Canon", "EOS 5D")
    assert abs(row["gps_lat"] + 33.86) < 1e-6 and abs(row["gps_lon"] - 151.21) < 1e-6
    # The stored embedding is of the upright photo: the rotated original matches it.
    upright = tmp_path / "upright.jpg"
    with Image.open(source) as img:
        img.transpose(Image.Transpose.ROTATE_270).save(upright, quality=92)
    assert engine.search.run([Term(photo=str(upright))], k=1)[0].score > 0.99


def test_recompressed_large_photo_decodes_in_draft_mode_faithfully(engine, tmp_path):
    """A 12 MP JPEG decoded in draft mode embeds like the full decode (cos ≥ 0.99)."""
    folder = tmp_path / "big"
    folder.mkdir()
    with Image.open(coco_photos()[3]) as img:
        big = img.convert("RGB").resize((4000, 3000), Image.BICUBIC)
    big.save(folder / "big.jpg", quality=90)
    engine.updates.index([str(folder)])
    full = engine.embedder.encode_images(engine.embedder.to_pixels(big)[None])[0]
    stored = next(iter(stored_vectors(engine).values()))
    assert float(full @ stored) >= 0.99


def test_a_file_moved_just_now_keeps_its_embedding(engine, photos):
    """A rename updates the file's change time, so a run may defer the moved file as 'still
    being written'; its old row must wait for it, not be deleted (a kill before the next run
    would lose the embedding, and the next run would re-embed a move)."""
    engine.updates.index([str(photos)])
    time.sleep(2.5)  # the fixture's copies are no longer 'just written'
    (photos / "album").mkdir()
    moved = photos / "album" / "moved.jpg"
    os.rename(sorted(photos.glob("*.jpg"))[0], moved)
    early = engine.updates.index([str(photos)], stable_after=2.0)
    assert (early.deferred, early.deleted) == (1, 0)
    assert engine.store.vector_count() == 40
    later = engine.updates.index([str(photos)])
    assert (later.moved, later.embedded, later.deleted) == (1, 0, 0)
    assert engine.search.run([Term(photo=str(moved))], k=1)[0].path == str(moved)


def _edit_keeping_size_and_mtime(photos):
    """Put another picture into the first photo of *photos* in the same number of bytes (a
    JPEG decoder ignores what follows its end marker), with the old modification time put
    back, as ``touch -r`` or ``exiftool -P`` would; (the photo, the picture it now holds)."""
    import os

    target = sorted(photos.iterdir())[0]
    other = min((p for p in coco_photos()[60:] if p.stat().st_size < target.stat().st_size),
                key=lambda p: p.stat().st_size)
    st = target.stat()
    target.write_bytes(other.read_bytes().ljust(st.st_size, b"\0"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    return target, other


def test_an_edit_that_keeps_size_and_mtime_is_still_read_again(engine, photos, tmp_path):
    """Editors that keep the modification time (``touch -r``, ``exiftool -P``) left a stale
    embedding for ever when the size stayed too; the inode's change time cannot be kept."""

    engine.folders.add(photos)
    assert engine.updates.index().embedded == 40
    target, other = _edit_keeping_size_and_mtime(photos)
    report = engine.updates.index()
    assert report.embedded == 1 and report.unchanged == 39
    assert engine.search.run([Term(photo=str(other))], k=1)[0].path == str(target)

    # rows from before the change time was kept: trusted once, then remembered
    with engine.store.transaction():
        engine.store.db.execute("UPDATE photos SET changed_ns = NULL")
    assert engine.updates.index().unchanged == 40
    assert engine.store.db.execute(
        "SELECT COUNT(*) FROM photos WHERE changed_ns IS NULL").fetchone()[0] == 0


def test_where_ctime_is_the_creation_time_a_sample_of_the_bytes_finds_the_edit(
        engine, photos, monkeypatch):
    """On Windows ``st_ctime`` is the creation time, which an edit in place keeps: with size
    and mtime kept too, only the sample digest of the bytes can tell the photo changed."""

    from mmrag_desktop.library import scanner

    monkeypatch.setattr(scanner, "CTIME_IS_CHANGE_TIME", False)
    engine.folders.add(photos)
    assert engine.updates.index().embedded == 40
    assert engine.store.db.execute(
        "SELECT COUNT(*) FROM photos WHERE sample IS NULL").fetchone()[0] == 0
    target, other = _edit_keeping_size_and_mtime(photos)
    with engine.store.transaction():  # as on Windows: the "change" time is the creation time
        engine.store.db.execute("UPDATE photos SET changed_ns = ? WHERE path = ?",
                                [target.stat().st_ctime_ns, str(target)])
    report = engine.updates.index()
    assert report.embedded == 1 and report.unchanged == 39
    assert engine.search.run([Term(photo=str(other))], k=1)[0].path == str(target)

    # rows from before the sample was kept: trusted once, then remembered
    with engine.store.transaction():
        engine.store.db.execute("UPDATE photos SET sample = NULL")
    assert engine.updates.index().unchanged == 40
    assert engine.store.db.execute(
        "SELECT COUNT(*) FROM photos WHERE sample IS NULL").fetchone()[0] == 0
