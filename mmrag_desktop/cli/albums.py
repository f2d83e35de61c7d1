"""Albums, favourites and ratings: ``mmrag albums``, ``mmrag favourite``, ``mmrag rate``, and
``mmrag export`` (copies of photos, an album or the favourites in a folder)."""

from __future__ import annotations

import json
import sys

from tqdm import tqdm

from ..core.paths import display_path
from .output import CommandError, open_library


def add_albums(sub) -> None:
    s = sub.add_parser(
        "albums", help="albums of your photos: list, create, add, remove, rename, delete",
        description="A photo can be in any number of albums; albums keep photos by content, "
        "so a moved or renamed photo stays in them. Actions: list (default); show NAME; "
        "create NAME; add NAME PHOTO… (creates the album if new); remove NAME PHOTO…; "
        "rename NAME NEW; delete NAME (the photos stay in the library).")
    s.add_argument("action", nargs="?", default="list",
                   choices=["list", "show", "create", "add", "remove", "rename", "delete"])
    s.add_argument("name", nargs="?", help="the album's name (quote names with spaces)")
    s.add_argument("args", nargs="*", help="photo files, or the new name")
    s.add_argument("--json", action="store_true",
                   help="print JSON: a list of {name, photos: count}, or with show the paths")
    s.set_defaults(func=cmd_albums)


def add_favourite(sub) -> None:
    s = sub.add_parser("favourite", help="mark photos as favourites (or --off: not)")
    s.add_argument("photos", nargs="+", help="photo files of the library")
    s.add_argument("--off", action="store_true", help="no longer favourites")
    s.set_defaults(func=cmd_favourite)


def add_rate(sub) -> None:
    s = sub.add_parser("rate", help="give photos a star rating, 1–5 (0 takes it away)")
    s.add_argument("stars", type=int, choices=range(6), metavar="STARS", help="0 to 5")
    s.add_argument("photos", nargs="+", help="photo files of the library")
    s.set_defaults(func=cmd_rate)


def cmd_albums(args) -> int:
    engine = open_library(args, read_only=args.action in ("list", "show"))
    albums = engine.albums
    if args.action != "list" and not args.name:
        raise CommandError(f"usage: mmrag albums {args.action} NAME …")
    if args.action == "list":
        rows = albums.all()
        if args.json:
            print(json.dumps([{"name": a.name, "photos": a.photos} for a in rows], indent=1,
                             ensure_ascii=False))
        for a in rows if not args.json else []:
            print(f"{a.name}: {a.photos:,} photos")
        if not rows and not args.json:
            print("no albums yet: mmrag albums add NAME PHOTO…")
    elif args.action == "show":
        paths = [display_path(p) for p in albums.photos(args.name)]
        print(json.dumps(paths, indent=1, ensure_ascii=False) if args.json else "\n".join(paths))
    elif args.action == "create":
        print(f"created the album {albums.create(args.name).name}")
    elif args.action in ("add", "remove"):
        if not args.args:
            raise CommandError(f"usage: mmrag albums {args.action} NAME PHOTO…")
        if args.action == "add":
            added = albums.add(args.name, args.args, create=True)
            print(f"added {added} photo(s) to {albums.get(args.name).name}")
        else:
            print(f"removed {albums.remove(args.name, args.args)} photo(s) from {args.name}")
    elif args.action == "rename":
        if len(args.args) != 1:
            raise CommandError("usage: mmrag albums rename NAME NEW")
        print(f"renamed {args.name} to {albums.rename(args.name, args.args[0]).name}")
    else:
        held = albums.delete(args.name)
        print(f"deleted the album {args.name} ({len(held)} photos; they stay in the library)")
    return 0


def cmd_favourite(args) -> int:
    open_library(args).albums.favourite(args.photos, not args.off)
    print(f"{len(args.photos)} photo(s) {'no longer favourites' if args.off else 'are favourites'}")
    return 0


def cmd_rate(args) -> int:
    open_library(args).albums.rate(args.photos, args.stars)
    print(f"rated {len(args.photos)} photo(s) {'★' * args.stars or 'with no stars'}")
    return 0


def add_export(sub) -> None:
    s = sub.add_parser("export", help="copy photos (or an album, or your favourites) to a folder, "
                       "optionally made smaller")
    s.add_argument("folder", help="the folder to copy into (it must exist)")
    s.add_argument("photos", nargs="*", help="photo files of the library")
    s.add_argument("--album", default="", metavar="NAME", help="every photo of this album")
    s.add_argument("--favourites", action="store_true", help="every favourite")
    s.add_argument("--max-side", type=int, metavar="PX",
                   help="write photos longer than PX pixels as JPEGs PX long (videos are copied)")
    s.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..library.export import export_photos

    paths = list(args.photos)
    if args.album or args.favourites:
        engine = open_library(args, read_only=True)
        if args.album:
            paths += engine.albums.photos(args.album)
        if args.favourites:
            paths += engine.albums.favourites()
    if not paths:
        raise CommandError("nothing to export: name photos, --album NAME or --favourites")
    paths = list(dict.fromkeys(paths))
    with tqdm(total=len(paths), unit="photo", file=sys.stderr) as bar:
        report = export_photos(paths, args.folder, args.max_side,
                               on_progress=lambda done, _total: bar.update(done - bar.n))
    for path, why in report.skipped:
        print(f"skipped {display_path(path)}: {why}", file=sys.stderr)
    print(f"exported {len(report.written)} photo(s) to {display_path(args.folder)}")
    return 0 if not report.skipped else 1
