"""A photo's second vector: its caption (:mod:`.captions`) embedded by the CLIP text tower,
in its own HNSW index (hnswlib; Malkov & Yashunin, arXiv:1603.09320).

Two vectors per photo — the pixels' and the caption's — answer different questions: the
image vector knows what the photo looks like, the caption's what a model said is in it
(names of things, actions, the text it read). The engine searches either alone or fuses
both rankings by reciprocal-rank fusion (:meth:`.engine.Engine.search`).

The index is a derived cache of the library's captions and the model: labels are content
hashes mapped to integers, so a moved photo or a copy shares its caption's vector. It is
brought up to date from the captions stored after the ``seq`` it last saw (embedding only
those), forgets captions the library forgot, and saves its vectors in the library's
``captions/<model>.npz`` (written to a temp file and renamed: a crash leaves the old file or
the new one); a missing, damaged or other model's file is rebuilt from the captions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import hnswlib
import numpy as np

from .paths import write_atomically
from .store import Store

log = logging.getLogger(__name__)

KIND = "caption"
ENCODE_BATCH = 64  # captions per call of the text tower


def caption_of(data: str) -> str:
    """The caption sentence in a caption result's JSON data ("" for a failed one)."""
    try:
        return str(json.loads(data).get("caption") or "").strip()
    except (ValueError, AttributeError):
        return ""


class CaptionIndex:
    """Cosine-similarity top-k search over the captions' text embeddings.

    Args:
        path: the saved vectors (``.npz``).
        model_id: the CLIP model that embeds them; a file of another model is rebuilt.
        dim: embedding dimension d.
        m, ef_construction, ef: HNSW parameters (the ``hnsw_*`` settings of
            :class:`.config.Config`).
    """

    def __init__(self, path: Path, model_id: str, dim: int, m: int, ef_construction: int,
                 ef: int):
        self.path, self.model_id, self.dim = path, model_id, dim
        self.m, self.ef_construction, self.ef = m, ef_construction, ef
        self._hashes: list[str] = []  # label → content hash
        self._labels: dict[str, int] = {}  # content hash → live label
        self._vectors = np.empty((0, dim), np.float32)  # by label; dead rows stay
        self._index: hnswlib.Index | None = None
        self._state = (0, 0)  # the store's understanding_state(KIND) this reflects
        self._lock = threading.Lock()
        self._load()

    def __len__(self) -> int:
        return len(self._labels)

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["model_id"]) != self.model_id or saved["vectors"].shape[1:] != (
                        self.dim,):
                    raise ValueError("made by another model")
                hashes, vectors = [str(h) for h in saved["hashes"]], saved["vectors"]
                state = (int(saved["state"][0]), int(saved["state"][1]))
        except FileNotFoundError:
            hashes, vectors, state = [], np.empty((0, self.dim), np.float32), (0, 0)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("caption index %s: %s; rebuilding from the captions", self.path, exc)
            hashes, vectors, state = [], np.empty((0, self.dim), np.float32), (0, 0)
        self._start(hashes, np.asarray(vectors, np.float32))
        self._state = state

    def _start(self, hashes: list[str], vectors: np.ndarray) -> None:
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=max(1024, len(hashes)), M=self.m,
                         ef_construction=self.ef_construction)
        index.set_ef(self.ef)
        if hashes:
            index.add_items(vectors, np.arange(len(hashes)))
        self._index, self._hashes, self._vectors = index, list(hashes), vectors
        self._labels = {digest: label for label, digest in enumerate(hashes)}

    def catch_up(self, store: Store, encode: Callable[[list[str]], np.ndarray]) -> None:
        """Add the captions stored since the last look, embedded by *encode* (texts →
        (n, d) float32, L2-normalised: the text tower), drop those the library forgot,
        and save. Cheap when nothing changed (one indexed count)."""
        with self._lock:
            state = store.understanding_state(KIND)
            if state == self._state:
                return
            if state[1] < self._state[1]:  # the library is older than this file
                self._start([], np.empty((0, self.dim), np.float32))
                self._state = (0, 0)
            with store.snapshot():
                rows = store.understanding_rows(KIND, after_seq=self._state[1])
                current = store.understanding_hashes(KIND)
            for digest in [d for d in self._labels if d not in current]:
                self._index.mark_deleted(self._labels.pop(digest))
            fresh = [(digest, caption_of(data)) for digest, data in rows]
            for digest, _ in fresh:
                if digest in self._labels:  # redone: the old vector goes
                    self._index.mark_deleted(self._labels.pop(digest))
            fresh = [(digest, text) for digest, text in fresh if text]
            for start in range(0, len(fresh), ENCODE_BATCH):
                part = fresh[start:start + ENCODE_BATCH]
                self._add([d for d, _ in part], encode([t for _, t in part]))
            if len(self._hashes) > 2 * max(len(self._labels), 512):  # mostly dead: compact
                self._start(*self._live())
            self._state = state
            self._save()

    def _live(self) -> tuple[list[str], np.ndarray]:
        """(hashes, (n, d) vectors) of the live captions, in label order."""
        live = sorted(self._labels.items(), key=lambda item: item[1])
        return [d for d, _ in live], self._vectors[[label for _, label in live]]

    def _add(self, hashes: list[str], vectors: np.ndarray) -> None:
        first = len(self._hashes)
        labels = np.arange(first, first + len(hashes))
        if first + len(hashes) > self._index.get_max_elements():
            self._index.resize_index(max(first + len(hashes), 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, labels)
        self._hashes.extend(hashes)
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32)])
        self._labels.update(zip(hashes, labels.tolist()))

    def _save(self) -> None:
        hashes, vectors = self._live()
        try:
            write_atomically(self.path, lambda file: np.savez(
                file, model_id=np.asarray(self.model_id), hashes=np.asarray(hashes, dtype=str),
                vectors=vectors, state=np.asarray(self._state, dtype=np.int64)))
        except OSError as exc:  # a cache: the next look rebuilds what is missing
            log.warning("caption index %s not saved: %s", self.path, exc)

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The *k* captions nearest *query* ((d,) float32, L2-normalised; a text's or a
        photo's embedding): (content hash, cosine similarity), best first."""
        with self._lock:
            k = min(k, len(self._labels))
            if k == 0:
                return []
            self._index.set_ef(max(self.ef, k))
            labels, distances = self._index.knn_query(query.reshape(1, -1), k)
        return [(self._hashes[int(label)], 1.0 - float(distance))
                for label, distance in zip(labels[0], distances[0])]
