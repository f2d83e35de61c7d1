"""The videos' keyframes (:mod:`.media.video`) in their own HNSW index (:mod:`.index.keyed`; file
``frames/<model>.npz``), keyed (content hash, time in s): a query finds the moments that
match it, and so the video and the moment together."""

from __future__ import annotations

import numpy as np

from ..store.database import Store
from .keyed import Key, KeyedIndex


class FrameIndex(KeyedIndex):
    """Cosine-similarity top-k search over the keyframes' image embeddings, as the library
    stores them for :attr:`model_id`."""

    def _state(self, store: Store) -> tuple[int, int]:
        return store.frame_state(self.model_id)

    def _rows(self, store: Store, after_seq: int) -> list[tuple[str, float, bytes]]:
        return store.frame_rows(self.model_id, after_seq)

    def _keys_in(self, store: Store) -> set[Key]:
        return store.frame_keys(self.model_id)

    def _vectors(self, rows: list[tuple[str, float, bytes]]) -> tuple[list[Key], np.ndarray]:
        if not rows:
            return [], np.empty((0, self.dim), np.float32)
        return ([(digest, float(at)) for digest, at, _ in rows],
                np.stack([np.frombuffer(data, np.float32) for _, _, data in rows]))
