"""Near-duplicate groups on real photos: exact byte copies, resized and re-compressed copies
made here from coco-mini photos, grouped with their originals, the original suggested to
keep; distinct photos left alone."""

from __future__ import annotations

import json
import shutil

from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.duplicates import group
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
    engine.index([str(folder)])
    assert engine.store.vector_count() == 18

    groups = engine.duplicates(THRESHOLD)
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
