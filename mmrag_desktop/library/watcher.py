"""Keeping the library in line with its folders while the app runs (watchdog).

File-system events only say *where* something changed; what changed is worked out by the
same incremental indexer as a manual run (size + mtime, then content hash), so creates,
edits, moves of files and whole folders, and deletes all take one path, and a move never
re-embeds. A run covers the folders the events named (a file's folder, a folder itself,
both ends of a move), not the whole root: a change in a library of a million photos
re-reads one folder. Events are coalesced per root: a run starts once a root has been quiet for
``settle`` seconds (or ``max_delay`` after its first event during a long burst), and files
written in the last ``settle`` seconds wait for the next run. A reconciliation run on start
finds what changed while the app was closed; a periodic rescan covers file systems that
deliver no events (network shares).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ..core.paths import outermost
from ..media.files import is_media_name
from ..store.database import describe_db_error
from .facade import Library
from .indexer import IndexReport, Progress
from .scanner import Excluder

log = logging.getLogger(__name__)

# Reading a photo to index it produces these events; they change nothing.
_IGNORED_EVENTS = {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}

WATCH_LIMIT_HELP = (
    "the system's limit on watched folders is reached (inotify); watching {root} by polling "
    "instead (slower to notice changes). To raise the limit: "
    "sudo sysctl fs.inotify.max_user_watches=524288 (add it to /etc/sysctl.conf to keep it)"
)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, root: str):
        self.watcher, self.root = watcher, root

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        if event.is_directory and event.event_type == EVENT_TYPE_MODIFIED:
            return  # a folder's mtime changes with each file event, which comes on its own
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        for path in paths:
            if self.watcher.relevant(path, self.root, event.is_directory):
                folder = path if event.is_directory else os.path.dirname(path)
                self.watcher.mark_dirty(self.root, None if folder == self.root else folder)


class Watcher:
    """Watches every root folder of *engine* and indexes what changes, on a thread of its own.

    Args:
        engine: the library.
        settle: seconds a root must be quiet, and a file unmodified, before indexing.
        max_delay: seconds after a root's first event by which a run starts even if
            events keep coming (a long copy).
        rescan_interval: seconds between full rescans of every root; 0 disables.
        on_report: called with each run's report and the roots it covered.
        on_message: called with messages for the user (fallback to polling, errors).
        on_progress: called with the progress events of each run (from its thread).
    """

    def __init__(self, engine: Library, settle: float = 1.0, max_delay: float = 10.0,
                 rescan_interval: float | None = None,
                 on_report: Callable[[IndexReport, list[str]], None] | None = None,
                 on_message: Callable[[str], None] | None = None,
                 on_progress: Callable[[Progress], None] | None = None):
        self.engine = engine
        self.settle, self.max_delay = settle, max_delay
        self.rescan_interval = (engine.config.rescan_interval if rescan_interval is None
                                else rescan_interval)
        self.on_report = on_report or (lambda report, roots: None)
        self.on_message = on_message or (lambda text: log.warning("%s", text))
        self.on_progress = on_progress
        self.excluder = Excluder(engine.config.excludes, engine.config.include_hidden,
                                 private=[engine.home, engine.path])
        self.failures: dict[str, str] = {}  # root → why its last run failed
        self._allow_removal: set[str] = set()  # roots whose mass removal the user confirmed
        self._observers: dict[str, BaseObserver] = {}
        self._dirty: dict[str, tuple[float, float]] = {}  # root → (first, last event time)
        self._scope: dict[str, set[str] | None] = {}  # root → folders to re-index (None: all)
        self._online: dict[str, bool] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._paused = threading.Event()  # the user's pause
        self._holds = 0  # pauses of others (a model answering), independent of the user's
        self._interrupt = threading.Event()  # cancels the run in progress (stop, pause, removal)
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.active_roots: list[str] = []  # the roots of the run in progress, if any
        self._running = False  # a run, or the delivery of its reports, is under way

    # --- events ---------------------------------------------------------------------------

    def relevant(self, path: str, root: str, is_directory: bool) -> bool:
        """Whether a change at *path* can matter to the library."""
        if path != root and self.excluder.skips_path(path, root):
            return False  # hidden, temporary (dot-files), excluded, or the app's own files
        return is_directory or path == root or is_media_name(Path(path))

    def mark_dirty(self, root: str, folder: str | None = None) -> None:
        """Note a change in *folder* below *root* (None: anywhere in it); a run of the
        folders noted follows once the root settles."""
        now = time.monotonic()
        with self._wake:
            first, _ = self._dirty.get(root, (now, now))
            self._dirty[root] = (first, now)
            folders = self._scope.get(root, set())
            self._scope[root] = None if folder is None or folders is None else folders | {folder}
            self._wake.notify()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching; a reconciliation run over every root comes first."""
        self._stop.clear()
        for root in self.engine.config.roots:
            self._dirty[root] = (0.0, 0.0)  # due at once
            self._scope[root] = None
        self._thread = threading.Thread(target=self._loop, name="mmrag-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; a run in progress stops after its current batch (nothing lost)."""
        self._stop.set()
        with self._wake:
            self._interrupt.set()
            self._wake.notify()
        if self._thread:
            self._thread.join(timeout)
        for observer in self._observers.values():
            observer.stop()
        for observer in self._observers.values():
            observer.join(timeout)
        self._observers.clear()

    def pause(self) -> None:
        """Stop indexing after the current batch; changes are still collected."""
        with self._wake:
            self._paused.set()
            self._interrupt.set()

    def resume(self) -> None:
        """Index again, continuing where the paused run stopped."""
        with self._wake:
            self._paused.clear()
            self._wake.notify()

    @property
    def paused(self) -> bool:
        """The user paused indexing."""
        return self._paused.is_set()

    def hold(self) -> Callable[[], None]:
        """Pause indexing for a while (the VLM answering wants every core) without touching
        the user's pause: indexing goes on only when neither holds it. Returns the release,
        which may be called once."""
        with self._wake:
            self._holds += 1
            self._interrupt.set()
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._wake:
                self._holds -= 1
                self._wake.notify()
        return release

    @property
    def holding(self) -> bool:
        """Indexing is held by :meth:`hold` (the user's pause aside)."""
        return self._holds > 0

    def _blocked(self) -> bool:
        return self._paused.is_set() or self._holds > 0

    def remove_folder(self, folder: str) -> int:
        """:meth:`.library.folders.Folders.remove` while watching: a run in progress stops after its
        current batch (other roots continue in the next run). Returns photos removed."""
        path = os.path.abspath(folder)
        with self._wake:
            self._dirty.pop(path, None)
            self._interrupt.set()
        return self.engine.folders.remove(path)

    def move_folder(self, old: str, new: str) -> int:
        """:meth:`.library.folders.Folders.move` while watching: a run in progress stops
        after its current batch; the moved folder is then indexed (its files checked).
        Returns the photos moved."""
        with self._wake:
            self._dirty.pop(old, None)
            self._interrupt.set()
        moved = self.engine.folders.move(old, new)
        self.mark_dirty(self.engine.folders.root_of(new))
        return moved

    def confirm_removal(self, root: str) -> None:
        """The user confirmed that the photos held back in *root* (see
        ``IndexReport.held_back``) are really gone: the next run of *root* removes them."""
        with self._wake:
            self._allow_removal.add(root)
        self.mark_dirty(root)  # the whole root

    def pending(self) -> set[str]:
        """Roots being indexed or waiting to be."""
        with self._wake:
            return set(self._dirty) | set(self.active_roots)

    def idle(self) -> bool:
        """True when no change is waiting to be indexed, no run is in progress and every
        finished run's report has been delivered."""
        with self._wake:
            return not self._dirty and not self._running

    # --- the worker thread ----------------------------------------------------------------

    def _loop(self) -> None:
        next_rescan = time.monotonic() + (self.rescan_interval or float("inf"))
        while not self._stop.is_set():
            if self._blocked():
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            self._sync_observers()
            due, scope = self._take_due()
            if due:
                self._run(due, scope)
                continue
            if time.monotonic() >= next_rescan:
                next_rescan = time.monotonic() + self.rescan_interval
                with self._wake:
                    self.active_roots = list(self.engine.config.roots)
                    self._running = True
                self._run(self.active_roots)
                continue
            with self._wake:
                self._wake.wait(timeout=min(self.settle, 1.0))

    def _take_due(self) -> tuple[list[str], dict[str, list[str]]]:
        """The roots due for a run, which becomes the run in progress, and the folders of
        each to cover (a root absent from the scope: all of it)."""
        now = time.monotonic()
        with self._wake:
            due = [root for root, (first, last) in self._dirty.items()
                   if now - last >= self.settle or now - first >= self.max_delay]
            scope = {}
            for root in due:
                del self._dirty[root]
                folders = self._scope.pop(root, None)
                if folders is not None:
                    scope[root] = outermost(sorted(folders))
            roots = self.engine.config.roots
            self.active_roots = [root for root in due if root in roots]  # not removed ones
            self._running = bool(self.active_roots)
            return self.active_roots, scope

    def _run(self, roots: list[str], scope: dict[str, list[str]] | None = None) -> None:
        reports: list[tuple[IndexReport, list[str]]] = []
        scope = scope or {}
        try:
            with self._wake:
                if self._blocked() or self._stop.is_set():
                    for root in roots:
                        self._requeue(root, scope)
                        self._dirty[root] = (0.0, 0.0)  # due as soon as indexing may go on
                    return
                self._interrupt.clear()
                confirmed = [root for root in roots if root in self._allow_removal]
                self._allow_removal.difference_update(confirmed)
            plain = [root for root in roots if root not in confirmed]
            for group, allow_removal in ((plain, False), (confirmed, True)):
                report = self._run_group(group, allow_removal, scope) if group else None
                if report is not None:
                    reports.append((report, group))
        finally:
            with self._wake:
                self.active_roots = []
            try:
                for report, group in reports:  # once the run is over: listeners see it finished
                    self.on_report(report, group)
            finally:
                with self._wake:
                    self._running = False

    def _requeue(self, root: str, scope: dict[str, list[str]]) -> None:
        """*root*'s folders of this run are to be covered again (the whole root if the run
        covered it all)."""
        for folder in scope.get(root) or [None]:
            self.mark_dirty(root, folder)

    def _run_group(self, roots: list[str], allow_removal: bool,
                   scope: dict[str, list[str]]) -> IndexReport | None:
        try:
            report = self.engine.updates.index(roots, self.on_progress, self._interrupt, self.settle,
                                               allow_removal, {r: scope[r] for r in roots if r in scope})
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive one failed run
            reason = describe_db_error(exc) if isinstance(exc, sqlite3.Error) else str(exc)
            for root in roots:
                self.failures[root] = reason
            self.on_message(f"indexing {', '.join(roots)} failed: {reason}")
            log.exception("watch run failed")
            return None
        for root in roots:
            self.failures.pop(root, None)
        if report.deferred or report.cancelled:
            for root in roots:  # files still being written, or an interrupted run: go on later
                self._requeue(root, scope)
        self.runs += 1  # after re-queuing: idle() is never true while work is left
        return report

    def _sync_observers(self) -> None:
        """Watch roots that are reachable; a root that appears or disappears is re-indexed
        (its photos go offline, or come back)."""
        for root in list(self.engine.config.roots):
            online = os.path.isdir(root)
            if self._online.get(root, online) != online:
                self.mark_dirty(root)
            self._online[root] = online
            observer = self._observers.get(root)
            if online and (observer is None or not observer.is_alive()):
                watching = self._watch(root)
                if watching is not None:
                    self._observers[root] = watching
            elif not online and observer is not None:
                observer.stop()
                del self._observers[root]
        for root in set(self._observers) - set(self.engine.config.roots):
            self._observers.pop(root).stop()

    def _watch(self, root: str) -> BaseObserver | None:
        """An event observer on *root*; a polling one when the OS watch limit is reached;
        None when the root cannot be watched now (tried again on the next pass)."""
        try:
            observer = Observer()
            observer.schedule(_Handler(self, root), root, recursive=True)
            observer.start()
            return observer
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                self.on_message(f"cannot watch {root}: {exc.strerror or exc}")
                return None
            self.on_message(WATCH_LIMIT_HELP.format(root=root))
        try:
            polling = PollingObserver(timeout=max(1.0, self.settle))
            polling.schedule(_Handler(self, root), root, recursive=True)
            polling.start()
            return polling
        except OSError as exc:
            self.on_message(f"cannot watch {root}: {exc.strerror or exc}")
            return None
