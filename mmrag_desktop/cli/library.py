"""The library as a whole: ``mmrag folders``, ``duplicates``, ``status`` and ``config``."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from ..clip.identity import check_weights_file
from ..core.config import ConfigError, home_dir, load_config, save_config
from ..core.paths import display_path
from ..core.text import size_text
from ..domain.duplicates import NEAR_COSINE
from ..domain.folders import FolderState
from .output import CommandError, move_hint, open_library


def add_folders(sub) -> None:
    s = sub.add_parser("folders", help="list, add, remove or move library folders",
                       description="`mmrag folders move OLD NEW`: library folder OLD was moved "
                       "to NEW (say to another disk); its photos keep everything the library "
                       "knows of them, nothing is read again")
    s.add_argument("action", choices=["list", "add", "remove", "move"], nargs="?", default="list")
    s.add_argument("paths", nargs="*")
    s.set_defaults(func=cmd_folders)


def add_duplicates(sub) -> None:
    s = sub.add_parser("duplicates", help="groups of copies: exact, resized, re-compressed, "
                       "bursts (nothing is changed)")
    s.add_argument("--threshold", type=float, default=NEAR_COSINE,
                   help=f"cosine similarity that makes two photos copies (default "
                        f"{NEAR_COSINE})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_duplicates)


def add_status(sub) -> None:
    s = sub.add_parser("status", help="library counts, folders and model")
    s.add_argument("--errors", action="store_true", help="list files that could not be indexed")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)


def add_config(sub) -> None:
    s = sub.add_parser("config", help="show or change settings")
    s.add_argument("key", nargs="?")
    s.add_argument("value", nargs="?")
    s.set_defaults(func=cmd_config)


def cmd_folders(args) -> int:
    engine = open_library(args, read_only=args.action == "list")
    if args.action == "add":
        for p in args.paths:
            print(f"added {display_path(engine.folders.add(p))} (run `mmrag index` to index it)")
    elif args.action == "move":
        if len(args.paths) != 2:
            raise CommandError("usage: mmrag folders move OLD NEW")
        moved = engine.folders.move(*args.paths)
        print(f"moved {display_path(args.paths[0])} to {display_path(args.paths[1])}: "
              f"{moved:,} photos (run `mmrag index` to check them)")
    elif args.action == "remove":
        for p in args.paths:
            print(f"removed {display_path(os.path.abspath(p))}: {engine.folders.remove(p)} "
                  "photos left the library")
    else:
        for folder in engine.folders.states():
            print(_folder_line(folder))
        for move in engine.folders.moves():
            print(move_hint(move), file=sys.stderr)
    return 0


def _folder_line(folder: FolderState) -> str:
    """``/photos: 1,234 photos, indexed, 2 could not be read``."""
    errors = f", {folder.errors:,} could not be read" if folder.errors else ""
    return f"{display_path(folder.path)}: {folder.photos:,} photos, {folder.state}{errors}"


def cmd_duplicates(args) -> int:
    engine = open_library(args, read_only=True)
    groups = engine.analyses.duplicates(args.threshold)
    if args.json:
        print(json.dumps([{"exact": g.exact, "keep": g.keep.path, "why": g.reason,
                           "photos": [{"path": r.path, "width": r.meta.get("width"),
                                       "height": r.meta.get("height"),
                                       "size": r.meta.get("size"),
                                       "taken_at": r.meta.get("taken_at")} for r in g.photos]}
                          for g in groups], indent=1))
        return 0
    for number, found in enumerate(groups, 1):
        print(f"group {number}: {'exact copies' if found.exact else 'near copies'}; keep "
              f"{display_path(os.path.basename(found.keep.path))}: {found.reason}")
        for r in found.photos:
            size = (f"{r.meta.get('width')}×{r.meta.get('height')}, "
                    f"{size_text(r.meta.get('size'))}")
            print(f"  {'keep ' if r is found.keep else '     '} {display_path(r.path)} ({size})")
    print(f"{len(groups)} groups, {sum(len(g.photos) - 1 for g in groups)} photos to review")
    return 0


def cmd_status(args) -> int:
    engine = open_library(args, read_only=True)
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


def cmd_config(args) -> int:
    home = home_dir()
    config = load_config(home)
    settings = [field.name for field in dataclasses.fields(config)]
    if args.key is None:
        for key in settings:
            print(f"{key} = {json.dumps(getattr(config, key))}")
        return 0
    if args.key not in settings:
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
    if args.key == "weights" and value:
        check_weights_file(Path(value))
    setattr(config, args.key, value)
    save_config(home, config)
    print(f"{args.key} = {json.dumps(value)}")
    return 0
