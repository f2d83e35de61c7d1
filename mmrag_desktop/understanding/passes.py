"""The understanding pass: what a person would type about a photo, learned after it is
embedded — the text in it (:mod:`.understanding.ocr`), the place it was taken
(:mod:`.understanding.places`), the faces in it (:mod:`.understanding.faces`) and, opt-in, a
caption with tags by the local vision-language model (:mod:`.understanding.captions`).

Results are stored by content hash (:meth:`.store.database.Store.put_understanding`), so a moved
photo or a copy keeps them and a changed file (a new hash) is redone. Each analysis has a
version; results of an older one are redone. The pass commits every few photos, so an
interrupted pass resumes where it stopped. OCR and faces run in one helper process at a lower CPU
priority with one thread, so the app and its searches keep the other cores; captions run in
the vision-language model's own helper (:mod:`.vlm.model`). A native crash in either costs one
photo, which is recorded as failed and not retried.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ..core import helpers
from ..domain.analyses import ANALYSES, Analysis
from ..media.files import BadImage, is_video_name
from ..store.database import Store
from ..vlm.model import VisionLanguageModel, VLMCrashedError, VLMError
from ..vlm.structured import StructuredOutputError
from .captions import caption_record, describe_photo
from .faces import FaceModelsMissing
from .places import Place

WORKER_NICE = 10  # added to the helper's CPU niceness
VIDEO_FACE_FRAMES = 8  # a video's keyframes read for faces, spread over it
MAX_TEXT_CHARS = 4000  # recognised text kept per photo: a scanned page, not a book
MIN_LINE_CHARS = 3  # a recognised line shorter than a real word is noise


@dataclass
class Progress:
    """A progress event: the ``analysis`` under way, ``done`` of ``total`` photos (distinct
    contents) for it, the photo just finished, and whether the pass is ``paused``."""

    analysis: str
    done: int
    total: int
    path: str = ""
    paused: bool = False


@dataclass
class UnderstandReport:
    """What a pass did: photos analysed per analysis, ``failed`` (path, reason) pairs,
    analyses that could not run at all (``unavailable``: name → why), whether it was
    ``cancelled``, wall-clock ``seconds``, and how new faces were grouped into people
    (``people``: :class:`.library.people.Grouping`'s counts, once the library has grouped them)."""

    analysed: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0


# --- in the helper process -------------------------------------------------------------------

_reader = None


def _start_worker() -> None:
    helpers.exit_with_parent()  # never an orphan of a killed app
    # Ctrl+C is the app's to handle: a helper killed by it would count as a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICE)
    except (AttributeError, OSError):  # Windows has no nice(); the thread cap still holds
        pass


def _read_text(path: str) -> list[dict]:
    global _reader
    if _reader is None:
        from .ocr import TextReader
        _reader = TextReader(threads=1)
    return [asdict(line) for line in _reader.read(Path(path))]


_face_reader = None


def _read_faces(path: str, times: list[float] | None) -> tuple[list[dict], int]:
    global _face_reader
    if _face_reader is None:
        from .faces import FaceReader
        _face_reader = FaceReader()
    faces, found = _face_reader.read(Path(path), times)
    return [face.record() for face in faces], found


def _find_places(coordinates: list[tuple[float, float]]) -> list[dict | None]:
    from .places import places
    return [asdict(p) if p else None for p in places(coordinates)]


# --- what is stored ----------------------------------------------------------------------------

def text_record(lines: list[dict]) -> tuple[str, str]:
    """(JSON data, searchable text) for recognised lines (:class:`.understanding.ocr.TextLine`
    dicts). A line with fewer than :data:`MIN_LINE_CHARS` letters or digits ("A", "1", a
    stray mark read as "I") is kept in the data but not searched or shown."""
    text = "\n".join(line["text"] for line in lines
                     if len(re.findall(r"\w", line["text"])) >= MIN_LINE_CHARS)[:MAX_TEXT_CHARS]
    return json.dumps({"lines": lines}, ensure_ascii=False), text


def summary(understood: dict[str, tuple[str, str]]) -> dict[str, str]:
    """What a person reads about a photo from its stored results ({kind: (JSON data,
    text)}): ``text`` (recognised lines, one per line), ``caption`` and ``tags``,
    ``extracted`` (each schema's values on a line), ``keywords`` (the XMP keywords and
    description other apps wrote) and ``place``
    (:meth:`.understanding.places.Place.label`), each only where known."""
    out = {}
    if understood.get("text", ("", ""))[1]:
        out["text"] = understood["text"][1]
    if "caption" in understood:
        caption = json.loads(understood["caption"][0])
        if caption.get("caption"):
            out["caption"] = caption["caption"]
        if caption.get("tags"):
            out["tags"] = ", ".join(caption["tags"])
    extracted = [f"{kind.partition(':')[2].replace('_', ' ')}: {text}"
                 for kind, (_, text) in sorted(understood.items())
                 if kind.startswith("extracted:") and text]
    if extracted:
        out["extracted"] = "\n".join(" · ".join(e.splitlines()) for e in extracted)
    if understood.get("keywords", ("", ""))[1]:
        out["keywords"] = understood["keywords"][1]
    if "place" in understood:
        place = json.loads(understood["place"][0])
        if place.get("locality"):
            out["place"] = Place(**place).label()
    return out


# --- the pass ----------------------------------------------------------------------------------

class UnderstandingPass:
    """One run of the pass over a library's photos that lack results.

    Args:
        store: the library.
        analyses: which of :data:`ANALYSES` to run, in order (names checked by
            :meth:`.core.config.Config.validate`).
        writing: a context manager factory holding the library's writer lock for one
            commit.
        vlm: the vision-language model for ``captions``.
    """

    def __init__(self, store: Store, analyses: list[str],
                 writing: Callable[[], AbstractContextManager],
                 vlm: VisionLanguageModel | None = None):
        self.store, self.analyses, self.writing = store, list(analyses), writing
        self.vlm = vlm
        self._pool: ProcessPoolExecutor | None = None
        self._readers = {"text": self._read_text, "captions": self._describe,
                         "faces": self._read_faces}

    def pending(self) -> dict[str, tuple[int, int]]:
        """Analysis → (contents done, contents in all)."""
        return {name: self.store.understanding_counts(a.kind, a.version, a.reads)
                for name, a in self._analyses()}

    def _analyses(self) -> list[tuple[str, Analysis]]:
        return [(name, ANALYSES[name]) for name in self.analyses]

    def run(self, on_progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None,
            paused: threading.Event | None = None) -> UnderstandReport:
        """Analyse every photo that lacks a current result, committing every
        :data:`BATCH` photos. *cancel* stops after the photo under way (what is done
        stays); while *paused* is set the pass waits between photos."""
        started = time.monotonic()
        report = UnderstandReport()
        cancel = cancel or threading.Event()
        try:
            for name, analysis in self._analyses():
                report.analysed[name] = 0
                done, total = self.store.understanding_counts(
                    analysis.kind, analysis.version, analysis.reads)
                skipped: set[str] = set()  # unreadable now (vanished, offline): next pass
                while not cancel.is_set():
                    todo = [item for item in self.store.understanding_todo(
                        analysis.kind, analysis.version, analysis.batch + len(skipped),
                        analysis.reads) if item[0] not in skipped][:analysis.batch]
                    if not todo:
                        break
                    try:
                        results = list(self._analyse(name, todo, cancel, paused, on_progress,
                                                     done, total, report, skipped))
                    # no model set, no mmproj, not enough memory; dlib not installed
                    except (VLMError, FaceModelsMissing) as exc:
                        report.unavailable[name] = str(exc)
                        break
                    if results:
                        with self.writing():
                            if name == "faces":  # (hash, data, faces): with descriptors
                                self.store.put_faces(analysis.version, results)
                            else:
                                self.store.put_understanding(analysis.kind, analysis.version,
                                                             results)
                    done += len(results)
                    report.analysed[name] += len(results)
                    if on_progress and name == "places":  # text says so photo by photo
                        on_progress(Progress(name, done, total))
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
        report.cancelled = cancel.is_set()
        report.seconds = time.monotonic() - started
        return report

    def _analyse(self, analysis: str, todo: list[tuple], cancel: threading.Event,
                 paused: threading.Event | None, on_progress, done: int, total: int,
                 report: UnderstandReport, skipped: set[str]):
        """(content hash, JSON data, text) for each item of *todo* analysed; the hashes
        of photos unreadable now go to *skipped*."""
        if analysis == "places":
            found = self._call(_find_places, [(lat, lon) for _, _, lat, lon in todo])
            for (digest, _, _, _), place in zip(todo, found):
                yield (digest, json.dumps(place or {}, ensure_ascii=False),
                       Place(**place).words() if place else "")
            return
        for n, (digest, path, _, _) in enumerate(todo):
            while paused is not None and paused.is_set() and not cancel.is_set():
                if on_progress:
                    on_progress(Progress(analysis, done + n, total, path, paused=True))
                cancel.wait(0.5)
            if cancel.is_set():
                return
            try:
                data, text = self._readers[analysis](digest, path, cancel)
            except (BadImage, OSError) as exc:  # vanished, offline, changed since embedded
                report.failed.append((path, str(exc)))
                skipped.add(digest)
                continue
            except (BrokenProcessPool, VLMCrashedError, StructuredOutputError) as exc:
                if cancel.is_set():
                    return
                reason = (f"the helper crashed on this photo ({ANALYSES[analysis].doing.lower()})"
                          if isinstance(exc, BrokenProcessPool) else str(exc))
                report.failed.append((path, reason))
                data, text = json.dumps({"error": reason}), [] if analysis == "faces" else ""
            yield digest, data, text
            if on_progress:
                on_progress(Progress(analysis, done + n + 1, total, path))

    def _read_text(self, digest: str, path: str, cancel: threading.Event) -> tuple[str, str]:
        return text_record(self._call(_read_text, path))

    def _read_faces(self, digest: str, path: str,
                    cancel: threading.Event) -> tuple[str, list[dict]]:
        """(JSON data: faces found and kept, the faces) of a photo, or of a video's
        keyframes (up to :data:`VIDEO_FACE_FRAMES` of them)."""
        times = None
        if is_video_name(Path(path)):
            stills = self.store.frames_of(self.store.get_meta("model_id"), digest)[0].tolist()
            step = max(1, len(stills) // VIDEO_FACE_FRAMES)
            times = stills[::step][:VIDEO_FACE_FRAMES] or [0.0]
        faces, found = self._call(_read_faces, path, times)
        return json.dumps({"faces": len(faces), "found": found}), faces

    def _describe(self, digest: str, path: str, cancel: threading.Event) -> tuple[str, str]:
        if self.vlm is None:
            raise VLMError("captions need the vision-language model")
        answer = describe_photo(self.vlm, Path(path), cancel)
        return caption_record(answer, Path(self.vlm.config.vlm_model).name)

    def _call(self, function, *args):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"),
                                             initializer=_start_worker)
        try:
            return self._pool.submit(function, *args).result()
        except BrokenProcessPool:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise
