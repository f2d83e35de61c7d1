"""Views over the whole library: groups of duplicates and the 2-D map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..domain.duplicates import NEAR_COSINE, DuplicateGroup, group, keep_first
from ..domain.query import Result
from ..index import map as library_map
from ..index.map import MapView

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from .facade import Library


class Analyses:
    """Duplicates and the map (``library.analyses``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    def duplicates(self, threshold: float = NEAR_COSINE,
                   neighbours: int = 10) -> list[DuplicateGroup]:
        """Groups of copies among the library's photos: the same content hash, or
        embeddings with cosine ≥ *threshold* among each photo's *neighbours* nearest (HNSW),
        joined transitively; largest groups first, the photo to keep first in each (see
        :mod:`.domain.duplicates`)."""
        vectors = self.lib.sync()
        hashes = self.lib.store.content_hashes()
        ids, found, scores = [], [], []
        for chunk_ids, chunk in self.lib.store.vectors(ids=sorted(hashes)):
            near_ids, near_scores = vectors.neighbours(chunk, neighbours + 1)  # + itself
            ids.append(chunk_ids)
            found.append(near_ids)
            scores.append(near_scores)
        if not ids:
            return []
        groups = group(np.concatenate(ids), np.concatenate(found), np.concatenate(scores),
                       hashes, threshold)
        details = self.lib.store.details([i for g in groups for i in g])
        out = []
        for members in groups:
            photos = keep_first([Result(i, details[i]["path"], 1.0, details[i])
                                 for i in members if i in details])
            out.append(DuplicateGroup(photos, len({hashes[i] for i in members}) == 1))
        return out

    def map(self) -> MapView:
        """The 2-D map of the library's embedded, online photos (:mod:`.index.map`),
        brought up to date (a full layout the first time and after many changes, else the
        new photos placed by their neighbours), with each photo's path and content hash."""
        with self.lib.map_lock:
            vectors = self.lib.sync()
            path = self.lib.model_cache("map", vectors.model_id)
            previous = library_map.load(path, vectors.model_id)
            with self.lib.store.snapshot():
                seq = self.lib.store.seq()
                fresh = previous is None or previous.seq != seq
                live = np.asarray(sorted(self.lib.store.ids_matching()), np.int64)
                chunks = list(self.lib.store.vectors(after_seq=previous.seq)) \
                    if fresh and previous is not None else []
            if fresh:
                changed = (np.concatenate([c[0] for c in chunks]) if chunks else
                           np.empty(0, np.int64),
                           np.concatenate([c[1] for c in chunks]) if chunks else None)
                previous = library_map.update(previous, seq, live, changed, self.lib.search.vectors_of,
                                              vectors.neighbours)
                library_map.save(path, vectors.model_id, previous)
        shown = np.isin(previous.ids, live)  # a cache of another seq may hold offline ones
        ids, xy = previous.ids[shown], previous.xy[shown]
        details = self.lib.store.details(ids.tolist())
        return MapView(ids, xy, previous.method, [details[i]["path"] for i in ids.tolist()],
                       [details[i]["hash"] for i in ids.tolist()])
