"""Indexing: ``mmrag index``, ``understand`` and ``watch``."""

from __future__ import annotations

import signal
import sys
import threading

from tqdm import tqdm

from ..core.paths import display_path
from ..domain.analyses import ANALYSES
from ..library.indexer import IndexReport
from .output import CommandError, ProgressBar, move_hint, open_library, print_report


def add_index(sub) -> None:
    s = sub.add_parser("index", help="add folders (if given) and index the library")
    s.add_argument("folders", nargs="*", help="photo folders to add; default: all library folders")
    s.add_argument("--allow-removal", action="store_true",
                   help="remove photos that vanished in large numbers (held back otherwise, "
                        "in case a drive is unplugged), and accept folders on a new disk")
    s.add_argument("--no-understand", action="store_true",
                   help="only embed: skip the understanding pass (text in photos, places) "
                        "that follows; `mmrag understand` runs it later")
    s.set_defaults(func=cmd_index)


def add_understand(sub) -> None:
    s = sub.add_parser("understand", help="read the text in photos, name their places and, "
                       "opt-in, caption them with the vision-language model (the setting "
                       "`understand`; resumable; what `mmrag index` runs after embedding)")
    s.set_defaults(func=cmd_understand)


def add_watch(sub) -> None:
    s = sub.add_parser("watch", help="index, then keep the library up to date as folders change")
    s.add_argument("--settle", type=float, default=1.0,
                   help="seconds of quiet before indexing changes (default 1)")
    s.set_defaults(func=cmd_watch)


def cmd_index(args) -> int:
    engine = open_library(args)
    for folder in args.folders:
        move = engine.folders.moved_here(folder)
        if move is not None and move.new not in engine.config.roots:
            raise CommandError(move_hint(move).removeprefix("mmrag: ") + "\nTo index it "
                               "as another folder anyway: mmrag folders add FOLDER, then "
                               "mmrag index")
    roots = [engine.folders.add(f) for f in args.folders] or None
    if roots is None and not engine.config.roots:
        raise CommandError("no folders yet; add one with: mmrag index FOLDER")
    engine.vector_index()  # load the model and the index before the progress bar starts
    report = engine.updates.index(roots, on_progress=ProgressBar(), allow_removal=args.allow_removal)
    print_report(report)
    for move in engine.folders.moves():
        print(move_hint(move), file=sys.stderr)
    if report.cancelled:
        return 130
    return 0 if args.no_understand else _understand(engine)


def cmd_understand(args) -> int:
    return _understand(open_library(args))


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

    engine = open_library(args)
    if not engine.config.roots:
        raise CommandError("no folders yet; add one with: mmrag folders add FOLDER")
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
