"""``mmrag bench --video PHOTOS_DIR``: what a video costs to index, on videos made from the
folder's photos (a new photo every 5 seconds, 1280×720 at 30 frames/s, H.264 with a keyframe
every 2 seconds, as many phones and cameras write): choosing its keyframes by decoding only
the frames stored whole, side by side with decoding every frame; the keyframes kept; the
whole video indexed by the configured model; and how long a personal concept takes to learn
from 5 to 500 examples. Printed side by side, in seconds and as multiples of real time."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.config import home_dir, load_config, save_config
from ..domain.concepts import BACKGROUND, learn
from ..library.facade import Library
from ..media.files import is_image_name
from ..media.video import keyframes

SCENE = 5.0  # seconds each photo is shown
FPS = 30
SIZE = (1280, 720)
GOP = 60  # frames between keyframes: 2 s


def encode(target: Path, photos: list[Path], seconds: float) -> None:
    """A *seconds*-long H.264 video of *photos* in turn (see the module's description)."""
    import av

    frames = [Image.open(p).convert("RGB").resize(SIZE) for p in photos]
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.options = {"preset": "ultrafast"}
        shown = [av.VideoFrame.from_image(f) for f in frames]
        for n in range(int(seconds * FPS)):
            for packet in stream.encode(shown[int(n / FPS / SCENE) % len(shown)]):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def run_video_bench(photos_dir: Path, durations: tuple[float, ...] = (30.0, 300.0),
                    random_weights: bool = False) -> None:
    """Print the video and concept figures (see the module's description)."""
    photos = sorted(p for p in photos_dir.iterdir() if is_image_name(p))[:64]
    if not photos:
        raise SystemExit(f"mmrag bench: no photos in {photos_dir}")
    config = load_config(home_dir())
    print(f"videos: {SIZE[0]}×{SIZE[1]}, {FPS} frames/s, H.264, a keyframe every "
          f"{GOP / FPS:g} s, a new scene every {SCENE:g} s; model {config.model}"
          f"{' (random weights)' if random_weights else ''}")
    print(f"{'length':>8} {'keyframes only':>15} {'every frame':>12} {'kept':>5} "
          f"{'indexed, end to end':>20}")
    with tempfile.TemporaryDirectory(prefix="mmrag-bench-video-") as scratch:
        scratch = Path(scratch)
        for seconds in durations:
            folder = scratch / f"video-{seconds:g}"
            folder.mkdir()
            video = folder / "clip.mp4"
            encode(video, photos, seconds)
            started = time.perf_counter()
            kept, _ = keyframes(video, min_side=224)
            fast = time.perf_counter() - started
            started = time.perf_counter()
            keyframes(video, min_side=224, skip_nonkey=False)
            slow = time.perf_counter() - started
            home = scratch / f"home-{seconds:g}"
            home.mkdir()
            save_config(home, config)
            engine = Library(home=home, random_weights=random_weights)
            engine.embedder.load()  # the model's load time is not the video's
            engine.folders.add(folder)
            started = time.perf_counter()
            engine.updates.index()
            indexed = time.perf_counter() - started
            engine.close()
            print(f"{seconds:7g}s {fast:8.2f} s {seconds / fast:4.0f}× {slow:7.2f} s "
                  f"{seconds / slow:3.0f}× {len(kept):5d} {indexed:12.2f} s "
                  f"{seconds / indexed:4.0f}×")
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 512)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    background = unit(BACKGROUND)
    print(f"personal concept learned (d 512, {BACKGROUND} photos of the library as the rest):")
    for count in (5, 50, 500):
        examples = unit(count)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            learn("bench", examples, unit(count // 5), background)
            times.append(time.perf_counter() - started)
        print(f"  {count:4d} examples, {count // 5:3d} rejected: "
              f"{statistics.median(times) * 1000:7.1f} ms (median of 5)")
