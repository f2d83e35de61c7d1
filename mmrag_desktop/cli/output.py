"""What every command shares: the library it opens, notices, progress and reports, and
the yes asked before a download."""

from __future__ import annotations

import shlex
import sys

from tqdm import tqdm

from ..core.errors import MmragError
from ..core.paths import display_path
from ..library.facade import Library
from ..library.folders import Move
from ..library.indexer import IndexReport, Progress


class CommandError(MmragError):
    """A command cannot go on as asked (no folders yet, a download failed); the message
    says what to do instead."""


class UsageError(MmragError):
    """A command given the wrong arguments."""

    exit_status = 1


def open_library(args, **kwargs) -> Library:
    """The library; pass ``read_only=True`` for commands that only read it."""
    return Library(random_weights=args.random_weights, on_notice=print_notice, **kwargs)


def print_notice(kind: str, text: str) -> None:
    if kind == "wait":
        print(f"mmrag: waiting for {text} to finish changing the library…", file=sys.stderr,
              flush=True)
    else:
        print(f"mmrag: repaired: {text}", file=sys.stderr)


class ProgressBar:
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


def move_hint(move: Move) -> str:
    """How to tell the library that a folder moved (instead of holding each photo twice)."""
    return (f"mmrag: {display_path(move.new)} looks like library folder "
            f"{display_path(move.old)}, moved ({move.found} of {move.checked} photos checked "
            f"are there). To move the library folder, keeping everything it knows and reading "
            f"nothing again: mmrag folders move {_quoted(move.old)} {_quoted(move.new)}")


def _quoted(path: str) -> str:
    return shlex.quote(display_path(path))


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


def confirm_download(assume_yes: bool) -> bool:
    """The user's yes to a download just described (``--yes`` answers for them)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print("mmrag: not downloading without confirmation (pass --yes)", file=sys.stderr)
        return False
    return input("Download now? [y/N] ").strip().lower() in ("y", "yes")
