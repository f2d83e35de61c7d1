"""Text in photos (OCR): rapidocr running the PP-OCR detection and recognition models that
ship inside its wheel (ONNX Runtime; no download, works offline).

Detection runs on every photo, recognition only on the boxes it finds, so a photo without
text pays for one detection pass at :data:`DETECT_SIDE` pixels: the photo is decoded at
about that size (JPEG draft mode) and never enlarged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..media.photos import decode

DETECT_SIDE = 640
"""Pixels on the shortest side for detection. rapidocr's default (736, enlarging smaller
photos) costs ~1.5x the time on coco-mini's 640×480 photos and found the same phrases in
``mmrag bench --ocr``."""

MIN_SCORE = 0.5
"""Recognised lines below this confidence (0–1) are dropped: mostly texture read as
letters."""


@dataclass
class TextLine:
    """One line of text recognised in a photo.

    Attributes:
        text: the characters read.
        score: the recogniser's confidence, 0–1.
        box: the line's four corners, [[x, y], …] clockwise from top left, in pixels of
            the full-size photo (EXIF orientation applied).
    """

    text: str
    score: float
    box: list[list[float]]


class TextReader:
    """rapidocr, loaded on first use, on *threads* CPU threads (ONNX Runtime's intra-op
    pool; 1 leaves the other cores to the app and its searches)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._ocr = None

    def _engine(self):
        if self._ocr is None:
            from rapidocr import RapidOCR

            self._ocr = RapidOCR(params={
                "Global.use_cls": False,  # 180°-flip classifier: upright photos need none
                "Global.log_level": "error",
                "Global.max_side_len": 4 * DETECT_SIDE,
                "Det.limit_type": "min", "Det.limit_side_len": DETECT_SIDE,
                # Lower than rapidocr's 0.3 / 0.5: more faint or rotated lines are found
                # (35 of 40 phrases with a word read instead of 33 in `mmrag bench --text`),
                # at the same cost.
                "Det.thresh": 0.2, "Det.box_thresh": 0.3,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
        return self._ocr

    def read(self, path: Path) -> list[TextLine]:
        """The lines of text in the photo at *path*, top to bottom.

        Raises:
            BadImage: the photo cannot be decoded.
        """
        image, meta = decode(path, min_side=DETECT_SIDE)
        if min(image.size) > DETECT_SIDE:  # draft mode stops at a power-of-two scale
            image.thumbnail((DETECT_SIDE * image.width // min(image.size),
                             DETECT_SIDE * image.height // min(image.size)))
        output = self._engine()(image)
        if not output.txts:
            return []
        scale = meta.width / image.width
        return [TextLine(text.strip(), round(float(score), 4),
                         [[round(float(x) * scale, 1), round(float(y) * scale, 1)]
                          for x, y in box])
                for text, score, box in zip(output.txts, output.scores, output.boxes)
                if score >= MIN_SCORE and text.strip()]
