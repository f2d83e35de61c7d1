"""The CLIP model behind one interface: images and texts to L2-normalised embeddings, each
tower run by the torch backend (:mod:`.clip.torch_backend`) or, where the weights were exported,
by ONNX Runtime (:mod:`.clip.onnx_backend`). Both give the same model id: one library, either
backend, no re-embedding. This module imports neither backend until a tower is used."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..core.config import Config
from ..domain.query import QueryError, Term
from ..media.files import BadImage
from ..media.photos import decode
from ..media.video import is_video, keyframe_pixels, mean_direction
from . import onnx_backend as clip_onnx
from .identity import TOWERS, ModelMissingError
from .model_files import configured_model_id, find_weights

if TYPE_CHECKING:
    from .precision import Choice, Trial
    from .torch_backend import TorchCLIP

def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


class Embedder:
    """The configured model; each tower loads on first use (or with :meth:`load`) in the
    backend :meth:`backend` names. Thread-safe.

    Args:
        config: model, weights, device, precision, backend.
        home: the app folder (``models/`` holds weights, exports and measurements).
        random_weights: the architecture with random weights (benchmarks, tests of
            speed); embeddings are then deterministic but meaningless.

    Raises (here, or from the first use of a tower):
        ModelMissingError: no weights (the message says how to get them), or no backend.
        ModelFileError: the weights or the export cannot be read or do not fit.
        ConfigError: the configured precision is not available on the device.
    """

    def __init__(self, config: Config, home: Path, random_weights: bool = False):
        self.config, self.home = config, home
        self.model_id = configured_model_id(config, home, random_weights)
        try:
            self._weights = None if random_weights else find_weights(config, home)
            self._torch_usable = True
        except ModelMissingError:  # only an imported export: the ONNX backend alone
            self._weights, self._torch_usable = None, False
        self._torch: TorchCLIP | None = None
        self._onnx: clip_onnx.OnnxCLIP | None = None
        self._runs: dict = {}  # tower → the backend object running it
        self._lock = threading.RLock()

    def backend(self, tower: str) -> str:
        """``torch`` or ``onnx``: the configured ``backend``; with ``auto``, ONNX Runtime for
        the text tower where the weights were exported (a text search then loads no
        torch), torch for images where it is installed (GPUs, measured precisions), else
        whichever is there.

        Raises:
            ModelMissingError: neither torch nor an export is available.
        """
        if self.config.backend != "auto":
            return self.config.backend
        exported = (clip_onnx.find_export(self.home, self.model_id) is not None
                    and _installed("onnxruntime", "tokenizers"))
        if tower == "text" and exported:
            return "onnx"
        if self._torch_usable and _installed("torch", "open_clip"):
            return "torch"
        if exported:
            return "onnx"
        raise ModelMissingError(
            f"no way to run {self.config.model} here: torch is not installed and the model "
            "has no ONNX export (import one with mmrag models import, or export one with "
            "mmrag models export-onnx where torch is installed)")

    def _for(self, tower: str):
        """The backend object that runs *tower*, decided on first use and then kept: every
        batch and every query asks, and the decision looks at files and installed
        packages."""
        backend = self._runs.get(tower)
        if backend is not None:
            return backend
        with self._lock:
            if self.backend(tower) == "onnx":
                if self._onnx is None:
                    folder = clip_onnx.find_export(self.home, self.model_id)
                    if folder is None:
                        raise ModelMissingError(
                            f"no ONNX export of {self.model_id}: run mmrag models export-onnx "
                            "(where torch is installed), or set backend to auto or torch")
                    self._onnx = clip_onnx.OnnxCLIP(folder)
                backend = self._onnx
            else:
                backend = self.torch_backend()
            self._runs[tower] = backend
            return backend

    def torch_backend(self) -> TorchCLIP:
        """The torch backend (for measuring precisions and exporting).

        Raises:
            ModelMissingError: torch or open_clip is not installed.
        """
        with self._lock:
            if self._torch is None:
                if not self._torch_usable:
                    raise ModelMissingError(
                        f"only an ONNX export of {self.model_id} is here, no weights file for "
                        "the torch backend (mmrag models download, or import one)")
                if not _installed("torch", "open_clip"):
                    raise ModelMissingError("torch and open_clip_torch are not installed "
                                            "(the ONNX backend needs an export instead)")
                from .torch_backend import TorchCLIP

                self._torch = TorchCLIP(self.config, self.home, self._weights, self.model_id)
            return self._torch

    def close(self) -> None:
        """Let the loaded towers go (their memory is freed once no batch holds them); the
        next use loads them again."""
        with self._lock:
            self._runs.clear()
            self._torch = self._onnx = None

    def load(self, *towers: str) -> None:
        """Load *towers* (``image``, ``text``; default both) now, if not loaded yet."""
        for tower in towers or TOWERS:
            self._for(tower).load(tower)

    @property
    def image_size(self) -> int:
        """Pixels: the image tower's input side (loads the image tower)."""
        return self._for("image").image_size

    @property
    def dim(self) -> int:
        """The embedding width d."""
        backend = self._for("text")
        return backend.dim or int(backend.encode_texts(["a photo"]).shape[-1])

    @property
    def device(self) -> str:
        """Where the image tower runs (``cpu``, ``cuda``, ``mps``, or ONNX Runtime's
        provider)."""
        return str(self._for("image").device)

    @property
    def precision(self) -> Choice:
        """The torch backend's precision per tower (see :mod:`.clip.precision`)."""
        return self.torch_backend().precision

    def measure_precisions(self) -> list[Trial]:
        """Every precision candidate of the torch backend, measured now."""
        return self.torch_backend().measure_precisions()

    def describe(self) -> str:
        """Where and how each tower runs, e.g. ``cpu: images bf16, text fp32 (onnx)``."""
        parts = []
        for tower, label in (("image", "images"), ("text", "text")):
            if self._for(tower) is self._onnx:
                parts.append(f"{label} fp32 (onnx)")
            else:
                parts.append(f"{label} {getattr(self.precision, tower)}")
        return f"{self.device}: {', '.join(parts)}"

    @property
    def pixel_spec(self) -> tuple[int, str, str] | None:
        """(input side S, interpolation, resize mode) for :func:`.media.photos.model_input`,
        which prepares the image tower's input exactly as :meth:`to_pixels` does; None where
        only the backend itself can (loads the image tower)."""
        return self._for("image").pixel_spec

    def to_pixels(self, image: Image.Image) -> np.ndarray:
        """The model's resize and centre crop of one image: (3, S, S) uint8, S =
        :attr:`image_size`."""
        return self._for("image").to_pixels(image)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) uint8 from :meth:`to_pixels` → (n, d) float32, L2-normalised."""
        return self._for("image").encode_images(batch)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts → (n, d) float32, L2-normalised."""
        return self._for("text").encode_texts(texts)


