"""The GUI's only door to the engine: every engine call runs on a worker lane
(:mod:`.ops`), and every answer comes back on the GUI thread: the library's events as Qt
signals (napari style), a dialog's own request through :meth:`LibraryBridge.op` (Anki's
``CollectionOp`` style).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ...clip.identity import ModelFileError, ModelMissingError, check_weights_file
from ...core.config import Config, save_config
from ...core.paths import display_path
from ...domain.analyses import ANALYSES
from ...domain.folders import Activity
from ...domain.query import Filters, Term
from ...library.ask import Conversation
from ...library.export import export_photos
from ...library.facade import Library
from ...library.folders import FolderError
from ...library.indexer import IndexReport, Progress
from ...library.trash import TrashError, can_restore, move_to_trash, restore
from ...library.watcher import Watcher
from ...media import thumbnails
from ...media.files import is_media_name
from ...vlm.model import (
    LLAMA_MISSING,
    RECOMMENDED_FILES,
    RECOMMENDED_REPO,
    VisionLanguageModel,
    VLMSetupError,
    download_recommended,
    llama_installed,
    recommended_files,
    use_files,
)
from .ops import Lanes, Op

PROGRESS_INTERVAL = 0.1
"""Seconds between progress signals: more would only repaint the same label."""


class LibraryBridge(QObject):
    """Runs a :class:`Library` and its :class:`Watcher` for the GUI (``bridge.engine`` is the
    library).

    Signals carry plain library objects. ``searched(generation, results)`` answers
    :meth:`search`; an answer older than the latest request is not emitted.
    """

    model_ready = Signal(str)        # device
    model_missing = Signal(str)      # what to do
    progress = Signal(object)        # Progress
    indexed = Signal(object, list)   # IndexReport, roots
    message = Signal(str)
    searched = Signal(int, list)     # generation, list[Result]
    understood = Signal(int, object)  # generation, query_parser.Understood of its text
    search_failed = Signal(int, str)
    browsed = Signal(int, object)    # generation, timeline.Timeline
    folders = Signal(list)           # list[folder_states.FolderState]
    folder_tree = Signal(list)       # list[timeline.FolderNode], one per root
    cameras = Signal(list)           # [(camera model, make, photos)], most used first
    concepts = Signal(list)          # personal concepts' names
    albums = Signal(list)            # list[store.albums.AlbumRow], by name
    status = Signal(dict)            # Library.status()
    errors = Signal(str, list)       # root, [(path, reason)]
    paused_changed = Signal(bool)
    removal_held = Signal(str, int)  # root, photos that vanished at once (ask the user)
    folder_moved = Signal(object)    # folders.Move: a folder being added is a library folder moved
    answer_text = Signal(str)        # a streamed piece of an answer
    answer_photos = Signal(list)     # the photos an answer looks at, once chosen
    answered = Signal(object)        # answers.Answer
    answer_failed = Signal(str)
    duplicates = Signal(list)        # list[DuplicateGroup]
    trashed = Signal(list, bool)     # paths moved to the trash, whether undo can restore
    restored = Signal(list)          # paths put back from the trash
    vlm_needed = Signal(str)         # why Ask is not set up (the set-up page is the remedy)
    vlm_sizes = Signal(list)         # [(file, bytes or None)] of the recommended pair
    vlm_progress = Signal(int)       # bytes downloaded so far
    vlm_ready = Signal(str)          # the chosen pair, described
    vlm_failed = Signal(str)
    understanding = Signal(object)   # understanding.Progress, or None when the pass ends

    def __init__(self, engine: Library, settle: float = 1.0, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine
        engine.on_notice = self._notice
        self.settle = settle
        # lanes: "jobs" (library changes and refreshes, in order), "search" (searches and
        # browsing), "ask" (answers), "setup" (Ask's set-up: downloads, checks), "read"
        # (one-off reads for dialogs: previews, model files), "thumbnails" (two workers),
        # "understand" (the understanding pass)
        self.lanes = Lanes(workers={"thumbnails": 2})
        self._generation = 0
        self._adding: set[str] = set()  # folders queued to be added
        self._browsing = 0
        self._last_progress = 0.0
        self._last_phase = ""
        self.watcher = self._new_watcher()
        self.started = False
        self._offline: dict[str, str] = {}  # root → why its last run found it offline
        self.vlm = VisionLanguageModel(engine.config, self._hold_indexing)
        self.conversation: Conversation | None = None
        self._cancel_answer = threading.Event()
        self._cancel_download = threading.Event()
        # the understanding pass: one at a time, after index runs, paused with indexing
        self._understand_wanted = threading.Event()
        self._understand_paused = threading.Event()
        self._cancel_understand = threading.Event()
        self._last_understood = 0.0

    is_photo_name = staticmethod(is_media_name)  # whether a file name is a photo's or video's

    @property
    def thumbnail_folder(self) -> Path:
        return thumbnails.cache_dir(self.engine.home)

    @property
    def paste_folder(self) -> Path:
        """Where photos pasted as image data (screenshots) are saved to be searched with."""
        return thumbnails.paste_dir(self.engine.home)

    def _new_watcher(self) -> Watcher:
        return Watcher(self.engine, settle=self.settle, on_report=self._on_report,
                       on_message=self._watch_message, on_progress=self._on_progress)

    def _watch_message(self, text: str) -> None:
        self.message.emit(text)
        self._submit(self._refresh)  # a failed run changes its folders' states

    def _submit(self, fn, *args) -> None:
        self.lanes.submit("jobs", fn, *args)

    def op(self, fn: Callable[..., Any], *args, lane: str = "read") -> Op:
        """``fn(engine, *args)`` in the background (see :mod:`.ops`): add ``.success(...)``
        and ``.failure(...)``, then ``.run()``."""
        return Op(self.lanes, lane, lambda: fn(self.engine, *args))

    def library_map(self) -> Op:
        """The map of the library (:meth:`.library.analyses.Analyses.map`) on a lane of its own (a
        first layout takes a while); the op's result is a :class:`.index.map.MapView`."""
        return self.op(lambda engine: engine.analyses.map(), lane="map")

    def refresh_concepts(self) -> None:
        """Emit ``concepts`` again (a concept was made or removed)."""
        self._submit(lambda: self.concepts.emit(self.engine.concepts.names()))

    def label(self, name: str, paths: list[str], yes: bool) -> Op:
        """Make *paths* examples (*yes*) or rejected suggestions of concept *name*
        (:meth:`Library.label`, on the jobs lane: it writes the library); the op's result
        is the concept's new probe."""
        return self.op(lambda engine: engine.concepts.label(name, paths, yes), lane="jobs")

    def refresh_albums(self) -> None:
        """Emit ``albums`` again (an album was made, changed or removed)."""
        self._submit(lambda: self.albums.emit(self.engine.albums.all()))

    def mark(self, paths: list[str], rating: int | None = None,
             favourite: bool | None = None) -> Op:
        """Set the star *rating* (0–5) and/or *favourite* of the photos *paths* (None
        leaves it; :class:`.library.albums.Albums`), on the jobs lane."""
        def mark(engine: Library) -> None:
            if rating is not None:
                engine.albums.rate(paths, rating)
            if favourite is not None:
                engine.albums.favourite(paths, favourite)
        return self.op(mark, lane="jobs")

    def album_add(self, name: str, paths: list[str]) -> Op:
        """Put *paths* in album *name* (made when new), then emit ``albums``; the op's
        result is how many were new to it."""
        def add(engine: Library) -> int:
            added = engine.albums.add(name, paths, create=True)
            self.albums.emit(engine.albums.all())
            return added
        return self.op(add, lane="jobs")

    def album_remove(self, name: str, paths: list[str]) -> Op:
        """Take *paths* out of album *name*, then emit ``albums``."""
        def remove(engine: Library) -> int:
            removed = engine.albums.remove(name, paths)
            self.albums.emit(engine.albums.all())
            return removed
        return self.op(remove, lane="jobs")

    def export(self, paths: list[str], folder: str, max_side: int | None = None) -> Op:
        """Copy *paths* into *folder* (:func:`.library.export.export_photos`, made at most
        *max_side* pixels long where given) on the jobs lane; the op's result is the
        :class:`.library.export.ExportReport`."""
        return self.op(lambda _engine: export_photos(paths, folder, max_side), lane="jobs")

    def extract(self, path: str, schema: str) -> Op:
        """Structured extraction from *path* by *schema* (:meth:`Library.extract`) on Ask's
        lane, so that one model answers one thing at a time; the op's result is an
        :class:`.domain.schemas.Extraction`."""
        return self.op(lambda engine: engine.updates.extract(path, schema, self.vlm), lane="ask")

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the model in the background, then start watching (which indexes first).
        Emits ``model_ready`` or ``model_missing``."""
        self._submit(self._start)

    def _start(self) -> None:
        try:
            embedder = self.engine.embedder
            embedder.load()  # both towers: the first search and the first run start at once
            device = embedder.describe()
            self.engine.vector_index()  # opened (and repaired) now, not by the first search
        except ModelMissingError as exc:
            self.model_missing.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a broken model file, shown to the user
            self.model_missing.emit(f"The model could not be loaded: {exc}")
            return
        self.model_ready.emit(device)
        if not self.started:
            self.started = True
            self.watcher.start()
            self._evict(pasted=True)  # left by photos removed, or a crash, last time
        self._refresh()

    def _evict(self, pasted: bool = False) -> None:
        thumbnails.evict(self.engine.home, self.engine.folders.present, pasted)

    @staticmethod
    def check_weights(path: str) -> str | None:
        """Why *path* cannot be the ``weights`` setting (missing, another type, damaged),
        or None when it can (:func:`.clip.identity.check_weights_file`)."""
        try:
            check_weights_file(Path(path))
        except ModelFileError as exc:
            return str(exc)
        return None

    def apply_config(self, config: Config) -> None:
        """Save new settings and restart on them (the model reloads when it changed)."""
        self._submit(self._apply_config, config)

    def _apply_config(self, config: Config) -> None:
        self.watcher.stop()
        self._cancel_understand.set()  # it runs on the engine being replaced
        home, library, random_weights = self.engine.home, self.engine.path, \
            self.engine.random_weights
        same_model = all(getattr(config, k) == getattr(self.engine.config, k)
                         for k in ("model", "pretrained", "weights", "model_config", "device"))
        embedder = self.engine.loaded_embedder
        if embedder is not None and not same_model:
            embedder.close()
            embedder = None
        faces_off = "faces" in self.engine.config.understand and "faces" not in config.understand
        save_config(home, config)
        self.engine.close()
        self.engine = Library(home, library, config, random_weights, embedder,
                              model_process=self.engine.model_process, on_notice=self._notice)
        self.vlm.unload()
        self.vlm = VisionLanguageModel(config, self._hold_indexing)
        self.conversation = None
        self.watcher = self._new_watcher()
        self.started = False
        if faces_off:  # the privacy setting: nothing of faces is kept. On the pass's lane,
            # after the pass under way (told to stop above) has finished writing faces.
            self.lanes.submit("understand", self._forget_faces)
        self._start()

    def _forget_faces(self) -> None:
        forgotten = self.engine.people.forget()
        self.message.emit(f"Faces are off: {forgotten:,} faces and every person were deleted")
        self._submit(self._refresh)

    def close(self) -> None:
        """Stop watching (a run stops after its batch) and close the library. A job in
        progress (a settings change, a folder removal) finishes first."""
        self._cancel_answer.set()
        self._cancel_download.set()
        self._cancel_understand.set()
        self.lanes.close("ask", "setup", "read", "understand", "map")
        self.vlm.unload()
        self.lanes.close()
        self.watcher.stop()
        self._evict(pasted=True)
        self.engine.close()
        if self.engine.loaded_embedder is not None:
            self.engine.loaded_embedder.close()

    # --- indexing ---------------------------------------------------------------------------

    def _on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        if progress.phase != self._last_phase:
            self._last_phase = progress.phase
            self._submit(self._refresh)  # a run started or ended: folder states change
        if progress.phase == "index" and now - self._last_progress < PROGRESS_INTERVAL \
                and progress.done < progress.total:
            return
        self._last_progress = now
        self.progress.emit(progress)

    def _notice(self, kind: str, text: str) -> None:
        """The library's notices (:data:`.library.facade.Notice`), shown once each."""
        self.message.emit(f"Waiting for {text} to finish changing the library…"
                          if kind == "wait" else text)

    def _on_report(self, report: IndexReport, roots: list[str]) -> None:
        for root in roots:
            self._offline.pop(root, None)
        self._offline.update(report.offline_reasons)
        self.indexed.emit(report, roots)
        for root, count in report.held_back.items():
            self.removal_held.emit(root, count)
        if report.deleted:
            self._submit(self._evict)
        # On the job thread, like every refresh: one thread, so states arrive in order.
        self._submit(self._refresh)
        self.understand()

    def understand(self) -> None:
        """Run the understanding pass (:meth:`Library.understand`) in the background, once
        more after the one under way if that is running. Emits ``understanding`` with its
        progress, then None."""
        if not self.engine.config.understand or self._understand_wanted.is_set():
            return
        self._understand_wanted.set()
        self._cancel_understand.clear()
        self.lanes.submit("understand", self._understand)

    def _understand(self) -> None:
        self._understand_wanted.clear()
        try:
            report = self.engine.updates.understand(self._on_understanding, self._cancel_understand,
                                                    self._understand_paused, self.vlm)
        except Exception as exc:  # noqa: BLE001 - shown; the next run tries again
            self.message.emit(f"Could not understand photos (text, places, captions): {exc}")
            return
        finally:
            self.understanding.emit(None)
        for name, reason in report.unavailable.items():
            self.message.emit(f"{ANALYSES[name].doing} could not start: {reason}")
        if any(report.analysed.values()):
            self._submit(self._refresh)

    def _on_understanding(self, progress) -> None:
        now = time.monotonic()
        if now - self._last_understood >= PROGRESS_INTERVAL or progress.done == progress.total:
            self._last_understood = now
            self.understanding.emit(progress)

    def confirm_removal(self, root: str) -> None:
        """The user confirmed that the photos held back in *root* are gone for good."""
        self.watcher.confirm_removal(root)

    def pause(self) -> None:
        """Pause indexing after the current batch, and the understanding pass after its
        photo; changes are still collected."""
        self.watcher.pause()
        self._understand_paused.set()
        self.paused_changed.emit(True)
        self._submit(self._refresh)

    def resume(self) -> None:
        self.watcher.resume()
        self._understand_paused.clear()
        self.paused_changed.emit(False)
        self._submit(self._refresh)

    # --- folders ----------------------------------------------------------------------------

    def add_folder(self, folder: str, as_new: bool = False) -> None:
        """Add a root (on the jobs lane: it writes the config and the library); the watcher
        indexes it. Emits ``message`` when it cannot be added (not a folder, inside a
        library folder, the app's own folder) or replaces others, and ``folder_moved``
        instead of adding when *folder* looks like a missing library folder moved (unless
        *as_new*: the user said it is another folder)."""
        self._adding.add(folder)
        self._submit(self._add_folder, folder, as_new)

    def move_folder(self, old: str, new: str) -> None:
        """Library folder *old* was moved to *new* (see :meth:`Folders.move`)."""
        self._submit(self._move_folder, old, new)

    def _move_folder(self, old: str, new: str) -> None:
        try:
            moved = self.watcher.move_folder(old, new)
        except (OSError, FolderError) as exc:
            self.message.emit(str(exc))
            return
        self._offline.pop(old, None)
        self.message.emit(f"Moved the library folder {display_path(old)} to "
                          f"{display_path(new)} ({moved:,} photos, nothing read again)")
        self._refresh()

    def has_folders(self) -> bool:
        """Whether the library has folders, counting those being added."""
        return bool(self.engine.config.roots or self._adding)

    def _add_folder(self, folder: str, as_new: bool) -> None:
        try:
            move = None if as_new else self.engine.folders.moved_here(folder)
            if move is not None and move.new not in self.engine.config.roots:
                self.folder_moved.emit(move)
                return
            path = self.engine.folders.add(folder)
        except (NotADirectoryError, FolderError) as exc:
            self.message.emit(str(exc))
            return
        finally:
            self._adding.discard(folder)
        self.watcher.mark_dirty(path)
        self._refresh()

    def remove_folder(self, folder: str) -> None:
        """Remove a root and its photos from the library (never from disk)."""
        self._submit(self._remove_folder, folder)

    def _remove_folder(self, folder: str) -> None:
        removed = self.watcher.remove_folder(folder)
        self.message.emit(f"Removed {folder} from the library ({removed} photos; "
                          "the files were not touched)")
        self._refresh()

    def refresh(self) -> None:
        """Ask for ``folders`` and ``status`` again."""
        self._submit(self._refresh)

    def _refresh(self) -> None:
        activity = Activity(self.watcher.pending(), self.watcher.paused,
                            dict(self.watcher.failures), dict(self._offline), self.started)
        states = self.engine.folders.states(activity)
        self.folders.emit(states)
        self.folder_tree.emit(self.engine.folders.tree())
        self.status.emit(self.engine.status())
        self.cameras.emit(self.engine.folders.cameras())
        self.concepts.emit(self.engine.concepts.names())
        self.albums.emit(self.engine.albums.all())

    def list_errors(self, root: str) -> None:
        """Emit ``errors(root, [(path, reason)])``."""
        self._submit(lambda: self.errors.emit(root, self.engine.folders.errors(root=root)))

    # --- search -----------------------------------------------------------------------------

    def search(self, terms: list[Term], filters: Filters, k: int) -> int:
        """Start a search; returns its generation number (see ``searched``)."""
        self._generation += 1
        generation = self._generation
        self.lanes.submit("search", self._search, generation, terms, filters, k)
        return generation

    def browse(self, filters: Filters) -> int:
        """Ask for the library without a query (:meth:`Library.browse`); returns the request's
        generation (see ``browsed``; an answer older than the latest request is dropped)."""
        self._browsing += 1
        generation = self._browsing
        self.lanes.submit("search", self._browse, generation, filters)
        return generation

    def _browse(self, generation: int, filters: Filters) -> None:
        if generation == self._browsing:
            timeline = self.engine.search.browse(filters)
            if generation == self._browsing:
                self.browsed.emit(generation, timeline)

    def _search(self, generation: int, terms: list[Term], filters: Filters, k: int) -> None:
        if generation != self._generation:
            return  # superseded while queued
        text = " ".join(t.text for t in terms if t.text and t.weight > 0)
        try:
            self.understood.emit(generation, self.engine.search.understand(text))
            results = self.engine.search.run(terms, k, filters=filters, mode="hybrid")
        except Exception as exc:  # noqa: BLE001 - QueryError, a missing model, a bad photo
            self.search_failed.emit(generation, str(exc))
            return
        if generation == self._generation:
            self.searched.emit(generation, results)

    # --- questions (the local vision-language model) ----------------------------------------

    def ask(self, question: str, filters: Filters,
            photo: str | tuple[int, ...] | None = None) -> None:
        """Ask about one *photo* helped by the library, about chosen library photos (a
        tuple of row ids: the map's lasso), or about the library (a follow-up
        when a conversation about the same is open; see :meth:`new_conversation`). Streams
        ``answer_text``, then ``answered`` (an :class:`.domain.answers.Answer`)."""
        self._cancel_answer.clear()
        self.lanes.submit("ask", self._ask, question, filters, photo)

    def cancel_answer(self) -> None:
        self._cancel_answer.set()

    def new_conversation(self) -> None:
        self.conversation = None

    def _hold_indexing(self):
        """Hold the indexer while the model answers (both want every core); the user's own
        pause is left as it is."""
        return self.watcher.hold()

    def _ask(self, question: str, filters: Filters, photo: str | tuple[int, ...] | None) -> None:
        try:
            subject = Path(photo) if isinstance(photo, str) else None
            among = photo if isinstance(photo, tuple) else ()
            if self.conversation is None or \
                    (self.conversation.photo, self.conversation.among) != (subject, among):
                self.conversation = Conversation(self.engine, self.vlm, filters, subject, among)
            self.answered.emit(self.conversation.ask(question, self.answer_text.emit,
                                                     self._cancel_answer,
                                                     self.answer_photos.emit))
        except VLMSetupError as exc:
            self.vlm_needed.emit(self.vlm_status() or str(exc))
        except Exception as exc:  # noqa: BLE001 - VLMError, a bad photo, a missing model
            self.answer_failed.emit(str(exc))

    # --- duplicates -------------------------------------------------------------------------

    def find_duplicates(self, threshold: float) -> None:
        """Groups of copies (see :meth:`Library.duplicates`): ``duplicates``."""
        self._submit(lambda: self.duplicates.emit(self.engine.analyses.duplicates(threshold)))

    # --- the trash ----------------------------------------------------------------------------

    def trash(self, paths: list[str]) -> None:
        """Move photos to the system trash (the watcher then drops them from the library):
        ``trashed`` with what moved, ``message`` with what could not."""
        self._submit(self._move, move_to_trash, paths, self.trashed, can_restore())

    def restore(self, paths: list[str]) -> None:
        """Undo :meth:`trash`: ``restored`` with what came back, ``message`` otherwise."""
        self._submit(self._move, restore, paths, self.restored)

    def _move(self, move, paths: list[str], done: Signal, *extra) -> None:
        try:
            moved = move(paths)
        except TrashError as exc:
            moved = exc.done
            self.message.emit(str(exc))
        if moved:
            done.emit(moved, *extra)

    # --- setting up Ask (the vision-language model) -----------------------------------------

    # the recommended vision-language model: the hub repository and its two files
    vlm_recommended = (RECOMMENDED_REPO, RECOMMENDED_FILES)

    @staticmethod
    def vlm_can_run() -> bool:
        """Whether llama-cpp-python is installed (else :meth:`vlm_status` says how)."""
        return llama_installed()

    def vlm_status(self) -> str | None:
        """Why Ask is not set up yet (the remedy is the set-up page), or None when it is.
        Reads files only: nothing loads."""
        if not llama_installed():
            return LLAMA_MISSING
        if not self.engine.config.vlm_model:
            return ("Ask needs a vision-language model on this computer: download a small "
                    "one, or choose one you have.")
        return None

    def ask_vlm_sizes(self) -> None:
        """Ask the hub for the recommended pair's sizes (network, the user having clicked
        Download): ``vlm_sizes`` or ``vlm_failed``."""
        self.lanes.submit("setup", self._guarded, lambda: self.vlm_sizes.emit(
            [(f.name, f.size) for f in recommended_files()]))

    def download_vlm(self) -> None:
        """Download the recommended pair (the user agreed), then use it: ``vlm_progress``
        while it downloads, then ``vlm_ready`` or ``vlm_failed`` (also when cancelled)."""
        self._cancel_download.clear()

        def run() -> None:
            pair = download_recommended(self.engine.home, self.vlm_progress.emit,
                                        self._cancel_download)
            self._use_vlm(*pair)
        self.lanes.submit("setup", self._guarded, run)

    def cancel_vlm_download(self) -> None:
        self._cancel_download.set()

    def use_vlm_files(self, model: str, mmproj: str | None) -> None:
        """Check a local pair as ``mmrag vlm set`` does and use it: ``vlm_ready`` or
        ``vlm_failed``."""
        self.lanes.submit("setup", self._guarded, self._use_vlm, Path(model),
                                Path(mmproj) if mmproj else None)

    def _use_vlm(self, model: Path, mmproj: Path | None) -> None:
        info = use_files(self.engine.home, self.engine.config, model, mmproj)
        self.vlm.unload()  # the next question loads the new pair
        self.conversation = None
        self.vlm_ready.emit(f"{model.name} ({info.family}"
                            + (f", sees photos through {mmproj.name})" if mmproj else
                               ", text only: it cannot see photos)"))

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - VLMError, OSError, a cancelled download
            self.vlm_failed.emit(str(exc))
