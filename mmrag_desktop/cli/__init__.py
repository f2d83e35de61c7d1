"""The ``mmrag`` command line: a thin layer over :class:`~mmrag_desktop.library.facade.Library`,
one module per command group. Every error the app raises on purpose (:class:`.core.errors.MmragError`)
is caught here, once: ``mmrag: <message>`` and exit status 2."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
from pathlib import Path

from .. import __version__
from ..core.errors import MmragError
from ..store.database import describe_db_error
from . import albums, ask, index, library, models, people, search, tools


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mmrag``. Returns the process exit status."""
    # a bundled (frozen) app starts the VLM's helper process through its own executable
    multiprocessing.freeze_support()
    args = _parser().parse_args(argv)
    if args.home:
        os.environ["MMRAG_HOME"] = str(Path(args.home).resolve())
    try:
        return args.func(args)
    except MmragError as exc:
        print(f"mmrag: {exc}", file=sys.stderr)
        return exc.exit_status
    except NotADirectoryError as exc:  # a folder named on the command line
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
    for add in (index.add_index, index.add_understand, index.add_watch, search.add_search,
                search.add_concepts, search.add_places, people.add_people, albums.add_albums, albums.add_favourite,
                albums.add_rate, albums.add_export, library.add_folders, library.add_duplicates,
                library.add_status, models.add_models, library.add_config, tools.add_eval,
                ask.add_ask, ask.add_extract, ask.add_vlm, tools.add_gui, tools.add_bench):
        add(sub)  # in this order in --help
    return p


if __name__ == "__main__":
    sys.exit(main())
