"""The ``mmrag`` command line: a thin layer over :class:`~mmrag_desktop.library.engine.Library`."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..clip.hub import HubSource, download_weights
from ..clip.identity import ModelMissingError, has_torch
from ..clip.model_files import find_weights, import_model
from ..core.config import ConfigError, home_dir, load_config, save_config
from ..core.errors import MmragError
from ..core.paths import display_path
from ..core.text import clock, elide, size_text
from ..domain.analyses import ANALYSES
from ..domain.concepts import TAGGED, ConceptError
from ..domain.duplicates import NEAR_COSINE
from ..domain.folders import FolderState
from ..domain.query import Filters, Term
from ..domain.schemas import SCHEMAS, to_csv
from ..library.facade import Library
from ..library.indexer import IndexReport, Progress
from ..library.search import SEARCH_FIELDS, SEARCH_MODES
from ..store.database import describe_db_error
from ..vlm.model import (
    RECOMMENDED_REPO,
    VisionLanguageModel,
    download_recommended,
    inspect_files,
    recommended_sizes,
    use_files,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mmrag``. Returns the process exit status."""
    # a bundled (frozen) app starts the VLM's helper process through its own executable
    multiprocessing.freeze_support()
    args = _parser().parse_args(argv)
    if args.home:
        os.environ["MMRAG_HOME"] = str(Path(args.home).resolve())
    try:
        return args.func(args)
    except (MmragError, NotADirectoryError) as exc:
        print(f"mmrag: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"mmrag: {describe_db_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmmrag: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmrag", description="Search your photos offline.")
    p.add_argument("--version", action="version", version=f"mmrag {__version__}")
    p.add_argument("--home", help="app folder (default: $MMRAG_HOME or the user data folder)")
    p.add_argument("--random-weights", action="store_true",
                   help="use the model architecture with random weights (testing, benchmarks)")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    s = sub.add_parser("index", help="add folders (if given) and index the library")
    s.add_argument("folders", nargs="*", help="photo folders to add; default: all library folders")
    s.add_argument("--allow-removal", action="store_true",
                   help="remove photos that vanished in large numbers (held back otherwise, "
                        "in case a drive is unplugged), and accept folders on a new disk")
    s.add_argument("--no-understand", action="store_true",
                   help="only embed: skip the understanding pass (text in photos, places) "
                        "that follows; `mmrag understand` runs it later")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("understand", help="read the text in photos, name their places and, "
                       "opt-in, caption them with the vision-language model (the setting "
                       "`understand`; resumable; what `mmrag index` runs after embedding)")
    s.set_defaults(func=cmd_understand)

    s = sub.add_parser("watch", help="index, then keep the library up to date as folders change")
    s.add_argument("--settle", type=float, default=1.0,
                   help="seconds of quiet before indexing changes (default 1)")
    s.set_defaults(func=cmd_watch)

    s = sub.add_parser("search", help="search by text and/or photo")
    s.add_argument("query", nargs="*", help="text (or a photo file path)")
    s.add_argument("--photo", action="append", default=[], help="a query photo (repeatable)")
    s.add_argument("--add", action="append", default=[], metavar="[W*]TERM",
                   help="add a text or photo, optionally weighted: '0.5*snow'")
    s.add_argument("--subtract", action="append", default=[], metavar="[W*]TERM",
                   help="subtract a text or photo")
    s.add_argument("-k", "--top-k", type=int, default=10, help="number of results (top-k)")
    s.add_argument("--min-score", type=float, help="minimum cosine similarity")
    s.add_argument("--folder", action="append", default=[], help="only photos under FOLDER")
    s.add_argument("--after", help="taken on or after DATE (YYYY-MM-DD)")
    s.add_argument("--before", help="taken on or before DATE (YYYY-MM-DD)")
    s.add_argument("--camera", action="append", default=[],
                   help="only photos taken with this camera model (EXIF; repeatable)")
    s.add_argument("--near", type=_place, metavar="LAT,LON[,KM]",
                   help="only photos taken within KM (default 10) kilometres of a place, "
                        "from their EXIF GPS: --near 38.72,-9.14,25")
    s.add_argument("--place", default="", metavar="NAME",
                   help="only photos taken in a named town, city, region or country "
                        "(found offline from their EXIF GPS by `mmrag understand`)")
    s.add_argument("--concept", action="append", default=[], metavar="NAME",
                   help="only photos tagged with a personal concept (`mmrag concepts`; "
                        "repeatable). A concept's name in the query text ranks by it instead")
    s.add_argument("--mode", choices=SEARCH_MODES, default="hybrid",
                   help="semantic: by the embeddings; keyword: BM25 over file and folder "
                        "names, camera, month and year, text in the photo and place "
                        "names, captions; hybrid (default): both, fused by reciprocal-rank "
                        "fusion")
    s.add_argument("--field", choices=SEARCH_FIELDS, default="both",
                   help="the vector the semantic side searches: image (the photo's), "
                        "caption (its caption's, embedded by the text tower; only captioned "
                        "photos), both (default: fused)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("concepts", help="personal concepts (people, pets, places) learned "
                       "from a few example photos: add, reject, list, remove")
    s.add_argument("action", choices=["list", "add", "reject", "remove"], nargs="?",
                   default="list",
                   help="add NAME PHOTO…: examples (a new name makes a concept); reject NAME "
                        "PHOTO…: photos it wrongly suggested; remove NAME [PHOTO…]: the "
                        "concept, or some of its examples")
    s.add_argument("name", nargs="?")
    s.add_argument("photos", nargs="*")
    s.set_defaults(func=cmd_concepts)

    s = sub.add_parser("folders", help="list, add or remove library folders")
    s.add_argument("action", choices=["list", "add", "remove"], nargs="?", default="list")
    s.add_argument("paths", nargs="*")
    s.set_defaults(func=cmd_folders)

    s = sub.add_parser("duplicates", help="groups of copies: exact, resized, re-compressed, "
                       "bursts (nothing is changed)")
    s.add_argument("--threshold", type=float, default=NEAR_COSINE,
                   help=f"cosine similarity that makes two photos copies (default "
                        f"{NEAR_COSINE})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_duplicates)

    s = sub.add_parser("status", help="library counts, folders and model")
    s.add_argument("--errors", action="store_true", help="list files that could not be indexed")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("models", help="show, download, import or export (ONNX) CLIP weights")
    s.add_argument("action", choices=["status", "download", "import", "export-onnx"], nargs="?",
                   default="status")
    s.add_argument("file", nargs="?", help="weights file to import")
    s.add_argument("--yes", action="store_true", help="download without asking")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("config", help="show or change settings")
    s.add_argument("key", nargs="?")
    s.add_argument("value", nargs="?")
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("eval", help="text→image Recall@K on a captioned photo set")
    s.add_argument("captions", help="JSONL: {\"file\": ..., \"captions\": [...]} per line")
    s.add_argument("images", help="folder holding the files")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("ask", help="ask the local vision-language model about your photos")
    s.add_argument("question")
    s.add_argument("--photo", help="ask about this photo (otherwise: about the library)")
    s.add_argument("-k", type=int, help="photos the model looks at (default: ask_photos)")
    s.add_argument("--folder", action="append", help="only photos under this folder")
    s.add_argument("--after", help="only photos taken on or after this date (YYYY-MM-DD)")
    s.add_argument("--before", help="only photos taken on or before this date")
    s.add_argument("--chat", action="store_true", help="then read follow-up questions")
    s.add_argument("--json", action="store_true", help="print one JSON object at the end")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("extract", help="structured extraction by the vision-language model: "
                       "a receipt, invoice, business card, table or screenshot as JSON, "
                       "stored and searchable; without photos, export what is stored")
    s.add_argument("photos", nargs="*", help="library photos (none: every stored extraction "
                                             "by the schema)")
    s.add_argument("--schema", required=True, metavar="NAME|FILE.json",
                   help=f"a built-in schema ({', '.join(SCHEMAS)}) or a JSON schema file")
    s.add_argument("--format", choices=["json", "csv"], default="json",
                   help="csv: one line per row of the schema's table (a receipt's items)")
    s.add_argument("--out", help="write to this file instead of the terminal")
    s.add_argument("--again", action="store_true",
                   help="ask the model again instead of using the stored result")
    s.set_defaults(func=cmd_extract)

    s = sub.add_parser("vlm", help="show, set or download the vision-language model")
    s.add_argument("action", nargs="?", default="status", choices=["status", "set", "download"])
    s.add_argument("files", nargs="*", help="set: MODEL.gguf [MMPROJ.gguf]")
    s.add_argument("--yes", action="store_true", help="download without asking")
    s.set_defaults(func=cmd_vlm)

    s = sub.add_parser("gui", help="open the desktop app (same as mmrag-desktop)")
    s.add_argument("photo", nargs="?", help="open searching for photos similar to this one")
    s.add_argument("--quit-when-shown", action="store_true",
                   help="print 'shown' once the window is painted, then quit (launch timing)")
    s.set_defaults(func=cmd_gui)

    s = sub.add_parser("bench", help="indexing throughput, search latency, ANN recall")
    s.add_argument("photos", nargs="?", help="a folder of photos to benchmark with")
    s.add_argument("--rescan", metavar="N[,N...]",
                   help="benchmark a rescan of synthetic libraries of N photos instead "
                        "(nothing changed): time and the run's peak memory")
    s.add_argument("--vlm", action="store_true",
                   help="benchmark the vision-language model instead: load time, time to "
                        "first token, tokens/s, peak RSS")
    s.add_argument("--vlm-model", default="", help="with --vlm: this GGUF instead of vlm_model")
    s.add_argument("--vlm-mmproj", default="", help="with --vlm-model: its mmproj")
    s.add_argument("--gui", action="store_true",
                   help="benchmark the GUI instead: launch time and the longest event-loop "
                        "stall while indexing, searching and scrolling")
    s.add_argument("--text", action="store_true",
                   help="benchmark text in photos instead: phrases rendered onto the photos, "
                        "OCR ms per photo, search latency during the pass, rank-1 per mode")
    s.add_argument("--video", action="store_true",
                   help="benchmark videos instead: videos made from the photos, keyframe "
                        "selection decoding keyframes only vs every frame, indexing end to "
                        "end, and personal concepts' learning time")
    s.add_argument("--large", type=int, default=24, help="12 MP JPEGs to generate (0: none)")
    s.add_argument("--sizes", default="100000,1000000", help="synthetic ANN set sizes")
    s.add_argument("--queries", type=int, default=1000, help="ANN queries per size")
    s.set_defaults(func=cmd_bench)
    return p


def _engine(args, **kwargs) -> Library:
    """The library; pass ``read_only=True`` for commands that only read it."""
    return Library(random_weights=args.random_weights, on_notice=_print_notice, **kwargs)


def _print_notice(kind: str, text: str) -> None:
    if kind == "wait":
        print(f"mmrag: waiting for {text} to finish changing the library…", file=sys.stderr,
              flush=True)
    else:
        print(f"mmrag: repaired: {text}", file=sys.stderr)


class _ProgressBar:
    """Shows indexing progress events as a tqdm bar (count, rate, ETA)."""

    def __init__(self):
        self.bar: tqdm | None = None

    def __call__(self, event: Progress) -> None:
        if event.phase == "scan":
            print(f"\rscanning… {event.done} files", end="", file=sys.stderr)
        elif event.phase == "index":
            if self.bar is None:
                print(file=sys.stderr)
                self.bar = tqdm(total=event.total, unit="photo", file=sys.stderr)
            self.bar.update(event.done - self.bar.n)
        elif self.bar is not None:
            self.bar.close()


def print_report(report: IndexReport, out=None) -> None:
    """The end-of-run summary, with the reason for each file not indexed."""
    out = out or sys.stdout
    state = "interrupted" if report.cancelled else "done"
    print(f"{state} in {report.seconds:.1f} s: {report.found} photos found, "
          f"{report.embedded} embedded, {report.moved} moved, {report.copied} identical copies, "
          f"{report.touched} touched, {report.deleted} removed, {report.unchanged} unchanged, "
          f"{len(report.errors)} unreadable, {len(report.skipped)} skipped", file=out)
    for root in report.offline_roots:
        reason = report.offline_reasons.get(root, "not found")
        print(f"  offline ({reason}; photos kept): {display_path(root)}", file=out)
    for root, count in report.held_back.items():
        print(f"  {count} photos of {display_path(root)} vanished at once: kept as offline "
              "in case a drive or share is away. If you deleted or moved them, run "
              "`mmrag index --allow-removal`.", file=out)
    for label, items in (("unreadable", report.errors), ("skipped", report.skipped)):
        for path, reason in items[:50]:
            print(f"  {label}: {display_path(path)}: {reason}", file=out)
        if len(items) > 50:
            print(f"  … and {len(items) - 50} more {label} (mmrag status --errors)", file=out)
    if report.cancelled:
        print("Run `mmrag index` again to continue where it stopped.", file=out)


def cmd_index(args) -> int:
    engine = _engine(args)
    roots = [engine.folders.add(f) for f in args.folders] or None
    if roots is None and not engine.config.roots:
        print("mmrag: no folders yet; add one with: mmrag index FOLDER", file=sys.stderr)
        return 2
    engine.vector_index()  # load the model and the index before the progress bar starts
    report = engine.updates.index(roots, on_progress=_ProgressBar(), allow_removal=args.allow_removal)
    print_report(report)
    if report.cancelled:
        return 130
    return 0 if args.no_understand else _understand(engine)


def cmd_understand(args) -> int:
    return _understand(_engine(args))


def _understand(engine) -> int:
    """Run the understanding pass with a progress bar per analysis; Ctrl+C keeps what is
    done (the next run resumes)."""
    if not engine.config.understand:
        return 0
    bars: dict[str, tqdm] = {}

    def show(event) -> None:
        bar = bars.get(event.analysis)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[event.analysis] = tqdm(total=event.total, unit="photo", file=sys.stderr,
                                              desc=ANALYSES[event.analysis].doing)
        bar.update(event.done - bar.n)

    try:
        report = engine.updates.understand(on_progress=show)
    except KeyboardInterrupt:
        print("\nmmrag: interrupted; what was done is kept, `mmrag understand` resumes",
              file=sys.stderr)
        return 130
    finally:
        for bar in bars.values():
            bar.close()
    done = ", ".join(f"{n} {ANALYSES[name].done}" for name, n in report.analysed.items())
    print(f"understood in {report.seconds:.1f} s: {done}")
    for path, reason in report.failed:
        print(f"  not understood: {display_path(path)}: {reason}")
    for name, reason in report.unavailable.items():
        print(f"mmrag: {ANALYSES[name].doing.lower()} could not start: {reason}",
              file=sys.stderr)
    return 0


def cmd_watch(args) -> int:
    from ..library.watcher import Watcher

    engine = _engine(args)
    if not engine.config.roots:
        print("mmrag: no folders yet; add one with: mmrag folders add FOLDER", file=sys.stderr)
        return 2
    engine.vector_index()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def report(result: IndexReport, roots: list[str]) -> None:
        changed = (result.embedded + result.moved + result.copied + result.deleted
                   + len(result.errors) + len(result.offline_roots))
        if changed or watcher.runs == 1:
            print_report(result)
        sys.stdout.flush()

    watcher = Watcher(engine, settle=args.settle, on_report=report,
                      on_message=lambda text: print(f"mmrag: {text}", file=sys.stderr))
    watcher.start()
    print(f"watching {len(engine.config.roots)} folder(s); Ctrl-C to stop", file=sys.stderr)
    while not stop.wait(0.5):
        pass
    print("mmrag: stopping…", file=sys.stderr)
    watcher.stop()
    return 0


def _place(text: str) -> tuple[float, float, float]:
    """``LAT,LON[,KM]`` in decimal degrees and kilometres, for ``--near``."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or not (-90 <= numbers[0] <= 90 and -180 <= numbers[1] <= 180) \
            or (len(numbers) == 3 and numbers[2] <= 0):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected LAT,LON or LAT,LON,KM, e.g. 38.72,-9.14,25")
    return numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else 10.0


def cmd_search(args) -> int:
    terms = [Term.parse(" ".join(args.query))] if args.query else []
    terms += [Term(photo=p) for p in args.photo]
    terms += [Term.parse(t) for t in args.add] + [Term.parse(t, -1.0) for t in args.subtract]
    filters = Filters(args.folder, args.after, args.before, args.camera, args.near, args.place,
                      args.concept)
    engine = _engine(args, read_only=True)
    results = engine.search.run(terms, args.top_k, args.min_score, filters, args.mode, args.field)
    if args.json:
        print(json.dumps([{"path": display_path(r.path),
                           "score": None if r.score is None else round(r.score, 6),
                           **{k: v for k, v in r.meta.items() if k != "path"}}
                          for r in results], indent=1))
    else:
        for r in results:
            taken = f"  {r.meta['taken_at'][:10]}" if r.meta.get("taken_at") else ""
            why = (f"  ({r.meta['matched']['field']}: {r.meta['matched']['snippet']})"
                   if "matched" in r.meta else "")
            where = f"  [{r.meta['place']}]" if r.meta.get("place") else ""
            if r.meta.get("caption"):
                why += f"  “{elide(r.meta['caption'], 80)}”"
            score = "  -  " if r.score is None else f"{r.score:.3f}"
            at = f" @ {clock(r.meta['moment'])}" if "moment" in r.meta else ""
            tags = "".join(f"  {{{name} {p:.2f}}}" for name, p in
                           r.meta.get("concepts", {}).items() if p >= TAGGED)
            print(f"{score}{taken}  {display_path(r.path)}{at}{where}{tags}{why}")
        if not results:
            print("no results", file=sys.stderr)
    return 0


def cmd_concepts(args) -> int:
    if args.action != "list" and not args.name:
        raise ConceptError(f"mmrag concepts {args.action} needs a concept's name")
    if args.action in ("add", "reject") and not args.photos:
        raise ConceptError(f"mmrag concepts {args.action} needs example photos")
    engine = _engine(args, read_only=args.action == "list")
    if args.action in ("add", "reject"):
        probe = engine.concepts.label(args.name, args.photos, yes=args.action == "add")
        rejected = f" and {probe.rejected} rejected" if probe.rejected else ""
        print(f"{probe.name}: learned from {probe.examples} examples{rejected} "
              f"(search for it by name: mmrag search \"{probe.name}\")")
    elif args.action == "remove":
        removed = engine.concepts.forget(args.name, args.photos or None)
        print(f"removed {removed} examples" if args.photos else
              f"removed the concept {args.name} ({removed} examples)")
    else:
        concepts = engine.concepts.all()
        for probe, tagged, why in concepts:
            if probe is None:
                print(f"(not learned: {why})")
                continue
            rejected = f", {probe.rejected} rejected" if probe.rejected else ""
            print(f"{probe.name}: {probe.examples} examples{rejected}, "
                  f"{tagged:,} photos tagged")
        if not concepts:
            print("no concepts yet: mmrag concepts add NAME PHOTO…")
    return 0


def cmd_folders(args) -> int:
    engine = _engine(args, read_only=args.action == "list")
    if args.action == "add":
        for p in args.paths:
            print(f"added {display_path(engine.folders.add(p))} (run `mmrag index` to index it)")
    elif args.action == "remove":
        for p in args.paths:
            print(f"removed {display_path(os.path.abspath(p))}: {engine.folders.remove(p)} "
                  "photos left the library")
    else:
        for folder in engine.folders.states():
            print(_folder_line(folder))
    return 0


def _folder_line(folder: FolderState) -> str:
    """``/photos: 1,234 photos, indexed, 2 could not be read``."""
    errors = f", {folder.errors:,} could not be read" if folder.errors else ""
    return f"{display_path(folder.path)}: {folder.photos:,} photos, {folder.state}{errors}"


def cmd_duplicates(args) -> int:
    engine = _engine(args, read_only=True)
    groups = engine.analyses.duplicates(args.threshold)
    if args.json:
        print(json.dumps([{"exact": g.exact, "keep": g.keep.path,
                           "photos": [{"path": r.path, "width": r.meta.get("width"),
                                       "height": r.meta.get("height"),
                                       "size": r.meta.get("size"),
                                       "taken_at": r.meta.get("taken_at")} for r in g.photos]}
                          for g in groups], indent=1))
        return 0
    for number, found in enumerate(groups, 1):
        print(f"group {number}: {'exact copies' if found.exact else 'near copies'}")
        for r in found.photos:
            size = (f"{r.meta.get('width')}×{r.meta.get('height')}, "
                    f"{size_text(r.meta.get('size'))}")
            print(f"  {'keep ' if r is found.keep else '     '} {display_path(r.path)} ({size})")
    print(f"{len(groups)} groups, {sum(len(g.photos) - 1 for g in groups)} photos to review")
    return 0


def cmd_status(args) -> int:
    engine = _engine(args, read_only=True)
    status = engine.status()
    status["understood"] = engine.updates.understanding_pass().pending()
    if args.errors:
        status["errors"] = [{"path": display_path(p), "reason": r}
                            for p, r in engine.folders.errors()]
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"library: {status['library']}\nmodel:   {status['model']}")
    print(f"photos:  {status['photos']:,} " + json.dumps(status["by_status"]))
    for folder in engine.folders.states():
        print(f"folder:  {_folder_line(folder)}")
    for analysis, (done, total) in status["understood"].items():
        print(f"{analysis + ':':<8} {done:,} of {total:,} photos understood")
    for item in status.get("errors", []):
        print(f"error:   {item['path']}: {item['reason']}")
    return 0


def _download_export(config, home: Path, assume_yes: bool) -> int:
    """``models download`` without torch: the published ONNX export of the weights."""
    from ..clip.onnx_download import download, find_published

    try:
        export, url = find_published(config)
        print(f"{config.model} ({config.pretrained}): the ONNX export {export.file}, "
              f"{size_text(export.size)}, from {url}\n(weights from {export.source}, "
              f"licence {export.licence})")
        if not _confirm_download(assume_yes):
            return 1
        target = download(export, url, home)
    except OSError as exc:
        print(f"mmrag: {exc}\nWithout network access, import an export instead: "
              "mmrag models import FOLDER", file=sys.stderr)
        return 2
    print(f"saved {target}")
    return 0


def _confirm_download(assume_yes: bool) -> bool:
    """The user's yes to a download just described (``--yes`` answers for them)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print("mmrag: not downloading without confirmation (pass --yes)", file=sys.stderr)
        return False
    return input("Download now? [y/N] ").strip().lower() in ("y", "yes")


def cmd_models(args) -> int:
    home = home_dir()
    config = load_config(home)
    if args.action == "import":
        if not args.file:
            print("mmrag: models import needs a FILE", file=sys.stderr)
            return 2
        target = import_model(Path(args.file), config, home)
        what = "the ONNX export " if target.is_dir() else ""
        print(f"imported {what}{args.file} → {target} ({config.model}, {config.pretrained})")
    elif args.action == "download" and not has_torch():
        return _download_export(config, home, args.yes)
    elif args.action == "download":
        def confirm(source: HubSource) -> bool:
            size = size_text(source.size) if source.size else "unknown size"
            print(f"{config.model} ({config.pretrained}): {source.filename}, {size}, "
                  f"from {source.repo_id} on the Hugging Face hub")
            if source.extras:
                print(f"and the tokenizer / configuration files of {', '.join(source.extras)} "
                      "(no weights; a few MB)")
            return _confirm_download(args.yes)

        try:
            target = download_weights(config, home, confirm)
        except OSError as exc:
            print(f"mmrag: {exc}\nWithout network access, import a file instead: "
                  "mmrag models import FILE", file=sys.stderr)
            return 2
        if target is None:
            return 1
        print(f"saved {target}")
    elif args.action == "export-onnx":
        from ..clip.embedder import Embedder
        from ..clip.onnx_backend import export, export_folder

        embedder = Embedder(config, home, args.random_weights)
        started = time.perf_counter()
        folder = export(embedder.torch_backend(), export_folder(home, embedder.model_id))
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"exported {embedder.model_id} to {folder} ({size_text(size)}, "
              f"{time.perf_counter() - started:.0f} s); checked: it embeds like the torch model")
    else:
        from ..clip.model_files import configured_model_id
        from ..clip.onnx_backend import find_export

        print(f"model: {config.model} ({config.pretrained})")
        export = find_export(home, configured_model_id(config, home))  # says what is missing
        try:
            print(f"weights: {find_weights(config, home)}")
        except ModelMissingError:
            print("weights: none (the ONNX export alone)")
        print(f"ONNX export: {export or 'none (mmrag models export-onnx)'}")
    return 0


def cmd_config(args) -> int:
    home = home_dir()
    config = load_config(home)
    if args.key is None:
        for key, value in vars(config).items():
            print(f"{key} = {json.dumps(value)}")
        return 0
    if not hasattr(config, args.key):
        raise ConfigError(f"unknown setting: {args.key}")
    if args.value is None:
        print(json.dumps(getattr(config, args.key)))
        return 0
    current = getattr(config, args.key)
    try:
        value = json.loads(args.value) if not isinstance(current, str) else args.value
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{args.key}: expected a JSON value, got {args.value!r}") from exc
    if type(value) is not type(current):
        raise ConfigError(f"{args.key}: expected {type(current).__name__}, got {args.value!r}")
    setattr(config, args.key, value)
    save_config(home, config)
    print(f"{args.key} = {json.dumps(value)}")
    return 0


def cmd_eval(args) -> int:
    from ..bench.evaluation import evaluate

    home = home_dir()
    images = Path(args.images).resolve()
    slug = "".join(c if c.isalnum() else "_" for c in str(images))[-80:]
    engine = _engine(args, path=home / "eval" / slug)
    result = evaluate(engine, Path(args.captions), images, on_progress=_ProgressBar())
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['queries']} caption queries over {result['photos']} photos "
              f"({result['model']}):")
        for k in (1, 5, 10):
            print(f"  Recall@{k}: {result[f'recall@{k}']:.4f}")
        print(f"  ANN top-10 overlap with exact top-10: {result['ann_overlap@10']:.4f}")
    return 0


