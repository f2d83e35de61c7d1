"""The ONNX Runtime backend of the CLIP model: exported towers run without torch, and the
tokenizer by Hugging Face ``tokenizers``. A text search that finds an export needs neither
torch nor open_clip, so a fresh process answers in a fraction of the time (rclip made the
same move, its PR #249).

An export folder (``models/onnx/<model id>/``) holds ``image.onnx``, ``text.onnx``,
``tokenizer.json`` (truncating and padding to the context length) and ``model.json``
(model id, embedding width, input side, mean, std, interpolation, resize mode, context
length, whether text is canonicalised). It is written by :func:`export` from the torch
backend (and then embeds like it to cosine ≥ 0.999, with the same model id: one library
works under either backend without re-embedding) or installed from a published export
(:mod:`.clip.onnx_download`). The towers' input names, token type and batch size are read
from the ONNX files: a tower exported with a fixed batch of 1 is run item by item.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..media.photos import RESAMPLING, RESIZE_MODES, model_input
from .identity import TOWERS, ModelFileError, model_slug, models_dir
from .tokenizer import clean_text, clip_tokenizer

if TYPE_CHECKING:
    from .torch_backend import TorchCLIP

FILES = ("image.onnx", "text.onnx", "tokenizer.json", "model.json")
OPSET = 18
# Fastest first; onnxruntime lists what this build has (CUDA with onnxruntime-gpu, CoreML
# on macOS, DirectML with onnxruntime-directml).
PROVIDERS = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider",
             "CPUExecutionProvider")


class NotExportable(ModelFileError):
    """The model cannot run in this ONNX backend: its tokenizer or preprocessing has no
    counterpart here, or its export does not embed like the original."""


def export_folder(home: Path, model_id: str) -> Path:
    """Where the export of the weights known as *model_id* lives."""
    return models_dir(home) / "onnx" / model_slug(model_id, "")


def find_export(home: Path, model_id: str) -> Path | None:
    """The complete export folder for *model_id*, or None."""
    folder = export_folder(home, model_id)
    return folder if all((folder / name).is_file() for name in FILES) else None


def find_export_of(home: Path, architecture: str) -> Path | None:
    """The newest complete export of custom weights of *architecture* (one imported, with
    a content-hash model id: :func:`.clip.identity.model_id`), for an install that has no
    weights file; None if there is none. Published weights' exports are found by name
    (:func:`find_export`), never in place of other published weights."""
    found = []
    for meta in (models_dir(home) / "onnx").glob("*/model.json"):
        try:
            model_id = json.loads(meta.read_text())["model_id"]
        except (OSError, ValueError, KeyError):
            continue
        custom = re.fullmatch(re.escape(architecture) + r"/[0-9a-f]{16}", model_id)
        if custom and find_export(home, model_id):
            found.append((meta.stat().st_mtime, meta.parent))
    return max(found)[1] if found else None


def install_export(source: Path, home: Path, move: bool = False) -> Path:
    """Put an export folder (as :func:`export` writes it, from this machine or another, or
    as :mod:`.clip.onnx_download` assembles it) into the models folder, after checking that
    it is complete and that ONNX Runtime loads and runs it; *move* it rather than copy it.
    Its ``model.json`` gets the embedding width and input side the towers have. Returns
    where it now lies.

    Raises:
        ModelFileError: files are missing, damaged, or do not run.
    """
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise ModelFileError(f"{source} is not an ONNX export of a model: {', '.join(missing)} "
                             "missing")
    probe = OnnxCLIP(source)
    # What the towers themselves say wins over what was written beside them: the
    # embedding width, and the input side where the image tower fixes one.
    probe.image_size = probe.fixed_side() or probe.image_size
    measured = {"dim": int(probe.encode_texts(["a photo"]).shape[-1]),
                "image_size": probe.image_size}
    probe.encode_images(np.zeros((1, 3, probe.image_size, probe.image_size), np.uint8))
    folder = export_folder(home, probe.model_id)
    meta = json.loads((source / "model.json").read_text())
    if any(meta.get(key) != value for key, value in measured.items()):
        (source / "model.json").write_text(json.dumps(meta | measured, indent=1))
    del probe  # its sessions hold the files open (Windows cannot move open files)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    if move:
        os.replace(source, staging)
    else:
        shutil.copytree(source, staging)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


def export(source: TorchCLIP, folder: Path) -> Path:
    """Write the ONNX export of *source*'s model (fp32, both towers) into *folder*
    (replacing an older one whole), then check that it embeds probe images and texts
    like torch does (cosine ≥ :data:`.clip.precision.FIDELITY_FLOOR`).

    Raises:
        NotExportable: the model's tokenizer or preprocessing has no ONNX counterpart here
            (only open_clip's CLIP BPE tokenizer, resizing the shortest side or squashing),
            or the export does not embed like the original.
    """
    import open_clip
    import torch

    from .precision import FIDELITY_FLOOR, PROBE_TEXTS, probe_pixels

    model, preprocess, tokenizer = source.fp32_model()
    if type(tokenizer) is not open_clip.tokenizer.SimpleTokenizer:
        raise NotExportable(f"{source.config.model} uses {type(tokenizer).__name__}; the "
                             "ONNX backend knows only open_clip's CLIP tokenizer")
    cfg = model.visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    if cfg.get("resize_mode", "shortest") not in RESIZE_MODES or \
            cfg.get("interpolation", "bicubic") not in RESAMPLING:
        raise NotExportable(f"{source.config.model}'s preprocessing ({cfg}) has no ONNX "
                             "counterpart here")

    class Tower(torch.nn.Module):
        def __init__(self, encode):
            super().__init__()
            self.model, self.encode = model, encode

        def forward(self, x):
            return self.encode(x)

    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tokens = tokenizer(list(PROBE_TEXTS[:2]))
    pixels = torch.rand(2, 3, size, size)
    for name, encode, sample, input_name in (("text", model.encode_text, tokens, "tokens"),
                                             ("image", model.encode_image, pixels, "pixels")):
        # The TorchScript exporter warns about its own deprecation and about patterns that
        # do not occur here (negative gather indices); the parity check below is the guard.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Tower(encode), (sample,), str(staging / f"{name}.onnx"),
                              input_names=[input_name], output_names=["embeddings"],
                              dynamic_axes={input_name: {0: "batch"},
                                            "embeddings": {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
    clip_tokenizer(Path(open_clip.tokenizer.default_bpe()), tokenizer.context_length).save(
        str(staging / "tokenizer.json"))
    meta = {"model_id": source.model_id, "dim": int(model.encode_text(tokens[:1]).shape[-1]),
            "image_size": int(size), "mean": list(cfg["mean"]), "std": list(cfg["std"]),
            "interpolation": cfg.get("interpolation", "bicubic"),
            "resize_mode": cfg.get("resize_mode", "shortest"),
            "context_length": int(tokenizer.context_length), "canonicalize": False}
    (staging / "model.json").write_text(json.dumps(meta, indent=1))
    exported = OnnxCLIP(staging)
    probe = (probe_pixels(size, torch.device("cpu")) * 255).round().to(torch.uint8)
    with torch.no_grad():
        mean, std = (torch.tensor(meta[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
        expected_images = model.encode_image((probe.float() / 255 - mean) / std)
        expected_texts = model.encode_text(tokenizer(list(PROBE_TEXTS)))
    got_images = exported.encode_images(probe.numpy())
    got_texts = exported.encode_texts(list(PROBE_TEXTS))
    for got, expected in ((got_images, expected_images), (got_texts, expected_texts)):
        expected = torch.nn.functional.normalize(expected, dim=-1).numpy()
        cosine = float((got * expected).sum(-1).min())
        if cosine < FIDELITY_FLOOR:
            raise NotExportable(f"the ONNX export embeds unlike the model (cosine {cosine:.5f})")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


class OnnxCLIP:
    """An exported model run by ONNX Runtime; the same interface as
    :class:`.clip.torch_backend.TorchCLIP` (towers load on first use). Thread-safe.

    Raises (from the first use of a tower):
        ModelFileError: the export is incomplete or damaged, or onnxruntime is missing.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            meta = json.loads((folder / "model.json").read_text())
            self.model_id, self.dim = meta["model_id"], int(meta["dim"])
            self.image_size, self._context = int(meta["image_size"]), int(meta["context_length"])
            self._mean = np.array(meta["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
            self._std = np.array(meta["std"], dtype=np.float32).reshape(1, 3, 1, 1)
            self._interpolation = meta["interpolation"]
            self._resize_mode = meta.get("resize_mode", "shortest")
            self._canonicalize = bool(meta.get("canonicalize", False))
            if self._interpolation not in RESAMPLING or self._resize_mode not in RESIZE_MODES:
                raise ValueError(f"unknown preprocessing {self._interpolation!r}, "
                                 f"{self._resize_mode!r}")
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFileError(f"the ONNX export in {folder} is damaged: {exc}") from exc
        self.towers: set[str] = set()
        self.device = "cpu"
        self._sessions: dict = {}
        self._tokenizer = None
        self._lock = threading.Lock()

    def load(self, *towers: str) -> None:
        for tower in towers or TOWERS:
            self._session(tower)

    def _session(self, tower: str):
        session = self._sessions.get(tower)
        if session is not None:
            return session
        with self._lock:
            if tower not in self._sessions:
                try:
                    import onnxruntime
                    from tokenizers import Tokenizer

                    available = onnxruntime.get_available_providers()
                    providers = [p for p in PROVIDERS if p in available]
                    self._sessions[tower] = onnxruntime.InferenceSession(
                        str(self.folder / f"{tower}.onnx"), providers=providers)
                    if tower == "text":
                        self._tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                except ImportError as exc:
                    raise ModelFileError(f"the ONNX backend needs {exc.name}: pip install "
                                         "onnxruntime tokenizers") from exc
                except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
                    raise ModelFileError(f"the ONNX export in {self.folder} cannot be "
                                         f"loaded: {exc}") from exc
                self.device = providers[0].removesuffix("ExecutionProvider").lower()
                self.towers.add(tower)
            return self._sessions[tower]

    def fixed_side(self) -> int | None:
        """The input side the image tower's ONNX file fixes, if it does (loads the tower)."""
        shape = self._session("image").get_inputs()[0].shape
        return shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) else None

    @property
    def pixel_spec(self) -> tuple[int, str, str]:
        """(input side S in pixels, interpolation, resize mode): what
        :func:`.media.photos.model_input` needs to prepare this model's input."""
        return self.image_size, self._interpolation, self._resize_mode

    def to_pixels(self, image: Image.Image) -> np.ndarray:
        """One image as the model's input: (3, S, S) uint8 (see :attr:`pixel_spec`)."""
        return model_input(image, *self.pixel_spec)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) uint8 from :meth:`to_pixels` → (n, d) float32, L2-normalised."""
        pixels = (batch.astype(np.float32) / 255 - self._mean) / self._std
        return _run(self._session("image"), pixels)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts → (n, d) float32, L2-normalised."""
        session = self._session("text")
        texts = [clean_text(text, self._canonicalize) for text in texts]
        tokens = np.array([e.ids for e in self._tokenizer.encode_batch(texts)])
        return _run(session, tokens)


def _run(session, batch: np.ndarray) -> np.ndarray:
    """A tower's (n, d) float32 L2-normalised output for the (n, …) *batch*, fed to its one
    input in the type the ONNX file declares (int32 or int64 tokens, float pixels), item by
    item where the file fixes the batch at 1 (Immich's recent exports)."""
    spec = session.get_inputs()[0]
    if "int32" in spec.type:
        batch = batch.astype(np.int32)
    elif "int64" in spec.type:
        batch = batch.astype(np.int64)
    if spec.shape and spec.shape[0] == 1 and len(batch) != 1:
        out = np.concatenate([session.run(None, {spec.name: batch[i:i + 1]})[0]
                              for i in range(len(batch))]) if len(batch) else \
            np.zeros((0, session.get_outputs()[0].shape[-1]), np.float32)
    else:
        out = session.run(None, {spec.name: batch})[0]
    return _normalise(out.reshape(len(batch), -1))


def _normalise(features: np.ndarray) -> np.ndarray:
    features = features.astype(np.float32, copy=False)
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
