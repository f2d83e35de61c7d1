"""The torch backend of the CLIP model (open_clip, on CUDA, Apple MPS or the CPU): images
and texts to L2-normalised embeddings, each tower in the precision measured fastest here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from torchvision import transforms

from ..core.config import Config, ConfigError
from ..media.photos import RESAMPLING, RESIZE_MODES
from . import build as clip_build
from . import precision
from .hub import hub_files_missing, hub_offline, hub_side_repos
from .identity import TOWERS, ModelFileError, models_dir, register_model_config


def pick_device(setting: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; any other value is used as given."""
    if setting != "auto":
        return torch.device(setting)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class TorchCLIP:
    """An open_clip model on a device, with its own preprocess transform and tokenizer.
    Each tower (image, text) loads on first use, or with :meth:`load`. Thread-safe.

    Args:
        config: model, device, precision, custom model config.
        home: the app folder (its ``models/`` caches the precision choice).
        weights: the checkpoint; None for random weights (seeded: the same every time).
        model_id: what the weights are known as (see :func:`.clip.identity.model_id`).

    Raises (from the first use of a tower):
        ModelMissingError: files the model needs from the hub are not there.
        ModelFileError: the weights cannot be read or do not fit the architecture.
        ConfigError: the configured precision is not available on the device.
    """

    def __init__(self, config: Config, home: Path, weights: Path | None, model_id: str):
        register_model_config(config)
        self.config, self.home = config, home
        self.device = pick_device(config.device)
        self._weights, self.model_id = weights, model_id
        self.model: torch.nn.Module | None = None  # the loaded towers (visual None if not)
        self.tokenizer = None
        self.towers: set[str] = set()
        self._precision: precision.Choice | None = None
        self._lock = threading.RLock()

    def load(self, *towers: str) -> None:
        """Load *towers* (``image``, ``text``; default both) now, if not loaded yet."""
        for tower in towers or TOWERS:
            self._need(tower)

    @contextmanager
    def _offline(self) -> Iterator[None]:
        """The hub off; a failure to find a hub file it needs says how to get it."""
        with hub_offline():
            try:
                yield
            except (OSError, ValueError, RuntimeError) as exc:
                if isinstance(exc, ModelFileError) or (
                        not hub_side_repos(self.config) and "offline" not in str(exc).lower()):
                    raise
                raise hub_files_missing(self.config, exc) from exc

    def _build(self, towers: set[str]):
        """The model with *towers* in fp32 on the CPU, and its preprocess transform."""
        if self._weights is None:
            torch.manual_seed(0)  # the same random towers, whichever loads first
        with self._offline():
            return clip_build.build(self.config.model, self._weights, towers)

    def _tokenizer(self):
        with self._offline():
            return open_clip.get_tokenizer(self.config.model)

    def _need(self, tower: str) -> None:
        if tower in self.towers:
            return
        with self._lock:
            if tower in self.towers:
                return
            tokenizer = self._tokenizer() if tower == "text" else None  # fails fastest
            model, preprocess = self._build({tower})
            precision.apply(model, tower, getattr(self.precision, tower))
            model = model.to(self.device)
            if tower == "image":
                self._pil_steps, self._mean, self._std = _split_preprocess(preprocess,
                                                                           self.device)
                if self.model is None:
                    self.model = model
                else:
                    self.model.visual = model.visual
            else:
                self.tokenizer = tokenizer
                if self.model is not None:
                    model.visual = self.model.visual
                self.model = model
            self.towers.add(tower)

    @property
    def precision(self) -> precision.Choice:
        """Each tower's precision: the configured one, or the measured choice for this
        model and machine (measured on first use, a few seconds, then cached)."""
        with self._lock:
            if self._precision is None:
                self._precision = self._choose_precision(self.config.precision)
            return self._precision

    def _choose_precision(self, setting: str) -> precision.Choice:
        available = precision.candidates(self.device)
        if setting != "auto":
            if setting not in available and not (setting == "bf16" and self.device.type == "cpu"):
                raise ConfigError(f"precision {setting} is not available on "
                                  f"{self.device.type} (choose from auto, {', '.join(available)})")
            return precision.Choice(setting, setting, [])
        cache = models_dir(self.home) / "precision.json"
        key = precision.cache_key(self.model_id, self.device)
        choice = precision.cached_choice(cache, key)
        if choice is None or not {choice.image, choice.text} <= set(available):
            choice = precision.pick(self.measure_precisions())
            precision.remember(cache, key, choice)
        return choice

    def fp32_model(self):
        """A fresh copy of the whole model in fp32 on the CPU, its preprocess transform and
        its tokenizer (for measuring precisions, and for exporting)."""
        model, preprocess = self._build(set(TOWERS))
        return model, preprocess, self._tokenizer()

    def measure_precisions(self) -> list[precision.Trial]:
        """Time every precision candidate of this device on this model (both towers, a
        fresh fp32 copy; seconds). See :func:`.clip.precision.measure`."""
        model, preprocess, tokenizer = self.fp32_model()
        model = model.to(self.device)
        _, mean, std = _split_preprocess(preprocess, self.device)
        pixels = precision.probe_pixels(_image_size(model), self.device).sub(mean).div(std)
        tokens = tokenizer(list(precision.PROBE_TEXTS)).to(self.device)
        return precision.measure(model, _encode_image, _encode_text, pixels, tokens,
                                 self.device)

    @property
    def image_size(self) -> int:
        """Pixels: the image tower's input side (loads the image tower)."""
        self._need("image")
        return _image_size(self.model)

    @property
    def dim(self) -> int:
        """The embedding width, from the architecture's config (0 when it does not say)."""
        return int((open_clip.get_model_config(self.config.model) or {}).get("embed_dim") or 0)

    @property
    def pixel_spec(self) -> tuple[int, str, str] | None:
        """(input side S in pixels, interpolation, resize mode) where open_clip's
        preprocessing is one that :func:`.media.photos.model_input` repeats without torch;
        None for other modes (loads the image tower)."""
        self._need("image")
        cfg = self.model.visual.preprocess_cfg
        mode = cfg.get("resize_mode", "shortest")
        if mode not in RESIZE_MODES or cfg.get("interpolation", "bicubic") not in RESAMPLING:
            return None
        return _image_size(self.model), cfg.get("interpolation", "bicubic"), mode

    def to_pixels(self, image: Image.Image) -> np.ndarray:
        """open_clip's resize and centre crop of one RGB image: (3, S, S) uint8 with S =
        ``image_size``. Scaling and normalisation happen per batch in :meth:`encode_images`
        (vectorised, and on the model's device)."""
        self._need("image")
        pixels = np.asarray(self._pil_steps(image).convert("RGB"), dtype=np.uint8)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    @torch.inference_mode()
    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """Embed a batch of images.

        Args:
            batch: (n, 3, S, S) uint8, from :meth:`to_pixels`.

        Returns:
            (n, d) float32, L2-normalised.
        """
        self._need("image")
        pixels = torch.from_numpy(batch).to(self.device, non_blocking=True).float().div_(255)
        return _normalise(_encode_image(self.model, pixels.sub_(self._mean).div_(self._std)))

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Embed texts. Returns (n, d) float32, L2-normalised."""
        self._need("text")
        return _normalise(_encode_text(self.model, self.tokenizer(texts).to(self.device)))


def _image_size(model: torch.nn.Module) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


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
