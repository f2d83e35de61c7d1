"""Decoding photo files: fast decoding, EXIF orientation and metadata, the model's input.

Every failure becomes a :class:`BadImage` with a short, human-readable reason, so the indexer
can record it and carry on.
"""

from __future__ import annotations

import io
import math
import os
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pi_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import MAX_PIXELS, BadImage, PhotoMeta, check_pixels, is_video_name, position, reading
from .video import still
from .xmp import embedded_xmp

pi_heif.register_heif_opener()

# The explicit check in decode() enforces MAX_PIXELS; Pillow's own warning below its error
# threshold would only repeat it, from whichever thread decodes.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME = 271, 272, 306
_TAG_DATETIME_ORIGINAL = 36867


def decode(source: Path | bytes, min_side: int = 0,
           at: float = 0.0) -> tuple[Image.Image, PhotoMeta]:
    """Decode a photo file (or encoded bytes) into an RGB image with EXIF orientation
    applied: the one way the app reads a photo, at whatever size it needs. A video file
    gives its frame *at* seconds (:func:`.media.video.still`).

    Args:
        source: the file, or its encoded bytes (a pasted image).
        min_side: the shortest side (pixels) the caller needs. JPEGs are decoded in draft
            mode (libjpeg's DCT scaling by 1/2, 1/4 or 1/8) to the smallest size that keeps
            at least *min_side* pixels on the shortest side: for a 12 MP photo and a 256-pixel
            model this decodes 500×375 pixels instead of 4000×3000, and the antialiased
            resize that follows has far less to do; only the bytes needed are read. 0 decodes
            at full size.
        at: for a video (or an animated GIF), seconds from its start.

    Returns:
        The RGB image (transparent areas composited on white; 16-bit images scaled to 8
        bits) and its metadata, whose width and height are those of the full-size oriented
        photo.

    Raises:
        BadImage: unreadable, empty, not an image, truncated or corrupt, above
            :data:`.media.files.MAX_PIXELS`, or any failure inside a decoder (with its reason).
    """
    if not isinstance(source, bytes) and (at or is_video_name(source)):  # a moment: a video
        return still(source, at, min_side)
    if isinstance(source, bytes):
        if not source:
            raise BadImage("empty file (0 bytes)")
        return _decode(io.BytesIO(source), min_side)
    with reading(source), source.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise BadImage("empty file (0 bytes)")
        return _decode(f, min_side)


def fit_within(image: Image.Image, side: int) -> Image.Image:
    """*image* scaled down (bilinear) to at most *side* pixels on its longest side; itself
    when it is that small already (never enlarged)."""
    scale = side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BILINEAR)


def _decode(stream: BinaryIO, min_side: int) -> tuple[Image.Image, PhotoMeta]:
    try:
        img = Image.open(stream)
        width, height = img.size
        check_pixels(width, height)
        meta = _metadata(img)
        if min_side and img.format == "JPEG":
            scale = min_side / min(width, height)
            if scale < 1:
                img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        img.load()
        img = ImageOps.exif_transpose(img)
        rgb = _to_rgb(img)
    except BadImage:
        raise
    except UnidentifiedImageError as exc:
        raise BadImage("not an image (unrecognised format)") from exc
    except Image.DecompressionBombError as exc:
        raise BadImage(f"decompression bomb guard: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        # Pillow reports truncation and corrupt data through several exception types.
        raise BadImage(f"truncated or corrupt: {exc}") from exc
    except MemoryError as exc:
        raise BadImage("too large to decode in the memory available") from exc
    except Exception as exc:  # noqa: BLE001 - a decoder plugin's bug costs this photo only
        raise BadImage(f"the decoder failed ({type(exc).__name__}: {exc})") from exc
    return rgb, meta


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode.startswith("I;16") or img.mode == "I" or img.mode.startswith("RGB;16") \
            or img.mode.startswith("RGBA;16") or img.mode in ("RGBX;16", "LA;16"):
        return _eight_bit(img)
    return img.convert("RGB")


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer images (scans, exports: TIFF / PNG ``I;16``, ``I;16B``,
    ``I``, 16-bit RGB) scaled to 8 bits per channel rather than clipped. Pillow's own
    conversions clip these modes or refuse them ("point operation not supported")."""
    pixels = np.asarray(img)
    if pixels.dtype.byteorder == ">" or (pixels.dtype.byteorder == "=" and sys.byteorder == "big"):
        pixels = pixels.astype(pixels.dtype.newbyteorder("<"))
    if img.mode == "I":
        # 32-bit container; 16-bit PNGs open as "I" holding 0..65535.
        top = 65535 if pixels.max(initial=0) <= 65535 else int(pixels.max())
        pixels = pixels.astype(np.float64) * (255.0 / max(top, 1))
    else:
        pixels = pixels.astype(np.float64) / 257.0
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        return Image.fromarray(pixels, "L").convert("RGB")
    if pixels.shape[2] == 4 and img.mode.startswith("RGBA"):
        return _to_rgb(Image.fromarray(pixels, "RGBA"))
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")


def _metadata(img: Image.Image) -> PhotoMeta:
    width, height = img.size
    xmp = embedded_xmp(img)
    try:
        exif = img.getexif()
        orientation = exif.get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        sub = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # noqa: BLE001 - malformed EXIF must not cost the photo itself
        return PhotoMeta(width, height, xmp=xmp)
    lat, lon = position(_gps_degrees(gps.get(2), gps.get(1), "S"),
                        _gps_degrees(gps.get(4), gps.get(3), "W"))
    return PhotoMeta(
        width,
        height,
        taken_at=_exif_datetime(sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)),
        camera_make=_clean_text(exif.get(_TAG_MAKE)),
        camera_model=_clean_text(exif.get(_TAG_MODEL)),
        gps_lat=lat,
        gps_lon=lon,
        xmp=xmp,
    )


def _clean_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _exif_datetime(value: object) -> str | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` as ISO 8601, or None when absent or malformed."""
    text = _clean_text(value)
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _gps_degrees(dms: object, ref: object, negative_ref: str) -> float | None:
    """EXIF's (degrees, minutes, seconds) and reference as signed degrees; None unless each
    part is in its range (degrees ≥ 0, minutes and seconds in [0, 60], 60 allowed: writers
    that round 59.99996 seconds write 41°8'60" for 41.15°, which is still that place)."""
    try:
        d, m, s = (float(x) for x in dms)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (d >= 0 and 0 <= m <= 60 and 0 <= s <= 60):
        return None
    degrees = d + m / 60 + s / 3600
    if not math.isfinite(degrees):
        return None
    return -degrees if _clean_text(ref) == negative_ref else degrees


RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
"""open_clip's ``interpolation`` names → Pillow's filters."""
RESIZE_MODES = ("shortest", "squash")
"""open_clip's ``resize_mode`` names that :func:`model_input` repeats."""


def model_input(image: Image.Image, side: int, interpolation: str,
                resize_mode: str = "shortest") -> np.ndarray:
    """open_clip's preprocessing without torchvision. ``shortest``: the shortest side
    resized to *side* (the other as torchvision computes it, truncated), then a centre crop
    (offsets rounded as torchvision's ``CenterCrop``); ``squash`` (SigLIP's): both sides
    resized to *side*, no crop. Normalisation is left to the model's batch.

    Args:
        image: any mode; converted to RGB.
        side: the model's input side S, pixels.
        interpolation: a key of :data:`RESAMPLING`.
        resize_mode: a key of :data:`RESIZE_MODES`.

    Returns:
        (3, S, S) uint8, channels first.
    """
    image = image.convert("RGB")
    if resize_mode == "squash":
        image = image.resize((side, side), RESAMPLING[interpolation])
    else:
        width, height = image.size
        if width <= height:
            size = (side, int(side * height / width))
        else:
            size = (int(side * width / height), side)
        image = image.resize(size, RESAMPLING[interpolation])
        left = int(round((size[0] - side) / 2.0))
        top = int(round((size[1] - side) / 2.0))
        image = image.crop((left, top, left + side, top + side))
    pixels = np.asarray(image, dtype=np.uint8)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))
