"""The HNSW index (hnswlib): a derived, rebuildable cache of the embeddings in SQLite.

HNSW is the graph index of Malkov & Yashunin, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs" (arXiv:1603.09320);
``M``, ``ef_construction`` and ``ef`` are that paper's parameters. Labels are SQLite row ids.

The index only ever changes by applying what the database committed (:meth:`catch_up`), in
order, so it always reflects exactly one ``seq`` of the database, whichever process wrote
it; it saves that ``seq``, never a later one. It keeps a checksum of its (id, vector) pairs
in step with the database's (:func:`~mmrag_desktop.store.database.vector_checksum`): any
disagreement after catching up, on open or later, means a rebuild from SQLite.

On disk: a JSON sidecar ``<name>.json`` naming the data file (``<name>.<seq>.<token>.hnsw``)
with its size and XXH3 checksum (:data:`.hnsw_file.DIGESTS`: a CRC-32 or BLAKE2b before),
the model id, the ``seq`` it reflects, its deleted labels and its vector checksum. A save
writes a new data file and then replaces the sidecar: that rename is the one commit point,
so a crash at any moment leaves the old pair or the new one.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path

import hnswlib
import numpy as np
from readerwriterlock import rwlock

from ..core.atomic import replacing, write_atomically
from ..core.hugepages import anonymous_mappings, back_with_huge_pages
from ..store.database import Store
from ..store.vectors import vector_checksum
from .hnsw_file import DIGESTS, SavedVectors, scan

log = logging.getLogger(__name__)

_MIN_CAPACITY = 1024
ORPHAN_SECONDS = 3600.0
"""A data or temp file no sidecar names, older than this, is a leftover of a save that
crashed (a live save, even of a 2 GB index, writes its files within minutes)."""


EF_BY_SIZE = ((20_000, 64), (100_000, 96), (None, 160))
"""(library size up to, query-time ``ef``): the smallest ``ef`` measured to reach recall@10
≥ 0.98 against exact search with ``M`` 32 and ``ef_construction`` 200 (``mmrag bench
--sizes``, synthetic 512-d embeddings, 2-core EPYC, quiet): 20,000: 64 (0.982 with ``M`` 24);
100,000: 96 (0.986, 1.0 ms p50); 1,000,000: 160 (0.982, 2.2–2.3 ms). A larger graph needs a
wider beam for the same recall; a small one answers as well with a narrower, faster one."""

MIN_FILTERED_EF = 10
"""The narrowest filtered ``ef``: a filter passing 1.2 % of 1M photos walks at ef 13 (recall@10
~0.985); below that share the search is exact (:func:`.library.search.searched_exactly`)."""

FILTERED_EF_SCALE = 0.75
"""The filtered ``ef``'s share of the unfiltered one at a share of 1 (see :func:`ef_for`):
0.75 keeps recall@10 ≥ 0.97 at every share measured and walks a quarter less than 1.0 did
(two months of a 1M library: 11.6 ms instead of 13.9)."""

EXACT_UP_TO = 2_000
"""Up to this many vectors ``ef`` is at least their count, so the beam holds every vector
and a search is exact (the table's ``ef`` 64 on a 230-photo library missed a true top-10
result now and then); at 2,000 vectors of 512-d such a search takes 0.5 ms (2-core EPYC)."""


def ef_for(count: int, configured: int = 0, share: float = 1.0) -> int:
    """The query-time ``ef`` for an index of *count* vectors: *configured* when it is set
    (> 0), else by :data:`EF_BY_SIZE`; for a filtered search that lets *share* (0–1) of them
    through, that times :data:`FILTERED_EF_SCALE` × √share (at least
    :data:`MIN_FILTERED_EF`). hnswlib walks on past the vectors a filter refuses until ``ef``
    pass, so a selective filter needs a narrower beam for the same recall. Measured on 1M
    vectors (4 KiB pages), recall@10 / p50: 50 % pass, ef 85: 0.970 / 2.7 ms; 10 %, ef 38:
    0.983 / 5.1 ms; 3 %, ef 21: 0.987 / 8.8 ms; 1.7 %, ef 16: 0.991 / 11.6 ms (ef 21: 0.997 /
    13.9 ms); 1.2 %, ef 13: ~0.985 / ~14 ms (fewer pass: the search is exact). A library of
    up to :data:`EXACT_UP_TO` vectors is searched exactly."""
    if configured > 0:
        return configured
    if count <= EXACT_UP_TO:
        return max(count, MIN_FILTERED_EF)
    ef = next(ef for limit, ef in EF_BY_SIZE if limit is None or count <= limit)
    return ef if share >= 1 else max(MIN_FILTERED_EF, round(FILTERED_EF_SCALE * ef * share ** 0.5))


class VectorIndex:
    """Cosine-similarity top-k search over a library's embeddings.

    Searches and saves share the index; applying changes takes it alone (a reader-writer
    lock), so writing a large file does not hold up searches.

    Args:
        path: names the index: its sidecar is ``path.with_suffix(".json")`` and its data
            files ``<stem>.<seq>.<token>.hnsw`` beside it.
        dim: embedding dimension d.
        model_id: the model whose vectors the index holds.
        m, ef_construction, ef: HNSW parameters (defaults and their measurement: the
            ``hnsw_*`` settings of :class:`.core.config.Config`).
    """

    def __init__(self, path: Path, dim: int, model_id: str, m: int, ef_construction: int,
                 ef: int):
        self.path = path
        self.sidecar = path.with_suffix(".json")
        self.dim, self.model_id = dim, model_id
        self.m, self.ef_construction, self.ef = m, ef_construction, ef
        self.applied_seq = 0  # the database seq this index reflects
        self.saved_seq = -1  # the seq of the file on disk
        self.data_file: Path | None = None  # the data file the sidecar names
        self._index: hnswlib.Index | None = None
        # hnswlib does not report which labels are marked deleted, so both sets are kept
        # here and the deleted one is saved in the sidecar.
        self._live: set[int] = set()
        self._dead: set[int] = set()
        self._checksum = 0
        self._lock = rwlock.RWLockWrite()
        # the saved file's vectors, and the labels changed since it was written
        self._saved: tuple[SavedVectors, set[int]] | None = None
        self.collapsing: threading.Thread | None = None  # the thread backing the graph with huge pages, if one runs

    # --- open / rebuild -------------------------------------------------------------------

    def open(self, store: Store) -> str | None:
        """Load the cache and bring it up to date with *store*; rebuild it when it is
        missing, stale or corrupt.

        Returns:
            None when the file was sound, else a sentence saying what was repaired.
        """
        with self._lock.gen_wlock():
            problem = self._load(store)
            if problem is None:
                return None
            log.warning("HNSW index %s: %s; rebuilding from the library database",
                        self.path.name, problem)
            count = self._rebuild(store)
        self.save(store)
        return f"search index {problem}: rebuilt from the library database ({count} photos)"

    def _load(self, store: Store) -> str | None:
        if not self.sidecar.exists():
            if store.vector_count():
                return "missing"
            self._start_empty(_MIN_CAPACITY)
            self._catch_up(store)
            return None
        return self._read_saved() or self._catch_up(store)

    def read_saved(self) -> str | None:
        """Load the saved index file alone, without catching up with a store: the part of
        :meth:`open` that grows with the library (``mmrag bench --sizes`` times it in a
        fresh process). Returns None when it loaded, else what is wrong with it."""
        with self._lock.gen_wlock():
            return self._read_saved()

    def _read_saved(self) -> str | None:
        try:
            info = json.loads(self.sidecar.read_text())
            expected = (info["model_id"], info["dim"], info["size"])
            seq, checksum = int(info["seq"]), int(info["checksum"])
            data = self.path.parent / Path(info["file"]).name
        except (OSError, ValueError, KeyError, TypeError):
            return "has no valid sidecar"
        if not data.exists():
            return "missing"
        if expected != (self.model_id, self.dim, data.stat().st_size):
            return "was made by another model or is truncated"
        digest = next((key for key in DIGESTS if key in info), None)
        if digest is None:
            return "has no valid sidecar"
        found, labels = scan(data, self.dim, digest)
        if found != info[digest]:
            return "is corrupt (checksum mismatch)"
        index = hnswlib.Index(space="ip", dim=self.dim)
        before = anonymous_mappings()
        try:
            index.load_index(str(data))
        except (RuntimeError, MemoryError, ValueError) as exc:
            return f"could not be loaded ({exc})"
        self._index, self.applied_seq, self.saved_seq = index, seq, seq
        self.data_file = data
        self._map_saved(data, labels)
        self._dead = {int(i) for i in info.get("deleted", [])}
        self._live = set(index.get_ids_list()) - self._dead
        self._checksum = checksum
        self._tune()
        # last: collapsing contends for the memory map's lock (+0.3 s on the rest at 1M)
        self.collapsing = back_with_huge_pages(before, self._block_bytes(index), filled=True)
        return None

    def _start_empty(self, capacity: int) -> None:
        index = hnswlib.Index(space="ip", dim=self.dim)
        before = anonymous_mappings()
        index.init_index(max_elements=capacity, M=self.m, ef_construction=self.ef_construction)
        back_with_huge_pages(before, self._block_bytes(index), filled=False)
        self._index = index
        self._saved = None
        self._live, self._dead, self._checksum = set(), set(), 0
        self._tune()
        self.applied_seq = 0

    def start_empty(self, capacity: int = _MIN_CAPACITY) -> None:
        """Start an empty in-memory index (benchmarks on synthetic vectors; a library's
        index is built by :meth:`open` / :meth:`rebuild` from its store)."""
        with self._lock.gen_wlock():
            self._start_empty(capacity)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors without a store (benchmarks): ids (n,) int, vectors (n, d) float32,
        L2-normalised."""
        with self._lock.gen_wlock():
            self._add(ids, vectors)

    def rebuild(self, store: Store) -> int:
        """Build a new index from every vector in *store* and save it. Returns its size."""
        with self._lock.gen_wlock():
            count = self._rebuild(store)
        self.save(store)
        return count

    def _rebuild(self, store: Store) -> int:
        with store.snapshot():
            self._start_empty(max(_MIN_CAPACITY, store.vector_count()))
            self.applied_seq = store.seq()
            for ids, vectors in store.vectors():
                self._add(ids, vectors)
        return len(self._live)

    # --- keeping up with the database -----------------------------------------------------

    def catch_up(self, store: Store) -> None:
        """Apply what *store* committed since :attr:`applied_seq` (in this process or any
        other); rebuild if the result does not match the database's checksum."""
        if store.seq() == self.applied_seq:  # the common case, without the write lock
            return
        with self._lock.gen_wlock():
            problem = self._catch_up(store)
            if problem is None:
                return
            log.warning("HNSW index %s: %s; rebuilding", self.path.name, problem)
            self._rebuild(store)

    def _catch_up(self, store: Store) -> str | None:
        """Replay changes after :attr:`applied_seq` in one snapshot; a sentence when the
        outcome disagrees with the database."""
        with store.snapshot():
            changes = store.changes_since(self.applied_seq)
            if changes.seq != self.applied_seq:
                if changes.full:
                    self._delete(sorted(self._live - (changes.live_ids or set())))
                else:
                    self._delete(changes.deleted)
                after = 0 if changes.seq < self.applied_seq else self.applied_seq
                for ids, vectors in store.vectors(after_seq=after):
                    self._add(ids, vectors)
                self.applied_seq = changes.seq
            if self._checksum != changes.checksum:
                return "does not hold the library's vectors (checksum differs)"
        return None

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace vectors. ids: (n,) int; vectors: (n, d) float32, L2-normalised.
        Re-adding a deleted id brings it back (hnswlib unmarks it)."""
        if len(ids) == 0:
            return
        index = self._require()
        labels = [int(i) for i in ids]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        replaced = [label for label in labels if label in self._live]
        if replaced:
            old = np.asarray(index.get_items(replaced), dtype=np.float32)
            self._checksum = vector_checksum(replaced, old, self._checksum, sign=-1)
        fresh = sum(1 for label in labels if label not in self._live and label not in self._dead)
        needed = index.element_count + fresh
        if needed > index.get_max_elements():
            before = anonymous_mappings()
            index.resize_index(max(needed, 2 * index.get_max_elements()))
            self.collapsing = back_with_huge_pages(before, self._block_bytes(index), filled=True)
        if self._saved is not None:
            self._saved[1].update(labels)
        index.add_items(vectors, labels)
        self._checksum = vector_checksum(labels, vectors, self._checksum)
        self._live.update(labels)
        self._dead.difference_update(labels)
        self._tune()

    def _delete(self, ids: list[int]) -> None:
        """Mark rows deleted; unknown or already deleted ids are ignored."""
        index = self._require()
        labels = [int(i) for i in ids if int(i) in self._live]
        if not labels:
            return
        old = np.asarray(index.get_items(labels), dtype=np.float32)
        self._checksum = vector_checksum(labels, old, self._checksum, sign=-1)
        if self._saved is not None:
            self._saved[1].update(labels)
        for label in labels:
            index.mark_deleted(label)
            self._live.discard(label)
            self._dead.add(label)
        self._tune()

    def needs_compaction(self) -> bool:
        """True when over a quarter of the graph's nodes are deleted: time to rebuild."""
        return len(self._dead) > max(1000, len(self._live) // 3)

    def save(self, store: Store | None = None) -> bool:
        """Write the index to a new data file and then replace the sidecar, stamped with
        :attr:`applied_seq` (unique private temp files, fsync, rename); then forget the
        store's tombstones it now reflects. Searches go on meanwhile.

        Returns:
            False when it could not be written (disk full, permissions): the old pair is
            kept, and the next open replays the rest from the database.
        """
        with self._lock.gen_rlock():
            index = self._require()
            seq = self.applied_seq
            info = {"model_id": self.model_id, "dim": self.dim, "seq": seq,
                    "deleted": sorted(self._dead), "checksum": self._checksum}
            folder = self.path.parent
            data = folder / f"{self.path.stem}.{seq}.{secrets.token_hex(4)}.hnsw"
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                with replacing(data, durable=True) as temp:
                    index.save_index(str(temp))
                    digest, labels = scan(temp, self.dim)
                    info |= {"file": data.name, "size": temp.stat().st_size, "xxh3": digest}
                try:
                    write_atomically(self.sidecar, lambda f: f.write(json.dumps(info).encode()),
                                     durable=True)
                except OSError:
                    data.unlink(missing_ok=True)  # no sidecar names it
                    raise
            except (OSError, RuntimeError) as exc:
                log.warning("could not save the search index %s (%s); the previous file is "
                            "kept and will catch up from the library database", self.path, exc)
                return False
            previous, self.data_file, self.saved_seq = self.data_file, data, seq
            self._map_saved(data, labels)
            self._remove_old_data(previous)
        if store is not None:
            store.prune_tombstones(seq)
        return True

    def _remove_old_data(self, previous: Path | None) -> None:
        """Remove the data file this index replaced, and leftovers of crashed saves (any
        process's: data files no sidecar names, temp files)."""
        now = time.time()
        for item in self.path.parent.glob(f"{self.path.stem}.*"):
            if item in (self.data_file, self.sidecar):
                continue
            try:
                if item == previous or now - item.stat().st_mtime > ORPHAN_SECONDS:
                    item.unlink()
            except OSError:
                pass  # removed by another process meanwhile

    def _map_saved(self, data: Path, labels: np.ndarray | None) -> None:
        """Map the vectors of the data file just loaded or written (both under a lock that
        keeps :meth:`_add` out), with nothing changed since; None where it cannot be read
        that way."""
        try:
            self._saved = None if labels is None else (SavedVectors(data, self.dim, labels), set())
        except (OSError, ValueError) as exc:
            log.warning("search index %s: its vectors cannot be mapped (%s); a filtered "
                        "search reads them from the library database", data.name, exc)
            self._saved = None

    def _block_bytes(self, index: hnswlib.Index) -> int:
        """The bytes of hnswlib's level-0 block: per element, 2·M links of 4 bytes and
        their count, the vector and the label (``size_data_per_element_``)."""
        return index.get_max_elements() * (2 * index.M * 4 + 4 + 4 * self.dim + 8)

    # --- queries --------------------------------------------------------------------------

    def saved_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of *ids* ((n,) int64) as the saved file holds them, for those whose
        vector has not changed since it was written (:mod:`.hnsw_file`); the caller reads
        the others from the database.

        Returns:
            ((n,) bool: given here, (given, d) float32 vectors in the order of *ids*).
        """
        with self._lock.gen_rlock():
            if self._saved is None:
                return np.zeros(len(ids), bool), np.empty((0, self.dim), np.float32)
            saved, changed = self._saved
            held, vectors = saved.get(ids)
            if changed:
                fresh = np.isin(ids[held], np.fromiter(changed, np.int64, len(changed)))
                held[np.flatnonzero(held)[fresh]] = False
                vectors = vectors[~fresh]
            return held, vectors


    def count(self) -> int:
        """Number of live (not deleted) vectors."""
        return len(self._live)

    def ids(self) -> set[int]:
        """Labels (row ids) of the live vectors."""
        with self._lock.gen_rlock():
            return set(self._live)

    def search(self, query: np.ndarray, k: int,
               allowed: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k by cosine similarity.

        Args:
            query: (d,) float32, L2-normalised.
            k: number of results wanted (fewer come back when fewer vectors exist).
            allowed: the row ids a filter lets through (a filtered search, at
                :func:`ef_for` its share), or None for all.

        Returns:
            ((k',) int64 ids, (k',) float32 cosine similarities), best first.
        """
        # hnswlib's ef is the index's, not the query's: a filtered search, which sets its
        # own, holds the index alone meanwhile.
        lock = self._lock.gen_rlock() if allowed is None else self._lock.gen_wlock()
        with lock:
            index = self._require()
            k = min(k, self.count())
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if allowed is not None:
                index.set_ef(ef_for(len(self._live), self.ef, len(allowed) / len(self._live)))
            try:
                labels, distances = index.knn_query(
                    query.reshape(1, -1), k=k, filter=None if allowed is None else allowed.__contains__)
            except RuntimeError:
                # hnswlib raises when a filter leaves fewer than k reachable vectors.
                return np.empty(0, np.int64), np.empty(0, np.float32)
            finally:
                if allowed is not None:
                    self._tune()
            return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)

    def neighbours(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k of many queries at once (all cores).

        Args:
            queries: (n, d) float32, L2-normalised.
            k: neighbours per query (at most the index's size).

        Returns:
            ((n, k') int64 ids, (n, k') float32 cosine similarities), best first per row.
        """
        with self._lock.gen_rlock():
            index = self._require()
            k = min(k, self.count())
            if k <= 0 or not len(queries):
                return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0),
                                                                        np.float32)
            labels, distances = index.knn_query(queries, k=k)
            return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def set_ef(self, ef: int) -> None:
        """The query-time beam width (HNSW ``ef``) from now on, filtered searches too:
        higher finds more of the true nearest neighbours, slower; 0: by the index's size
        (:func:`ef_for`)."""
        with self._lock.gen_wlock():
            self.ef = ef
            self._tune()

    def _tune(self) -> None:
        """Set hnswlib's ``ef`` to :func:`ef_for` the live vectors (called with the lock)."""
        self._require().set_ef(ef_for(len(self._live), self.ef))

    def _require(self) -> hnswlib.Index:
        if self._index is None:
            raise RuntimeError("vector index is not open")
        return self._index
