"""Changing what the library knows: index runs (embedding), the understanding pass and
structured extraction."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.paths import display_path, is_within, outermost
from ..domain.schemas import Extraction
from ..domain.schemas import kind as extraction_kind
from ..understanding.extraction import (
    EXTRACTION_VERSION,
    ExtractionError,
    extract,
    load_schema,
    record,
)
from ..understanding.passes import Progress as UnderstandProgress
from ..understanding.passes import UnderstandingPass, UnderstandReport
from ..vlm.model import VisionLanguageModel
from .indexer import Indexer, IndexReport, Progress
from .scanner import Excluder

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from .facade import Library


class Updates:
    """Index runs, the understanding pass and extraction (``library.updates``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    def index(self, roots: list[str] | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              cancel: threading.Event | None = None, stable_after: float = 0.0,
              allow_removal: bool = False,
              scope: dict[str, list[str]] | None = None) -> IndexReport:
        """Bring the library in line with *roots* (default: all configured roots), or with
        the folders ``scope[root]`` of them. See :meth:`Indexer.run` for interruption,
        offline roots, *stable_after*, *allow_removal* and *scope*. Waits while another
        process writes the library."""
        if self.lib.read_only:
            raise RuntimeError("a read-only engine does not index")
        roots = [self.lib.folders.root_of(r) for r in (roots if roots is not None else self.lib.config.roots)]
        # A hand-edited config may list a folder and a folder inside it: index each file once,
        # under the outer folder.
        outer = outermost(roots)
        for root in outer:
            if any(r != root and is_within(r, root) for r in roots):
                self.lib.store.adopt(root)
        roots = outer
        excluder = Excluder(self.lib.config.excludes, self.lib.config.include_hidden,
                            private=[self.lib.home, self.lib.path])
        workers = self.lib.config.decode_workers or os.cpu_count() or 2
        # Runs are serialised; searches are not blocked by them (SQLite WAL readers, and the
        # HNSW index takes its write lock only to apply each committed batch).
        self.lib.vector_index()  # opened first: opening may take the writer lock to switch the model
        with self.lib.index_lock, self.lib.writing("indexing"):
            vectors = self.lib.sync()
            indexer = Indexer(self.lib.store, vectors, lambda: self.lib.embedder, excluder,
                              self.lib.config.batch_size, workers)
            report = indexer.run(roots, on_progress, cancel, stable_after, allow_removal, scope)
            if report.deleted or report.embedded or report.errors:  # contents may have gone
                self.lib.store.forget_orphans()  # keyframes of videos deleted or changed
            return report

    def understand(self, on_progress: Callable[[UnderstandProgress], None] | None = None,
                   cancel: threading.Event | None = None,
                   paused: threading.Event | None = None,
                   vlm: VisionLanguageModel | None = None) -> UnderstandReport:
        """Run the understanding pass (:mod:`.understanding.passes`) over the photos that lack
        results of :attr:`Config.understand`'s analyses: resumable, cancelled by *cancel*
        after the photo under way, waiting while *paused* is set; captions by *vlm* (one
        from the config if None). New faces are then grouped into people
        (:meth:`.library.people.People.update`; ``report.people``). Waits for an index run
        in progress only to forget what deleted photos left behind."""
        if self.lib.read_only:
            raise RuntimeError("a read-only engine does not change the library")
        with self.lib.index_lock, self.lib.writing("understanding photos"):
            self.lib.store.forget_orphans()
        report = self.understanding_pass(vlm).run(on_progress, cancel, paused)
        if "faces" in self.lib.config.understand:
            report.people = dataclasses.asdict(self.lib.people.update())
        return report

    def understanding_pass(self, vlm: VisionLanguageModel | None = None) -> UnderstandingPass:
        """The understanding pass for this library's configured analyses (see
        :meth:`understand`; :meth:`UnderstandingPass.pending` says what is left)."""
        if vlm is None and "captions" in self.lib.config.understand:
            vlm = VisionLanguageModel(self.lib.config)  # loads only when a caption is asked for
        return UnderstandingPass(self.lib.store, self.lib.config.understand,
                                 lambda: self.lib.writing("understanding photos"), vlm)

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
        digest = self.lib.store.hash_of(path)
        if digest is None:
            raise ExtractionError(f"{display_path(path)} is not in the library: add its "
                                  "folder and index it first")
        known = self.lib.store.understood([digest]).get(digest, {})
        stored = known.get(extraction_kind(name))
        if stored and not again:
            return Extraction(path, name, json.loads(stored[0])["value"], stored=True)
        vlm = vlm or VisionLanguageModel(self.lib.config)
        answer = extract(vlm, Path(path), name, fields, known.get("text", ("", ""))[1], cancel)
        data, text = record(answer, name, Path(self.lib.config.vlm_model).name)
        with self.lib.writing("storing an extraction"):
            self.lib.store.put_understanding(extraction_kind(name), EXTRACTION_VERSION,
                                             [(digest, data, text)])
        return Extraction(path, name, answer.value, repaired=answer.repaired)

    def extracted(self, schema: str) -> list[Extraction]:
        """Every stored extraction by *schema* (a name or a schema file's path), one per
        photo content (under one of its paths), for export.

        Raises:
            ExtractionError: see :func:`.understanding.extraction.load_schema`.
        """
        name, _ = load_schema(schema)
        rows = self.lib.store.understanding_rows(extraction_kind(name))
        ids = self.lib.store.ids_by_hash([digest for digest, _ in rows])
        details = self.lib.store.details([found[0] for found in ids.values()])
        paths = {d["hash"]: d["path"] for d in details.values()}
        return [Extraction(paths[digest], name, json.loads(data)["value"], stored=True)
                for digest, data in rows if digest in paths]