def cmd_ask(args) -> int:
    from ..library.ask import Conversation, ask_photo

    engine = _engine(args, read_only=True)
    if args.k:
        engine.config.ask_photos = args.k
    vlm = VisionLanguageModel(engine.config)
    show = None if args.json else (lambda piece: print(piece, end="", flush=True))
    if args.photo:
        photo = Path(args.photo).resolve()
        text = ask_photo(vlm, photo, args.question, show)
        print(json.dumps({"answer": text, "photo": str(photo)}) if args.json else "")
        return 0
    conversation = Conversation(engine, vlm, Filters(args.folder or [], args.after, args.before))
    question = args.question
    while True:
        answer = conversation.ask(question, show)
        if args.json:
            print(json.dumps({
                "answer": answer.body, "cited": [r.path for r in answer.shown],
                "judgements": [{"photo": answer.candidates[j.number - 1].path,
                                "relevant": j.relevant, "reason": j.reason}
                               for j in answer.judgements]}))
        else:
            print("\n\nPhotos:" if answer.shown else "\n\n(no photo judged relevant)")
            for result in answer.shown:
                number = answer.candidates.index(result) + 1
                print(f"  [{number}] {display_path(result.path)}")
        if not args.chat:
            return 0
        try:
            question = input("\nfollow-up> ").strip()
        except EOFError:
            return 0
        if not question:
            return 0


