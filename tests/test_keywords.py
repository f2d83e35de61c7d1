"""Keyword search (FTS5 / BM25) over names, folders, cameras and dates, and its fusion with
the embedding search (reciprocal-rank fusion)."""

from __future__ import annotations

import json
import re
import shutil

from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.index.keywords import STOP_WORDS, fuse, match_expression
from mmrag_desktop.domain.query import Filters, Term
from conftest import coco_photos


def _library(engine, tmp_path):
    """coco-mini photos under telling names: a receipt, a Lisbon album, a Canon camera."""
    folder = tmp_path / "photos"
    (folder / "Lisbon trip").mkdir(parents=True)
    photos = coco_photos()[:12]
    named = {"receipt-hardware-shop.jpg": photos[0], "IMG_0001.jpg": photos[1],
             "IMG_0002.jpg": photos[2]}
    for name, photo in named.items():
        shutil.copyfile(photo, folder / name)
    for photo in photos[3:8]:
        shutil.copyfile(photo, folder / "Lisbon trip" / photo.name)
    exif = Image.Exif()
    exif[271], exif[272], exif[306] = "Canon", "EOS 5D", "2019:07:14 12:00:00"
    with Image.open(photos[8]) as img:
        img.save(folder / "holiday.jpg", "JPEG", exif=exif)
    engine.folders.add(folder)
    engine.updates.index()
    return folder


def test_keyword_search_finds_names_folders_cameras_and_dates_and_says_why(engine, tmp_path):
    folder = _library(engine, tmp_path)
    [hit] = engine.search.run([Term(text="receipt")], k=5, mode="keyword")
    assert hit.path == str(folder / "receipt-hardware-shop.jpg") and hit.score is None
    assert hit.meta["matched"] == {"field": "name", "snippet": "[receipt]-hardware-shop"}
    lisbon = engine.search.run([Term(text="lisbon")], k=10, mode="keyword")
    assert len(lisbon) == 5 and {r.meta["matched"]["field"] for r in lisbon} == {"folder"}
    [canon] = engine.search.run([Term(text="canon")], k=5, mode="keyword")
    assert canon.path == str(folder / "holiday.jpg")
    assert engine.search.run([Term(text="July 2019")], k=5, mode="keyword")[0].path == canon.path
    assert engine.search.run([Term(text='"hardware shop"')], k=5, mode="keyword")[0].path == \
        hit.path
    assert engine.search.run([Term(text='"shop hardware"')], k=5, mode="keyword") == []
    # filters apply; a moved photo is found under its new name; a deleted one is gone
    assert engine.search.run([Term(text="lisbon")], k=10, mode="keyword",
                         filters=Filters(folders=[str(folder / "nowhere")])) == []
    (folder / "receipt-hardware-shop.jpg").rename(folder / "invoice.jpg")
    (folder / "IMG_0001.jpg").unlink()
    engine.updates.index()
    assert engine.search.run([Term(text="receipt")], k=5, mode="keyword") == []
    assert [r.path for r in engine.search.run([Term(text="invoice")], k=5, mode="keyword")] == \
        [str(folder / "invoice.jpg")]
    assert [r.path for r in engine.search.run([Term(text="IMG")], k=5, mode="keyword")] == [
        str(folder / "IMG_0002.jpg")]
    assert len(engine.keywords) == engine.store.vector_count() == 8  # no stale entries


