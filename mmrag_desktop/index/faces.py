"""Nearest faces by face descriptor: which stored faces lie within a distance of each query
face. Exact (blocks of a matrix product) for up to :data:`EXACT_LIMIT` faces, an hnswlib
HNSW graph in L2 space above that, so that grouping a large library's new faces never
compares every face with every other."""

from __future__ import annotations

import hnswlib
import numpy as np

EXACT_LIMIT = 20_000
"""Up to this many faces, distances are computed exactly."""

NEIGHBOURS = 16
"""Faces asked of the HNSW graph per query face (only those within the radius are kept)."""

HNSW_M, HNSW_EF_CONSTRUCTION = 16, 100
"""The graph's ``M`` and ``ef_construction``: descriptors are 128-d and the radius is tight."""

_BLOCK = 2048


def within(queries: np.ndarray, base: np.ndarray, radius: float,
           k: int = NEIGHBOURS) -> list[list[tuple[int, float]]]:
    """For each query face, up to *k* ``(index into base, Euclidean distance)`` of the
    *base* faces within *radius*, nearest first.

    Args:
        queries: (m, 128) float32 face descriptors.
        base: (n, 128) float32 face descriptors.
        radius: the largest Euclidean distance kept.
    """
    if len(queries) == 0 or len(base) == 0:
        return [[] for _ in range(len(queries))]
    if len(base) <= EXACT_LIMIT:
        return _exact(queries, base, radius, k)
    graph = hnswlib.Index(space="l2", dim=base.shape[1])
    graph.init_index(max_elements=len(base), M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
    graph.add_items(base, np.arange(len(base)))
    graph.set_ef(max(2 * k, 64))
    labels, squared = graph.knn_query(queries, k=min(k, len(base)))
    distances = np.sqrt(np.maximum(squared, 0))
    return [[(int(j), float(d)) for j, d in zip(row, dist) if d <= radius]
            for row, dist in zip(labels, distances)]


def _exact(queries: np.ndarray, base: np.ndarray, radius: float,
           k: int) -> list[list[tuple[int, float]]]:
    out: list[list[tuple[int, float]]] = []
    base_norms = (base * base).sum(axis=1)
    for start in range(0, len(queries), _BLOCK):
        block = queries[start:start + _BLOCK]
        squared = ((block * block).sum(axis=1)[:, None] + base_norms[None, :]
                   - 2 * block @ base.T)
        distances = np.sqrt(np.maximum(squared, 0))
        for row in distances:
            near = np.flatnonzero(row <= radius)
            near = near[np.argsort(row[near], kind="stable")][:k]
            out.append([(int(j), float(row[j])) for j in near])
    return out
