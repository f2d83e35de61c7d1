"""The HNSW index (hnswlib): a derived, rebuildable cache of the embeddings in SQLite.

HNSW is the graph index of Malkov & Yashunin, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs" (arXiv:1603.09320);
``M``, ``ef_construction`` and ``ef`` are that paper's parameters. Labels are SQLite row ids.

On disk: ``<name>.hnsw`` and a JSON sidecar with the file's size and BLAKE2b hash, the model
id and the store's change ``seq`` it reflects. Opening checks the sidecar, replays the
changes committed after that ``seq``, and verifies the element count; any mismatch or a
missing, truncated or corrupt file means a rebuild from SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import hnswlib
import numpy as np

from .store import Store

log = logging.getLogger(__name__)

_MIN_CAPACITY = 1024


def _file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class VectorIndex:
    """Cosine-similarity top-k search over a library's embeddings.

    Args:
        path: the index file (``.hnsw``); the sidecar is ``.json`` beside it.
        dim: embedding dimension d.
        model_id: the model whose vectors the index holds.
        m, ef_construction, ef: HNSW parameters.
    """

    def __init__(self, path: Path, dim: int, model_id: str, m: int = 16,
                 ef_construction: int = 200, ef: int = 192):
        self.path = path
        self.sidecar = path.with_suffix(".json")
        self.dim, self.model_id = dim, model_id
        self.m, self.ef_construction, self.ef = m, ef_construction, ef
        self.saved_seq = 0
        self._index: hnswlib.Index | None = None
        # hnswlib does not report which labels are marked deleted, so both sets are kept
        # here and the deleted one is saved in the sidecar.
        self._live: set[int] = set()
        self._dead: set[int] = set()
        self._lock = threading.RLock()

    # --- open / rebuild -------------------------------------------------------------------

    def open(self, store: Store) -> str | None:
        """Load the cache and bring it up to date with *store*; rebuild it when it is
        missing, stale or corrupt.

        Returns:
            None when the file was sound, else a sentence saying what was repaired.
        """
        with self._lock:
            problem = self._load(store)
            if problem is None:
                return None
            log.warning("HNSW index %s: %s; rebuilding from the library database",
                        self.path.name, problem)
            count = self.rebuild(store)
            return f"search index {problem}: rebuilt from the library database ({count} photos)"

    def _load(self, store: Store) -> str | None:
        if not self.path.exists():
            if store.vector_count():
                return "missing"
            self.start_empty()
            self.saved_seq = store.seq()
            return None
        try:
            info = json.loads(self.sidecar.read_text())
            expected = (info["model_id"], info["dim"], info["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return "has no valid sidecar"
        if expected != (self.model_id, self.dim, self.path.stat().st_size):
            return "was made by another model or is truncated"
        if info.get("hash") != _file_hash(self.path):
            return "is corrupt (checksum mismatch)"
        index = hnswlib.Index(space="ip", dim=self.dim)
        try:
            index.load_index(str(self.path))
        except (RuntimeError, MemoryError, ValueError) as exc:
            return f"could not be loaded ({exc})"
        index.set_ef(self.ef)
        self._index, self.saved_seq = index, int(info["seq"])
        self._dead = {int(i) for i in info.get("deleted", [])}
        self._live = {int(i) for i in index.get_ids_list()} - self._dead
        self._replay(store, self.saved_seq)
        if self.count() != store.vector_count():
            return f"holds {self.count()} vectors but the library has {store.vector_count()}"
        return None

    def start_empty(self, capacity: int = _MIN_CAPACITY) -> None:
        """Start an empty in-memory index (it grows as vectors are added)."""
        with self._lock:
            self._index = self._new_index(capacity)
            self._live, self._dead = set(), set()

    def _new_index(self, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=capacity, M=self.m, ef_construction=self.ef_construction)
        index.set_ef(self.ef)
        return index

    def _replay(self, store: Store, after_seq: int) -> None:
        """Apply the store's changes committed after *after_seq* (crash catch-up)."""
        for row_id in store.tombstones_after(after_seq):
            self.delete([row_id])
        for ids, vectors in store.vectors(after_seq=after_seq):
            self.add(ids, vectors)

    def rebuild(self, store: Store) -> int:
        """Build a new index from every vector in *store* and save it. Returns its size."""
        with self._lock:
            self.start_empty(max(_MIN_CAPACITY, store.vector_count()))
            seq = store.seq()
            done = 0
            for ids, vectors in store.vectors():
                self.add(ids, vectors)
                done += len(ids)
            self.save(seq, store)
            return done

    # --- changes --------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace vectors. ids: (n,) int; vectors: (n, d) float32, L2-normalised.
        Re-adding a deleted id brings it back (hnswlib unmarks it)."""
        if len(ids) == 0:
            return
        with self._lock:
            index = self._require()
            labels = [int(i) for i in ids]
            fresh = sum(1 for label in labels if label not in self._live and label not in self._dead)
            needed = index.element_count + fresh
            if needed > index.get_max_elements():
                index.resize_index(max(needed, 2 * index.get_max_elements()))
            index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), labels)
            self._live.update(labels)
            self._dead.difference_update(labels)

    def delete(self, ids: list[int]) -> None:
        """Mark rows deleted; unknown or already deleted ids are ignored. Deleted slots are
        reclaimed when :meth:`needs_compaction` says so and the caller rebuilds."""
        with self._lock:
            index = self._require()
            for label in (int(i) for i in ids):
                if label in self._live:
                    index.mark_deleted(label)
                    self._live.discard(label)
                    self._dead.add(label)

    def needs_compaction(self) -> bool:
        """True when over a quarter of the graph's nodes are deleted: time to rebuild."""
        return len(self._dead) > max(1000, len(self._live) // 3)

    def save(self, seq: int, store: Store | None = None) -> None:
        """Write the index atomically (temp file, fsync, rename), then its sidecar, and
        forget the store's tombstones it now reflects."""
        with self._lock:
            index = self._require()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".hnsw.tmp")
            index.save_index(str(tmp))
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            info = {"model_id": self.model_id, "dim": self.dim, "seq": seq,
                    "size": self.path.stat().st_size, "hash": _file_hash(self.path),
                    "deleted": sorted(self._dead)}
            side_tmp = self.sidecar.with_suffix(".json.tmp")
            side_tmp.write_text(json.dumps(info))
            os.replace(side_tmp, self.sidecar)
            self.saved_seq = seq
        if store is not None:
            store.prune_tombstones(seq)

    # --- queries --------------------------------------------------------------------------

    def count(self) -> int:
        """Number of live (not deleted) vectors."""
        return len(self._live)

    def ids(self) -> set[int]:
        """Labels (row ids) of the live vectors."""
        with self._lock:
            return set(self._live)

    def search(self, query: np.ndarray, k: int,
               allowed: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k by cosine similarity.

        Args:
            query: (d,) float32, L2-normalised.
            k: number of results wanted (fewer come back when fewer vectors exist).
            allowed: optional predicate on row ids (filtered search).

        Returns:
            ((k',) int64 ids, (k',) float32 cosine similarities), best first.
        """
        with self._lock:
            index = self._require()
            k = min(k, self.count())
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            index.set_ef(max(self.ef, k))
            try:
                labels, distances = index.knn_query(query.reshape(1, -1), k=k, filter=allowed)
            except RuntimeError:
                # hnswlib raises when a filter leaves fewer than k reachable vectors.
                return np.empty(0, np.int64), np.empty(0, np.float32)
            return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)

    def _require(self) -> hnswlib.Index:
        if self._index is None:
            raise RuntimeError("vector index is not open")
        return self._index
