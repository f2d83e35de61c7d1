"""CLIP weights on disk: the configured model's files found (a weights file or, in the
bundle, an ONNX export) and a local file or export imported into the models folder. Nothing
here touches the network."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.config import Config
from .hub import HF_FILENAMES, hub_files_missing, hub_offline, hub_repo
from .identity import (
    WEIGHT_SUFFIXES,
    ModelFileError,
    ModelMissingError,
    install_weights,
    model_id,
    model_slug,
    models_dir,
    named_model_id,
    register_model_config,
)

# open_clip is imported inside the functions that need it: it imports torch (seconds), and
# the GUI and `mmrag status` must start without waiting for that.


def configured_model_id(config: Config, home: Path, random_weights: bool = False) -> str:
    """The :func:`model_id` of the configured weights (``random:ARCH`` with random weights;
    without a weights file, that of an imported ONNX export of the architecture), found
    without loading the model: no torch import when the weights file is set or in the
    models folder.

    Raises:
        ModelMissingError: no weights were found.
    """
    if random_weights:
        return "random:" + config.model
    found = find_model(config, home)
    if found.is_dir():
        from .onnx_backend import OnnxCLIP

        return OnnxCLIP(found).model_id
    return model_id(config, found, home)


def find_model(config: Config, home: Path) -> Path:
    """The configured weights file (:func:`find_weights`) or, in an install that has only
    ONNX exports (the bundle), the export of the configured published weights, else the
    newest export of the architecture (one imported from custom weights).

    Raises:
        ModelMissingError: neither was found; the message says how to get one.
    """
    try:
        return find_weights(config, home)
    except ModelMissingError:
        from .onnx_backend import find_export, find_export_of

        export = (config.pretrained and
                  find_export(home, named_model_id(config.model, config.pretrained))) or \
            find_export_of(home, config.model)
        if export is None:
            raise
        return export


def find_weights(config: Config, home: Path) -> Path:
    """Locate the weights file, in order: ``config.weights``, the app's models folder,
    the Hugging Face cache (read offline, never downloaded here).

    Raises:
        ModelMissingError: nothing was found; the message names both ways to get weights.
    """
    if config.weights:
        path = Path(config.weights)
        if not path.is_file():
            raise ModelMissingError(f"weights file not found: {path}")
        return path
    slug = model_slug(config.model, config.pretrained)
    for suffix in WEIGHT_SUFFIXES:
        candidate = models_dir(home) / f"{slug}{suffix}"
        if candidate.is_file():
            return candidate
    repo = hub_repo(config)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in HF_FILENAMES:
            cached = try_to_load_from_cache(repo, filename)
            if isinstance(cached, str):
                return Path(cached)
    source = f" ({repo} on the Hugging Face hub)" if repo else ""
    raise ModelMissingError(
        f"No weights found for {config.model} ({config.pretrained}).\n"
        f"  • Download them{source}: mmrag models download\n"
        f"  • Or import a file you already have: mmrag models import FILE\n"
        f"Looked in: {models_dir(home)} and the Hugging Face cache."
    )


def import_model(source: Path, config: Config, home: Path) -> Path:
    """Import a weights file (:func:`import_weights`) or an ONNX export folder
    (:func:`.clip.onnx_backend.install_export`) into the models folder; returns where it now
    lies.

    Raises:
        ModelFileError: it is missing, damaged, or does not fit the configured model.
    """
    if source.is_dir():
        from .onnx_backend import install_export

        return install_export(source, home)
    return import_weights(source, config, home)


def import_weights(source: Path, config: Config, home: Path) -> Path:
    """Check that *source* loads into the configured architecture, then copy it into the
    models folder, where :func:`find_weights` finds it.

    Raises:
        ModelFileError: the file is missing, of an unknown type, or its tensors do not fit.
    """
    if not source.is_file():
        raise ModelFileError(f"no such file: {source}")
    suffix = source.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ModelFileError(f"{source.name}: expected one of {', '.join(WEIGHT_SUFFIXES)}")
    register_model_config(config)
    import open_clip

    with hub_offline():
        try:
            model = open_clip.create_model(config.model, pretrained=None, pretrained_text=False)
        except (OSError, ValueError) as exc:
            raise hub_files_missing(config, exc) from exc
    try:
        open_clip.load_checkpoint(model, str(source))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelFileError(
            f"{source.name} does not fit {config.model}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    staged = models_dir(home) / f".{model_slug(config.model, config.pretrained)}{suffix}.part"
    shutil.copyfile(source, staged)
    return install_weights(staged, config, home, suffix)

