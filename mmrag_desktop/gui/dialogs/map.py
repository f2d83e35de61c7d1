"""The map of the library (:mod:`.index.map`): every photo a dot, photos that look alike
together. Wheel zooms at the pointer, right or middle drag pans, hovering shows the photo,
dragging with the left button draws a lasso; the lassoed photos can become a query, or
what a question to the vision-language model is about."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..adapters.bridge import LibraryBridge
from ..adapters.thumbnail_loader import ThumbnailLoader
from ..widgets import plain

if TYPE_CHECKING:  # the bridge hands one over; the dialog only reads it
    from ...index.map import MapView

HOVER_PIXELS = 6  # a dot this near the pointer is the one hovered
MAX_QUERY_PHOTOS = 12  # lassoed photos a query is made of (each one is embedded)
DOT = 4.0  # pixels
MARGIN = 0.94  # of the canvas's shorter side the whole map spans, unzoomed


class MapCanvas(QWidget):
    """Paints the map's dots. Emits ``hovered(row)`` (-1: none) and ``selected(rows)``."""

    hovered = Signal(int)
    selected = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(480, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.xy = np.empty((0, 2), np.float32)
        self.chosen = np.empty(0, bool)
        self.zoom, self.centre = 1.0, np.array([0.5, 0.5])
        self.hover = -1
        self._lasso: QPainterPath | None = None
        self._pan_from: QPointF | None = None
        self._changes = 0  # bumped when the dots or the chosen ones change
        self._dots: tuple[tuple, list[QPolygonF]] | None = None  # (view key, polygons)

    def set_points(self, xy: np.ndarray) -> None:
        self.xy = xy
        self._choose([])
        self.hover = -1

    def _choose(self, rows: list[int]) -> None:
        self.chosen = np.zeros(len(self.xy), bool)
        self.chosen[rows] = True
        self._changes += 1
        self.update()

    def _side(self) -> float:
        """Pixels that the map's unit square spans at the current zoom."""
        return min(self.width(), self.height()) * MARGIN * self.zoom

    def _middle(self) -> np.ndarray:
        return np.array([self.width() / 2, self.height() / 2])

    def _screen(self) -> np.ndarray:
        """The dots' widget coordinates, (n, 2) float."""
        return (self.xy - self.centre) * self._side() + self._middle()

    def zoom_at(self, factor: float, at: QPointF) -> None:
        """Zoom by *factor* keeping the map point under *at* where it is."""
        point, middle = np.array([at.x(), at.y()]), self._middle()
        under = (point - middle) / self._side() + self.centre
        self.zoom = float(np.clip(self.zoom * factor, 0.5, 200.0))
        self.centre = under - (point - middle) / self._side()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().text().color(), DOT)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        for colour, dots in zip((QColor(70, 110, 180), QColor(230, 120, 20)), self._polygons()):
            pen.setColor(colour)
            painter.setPen(pen)
            painter.drawPoints(dots)
        if self.hover >= 0:
            x, y = self._screen()[self.hover]
            painter.setPen(QPen(self.palette().highlight().color(), 2))
            painter.drawEllipse(QPointF(x, y), DOT + 3, DOT + 3)
        if self._lasso is not None:
            painter.setPen(QPen(self.palette().highlight().color(), 1.5, Qt.PenStyle.DashLine))
            painter.drawPath(self._lasso)

    def _polygons(self) -> list[QPolygonF]:
        """The dots (not chosen, chosen) in widget coordinates, made again only when the
        view or the dots changed: a hover or a lasso stroke repaints without a Python loop
        over every photo."""
        key = (self.zoom, *self.centre, self.width(), self.height(), self._changes)
        if self._dots is None or self._dots[0] != key:
            screen = self._screen()
            self._dots = (key, [QPolygonF([QPointF(x, y) for x, y in screen[self.chosen == c]])
                                for c in (False, True)])
        return self._dots[1]

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom_at(1.0015 ** event.angleDelta().y(), event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._lasso = QPainterPath(event.position())
        elif event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            self._pan_from = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        position = event.position()
        if self._lasso is not None:
            self._lasso.lineTo(position)
            self.update()
        elif self._pan_from is not None:
            side = self._side()
            moved = position - self._pan_from
            self.centre = self.centre - np.array([moved.x(), moved.y()]) / side
            self._pan_from = position
            self.update()
        else:
            self._hover_at(position)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._lasso is not None:
            self._lasso.closeSubpath()
            self.select_in(self._lasso)
            self._lasso = None
            self.update()
        self._pan_from = None

    def select_in(self, lasso: QPainterPath) -> None:
        """Choose the dots inside *lasso* (widget coordinates); emits ``selected``."""
        screen = self._screen()
        box: QRectF = lasso.boundingRect()
        near = np.flatnonzero((screen[:, 0] >= box.left()) & (screen[:, 0] <= box.right()) &
                              (screen[:, 1] >= box.top()) & (screen[:, 1] <= box.bottom()))
        polygon = lasso.toFillPolygon()
        inside = [int(row) for row in near if polygon.containsPoint(
            QPointF(*screen[row]), Qt.FillRule.OddEvenFill)]
        self._choose(inside)
        self.selected.emit(inside)

    def _hover_at(self, position: QPointF) -> None:
        row = -1
        if len(self.xy):
            distance = np.hypot(*(self._screen() - [position.x(), position.y()]).T)
            nearest = int(distance.argmin())
            row = nearest if distance[nearest] <= HOVER_PIXELS else -1
        if row != self.hover:
            self.hover = row
            self.update()
            self.hovered.emit(row)


class MapDialog(QDialog):
    """The map window: the canvas, the hovered photo, and what to do with a lasso's photos.
    Emits ``query_requested(paths)`` for "Find photos like these" and
    ``ask_requested(ids, paths)`` for "Ask about these"."""

    query_requested = Signal(list)
    ask_requested = Signal(list, list)

    def __init__(self, bridge: LibraryBridge, loader: ThumbnailLoader,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.loader = bridge, loader
        self.view: MapView | None = None
        self.chosen: list[int] = []
        self.setWindowTitle("Map of the library")
        self.canvas = MapCanvas()
        self.canvas.hovered.connect(self._hovered)
        self.canvas.selected.connect(self._selected)
        self.status = plain.label("Laying out the library…")
        self.status.setWordWrap(True)
        self._started = time.monotonic()
        self._clock = QTimer(self, interval=1000)
        self._clock.timeout.connect(self._tick)
        self.chosen_label = plain.label("")
        self.photo = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.photo.setFixedSize(240, 240)
        self.caption = plain.label("")
        self.caption.setWordWrap(True)
        self.query_button = QPushButton("Find photos like these")
        self.query_button.setEnabled(False)
        self.query_button.clicked.connect(self._query)
        self.ask_button = QPushButton("Ask about these…")
        self.ask_button.setEnabled(False)
        self.ask_button.clicked.connect(lambda: self.ask_requested.emit(
            [int(self.view.ids[row]) for row in self.chosen],
            [self.view.paths[row] for row in self.chosen]))
        help_text = plain.label("Wheel: zoom. Right-drag: move. Drag: draw around photos to "
                                "choose them.")
        help_text.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.status)
        side.addWidget(self.chosen_label)
        side.addWidget(self.photo)
        side.addWidget(self.caption)
        side.addStretch(1)
        side.addWidget(help_text)
        side.addWidget(self.query_button)
        side.addWidget(self.ask_button)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(260)
        layout = QHBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(panel)
        loader.loaded.connect(self._thumbnail_loaded)
        self.resize(1100, 760)

    def load(self) -> None:
        """Compute (or update) the map in the background, then show it; meanwhile the
        status says how long it has been laying out, every second."""
        self._started = time.monotonic()
        self._tick()
        self._clock.start()
        self.bridge.library_map().success(self._show).failure(self._failed).run()

    def _tick(self) -> None:
        seconds = int(time.monotonic() - self._started)
        self.status.setText(f"Laying out the library… {seconds} s. The first map of a large "
                            "library takes up to a minute (UMAP prepares itself once); "
                            "after that, new photos are placed in a moment.")

    def _failed(self, message: str) -> None:
        self._clock.stop()
        self.status.setText(f"Cannot draw the map: {message}")

    def _show(self, view: MapView) -> None:
        self._clock.stop()
        self.view = view
        self.canvas.set_points(view.xy)
        method = "UMAP" if view.method == "umap" else "principal components"
        self.status.setText(f"{len(view.ids):,} photos, laid out by {method} of their "
                            "embeddings: photos that look alike lie together.")

    def _hovered(self, row: int) -> None:
        if row < 0 or self.view is None:
            return
        path = self.view.paths[row]
        self.caption.setText(os.path.basename(path))
        image = self.loader.image(path, self.view.hashes[row])
        if image is not None and not image.isNull():
            self.photo.setPixmap(QPixmap.fromImage(image).scaled(
                self.photo.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))

    def _thumbnail_loaded(self, digest: str) -> None:
        if self.view is not None and self.canvas.hover >= 0 and \
                self.view.hashes[self.canvas.hover] == digest:
            self._hovered(self.canvas.hover)

    def _selected(self, rows: list[int]) -> None:
        self.chosen = rows
        self.query_button.setEnabled(bool(rows))
        self.ask_button.setEnabled(bool(rows))
        self.chosen_label.setText(f"{len(rows):,} photos chosen" if rows else "No photos chosen")

    def _query(self) -> None:
        """The chosen photos (the first :data:`MAX_QUERY_PHOTOS`) as a query."""
        self.query_requested.emit([self.view.paths[row] for row in self.chosen[:MAX_QUERY_PHOTOS]])
