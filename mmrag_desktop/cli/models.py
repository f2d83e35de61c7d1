"""The CLIP model's files: ``mmrag models`` (show, download, import, export-onnx)."""

from __future__ import annotations

import time
from pathlib import Path

from ..clip.hub import HubSource
from ..clip.identity import ModelMissingError
from ..clip.model_files import find_weights
from ..core.config import home_dir, load_config
from ..core.text import size_text
from ..library.facade import Library
from .output import CommandError, confirm_download, open_library


def add_models(sub) -> None:
    s = sub.add_parser("models", help="show, download, import or export (ONNX) CLIP weights")
    s.add_argument("action", choices=["status", "download", "import", "export-onnx"], nargs="?",
                   default="status")
    s.add_argument("file", nargs="?", help="weights file to import")
    s.add_argument("--yes", action="store_true", help="download without asking")
    s.set_defaults(func=cmd_models)


def _download(library: Library, assume_yes: bool) -> int:
    """``models download``: what the library's model service would fetch (the weights on the
    Hugging Face hub where torch runs, else the published ONNX export), said with its size
    and source; downloaded after the user's yes."""
    config = library.config
    try:
        source = library.model_files.source()
        if isinstance(source, HubSource):
            size = size_text(source.size) if source.size else "unknown size"
            print(f"{config.model} ({config.pretrained}): {source.filename}, {size}, "
                  f"from {source.repo_id} on the Hugging Face hub")
            if source.extras:
                print(f"and the tokenizer / configuration files of {', '.join(source.extras)} "
                      "(no weights; a few MB)")
        else:
            export, url = source
            print(f"{config.model} ({config.pretrained}): the ONNX export {export.file}, "
                  f"{size_text(export.size)}, from {url}\n(weights from {export.source}, "
                  f"licence {export.licence})")
        if not confirm_download(assume_yes):
            return 1
        target = library.model_files.download(source)
    except OSError as exc:
        what = "a file" if library.model_files.runs_torch() else "an export"
        raise CommandError(f"{exc}\nWithout network access, import {what} instead: mmrag "
                           f"models import {'FILE' if what == 'a file' else 'FOLDER'}") from exc
    print(f"saved {target}")
    return 0


def cmd_models(args) -> int:
    home = home_dir()
    config = load_config(home)
    if args.action == "import":
        if not args.file:
            raise CommandError("models import needs a FILE")
        target = open_library(args).model_files.import_file(Path(args.file))
        what = "the ONNX export " if target.is_dir() else ""
        print(f"imported {what}{args.file} → {target} ({config.model}, {config.pretrained})")
    elif args.action == "download":
        return _download(open_library(args), args.yes)
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
