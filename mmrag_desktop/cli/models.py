"""The CLIP model: ``mmrag models`` (status, list, download, use, import, export-onnx)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..clip.identity import ModelMissingError
from ..clip.model_files import find_weights
from ..core.config import home_dir, load_config
from ..core.downloads import hub_endpoint
from ..core.text import size_text
from ..library.facade import Library
from .output import CommandError, confirm_download, open_library


def add_models(sub) -> None:
    s = sub.add_parser("models", help="choose, download, import or export (ONNX) the search "
                       "model")
    s.add_argument("action", nargs="?", default="status",
                   choices=["status", "list", "download", "use", "import", "export-onnx"])
    s.add_argument("name", nargs="?", metavar="NAME|PATH",
                   help="download / use: a model of `models list`; import: a weights file or "
                        "an export folder")
    s.add_argument("--yes", action="store_true", help="download without asking")
    s.add_argument("--weights", action="store_true",
                   help="download: open_clip's checkpoint for the torch backend instead of "
                        "the ONNX export")
    s.set_defaults(func=cmd_models)


def _list(library: Library) -> int:
    chosen = library.model_files.chosen()
    for model in library.model_files.catalogue():
        mark = "*" if model is chosen else " "
        print(f"{mark} {model.name}\n    {model.good_at}\n"
              f"    about {model.download_mb:,} MB · {model.images_per_second:g} photos/s "
              f"indexed here (2 cores) · {model.published}\n"
              f"    from https://huggingface.co/{model.repo} · {model.licence}")
    print("(* the configured model; change it with: mmrag models use NAME)")
    return 0


def _download(library: Library, name: str | None, assume_yes: bool) -> int:
    """``models download [NAME]``: each file of the model's published export, its size and
    source, and the licence; downloaded after the user's yes, with progress."""
    try:
        plan = library.model_files.plan(name)
        model = plan.model
        print(f"{model.name}: {model.good_at}")
        for remote in plan.files:
            print(f"  {remote.name}  {size_text(remote.size)}")
        print(f"{size_text(plan.size)} from {hub_endpoint()}, into "
              f"{library.model_files.folder}\nlicence: {model.licence}")
        if not confirm_download(assume_yes):
            return 1
        with tqdm(total=plan.size, unit="B", unit_scale=True, file=sys.stderr) as bar:
            target = library.model_files.install(plan, lambda done: bar.update(done - bar.n))
    except OSError as exc:
        raise CommandError(f"{exc}\nWithout network access, import an export instead: mmrag "
                           "models import FOLDER") from exc
    print(f"installed {target}")
    if library.model_files.chosen() is not model:
        print(f"search with it: mmrag models use {model.name}")
    return 0


def _download_weights(library: Library, assume_yes: bool) -> int:
    """``models download --weights``: open_clip's checkpoint on the Hugging Face Hub."""
    config = library.config
    try:
        source = library.model_files.weights_source()
        print(f"{config.model} ({config.pretrained}): {source.filename}, "
              f"{size_text(source.size)}, from {source.remote.url}")
        if source.extras:
            print(f"and the tokenizer / configuration files of {', '.join(source.extras)} "
                  "(no weights; a few MB)")
        if not confirm_download(assume_yes):
            return 1
        target = library.model_files.download_weights()
    except OSError as exc:
        raise CommandError(f"{exc}\nWithout network access, import a file instead: mmrag "
                           "models import FILE") from exc
    print(f"saved {target}")
    return 0


def cmd_models(args) -> int:
    home = home_dir()
    config = load_config(home)
    if args.action == "list":
        return _list(open_library(args))
    if args.action == "use":
        if not args.name:
            raise CommandError("models use needs a NAME (see mmrag models list)")
        model = open_library(args).model_files.use(args.name)
        print(f"the search model is now {model.name}; `mmrag index` embeds the photos with it "
              "(the other model's embeddings are kept)")
    elif args.action == "import":
        if not args.name:
            raise CommandError("models import needs a PATH")
        target = open_library(args).model_files.import_file(Path(args.name))
        what = "the ONNX export " if target.is_dir() else ""
        print(f"imported {what}{args.name} → {target} ({config.model}, {config.pretrained})")
    elif args.action == "download":
        if args.weights:
            return _download_weights(open_library(args), args.yes)
        return _download(open_library(args), args.name, args.yes)
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
        print(f"ONNX export: {export or 'none (mmrag models download, or export-onnx)'}")
    return 0
