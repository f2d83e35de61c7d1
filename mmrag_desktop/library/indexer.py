"""Incremental indexing: folders → scan → decode → embed in batches → SQLite → HNSW.

A file is re-read only when its size or mtime changed, and re-embedded only when its
content hash changed too. A file whose hash the library already holds is not decoded at
all: a missing row with that hash means a move or rename (the path is updated), a present
one an identical copy (its embedding is copied). Decoding runs on a thread pool that keeps
a few batches in flight, so the model never waits on the disk or the JPEG decoder.
Every batch is one SQLite transaction, so an interrupted run loses at most the batch in
progress and a rerun continues where it stopped.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..clip.identity import ModelFileError, ModelMissingError
from ..core.paths import is_within
from ..domain.folders import ERROR, OFFLINE, OK
from ..index.vectors import VectorIndex
from ..media.files import BadImage, file_hash, sample_digest
from ..media.photos import decode
from ..media.video import is_video, keyframe_pixels, mean_direction
from ..media.xmp import Xmp, sidecar_xmp
from ..store.database import Store
from ..store.photos import Row, meta_fields
from . import scanner
from .scanner import Excluder, FileStat, scan

if TYPE_CHECKING:
    from ..clip.embedder import Embedder

SAVE_INTERVAL = 120.0
"""Seconds between saves of the HNSW file during a long run (a crash replays the rest)."""

MASS_REMOVAL_MIN = 20
MASS_REMOVAL_FRACTION = 0.5
"""A run that finds at least this many of a folder's photos, and at least this fraction of
them, gone at once holds their removal: an unmounted drive, a share that is away or a
folder moved elsewhere looks the same as a deletion, and re-embedding everything on return
costs hours. They are kept (offline) until the user confirms (``allow_removal``)."""


@dataclass
class Progress:
    """A progress event. ``phase`` is ``scan`` (``done`` files found so far, ``total`` 0),
    ``index`` (``done`` of ``total`` files processed) or ``done``. ``rate`` in files per
    second, ``eta`` in seconds (None while unknown)."""

    phase: str
    done: int = 0
    total: int = 0
    rate: float = 0.0
    eta: float | None = None
    path: str = ""


@dataclass
class IndexReport:
    """What a run did. ``errors`` and ``skipped`` are (path, reason) pairs: errors are
    files recorded in the library as unreadable, skipped are ones that vanished or lay in
    unreadable folders. ``offline_reasons`` says why each offline root is offline;
    ``held_back`` counts, per root, photos that vanished in numbers that need the user's
    confirmation before they are removed. ``seconds`` is wall-clock time of the whole run."""

    found: int = 0
    unchanged: int = 0
    embedded: int = 0
    moved: int = 0
    copied: int = 0
    touched: int = 0
    deleted: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    offline_roots: list[str] = field(default_factory=list)
    offline_reasons: dict[str, str] = field(default_factory=dict)
    held_back: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    seconds: float = 0.0
    cancelled: bool = False


@dataclass
class _Job:
    file: FileStat
    row: Row | None  # the existing row at this path, if any


class _Survey:
    """What a comparison of the disk with the library found: files that need work (new,
    changed, or their row not embedded), rows whose files are gone, and the sizes of files
    left for a later run because they may still be being written (*stable_after*, s)."""

    def __init__(self, stable_after: float):
        self.jobs: list[_Job] = []
        self.missing: list[Row] = []
        self.deferred_sizes: set[int] = set()
        self.stamps: list[tuple[int, int, str | None]] = []  # (row id, changed_ns, sample)
        self.stable_ns = stable_after * 1e9
        self.now = time.time_ns()

    def sort(self, f: FileStat, row: Row | None, report: IndexReport) -> None:
        """Decide what *f* (with its row at the same path, if any) needs."""
        # A future mtime (clock skew, some imports) says nothing about being written now.
        if 0 <= self.now - max(f.mtime_ns, f.changed_ns) < self.stable_ns:
            report.deferred += 1
            self.deferred_sizes.add(f.size)
        elif row and row.status in (OK, ERROR) and (row.size, row.mtime_ns) == (f.size, f.mtime_ns) \
                and row.changed_ns in (None, f.changed_ns) and (sample := self._sample(f, row)) != "":
            # The inode's change time too: an editor or `touch -r` that keeps size and mtime
            # cannot keep it. (On Windows it is the creation time: a sample of the bytes decides.)
            report.unchanged += 1
            if row.changed_ns is None or sample != row.sample:  # read by an older version:
                self.stamps.append((row.id, f.changed_ns, sample))  # remembered from now on
        else:
            self.jobs.append(_Job(f, row))

    @staticmethod
    def _sample(f: FileStat, row: Row) -> str | None:
        """Where ``st_ctime`` is no change time: the file's sample digest when it matches the
        row's (or the row has none yet), ``""`` when it differs or cannot be read (re-read
        the file). None where the change time already decided."""
        if scanner.CTIME_IS_CHANGE_TIME:
            return None
        try:
            sample = sample_digest(f.path)
        except OSError:
            return ""
        return sample if row.sample in (None, sample) else ""


@dataclass
class _Result:
    job: _Job
    hash: str | None = None
    pixels: np.ndarray | None = None  # (n, 3, S, S) uint8 to embed: a photo, or keyframes
    times: list[float] | None = None  # a video's keyframe times, s
    vector: np.ndarray | None = None  # an embedding reused from identical content
    fields: dict = field(default_factory=dict)
    error: str | None = None
    sample: str | None = None  # sample_digest, where scans need it
    xmp: Xmp = Xmp()  # what other apps wrote: embedded, and a sidecar's over it


def _xmp(path: Path, embedded: Xmp) -> Xmp:
    sidecar = sidecar_xmp(path)
    return embedded if sidecar is None else sidecar.over(embedded)


class Indexer:
    """Brings a library's rows and vectors in line with its folders.

    Args:
        store: the library database.
        vectors: the HNSW cache (open).
        embedder: the model; only called when something needs embedding.
        excluder: which names the scan skips.
        batch_size: images per forward pass.
        workers: decoding threads (≥ 1).
    """

    def __init__(self, store: Store, vectors: VectorIndex, embedder: Callable[[], Embedder],
                 excluder: Excluder, batch_size: int = 32, workers: int = 2):
        self.store, self.vectors = store, vectors
        self._embedder_factory = embedder
        self.excluder = excluder
        self.batch_size, self.workers = batch_size, max(1, workers)

    def run(self, roots: list[str], on_progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None, stable_after: float = 0.0,
            allow_removal: bool = False,
            scope: dict[str, list[str]] | None = None) -> IndexReport:
        """Index *roots* (absolute folder paths, none inside another) incrementally; only
        the folders ``scope[root]`` of a root where given (what a watch event touched: the
        files there are scanned, and the library's rows there compared with them).

        A root that is not there (unplugged drive), is now an empty folder, or is on another
        device than when it was recorded (an empty mount point) has its rows marked offline,
        not deleted. When many of a root's photos vanish at once (see
        :data:`MASS_REMOVAL_MIN`), they are held offline too, unless *allow_removal*, which
        also accepts a root's new device. Ctrl-C (KeyboardInterrupt) or *cancel* stop the
        run after committing what was embedded so far; ``report.cancelled`` is then True.
        Files modified less than *stable_after* seconds ago may still be being written:
        they are left as they are (counted in ``report.deferred``) for a later run.

        The caller holds the library's writer lock and has brought ``vectors`` up to date.
        """
        started = time.monotonic()
        report = IndexReport()
        cancel = cancel or threading.Event()
        emit = on_progress or (lambda _p: None)
        present = []
        for root in roots:
            reason = self._offline_reason(root, allow_removal)
            if reason:
                self.store.set_status(root, OFFLINE, only=OK)
                report.offline_roots.append(root)
                report.offline_reasons[root] = reason
            else:
                present.append(root)
        for root in present:
            self.store.set_status(root, OK, only=OFFLINE)
        emit(Progress("scan", 0))  # from the first second: the folders are being read
        try:
            folders = {root: [os.path.normpath(f) for f in (scope or {}).get(root) or [root]]
                       for root in present}
            survey = self._survey(present, folders, report, emit, cancel, stable_after)
            if not cancel.is_set():
                self._process(present, survey, report, emit, cancel, allow_removal)
        except KeyboardInterrupt:
            cancel.set()
        finally:
            self.vectors.catch_up(self.store)
            # A watch run often changes nothing: then nothing is written.
            if self.vectors.applied_seq != self.vectors.saved_seq:
                self.vectors.save(self.store)
        report.cancelled = cancel.is_set()
        report.seconds = time.monotonic() - started
        emit(Progress("done", report.found, report.found))
        return report

    def _offline_reason(self, root: str, allow_removal: bool) -> str | None:
        """Why *root* must be treated as offline this run, or None when it is there."""
        try:
            st = os.stat(root)
        except OSError:
            return "not found"
        if not stat.S_ISDIR(st.st_mode):
            return "not a folder"
        recorded = self.store.root_device(root)
        if recorded is None or allow_removal:
            if recorded != st.st_dev:
                self.store.record_root(root, st.st_dev)
            return None
        if not self.store.has_rows(root):
            return None
        if recorded != st.st_dev:
            return ("on another disk than when it was added: is the drive unplugged, and "
                    "this its empty mount point? (run with --allow-removal if it moved)")
        try:
            with os.scandir(root) as entries:
                empty = next(entries, None) is None
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc}"
        if empty:
            return "empty: is the drive unplugged or the share not mounted?"
        return None

    def _survey(self, roots, folders, report, emit, cancel, stable_after) -> _Survey:
        """Compare the disk with the library folder by folder: which files need work, which
        rows' files are gone. Holds one folder's rows at a time, never the whole library's."""
        survey = _Survey(stable_after)
        listed: set[str] = set()
        unknown: list[str] = []  # unreadable: the rows in and below these stay as they are
        for listing in scan(roots, self.excluder, folders):
            if listing.error:
                report.skipped.append((listing.folder, listing.error))
                unknown.append(listing.folder)
                continue
            listed.add(listing.folder)
            rows = self.store.rows_in_folder(listing.folder)
            for path, why in listing.unreadable:
                report.skipped.append((path, why))
                unknown.append(path)  # a file, or a subfolder that could not be examined
                rows.pop(path, None)
            report.skipped += [(path, "broken symbolic link") for path in listing.broken_links]
            for f in listing.files:
                survey.sort(f, rows.pop(f.path, None), report)
            survey.missing += rows.values()
            before, report.found = report.found, report.found + len(listing.files)
            if report.found // 500 > before // 500:
                emit(Progress("scan", report.found))
            if cancel.is_set():
                return survey
        # Folders the library knows that the scan did not list: deleted, or now excluded.
        for root in roots:
            for start in folders[root]:
                for folder in self.store.folders_under(start):
                    if folder not in listed and not any(is_within(folder, u) for u in unknown):
                        survey.missing += self.store.rows_in_folder(folder).values()
        return survey

    def _process(self, roots, survey: _Survey, report, emit, cancel, allow_removal) -> None:
        total_rows = {root: self.store.row_count(root) for root in roots}  # the whole root's
        missing_by_hash: dict[str, list[int]] = {}
        for row in survey.missing:
            if row.hash:
                missing_by_hash.setdefault(row.hash, []).append(row.id)
        if survey.stamps:
            self.store.record_changed(survey.stamps)
        run = _Run(self, report, emit, cancel, len(survey.jobs), _Embedded(self.store),
                   missing_by_hash)
        run.process(survey.jobs)
        if not cancel.is_set():
            # A rename also counts as a recent change, so a moved photo may be among the
            # deferred files: a missing row of the same size waits for the run that can tell
            # a move (its embedding kept) from a deletion.
            gone = [r for r in survey.missing
                    if r.id not in run.claimed and r.size not in survey.deferred_sizes]
            if not allow_removal:
                gone = self._hold_mass_removals(roots, total_rows, gone, report)
            if gone:
                self.store.write_batch([], [], [r.id for r in gone])
                self.vectors.catch_up(self.store)
                report.deleted = len(gone)
            if self.vectors.needs_compaction():
                self.vectors.rebuild(self.store)

    def _hold_mass_removals(self, roots: list[str], total: dict[str, int], gone: list[Row],
                            report: IndexReport) -> list[Row]:
        """Mark offline, instead of deleting, the vanished rows of each root that lost
        many at once; return the rows still to delete."""
        by_root: dict[str, list[Row]] = {}
        for row in gone:
            root = next((r for r in roots if is_within(row.path, r)), "")
            by_root.setdefault(root, []).append(row)
        deleting: list[Row] = []
        for root, rows in by_root.items():
            if (root and len(rows) >= MASS_REMOVAL_MIN
                    and len(rows) >= MASS_REMOVAL_FRACTION * total.get(root, 0)):
                self.store.set_status(root, OFFLINE, ids=[r.id for r in rows])
                report.held_back[root] = len(rows)
            else:
                deleting += rows
        return deleting


