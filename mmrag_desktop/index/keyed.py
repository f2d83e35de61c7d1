"""An HNSW index (hnswlib; Malkov & Yashunin, arXiv:1603.09320) over vectors keyed by
content, beside the library's main one: the captions' text embeddings
(:mod:`.index.captions`) and the videos' keyframes (:mod:`.index.frames`).

Each is a derived cache of a table of the library and of the model: keys are (content
hash, time in seconds: a video's moment, 0 for anything else), so a moved photo or a copy
shares its entries. It is brought up to date from the rows stored after the ``seq`` it last
saw, forgets keys the library forgot, and saves its vectors in the library's
``<folder>/<model>.npz`` (written to a temp file and renamed: a crash leaves the old file or
the new one); a missing, damaged or other model's file is rebuilt from the library.
"""

from __future__ import annotations

import logging
import threading
import zipfile
import zlib
from pathlib import Path

import hnswlib
import numpy as np

from ..core.atomic import write_atomically
from ..store.database import Store

DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What reading a damaged (truncated, overwritten) ``.npz`` cache raises: numpy's loader
lets zipfile's and zlib's own errors through."""

log = logging.getLogger(__name__)

Key = tuple[str, float]
"""(content hash, time in s): what an entry is of."""


class KeyedIndex:
    """Cosine-similarity top-k search over keyed vectors. Subclasses say where the library
    keeps them: :meth:`_state`, :meth:`_rows`, :meth:`_keys` and :meth:`_vectors`.

    Args:
        path: the saved vectors (``.npz``).
        model_id: the CLIP model that made them; a file of another model is rebuilt.
        dim: embedding dimension d.
        m, ef_construction, ef: HNSW parameters (the ``hnsw_*`` settings of
            :class:`.core.config.Config`).
    """

    def __init__(self, path: Path, model_id: str, dim: int, m: int, ef_construction: int,
                 ef: int):
        self.path, self.model_id, self.dim = path, model_id, dim
        self.m, self.ef_construction, self.ef = m, ef_construction, ef
        self._keys: list[Key] = []  # label → key
        self._labels: dict[Key, int] = {}  # key → live label
        self._stored = np.empty((0, dim), np.float32)  # by label; dead rows stay
        self._index: hnswlib.Index | None = None
        self._seen = (0, 0)  # the library's _state() this reflects
        self._lock = threading.Lock()
        self._load()

    def __len__(self) -> int:
        return len(self._labels)

    # --- where the library keeps the vectors (subclasses) ----------------------------------

    def _state(self, store: Store) -> tuple[int, int]:
        """(entries, newest ``seq``) in the library: unchanged means nothing to do."""
        raise NotImplementedError

    def _rows(self, store: Store, after_seq: int) -> list:
        """The library's entries stored after *after_seq*, as :meth:`_vectors` reads them."""
        raise NotImplementedError

    def _keys_in(self, store: Store) -> set[Key]:
        """Every key the library holds now."""
        raise NotImplementedError

    def _vectors(self, rows: list, *args) -> tuple[list[Key], np.ndarray]:
        """*rows* as keys and (n, d) float32 L2-normalised vectors (rows that give none
        left out)."""
        raise NotImplementedError

    # --- the cache ------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["model_id"]) != self.model_id or saved["vectors"].shape[1:] != (
                        self.dim,):
                    raise ValueError("made by another model")
                keys = list(zip((str(h) for h in saved["hashes"]),
                                saved["times"].astype(float).tolist()))
                vectors = saved["vectors"]
                seen = (int(saved["state"][0]), int(saved["state"][1]))
        except FileNotFoundError:
            keys, vectors, seen = [], np.empty((0, self.dim), np.float32), (0, 0)
        except DAMAGED as exc:
            log.warning("%s: %s; rebuilding from the library", self.path, exc)
            keys, vectors, seen = [], np.empty((0, self.dim), np.float32), (0, 0)
        self._start(keys, np.asarray(vectors, np.float32))
        self._seen = seen

    def _start(self, keys: list[Key], vectors: np.ndarray) -> None:
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=max(1024, len(keys)), M=self.m,
                         ef_construction=self.ef_construction)
        index.set_ef(self.ef)
        if keys:
            index.add_items(vectors, np.arange(len(keys)))
        self._index, self._keys, self._stored = index, list(keys), vectors
        self._labels = {key: label for label, key in enumerate(keys)}

    def catch_up(self, store: Store, *args) -> None:
        """Add what the library stored since the last look (*args* go to
        :meth:`_vectors`), drop what it forgot, and save. Cheap when nothing changed (one
        indexed count)."""
        with self._lock:
            state = self._state(store)
            if state == self._seen:
                return
            if state[1] < self._seen[1]:  # the library is older than this file
                self._start([], np.empty((0, self.dim), np.float32))
                self._seen = (0, 0)
            with store.snapshot():
                rows = self._rows(store, self._seen[1])
                current = self._keys_in(store)
            for key in [k for k in self._labels if k not in current]:
                self._index.mark_deleted(self._labels.pop(key))
            keys, vectors = self._vectors(rows, *args)
            for key in keys:
                if key in self._labels:  # redone: the old vector goes
                    self._index.mark_deleted(self._labels.pop(key))
            if keys:
                self._add(keys, vectors)
            if len(self._keys) > 2 * max(len(self._labels), 512):  # mostly dead: compact
                self._start(*self._live())
            self._seen = state
            self._save()

    def _live(self) -> tuple[list[Key], np.ndarray]:
        """(keys, (n, d) vectors) of the live entries, in label order."""
        live = sorted(self._labels.items(), key=lambda item: item[1])
        return [k for k, _ in live], self._stored[[label for _, label in live]]

    def _add(self, keys: list[Key], vectors: np.ndarray) -> None:
        first = len(self._keys)
        labels = np.arange(first, first + len(keys))
        if first + len(keys) > self._index.get_max_elements():
            self._index.resize_index(max(first + len(keys), 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, labels)
        self._keys.extend(keys)
        self._stored = np.concatenate([self._stored, vectors.astype(np.float32)])
        self._labels.update(zip(keys, labels.tolist()))

    def _save(self) -> None:
        keys, vectors = self._live()
        try:
            write_atomically(self.path, lambda file: np.savez(
                file, model_id=np.asarray(self.model_id),
                hashes=np.asarray([h for h, _ in keys], dtype=str),
                times=np.asarray([t for _, t in keys], dtype=np.float64),
                vectors=vectors, state=np.asarray(self._seen, dtype=np.int64)))
        except OSError as exc:  # a cache: the next look rebuilds what is missing
            log.warning("%s not saved: %s", self.path, exc)

    def search(self, query: np.ndarray, k: int) -> list[tuple[Key, float]]:
        """The *k* entries nearest *query* ((d,) float32, L2-normalised: a text's or a
        photo's embedding): (key, cosine similarity), best first."""
        with self._lock:
            k = min(k, len(self._labels))
            if k == 0:
                return []
            self._index.set_ef(max(self.ef, k))
            labels, distances = self._index.knn_query(query.reshape(1, -1), k)
        return [(self._keys[int(label)], 1.0 - float(distance))
                for label, distance in zip(labels[0], distances[0])]
