"""The HNSW index's query-time ``ef``: chosen by the library's size, narrowed for a filtered
search by the share the filter lets through, and put back after it; filtered searches keep
their recall against exact search, whichever way they are answered (post-filtered
candidates, a filtered walk, or exactly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrag_desktop.bench.speed import exact_top_k, synthetic_embeddings
from mmrag_desktop.index.vectors import (EF_BY_SIZE, EXACT_UP_TO, FILTERED_EF_SCALE, MIN_FILTERED_EF,
                                         VectorIndex, ef_for)


def test_ef_grows_with_the_library_and_narrows_with_a_filter():
    small, middle, large = (ef for _, ef in EF_BY_SIZE)
    assert (ef_for(EXACT_UP_TO + 1), ef_for(20_000), ef_for(20_001), ef_for(100_000), ef_for(2_000_000)) == (
        small, small, middle, middle, large)
    assert (ef_for(5), ef_for(500), ef_for(500, share=0.1)) == (MIN_FILTERED_EF, 500, 500)
    assert small < middle < large
    assert ef_for(1_000_000, share=0.03) == round(FILTERED_EF_SCALE * large * 0.03 ** 0.5) < large
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
    1,000 allowed and the walk at 10,000; of 1,000,000, exact at a month's 8,368 (14.6 ms
    against 27) and the walk at two months' 16,880 (19.8 ms against ~25); the window's top
    500 of 100,000, exact at 4,000, and a larger k leaves more to the exact search."""
    from mmrag_desktop.library.search import searched_exactly

    assert searched_exactly(1_000, 100_000, 10) and not searched_exactly(10_000, 100_000, 10)
    assert searched_exactly(8_368, 1_000_000, 10) and not searched_exactly(16_880, 1_000_000, 10)
    assert searched_exactly(4_000, 100_000, 500)
    assert searched_exactly(6_000, 100_000, 500) and not searched_exactly(6_000, 100_000, 10)


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
    # the exact search scores the vectors the saved index file holds, as the database does
    allowed = real(Filters(folders=[str(tmp_path / "many")]))
    assert engine.vector_index().saved_vectors(np.array(sorted(allowed)))[0].all()
    stored = np.concatenate([chunk for _, chunk in engine.store.vectors(ids=sorted(allowed))])
    ids, scores = engine.search.exact(query, allowed, 10)
    assert np.allclose(scores, np.sort(stored @ query)[::-1][:10], atol=1e-6)


def test_the_saved_file_gives_the_vectors_it_holds_until_they_change(tmp_path):
    """Exact scoring reads vectors from the saved HNSW file (index/hnsw_file.py): its labels
    come with the checksum's read, its rows equal what was added, and a vector replaced,
    added or deleted since the file was written is not given from it (the caller reads the
    database's) until the next save."""
    import xxhash

    from mmrag_desktop.index.hnsw_file import scan

    data = synthetic_embeddings(3_001, 16, seed=6)
    labels = 7 * np.arange(3_000) + 3  # not the file's order of elements
    index = VectorIndex(tmp_path / "v.hnsw", 16, "test", 8, 32, 0)
    index.start_empty(1024)
    index.add(labels, data[:3_000])
    assert index.save()
    digest, found = scan(index.data_file, 16)
    assert digest == xxhash.xxh3_128_hexdigest(index.data_file.read_bytes())
    assert sorted(found.tolist()) == labels.tolist()
    assert scan(index.data_file, 17)[1] is None  # another layout: checksummed only

    reopened = VectorIndex(tmp_path / "v.hnsw", 16, "test", 8, 32, 0)
    assert reopened.read_saved() is None
    asked = np.array([3, 10, 4, 7 * 2_999 + 3, 7 * 3_000 + 3])  # 4 and the last: not there
    held, vectors = reopened.saved_vectors(asked)
    assert held.tolist() == [True, True, False, True, False]
    assert np.array_equal(vectors, data[[0, 1, 2_999]])

    changed = np.stack([data[3_000], data[5]])
    reopened.add(np.array([10, 7 * 3_000 + 3]), changed)  # one replaced, one new
    reopened._delete([3])
    held, vectors = reopened.saved_vectors(asked)
    assert held.tolist() == [False, False, False, True, False]
    assert np.array_equal(vectors, data[[2_999]])
    assert reopened.save()
    held, vectors = reopened.saved_vectors(asked)
    assert held.tolist() == [True, True, False, True, True]  # 3: deleted, its row is kept
    assert np.array_equal(vectors[1:], np.stack([data[3_000], data[2_999], data[5]]))


_HUGE_PAGES_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from mmrag_desktop.bench.speed import synthetic_embeddings
from mmrag_desktop.index.vectors import VectorIndex

def advised_bytes():
    # bytes of mappings advised MADV_HUGEPAGE (the kernel merges neighbours: not a count)
    total, size = 0, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line.startswith("Size:"):
            size = int(line.split()[1]) << 10
        elif line.startswith("VmFlags:") and " hg" in line:
            total += size
    return total

