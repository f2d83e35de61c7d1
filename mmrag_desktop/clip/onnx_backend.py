"""The ONNX Runtime backend of the CLIP model: the towers exported from the torch backend
(``mmrag models export-onnx``) run without torch, and the tokenizer by Hugging Face
``tokenizers``. A text search that finds an export needs neither torch nor open_clip, so a
fresh process answers in a fraction of the time (rclip made the same move, its PR #249).

An export folder (``models/onnx/<model>/``) holds ``image.onnx``, ``text.onnx``,
``tokenizer.json`` and ``model.json`` (model id, embedding width, input side, mean, std,
resize interpolation, context length). It embeds like the torch backend to cosine
≥ 0.999 (checked when it is written), and has the same model id: one library works under
either backend without re-embedding.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..media.photos import RESAMPLING, model_input
from .identity import TOWERS, ModelFileError, model_slug, models_dir

if TYPE_CHECKING:
    from .torch_backend import TorchCLIP

FILES = ("image.onnx", "text.onnx", "tokenizer.json", "model.json")
OPSET = 18
# Fastest first; onnxruntime lists what this build has (CUDA with onnxruntime-gpu, CoreML
# on macOS, DirectML with onnxruntime-directml).
PROVIDERS = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider",
             "CPUExecutionProvider")


def export_folder(home: Path, model_id: str) -> Path:
    """Where the export of the weights known as *model_id* lives."""
    return models_dir(home) / "onnx" / model_slug(model_id, "")


def find_export(home: Path, model_id: str) -> Path | None:
    """The complete export folder for *model_id*, or None."""
    folder = export_folder(home, model_id)
    return folder if all((folder / name).is_file() for name in FILES) else None


def find_export_of(home: Path, architecture: str) -> Path | None:
    """The newest complete export of any weights of *architecture* (for an install that
    has an imported export but no weights file), or None."""
    found = []
    for meta in (models_dir(home) / "onnx").glob("*/model.json"):
        try:
            model_id = json.loads(meta.read_text())["model_id"]
        except (OSError, ValueError, KeyError):
            continue
        if model_id.startswith(architecture + "/") and find_export(home, model_id):
            found.append((meta.stat().st_mtime, meta.parent))
    return max(found)[1] if found else None


def import_export(source: Path, home: Path) -> Path:
    """Copy an export folder (as :func:`export` writes it, from this machine or another)
    into the models folder, after checking that it is complete and that ONNX Runtime loads
    and runs it. Returns where it now lies.

    Raises:
        ModelFileError: files are missing, damaged, or do not run.
    """
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise ModelFileError(f"{source} is not an ONNX export of a model: {', '.join(missing)} "
                             "missing")
    probe = OnnxCLIP(source)
    probe.encode_texts(["a photo"])
    probe.encode_images(np.zeros((1, 3, probe.image_size, probe.image_size), np.uint8))
    folder = export_folder(home, probe.model_id)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


def clip_tokenizer(simple):
    """open_clip's CLIP byte-level BPE (``SimpleTokenizer``: vocabulary, merges, start and
    end tokens, context length) as a Hugging Face ``tokenizers`` pipeline: NFC, whitespace
    runs to one space, lower case, CLIP's word pattern, byte-level BPE with ``</w>`` word
    ends, start/end tokens, truncation and zero padding to the context length (as
    transformers' ``CLIPConverter`` defines it)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda item: item[1])]
    tokenizer = Tokenizer(BPE(vocab=dict(simple.encoder), merges=merges,
                              continuing_subword_prefix="", end_of_word_suffix="</w>",
                              fuse_unk=False, unk_token=None))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    names = {index: token for token, index in simple.encoder.items()}
    start, end = names[simple.sot_token_id], names[simple.eot_token_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{start} $A {end}",
        special_tokens=[(start, simple.sot_token_id), (end, simple.eot_token_id)])
    tokenizer.enable_truncation(simple.context_length)
    tokenizer.enable_padding(length=simple.context_length, pad_id=0)
    return tokenizer


def export(source: TorchCLIP, folder: Path) -> Path:
    """Write the ONNX export of *source*'s model (fp32, both towers) into *folder*
    (replacing an older one whole), then check that it embeds probe images and texts
    like torch does (cosine ≥ :data:`.clip.precision.FIDELITY_FLOOR`).

    Raises:
        ModelFileError: the model's tokenizer or preprocessing has no ONNX counterpart here
            (only open_clip's CLIP BPE tokenizer, resizing the shortest side), or the export
            does not embed like the original.
    """
    import open_clip
    import torch

    from .precision import FIDELITY_FLOOR, PROBE_TEXTS, probe_pixels

    model, preprocess, tokenizer = source.fp32_model()
    if not isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
        raise ModelFileError(f"{source.config.model} uses {type(tokenizer).__name__}; the "
                             "ONNX backend knows only open_clip's CLIP tokenizer")
    cfg = model.visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    if cfg.get("resize_mode", "shortest") != "shortest" or \
            cfg.get("interpolation", "bicubic") not in RESAMPLING:
        raise ModelFileError(f"{source.config.model}'s preprocessing ({cfg}) has no ONNX "
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
    clip_tokenizer(tokenizer).save(str(staging / "tokenizer.json"))
    meta = {"model_id": source.model_id, "dim": int(model.encode_text(tokens[:1]).shape[-1]),
            "image_size": int(size), "mean": list(cfg["mean"]), "std": list(cfg["std"]),
            "interpolation": cfg.get("interpolation", "bicubic"),
            "context_length": int(tokenizer.context_length)}
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
            raise ModelFileError(f"the ONNX export embeds unlike the model (cosine {cosine:.5f})")
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
            if self._interpolation not in RESAMPLING:
                raise ValueError(f"unknown interpolation {self._interpolation!r}")
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

    @property
    def pixel_spec(self) -> tuple[int, str]:
        """(input side S in pixels, interpolation): what :func:`.media.photos.model_input`
        needs to prepare this model's input."""
        return self.image_size, self._interpolation

    def to_pixels(self, image: Image.Image) -> np.ndarray:
        """One image as the model's input: (3, S, S) uint8 (see :attr:`pixel_spec`)."""
        return model_input(image, *self.pixel_spec)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) uint8 from :meth:`to_pixels` → (n, d) float32, L2-normalised."""
        pixels = (batch.astype(np.float32) / 255 - self._mean) / self._std
        return _normalise(self._session("image").run(None, {"pixels": pixels})[0])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts → (n, d) float32, L2-normalised."""
        session = self._session("text")
        tokens = np.array([e.ids for e in self._tokenizer.encode_batch(texts)], dtype=np.int64)
        return _normalise(session.run(None, {"tokens": tokens})[0])


def _normalise(features: np.ndarray) -> np.ndarray:
    features = features.astype(np.float32, copy=False)
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
