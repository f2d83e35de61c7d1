"""Text in photos (OCR): rapidocr running the PP-OCR detection and recognition models that
ship inside its wheel (ONNX Runtime; no download, works offline).

Detection runs on every photo, on a copy at most :data:`DETECT_SIDE` pixels long (never
enlarged); recognition only on the lines it finds, cut from the photo decoded at up to
:data:`READ_SIDE` pixels (JPEG draft mode), so small text is read from sharper pixels than it
was found in. A photo without text pays for one detection pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..media.photos import decode, fit_within

DETECT_SIDE = 640
"""Pixels on the longest side for detection (rapidocr's ``limit_type`` ``max``). Measured by
``mmrag bench --text`` on coco-mini's 640×480 photos and 40 rendered phrases (2 cores, one
ONNX Runtime thread): rapidocr's default, the shortest side enlarged to 736 (here 640), cost
276 ms a photo and read 28 phrases verbatim; 640 on the longest side 138 ms and 31; 512
99 ms and 29 (see the bench's table)."""

READ_SIDE = 1280
"""Pixels on the longest side of the photo the text lines are cut from for recognition."""

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
    pool; 1 leaves the other cores to the app and its searches), detecting at *detect_side*
    pixels on the longest side (``limit="max"``) or, as rapidocr does by default, on the
    shortest side, enlarging small photos (``limit="min"``: the bench's comparison)."""

    def __init__(self, threads: int = 1, detect_side: int = DETECT_SIDE, limit: str = "max"):
        self.threads, self.detect_side, self.limit = threads, detect_side, limit
        self._ocr = None

    def _engine(self):
        if self._ocr is None:
            from rapidocr import RapidOCR

            self._ocr = RapidOCR(params={
                "Global.use_cls": False,  # 180°-flip classifier: upright photos need none
                "Global.log_level": "error",
                "Global.max_side_len": READ_SIDE,
                "Det.limit_type": self.limit, "Det.limit_side_len": self.detect_side,
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
        image, meta = decode(path, min_side=READ_SIDE * 3 // 4)
        image = fit_within(image, READ_SIDE)
        output = self._engine()(image)
        if not output.txts:
            return []
        scale = meta.width / image.width
        return [TextLine(text.strip(), round(float(score), 4),
                         [[round(float(x) * scale, 1), round(float(y) * scale, 1)]
                          for x, y in box])
                for text, score, box in zip(output.txts, output.scores, output.boxes)
                if score >= MIN_SCORE and text.strip()]