before = advised_bytes()
index = VectorIndex(Path(sys.argv[1]), 512, "test", 16, 32, 0)
index.start_empty(40_000)
created = advised_bytes() - before
index.add(np.arange(100), synthetic_embeddings(100, 512, seed=7))
assert index.save()
del index
before = advised_bytes()
reopened = VectorIndex(Path(sys.argv[1]), 512, "test", 16, 32, 0)
assert reopened.read_saved() is None
reopened.collapsing.join()
print(created, advised_bytes() - before)
"""


def test_the_graph_of_a_large_index_is_backed_by_huge_pages(tmp_path):
    """An index whose level-0 block passes MIN_BYTES asks the kernel for transparent huge
    pages: advised when it is created empty, collapsed in a background thread when loaded.
    In a fresh process: in a busy one (this suite's), another thread's memory freed at the
    same moment can leave the block unrecognised, and then only speed is lost."""
    import subprocess
    import sys

    import pytest

    from mmrag_desktop.core import hugepages

    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not enabled.exists() or "[never]" in enabled.read_text():
        pytest.skip("no transparent huge pages here")
    block = 40_000 * (2 * 16 * 4 + 4 + 4 * 512 + 8)  # 87 MB: hnswlib's level-0 block
    assert block > hugepages.MIN_BYTES
    done = subprocess.run([sys.executable, "-c", _HUGE_PAGES_SCRIPT, str(tmp_path / "v.hnsw")],
                          capture_output=True, text=True, check=True)
    created, loaded = (int(x) for x in done.stdout.split())
    assert created >= block - hugepages.HUGE_PAGE and loaded >= block - hugepages.HUGE_PAGE


def test_a_filters_ids_are_kept_until_anything_is_committed(engine, tmp_path):
    """Query after query under one filter reads its ids once; a commit by this connection or
    by any other (another process's) is seen at once."""
    import shutil

    from conftest import coco_photos
    from mmrag_desktop.domain.folders import OFFLINE, OK
    from mmrag_desktop.domain.query import Filters
    from mmrag_desktop.store.database import Store

    folder = tmp_path / "a"
    folder.mkdir()
    for photo in coco_photos()[:6]:
        shutil.copy2(photo, folder / photo.name)
    engine.updates.index([str(folder)])
    filters = Filters(folders=[str(folder)])
    first = engine.store.ids_matching(filters)
    assert len(first) == 6 and engine.store.ids_matching(filters) is first
    other = Store(engine.store.path)  # another connection, as another process has
    other.set_status(str(folder), OFFLINE)
    assert engine.store.ids_matching(filters) == set()
    other.set_status(str(folder), OK)
    assert engine.store.ids_matching(filters) == first
    engine.store.set_status(str(folder), OFFLINE)  # this connection's own write
    assert engine.store.ids_matching(filters) == set()
    other.close()


def test_checking_candidates_against_a_filter_agrees_with_listing_it(engine, tmp_path):
    """The post-filter checks candidates photo by photo (filter_sql per_row: correlated
    EXISTS by content hash); listing a filter's photos uses IN over the other table. Both
    say the same for every filter that looks at another table."""
    import shutil

    from conftest import coco_photos
    from mmrag_desktop.domain.query import Filters

    for photo in coco_photos()[:12]:
        shutil.copy2(photo, tmp_path / photo.name)
    engine.updates.index([str(tmp_path)])
    store = engine.store
    rows = store.db.execute("SELECT id, hash FROM photos ORDER BY id").fetchall()
    ids, hashes = [r[0] for r in rows], [r[1] for r in rows]
    with store.transaction():
        for n, digest in enumerate(hashes):
            if n % 3 == 0:
                store.db.execute("INSERT INTO faces(hash, descriptor, person) VALUES (?, ?, 7)",
                                 [digest, b"\0"])
            if n % 4 == 0:
                store.db.execute("INSERT INTO album_photos(album, hash) VALUES (5, ?)", [digest])
            store.db.execute("INSERT OR REPLACE INTO marks(hash, rating, favourite) VALUES (?, ?, ?)",
                             [digest, n % 6, int(n % 5 == 0)])
            store.db.execute("INSERT OR REPLACE INTO understanding(hash, kind, version, data, text, seq) "
                             "VALUES (?, 'place', 1, '{}', ?, 1)",
                             [digest, "Lisbon Portugal" if n % 2 else "Porto Portugal"])
    for filters in (Filters(people=[7]), Filters(not_people=[7]), Filters(albums=[5]),
                    Filters(favourites=True), Filters(min_rating=4), Filters(place="Lisbon"),
                    Filters(people=[7], place="Porto")):
        listed = store.ids_matching(filters)
        assert 0 < len(listed) < len(ids), filters
        assert store.ids_matching(filters, among=ids) == listed, filters
        assert store.ids_matching(filters, among=ids[:5]) == listed & set(ids[:5]), filters
