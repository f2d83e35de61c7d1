"""Queries understood on a real library (coco-mini photos with EXIF dates, cameras, a GPS
position, a video and text in a photo): each part of a typed query filters as it says, and
a word the library does not know stays in the text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import cli_env, coco_photos, encode_video, with_gps
from mmrag_desktop.clip.embedder import query_vector
from mmrag_desktop.core.config import save_config
from mmrag_desktop.domain.analyses import OCR_VERSION
from mmrag_desktop.domain.query import Term
from mmrag_desktop.understanding.passes import text_record


@pytest.fixture
def library(engine, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = coco_photos()
    for i, photo in enumerate(photos[:30]):
        exif = Image.Exif()
        exif[306] = f"2019:07:{i + 1:02d} 12:00:00" if i < 10 else f"2023:03:{i - 9:02d} 09:30:00"
        exif[271], exif[272] = ("Apple", "iPhone 12 Pro") if i % 3 == 0 else ("Canon", "EOS R6")
        with Image.open(photo) as img:
            img.save(folder / photo.name, "JPEG", quality=92, exif=exif)
    with_gps(photos[30], folder / "tower.jpg", 48.8584, 2.2945)
    encode_video(folder / "clip.mp4", photos[31:33], seconds=2.0)
    engine.config.understand = ["places"]
    save_config(engine.home, engine.config)
    engine.folders.add(folder)
    engine.updates.index()
    engine.updates.understand()
    sign = engine.store.hash_of(str(folder / photos[5].name))
    data, text = text_record([{"text": "EMERGENCY EXIT", "score": 0.98, "box": []}])
    engine.store.put_understanding("text", OCR_VERSION, [(sign, data, text)])
    return engine, folder


def names(results) -> list[str]:
    return sorted(Path(r.path).name for r in results)


def test_each_part_of_a_query_filters_as_it_says(library):
    engine, folder = library
    run = lambda query: engine.search.run([Term(text=query)], k=50)  # noqa: E731
    july = run("a street from July 2019")
    assert len(july) == 10 and all(r.meta["taken_at"].startswith("2019-07") for r in july)
    assert len(run("a street in 2023")) == 20
    assert len(run("a street since 2020")) == 20
    iphone = run("a street taken with the iPhone")
    assert len(iphone) == 10 and {r.meta["camera_model"] for r in iphone} == {"iPhone 12 Pro"}
    assert names(run("a tower in Paris")) == ["tower.jpg"]
    assert names(run("videos of a street")) == ["clip.mp4"]
    assert names(run('a sign that says "exit"')) == [coco_photos()[5].name]
    assert len(run("photos of a street")) == 31  # every photo, not the video
    # Unknown to the library: stays in the text (no filter, all 32 found).
    assert len(run("a street in Lisbon")) == 32
    assert len(run("a street taken with a Nikon")) == 32
    # As typed, nothing is understood: "July 2019" is searched by meaning.
    assert len(engine.search.run([Term(text="a street from July 2019")], k=50,
                                 understand=False)) == 32


def test_explain_prints_what_was_understood(library, home):
    engine, folder = library
    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "search", "--json", "--explain",
                          "-k", "50", "videos of a street in Paris from 2019 not cats"],
                         env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["understood"] == {"text": "a street", "after": "2019-01-01",
                                 "before": "2019-12-31", "place": "Paris", "people": [],
                                 "camera": [], "media": "video", "says": "", "not": ["cats"],
                                 "albums": [], "favourites": False, "rating": 0}
    assert out["results"] == []  # the one video was not taken in Paris in 2019


def test_a_searchs_baseline_is_the_querys_mean_cosine_over_the_library(engine, photos):
    """The relevance cut's zero point (:func:`.domain.query.relevant`): measured per query on this
    library's own vectors, so each model is cut on its own scale."""
    engine.folders.add(photos)
    engine.updates.index()
    results = engine.search.run([Term(text="a dog on a beach")], k=40)
    query = query_vector(engine.embedder, [Term(text="a dog on a beach")])
    every = engine.search.vectors_of(np.array(sorted(r.id for r in results)))
    assert len(every) == 40 and len({r.baseline for r in results}) == 1
    assert results[0].baseline == pytest.approx(float(np.mean(every @ query)), abs=1e-5)
