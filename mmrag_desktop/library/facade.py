"""The one API that the CLI and the GUI share. No Qt here.

A :class:`Library` is one photo library: a config, a SQLite store and the caches rebuilt from
it (HNSW, keywords, captions, keyframes), and the model, loaded lazily on first need (so a
status query or the GUI's first paint never waits for it). What a caller does with it goes
through its services, each a small module holding the library (Anki's ``Collection`` and its
managers, ``pylib/anki/collection.py``): ``folders``, ``updates``, ``search``, ``concepts``,
``people``, ``albums``, ``analyses`` and ``model_files``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..clip.identity import ModelMismatchError, model_slug
from ..clip.model_files import configured_model_id
from ..core.config import Config, home_dir, load_config, make_private
from ..domain.folders import library_photos
from ..index.captions import CaptionIndex
from ..index.frames import FrameIndex
from ..index.keyed import KeyedIndex
from ..index.keywords import KeywordIndex
from ..index.vectors import VectorIndex
from ..store.database import Store
from ..store.writer_lock import WriterLock
from .albums import Albums
from .analyses import Analyses
from .concepts import Concepts
from .folders import Folders
from .model_files import ModelFiles
from .people import People
from .search import Search
from .updates import Updates

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..clip.embedder import Embedder
    from ..clip.process import RemoteEmbedder

Notice = Callable[[str, str], None]
"""``on_notice(kind, text)``: ``"repair"`` for what opening or a change had to repair or
replace, ``"wait"`` (text: who holds it) when another process is writing the library."""


class Library:
    """One photo library.

    A library has one writer at a time across processes (:class:`WriterLock`, held for each
    index run, folder removal or model switch); any number of readers, which bring their
    HNSW cache up to date with the database before each answer.

    Args:
        home: the app folder (config, models); default :func:`home_dir`.
        path: where ``library.db`` and ``index/`` live; default *home*, or
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
        on_notice: told what the user should read (:data:`Notice`); may be set later.

    Raises:
        ConfigError: the config file is invalid.
        LibraryVersionError: the library was written by a newer version.
        sqlite3.DatabaseError: the library database is not a database.
    """

    def __init__(self, home: Path | None = None, path: Path | None = None,
                 config: Config | None = None, random_weights: bool = False,
                 embedder: Embedder | RemoteEmbedder | None = None, read_only: bool = False,
                 model_process: bool = False, on_notice: Notice | None = None):
        self.home = home or home_dir()
        self.config = config or load_config(self.home)
        self.path = path or (self.home / "random-weights" if random_weights else self.home)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private(self.path)
        self.store = Store(self.path / "library.db")
        self.lock = WriterLock(self.path)
        self.random_weights, self.read_only = random_weights, read_only
        self.model_process = model_process
        self.on_notice = on_notice
        self.index_lock = threading.Lock()  # one index run (or folder removal) at a time
        self.map_lock = threading.Lock()
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._keywords: KeywordIndex | None = None
        self._captions: CaptionIndex | None = None
        self._frames: FrameIndex | None = None
        self._lock = threading.RLock()
        self.folders = Folders(self)
        self.updates = Updates(self)
        self.search = Search(self)
        self.concepts = Concepts(self)
        self.people = People(self)
        self.albums = Albums(self)
        self.analyses = Analyses(self)
        self.model_files = ModelFiles(self)

    def indexed_hashes(self, paths: list[str], error: type[Exception]) -> list[str]:
        """The content hash of the indexed photo at each of *paths*, in order.

        Raises:
            error: a path the library has no indexed photo at (the message says so).
        """
        digests = []
        for path in paths:
            digest = self.store.hash_of(os.path.abspath(path))
            if digest is None:
                raise error(f"{path} is not an indexed photo of this library "
                            "(add its folder and index it first)")
            digests.append(digest)
        return digests

    def notice(self, kind: str, text: str) -> None:
        """Tell :attr:`on_notice` (see :data:`Notice`), if set."""
        if self.on_notice is not None:
            self.on_notice(kind, text)

    def writing(self, activity: str):
        """The writer lock for *activity*; a wait for another process is a ``"wait"``
        notice."""
        return self.lock.hold(activity, on_wait=lambda holder: self.notice("wait", holder))

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
        """The keyword (FTS5) index, a cache beside the library (see :mod:`.index.keywords`);
        one that cannot be opened is rebuilt (:meth:`rebuild_keywords`)."""
        with self._lock:
            if self._keywords is None:
                try:
                    self._keywords = KeywordIndex(self.path / "keywords.db")
                except sqlite3.DatabaseError as exc:
                    return self.rebuild_keywords(exc)
            return self._keywords

    def rebuild_keywords(self, cause: Exception) -> KeywordIndex:
        """Throw the damaged keyword cache away and start a new one, which its next
        catch-up fills from ``library.db`` (the truth: nothing is lost); a ``"repair"``
        notice says so. Returns the new index."""
        path = self.path / "keywords.db"
        with self._lock:
            if self._keywords is not None:
                self._keywords.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            self._keywords = KeywordIndex(path)
        self.notice("repair", f"the keyword index ({path.name}, a cache) was damaged ({cause}): "
                              "rebuilt from the library")
        return self._keywords

    @property
    def loaded_embedder(self) -> Embedder | RemoteEmbedder | None:
        """The model if this library has one yet (never loads it)."""
        return self._embedder

    @property
    def loaded_vector_index(self) -> VectorIndex | None:
        """The HNSW cache if this library has opened it yet (never opens it)."""
        return self._vectors

    def vector_index(self) -> VectorIndex:
        """The HNSW cache, opened (and repaired if need be, a ``"repair"`` notice) on first
        use, for the library's model. A writable engine whose model differs from the library's switches the
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
                path = self.path / "index" / (model_slug(model, "") + ".hnsw")
                self._clean_index_folder(path)
                dim = self.store.vector_width() or self.embedder.dim
                vectors = VectorIndex(path, dim, model, self.config.hnsw_m,
                                      self.config.hnsw_ef_construction, self.config.hnsw_ef)
                repair = vectors.open(self.store)
                if repair:
                    self.notice("repair", repair)
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
        if current is not None and not self.random_weights:
            # Loaded before anything changes: weights that cannot be loaded (a truncated
            # file) stop here with one message, and the library stays on its model.
            self.embedder.load("image")
        with self.writing("switching the model"):
            current = self.store.get_meta("model_id")  # another process may have switched
            if current == model:
                return
            restored, waiting = self.store.switch_model(current, model)
        if current is not None:
            self.notice(
                "repair", f"model changed from {current} to {model}: {restored} photos have embeddings "
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
        vectors = self.vector_index()
        if self.store.seq() != vectors.applied_seq:
            current = self.store.get_meta("model_id")
            if current != vectors.model_id:
                raise ModelMismatchError(
                    f"the library was switched to {current} by another process; restart "
                    f"to use it, or set the model back to {vectors.model_id}")
            vectors.catch_up(self.store)
        return vectors

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
        """The library's *kind* index of the library's model, opened from ``library/folder``
        the first time and again after a model change."""
        with self._lock:
            vectors = self.vector_index()
            index = getattr(self, attribute)
            if index is None or index.model_id != vectors.model_id:
                index = kind(self.model_cache(folder, vectors.model_id), vectors.model_id,
                             vectors.dim, self.config.hnsw_m, self.config.hnsw_ef_construction,
                             self.config.hnsw_ef)
                setattr(self, attribute, index)
            return index

    def model_cache(self, folder: str, model_id: str) -> Path:
        """``library/folder/<model>.npz``, a cache of *model_id*'s; the folder's files of
        other models, and temp files of crashed saves, are removed (rebuilt if need be)."""
        path = self.path / folder / (model_slug(model_id, "") + ".npz")
        for other in path.parent.glob("*.*"):
            if other != path and other.suffix in (".npz", ".tmp"):
                other.unlink(missing_ok=True)
        return path

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict:
        """Photos in the library (:func:`.domain.folders.library_photos`), counts per state,
        roots, model and device (device only once the model is loaded). How far the
        understanding pass got is :meth:`UnderstandingPass.pending` (a count over the
        library, asked for only where it is shown)."""
        counts = self.store.counts()
        return {
            "home": str(self.home), "library": str(self.path),
            "roots": list(self.config.roots), "photos": library_photos(counts),
            "by_status": counts,
            "model": f"{self.config.model} ({self.config.pretrained})",
            "device": str(self._embedder.device) if self._embedder else None,
        }

    def close(self) -> None:
        if self._keywords is not None:
            self._keywords.close()
        self.store.close()
