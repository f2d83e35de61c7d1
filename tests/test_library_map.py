"""The 2-D map of the library: UMAP (or PCA for a few photos) over the stored embeddings,
kept up to date by placing new photos among their HNSW neighbours, cached beside the
library; and its view in the app (zoom, hover, lasso selection that becomes a query)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mmrag_desktop.index import map as library_map
from mmrag_desktop.index.map import REFIT_FRACTION, layout
from conftest import coco_photos


def _copy(photos, folder, start: int, stop: int) -> None:
    folder.mkdir(exist_ok=True)
    for photo in photos[start:stop]:
        shutil.copyfile(photo, folder / photo.name)


def test_the_map_lays_out_every_photo_and_places_new_ones_by_their_neighbours(engine,
                                                                              tmp_path,
                                                                              monkeypatch):
    pytest.importorskip("umap", reason="umap-learn lays out the map")
    photos = coco_photos()
    folder = tmp_path / "photos"
    _copy(photos, folder, 0, 100)
    engine.folders.add(folder)
    engine.updates.index()
    first = engine.analyses.map()
    assert first.method == "umap" and len(first.ids) == 100
    assert first.xy.shape == (100, 2) and first.xy.min() >= 0 and first.xy.max() <= 1
    assert sorted(first.paths) == sorted(str(folder / p.name) for p in photos[:100])
    # cached: asked again, the same map, not fitted again (nor after a few changes)
    fitted = library_map.layout
    monkeypatch.setattr(library_map, "layout", lambda vectors: pytest.fail("laid out again"))
    again = engine.analyses.map()
    assert np.array_equal(again.xy, first.xy) and np.array_equal(again.ids, first.ids)
    # an exact copy lands where its original is; a deleted photo leaves the map
    shutil.copyfile(photos[0], folder / "copy.jpg")
    (folder / photos[1].name).unlink()
    engine.updates.index()
    updated = engine.analyses.map()
    where = dict(zip(updated.paths, updated.xy))
    assert len(updated.ids) == 100 and str(folder / photos[1].name) not in where
    [saved] = (engine.path / "map").glob("*.npz")  # the cache forgets it too
    assert sorted(library_map.load(saved, engine.vector_index().model_id).ids) == sorted(updated.ids)
    assert np.allclose(where[str(folder / "copy.jpg")], where[str(folder / photos[0].name)],
                       atol=0.05)
    before = dict(zip(first.paths, first.xy))
    assert all(np.array_equal(where[p], before[p]) for p in before if p in where)
    # many new photos: laid out again
    monkeypatch.setattr(library_map, "layout", fitted)
    _copy(photos, folder, 100, 100 + int(REFIT_FRACTION * 100) + 5)
    engine.updates.index()
    refit = engine.analyses.map()
    assert len(refit.ids) == 125
    assert not all(np.array_equal(dict(zip(refit.paths, refit.xy))[p], before[p])
                   for p in before if p in where)


def test_a_few_photos_are_laid_out_by_pca():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(10, 16)).astype(np.float32)
    vectors[5:] += 4  # two groups
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    xy, method = layout(vectors)
    assert method == "pca" and xy.shape == (10, 2)
    first, second = xy[:5].mean(axis=0), xy[5:].mean(axis=0)
    assert np.linalg.norm(first - second) > 0.5  # the groups lie apart
    assert layout(vectors[:1])[0].tolist() == [[0.5, 0.5]]
