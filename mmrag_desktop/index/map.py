"""A 2-D map of the library: each photo's embedding laid out on a plane so that photos
that look alike lie together.

The layout is UMAP (McInnes, Healy & Melville, 2018, "UMAP: Uniform Manifold Approximation
and Projection for Dimension Reduction", arXiv:1802.03426; the ``umap-learn`` package, cosine
metric) where it is installed and the library has at least :data:`MIN_UMAP` photos, else
the first two principal components (PCA, by SVD). A full layout of a large library is fitted
on a random sample of :data:`MAX_FIT` photos; the others, and photos added later, are placed
at the mean position of their nearest mapped neighbours in the HNSW index, so that an
update costs a neighbour query per photo instead of a new layout. When more than
:data:`REFIT_FRACTION` of the map was placed that way, the layout is fitted again.

The map is a derived cache (``map/<model>.npz`` in the library), like the indexes.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import write_atomically
from .keyed import DAMAGED

log = logging.getLogger(__name__)

MIN_UMAP = 50  # UMAP's neighbour graph (15 neighbours) wants more points than this
MAX_FIT = 50_000  # photos a full layout is fitted on; the rest are placed by neighbours
REFIT_FRACTION = 0.2
NEIGHBOURS = 8  # mapped neighbours a placed photo is put among


@dataclass
class LibraryMap:
    """Photo row ids ``(n,) int64`` and their positions ``(n, 2) float32`` in [0, 1]²;
    the ``method`` of the last full layout (``umap`` or ``pca``), the library ``seq`` the
    map reflects, and how many photos were ``placed`` by neighbours since that layout."""

    ids: np.ndarray
    xy: np.ndarray
    method: str
    seq: int
    placed: int = 0


@dataclass
class MapView:
    """What a map view shows: ``ids (n,) int64``, ``xy (n, 2) float32`` in [0, 1]², the
    layout ``method``, and each photo's ``paths`` and content ``hashes``."""

    ids: np.ndarray
    xy: np.ndarray
    method: str
    paths: list[str]
    hashes: list[str]


def umap_installed() -> bool:
    return importlib.util.find_spec("umap") is not None


def layout(vectors: np.ndarray) -> tuple[np.ndarray, str]:
    """Positions ``(n, 2) float32`` in [0, 1]² for embeddings ``(n, d) float32``,
    L2-normalised, and the method used (see the module)."""
    n = len(vectors)
    if n == 0:
        return np.empty((0, 2), np.float32), "pca"
    if n >= MIN_UMAP and umap_installed():
        import umap

        # a fixed seed: the same library gives the same map (UMAP is then single-threaded)
        reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0)
        return _unit(reducer.fit_transform(vectors)), "umap"
    centred = vectors - vectors.mean(axis=0)
    if n < 2:
        return np.full((n, 2), 0.5, np.float32), "pca"
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return _unit(centred @ components[:2].T), "pca"


def _unit(points: np.ndarray) -> np.ndarray:
    """*points* scaled into [0, 1]² with their aspect kept, centred."""
    points = np.asarray(points, np.float64)
    if points.shape[1] < 2:
        points = np.column_stack([points, np.zeros(len(points))])
    low, high = points.min(axis=0), points.max(axis=0)
    span = float((high - low).max()) or 1.0
    return ((points - (low + high) / 2) / span + 0.5).astype(np.float32)


def update(previous: LibraryMap | None, seq: int, live: np.ndarray,
           changed: tuple[np.ndarray, np.ndarray], all_vectors: Callable[[np.ndarray], np.ndarray],
           neighbours: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
           rng: np.random.Generator | None = None) -> LibraryMap:
    """The map for a library at *seq*.

    Args:
        previous: the map as it was (None: none yet).
        live: ``(n,) int64`` ids of the photos to map now.
        changed: ``(ids, vectors)`` embedded or changed since ``previous.seq``.
        all_vectors: ids → their ``(m, d)`` vectors (for a full layout).
        neighbours: ``(queries (q, d), k)`` → ``(ids (q, k), cosines)``, the HNSW search.
    """
    rng = rng or np.random.default_rng(0)
    if previous is not None:
        keep = np.isin(previous.ids, live) & ~np.isin(previous.ids, changed[0])
        mapped_ids, mapped_xy = previous.ids[keep], previous.xy[keep]
        todo = live[~np.isin(live, mapped_ids)]
        placed = previous.placed + len(todo)
        if len(mapped_ids) and placed <= REFIT_FRACTION * len(live):
            xy = _place(mapped_ids, mapped_xy, todo, changed, all_vectors, neighbours)
            return LibraryMap(np.concatenate([mapped_ids, todo]),
                              np.concatenate([mapped_xy, xy]), previous.method, seq, placed)
    fit = live if len(live) <= MAX_FIT else np.sort(rng.choice(live, MAX_FIT, replace=False))
    xy, method = layout(all_vectors(fit))
    rest = live[~np.isin(live, fit)]
    if len(rest):
        xy = np.concatenate([xy, _place(fit, xy, rest, (np.empty(0, np.int64), None),
                                        all_vectors, neighbours)])
        fit = np.concatenate([fit, rest])
    return LibraryMap(fit, xy, method, seq, len(rest))


def _place(mapped_ids: np.ndarray, mapped_xy: np.ndarray, todo: np.ndarray,
           changed: tuple[np.ndarray, np.ndarray | None],
           all_vectors: Callable[[np.ndarray], np.ndarray],
           neighbours: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
           ) -> np.ndarray:
    """Positions for *todo*: the mean of their mapped neighbours' (the centre if none)."""
    if len(todo) == 0:
        return np.empty((0, 2), np.float32)
    known = dict(zip(changed[0].tolist(), changed[1])) if changed[1] is not None else {}
    missing = [i for i in todo.tolist() if i not in known]
    if missing:
        known.update(zip(missing, all_vectors(np.asarray(missing, np.int64))))
    queries = np.stack([known[i] for i in todo.tolist()]).astype(np.float32)
    found, _ = neighbours(queries, NEIGHBOURS * 2)
    where = {int(i): n for n, i in enumerate(mapped_ids.tolist())}
    out = np.full((len(todo), 2), 0.5, np.float32)
    for row, ids in enumerate(found):
        near = [where[int(i)] for i in ids if int(i) in where][:NEIGHBOURS]
        if near:
            out[row] = mapped_xy[near].mean(axis=0)
    return out


def load(path: Path, model_id: str) -> LibraryMap | None:
    """The saved map, or None when missing, damaged or another model's."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["model_id"]) != model_id:
                return None
            return LibraryMap(saved["ids"].astype(np.int64), saved["xy"].astype(np.float32),
                              str(saved["method"]), int(saved["seq"]), int(saved["placed"]))
    except FileNotFoundError:
        return None
    except DAMAGED as exc:
        log.warning("library map %s: %s; computing it again", path, exc)
        return None


def save(path: Path, model_id: str, library_map: LibraryMap) -> None:
    """Write the map beside the library (:func:`.core.atomic.write_atomically`); a cache, so a
    failure is only logged."""
    try:
        write_atomically(path, lambda file: np.savez(
            file, model_id=np.asarray(model_id), ids=library_map.ids, xy=library_map.xy,
            method=np.asarray(library_map.method), seq=np.asarray(library_map.seq),
            placed=np.asarray(library_map.placed)))
    except OSError as exc:
        log.warning("library map %s not saved: %s", path, exc)
