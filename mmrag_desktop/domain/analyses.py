"""What the understanding pass can learn about a photo, by name: the kind its results are
stored under, their version, and what people read while it runs and after. Names come from
:data:`.core.config.ANALYSIS_NAMES`, the ones a user may list in ``understand``."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import ANALYSIS_NAMES

# Each analysis's version: results stored by an older one are redone.
OCR_VERSION = 1  # the OCR pipeline
PLACES_VERSION = 2  # the place lookup (2: nearest by great-circle distance, not in degrees)
CAPTION_VERSION = 1  # the caption prompt and schema
FACES_VERSION = 1  # the face detector, its sizes and the descriptor


@dataclass(frozen=True)
class Analysis:
    """One thing the pass learns: the ``kind`` its results are stored under and their
    ``version``, photos per commit (``batch``: what an interruption can cost), what it
    ``reads`` (``photos``; ``gps``: photos with EXIF GPS; ``media``: photos and videos), and
    what people read while it runs (``doing``) and after (``done``)."""

    kind: str
    version: int
    batch: int
    reads: str
    doing: str
    done: str


ANALYSES = dict(zip(ANALYSIS_NAMES, (
    Analysis("text", OCR_VERSION, 8, "photos", "Reading text in photos", "photos read"),
    # one call names a thousand places in milliseconds
    Analysis("place", PLACES_VERSION, 1000, "gps", "Naming places", "places named"),
    Analysis("faces", FACES_VERSION, 8, "media", "Finding faces", "photos read for faces"),
    Analysis("caption", CAPTION_VERSION, 4, "photos", "Describing photos", "photos described"),
), strict=True))
"""What the pass can do, by name: ``text`` (OCR), ``places`` (reverse geocoding of GPS),
``faces`` (:mod:`.understanding.faces`, grouped into people by :mod:`.library.people`),
``captions`` (the vision-language model; opt-in)."""
