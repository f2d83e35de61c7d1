"""Finding photos: ``mmrag search`` and personal ``concepts``."""

from __future__ import annotations

import argparse
import json
import sys

from ..core.paths import display_path
from ..core.text import clock, elide
from ..domain.concepts import TAGGED, ConceptError
from ..domain.query import Filters, Term
from ..library.search import SEARCH_FIELDS, SEARCH_MODES
from .output import open_library


def add_search(sub) -> None:
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
    s.add_argument("--person", action="append", default=[], metavar="NAME",
                   help="only photos showing this person (a name or id from `mmrag people`; "
                        "repeatable: photos with all of them). A person's name in the query "
                        "text does the same")
    s.add_argument("--album", action="append", default=[], metavar="NAME",
                   help="only photos in this album (`mmrag albums`; repeatable: in all of "
                        "them). \"in the NAME album\" in the query does the same")
    s.add_argument("--favourites", action="store_true",
                   help="only favourites (`mmrag favourite`); \"favourite\" in the query too")
    s.add_argument("--rating", type=int, choices=range(1, 6), default=0, metavar="STARS",
                   help="only photos rated at least STARS (1–5, `mmrag rate`); \"4 stars\" "
                        "in the query too")
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
    s.add_argument("--explain", action="store_true",
                   help="also say how the query was understood: dates, place, people, camera, "
                        "media, the text shown, exclusions, and the rest searched by meaning "
                        "(with --json: {\"understood\": {…}, \"results\": […]})")
    s.add_argument("--literal", action="store_true",
                   help="search the query text as typed: no dates, places, people or other "
                        "filters are read from it (keyword mode always searches as typed)")
    s.set_defaults(func=cmd_search)


def add_concepts(sub) -> None:
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
    engine = open_library(args, read_only=True)
    filters.people = [i for name in args.person for i in engine.people.ids(name)]
    filters.albums = [engine.albums.get(name).id for name in args.album]
    filters.favourites, filters.min_rating = args.favourites, args.rating
    results = engine.search.run(terms, args.top_k, args.min_score, filters, args.mode, args.field,
                                understand=not args.literal)
    understood = (engine.search.understand(" ".join(args.query)).as_dict()
                  if args.explain and args.query and not args.literal and args.mode != "keyword"
                  else None)
    if args.json:
        listed = [{"path": display_path(r.path),
                   "score": None if r.score is None else round(r.score, 6),
                   **{k: v for k, v in r.meta.items() if k != "path"}} for r in results]
        print(json.dumps({"understood": understood, "results": listed} if args.explain
                         else listed, indent=1, ensure_ascii=False))
    else:
        if understood:
            parts = [f"{key}: {value}" for key, value in understood.items() if value]
            print("understood: " + ("; ".join(parts) or "nothing"), file=sys.stderr)
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
            gone = "  (not there now: its folder is offline or the file was moved)" \
                if r.meta.get("missing") else ""
            who = f"  <{', '.join(r.meta['people'])}>" if r.meta.get("people") else ""
            marked = ("  ♥" if r.meta.get("favourite") else "") + (
                f"  {'★' * r.meta['rating']}" if r.meta.get("rating") else "")
            print(f"{score}{taken}  {display_path(r.path)}{at}{gone}{where}{who}{marked}{tags}{why}")
        if not results:
            print("no results", file=sys.stderr)
    return 0


def cmd_concepts(args) -> int:
    if args.action != "list" and not args.name:
        raise ConceptError(f"mmrag concepts {args.action} needs a concept's name")
    if args.action in ("add", "reject") and not args.photos:
        raise ConceptError(f"mmrag concepts {args.action} needs example photos")
    engine = open_library(args, read_only=args.action == "list")
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


def add_places(sub) -> None:
    s = sub.add_parser("places", help="where your photos were taken: countries and towns, "
                       "with how many photos each")
    s.add_argument("--json", action="store_true",
                   help="print JSON: {country: [{\"town\", \"photos\"}]}")
    s.set_defaults(func=cmd_places)


def cmd_places(args) -> int:
    places = open_library(args, read_only=True).search.places()
    if args.json:
        print(json.dumps({country: [{"town": t, "photos": n} for t, n in towns]
                          for country, towns in places.items()}, indent=1, ensure_ascii=False))
        return 0
    for country, towns in places.items():
        print(f"{country or 'Elsewhere'}: {sum(n for _, n in towns):,} photos")
        for town, photos in towns:
            print(f"  {town}: {photos:,}")
    if not places:
        print("no places yet: they are named from the photos' EXIF GPS by `mmrag understand`")
    return 0
