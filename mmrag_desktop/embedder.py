"""The open_clip model: images and texts to L2-normalised embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from torchvision import transforms

from . import precision
from .config import Config, ConfigError
from .models import (find_weights, hub_files_missing, hub_offline, hub_side_repos, model_id,
                     models_dir, register_model_config)


def pick_device(setting: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; any other value is used as given."""
    if setting != "auto":
        return torch.device(setting)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Embedder:
    """An open_clip model on a device, with its own preprocess transform and tokenizer.

    Args:
        config: model, pretrained tag, weights file, device and custom model config.
        home: the app folder whose ``models/`` is searched for weights.
        random_weights: build the architecture with random weights (benchmarks, tests of
            speed); embeddings are then deterministic per seed but meaningless.

    Raises:
        ModelMissingError: no weights were found (the message says how to get them).
        ModelFileError: a custom model config is missing.
    """

    def __init__(self, config: Config, home: Path, random_weights: bool = False):
        register_model_config(config)
        self.device = pick_device(config.device)
        weights = None if random_weights else find_weights(config, home)
        self.model_id = ("random:" + config.model if weights is None
                         else model_id(config, weights, home))
        if random_weights:
            torch.manual_seed(0)
        with hub_offline():
            try:  # the tokenizer first: it fails fast where hub files are missing
                self.tokenizer = open_clip.get_tokenizer(config.model)
                # pretrained_text=False: the full checkpoint holds the text tower; never
                # fetch a Hugging Face text tower's base weights first.
                model, _, preprocess = open_clip.create_model_and_transforms(
                    config.model, pretrained=str(weights) if weights else None,
                    device=self.device, precision="fp32", pretrained_text=False)
            except (OSError, ValueError, RuntimeError) as exc:
                if not hub_side_repos(config) and "offline" not in str(exc).lower():
                    raise
                raise hub_files_missing(config, exc) from exc
        self.model = model.eval()
        self._pil_steps, self._mean, self._std = _split_preprocess(preprocess, self.device)
        size = self.model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.precision = self._choose_precision(config.precision, home)
        precision.apply(self.model, self.precision)
        self.dim = int(self.encode_texts(["a photo"]).shape[-1])

    def _choose_precision(self, setting: str, home: Path) -> precision.Choice:
        """*setting* if not ``auto``; else the measured choice for this model and machine,
        measured now (a few seconds, once) if it was not before.

        Raises:
            ConfigError: *setting* is not available on this device.
        """
        available = precision.candidates(self.device)
        if setting != "auto":
            if setting not in available and not (setting == "bf16" and self.device.type == "cpu"):
                raise ConfigError(f"precision {setting} is not available on "
                                  f"{self.device.type} (choose from auto, {', '.join(available)})")
            return precision.Choice(setting, setting, [])
        cache, key = models_dir(home) / "precision.json", precision.cache_key(self.model_id,
                                                                              self.device)
        choice = precision.cached_choice(cache, key)
        if choice is None or not {choice.image, choice.text} <= set(available):
            pixels = precision.probe_pixels(self.image_size, self.device)
            pixels = pixels.sub(self._mean).div(self._std)
            tokens = self.tokenizer(list(precision.PROBE_TEXTS)).to(self.device)
            choice = precision.pick(precision.measure(self.model, _encode_image, _encode_text,
                                                      pixels, tokens, self.device))
            precision.remember(cache, key, choice)
        return choice

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """open_clip's resize and centre crop of one RGB image, as pixels:
        (3, S, S) uint8 with S = ``image_size``. Scaling and normalisation happen per batch
        in :meth:`encode_images` (vectorised, and on the model's device)."""
        pixels = np.asarray(self._pil_steps(image).convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)

    @torch.inference_mode()
    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of images.

        Args:
            batch: (n, 3, S, S) uint8, from :meth:`to_tensor`.

        Returns:
            (n, d) float32, L2-normalised.
        """
        pixels = batch.to(self.device, non_blocking=True).float().div_(255)
        return _normalise(_encode_image(self.model, pixels.sub_(self._mean).div_(self._std)))

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Embed texts. Returns (n, d) float32, L2-normalised."""
        return _normalise(_encode_text(self.model, self.tokenizer(texts).to(self.device)))


def _encode_image(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The image tower on normalised pixels (n, 3, S, S) float32, cast to the tower's
    input dtype (its precision). Returns (n, d), not normalised."""
    return model.encode_image(pixels.to(next(model.visual.parameters()).dtype))


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower on tokens (n, context) int64. Returns (n, d), not normalised."""
    if _can_truncate(model):
        return _encode_text_truncated(model, tokens)
    return model.encode_text(tokens)


def _split_preprocess(preprocess, device: torch.device):
    """Split open_clip's transform into its PIL steps (resize, crop) and the mean and std of
    its final Normalize, as (1, 3, 1, 1) float32 tensors on *device*.

    Raises:
        ValueError: the transform does not end in ToTensor + Normalize.
    """
    steps = list(preprocess.transforms)
    normalize = steps[-1]
    if not isinstance(normalize, transforms.Normalize) or "ToTensor" not in type(steps[-2]).__name__:
        raise ValueError(f"unexpected open_clip preprocess: {preprocess}")
    shape = (1, 3, 1, 1)
    mean = torch.tensor(normalize.mean, dtype=torch.float32, device=device).view(shape)
    std = torch.tensor(normalize.std, dtype=torch.float32, device=device).view(shape)
    return transforms.Compose(steps[:-2]), mean, std


def _can_truncate(model: torch.nn.Module) -> bool:
    return (isinstance(model, open_clip.model.CLIP) and model.attn_mask is not None
            and getattr(model, "text_pool_type", "") == "argmax")


def _encode_text_truncated(model: open_clip.model.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """``CLIP.encode_text`` over only the positions up to the batch's last end-of-text
    token. The causal mask keeps every position from seeing later ones, and argmax pooling
    reads the end-of-text position (the highest token id), so the result is the same as over
    the full context (77 positions) at a fraction of the cost: a short query is ~10 tokens."""
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection if model.text_projection is not None else x


def _normalise(features: torch.Tensor) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)
