"""Privacy and durability of the library files, schema versions, clear failures, and inputs
that used to cost a photo or a run: 16-bit scans, decoder crashes, huge files."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag_desktop.media import photos as imaging
from mmrag_desktop.store import database as store_module
from mmrag_desktop.cli import main
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from mmrag_desktop.store.database import Store
from mmrag_desktop.store.schema import SCHEMA_VERSION, LibraryVersionError
from mmrag_desktop.store.vectors import vector_checksum
from conftest import Repairs, coco_photos


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_an_existing_open_library_folder_is_made_private(home, config, photos):
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "config.toml").write_text("")
    os.chmod(home / "config.toml", 0o644)
    engine = Library(home=None, config=config)  # home_dir() finds $MMRAG_HOME existing
    engine.updates.index([str(photos)])
    engine.vector_index().save(engine.store)
    assert mode(home) == 0o700
    files = [p for p in home.rglob("*") if p.is_file()]
    assert {"library.db", "library.db-wal", "config.toml"} <= {p.name for p in files}
    assert any(p.suffix == ".hnsw" for p in files)
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert {mode(p) for p in home.rglob("*") if p.is_dir()} == {0o700}


def _v1_library(path: Path, raw_name: str) -> None:
    """A library.db as version 1 wrote it: undecodable names as base64 behind a marker."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT NOT NULL, root TEXT NOT NULL,
            size INTEGER, mtime_ns INTEGER, hash TEXT, width INTEGER, height INTEGER,
            taken_at TEXT, camera_make TEXT, camera_model TEXT, gps_lat FLOAT, gps_lon FLOAT,
            status TEXT NOT NULL, error TEXT, vector BLOB, seq INTEGER, indexed_at FLOAT);
        CREATE TABLE tombstones (id INTEGER PRIMARY KEY, seq INTEGER);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE UNIQUE INDEX idx_photos_path ON photos(path);
        INSERT INTO meta VALUES ('seq', '3'), ('schema', '1');
    """)
    encoded = "\x00raw:" + base64.b64encode(os.fsencode(raw_name)).decode()
    vectors = [np.arange(4, dtype=np.float32) + i for i in range(2)]
    for i, (p, v) in enumerate([(encoded, vectors[0]), ("/photos/plain.jpg", vectors[1])], 1):
        conn.execute("INSERT INTO photos(id, path, root, status, vector, seq, hash) "
                     "VALUES (?, ?, '/photos', 'ok', ?, 3, ?)", [i, p, v.tobytes(), f"h{i}"])
    conn.commit()
    conn.close()


def test_an_older_library_is_migrated_and_a_newer_one_refused(tmp_path, home, capsys):
    raw = os.fsdecode(b"/photos/caf\xe9.jpg")
    _v1_library(tmp_path / "library.db", raw)
    store = Store(tmp_path / "library.db")
    assert store.get_meta("schema") == str(SCHEMA_VERSION)
    paths = {d["path"] for d in store.details([1, 2]).values()}
    assert paths == {raw, "/photos/plain.jpg"}
    ids, vectors = next(store.vectors())
    assert store.checksum() == vector_checksum(ids, vectors)
    assert store.rows_in_folder("/photos").keys() == paths  # each row knows its folder
    store.close()

    home.mkdir(parents=True)
    with sqlite3.connect(home / "library.db") as conn:
        conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                           "INSERT INTO meta VALUES ('schema', '99');")
    with pytest.raises(LibraryVersionError, match="newer version"):
        Store(home / "library.db")
    assert main(["status"]) == 2
    assert "library format 99" in capsys.readouterr().err


def test_a_full_disk_gets_its_own_message_and_loses_nothing(engine, photos, monkeypatch, capsys):
    engine.folders.add(photos)
    engine.updates.index()
    before = engine.store.vector_count()
    for photo in coco_photos()[100:140]:
        shutil.copy2(photo, photos / photo.name)
    real_connect = Store._connect

    def full_disk(self):
        conn = real_connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own SQLITE_FULL
        return conn

    monkeypatch.setattr(Store, "_connect", full_disk)
    assert main(["index"]) == 2
    err = capsys.readouterr().err
    assert "disk holding the library is full" in err and "unreadable" not in err
    monkeypatch.undo()
    again = Library(home=engine.home)
    committed = again.store.vector_count()  # the batches before the disk filled up
    assert committed >= before
    assert again.updates.index().embedded == 80 - committed
    assert again.store.vector_count() == again.vector_index().count() == 80


def test_a_locked_database_is_named_as_such():
    error = sqlite3.OperationalError("database is locked")
    assert "locked by another program" in store_module.describe_db_error(error)
    constraint = sqlite3.IntegrityError("UNIQUE constraint failed: photos.path")
    assert "constraint failed" in store_module.describe_db_error(constraint)


def test_a_failed_save_keeps_the_good_index(engine, photos, monkeypatch):
    engine.updates.index([str(photos)])
    vectors = engine.vector_index()
    good, sidecar = vectors.data_file, vectors.sidecar.read_text()
    for photo in coco_photos()[100:103]:
        shutil.copy2(photo, photos / photo.name)
    real_replace = os.replace

    def disk_full(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full)
    engine.updates.index([str(photos)])  # the run commits; only the cache save fails
    monkeypatch.undo()
    assert good.exists() and vectors.sidecar.read_text() == sidecar
    assert not [p for p in good.parent.iterdir() if p.name.endswith(".tmp")]
    engine.close()
    reopened = Library(home=engine.home, on_notice=(repairs := Repairs()))
    reopened.vector_index()
    assert repairs == [] and reopened.vector_index().count() == 43


def _png16_rgb(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16_bit_scans_are_decoded(engine, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    source = coco_photos()[4]
    with Image.open(source) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint16) * 257
        grey = np.asarray(img.convert("L"), dtype=np.uint16) * 257
    size = (grey.shape[1], grey.shape[0])
    little = Image.frombytes("I;16", size, grey.astype("<u2").tobytes())
    little.save(folder / "grey16.png")
    little.save(folder / "grey16.tif")
    Image.frombytes("I;16B", size, grey.astype(">u2").tobytes()).save(folder / "grey16b.tif")
    _png16_rgb(folder / "rgb16.png", rgb)
    report = engine.updates.index([str(folder)])
    assert report.errors == [] and report.embedded == 4
    colour = engine.search.run([Term(photo=str(source))], k=4)
    assert colour[0].path == str(folder / "rgb16.png") and colour[0].score > 0.99
    with Image.open(source) as img:
        img.convert("L").convert("RGB").save(tmp_path / "grey.png")
    greys = {r.path: r.score for r in engine.search.run([Term(photo=str(tmp_path / "grey.png"))], k=4)}
    for name in ("grey16.png", "grey16.tif", "grey16b.tif"):
        assert greys[str(folder / name)] > 0.99, name


def test_a_crashing_decoder_costs_one_photo_not_the_run(engine, photos, monkeypatch):
    victim = photos / "victim.png"
    Image.new("RGB", (123, 77), "red").save(victim)  # the one photo of this size
    real_transpose = imaging.ImageOps.exif_transpose

    def transpose(img, *args, **kwargs):
        if img.size == (123, 77):
            raise ZeroDivisionError("a plugin bug")
        return real_transpose(img, *args, **kwargs)

    monkeypatch.setattr(imaging.ImageOps, "exif_transpose", transpose)
    report = engine.updates.index([str(photos)])
    assert report.embedded == 40
    assert report.errors == [(str(victim), "the decoder failed (ZeroDivisionError: a plugin bug)")]


def test_photos_are_hashed_without_reading_them_whole(engine, photos, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a whole file was read into memory")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert engine.updates.index([str(photos)]).embedded == 40
    big = photos / "big.bin.jpg"
    with big.open("wb") as f:
        f.truncate(64 << 20)  # 64 MB of zeros, not an image
    report = engine.updates.index([str(photos)])
    assert report.errors[0][0] == str(big)


def test_one_offline_photo_keeps_searches_on_the_fast_path(engine, photos, monkeypatch):
    engine.updates.index([str(photos)])
    victim = engine.search.run([Term(text="a dog")], k=1)[0]
    with engine.store.transaction():
        engine.store.db.execute("UPDATE photos SET status = 'offline' WHERE id = ?", [victim.id])

    def slow_path(*args, **kwargs):
        raise AssertionError("the filtered path was taken")

    monkeypatch.setattr(engine.store, "ids_matching", slow_path)
    results = engine.search.run([Term(text="a dog")], k=10)
    assert len(results) == 10 and victim.id not in {r.id for r in results}


def test_saving_the_index_does_not_hold_up_searches(engine, photos, monkeypatch):
    engine.updates.index([str(photos)])
    vectors = engine.vector_index()
    searched = threading.Event()
    real_index = vectors._index

    class SlowSave:
        """The hnswlib index, whose save waits until a search has answered (up to 20 s)."""

        def __getattr__(self, name):
            return getattr(real_index, name)

        def save_index(self, path):
            searched.wait(20)
            real_index.save_index(path)

    monkeypatch.setattr(vectors, "_index", SlowSave())
    saver = threading.Thread(target=vectors.save)
    saver.start()
    engine.search.run([Term(text="a dog")], k=5)
    done_while_saving = saver.is_alive()
    searched.set()
    saver.join()
    assert done_while_saving


def test_a_batch_is_committed_whole_or_not_at_all(engine, photos, monkeypatch):
    engine.updates.index([str(photos)])
    store = engine.store
    before = (store.seq(), store.checksum(), store.counts(), store.vector_count())
    extra = [(None, {"path": str(photos / f"new{i}.jpg"), "root": str(photos), "size": 1,
                     "mtime_ns": 1, "hash": f"{i:032x}"}, np.ones(64, np.float32) / 8)
             for i in range(3)]
    real_put = Store._put
    calls = []

    def dies_on_the_second_row(self, row_id, fields):
        calls.append(row_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stopped mid-batch
        return real_put(self, row_id, fields)

    monkeypatch.setattr(Store, "_put", dies_on_the_second_row)
    with pytest.raises(KeyboardInterrupt):
        store.write_batch(extra, [], [])
    monkeypatch.undo()
    fresh = Store(store.path)  # what another process, or the next start, sees
    assert (fresh.seq(), fresh.checksum(), fresh.counts(), fresh.vector_count()) == before


def test_damaged_caches_are_rebuilt_from_the_library_not_reported_as_a_damaged_library(
        engine, photos, tmp_path, capsys):
    """A damaged keywords.db made every default search exit 2 with "the library database
    is damaged" (a message that could lead a user to delete the real library), and a
    truncated ``.npz`` cache (keyframes, map) ended every search in a BadZipFile traceback.
    Caches are rebuilt from library.db, with a notice."""
    from conftest import encode_video

    from mmrag_desktop.cli import main

    encode_video(photos / "clip.mp4", coco_photos()[50:52])
    engine.folders.add(photos)
    engine.updates.index()
    example = sorted(photos.glob("*.jpg"))[3]
    assert engine.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
    assert engine.search.run([Term("clip")], k=1, mode="keyword")  # keywords.db made
    caches = list(engine.path.rglob("*.npz"))
    assert caches  # the keyframes' cache at least
    engine.close()
    (engine.path / "keywords.db").write_bytes(b"this is not a database" * 100)
    for cache in caches:
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])

    reopened = Library(home=engine.home, on_notice=(repairs := Repairs()))
    try:
        hits = reopened.search.run([Term("clip")], k=1, mode="hybrid")
        assert hits and hits[0].path.endswith("clip.mp4")
        assert any("keyword index" in r and "rebuilt" in r for r in repairs)
        assert reopened.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
    finally:
        reopened.close()
    for cache in caches:
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    (engine.path / "keywords.db").write_bytes(b"\x00" * 4096)
    assert main(["--home", str(engine.home), "search", "clip", "-k", "1"]) == 0
    assert "clip.mp4" in capsys.readouterr().out
