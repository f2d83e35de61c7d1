"""The vision-language model: ``mmrag ask``, ``extract`` and ``vlm``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..core.config import home_dir, load_config
from ..core.paths import display_path
from ..core.text import size_text
from ..domain.query import Filters
from ..domain.schemas import SCHEMAS, to_csv
from ..vlm.model import (
    VisionLanguageModel,
    download_recommended,
    inspect_files,
    recommended_files,
    use_files,
)
from .output import CommandError, UsageError, confirm_download, open_library


def add_ask(sub) -> None:
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


def add_extract(sub) -> None:
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


def add_vlm(sub) -> None:
    s = sub.add_parser("vlm", help="show, set or download the vision-language model")
    s.add_argument("action", nargs="?", default="status", choices=["status", "set", "download"])
    s.add_argument("files", nargs="*", help="set: MODEL.gguf [MMPROJ.gguf]")
    s.add_argument("--yes", action="store_true", help="download without asking")
    s.set_defaults(func=cmd_vlm)


def cmd_ask(args) -> int:
    from ..library.ask import Conversation, ask_photo

    engine = open_library(args, read_only=True)
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
        engine = open_library(args)
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
        results = open_library(args, read_only=True).updates.extracted(args.schema)
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
            raise UsageError("usage: mmrag vlm set MODEL.gguf [MMPROJ.gguf]")
        model = Path(args.files[0]).resolve()
        mmproj = Path(args.files[1]).resolve() if len(args.files) == 2 else None
        info = use_files(home, config, model, mmproj)
        print(f"vision-language model set: {model.name} ({info.family}"
              f"{', own chat template' if info.chat_template else ', family chat template'})"
              f"{f', sees photos through {mmproj.name}' if mmproj else ', text only'}")
        return 0
    if args.action == "download":
        try:
            listing = "\n".join(f"  {f.name} ({size_text(f.size)}) from {f.url}"
                                 for f in recommended_files())
            print(f"{listing}\ninto {home / 'vlm'}")
            if not confirm_download(args.yes):
                return 1
            pair = download_recommended(home)
        except OSError as exc:
            raise CommandError(f"{exc}\nSet a local pair instead: mmrag vlm set MODEL.gguf "
                               "MMPROJ.gguf") from exc
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
