"""People: ``mmrag people`` lists, names, merges, splits and corrects the people the
understanding pass found faces of, or forgets every face."""

from __future__ import annotations

import json

from ..core.paths import display_path
from .output import CommandError, open_library


def add_people(sub) -> None:
    s = sub.add_parser(
        "people", help="the people in your photos: list, name, merge, move faces, forget",
        description="Faces are found by the understanding pass (`mmrag understand`, the "
        "setting `understand` lists `faces`) and grouped into people. Actions: "
        "list (default); name ID NAME; merge INTO OTHER; move PERSON FACE… (PERSON `new` "
        "splits the faces off as a new person); not-this-person FACE…; not-a-face FACE…; "
        "hide ID / show ID; forget (turns faces off and deletes every face and person).")
    s.add_argument("action", nargs="?", default="list",
                   choices=["list", "name", "merge", "move", "not-this-person", "not-a-face",
                            "hide", "show", "forget"])
    s.add_argument("args", nargs="*", help="person ids or names, face ids, a name")
    s.add_argument("--json", action="store_true", help="print JSON: a list of {id, name, "
                   "faces, photos: [paths]}")
    s.add_argument("--all", action="store_true",
                   help="also hidden people, and each face in no person as an entry of its own")
    s.set_defaults(func=cmd_people)


def cmd_people(args) -> int:
    engine = open_library(args, read_only=args.action == "list")
    people = engine.people
    a = args.args
    if args.action == "list":
        return _list(engine, args.json, args.all)
    if args.action == "name":
        _need(a, 2, "mmrag people name ID NAME")
        people.name(a[0], " ".join(a[1:]))
        print(f"named {a[0]}: {' '.join(a[1:])}")
    elif args.action == "merge":
        _need(a, 2, "mmrag people merge INTO OTHER")
        people.merge(a[0], a[1])
        print(f"merged {a[1]} into {a[0]}")
    elif args.action == "move":
        _need(a, 2, "mmrag people move PERSON|new FACE…")
        person = people.move(_faces(a[1:]), None if a[0] == "new" else a[0])
        print(f"moved {len(a) - 1} face(s) to person {person}")
    elif args.action in ("not-this-person", "not-a-face"):
        _need(a, 1, f"mmrag people {args.action} FACE…")
        correct = people.not_this_person if args.action == "not-this-person" else people.not_a_face
        for face in _faces(a):
            correct(face)
        print(f"corrected {len(a)} face(s): kept across later grouping")
    elif args.action in ("hide", "show"):
        _need(a, 1, f"mmrag people {args.action} ID")
        people.hide(a[0], args.action == "hide")
    else:
        forgotten = people.forget()
        print(f"forgot {forgotten:,} faces and every person; finding faces is off "
              "(`mmrag config understand text,places,faces` turns it on again)")
    return 0


def _list(engine, as_json: bool, everything: bool) -> int:
    entries = []
    for person in engine.people.everyone(include_hidden=everything):
        paths = [display_path(path) for _, path in engine.people.photos(person.id)]
        entries.append({"id": person.id, "name": person.name, "faces": person.faces,
                        "photos": paths})
    if everything:
        for face, path in engine.people.loose_faces():
            entries.append({"id": None, "name": "", "faces": 1, "photos": [display_path(path)],
                            "face": face})
    if as_json:
        print(json.dumps(entries, indent=1, ensure_ascii=False))
        return 0
    for entry in entries:
        label = entry["name"] or "(unnamed)"
        who = f"face {entry['face']}" if entry["id"] is None else f"{entry['id']:>5}"
        print(f"{who}  {label}: {entry['faces']} faces in {len(entry['photos'])} photos")
    if not entries:
        print("no people yet: faces are found by `mmrag understand`", flush=True)
    return 0


def _need(args: list[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise CommandError(f"usage: {usage}")


def _faces(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError as exc:
        raise CommandError(f"face ids are numbers (mmrag people --all --json lists them): "
                           f"{exc}") from exc