def test_hybrid_search_fuses_keyword_and_embedding_rankings(engine, tmp_path, capsys):
    folder = _library(engine, tmp_path)
    semantic = engine.search.run([Term(text="receipt")], k=12)
    hybrid = engine.search.run([Term(text="receipt")], k=12, mode="hybrid")
    receipt = str(folder / "receipt-hardware-shop.jpg")
    # RRF: the receipt is first in one list and somewhere in the other, so it leads
    assert hybrid[0].path == receipt and hybrid[0].meta["matched"]["field"] == "name"
    assert {r.path for r in hybrid} == {r.path for r in semantic}
    cosine = {r.path: r.score for r in semantic}
    assert all(abs(r.score - cosine[r.path]) < 1e-5 for r in hybrid)  # still the cosine
    # a photo alone has no words: hybrid is the embedding ranking
    photo = Term(photo=str(folder / "holiday.jpg"))
    assert [r.path for r in engine.search.run([photo], k=5, mode="hybrid")] == \
        [r.path for r in engine.search.run([photo], k=5)]

    assert main(["search", "receipt", "-k", "12", "--json"]) == 0  # the CLI's default
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["path"] == receipt and hits[0]["matched"]["snippet"].startswith("[receipt]")
    assert main(["search", "lisbon", "--mode", "keyword"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("(folder:" in line and "[Lisbon]" in line for line in lines)


def test_match_expression_and_fusion():
    assert match_expression('red "hardware shop" car!') == '"hardware shop" OR "red" OR "car"'
    assert match_expression("-- !!") is None
    assert fuse([[1, 2, 3], [3, 4]]) == [(3, 1 / 63 + 1 / 61), (1, 1 / 61), (2, 1 / 62),
                                         (4, 1 / 62)]  # a tie keeps the first seen first


def test_the_keyword_index_catches_up_with_deletions_incrementally(engine, tmp_path):
    # A deletion committed after the index looked (its tombstone not yet pruned by an HNSW
    # save) leaves the index without a full rebuild.
    folder = _library(engine, tmp_path)
    assert len(engine.search.run([Term(text="lisbon")], k=10, mode="keyword")) == 5
    applied = len(engine.keywords)
    [victim] = [r for r in engine.search.run([Term(text="receipt")], k=1, mode="keyword")]
    engine.store.write_batch([], [], [victim.id])
    assert not engine.store.changes_since(engine.store.seq() - 1).full  # the incremental path
    engine.keywords.catch_up(engine.store)
    assert len(engine.keywords) == applied - 1
    assert engine.search.run([Term(text="receipt")], k=5, mode="keyword") == []
    assert str(folder / "receipt-hardware-shop.jpg") == victim.path


NOISE = [["A"], ["The"], ["of the"], ["I"], ["1"], ["and"], ["to"], ["A", "the"],
         ["in the"], ["a"]]


def test_stop_words_and_ocr_noise_never_outrank_meaning(engine, tmp_path):
    """coco-mini photos, 20 of them with OCR noise ("A", "The", "of the"…), searched by 50
    captions in hybrid mode: no top-5 result matches only by a stop word or a stray letter,
    and no photo ranks lower than semantic search puts it unless keyword hits rank above."""
    import json as json_lib

    from mmrag_desktop.domain.analyses import OCR_VERSION
    from mmrag_desktop.understanding.passes import text_record

    folder = tmp_path / "coco"
    folder.mkdir()
    photos = coco_photos()[:60]
    for photo in photos:
        shutil.copyfile(photo, folder / photo.name)
    engine.folders.add(folder)
    engine.updates.index()
    noisy = []
    for n, photo in enumerate(photos[40:]):
        digest = engine.store.hash_of(str(folder / photo.name))
        lines = [{"text": t, "score": 0.9, "box": []} for t in NOISE[n % len(NOISE)]]
        data, _ = text_record(lines)
        noisy.append((digest, data, "\n".join(NOISE[n % len(NOISE)])))  # as stored before
    engine.store.put_understanding("text", OCR_VERSION, noisy)
    captions = {json_lib.loads(line)["file"]: json_lib.loads(line)["captions"][0]
                for line in (coco_photos()[0].parent.parent / "captions.jsonl")
                .read_text().splitlines()}
    queries = [captions[p.name] for p in photos[:50]]
    noise_only = 0
    for query in queries:
        hybrid = engine.search.run([Term(text=query)], k=60, mode="hybrid", field="image",
                                   understand=False)
        for result in hybrid[:5]:
            if "matched" in result.meta:
                marked = re.findall(r"\[([^\]]*)\]", result.meta["matched"]["snippet"])
                words = [w.lower() for m in marked for w in re.findall(r"\w+", m)]
                noise_only += not any(len(w) >= 3 and w not in STOP_WORDS for w in words)
        semantic = engine.search.run([Term(text=query)], k=60, mode="semantic", field="image",
                                     understand=False)
        rank = {r.id: n for n, r in enumerate(semantic)}
        for n, result in enumerate(hybrid):
            hits_above = sum("matched" in r.meta for r in hybrid[:n])
            assert n <= rank[result.id] + hits_above, (query, result.path)
    assert noise_only == 0, f"{noise_only} top-5 results matched only by noise"


def test_recognised_lines_shorter_than_a_word_are_not_searched():
    from mmrag_desktop.understanding.passes import text_record

    lines = [{"text": t, "score": 0.9, "box": []} for t in ("A", "EXIT", "1", "I.", "No 5")]
    data, text = text_record(lines)
    assert text == "EXIT\nNo 5" and len(json.loads(data)["lines"]) == 5
