"""Near-duplicate photos: exact copies (the same content hash) and near ones (embeddings
with cosine similarity at or above a threshold: resized or re-compressed copies, bursts),
grouped transitively (union-find), each group with a suggested photo to keep."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .query import Result

NEAR_COSINE = 0.99
"""Default threshold: Immich's duplicate detection default, a CLIP cosine distance of at
most 0.01 (``machineLearning.duplicateDetection.maxDistance``)."""


COPY_PATH = re.compile(
    r"(^|[\\/])(downloads?|telegram[^\\/]*|whatsapp[^\\/]*)([\\/]|$)"  # folders of copies
    r"|(^|[\\/])copy of |[ _-]copy( \d+)?\.\w+$|[ _-]copy[ _-]|\(\d+\)\.\w+$",  # names
    re.IGNORECASE)
"""Where copies live or how they are named: a Downloads or messenger folder, "copy of …",
"… - Copy.jpg", "… (1).jpg"."""


@dataclass
class DuplicateGroup:
    """Photos that are copies of one another, the suggested one to keep first (see
    :func:`keep_first`), with :attr:`reason` saying why. ``exact`` is true when every photo
    has the same content hash."""

    photos: list[Result]
    exact: bool

    @property
    def keep(self) -> Result:
        return self.photos[0]

    @property
    def reason(self) -> str:
        """Why :attr:`keep` is suggested, for people: ``"it has the date and camera
        (EXIF); the others are in a downloads folder or named as copies"``."""
        return why_kept(self.photos)


def group(ids: np.ndarray, neighbour_ids: np.ndarray, neighbour_scores: np.ndarray,
          hashes: dict[int, str], threshold: float = NEAR_COSINE) -> list[list[int]]:
    """Groups of row ids joined by an exact copy (same hash) or a neighbour pair with
    cosine ≥ *threshold*, transitively; only groups of two or more, largest first.

    Args:
        ids: (n,) int64 row ids of the photos considered.
        neighbour_ids, neighbour_scores: (n, k) int64 / float32 from
            :meth:`.index.vectors.VectorIndex.neighbours` for each of *ids*.
        hashes: row id → content hash, for every id.
        threshold: cosine similarity in [-1, 1].
    """
    parent = {int(i): int(i) for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    by_hash: dict[str, int] = {}
    for i in parent:
        first = by_hash.setdefault(hashes[i], i)
        if first != i:
            join(i, first)
    for i, row, scores in zip(ids, neighbour_ids, neighbour_scores):
        for j, score in zip(row, scores):
            if int(j) != int(i) and int(j) in parent and score >= threshold:
                join(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for i in parent:
        groups.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=len, reverse=True)


def _exif(r: Result) -> bool:
    return bool(r.meta.get("taken_at") or r.meta.get("camera_model"))


def _pixels(r: Result) -> int:
    return (r.meta.get("width") or 0) * (r.meta.get("height") or 0)


def keep_first(photos: list[Result]) -> list[Result]:
    """*photos* ordered so that the original comes first: not where copies live or named
    as one (:data:`COPY_PATH`), then with EXIF (a date or a camera: what a download or a
    messenger strips), then the most pixels, the largest file, the earliest taken or
    modified, the shortest path."""
    def rank(r: Result):
        meta = r.meta
        return (bool(COPY_PATH.search(r.path)), not _exif(r), -_pixels(r),
                -(meta.get("size") or 0), meta.get("taken_at") or "9999",
                meta.get("mtime_ns") or 0, len(r.path), r.path)
    return sorted(photos, key=rank)


def why_kept(photos: list[Result]) -> str:
    """Why the first of *photos* (ordered by :func:`keep_first`) is the one to keep."""
    keep, others = photos[0], photos[1:]
    reasons = []
    if not COPY_PATH.search(keep.path) and any(COPY_PATH.search(r.path) for r in others):
        reasons.append("the others are in a downloads folder or named as copies")
    if _exif(keep) and not all(_exif(r) for r in others):
        reasons.append("it has the date and camera (EXIF)")
    if _pixels(keep) > max(_pixels(r) for r in others):
        reasons.append("it has the most pixels")
    if not reasons:
        reasons.append("the same photo: the largest file, or the first taken")
    return "; ".join(reasons)
