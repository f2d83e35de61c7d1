"""Reading video files with PyAV (FFmpeg): the keyframes a video is indexed by, a still at
any moment, and the container's metadata.

A video is indexed as a few stills: its keyframes (the frames an encoder stores whole, which
it places every second or two and at scene changes), thinned to one per :data:`INTERVAL`
seconds unless the picture changed (a scene cut), and at most :data:`MAX_FRAMES` per video.
Only keyframes are decoded (FFmpeg's ``skip_frame=NONKEY``), so a long video costs one
decoded frame per second or two, not thirty. A video whose keyframes are too sparse for
that (some screen recorders write one per minute) is decoded frame by frame instead.
Animated GIFs are read the same way (every GIF frame is whole).

Every failure becomes a :class:`.media.files.BadImage` with a short reason, as for photos.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from .files import BadImage, PhotoMeta, check_pixels, is_video_name, position, reading

INTERVAL = 2.0
"""Seconds between the keyframes kept while the picture does not change."""
MIN_GAP = 0.5
"""Seconds a scene cut must lie after the last keyframe kept to be kept too."""
SCENE_CUT = 0.12
"""Mean absolute difference (0..1) of two 16×16 grey thumbnails above which a keyframe is a
new scene."""
MAX_FRAMES = 32
"""Keyframes kept per video at most: a two-hour film gets one every ~4 minutes."""


def _av():
    import av  # FFmpeg's libraries take ~160 ms to load: once a video is met, not at launch

    return av


@dataclass
class Keyframe:
    """One still of a video: its time from the start in seconds, and its RGB image (scaled
    so the shortest side is at least the caller's *min_side*)."""

    time: float
    image: Image.Image


@dataclass
class VideoMeta(PhotoMeta):
    """:class:`.media.files.PhotoMeta` of a video (width and height of its picture, the
    recording time from the container's ``creation_time`` in local time, Apple's ISO 6709
    location), with its duration in seconds."""

    duration: float = 0.0


def is_video(path: Path) -> bool:
    """True for a video file (by its name) or an animated GIF (more than one frame; a GIF
    that cannot be read is left to the photo decoder to report)."""
    if is_video_name(path):
        return True
    if path.suffix.lower() != ".gif":
        return False
    try:
        with Image.open(path) as gif:
            return getattr(gif, "n_frames", 1) > 1
    except Exception:  # noqa: BLE001 - decode() reports why, with the photo's rules
        return False


def keyframes(path: Path, min_side: int = 0,
              skip_nonkey: bool = True) -> tuple[list[Keyframe], VideoMeta]:
    """The keyframes a video is indexed by (see the module's description), in time order.

    Args:
        path: a video file or an animated GIF.
        min_side: the shortest side (pixels) the caller needs; frames are scaled down to it
            while decoding (0: full size).
        skip_nonkey: decode only the frames stored whole; False decodes every frame (what
            a video with too few of them gets anyway; ``mmrag bench --video`` compares).

    Returns:
        1 to :data:`MAX_FRAMES` keyframes and the video's metadata.

    Raises:
        BadImage: unreadable, empty, no video stream, corrupt or truncated (no frame
            decodes, or the decoder fails partway), with the reason.
    """
    with _opened(path) as (container, stream):
        meta = _metadata(container, stream)
        interval = max(INTERVAL, meta.duration / MAX_FRAMES)
        if skip_nonkey:
            stream.codec_context.skip_frame = "NONKEY"
        kept = _select(container, stream, min_side, interval)
    # Keyframes far sparser than the interval: choose among all frames instead.
    if skip_nonkey and meta.duration > 2 * interval and \
            len(kept) < min(MAX_FRAMES, meta.duration / interval) / 2:
        with _opened(path) as (container, stream):
            kept = _select(container, stream, min_side, interval)
    if len(kept) > MAX_FRAMES:  # scene cuts beyond the bound: spread the ones kept evenly
        kept = [kept[i] for i in np.linspace(0, len(kept) - 1, MAX_FRAMES).round().astype(int)]
    return kept, meta


def keyframe_pixels(path: Path, to_pixels: Callable[[Image.Image], np.ndarray],
                    side: int) -> tuple[np.ndarray, list[float], VideoMeta]:
    """A video's :func:`keyframes` as a model's input: ((n, 3, S, S) uint8 from
    *to_pixels* (an embedder's), their times in s, the video's metadata); decoded at about
    *side* pixels (the model's input side).

    Raises:
        BadImage: as :func:`keyframes`.
    """
    stills, meta = keyframes(path, min_side=side)
    return np.stack([to_pixels(k.image) for k in stills]), [k.time for k in stills], meta


def still(path: Path, at: float = 0.0, min_side: int = 0) -> tuple[Image.Image, VideoMeta]:
    """The frame shown *at* seconds into a video (the first frame at or after it; the last
    frame for a time past the end), and the video's metadata.

    Raises:
        BadImage: as :func:`keyframes`.
    """
    with _opened(path) as (container, stream):
        meta = _metadata(container, stream)
        if at > 0 and stream.time_base:
            # Back to the keyframe before *at*, then forward to the frame itself.
            container.seek(int(at / stream.time_base), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if _time(frame) >= at - 1e-3:
                break
        if chosen is None:
            raise BadImage("no frame could be decoded (truncated or corrupt)")
        return _image(chosen, min_side), meta


@contextmanager
def _opened(path: Path) -> Iterator[tuple]:
    """A video's container and its first video stream, FFmpeg's errors as
    :class:`BadImage`."""
    with reading(path):
        if path.stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
    av = _av()
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise BadImage(f"not a video, or corrupt or truncated: {_reason(exc)}") from exc
    try:
        if not container.streams.video:
            raise BadImage("has no video stream")
        stream = container.streams.video[0]
        check_pixels(stream.codec_context.width, stream.codec_context.height)
        stream.thread_type = "AUTO"
        yield container, stream
    except av.FFmpegError as exc:
        raise BadImage(f"truncated or corrupt: {_reason(exc)}") from exc
    except MemoryError as exc:
        raise BadImage("too large to decode in the memory available") from exc
    finally:
        container.close()


def _select(container, stream, min_side: int, interval: float) -> list[Keyframe]:
    kept: list[Keyframe] = []
    last_time, last_look = -math.inf, None
    for frame in container.decode(stream):
        at = _time(frame)
        look = np.asarray(frame.to_image(width=16, height=16).convert("L"), np.float32) / 255
        cut = last_look is not None and float(np.abs(look - last_look).mean()) > SCENE_CUT
        if at - last_time >= interval or (cut and at - last_time >= MIN_GAP):
            kept.append(Keyframe(at, _image(frame, min_side)))
            last_time, last_look = at, look
    if not kept:
        raise BadImage("no frame could be decoded (truncated or corrupt)")
    return kept


def _time(frame) -> float:
    return float(frame.time) if frame.time is not None else 0.0


def _image(frame, min_side: int) -> Image.Image:
    width, height = frame.width, frame.height
    scale = min_side / min(width, height) if min_side else 1.0
    if scale < 1:  # scaled by FFmpeg's swscale while converting: never a full-size copy
        return frame.to_image(width=max(1, round(width * scale)),
                              height=max(1, round(height * scale)))
    return frame.to_image()


def _metadata(container, stream) -> VideoMeta:
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / _av().time_base
    else:
        duration = 0.0
    tags = dict(container.metadata) | dict(stream.metadata)
    lat, lon = _iso6709(tags.get("location") or tags.get("com.apple.quicktime.location.ISO6709"))
    make = tags.get("com.apple.quicktime.make") or tags.get("make")
    model = tags.get("com.apple.quicktime.model") or tags.get("model")
    return VideoMeta(stream.codec_context.width, stream.codec_context.height,
                     taken_at=_local_time(tags.get("creation_time")),
                     camera_make=make or None, camera_model=model or None,
                     gps_lat=lat, gps_lon=lon, duration=max(duration, 0.0))


def _local_time(value: str | None) -> str | None:
    """A container's ``creation_time`` (UTC, ISO 8601) as local time to the second, as
    photos' EXIF times are; None when absent, malformed or the 1904/1970 epoch placeholder."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.year <= 1970:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _iso6709(value: str | None) -> tuple[float | None, float | None]:
    """Latitude and longitude in degrees from an ISO 6709 string (``+48.8583+002.2945/``)."""
    match = _ISO6709.match(value or "")
    if not match:
        return None, None
    return position(float(match.group(1)), float(match.group(2)))


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """A video's one embedding (its row's, which "find similar", duplicates and the map
    use): the L2-normalised mean of its keyframes' ((n, d) float32) embeddings: (d,)
    float32."""
    mean = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

