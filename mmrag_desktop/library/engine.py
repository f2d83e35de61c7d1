"""The engine API that the CLI and the GUI share. No Qt here.

An :class:`Engine` is one library: a config, a SQLite store and its HNSW cache, and the
model, loaded lazily on first need (so a status query or the GUI's first paint never waits
for it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..clip.embedder import query_vector
from ..clip.identity import ModelMismatchError, model_slug
from ..clip.model_files import configured_model_id
from ..core.config import Config, home_dir, load_config, make_private, save_config
from ..core.errors import MmragError
from ..core.paths import display_path, is_within, outermost, real_folder
from ..domain.concepts import BACKGROUND, TAGGED, ConceptError, Probe, learn, mentioned
from ..domain.duplicates import NEAR_COSINE, DuplicateGroup, group, keep_first
from ..domain.folders import Activity, FolderState, folder_states, library_photos
from ..domain.query import Filters, QueryError, Result, Term
from ..domain.schemas import Extraction
from ..domain.schemas import kind as extraction_kind
from ..domain.timeline import FolderNode, Timeline, folder_tree
from ..index import map as library_map
from ..index.captions import KIND as CAPTION_KIND
from ..index.captions import CaptionIndex
from ..index.frames import FrameIndex
from ..index.keyed import KeyedIndex
from ..index.keywords import KeywordIndex, fuse
from ..index.map import MapView
from ..index.vectors import VectorIndex
from ..store.database import Store
from ..store.writer_lock import WriterLock
from ..understanding.extraction import (
    EXTRACTION_VERSION,
    ExtractionError,
    extract,
    load_schema,
    record,
)
from ..understanding.passes import Progress as UnderstandProgress
from ..understanding.passes import UnderstandingPass, UnderstandReport, summary
from ..vlm.model import VisionLanguageModel
from .indexer import Indexer, IndexReport, Progress
from .scanner import Excluder

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..clip.embedder import Embedder
    from ..clip.hub import HubSource
    from ..clip.onnx_download import PublishedExport
    from ..clip.process import RemoteEmbedder

EXACT_SEARCH_LIMIT = 20_000
"""With a filter that leaves at most this many photos, search them exactly (one matrix
product) instead of walking the HNSW graph with a filter, which slows down and loses recall
when most nodes are filtered out."""

FEW_OFFLINE = 1000
"""Up to this many photos on offline roots are left out of an unfiltered search by asking
HNSW for that many more results and dropping them, keeping the search on the fast path."""

FRAME_CANDIDATES = 4
"""Keyframes asked of the frame index per result wanted: a video matches with several."""

SEARCH_MODES = ("semantic", "keyword", "hybrid")
SEARCH_FIELDS = ("image", "caption", "both")


class FolderError(MmragError, ValueError):
    """A folder cannot be added to the library as asked; the message says why."""


class Engine:
    """One photo library.

    A library has one writer at a time across processes (:class:`WriterLock`, held for each
    index run, folder removal or model switch); any number of readers, which bring their
    HNSW cache up to date with the database before each answer.

    Args:
        home: the app folder (config, models); default :func:`home_dir`.
        library: where ``library.db`` and ``index/`` live; default *home*, or
            ``home/random-weights`` with *random_weights* (so such runs never touch a
            library made with real weights).
        config: settings; default read from *home*.
        random_weights: use the configured architecture with random weights (benchmarks).
        embedder: an already loaded model to share (it must match *config*).
        read_only: never change the library (searches, status, questions): a model that
            differs from the library's raises :class:`ModelMismatchError` instead of
            switching the library to it.
        model_process: run the model in a helper process (:mod:`.clip.process`; the GUI:
            loading it then never holds this process's interpreter lock).

    Raises:
        ConfigError: the config file is invalid.
        LibraryVersionError: the library was written by a newer version.
        sqlite3.DatabaseError: the library database is not a database.
    """

    def __init__(self, home: Path | None = None, library: Path | None = None,
                 config: Config | None = None, random_weights: bool = False,
                 embedder: Embedder | RemoteEmbedder | None = None, read_only: bool = False,
                 model_process: bool = False):
        self.home = home or home_dir()
        self.config = config or load_config(self.home)
        self.library = library or (self.home / "random-weights" if random_weights else self.home)
        self.library.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private(self.library)
        self.store = Store(self.library / "library.db")
        self.lock = WriterLock(self.library)
        self.random_weights, self.read_only = random_weights, read_only
        self.model_process = model_process
        self.repairs: list[str] = []  # what opening had to repair, for the user to read
        # Told whom this engine waits for when another process is writing the library.
        self.on_wait: Callable[[str], None] | None = None
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._keywords: KeywordIndex | None = None
        self._captions: CaptionIndex | None = None
        self._frames: FrameIndex | None = None
        self._probes: dict[tuple, Probe] = {}  # (name, model, examples) → learned probe
        self._lock = threading.RLock()
        self._index_lock = threading.Lock()
        self._map_lock = threading.Lock()

    # --- lazily loaded parts --------------------------------------------------------------

    @property
    def embedder(self) -> Embedder | RemoteEmbedder:
        """The model (loaded on first use). Raises ModelMissingError without weights."""
        with self._lock:
            if self._embedder is None:
                if self.model_process:
                    from ..clip.process import RemoteEmbedder as Model
                else:
                    from ..clip.embedder import Embedder as Model
                self._embedder = Model(self.config, self.home, self.random_weights)
            return self._embedder

    @property
    def keywords(self) -> KeywordIndex:
        """The keyword (FTS5) index, a cache beside the library (see :mod:`.index.keywords`)."""
        with self._lock:
            if self._keywords is None:
                self._keywords = KeywordIndex(self.library / "keywords.db")
            return self._keywords

    @property
    def loaded_embedder(self) -> Embedder | RemoteEmbedder | None:
        """The model if this engine has one yet (never loads it)."""
        return self._embedder

    @property
    def vectors(self) -> VectorIndex:
        """The HNSW cache, opened (and repaired if need be) on first use, for the library's
        model. A writable engine whose model differs from the library's switches the
        library to it (the other model's embeddings are kept, see :meth:`Store.switch_model`).

        Raises:
            ModelMismatchError: a read-only engine's model is not the library's.
        """
        with self._lock:
            if self._vectors is None:
                # Known without loading the model: a run with nothing to embed, and a
                # search until it embeds its query, never wait for torch.
                model = (self._embedder.model_id if self._embedder else
                         configured_model_id(self.config, self.home, self.random_weights))
                self._use_model(model)
                path = self.library / "index" / (model_slug(model, "") + ".hnsw")
                self._clean_index_folder(path)
                dim = self.store.vector_width() or self.embedder.dim
                vectors = VectorIndex(path, dim, model, self.config.hnsw_m,
                                      self.config.hnsw_ef_construction, self.config.hnsw_ef)
                repair = vectors.open(self.store)
                if repair:
                    self.repairs.append(repair)
                self._vectors = vectors
            return self._vectors

    def _use_model(self, model: str) -> None:
        current = self.store.get_meta("model_id")
        if current == model or (current is None and self.read_only):
            return
        if self.read_only:
            raise ModelMismatchError(
                f"this library's photos were embedded with {current}, but the configured "
                f"model is {model}; run `mmrag index` to switch the library to it (the "
                "current embeddings are kept for switching back)")
        with self._writing("switching the model"):
            current = self.store.get_meta("model_id")  # another process may have switched
            if current == model:
                return
            restored, waiting = self.store.switch_model(current, model)
        if current is not None:
            self.repairs.append(
                f"model changed from {current} to {model}: {restored} photos have embeddings "
                f"from this model already, {waiting} will be embedded on the next index run")

    def _clean_index_folder(self, keep: Path) -> None:
        """Remove other models' caches (rebuilt from SQLite if ever needed); the index
        itself removes its own leftovers (see :meth:`VectorIndex.save`)."""
        if not keep.parent.is_dir():
            return
        for item in keep.parent.iterdir():
            if not item.name.startswith(keep.stem + "."):
                item.unlink(missing_ok=True)

    def sync(self) -> VectorIndex:
        """The HNSW cache, brought up to date with what any process committed.

        Raises:
            ModelMismatchError: another process switched the library to another model.
        """
        vectors = self.vectors
        if self.store.seq() != vectors.applied_seq:
            current = self.store.get_meta("model_id")
            if current != vectors.model_id:
                raise ModelMismatchError(
                    f"the library was switched to {current} by another process; restart "
                    f"to use it, or set the model back to {vectors.model_id}")
            vectors.catch_up(self.store)
        return vectors

    # --- folders --------------------------------------------------------------------------

    def add_folder(self, folder: str | os.PathLike) -> str:
        """Add a photo folder to the library's roots (persisted), by its real path. A
        folder that holds library folders replaces them (their photos stay, nothing is
        re-embedded). Returns the root's path. Quick: the next index run does the work.

        Raises:
            NotADirectoryError: *folder* is not an existing folder.
            FolderError: *folder* lies inside a library folder, or is the app's own folder.
        """
        path = real_folder(folder)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"not a folder: {display_path(os.fspath(folder))}")
        private = {real_folder(self.home), real_folder(self.library)}
        if any(is_within(path, p) for p in private):
            raise FolderError(f"{display_path(path)} is the app's own data folder")
        roots = [real_folder(r) for r in self.config.roots]
        if path in roots:
            return path
        for root in roots:
            if is_within(path, root):
                raise FolderError(
                    f"{display_path(path)} is inside {display_path(root)}, which is in the "
                    "library already: its photos are indexed with it")
        inside = [root for root in roots if is_within(root, path)]
        if inside:
            self.store.adopt(path)  # root labels only: no vector changes, no writer lock
        self.config.roots = [r for r in self.config.roots if real_folder(r) not in inside]
        self.config.roots.append(path)
        save_config(self.home, self.config)
        for root in inside:
            self.repairs.append(f"{display_path(path)} contains {display_path(root)}, which "
                                "it replaces as a library folder (its photos are kept)")
        return path

    def remove_folder(self, folder: str | os.PathLike) -> int:
        """Remove a root and its photos from the library (the files are not touched).
        Waits for an index run in progress to finish (see :meth:`Watcher.remove_folder`).
        Returns the number of photos removed."""
        path = self._root_of(folder)
        with self._index_lock, self._writing("removing a folder"):
            if path in self.config.roots:
                self.config.roots.remove(path)
                save_config(self.home, self.config)
            removed = self.store.delete_root(path)
            if self._vectors is not None:
                self.sync().save(self.store)
        return len(removed)

    def _root_of(self, folder: str | os.PathLike) -> str:
        """The configured root that *folder* names (by real path, as added), else its
        absolute path."""
        wanted = real_folder(folder) if os.path.exists(folder) else os.path.abspath(folder)
        for root in self.config.roots:
            if root == wanted or (os.path.exists(root) and real_folder(root) == wanted):
                return root
        return wanted

    # --- indexing -------------------------------------------------------------------------

    def index(self, roots: list[str] | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              cancel: threading.Event | None = None, stable_after: float = 0.0,
              allow_removal: bool = False,
              scope: dict[str, list[str]] | None = None) -> IndexReport:
        """Bring the library in line with *roots* (default: all configured roots), or with
        the folders ``scope[root]`` of them. See :meth:`Indexer.run` for interruption,
        offline roots, *stable_after*, *allow_removal* and *scope*. Waits while another
        process writes the library."""
        if self.read_only:
            raise RuntimeError("a read-only engine does not index")
        roots = [self._root_of(r) for r in (roots if roots is not None else self.config.roots)]
        # A hand-edited config may list a folder and a folder inside it: index each file once,
        # under the outer folder.
        outer = outermost(roots)
        for root in outer:
            if any(r != root and is_within(r, root) for r in roots):
                self.store.adopt(root)
        roots = outer
        excluder = Excluder(self.config.excludes, self.config.include_hidden,
                            private=[self.home, self.library])
        workers = self.config.decode_workers or os.cpu_count() or 2
        # Runs are serialised; searches are not blocked by them (SQLite WAL readers, and the
        # HNSW index takes its write lock only to apply each committed batch).
        self.vectors  # opened first: opening may take the writer lock to switch the model
        with self._index_lock, self._writing("indexing"):
            vectors = self.sync()
            indexer = Indexer(self.store, vectors, lambda: self.embedder, excluder,
                              self.config.batch_size, workers)
            report = indexer.run(roots, on_progress, cancel, stable_after, allow_removal, scope)
            if report.deleted or report.embedded or report.errors:  # contents may have gone
                self.store.forget_orphans()  # keyframes of videos deleted or changed
            return report

    def understand(self, on_progress: Callable[[UnderstandProgress], None] | None = None,
                   cancel: threading.Event | None = None,
                   paused: threading.Event | None = None,
                   vlm: VisionLanguageModel | None = None) -> UnderstandReport:
        """Run the understanding pass (:mod:`.understanding.passes`) over the photos that lack
        results of :attr:`Config.understand`'s analyses: resumable, cancelled by *cancel*
        after the photo under way, waiting while *paused* is set; captions by *vlm* (one
        from the config if None). Waits for an index run in progress only to forget what
        deleted photos left behind."""
        if self.read_only:
            raise RuntimeError("a read-only engine does not change the library")
        with self._index_lock, self._writing("understanding photos"):
            self.store.forget_orphans()
        return self.understanding_pass(vlm).run(on_progress, cancel, paused)

    def understanding_pass(self, vlm: VisionLanguageModel | None = None) -> UnderstandingPass:
        """The understanding pass for this library's configured analyses (see
        :meth:`understand`; :meth:`UnderstandingPass.pending` says what is left)."""
        if vlm is None and "captions" in self.config.understand:
            vlm = VisionLanguageModel(self.config)  # loads only when a caption is asked for
        return UnderstandingPass(self.store, self.config.understand,
                                 lambda: self._writing("understanding photos"), vlm)

    def extract(self, photo: str | os.PathLike, schema: str,
                vlm: VisionLanguageModel | None = None, again: bool = False,
                cancel: threading.Event | None = None) -> Extraction:
        """Structured extraction (:mod:`.understanding.extraction`) from a library photo by a built-in
        schema's name or a JSON schema file's path; stored by content (searchable, and
        returned from the library next time unless *again*). A text-only *vlm* reads the
        photo's recognised text.

        Raises:
            ExtractionError: unknown or invalid schema, the photo is not in the library, or
                a text-only model and no text recognised in it.
            StructuredOutputError, VLMError: see :func:`.understanding.extraction.extract`.
            BadImage, OSError: the photo cannot be read.
        """
        name, fields = load_schema(schema)
        path = str(Path(photo).resolve())
        digest = self.store.hash_of(path)
        if digest is None:
            raise ExtractionError(f"{display_path(path)} is not in the library: add its "
                                  "folder and index it first")
        known = self.store.understood([digest]).get(digest, {})
        stored = known.get(extraction_kind(name))
        if stored and not again:
            return Extraction(path, name, json.loads(stored[0])["value"], stored=True)
        vlm = vlm or VisionLanguageModel(self.config)
        answer = extract(vlm, Path(path), name, fields, known.get("text", ("", ""))[1], cancel)
        data, text = record(answer, name, Path(self.config.vlm_model).name)
        with self._writing("storing an extraction"):
            self.store.put_understanding(extraction_kind(name), EXTRACTION_VERSION,
                                         [(digest, data, text)])
        return Extraction(path, name, answer.value, repaired=answer.repaired)

    def extracted(self, schema: str) -> list[Extraction]:
        """Every stored extraction by *schema* (a name or a schema file's path), one per
        photo content (under one of its paths), for export.

        Raises:
            ExtractionError: see :func:`.understanding.extraction.load_schema`.
        """
        name, _ = load_schema(schema)
        rows = self.store.understanding_rows(extraction_kind(name))
        ids = self.store.ids_by_hash([digest for digest, _ in rows])
        details = self.store.details([found[0] for found in ids.values()])
        paths = {d["hash"]: d["path"] for d in details.values()}
        return [Extraction(paths[digest], name, json.loads(data)["value"], stored=True)
                for digest, data in rows if digest in paths]

    def _writing(self, activity: str):
        """The writer lock for *activity*, telling :attr:`on_wait` if another process has it."""
        return self.lock.hold(activity, on_wait=self.on_wait)

    # --- search ---------------------------------------------------------------------------

    def search(self, terms: list[Term], k: int = 20, min_score: float | None = None,
               filters: Filters | None = None, mode: str = "semantic",
               field: str = "both") -> list[Result]:
        """Top-k photos for a query of weighted texts and photos.

        *mode*: ``semantic`` ranks by the embeddings' cosine similarity; ``keyword`` by
        BM25 over the words of the query's texts (:mod:`.index.keywords`: file and folder names,
        camera, month and year, the text in the photo, its place's names, its caption and
        what was extracted from it); ``hybrid`` fuses both rankings by reciprocal-rank
        fusion (a query without words, a photo alone, is semantic).

        *field*: which of a photo's two vectors the semantic side searches: ``image`` (the
        pixels'), ``caption`` (its caption's, :mod:`.index.captions`; photos without one
        are not found), or ``both``, fused by reciprocal-rank fusion.

        A personal concept's name in a text (:mod:`.domain.concepts`: ``Rex at the beach``) ranks
        the library by the concept's probe; the rest of the text searches as above, and the
        rankings are fused by reciprocal-rank fusion (see :meth:`_concept_search`).

        Returns:
            Up to *k* results, best first, with metadata. ``score`` is the cosine similarity
            of the image vector (of the caption's with *field* ``caption``; None in
            keyword mode); a keyword match adds ``meta["matched"]``: the field and a snippet
            with the matched words in [brackets]; a caption match ``meta["caption_score"]``.

        Raises:
            QueryError: empty or unreadable query, an unknown mode or field, or keyword
                mode without words.
            ConceptError: a concept named in the query or the filters has no example
                with an embedding under the current model.
            ModelMissingError: no model weights.
            ModelMismatchError: the library holds another model's embeddings.
        """
        if mode not in SEARCH_MODES:
            raise QueryError(f"unknown search mode {mode!r}: {', '.join(SEARCH_MODES)}")
        filters = self._resolved(filters)
        names = self.store.concept_names()
        if names:
            found, terms = self._split_concepts(terms, names)
            if found:
                return self._concept_search(found, terms, k, min_score, filters, mode, field)
        if field not in SEARCH_FIELDS:
            raise QueryError(f"unknown search field {field!r}: {', '.join(SEARCH_FIELDS)}")
        words = " ".join(t.text for t in terms if t.text and t.weight > 0)
        if mode == "keyword":
            if not words:
                raise QueryError("a keyword search needs words")
            return self._keyword_search(words, k, filters)
        query = query_vector(self.embedder, terms)
        if field == "caption":
            semantic = [r for r in self._caption_search(query, k, filters)
                        if min_score is None or r.score >= min_score]
        else:
            semantic = self.search_vector(query, k, min_score, filters)
            if field == "both":
                semantic = self._fused(query, semantic, self._caption_search(query, k, filters),
                                       k)
        if mode == "semantic" or not words:
            return semantic
        return self._fused(query, semantic, self._keyword_search(words, k, filters), k)

    def _fused(self, query: np.ndarray, first: list[Result], second: list[Result],
               k: int) -> list[Result]:
        """Two rankings fused by reciprocal-rank fusion; a photo in both keeps what each
        says of it (its image cosine, why it matched). Each ranking ranks the candidates
        of both (Cormack et al.'s fusion of full rankings): *second*'s photos below
        *first*'s top-k follow it by their exact image cosine, so a photo that matches
        every word of a query is not tied with one that only looks similar."""
        if not second:
            return first
        found = {r.id: r for r in first}
        for hit in second:
            if hit.id in found:
                found[hit.id].meta = hit.meta | found[hit.id].meta
        missing = {r.id: r for r in second if r.id not in found}
        below, scores = self._exact(query, set(missing), len(missing))
        for row_id, score in zip(below.tolist(), scores.tolist()):
            found[row_id] = Result(row_id, missing[row_id].path, score, missing[row_id].meta)
        ranked = fuse([[r.id for r in first] + below.tolist(), [r.id for r in second]])
        return [found[row_id] for row_id, _ in ranked if row_id in found][:k]

    def captions(self) -> CaptionIndex:
        """The captions' vector index (:mod:`.index.captions`), brought up to date with
        the library's captions (embedding new ones with the text tower)."""
        captions = self._keyed_index("_captions", CaptionIndex, "captions")
        captions.catch_up(self.store, self.embedder.encode_texts)
        return captions

    def frames(self) -> FrameIndex:
        """The videos' keyframe index (:mod:`.index.frames`), brought up to date with the
        library's keyframes."""
        frames = self._keyed_index("_frames", FrameIndex, "frames")
        frames.catch_up(self.store)
        return frames

    def _keyed_index(self, attribute: str, kind: type[KeyedIndex], folder: str) -> KeyedIndex:
        """The engine's *kind* index of the library's model, opened from ``library/folder``
        the first time and again after a model change."""
        with self._lock:
            vectors = self.vectors
            index = getattr(self, attribute)
            if index is None or index.model_id != vectors.model_id:
                index = kind(self._model_cache(folder, vectors.model_id), vectors.model_id,
                             vectors.dim, self.config.hnsw_m, self.config.hnsw_ef_construction,
                             self.config.hnsw_ef)
                setattr(self, attribute, index)
            return index

    def _model_cache(self, folder: str, model_id: str) -> Path:
        """``library/folder/<model>.npz``, a cache of *model_id*'s; the folder's files of
        other models, and temp files of crashed saves, are removed (rebuilt if need be)."""
        path = self.library / folder / (model_slug(model_id, "") + ".npz")
        for other in path.parent.glob("*.npz"):
            if other != path:
                other.unlink(missing_ok=True)
        return path

    def _caption_search(self, query: np.ndarray, k: int,
                        filters: Filters | None) -> list[Result]:
        """Photos whose caption's vector is nearest *query*, best first, scored by that
        cosine (also ``meta["caption_score"]``); copies of a photo share its caption."""
        if not self.store.understanding_state(CAPTION_KIND)[0]:
            return []  # no captions: no text tower call, no file
        captions = self.captions()
        unfiltered = filters is None or filters.is_empty()
        hits = captions.search(query, 2 * k if unfiltered else max(50 * k, 1000))
        ids = self.store.ids_by_hash([digest for (digest, _), _ in hits], filters)
        ranked = [(row_id, score) for (digest, _), score in hits
                  for row_id in ids.get(digest, [])][:k]
        details = self._details([row_id for row_id, _ in ranked])
        return [Result(row_id, details[row_id]["path"], score,
                       details[row_id] | {"caption_score": score})
                for row_id, score in ranked if row_id in details]

    def _keyword_search(self, words: str, k: int,
                        filters: Filters | None) -> list[Result]:
        """BM25 over the words, fused by reciprocal-rank fusion with BM25 over the
        trigrams of recognised text (:meth:`KeywordIndex.search_text_fuzzy`)."""
        keywords = self.keywords
        keywords.catch_up(self.store)
        # Unfiltered, few hits are dropped (offline photos); filtered, rank every match.
        limit = k + FEW_OFFLINE if filters is None or filters.is_empty() else -1
        exact = keywords.search(words, limit)
        fuzzy = keywords.search_text_fuzzy(words, limit)
        allowed = self.store.ids_matching(filters, among=list({h.id for h in exact + fuzzy}))
        exact = [h for h in exact if h.id in allowed]
        fuzzy = [h for h in fuzzy if h.id in allowed]
        why = {h.id: h for h in fuzzy} | {h.id: h for h in exact}  # exact words say it best
        ranked = [row_id for row_id, _ in fuse([[h.id for h in exact],
                                                 [h.id for h in fuzzy]])][:k]
        details = self._details(ranked)
        return [Result(i, details[i]["path"], None, details[i] | {"matched": {
            "field": why[i].field, "snippet": why[i].snippet}})
            for i in ranked if i in details]

    def search_vector(self, query: np.ndarray, k: int = 20, min_score: float | None = None,
                      filters: Filters | None = None) -> list[Result]:
        """Top-k photos for a query embedding: (d,) float32, L2-normalised."""
        filters = self._resolved(filters)
        vectors = self.sync()
        offline = self.store.offline_ids(FEW_OFFLINE) if filters.is_empty() else None
        if offline is not None:
            ids, scores = vectors.search(query, k + len(offline))
            keep = ~np.isin(ids, np.asarray(offline, dtype=np.int64))
            ids, scores = ids[keep][:k], scores[keep][:k]
        else:
            allowed = self.store.ids_matching(filters)
            if len(allowed) <= EXACT_SEARCH_LIMIT:
                ids, scores = self._exact(query, allowed, k)
            else:
                ids, scores = vectors.search(query, k, allowed.__contains__)
        details = self._details([int(i) for i in ids])
        results = [Result(int(i), details[int(i)]["path"], float(s), details[int(i)])
                   for i, s in zip(ids, scores) if int(i) in details]
        results = self._moments(query, results, k, filters)
        if min_score is not None:
            results = [r for r in results if r.score >= min_score]
        return results

    def _moments(self, query: np.ndarray, results: list[Result], k: int,
                 filters: Filters) -> list[Result]:
        """*results* with the videos whose keyframes match *query* best (the frame index),
        every video scored by the cosine similarity of its best keyframe or of the whole
        (its keyframes' mean: a video as the query), whichever is higher, and given that
        keyframe's time in ``meta["moment"]`` (seconds); the top *k* of them all."""
        if not self.store.frame_state(self.vectors.model_id)[0]:
            return results  # no videos: no frame index to open
        hits = self.frames().search(query, FRAME_CANDIDATES * k if filters.is_empty()
                                    else max(50 * k, 1000))
        ids = self.store.ids_by_hash(list(dict.fromkeys(d for (d, _), _ in hits)), filters)
        found = {r.id: r for r in results}
        fresh = [i for same in ids.values() for i in same if i not in found]
        details = self._details(fresh)
        found.update((i, Result(i, details[i]["path"], None, details[i]))
                     for i in fresh if i in details)
        videos = [r for r in found.values() if r.meta.get("duration") is not None]
        whole = self._vectors_of(np.asarray([r.id for r in videos], np.int64)) @ query
        for result, score in zip(videos, whole.tolist()):
            times, vectors = self.store.frames_of(self.vectors.model_id, result.meta["hash"])
            if len(times):
                scores = vectors @ query
                best = int(np.argmax(scores))
                result.meta["moment"] = float(times[best])
                score = max(score, float(scores[best]))
            result.score = score
        ranked = [r for r in found.values() if r.score is not None]
        return sorted(ranked, key=lambda r: -r.score)[:k]

    # --- personal concepts (:mod:`.domain.concepts`) -------------------------------------------

    def label(self, name: str, paths: list[str], yes: bool = True) -> Probe:
        """Make the library photos *paths* examples of concept *name* (a new name makes a
        new concept), or with *yes* False counter-examples (rejected suggestions), and
        learn it again.

        Raises:
            ConceptError: no name, or a path the library has no embedded photo at.
        """
        name = " ".join(name.split())
        if not name:
            raise ConceptError("a concept needs a name")
        digests = []
        for path in paths:
            digest = self.store.hash_of(os.path.abspath(path))
            if digest is None:
                raise ConceptError(f"{path} is not an indexed photo of this library "
                                   "(add its folder and index it first)")
            digests.append(digest)
        with self._writing("learning a concept"):
            self.store.label_examples(name, digests, yes)
        return self.probe(name)

    def forget_concept(self, name: str, paths: list[str] | None = None) -> int:
        """Remove concept *name*, or only its examples at *paths*. Returns the examples
        removed.

        Raises:
            ConceptError: no such concept.
        """
        self._known_concept(name)
        digests = None if paths is None else [
            d for d in (self.store.hash_of(os.path.abspath(p)) for p in paths) if d]
        with self._writing("changing a concept"):
            return self.store.forget_concept(name, digests)

    def concepts(self) -> list[tuple[Probe | None, int, str]]:
        """Each concept: (its probe, photos tagged with it, why it has no probe: "" when
        learned), alphabetically."""
        out = []
        for name in self.store.concept_names():
            try:
                probe = self.probe(name)
            except ConceptError as exc:
                out.append((None, 0, str(exc)))
                continue
            out.append((probe, len(self._tagged(probe)), ""))
        return out

    def probe(self, name: str) -> Probe:
        """Concept *name* learned from its examples' embeddings under the library's model
        (:func:`.domain.concepts.learn`; kept until the examples or the model change).

        Raises:
            ConceptError: no such concept, or none of its examples has an embedding.
        """
        name = self._known_concept(name)
        examples = tuple(self.store.concept_examples(name))
        key = (name.casefold(), self.vectors.model_id, examples)
        if key not in self._probes:
            vectors = self.store.vectors_by_hash([digest for digest, _ in examples])
            dim = self.vectors.dim

            def stack(yes: bool) -> np.ndarray:
                found = [vectors[d] for d, y in examples if y == yes and d in vectors]
                return np.stack(found) if found else np.empty((0, dim), np.float32)

            background = self.store.sample_vectors(
                BACKGROUND, zlib.crc32(name.casefold().encode()), {d for d, _ in examples})
            probe = learn(name, stack(True), stack(False), background.reshape(-1, dim))
            for old in [k for k in self._probes if k[0] == key[0]]:  # learned from less
                del self._probes[old]
            self._probes[key] = probe
        return self._probes[key]

    def _known_concept(self, name: str) -> str:
        """*name* as the library spells it. Raises ConceptError for an unknown one."""
        for known in self.store.concept_names():
            if known.casefold() == " ".join(name.split()).casefold():
                return known
        raise ConceptError(f"no concept named “{name}” (mmrag concepts list)")

    def _tagged(self, probe: Probe) -> set[int]:
        """The embedded, online photos tagged with *probe*'s concept (probability ≥
        :data:`.domain.concepts.TAGGED` by their stored embedding, as :meth:`_tag` says): an HNSW
        search along its direction, widened until it reaches photos below the threshold."""
        floor, k, vectors = probe.cosine_for(TAGGED), 256, self.sync()
        while True:
            ids, scores = vectors.search(probe.direction, k)
            if len(ids) < k or scores[-1] < floor:
                return self.store.ids_matching(among=ids[scores >= floor].tolist())
            k *= 4

    def _resolved(self, filters: Filters | None) -> Filters:
        """*filters* with its concepts turned into the ids of the photos tagged with them
        (all of them)."""
        filters = filters or Filters()
        if not filters.concepts:
            return filters
        ids: set[int] | None = None
        for name in filters.concepts:
            tagged = self._tagged(self.probe(name))
            ids = tagged if ids is None else ids & tagged
        return dataclasses.replace(filters, concepts=[], ids=frozenset(ids or ()))

    @staticmethod
    def _split_concepts(terms: list[Term], names: list[str]) -> tuple[list[str], list[Term]]:
        """The concepts named in the positive text terms, and the terms without them."""
        found: list[str] = []
        rest: list[Term] = []
        for term in terms:
            if term.text is None or term.weight <= 0:
                rest.append(term)
                continue
            named, text = mentioned(term.text, names)
            found += [n for n in named if n not in found]
            if text:
                rest.append(dataclasses.replace(term, text=text))
        return found, rest

    def _concept_search(self, names: list[str], terms: list[Term], k: int,
                        min_score: float | None, filters: Filters, mode: str,
                        field: str) -> list[Result]:
        """Concepts fused with the rest of a query by reciprocal-rank fusion. Each side
        brings its top candidates; each ranking then ranks all of them (a concept by its
        probe, the text by its own order and then the image cosine), so a photo that is
        Rex *and* at the beach beats one that is only either. ``score`` is the rest of the
        query's cosine similarity, or with a concept alone its probability (then
        ``meta["scored_by"]`` names the concept); ``meta["concepts"]`` holds each
        concept's probability."""
        pool = max(10 * k, 200)
        probes = [self.probe(name) for name in names]
        found: dict[int, Result] = {}
        for probe in probes:
            for result in self.search_vector(probe.direction, pool, None, filters):
                found.setdefault(result.id, result)
        text = self.search(terms, pool, min_score, filters, mode, field) if terms else []
        for result in text:
            found[result.id] = result
        ids = np.asarray(list(found), np.int64)
        vectors = self._vectors_of(ids)
        rankings = [ids[np.argsort(-(vectors @ probe.weights), kind="stable")].tolist()
                    for probe in probes]
        if terms:
            first = [r.id for r in text]
            ranked = set(first)
            query = query_vector(self.embedder, terms)
            rankings.append(first + [
                i for i in ids[np.argsort(-(vectors @ query), kind="stable")].tolist()
                if i not in ranked])
        chance = {probe.name: probe.probability(vectors) for probe in probes}
        row = {i: n for n, i in enumerate(ids.tolist())}
        out = []
        for row_id, _ in fuse(rankings)[:k]:
            result = found[row_id]
            result.meta["concepts"] = {name: float(p[row[row_id]]) for name, p in chance.items()}
            if not terms:
                result.score = result.meta["concepts"][probes[0].name]
                result.meta["scored_by"] = probes[0].name
            out.append(result)
        return out

    def photos(self, ids: list[int]) -> list[Result]:
        """Library photos by row id, in that order (ids no longer in the library left
        out), with their metadata and no score."""
        details = self._details(ids)
        return [Result(i, details[i]["path"], None, details[i]) for i in ids if i in details]

    def _details(self, ids: list[int]) -> dict[int, dict]:
        """:meth:`Store.details` with what the understanding pass learned of each photo
        (:func:`.understanding.passes.summary`: ``text``, ``place``)."""
        details = self.store.details(ids)
        understood = self.store.understood([d["hash"] for d in details.values() if d["hash"]])
        for item in details.values():
            item.update(summary(understood.get(item["hash"], {})))
        names = self.store.concept_names()
        if names and details:
            self._tag(details, names)
        return details

    def _tag(self, details: dict[int, dict], names: list[str]) -> None:
        """Add ``concepts``, {name: probability}, to each photo's details: the concepts it
        is tagged with (probability ≥ :data:`.domain.concepts.TAGGED`)."""
        probes = []
        for name in names:
            try:
                probes.append(self.probe(name))
            except ConceptError:
                continue  # no usable example yet: it tags nothing
        for ids, vectors in self.store.vectors(ids=list(details)):
            chances = {probe.name: probe.probability(vectors) for probe in probes}
            for n, row_id in enumerate(ids.tolist()):
                details[row_id]["concepts"] = {name: float(p[n]) for name, p in chances.items()
                                               if p[n] >= TAGGED}

    def understood(self, digest: str) -> dict[str, str]:
        """What the understanding pass learned of the photo with content hash *digest*
        (:func:`.understanding.passes.summary`: ``text``, ``place``; empty where nothing yet)."""
        return summary(self.store.understood([digest]).get(digest, {}))

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

    def duplicates(self, threshold: float = NEAR_COSINE,
                   neighbours: int = 10) -> list[DuplicateGroup]:
        """Groups of copies among the library's photos: the same content hash, or
        embeddings with cosine ≥ *threshold* among each photo's *neighbours* nearest (HNSW),
        joined transitively; largest groups first, the photo to keep first in each (see
        :mod:`.domain.duplicates`)."""
        vectors = self.sync()
        hashes = self.store.content_hashes()
        ids, found, scores = [], [], []
        for chunk_ids, chunk in self.store.vectors(ids=sorted(hashes)):
            near_ids, near_scores = vectors.neighbours(chunk, neighbours + 1)  # + itself
            ids.append(chunk_ids)
            found.append(near_ids)
            scores.append(near_scores)
        if not ids:
            return []
        groups = group(np.concatenate(ids), np.concatenate(found), np.concatenate(scores),
                       hashes, threshold)
        details = self.store.details([i for g in groups for i in g])
        out = []
        for members in groups:
            photos = keep_first([Result(i, details[i]["path"], 1.0, details[i])
                                 for i in members if i in details])
            out.append(DuplicateGroup(photos, len({hashes[i] for i in members}) == 1))
        return out

    def library_map(self) -> MapView:
        """The 2-D map of the library's embedded, online photos (:mod:`.index.map`),
        brought up to date (a full layout the first time and after many changes, else the
        new photos placed by their neighbours), with each photo's path and content hash."""
        with self._map_lock:
            vectors = self.sync()
            path = self._model_cache("map", vectors.model_id)
            previous = library_map.load(path, vectors.model_id)
            with self.store.snapshot():
                seq = self.store.seq()
                fresh = previous is None or previous.seq != seq
                live = np.asarray(sorted(self.store.ids_matching()), np.int64)
                chunks = list(self.store.vectors(after_seq=previous.seq)) \
                    if fresh and previous is not None else []
            if fresh:
                changed = (np.concatenate([c[0] for c in chunks]) if chunks else
                           np.empty(0, np.int64),
                           np.concatenate([c[1] for c in chunks]) if chunks else None)
                previous = library_map.update(previous, seq, live, changed, self._vectors_of,
                                              vectors.neighbours)
                library_map.save(path, vectors.model_id, previous)
        shown = np.isin(previous.ids, live)  # a cache of another seq may hold offline ones
        ids, xy = previous.ids[shown], previous.xy[shown]
        details = self.store.details(ids.tolist())
        return MapView(ids, xy, previous.method, [details[i]["path"] for i in ids.tolist()],
                       [details[i]["hash"] for i in ids.tolist()])

    def _vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored embeddings of *ids*, ``(n, d) float32``, in their order."""
        found = {}
        for chunk_ids, chunk in self.store.vectors(ids=ids.tolist()):
            found.update(zip(chunk_ids.tolist(), chunk))
        return np.stack([found[i] for i in ids.tolist()]) if len(ids) else \
            np.empty((0, self.vectors.dim), np.float32)

    # --- the model's files (the first-run assistant) ---------------------------------------

    @property
    def models_folder(self) -> Path:
        """Where downloaded and imported weights and ONNX exports are kept."""
        from ..clip.identity import models_dir
        return models_dir(self.home)

    @staticmethod
    def runs_torch() -> bool:
        """Whether torch models can run in this install (a bundle runs ONNX exports only)."""
        from ..clip.identity import has_torch
        return has_torch()

    def find_model(self) -> Path:
        """The configured model's weights file, or ONNX export folder, on this computer.

        Raises:
            ModelMissingError: neither is here (the message says how to get them).
        """
        from ..clip.model_files import find_model
        return find_model(self.config, self.home)

    def model_source(self) -> HubSource | tuple[PublishedExport, str]:
        """What a download of the configured model would fetch, with its size, before any
        download: the weights file on the Hugging Face hub where torch runs, else the
        published ONNX export and its URL (network: the hub's API or the exports list).

        Raises:
            OSError: the source cannot be reached or does not have the model.
        """
        from ..clip import hub as model_hub
        from ..clip import onnx_download
        return model_hub.hub_source(self.config) if self.runs_torch() else \
            onnx_download.find_published(self.config)

    def download_model(self, source: HubSource | tuple[PublishedExport, str]) -> Path:
        """Download what :meth:`model_source` found into :attr:`models_folder`; returns
        the weights file or export folder.

        Raises:
            OSError: the download failed or its SHA-256 did not match.
        """
        from ..clip import hub as model_hub
        from ..clip import onnx_download
        if isinstance(source, tuple):
            return onnx_download.download(*source, self.home)
        return model_hub.download_weights(self.config, self.home, lambda _source: True)

    def import_model(self, path: Path) -> Path:
        """Check that a weights file or ONNX export folder fits the configured model and
        runs, and copy it into :attr:`models_folder`; returns where it now lies.

        Raises:
            ModelMismatchError, ValueError, OSError: it does not fit, or cannot be read.
        """
        from ..clip.model_files import import_model
        return import_model(Path(path), self.config, self.home)

    # --- browsing -------------------------------------------------------------------------

    def browse(self, filters: Filters | None = None) -> Timeline:
        """The photos that pass *filters*, newest first, by month: what the GUI shows
        without a query."""
        return Timeline(self.store.timeline(self._resolved(filters)))

    def folder_tree(self) -> list[FolderNode]:
        """The library's folders that hold photos, one tree per root folder."""
        return folder_tree(list(self.config.roots), self.store.folder_counts())

    # --- status ---------------------------------------------------------------------------

    def folder_states(self, activity: Activity | None = None) -> list[FolderState]:
        """Each watched folder's state and photo counts (see :mod:`.domain.folders`);
        *activity* is what a running watcher knows."""
        return folder_states(list(self.config.roots), self.store.root_counts(), activity)

    def status(self) -> dict:
        """Photos in the library (:func:`.domain.folders.library_photos`), counts per state,
        roots, model and device (device only once the model is loaded). How far the
        understanding pass got is :meth:`UnderstandingPass.pending` (a count over the
        library, asked for only where it is shown)."""
        counts = self.store.counts()
        return {
            "home": str(self.home), "library": str(self.library),
            "roots": list(self.config.roots), "photos": library_photos(counts),
            "by_status": counts,
            "model": f"{self.config.model} ({self.config.pretrained})",
            "device": str(self._embedder.device) if self._embedder else None,
        }

    def close(self) -> None:
        if self._keywords is not None:
            self._keywords.close()
        self.store.close()
