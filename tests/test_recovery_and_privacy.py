"""The HNSW file is a rebuildable cache; the app opens no network connection."""

from __future__ import annotations

import os
import shutil
import time
import zlib

import pytest

from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from mmrag_desktop.library.watcher import Watcher
from conftest import COCO, Repairs, coco_photos

QUERIES = ["a dog", "people at the beach", "a plate of food", "a train"]


def _results(engine: Library) -> list[list[tuple[str, float]]]:
    out = [[(r.path, round(r.score, 5)) for r in engine.search.run([Term(text=q)], k=10)]
           for q in QUERIES]
    out += [[(r.path, round(r.score, 5)) for r in engine.search.run([Term(photo=str(p))], k=10)]
            for p in coco_photos()[:5]]
    return out


def _damage(vectors, how: str) -> None:
    path = vectors.data_file
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)
    elif how == "random bytes":
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 3)
            f.write(os.urandom(4096))
    elif how == "sidecar deleted":
        vectors.sidecar.unlink()


@pytest.mark.parametrize("how", ["deleted", "truncated", "random bytes", "sidecar deleted"])
def test_damaged_hnsw_file_is_rebuilt_with_identical_results(home, config, how):
    engine = Library(home=home, config=config)
    engine.updates.index([str(COCO / "images")])
    before = _results(engine)
    vectors = engine.vector_index()
    engine.close()
    _damage(vectors, how)

    reopened = Library(home=home, config=config, on_notice=(repairs := Repairs()))
    assert reopened.vector_index().count() == len(coco_photos())
    assert len(repairs) == 1 and "rebuilt" in repairs[0]
    assert _results(reopened) == before
    assert reopened.vector_index().data_file.exists()
    again = Library(home=home, config=config, on_notice=(again_repairs := Repairs()))
    again.vector_index()  # the rebuilt file is sound: no second repair
    assert again_repairs == []


@pytest.mark.parametrize("digest", ["crc32", "hash"])
def test_an_index_saved_with_an_older_checksum_opens_without_a_rebuild(home, config, photos,
                                                                        digest):
    """Sidecars written before the XXH3 checksum named a CRC-32, and before that a BLAKE2b
    hash: a library from then opens as it is (a million photos' rebuild takes half an
    hour), and damage is still found."""
    import hashlib
    import json

    import xxhash

    engine = Library(home=home, config=config)
    engine.updates.index([str(photos)])
    vectors = engine.vector_index()
    engine.close()
    info = json.loads(vectors.sidecar.read_text())
    data = vectors.data_file.read_bytes()
    assert info["xxh3"] == xxhash.xxh3_128_hexdigest(data)
    del info["xxh3"]
    info[digest] = zlib.crc32(data) if digest == "crc32" else \
        hashlib.blake2b(data, digest_size=16).hexdigest()
    vectors.sidecar.write_text(json.dumps(info))
    reopened = Library(home=home, config=config, on_notice=(repairs := Repairs()))
    assert reopened.vector_index().count() == 40 and repairs == []
    reopened.close()
    _damage(vectors, "random bytes")
    damaged = Library(home=home, config=config, on_notice=(repairs := Repairs()))
    assert damaged.vector_index().count() == 40 and "checksum mismatch" in repairs[0]


def test_stale_hnsw_file_catches_up_from_the_database(home, config, photos, monkeypatch):
    """Changes committed after the HNSW file was saved (a crash) are replayed on open."""
    engine = Library(home=home, config=config)
    engine.updates.index([str(photos)])
    victims = sorted(photos.iterdir())[:3]
    for v in victims:
        v.unlink()
    new = coco_photos()[50]
    (photos / new.name).write_bytes(new.read_bytes())
    # The process dies after committing to SQLite, before the HNSW file is saved.
    monkeypatch.setattr(engine.vector_index(), "save", lambda *args, **kwargs: None)
    report = engine.updates.index([str(photos)])
    assert (report.deleted, report.embedded) == (3, 1)
    engine.close()

    reopened = Library(home=home, config=config, on_notice=(repairs := Repairs()))
    assert reopened.vector_index().count() == 38 and repairs == []
    paths = {r.path for r in reopened.search.run([Term(text="a photo")], k=40)}
    assert len(paths) == 38 and not paths & {str(v) for v in victims}
    assert reopened.search.run([Term(photo=str(new))], k=1)[0].path == str(photos / new.name)


def test_no_socket_is_opened_during_index_search_and_watch(home, config, photos, no_network):
    engine = Library(home=home, config=config)
    report = engine.updates.index([str(photos)])
    assert report.embedded == 40
    assert engine.search.run([Term(text="a dog"), Term(photo=str(next(photos.iterdir())))], k=5)
    engine.folders.add(photos)
    watcher = Watcher(engine, settle=0.2, rescan_interval=0)
    watcher.start()
    new = coco_photos()[60]
    shutil.copy2(new, photos / new.name)
    deadline = time.monotonic() + 30
    while engine.store.vector_count() < 41 and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    assert engine.store.vector_count() == 41
    assert no_network == []


def test_a_model_with_a_hugging_face_tokenizer_never_fetches_it_unasked(tmp_path, monkeypatch,
                                                                        no_network):
    """With HF_HUB_OFFLINE unset and an empty Hugging Face cache, a model whose config
    names a Hugging Face tokenizer (XLM-RoBERTa's) opens no socket: it says how to get the
    files instead."""
    from mmrag_desktop.clip.embedder import Embedder
    from mmrag_desktop.clip.identity import ModelMissingError
    from mmrag_desktop.core.config import Config

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    embedder = Embedder(Config(model="xlm-roberta-base-ViT-B-32",
                               pretrained="laion5b_s13b_b90k"), tmp_path / "home",
                        random_weights=True)
    with pytest.raises(ModelMissingError, match="xlm-roberta-base.*never fetches them unasked"):
        embedder.encode_texts(["Hund am Strand"])
    assert no_network == []
