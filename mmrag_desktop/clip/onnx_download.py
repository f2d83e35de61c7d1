"""Published ONNX exports of the catalogue's models (:mod:`.clip.catalogue`): what any install
downloads to search, after the user has seen each file, its size, source and licence.

:func:`plan` asks the server for each file's size and SHA-256 (network); :func:`install`
downloads them into ``models/.download/<model>/`` (an interrupted download resumes there on
the next try), checks each against what the server said, turns the published layout
(rclip's or Immich's) into an export folder of the ONNX backend (:mod:`.clip.onnx_backend`),
runs it once, and only then moves it into place. A failure leaves no model installed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core import downloads
from ..core.downloads import RemoteFile
from .catalogue import CatalogueModel
from .identity import ModelFileError, model_slug, models_dir
from .tokenizer import clip_tokenizer, padded_tokenizer


@dataclass(frozen=True)
class DownloadPlan:
    """What installing *model* downloads: each file with its URL, size and SHA-256."""

    model: CatalogueModel
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        """Bytes, all files together."""
        return sum(f.size for f in self.files)


def plan(model: CatalogueModel) -> DownloadPlan:
    """Ask the Hub (or ``$HF_ENDPOINT``) for the size and SHA-256 of each of *model*'s files.
    Network.

    Raises:
        DownloadError: offline, or a file is not there (the message names it and the URL).
    """
    return DownloadPlan(model, tuple(
        downloads.probe(downloads.resolve_url(model.repo, path), f"{model.repo}/{path}")
        for path in model.files()))


def staging_folder(home: Path, model: CatalogueModel) -> Path:
    """Where *model*'s files gather while they download (kept after an interruption, so the
    next try resumes)."""
    return models_dir(home) / ".download" / model_slug(model.architecture, model.pretrained)


def install(download: DownloadPlan, home: Path,
            progress: Callable[[int], None] | None = None,
            cancel: threading.Event | None = None) -> Path:
    """Download *download*'s files (resuming what an earlier try left), check them, make
    them an export folder and run it once; returns the installed folder.
    ``progress(bytes so far, all files)``.

    Raises:
        DownloadCancelled: *cancel* was set (what arrived is kept, to resume).
        DownloadError: a file could not be downloaded or differs from what the server
            said; nothing was installed.
        ModelFileError: the files are not an export this app can run; nothing installed.
    """
    from .onnx_backend import install_export

    staging = staging_folder(home, download.model)
    staging.mkdir(parents=True, exist_ok=True)
    before = 0
    for remote, path in zip(download.files, download.model.files()):
        target = staging / path
        target.parent.mkdir(parents=True, exist_ok=True)
        report = (lambda done, before=before: progress(before + done)) if progress else None
        downloads.fetch(remote, target, report, cancel)
        before += remote.size
    try:
        folder = staging / "export"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (_from_rclip if download.model.layout == "rclip" else _from_immich)(
            download.model, staging, folder)
        return install_export(folder, home, move=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"the files of {download.model.name} from "
                             f"{download.model.repo} are not an export this app can run: "
                             f"{exc}; nothing was installed") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _meta(model: CatalogueModel, **preprocessing) -> dict:
    return {"model_id": model.model_id, "dim": 0, "source": {
        "name": model.name, "repo": model.repo, "licence": model.licence}, **preprocessing}


def _from_rclip(model: CatalogueModel, staging: Path, folder: Path) -> None:
    """rclip's layout → an export folder: the towers renamed, CLIP's tokenizer built from
    the vocabulary file, the preprocessing from the catalogue (rclip's repository holds
    none; the input side is then read from the image tower where it fixes one, by
    :func:`.clip.onnx_backend.install_export`)."""
    os.replace(staging / model.folder / "visual.onnx", folder / "image.onnx")
    os.replace(staging / model.folder / "textual.onnx", folder / "text.onnx")
    clip_tokenizer(staging / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz",
                   model.context_length).save(str(folder / "tokenizer.json"))
    meta = _meta(model, image_size=model.image_size, mean=list(model.mean), std=list(model.std),
                 interpolation=model.interpolation, resize_mode="shortest",
                 context_length=model.context_length, canonicalize=False)
    (folder / "model.json").write_text(json.dumps(meta, indent=1))


def _from_immich(model: CatalogueModel, staging: Path, folder: Path) -> None:
    """Immich's layout → an export folder: the towers renamed, the tokenizer set to the
    model's context length and padding token, the preprocessing from
    ``visual/preprocess_cfg.json`` and ``config.json`` (as Immich's ``OpenClipTextualEncoder``
    and ``OpenClipVisualEncoder`` read them)."""
    config = json.loads((staging / "config.json").read_text())
    text_cfg = config.get("text_cfg", {})
    preprocess = json.loads((staging / "visual" / "preprocess_cfg.json").read_text())
    pad = json.loads((staging / "textual" / "tokenizer_config.json").read_text())["pad_token"]
    pad = pad["content"] if isinstance(pad, dict) else pad
    context = int(text_cfg.get("context_length", 77))
    padded_tokenizer(staging / "textual" / "tokenizer.json", pad, context).save(
        str(folder / "tokenizer.json"))
    os.replace(staging / "visual" / "model.onnx", folder / "image.onnx")
    os.replace(staging / "textual" / "model.onnx", folder / "text.onnx")
    size = preprocess["size"]
    clean = (text_cfg.get("tokenizer_kwargs") or {}).get("clean")
    meta = _meta(model, image_size=int(size[0] if isinstance(size, list) else size),
                 mean=list(preprocess["mean"]), std=list(preprocess["std"]),
                 interpolation=preprocess.get("interpolation", "bicubic"),
                 resize_mode=preprocess.get("resize_mode", "shortest"),
                 context_length=context, canonicalize=clean == "canonicalize")
    (folder / "model.json").write_text(json.dumps(meta, indent=1))
