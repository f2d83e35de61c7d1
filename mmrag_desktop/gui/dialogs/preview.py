"""The viewer: one result large, with its metadata; ← / → step through the results, F fills
the screen, the wheel, + / −, 1 (1:1) and 0 (fit) zoom, dragging pans; a video plays here
from the moment found (K, or its Play button)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.text import clock, size_text
from ...domain.concepts import TAGGED
from ...domain.query import Result
from ..adapters.bridge import LibraryBridge
from ..adapters.thumbnail_loader import full_image, preview_image
from ..widgets import desktop, plain
from ..widgets.layouts import Retired
from ..widgets.player import PLAYBACK_MISSING, VideoBar
from ..widgets.results import why_matched
from .extraction import ExtractionDialog

ZOOM_STEP = 1.25  # a wheel notch or + / −
MAX_ZOOM = 8.0  # screen pixels per pixel of the photo


def metadata_rows(result: Result) -> list[tuple[str, str]]:
    """(label, value) pairs describing a result for people: path, date taken, size, camera,
    place (named, where the understanding pass found it), the text in the photo, its
    caption and tags (by the vision-language model), cosine
    similarity to the query (when there was one) and why a keyword search matched."""
    meta = result.meta
    rows = [("File", os.path.basename(result.path)), ("Folder", os.path.dirname(result.path))]
    if meta.get("taken_at"):
        rows.append(("Taken", meta["taken_at"].replace("T", " ")))
    elif meta.get("date"):  # a photo of the timeline: taken, else modified
        rows.append(("Date", meta["date"].replace("T", " ")))
    if meta.get("width"):
        rows.append(("Size", f"{meta['width']} × {meta['height']} pixels, "
                             f"{size_text(meta.get('size'))}"))
    if meta.get("duration") is not None:
        rows.append(("Video", f"{clock(meta['duration'])} long" + (
            f"; this moment is {clock(meta['moment'])} in (Play and Open start there)"
            if "moment" in meta else "")))
    if meta.get("mtime_ns"):
        modified = datetime.fromtimestamp(meta["mtime_ns"] / 1e9)
        rows.append(("Modified", modified.strftime("%Y-%m-%d %H:%M")))
    camera = " ".join(filter(None, [meta.get("camera_make"), meta.get("camera_model")]))
    if camera:
        rows.append(("Camera", camera))
    if meta.get("gps_lat") is not None and meta.get("gps_lon") is not None:
        coordinates = f"{meta['gps_lat']:.5f}, {meta['gps_lon']:.5f}"
        rows.append(("Place", f"{meta['place']} ({coordinates})" if meta.get("place")
                     else coordinates))
    if meta.get("text"):
        rows.append(("Text in photo", meta["text"]))
    if meta.get("caption"):
        rows.append(("Caption", meta["caption"] + (f" (tags: {meta['tags']})"
                                                   if meta.get("tags") else "")))
    if meta.get("people"):
        rows.append(("People", ", ".join(meta["people"])))
    tagged = [f"{name} ({p:.0%} sure)" for name, p in meta.get("concepts", {}).items()
              if p >= TAGGED]
    if tagged:
        rows.append(("Concepts", ", ".join(tagged)))
    if meta.get("extracted"):
        rows.append(("Extracted", meta["extracted"]))
    if result.score is not None and "matched" not in meta:  # a keyword match says why instead
        rows.append(("Score", f"{result.score:.3f} (how sure “{meta['scored_by']}” is)"
                     if meta.get("scored_by") else f"{result.score:.3f} (cosine similarity)"))
    why = why_matched(meta)
    if why:
        rows.append(("Why", why))
    return rows


class PreviewDialog(QDialog):
    """Shows ``results[row]`` large. Emits ``find_similar(path)`` and ``ask_about(path)``."""

    find_similar = Signal(str)
    ask_about = Signal(str)

    def __init__(self, results: Sequence[Result], row: int, bridge: LibraryBridge,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.results, self.row, self.bridge = results, row, bridge
        self.setWindowTitle("Preview")
        self.resize(1100, 760)
        self.image_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image_label.setMinimumSize(QSize(320, 240))
        self.details = QFormLayout()
        side = QVBoxLayout()
        side.addLayout(self.details)
        self.faces_row = QHBoxLayout()  # a button per face: name it, or correct it
        self._retired = Retired()
        side.addLayout(self.faces_row)
        side.addStretch(1)
        actions = QGridLayout()  # two rows: five buttons do not fit the panel's width
        for number, (text, slot) in enumerate((("Open", lambda: desktop.open_or_say(
                               self.result.path, self.result.meta.get("moment"),
                               self.bridge.message.emit)),
                           ("Show in folder", lambda: desktop.reveal_in_file_manager(self.result.path)),
                           ("Find similar", self._find_similar),
                           ("Ask…", self._ask_about),
                           ("Extract…", self._extract))):
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            actions.addWidget(button, number // 3, number % 3)
        side.addLayout(actions)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        side.addWidget(close)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(400)
        view = QVBoxLayout()
        view.addWidget(self.image_label, 1)
        self.video = VideoBar() if PLAYBACK_MISSING is None else None
        if self.video is not None:
            self.video.frame.connect(self._on_frame)
            self.video.failed.connect(lambda error: self.bridge.message.emit(
                f"Cannot play {os.path.basename(self.video.path)} here: {error}; Open plays it"))
            view.addWidget(self.video)
        layout = QHBoxLayout(self)
        layout.addLayout(view, 1)
        layout.addWidget(panel)
        self._image = QImage()
        self._drawn: tuple[tuple, QImage] | None = None  # (photo and faces, drawn), see _with_faces
        self._zoom: float | None = None  # screen pixels per image pixel; None: fit the view
        self._centre = QPointF()  # the image point at the middle of the view, when zoomed
        self._full = False  # the full-size decode is shown (1:1 needs it)
        self._playing = False  # the image is a frame of the video playing, not the moment
        self._drag: QPointF | None = None
        self.image_label.setMouseTracking(False)
        self._faces: list = []  # (FaceRow, name) of the photo shown
        # ← → step through the results and Space closes (a quick look, closed as it was
        # opened) whichever widget has the focus: its buttons never see those keys.
        for widget in self.findChildren(QWidget):
            widget.installEventFilter(self)
        self.image_label.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.image_label.setFocus()
        self.show_row(row)

    @property
    def result(self) -> Result:
        return self.results[self.row]

    def show_row(self, row: int) -> None:
        """Show another result (decoded off the GUI thread)."""
        self.row = row
        self.setWindowTitle(f"{os.path.basename(self.result.path)} — {row + 1} of {len(self.results)}")
        self._fill_details()
        digest = self.result.meta.get("hash")
        if digest and "text" not in self.result.meta and "place" not in self.result.meta:
            # a photo of the timeline: what the understanding pass knows is read now
            self.bridge.op(lambda engine: engine.search.understood(digest)) \
                .success(lambda known: self._understood(row, known)).run()
        self._image, self._zoom, self._full, self._playing = QImage(), None, False, False
        if self.video is not None:
            duration = self.result.meta.get("duration")
            if duration is not None:
                self.video.load(self.result.path, duration, self.result.meta.get("moment", 0.0))
            else:
                self.video.stop()
            self.video.setVisible(duration is not None)
        self._show_faces(row, [])
        if digest:
            self.bridge.op(lambda engine: engine.people.in_photos([digest]).get(digest, [])) \
                .success(lambda faces: self._show_faces(row, faces)).run()
        self.image_label.setText("Loading…")
        path, at = self.result.path, self.result.meta.get("moment", 0.0)
        self.bridge.op(lambda _engine: preview_image(path, at)) \
            .success(lambda image: self._on_decoded(path, image)) \
            .failure(lambda error: self._on_failed(path, error)).run()

    def _fill_details(self) -> None:
        while self.details.rowCount():
            self.details.removeRow(0)
        for label, value in metadata_rows(self.result):
            field = plain.label(value)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.details.addRow(label, field)

    def _understood(self, row: int, known: dict[str, str]) -> None:
        if known and row == self.row:
            self.result.meta.update(known)
            self._fill_details()

    def _on_decoded(self, path: str, image: QImage) -> None:
        if path == self.result.path:  # else the user moved on
            self._image = image
            self._fit()

    def _on_frame(self, image: QImage) -> None:
        """A frame of the video playing replaces the moment's (full size: no second decode
        to zoom; its faces were found at the moment only, so none are drawn)."""
        if not image.isNull():
            self._image, self._full, self._playing = image, True, True
            self._fit()

    def _on_failed(self, path: str, error: str) -> None:
        if path == self.result.path:
            self.image_label.setText(f"Cannot show this photo: {error}")

    def _show_faces(self, row: int, faces: list) -> None:
        """The faces of the photo shown: boxes with names on it, and a button each."""
        if row != self.row:
            return
        at = self.result.meta.get("moment", 0.0)
        self._faces = [(face, name) for face, name in faces if abs(face.time - at) < 1e-6
                       or self.result.meta.get("duration") is None]
        self._retired.empty(self.faces_row)
        for number, (face, name) in enumerate(self._faces, 1):
            button = QToolButton()
            button.setText(f"{number}. {name or 'Who?'}")
            button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            menu = QMenu(button)
            menu.addAction("Name…", lambda f=face, n=name: self._name_face(f, n))
            menu.addAction("Move to…", lambda f=face: self._move_face(f))
            if face.person is not None:
                menu.addAction(f"Not {name or 'this person'}", lambda f=face: self._correct(
                    lambda engine: engine.people.not_this_person(f.id)))
            menu.addAction("Not a face", lambda f=face: self._correct(
                lambda engine: engine.people.not_a_face(f.id)))
            button.setMenu(menu)
            button.installEventFilter(self)
            self.faces_row.addWidget(button)
        self._fit()

    def _name_face(self, face, name: str) -> None:
        """Name the face's person (a face of nobody becomes a person of its own)."""
        new, ok = QInputDialog.getText(self, "Name", "Who is this?", text=name)
        if not ok or not new.strip():
            return

        def named(engine):
            person = face.person if face.person is not None else engine.people.move([face.id], None)
            engine.people.name(person, new)

        self._correct(named)

    def _move_face(self, face) -> None:
        """Put the face with another person, chosen from the named ones."""
        self.bridge.op(lambda engine: engine.people.everyone(include_hidden=True)) \
            .success(lambda people: self._choose_person(face, people)).run()

    def _choose_person(self, face, people: list) -> None:
        named = {f"{p.name} ({p.photos} photos)": p.id for p in people
                 if p.name and p.id != face.person}
        if not named:
            self.bridge.message.emit("Name people first (People…): a face moves to a named person")
            return
        choice, ok = QInputDialog.getItem(self, "Move to", "Who is this?", list(named), 0, False)
        if ok:
            self._correct(lambda engine: engine.people.move([face.id], named[choice]))

    def _correct(self, fn) -> None:
        row = self.row
        self.bridge.op(fn, lane="jobs").success(lambda _r: self._corrected(row)) \
            .failure(lambda error: self.bridge.message.emit(error)).run()

    def _corrected(self, row: int) -> None:
        digest = self.result.meta.get("hash")
        if row == self.row and digest:
            self.bridge.op(lambda engine: engine.people.in_photos([digest]).get(digest, [])) \
                .success(lambda faces: self._show_faces(row, faces)).run()
        self.bridge.refresh()

    def _fit(self) -> None:
        """Draw the photo: fitted to the view, or at :attr:`_zoom` around :attr:`_centre`."""
        if self._image.isNull():
            return
        image = self._with_faces()
        view = self.image_label.size()
        if self._zoom is None:
            self.image_label.setPixmap(QPixmap.fromImage(image).scaled(
                view, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
            return
        width, height = view.width() / self._zoom, view.height() / self._zoom
        x = min(max(self._centre.x() - width / 2, 0), max(0.0, image.width() - width))
        y = min(max(self._centre.y() - height / 2, 0), max(0.0, image.height() - height))
        self._centre = QPointF(x + width / 2, y + height / 2)
        part = image.copy(QRect(int(x), int(y), round(width), round(height)))
        self.image_label.setPixmap(QPixmap.fromImage(part).scaled(
            int(part.width() * self._zoom), int(part.height() * self._zoom),
            Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def _with_faces(self) -> QImage:
        """The photo with its faces' boxes drawn, made once per photo and faces (a pan redraws
        many times a second: a full-size copy each time would stall the window)."""
        if self._playing:
            return self._image
        key = (self._image.cacheKey(), tuple((face.id, name) for face, name in self._faces))
        if self._drawn is None or self._drawn[0] != key:
            image = self._image
            if self._faces:
                image = image.copy()
                self._draw_faces(image)
            self._drawn = (key, image)
        return self._drawn[1]

    def fitted_scale(self) -> float:
        """Screen pixels per image pixel when the photo fits the view."""
        if self._image.isNull():
            return 1.0
        view = self.image_label.size()
        return min(view.width() / self._image.width(), view.height() / self._image.height())

    def zoom_to(self, zoom: float | None) -> None:
        """Show the photo at *zoom* screen pixels per pixel of the photo (None: fitted),
        from fitted up to 8×; 1.0 is 1:1, the photo's own pixels (decoded at full size
        first, off the GUI thread)."""
        if self._image.isNull():
            return
        if zoom is not None and zoom <= self.fitted_scale():
            zoom = None
        if zoom is not None and not self._full:
            scale = self._image.width()  # the preview's; the full decode is larger
            path, at, row = self.result.path, self.result.meta.get("moment", 0.0), self.row
            self._full = True

            def decoded(full: QImage) -> None:
                if row == self.row and not full.isNull():
                    factor = full.width() / scale
                    self._image = full
                    self._centre = QPointF(self._centre.x() * factor, self._centre.y() * factor)
                    if self._zoom is not None:  # as large on screen; 1:1 is the photo's pixels
                        self._zoom = 1.0 if self._zoom == 1.0 else self._zoom / factor
                    self._fit()
            self.bridge.op(lambda _engine: full_image(path, at)).success(decoded).run()
        if self._zoom is None and zoom is not None:
            self._centre = QPointF(self._image.width() / 2, self._image.height() / 2)
        self._zoom = None if zoom is None else min(zoom, MAX_ZOOM)
        self._fit()

    def _zoom_by(self, factor: float) -> None:
        self.zoom_to((self._zoom or self.fitted_scale()) * factor)

    def toggle_full_screen(self) -> None:
        """F: the preview fills the screen (again: back to a window)."""
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def _draw_faces(self, image: QImage) -> None:
        """Each face's box (fractions of the displayed photo) and number and name."""
        painter = QPainter(image)
        width = max(2, image.width() // 300)
        font = painter.font()
        font.setPixelSize(max(12, image.height() // 40))
        painter.setFont(font)
        for number, (face, name) in enumerate(self._faces, 1):
            left, top, right, bottom = face.box
            box = QRect(int(left * image.width()), int(top * image.height()),
                        int((right - left) * image.width()), int((bottom - top) * image.height()))
            painter.setPen(QPen(QColor(255, 210, 0), width))
            painter.drawRect(box)
            label = f"{number}. {name}" if name else str(number)
            metrics = painter.fontMetrics()
            tag = QRect(box.left(), box.bottom() + width, metrics.horizontalAdvance(label) + 8,
                        metrics.height() + 2)
            painter.fillRect(tag, QColor(0, 0, 0, 170))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _step(self, by: int) -> None:
        if 0 <= self.row + by < len(self.results):
            self.show_row(self.row + by)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.KeyPress and self._key(event.key()):
            return True
        if watched is self.image_label:
            if event.type() == QEvent.Type.Wheel:
                self._zoom_by(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)
                return True
            if event.type() == QEvent.Type.MouseButtonPress and self._zoom is not None:
                self._drag = event.position()
                return True
            if event.type() == QEvent.Type.MouseMove and self._drag is not None:
                moved = event.position() - self._drag
                self._drag = event.position()
                self._centre -= moved / self._zoom
                self._fit()
                return True
            if event.type() == QEvent.Type.MouseButtonRelease:
                self._drag = None
            if event.type() == QEvent.Type.MouseButtonDblClick:
                self.zoom_to(None if self._zoom is not None else 1.0)
                return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if not self._key(event.key()):
            super().keyPressEvent(event)

    def _key(self, key: int) -> bool:
        """Handle ← → (step), Space (close), F (full screen), + / − (zoom), 1 (the photo's
        own pixels, 1:1), 0 (fit) and K (play / pause a video); False for any other key."""
        if key == Qt.Key.Key_Right:
            self._step(1)
        elif key == Qt.Key.Key_Left:
            self._step(-1)
        elif key == Qt.Key.Key_Space:
            self.accept()
        elif key == Qt.Key.Key_F:
            self.toggle_full_screen()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self._zoom_by(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self._zoom_by(1 / ZOOM_STEP)
        elif key == Qt.Key.Key_1:
            self.zoom_to(1.0)
        elif key == Qt.Key.Key_0:
            self.zoom_to(None)
        elif key == Qt.Key.Key_K and self.video is not None and self.video.isVisible():
            self.video.toggle()
        else:
            return False
        return True

    def done(self, result: int) -> None:
        if self.video is not None:
            self.video.stop()  # a closed viewer must not go on playing, nor hold the file
        super().done(result)

    def _ask_about(self) -> None:
        self.ask_about.emit(self.result.path)
        self.accept()

    def _extract(self) -> ExtractionDialog:
        dialog = ExtractionDialog(self.bridge, self.result.path, self)
        dialog.show()
        return dialog

    def _find_similar(self) -> None:
        self.find_similar.emit(self.result.path)
        self.accept()
