"""The engine API that the CLI and the GUI share. No Qt here.

An :class:`Engine` is one library: a config, a SQLite store and its HNSW cache, and the
model, loaded lazily on first need (so a status query or the GUI's first paint never waits
for it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Config, home_dir, load_config, save_config
from .indexer import Indexer, IndexReport, Progress
from .models import model_slug
from .scanner import Excluder
from .search import Filters, Result, Term, query_vector
from .store import OFFLINE, Store
from .vector_index import VectorIndex

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from .embedder import Embedder

EXACT_SEARCH_LIMIT = 20_000
"""With a filter that leaves at most this many photos, search them exactly (one matrix
product) instead of walking the HNSW graph with a filter, which slows down and loses recall
when most nodes are filtered out."""


class Engine:
    """One photo library.

    Args:
        home: the app folder (config, models); default :func:`home_dir`.
        library: where ``library.db`` and ``index/`` live; default *home*.
        config: settings; default read from *home*.
        random_weights: use the configured architecture with random weights (benchmarks).
        embedder: an already loaded model to share (it must match *config*).

    Raises:
        ConfigError: the config file is invalid.
        sqlite3.DatabaseError: the library database is not a database.
    """

    def __init__(self, home: Path | None = None, library: Path | None = None,
                 config: Config | None = None, random_weights: bool = False,
                 embedder: Embedder | None = None):
        self.home = home or home_dir()
        self.config = config or load_config(self.home)
        self.library = library or self.home
        self.library.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = Store(self.library / "library.db")
        self.random_weights = random_weights
        self.repairs: list[str] = []  # what opening had to repair, for the user to read
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._lock = threading.RLock()
        self._index_lock = threading.Lock()

    # --- lazily loaded parts --------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The model (loaded on first use). Raises ModelMissingError without weights."""
        with self._lock:
            if self._embedder is None:
                from .embedder import Embedder

                self._embedder = Embedder(self.config, self.home, self.random_weights)
            return self._embedder

    @property
    def vectors(self) -> VectorIndex:
        """The HNSW cache, opened (and repaired if need be) on first use. A library whose
        vectors came from another model forgets them here; the next index run re-embeds."""
        with self._lock:
            if self._vectors is None:
                embedder = self.embedder
                previous = self.store.get_meta("model_id")
                if previous != embedder.model_id:
                    if previous is not None:
                        dropped = self.store.forget_vectors()
                        self.repairs.append(
                            f"model changed from {previous} to {embedder.model_id}: "
                            f"{dropped} photos will be re-embedded on the next index run")
                    self.store.set_meta("model_id", embedder.model_id)
                path = self.library / "index" / (model_slug(embedder.model_id, "") + ".hnsw")
                for stale in path.parent.glob("*"):
                    if not stale.name.startswith(path.stem + "."):
                        stale.unlink()  # caches of other models, leftover temp files
                vectors = VectorIndex(path, embedder.dim, embedder.model_id, self.config.hnsw_m,
                                      self.config.hnsw_ef_construction, self.config.hnsw_ef)
                repair = vectors.open(self.store)
                if repair:
                    self.repairs.append(repair)
                self._vectors = vectors
            return self._vectors

    # --- folders --------------------------------------------------------------------------

    def add_folder(self, folder: str | os.PathLike) -> str:
        """Add a photo folder to the library's roots (persisted). Returns its absolute path.

        Raises:
            NotADirectoryError: *folder* is not an existing folder.
        """
        path = os.path.abspath(folder)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"not a folder: {folder}")
        if path not in self.config.roots:
            self.config.roots.append(path)
            save_config(self.home, self.config)
        return path

    def remove_folder(self, folder: str | os.PathLike) -> int:
        """Remove a root and its photos from the library (the files are not touched).
        Waits for an index run in progress to finish (see :meth:`Watcher.remove_folder`).
        Returns the number of photos removed."""
        path = os.path.abspath(folder)
        if path in self.config.roots:
            self.config.roots.remove(path)
            save_config(self.home, self.config)
        with self._index_lock, self._lock:
            removed = self.store.delete_root(path)
            if self._vectors is not None:
                self._vectors.delete(removed)
                self._vectors.save(self.store.seq(), self.store)
        return len(removed)

    # --- indexing -------------------------------------------------------------------------

    def index(self, roots: list[str] | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              cancel: threading.Event | None = None, stable_after: float = 0.0) -> IndexReport:
        """Bring the library in line with *roots* (default: all configured roots).
        See :meth:`Indexer.run` for interruption, offline roots and *stable_after*."""
        roots = [os.path.abspath(r) for r in (roots if roots is not None else self.config.roots)]
        vectors = self.vectors
        excluder = Excluder(self.config.excludes, self.config.include_hidden)
        workers = self.config.decode_workers or os.cpu_count() or 2
        indexer = Indexer(self.store, vectors, lambda: self.embedder, excluder,
                          self.config.batch_size, workers)
        # Runs are serialised; searches are not blocked by them (SQLite WAL readers, and the
        # HNSW index locks only around each batch's insert).
        with self._index_lock:
            return indexer.run(roots, on_progress, cancel, stable_after)

    # --- search ---------------------------------------------------------------------------

    def search(self, terms: list[Term], k: int = 20, min_score: float | None = None,
               filters: Filters | None = None) -> list[Result]:
        """Top-k photos for a query of weighted texts and photos.

        Returns:
            Up to *k* results, best first, each with its cosine similarity and metadata.

        Raises:
            QueryError: empty or unreadable query.
            ModelMissingError: no model weights.
        """
        return self.search_vector(query_vector(self.embedder, terms), k, min_score, filters)

    def search_vector(self, query: np.ndarray, k: int = 20, min_score: float | None = None,
                      filters: Filters | None = None) -> list[Result]:
        """Top-k photos for a query embedding: (d,) float32, L2-normalised."""
        filters = filters or Filters()
        vectors = self.vectors
        if filters.is_empty() and not self.store.any_with_status(OFFLINE):
            ids, scores = vectors.search(query, k)
        else:
            where, params = filters.sql()
            allowed = self.store.ids_matching(where, params)
            if len(allowed) <= EXACT_SEARCH_LIMIT:
                ids, scores = self._exact(query, allowed, k)
            else:
                ids, scores = vectors.search(query, k, allowed.__contains__)
        details = self.store.details([int(i) for i in ids])
        results = [Result(int(i), details[int(i)]["path"], float(s), details[int(i)])
                   for i, s in zip(ids, scores) if int(i) in details]
        if min_score is not None:
            results = [r for r in results if r.score >= min_score]
        return results

    def _exact(self, query: np.ndarray, ids: set[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        best_ids, best_scores = np.empty(0, np.int64), np.empty(0, np.float32)
        for chunk_ids, chunk in self.store.vectors(ids=sorted(ids)):
            best_ids = np.concatenate([best_ids, chunk_ids])
            best_scores = np.concatenate([best_scores, chunk @ query])
            if len(best_ids) > k:
                keep = np.argpartition(-best_scores, k)[:k]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.argsort(-best_scores)
        return best_ids[order], best_scores[order]

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict:
        """Counts per state, roots, model and device (device only once the model is loaded)."""
        counts = self.store.counts()
        return {
            "home": str(self.home), "library": str(self.library),
            "roots": list(self.config.roots), "photos": sum(counts.values()), "by_status": counts,
            "model": f"{self.config.model} ({self.config.pretrained})",
            "device": str(self._embedder.device) if self._embedder else None,
        }

    def close(self) -> None:
        self.store.close()
