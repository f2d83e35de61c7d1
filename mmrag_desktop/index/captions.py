"""A photo's second vector: its caption (:mod:`.understanding.captions`) embedded by the CLIP text tower,
in its own HNSW index (:mod:`.index.keyed`; file ``captions/<model>.npz``).

Two vectors per photo — the pixels' and the caption's — answer different questions: the
image vector knows what the photo looks like, the caption's what a model said is in it
(names of things, actions, the text it read). The engine searches either alone or fuses
both rankings by reciprocal-rank fusion (:meth:`.library.search.Search.run`). Only the captions
stored since the last look are embedded.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from ..store.database import Store
from .keyed import Key, KeyedIndex

KIND = "caption"
ENCODE_BATCH = 64  # captions per call of the text tower


def caption_of(data: str) -> str:
    """The caption sentence in a caption result's JSON data ("" for a failed one)."""
    try:
        return str(json.loads(data).get("caption") or "").strip()
    except (ValueError, AttributeError):
        return ""


class CaptionIndex(KeyedIndex):
    """Cosine-similarity top-k search over the captions' text embeddings, keyed (content
    hash, 0). :meth:`catch_up` takes the text tower: texts → (n, d) float32,
    L2-normalised."""

    def _state(self, store: Store) -> tuple[int, int]:
        return store.understanding_state(KIND)

    def _rows(self, store: Store, after_seq: int) -> list[tuple[str, str]]:
        return store.understanding_rows(KIND, after_seq=after_seq)

    def _keys_in(self, store: Store) -> set[Key]:
        return {(digest, 0.0) for digest in store.understanding_hashes(KIND)}

    def _vectors(self, rows: list[tuple[str, str]],
                 encode: Callable[[list[str]], np.ndarray]) -> tuple[list[Key], np.ndarray]:
        fresh = [((digest, 0.0), text) for digest, data in rows if (text := caption_of(data))]
        vectors = [encode([t for _, t in fresh[start:start + ENCODE_BATCH]])
                   for start in range(0, len(fresh), ENCODE_BATCH)]
        return ([key for key, _ in fresh],
                np.concatenate(vectors) if vectors else np.empty((0, self.dim), np.float32))