def export_for_search(config: Config, home: Path) -> Path | None:
    """Make the ONNX export of the configured weights file unless it exists, so that a
    text search loads neither torch nor the image tower (a cold ``mmrag search`` then takes
    about 1 s here, not 7.7 s): called after weights are imported or downloaded, so no
    user has to run ``mmrag models export-onnx``. Returns the export's folder, or None
    where the model has no ONNX counterpart here (another tokenizer or preprocessing: the
    torch backend answers text queries then).

    Raises:
        ModelMissingError: torch is not installed, or there are no weights.
        ModelFileError: the weights cannot be read.
    """
    embedder = Embedder(config, home)
    found = clip_onnx.find_export(home, embedder.model_id)
    if found is not None:
        return found
    try:
        return clip_onnx.export(embedder.torch_backend(),
                                clip_onnx.export_folder(home, embedder.model_id))
    except clip_onnx.NotExportable:
        return None


def query_vector(embedder: Embedder, terms: list[Term]) -> np.ndarray:
    """The weighted sum of the terms' embeddings, L2-normalised: (d,) float32.

    Composing queries by adding and subtracting embeddings follows rclip's ``--add`` /
    ``--subtract``.

    Raises:
        QueryError: no terms, a zero result, or an unreadable photo.
    """
    if not terms:
        raise QueryError("empty query")
    total = np.zeros(embedder.dim, dtype=np.float32)
    texts = [t for t in terms if t.text is not None]
    if texts:
        for term, vector in zip(texts, embedder.encode_texts([t.text for t in texts])):
            total += term.weight * vector
    for term in (t for t in terms if t.photo is not None):
        path, side = Path(term.photo), embedder.image_size
        try:
            if is_video(path):  # all of it: the mean of its keyframes, as the library has it
                frames, _, _ = keyframe_pixels(path, embedder.to_pixels, side)
                total += term.weight * mean_direction(embedder.encode_images(frames))
                continue
            image, _ = decode(path, min_side=side)
        except BadImage as exc:
            raise QueryError(f"query photo {term.photo}: {exc}") from exc
        total += term.weight * embedder.encode_images(embedder.to_pixels(image)[None])[0]
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise QueryError("the query terms cancel out")
    return total / norm
