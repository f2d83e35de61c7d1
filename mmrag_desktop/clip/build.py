"""Building an open_clip model from its checkpoint, one tower at a time.

open_clip builds every parameter at random and then overwrites it from the checkpoint
(3 s of a ViT-B's start-up on this machine) and always builds both towers. Here the random
fills are skipped when a checkpoint follows, only the wanted tower's tensors are read from
the file, and they become the parameters without a copy (``load_state_dict(assign=True)``).
A text query needs only the text tower: about 40 % of a ViT-B's weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import open_clip
import torch

from .identity import ModelFileError


def tower_of(key: str) -> str:
    """Which tower a parameter (open_clip state-dict name) belongs to: ``visual.*`` is the
    image tower; the rest (text transformer, embeddings, logit scale) the text tower."""
    return "image" if key.startswith("visual.") else "text"


@contextmanager
def skipped_random_init() -> Iterator[None]:
    """Make ``torch.nn.init``'s fills no-ops while a model whose every parameter is about
    to be replaced from a checkpoint is built (the loader checks that none is missing)."""
    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {name: getattr(torch.nn.init, name) for name in names}
    for name in names:
        setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


@contextmanager
def _quiet_about_random_weights() -> Iterator[None]:
    """open_clip warns that a model built without its weights is "initialized randomly";
    here the weights follow at once, so the warning would only alarm."""
    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def build(model_name: str, weights: Path | None, towers: set[str]):
    """The architecture *model_name* on the CPU in fp32 with *towers* (``image``, ``text``)
    loaded from *weights* (None: random, seeded by the caller), and open_clip's image
    preprocess transform. Without ``image``, ``model.visual`` is None; without ``text``,
    every other submodule and parameter is.

    Raises:
        ModelFileError: the file cannot be read, lacks tensors of a wanted tower, or has
            extra ones.
        OSError, RuntimeError, ValueError: from open_clip or the file (unreadable, damaged).
    """
    whole = weights is not None and weights.suffix in (".npz", ".npy")  # big_vision: open_clip
    with skipped_random_init() if weights is not None and not whole else nullcontext(), \
            _quiet_about_random_weights() if weights is not None else nullcontext():
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=None, load_weights=False, precision="fp32",
            pretrained_text=False)
    if whole:
        open_clip.load_checkpoint(model, str(weights))
    elif weights is not None:
        _load(model, weights, lambda key: tower_of(key) in towers)
    if "image" not in towers:
        model.visual = None
    if "text" not in towers:  # never loaded: drop them before they are moved anywhere
        for name, _ in list(model.named_children()):
            if name != "visual":
                setattr(model, name, None)
        for name, _ in list(model.named_parameters(recurse=False)):
            setattr(model, name, None)
    return model.eval(), preprocess


def _read(path: Path, keep: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint at *path* whose names *keep* accepts, reading no other
    (safetensors by key; a torch zip checkpoint memory-mapped). A checkpoint in another
    project's naming (no ``visual.*`` tensors) is read whole, to be converted first."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as file:
            keys = list(file.keys())
            if not any(key.startswith("visual.") for key in keys):
                keep = _everything
            return {key: file.get_tensor(key) for key in keys if keep(key)}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be mapped
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if next(iter(checkpoint)).startswith("module."):  # saved from DistributedDataParallel
        checkpoint = {key[7:]: value for key, value in checkpoint.items()}
    if not any(key.startswith("visual.") for key in checkpoint):
        keep = _everything
    return {key: value for key, value in checkpoint.items() if keep(key)}


def _everything(key: str) -> bool:
    return True


def _load(model: torch.nn.Module, path: Path, keep: Callable[[str], bool]) -> None:
    from open_clip.factory import (
        convert_state_dict,
        convert_to_custom_text_state_dict,
        resize_pos_embed,
        resize_text_pos_embed,
    )

    try:
        state = _read(path, keep)
    except Exception as exc:  # noqa: BLE001 - safetensors, pickle, zip: many ways to fail
        raise ModelFileError(f"{path} cannot be read as model weights (damaged or not a "
                             f"checkpoint?): {exc}") from exc
    # open_clip's own fix-ups of a checkpoint, as in open_clip.load_checkpoint
    state = convert_state_dict(model, state)
    if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
        state = convert_to_custom_text_state_dict(state)
    for key in ("logit_scale", "logit_bias"):
        target = getattr(model, key, None)
        if key in state and target is not None and target.ndim != state[key].ndim:
            state[key] = state[key].reshape(target.shape)
    if "logit_bias" not in state and getattr(model, "logit_bias", None) is not None:
        state["logit_bias"] = torch.zeros(model.logit_bias.shape)
    state.pop("text.transformer.embeddings.position_ids", None)
    resize_pos_embed(state, model)
    resize_text_pos_embed(state, model)
    state = {key: value for key, value in state.items() if keep(key)}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [key for key in missing if keep(key)]
    if missing or unexpected:
        raise ModelFileError(
            f"{path.name} does not fit this architecture: "
            f"{len(missing)} tensors missing ({', '.join(missing[:3])}), "
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