def cmd_extract(args) -> int:
    if args.photos:
        engine = _engine(args)
        vlm = VisionLanguageModel(engine.config)
        try:
            results = []
            for photo in args.photos:
                found = engine.updates.extract(photo, args.schema, vlm, args.again)
                how = "stored" if found.stored else "repaired" if found.repaired else "new"
                print(f"{display_path(found.photo)}: {found.name} ({how})", file=sys.stderr)
                results.append(found)
        finally:
            vlm.unload()
    else:
        results = _engine(args, read_only=True).extracted(args.schema)
        print(f"{len(results)} stored", file=sys.stderr)
    if args.format == "csv":
        text = to_csv([(display_path(r.photo), r.value) for r in results])
    else:
        text = json.dumps([{"photo": display_path(r.photo), "schema": r.name, **r.value}
                           for r in results], indent=1, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_vlm(args) -> int:
    home = home_dir()
    config = load_config(home)
    if args.action == "set":
        if not 1 <= len(args.files) <= 2:
            raise SystemExit("mmrag vlm set MODEL.gguf [MMPROJ.gguf]")
        model = Path(args.files[0]).resolve()
        mmproj = Path(args.files[1]).resolve() if len(args.files) == 2 else None
        info = use_files(home, config, model, mmproj)
        print(f"vision-language model set: {model.name} ({info.family}"
              f"{', own chat template' if info.chat_template else ', family chat template'})"
              f"{f', sees photos through {mmproj.name}' if mmproj else ', text only'}")
        return 0
    if args.action == "download":
        try:
            files = recommended_sizes()
            listing = ", ".join(f"{name} ({size_text(size)})" if size else name
                                for name, size in files)
            print(f"{listing} from https://huggingface.co/{RECOMMENDED_REPO}, into "
                  f"{home / 'vlm'}")
            if not _confirm_download(args.yes):
                return 1
            pair = download_recommended(home)
        except OSError as exc:
            print(f"mmrag: {exc}\nSet a local pair instead: mmrag vlm set MODEL.gguf "
                  "MMPROJ.gguf", file=sys.stderr)
            return 2
        use_files(home, config, *pair)
        print(f"downloaded and set: {pair[0]}")
        return 0
    if not config.vlm_model:
        print("no vision-language model set (mmrag vlm set MODEL.gguf MMPROJ.gguf, or "
              "mmrag vlm download)")
        return 1
    mmproj = Path(config.vlm_mmproj) if config.vlm_mmproj else None
    info = inspect_files(Path(config.vlm_model), mmproj)
    print(f"model: {config.vlm_model} ({info.family}, embedding width {info.embedding_length}, "
          f"{'own' if info.chat_template else 'family'} chat template)")
    print(f"mmproj: {config.vlm_mmproj or 'none (text only)'}")
    print(f"threads {config.vlm_threads or os.cpu_count()}, context {config.vlm_context}, "
          f"GPU layers {config.vlm_gpu_layers}, unloaded after {config.vlm_idle_unload:.0f} s idle")
    return 0


def cmd_gui(args) -> int:
    from ..gui import main as gui_main

    return gui_main([args.photo] if args.photo else [], args.random_weights,
                    args.quit_when_shown)


def cmd_bench(args) -> int:
    if args.rescan:
        from ..bench.speed import bench_rescan

        with tempfile.TemporaryDirectory(prefix="mmrag-bench-") as scratch:
            for n in args.rescan.split(","):
                bench_rescan(int(n), Path(scratch))
        return 0
    if not args.photos:
        raise SystemExit("mmrag bench: name a folder of photos to benchmark with")
    if args.vlm:
        from ..bench.speed import run_vlm_bench

        run_vlm_bench(Path(args.photos), args.vlm_model, args.vlm_mmproj)
        return 0
    if args.text:
        from ..bench.text import run_text_bench

        run_text_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    if args.video:
        from ..bench.video import run_video_bench

        run_video_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    if args.gui:
        from ..bench.gui import run_gui_bench

        run_gui_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    from ..bench.speed import run_bench

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    run_bench(Path(args.photos), large=args.large, ann_sizes=sizes, queries=args.queries,
              random_weights=args.random_weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