class _Embedded:
    """Content hash → id of a row holding that content's embedding: the database's rows
    (an indexed lookup per file that needs work: a run never loads every hash of a large
    library), overlaid with this run's uncommitted view. Decoding threads read it."""

    def __init__(self, store: Store):
        self.store = store
        self._added: dict[str, int] = {}
        self._retired: set[int] = set()

    def get(self, digest: str) -> int | None:
        if digest in self._added:
            return self._added[digest]
        return next((i for i in self.store.ids_with_hash(digest) if i not in self._retired),
                    None)

    def add(self, digest: str, row_id: int) -> None:
        """*row_id* (committed) holds *digest*'s embedding."""
        self._added.setdefault(digest, row_id)

    def retire(self, row_id: int) -> None:
        """*row_id* is losing its embedding in this run (not committed yet)."""
        self._retired.add(row_id)
        for digest in [d for d, i in self._added.items() if i == row_id]:
            del self._added[digest]


class _Run:
    """State of one pass over the files that need work."""

    def __init__(self, indexer: Indexer, report: IndexReport, emit, cancel, total: int,
                 by_hash: _Embedded, missing_by_hash: dict[str, list[int]]):
        self.ix, self.report, self.emit, self.cancel = indexer, report, emit, cancel
        self.total, self.done = total, 0
        self.by_hash, self.missing_by_hash = by_hash, missing_by_hash
        # Embeddings of rows that lost them during this run (content changed, file gone),
        # by hash: the same content may turn up at another path later in the run.
        self.orphans: dict[str, tuple[dict, np.ndarray]] = {}
        self.claimed: set[int] = set()
        self.started = self.last_save = time.monotonic()
        self.embedder: Embedder | None = None
        self.batch: list[_Result] = []
        self.others: list[tuple[int | None, dict]] = []
        self.deleted: list[int] = []

    def process(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        self.embedder = self.ix._embedder_factory()
        window = self.ix.batch_size * 3  # a few batches decoded ahead of the model
        with ThreadPoolExecutor(self.ix.workers, thread_name_prefix="decode") as pool:
            pending: deque[Future[_Result]] = deque()
            queue = iter(jobs)
            try:
                while True:
                    while len(pending) < window and not self.cancel.is_set():
                        job = next(queue, None)
                        if job is None:
                            break
                        pending.append(pool.submit(self._load, job))
                    if not pending:
                        break
                    self._accept(pending.popleft().result())
                if not self.cancel.is_set():
                    self._flush()
            finally:
                for future in pending:
                    future.cancel()

    def _known(self, digest: str, row: Row | None) -> bool:
        return (self.by_hash.get(digest) is not None or digest in self.orphans
                or bool(row and row.status == OK and row.hash == digest))

    def _load(self, job: _Job, skip_known: bool = True) -> _Result:
        """Runs on a decoding thread: hash, and decode unless the hash is known; the sample
        digest too where a later scan needs it (:data:`.scanner.CTIME_IS_CHANGE_TIME`)."""
        result = self._prepare(job, skip_known)
        if not scanner.CTIME_IS_CHANGE_TIME and result.error is None:
            try:
                result.sample = sample_digest(job.file.path)
            except OSError:
                pass  # none kept: the next scan takes the file as it finds it, and keeps one
        return result

    def _prepare(self, job: _Job, skip_known: bool) -> _Result:
        path = Path(job.file.path)
        try:
            digest = file_hash(path)
            if skip_known and self._known(digest, job.row):
                return _Result(job, hash=digest)
            side, to_pixels = self.embedder.image_size, self.embedder.to_pixels
            if is_video(path):
                pixels, times, meta = keyframe_pixels(path, to_pixels, side)
                return _Result(job, digest, pixels, times, fields=meta_fields(meta),
                               xmp=_xmp(path, meta.xmp))
            image, meta = decode(path, min_side=side)
            return _Result(job, digest, to_pixels(image)[None], fields=meta_fields(meta),
                           xmp=_xmp(path, meta.xmp))
        except BadImage as exc:
            return _Result(job, error=str(exc))
        except (ModelMissingError, ModelFileError):
            raise  # the model, not this photo: the run stops, no photo is marked
        except Exception as exc:  # noqa: BLE001 - one photo's failure must not end the run
            return _Result(job, error=f"could not be prepared ({type(exc).__name__}: {exc})")

    def _accept(self, result: _Result) -> None:
        job, report = result.job, self.report
        row_id = job.row.id if job.row else None
        base = {"path": job.file.path, "root": job.file.root, "size": job.file.size,
                "mtime_ns": job.file.mtime_ns, "changed_ns": job.file.changed_ns,
                "sample": result.sample}
        if job.row and job.row.status == OK and job.row.hash == result.hash:
            self.others.append((row_id, base))  # touched: same content, new mtime
            report.touched += 1
        elif result.error and result.error.startswith("vanished"):
            report.skipped.append((job.file.path, result.error))
            if row_id is not None:
                self._retire(job.row)
                self.deleted.append(row_id)
        elif result.error:
            report.errors.append((job.file.path, result.error))
            fields = base | {"status": ERROR, "error": result.error, "hash": None}
            if self._retire(job.row):
                fields["vector"] = None  # the old embedding no longer matches the file
            self.others.append((row_id, fields))
        elif result.pixels is not None:
            self._retire(job.row)
            result.fields = base | result.fields | {"hash": result.hash}
            self.batch.append(result)
        elif row_id is None and self.missing_by_hash.get(result.hash):
            source = self.missing_by_hash[result.hash].pop()
            self.claimed.add(source)
            self.others.append((source, base | {"status": OK, "error": None}))
            report.moved += 1
        else:
            self._retire(job.row)
            reused = self._embedding(result.hash)
            if reused is None:  # its source went away since the decoding thread looked
                self._accept(self._load(job, skip_known=False))
                return
            fields, result.vector = reused
            result.fields = base | fields | {"hash": result.hash}
            self.batch.append(result)
            report.copied += 1
        self.done += 1
        if len(self.batch) >= self.ix.batch_size:
            self._flush()
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.emit(Progress("index", self.done, self.total, rate, eta, job.file.path))

    def _retire(self, row: Row | None) -> bool:
        """Keep the embedding of a row about to lose it; True when it had one."""
        if row is None or row.status not in (OK, OFFLINE) or not row.hash:
            return False
        # Stash before forgetting: a decoding thread checks both maps without a lock, and must
        # never find the hash in neither.
        self.orphans[row.hash] = self.ix.store.copy_embedding(row.id)
        self.by_hash.retire(row.id)
        return True

    def _embedding(self, digest: str) -> tuple[dict, np.ndarray] | None:
        if digest in self.orphans:
            return self.orphans[digest]
        source = self.by_hash.get(digest)
        return None if source is None else self.ix.store.copy_embedding(source)

    def _flush(self) -> None:
        """Embed the pending batch and commit it with the other pending changes."""
        images = [r for r in self.batch if r.pixels is not None]
        frames: dict[str, list[tuple[float, np.ndarray]]] = {}
        if images:
            stack = np.concatenate([r.pixels for r in images])
            encoded = np.concatenate([
                self.embedder.encode_images(stack[start:start + self.ix.batch_size])
                for start in range(0, len(stack), self.ix.batch_size)])
            first = 0
            for r in images:
                part, first = encoded[first:first + len(r.pixels)], first + len(r.pixels)
                r.vector = mean_direction(part) if r.times else part[0]
                if r.times:
                    frames[r.hash] = list(zip(r.times, part))
        embedded = [(r.job.row.id if r.job.row else None, r.fields, r.vector) for r in self.batch]
        if not (embedded or self.others or self.deleted):
            return
        xmp = {r.hash: r.xmp for r in images if r.xmp}
        edited = [(r.job.row.hash, r.hash) for r in self.batch
                  if r.job.row and r.job.row.hash and r.job.row.hash != r.hash]
        ids = self.ix.store.write_batch(embedded, self.others, self.deleted, frames, xmp, edited)
        self.report.embedded += len(images)
        for r, row_id in zip(self.batch, ids):
            self.by_hash.add(r.hash, row_id)
        self.ix.vectors.catch_up(self.ix.store)  # the index applies what was committed
        self.batch, self.others, self.deleted = [], [], []
        if time.monotonic() - self.last_save > SAVE_INTERVAL:
            self.ix.vectors.save(self.ix.store)
            self.last_save = time.monotonic()
