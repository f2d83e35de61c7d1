"""The tests' tiny model written as the two public sources publish their ONNX exports, so the
downloads can be tested end to end against :mod:`hub_server`:

- rclip's (``yurijmikhalevich/rclip-models``): ``<folder>/visual.onnx`` and
  ``<folder>/textual.onnx`` (input ``input``, output ``output``, dynamic batch, not
  L2-normalised) and ``tokenizer/bpe_simple_vocab_16e6.txt.gz``;
- Immich's (``immich-app/<name>``): ``config.json``, ``visual/model.onnx`` (input ``image``),
  ``visual/preprocess_cfg.json``, ``textual/model.onnx`` (input ``text``, int32, padded
  with the end token), ``textual/tokenizer.json``, ``textual/tokenizer_config.json``; both
  towers L2-normalised with a fixed batch of 1, as Immich's recent exports are.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import open_clip
import torch

from mmrag_desktop.clip.tokenizer import END, clip_tokenizer

VOCAB = Path(open_clip.tokenizer.default_bpe())


def _model(weights: Path):
    model = open_clip.create_model("mmrag-tiny")
    open_clip.load_checkpoint(model, str(weights))
    return model.eval()


class _Tower(torch.nn.Module):
    def __init__(self, model, tower: str, normalise: bool, cast: bool = False):
        super().__init__()
        self.model, self.tower, self.normalise, self.cast = model, tower, normalise, cast

    def forward(self, x):
        encode = self.model.encode_image if self.tower == "image" else self.model.encode_text
        out = encode(x.long() if self.cast else x)
        return torch.nn.functional.normalize(out, dim=-1) if self.normalise else out


def _export(tower, sample, target: Path, name: str, dynamic: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tower, (sample,), str(target), input_names=[name],
                          output_names=["output"], opset_version=18, dynamo=False,
                          dynamic_axes={name: {0: "batch"}, "output": {0: "batch"}}
                          if dynamic else None)


def write_rclip(weights: Path, root: Path, repo: str, folder: str) -> None:
    """The tiny model in rclip's layout under ``root/repo``."""
    model, base = _model(weights), root / repo
    tokens = open_clip.tokenize(["a photo", "a dog"])
    _export(_Tower(model, "image", False), torch.rand(2, 3, 224, 224),
            base / folder / "visual.onnx", "input", True)
    _export(_Tower(model, "text", False), tokens, base / folder / "textual.onnx", "input",
            True)
    (base / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VOCAB, base / "tokenizer" / VOCAB.name)


def write_immich(weights: Path, root: Path, repo: str, tiny_config: dict) -> None:
    """The tiny model in Immich's layout under ``root/repo``."""
    model, base = _model(weights), root / repo
    tokens = open_clip.tokenize(["a photo"]).int()
    _export(_Tower(model, "image", True), torch.rand(1, 3, 224, 224),
            base / "visual" / "model.onnx", "image", False)
    _export(_Tower(model, "text", True, cast=True), tokens, base / "textual" / "model.onnx",
            "text", False)
    (base / "config.json").write_text(json.dumps(tiny_config))
    (base / "visual" / "preprocess_cfg.json").write_text(json.dumps({
        "size": [224, 224], "mode": "RGB", "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD), "interpolation": "bicubic",
        "resize_mode": "shortest", "fill_color": 0}))
    tokenizer = clip_tokenizer(VOCAB, 77)
    tokenizer.no_padding()
    tokenizer.save(str(base / "textual" / "tokenizer.json"))
    (base / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": END}))
