"""Near-duplicate photos: exact copies (the same content hash) and near ones (embeddings
with cosine similarity at or above a threshold: resized or re-compressed copies, bursts),
grouped transitively (union-find), each group with a suggested photo to keep."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .query import Result

NEAR_COSINE = 0.99
"""Default threshold: Immich's duplicate detection default, a CLIP cosine distance of at
most 0.01 (``machineLearning.duplicateDetection.maxDistance``)."""


@dataclass
class DuplicateGroup:
    """Photos that are copies of one another, the suggested one to keep first (most
    pixels, then largest file, then earliest taken, then shortest path). ``exact`` is true
    when every photo has the same content hash."""

    photos: list[Result]
    exact: bool

    @property
    def keep(self) -> Result:
        return self.photos[0]


def group(ids: np.ndarray, neighbour_ids: np.ndarray, neighbour_scores: np.ndarray,
          hashes: dict[int, str], threshold: float = NEAR_COSINE) -> list[list[int]]:
    """Groups of row ids joined by an exact copy (same hash) or a neighbour pair with
    cosine ≥ *threshold*, transitively; only groups of two or more, largest first.

    Args:
        ids: (n,) int64 row ids of the photos considered.
        neighbour_ids, neighbour_scores: (n, k) int64 / float32 from
            :meth:`.index.vectors.VectorIndex.neighbours` for each of *ids*.
        hashes: row id → content hash, for every id.
        threshold: cosine similarity in [-1, 1].
    """
    parent = {int(i): int(i) for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    by_hash: dict[str, int] = {}
    for i in parent:
        first = by_hash.setdefault(hashes[i], i)
        if first != i:
            join(i, first)
    for i, row, scores in zip(ids, neighbour_ids, neighbour_scores):
        for j, score in zip(row, scores):
            if int(j) != int(i) and int(j) in parent and score >= threshold:
                join(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for i in parent:
        groups.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=len, reverse=True)


def keep_first(photos: list[Result]) -> list[Result]:
    """*photos* ordered so that the one to keep comes first (see :class:`DuplicateGroup`)."""
    def rank(r: Result):
        meta = r.meta
        pixels = (meta.get("width") or 0) * (meta.get("height") or 0)
        return (-pixels, -(meta.get("size") or 0), meta.get("taken_at") or "9999",
                len(r.path), r.path)
    return sorted(photos, key=rank)
