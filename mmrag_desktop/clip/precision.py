"""Numeric precision of the CLIP towers, chosen per machine by measurement.

The right precision differs per machine: bf16 weights run several times faster than fp32
where the CPU computes bf16 natively (AVX512-BF16, AMX) and slower where it is emulated;
int8 dynamic quantisation of the Linear layers helps most elsewhere; GPUs want fp16 or bf16.
So each candidate the device supports is timed on a probe batch, candidates whose probe
embeddings fall below :data:`FIDELITY_FLOOR` cosine similarity to fp32's are dropped, and
the fastest of the rest wins, separately for the image tower (images per second, batch
throughput) and the text tower (one query's latency). The choice is cached per model,
device, hardware and software versions. Precision never changes what an embedding means
(the model id), only how it is computed: a library indexed in one precision is searched in
another without re-embedding.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import __version__
from ..core.atomic import write_atomically

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
FIDELITY_FLOOR = 0.999
"""The least cosine similarity to fp32 that every probe embedding must keep."""
PROBE_IMAGES = 8
PROBE_TEXTS = ("a dog playing in the snow", "two people eating pizza at a table",
               "a red car parked in a city street", "a sunset over the sea")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Trial:
    """One candidate measured: image-tower throughput (images/s, batch of
    :data:`PROBE_IMAGES`), text-tower latency of one query (ms, median), and the least
    cosine similarity of its probe embeddings to fp32's, per tower."""

    precision: str
    images_per_s: float
    image_cosine: float
    text_ms: float
    text_cosine: float


@dataclass
class Choice:
    """The precision of each tower, and the trials it was chosen from (empty when set by
    hand)."""

    image: str
    text: str
    trials: list[Trial]

    def describe(self) -> str:
        """``bf16``, or ``images bf16, text fp32`` when the towers differ."""
        return self.image if self.image == self.text else \
            f"images {self.image}, text {self.text}"


def native_bf16() -> bool:
    """True when the CPU computes bf16 natively (x86 AVX512-BF16 or AMX-BF16, read from
    /proc/cpuinfo; Arm's BF16 extension as macOS reports it). Elsewhere bf16 is emulated,
    slower than fp32, and not tried."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"],
                             capture_output=True, text=True)
        return out.stdout.strip() == "1"
    return False


def candidates(device: torch.device) -> list[str]:
    """The precisions worth trying on *device*, fp32 (the reference) first."""
    if device.type == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    if device.type == "mps":
        return ["fp32", "fp16"]
    return ["fp32"] + (["bf16"] if native_bf16() else []) + ["int8"]


def hardware(device: torch.device) -> str:
    """What the timings depend on: the device's name, and the CPU's for CPU work."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{device.type} {cpu} ×{os.cpu_count()}"


def convert(module: torch.nn.Module, precision: str) -> torch.nn.Module:
    """*module* (fp32) in *precision*, converted in place where possible; returns it.

    int8 is PyTorch's dynamic quantisation of the Linear layers (weights int8, activations
    quantised per batch; CPU only).

    Raises:
        ValueError: an unknown precision.
    """
    if precision == "fp32":
        return module
    if precision in _DTYPES:
        return module.to(_DTYPES[precision])
    if precision != "int8":
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # deprecated in favour of torchao, which is not needed
        warnings.simplefilter("ignore")
        module = quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    for sub in module.modules():
        # open_clip's text transformer reads its input dtype from an MLP weight, which a
        # quantised layer hides; this is the attribute it consults for int8 layers.
        if hasattr(sub, "mlp") and hasattr(sub.mlp, "c_fc") and not isinstance(
                getattr(sub.mlp.c_fc, "weight", None), torch.Tensor):
            sub.mlp.c_fc.int8_original_dtype = torch.float32
    return module


def apply(model: torch.nn.Module, tower: str, precision: str) -> None:
    """Convert *model*'s *tower* (``image`` or ``text``, fp32) to *precision*, in place."""
    if tower == "image":
        model.visual = convert(model.visual, precision)
        return
    visual = model.visual
    model.visual = None  # everything else is the text tower
    try:
        convert(model, precision)
    finally:
        model.visual = visual


def probe_pixels(size: int, device: torch.device) -> torch.Tensor:
    """(PROBE_IMAGES, 3, size, size) float32 in [0, 1]: smooth random images (low-resolution
    noise upscaled), the same on every run."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(PROBE_IMAGES, 3, 7, 7, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic",
                                           align_corners=False).clamp(0, 1).to(device)


def _cosine_floor(embeddings: torch.Tensor, reference: torch.Tensor) -> float:
    a = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    b = torch.nn.functional.normalize(reference.float(), dim=-1)
    return float((a * b).sum(-1).min())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@torch.inference_mode()
def measure(model: torch.nn.Module, encode_image, encode_text, pixels: torch.Tensor,
            tokens: torch.Tensor, device: torch.device) -> list[Trial]:
    """Time every candidate for *device* on copies of *model* (fp32, left as it is).

    Args:
        encode_image: ``(model, pixels) -> (n, d) tensor``, pixels (n, 3, S, S) float32
            normalised, cast by it to the model's input dtype.
        encode_text: ``(model, tokens) -> (n, d) tensor``.
        pixels: the probe images, normalised.
        tokens: the probe texts, tokenised.
    """
    trials = []
    reference = None
    for precision in candidates(device):
        trial_model = convert(copy.deepcopy(model), precision)
        encode_image(trial_model, pixels)  # warm-up: kernels, caches, lazy packing
        _sync(device)
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            images = encode_image(trial_model, pixels)
            _sync(device)
            seconds.append(time.perf_counter() - started)
        latencies = []
        texts = encode_text(trial_model, tokens)
        for i in range(5):
            started = time.perf_counter()
            encode_text(trial_model, tokens[i % len(tokens)].unsqueeze(0))
            _sync(device)
            latencies.append(time.perf_counter() - started)
        if reference is None:
            reference = (images, texts)
        trials.append(Trial(precision, len(pixels) / min(seconds),
                            _cosine_floor(images, reference[0]),
                            statistics.median(latencies) * 1000,
                            _cosine_floor(texts, reference[1])))
        del trial_model
    return trials


def pick(trials: list[Trial]) -> Choice:
    """The fastest candidate above the fidelity floor, per tower (fp32 always qualifies)."""
    image = max((t for t in trials if t.image_cosine >= FIDELITY_FLOOR),
                key=lambda t: t.images_per_s)
    text = min((t for t in trials if t.text_cosine >= FIDELITY_FLOOR),
               key=lambda t: t.text_ms)
    return Choice(image.precision, text.precision, trials)


def cached_choice(cache: Path, key: str) -> Choice | None:
    """The choice measured before under *key*, if any (a damaged cache counts as none)."""
    try:
        entry = json.loads(cache.read_text())[key]
        return Choice(entry["image"], entry["text"], [Trial(**t) for t in entry["trials"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(cache: Path, key: str, choice: Choice) -> None:
    """Store *choice* under *key* (other keys kept; atomic replace; the file private)."""
    try:
        entries = json.loads(cache.read_text())
    except (OSError, ValueError):
        entries = {}
    entries[key] = asdict(choice)
    # private (0600), like everything in the home
    write_atomically(cache, lambda file: file.write(json.dumps(entries, indent=1).encode()))


def cache_key(model_id: str, device: torch.device) -> str:
    """What a measurement holds for: the model, the hardware, torch and this app."""
    return f"{model_id} | {hardware(device)} | torch {torch.__version__} | app {__version__}"
