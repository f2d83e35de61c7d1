"""A video's keyframes: time and embedding, by model and content hash."""

from __future__ import annotations

import numpy as np


class Frames:
    """Keyframes by model and content hash."""

    def frame_state(self, model: str) -> tuple[int, int]:
        """(keyframes of *model*, the newest one's ``seq``): a cache of them is current
        while this has not changed."""
        count, newest = self.db.execute(
            "SELECT COUNT(*), MAX(seq) FROM frames WHERE model = ?", [model]).fetchone()
        return count, newest or 0

    def frame_rows(self, model: str, after_seq: int = 0) -> list[tuple[str, float, bytes]]:
        """(content hash, time in s, (d,) float32 embedding bytes) of *model*'s keyframes
        stored after *after_seq*."""
        return self.db.execute("SELECT hash, time, vector FROM frames WHERE model = ? "
                               "AND seq > ?", [model, after_seq]).fetchall()

    def frame_keys(self, model: str) -> set[tuple[str, float]]:
        """(content hash, time in s) of every keyframe of *model*."""
        return set(self.db.execute("SELECT hash, time FROM frames WHERE model = ?", [model]))

    def frames_of(self, model: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
        """A video's keyframes under *model*: ((n,) float64 times in s, ascending;
        (n, d) float32 embeddings); n is 0 for a photo."""
        rows = self.db.execute("SELECT time, vector FROM frames WHERE model = ? AND hash = ? "
                               "ORDER BY time", [model, digest]).fetchall()
        if not rows:
            return np.empty(0), np.empty((0, 0), np.float32)
        return (np.array([r[0] for r in rows], np.float64),
                np.stack([np.frombuffer(r[1], np.float32) for r in rows]))
