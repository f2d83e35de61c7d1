"""The open_clip model: images and texts to L2-normalised embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image

from .config import Config
from .models import find_weights, model_id, register_model_config


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
        weights = None if random_weights else str(find_weights(config, home))
        self.model_id = "random:" + config.model if random_weights else model_id(config)
        # fp16 halves memory and doubles throughput on GPUs; CPUs lack fast fp16 kernels.
        precision = "fp16" if self.device.type in ("cuda", "mps") else "fp32"
        if random_weights:
            torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms(
            config.model, pretrained=weights, device=self.device, precision=precision
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(config.model)
        size = self.model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["a photo"]).to(self.device))
        self.dim = int(probe.shape[-1])

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """Preprocess one RGB image: (3, S, S) float32 with S = ``image_size`` pixels."""
        return self.preprocess(image)

    @torch.inference_mode()
    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of preprocessed images.

        Args:
            batch: (n, 3, S, S) float32, from :meth:`to_tensor`.

        Returns:
            (n, d) float32, L2-normalised.
        """
        dtype = next(self.model.parameters()).dtype
        features = self.model.encode_image(batch.to(self.device, dtype))
        return _normalise(features)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Embed texts. Returns (n, d) float32, L2-normalised."""
        tokens = self.tokenizer(texts).to(self.device)
        return _normalise(self.model.encode_text(tokens))


def _normalise(features: torch.Tensor) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)
