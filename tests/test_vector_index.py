"""The HNSW index's query-time ``ef``: chosen by the library's size, narrowed for a filtered
search by the share the filter lets through, and put back after it; filtered searches keep
their recall against exact search, whichever way they are answered (post-filtered
candidates, a filtered walk, or exactly)."""

from __future__ import annotations

import numpy as np

from mmrag_desktop.bench.speed import exact_top_k, synthetic_embeddings
from mmrag_desktop.index.vectors import EF_BY_SIZE, EXACT_UP_TO, MIN_FILTERED_EF, VectorIndex, ef_for


def test_ef_grows_with_the_library_and_narrows_with_a_filter():
    small, middle, large = (ef for _, ef in EF_BY_SIZE)
    assert (ef_for(EXACT_UP_TO + 1), ef_for(20_000), ef_for(20_001), ef_for(100_000), ef_for(2_000_000)) == (
        small, small, middle, middle, large)
    assert (ef_for(5), ef_for(500), ef_for(500, share=0.1)) == (MIN_FILTERED_EF, 500, 500)
    assert small < middle < large
    assert ef_for(1_000_000, share=0.03) == round(large * 0.03 ** 0.5) < large
    assert ef_for(1_000_000, share=1e-6) == MIN_FILTERED_EF
    assert ef_for(1_000_000, configured=300, share=0.03) == 300  # a setting is kept


def test_the_index_follows_its_size_and_a_filtered_search_puts_ef_back(tmp_path):
    n = EF_BY_SIZE[0][0] + 5_000  # past the first size step
    data = synthetic_embeddings(n, 16, seed=1)
    index = VectorIndex(tmp_path / "v.hnsw", 16, "test", 16, 64, 0)
    index.start_empty(1024)
    index.add(np.arange(1_000), data[:1_000])
    assert index._require().ef == 1_000  # small: exact
    index.add(np.arange(1_000, n), data[1_000:])
    assert index._require().ef == EF_BY_SIZE[1][1]

    queries = synthetic_embeddings(50, 16, seed=2)
    allowed = np.sort(np.random.default_rng(3).choice(n, n // 20, replace=False))
    truth = allowed[exact_top_k(data[allowed], queries, 10)]
    found = [index.search(q, 10, set(allowed.tolist()))[0] for q in queries]
    assert all(set(f.tolist()) <= set(allowed.tolist()) for f in found)
    recall = np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95
    assert index._require().ef == EF_BY_SIZE[1][1]  # the unfiltered ef is back

    index.save()
    reopened = VectorIndex(tmp_path / "v.hnsw", 16, "test", 16, 64, 0)
    assert reopened.read_saved() is None and reopened._require().ef == EF_BY_SIZE[1][1]
    reopened.set_ef(200)
    assert reopened._require().ef == 200


def test_a_small_library_is_searched_exactly(tmp_path):
    """Guards against a narrow beam on a small library: with ``ef`` 64 this graph (``M`` 8,
    random 32-d vectors, where HNSW does worst) misses true top-10 results."""
    n = EXACT_UP_TO
    data = synthetic_embeddings(n, 32, seed=4)
    index = VectorIndex(tmp_path / "v.hnsw", 32, "test", 8, 32, 0)
    index.start_empty(n)
    index.add(np.arange(n), data)
    queries = synthetic_embeddings(100, 32, seed=5)
    truth = exact_top_k(data, queries, 10)
    assert all(set(index.search(q, 10)[0].tolist()) == set(t.tolist()) for q, t in zip(queries, truth))


def test_a_filter_is_searched_exactly_only_where_that_is_faster():
    """The crossings measured (EXACT_SEARCH_SCALE): top 10 of 100,000 photos, exact wins at
    1,000 allowed and the walk at 10,000; of 1,000,000, exact at 5,000 and the walk at 10,000;
    the window's top 500 of 100,000, exact at 4,000 and the walk at 8,000."""
    from mmrag_desktop.library.search import searched_exactly

    assert searched_exactly(1_000, 100_000, 10) and not searched_exactly(10_000, 100_000, 10)
    assert searched_exactly(5_000, 1_000_000, 10) and not searched_exactly(10_000, 1_000_000, 10)
    assert searched_exactly(4_000, 100_000, 500) and not searched_exactly(8_000, 100_000, 500)


def test_a_filtered_search_answers_as_exact_search_does_on_each_path(engine, tmp_path, monkeypatch):
    """A broad filter is answered from unfiltered candidates without reading its ids; a
    narrow one, of which too few are among the candidates, falls back to its ids. Both give
    the exact filtered top-k."""
    import shutil

    from conftest import coco_photos
    from mmrag_desktop.domain.query import Filters
    from mmrag_desktop.library import search

    for n, photo in enumerate(coco_photos()[:60]):
        folder = tmp_path / ("few" if n < 6 else "many")
        folder.mkdir(exist_ok=True)
        shutil.copy2(photo, folder / photo.name)
    engine.updates.index([str(tmp_path / "few"), str(tmp_path / "many")])
    monkeypatch.setattr(search, "POST_FILTER_CANDIDATES", 20)  # of 60 photos
    reads = []
    real = engine.store.ids_matching
    monkeypatch.setattr(engine.store, "ids_matching", lambda filters, among=None: (
        reads.append(among is None), real(filters, among))[1])
    query = engine.embedder.encode_texts(["a dog on a beach"])[0]
    for name, k, whole in (("many", 5, False), ("few", 5, True), ("many", 40, True)):
        filters = Filters(folders=[str(tmp_path / name)])
        reads.clear()
        got = engine.search.by_vector(query, k, filters=filters)
        ids, scores = engine.search.exact(query, real(filters), k)
        assert [r.id for r in got] == ids.tolist()
        assert np.allclose([r.score for r in got], scores, atol=1e-5)
        assert reads[-1] is whole  # the filter's ids were read whole only where needed
