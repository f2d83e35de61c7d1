"""Shared fixtures: real photos from ../shared/data and a tiny random-weight CLIP model.

As in open_clip's own tests, a tiny model config makes the real code path fast: the
architecture is registered from a JSON file and its random weights are saved to a
checkpoint file, which the app loads exactly as it loads downloaded weights.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests run headless

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
COCO = DATA / "coco-mini"
FLICKR = DATA / "flickr8k-dev1k"

TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}


class Repairs(list):
    """A library's ``"repair"`` notices as they come: pass as ``on_notice``."""

    def __call__(self, kind: str, text: str) -> None:
        if kind == "repair":
            self.append(text)


def coco_photos() -> list[Path]:
    if not COCO.is_dir():
        pytest.skip(f"shared photo data not found at {COCO} (see shared/README.md)")
    return sorted((COCO / "images").glob("*.jpg"))


def write_tiny_model(folder: Path) -> tuple[Path, Path]:
    """Write the tiny model's open_clip config and a random-weight checkpoint into *folder*;
    returns (config JSON, checkpoint). The architecture is registered as ``mmrag-tiny``."""
    import open_clip
    import torch

    config = folder / "mmrag-tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(1234)
    weights = folder / "mmrag-tiny.pt"
    torch.save(open_clip.create_model("mmrag-tiny").state_dict(), weights)
    return config, weights


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """(model config JSON, checkpoint) of a tiny random-weight open_clip model."""
    return write_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def gemma() -> Path:
    """The real gemma-3-270m GGUF (text only; :mod:`vlm_fixture`)."""
    from vlm_fixture import gemma_gguf

    return gemma_gguf()


@pytest.fixture(scope="session")
def mmproj() -> Path:
    """A random-weight vision projector for gemma-3-270m (:mod:`vlm_fixture`)."""
    from vlm_fixture import tiny_mmproj

    return tiny_mmproj()


@pytest.fixture
def config(tiny_model):
    from mmrag_desktop.core.config import Config

    model_config, weights = tiny_model
    # The understanding pass (OCR) is tested on its own (tests/test_understanding.py).
    return Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                  model_config=str(model_config), batch_size=8, decode_workers=2,
                  understand=[])


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("MMRAG_HOME", str(path))
    return path


@pytest.fixture
def engine(home, config):
    from mmrag_desktop.core.config import save_config
    from mmrag_desktop.library.facade import Library

    home.mkdir(parents=True, exist_ok=True)
    save_config(home, config)
    eng = Library(home=home)
    yield eng
    eng.close()


@pytest.fixture
def photos(tmp_path) -> Path:
    """A writable folder with 40 real coco-mini photos, for tests that change files."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in coco_photos()[:40]:
        shutil.copy2(photo, folder / photo.name)
    return folder


def with_gps(photo: Path, target: Path, lat: float, lon: float) -> None:
    """Save *photo* as *target* with EXIF GPS at (lat, lon), decimal degrees."""
    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        minutes = (value - int(value)) * 60
        return float(int(value)), float(int(minutes)), round((minutes - int(minutes)) * 60, 4)

    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
    gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
    with Image.open(photo) as img:
        img.save(target, "JPEG", quality=92, exif=exif)


RECEIPT = ["HARDWARE HAVEN", "12 Elm Street", "Hammer     12.99", "Nails       3.50",
           "Tape        2.25", "TOTAL      18.74"]


def render_receipt(target: Path) -> None:
    """A photographed-looking receipt (:data:`RECEIPT`): dark text on off-white paper on
    a wooden-brown table, in the first of the system's fonts."""
    from PIL import ImageDraw

    from mmrag_desktop.bench.text import fonts, load_font

    image = Image.new("RGB", (900, 1100), (92, 64, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((150, 80, 750, 1020), fill=(246, 244, 236))
    font = load_font(fonts()[0], 44)
    for n, line in enumerate(RECEIPT):
        draw.text((190, 140 + n * 120), line, fill=(20, 20, 20), font=font)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, quality=90)


def cli_env(home: Path) -> dict:
    return os.environ | {"MMRAG_HOME": str(home), "PYTHONPATH": str(REPO)}


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Make every attempt to open a network socket or resolve a name fail; returns the
    attempts. Unix-domain sockets (the pipe to the VLM's helper process) stay allowed."""
    attempts = []

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            if (args[0] if args else kwargs.get("family")) == socket.AF_UNIX:
                super().__init__(*args, **kwargs)
                return
            attempts.append(args)
            raise AssertionError("network access attempted")

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", NoSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".m4v": "libx264", ".mkv": "libx264",
                ".webm": "libvpx-vp9", ".avi": "mpeg4"}


def encode_video(target: Path, scenes: list[Path], seconds: float = 2.0, fps: int = 10,
                 size: tuple[int, int] = (160, 120)) -> None:
    """Encode *scenes* (photos) as a video with PyAV: each photo held still for *seconds*,
    a keyframe every second (so the keyframe interval is 1 s), no audio. The container and
    codec follow *target*'s extension (:data:`VIDEO_CODECS`); ``.gif`` makes an animated
    GIF with Pillow instead."""
    import av
    from PIL import Image

    frames = [Image.open(p).convert("RGB").resize(size) for p in scenes]
    if target.suffix == ".gif":
        frames[0].save(target, save_all=True, append_images=frames[1:],
                       duration=int(seconds * 1000), loop=0)
        return
    with av.open(str(target), "w") as container:
        stream = container.add_stream(VIDEO_CODECS[target.suffix], rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = fps
        for frame in frames:
            for _ in range(int(seconds * fps)):
                for packet in stream.encode(av.VideoFrame.from_image(frame)):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
