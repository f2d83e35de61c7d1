"""The result grid: a list model of search results, a delegate that paints thumbnails, and
a virtualised icon-mode view (only the rows on screen are asked for their thumbnails)."""

from __future__ import annotations

import os

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from ...core.paths import display_path
from ...core.text import clock, elide
from ...domain.query import Result
from ..adapters.thumbnail_loader import ThumbnailLoader, thumbnail_key
from . import plain

RESULT_ROLE = Qt.ItemDataRole.UserRole + 1
HEADER_ROLE = Qt.ItemDataRole.UserRole + 2  # a section's title (a month of the timeline)
PADDING = 6  # pixels around each thumbnail


FIELD_NAMES = {"name": "file name", "folder": "folder", "camera": "camera", "date": "date",
               "text": "text in the photo", "place": "place", "caption": "caption",
               "extracted": "extracted fields", "keywords": "keywords"}


def why_matched(meta: dict) -> str:
    """Why a search matched beyond the photo's looks, for people: ``Matched the text in
    the photo: “[Midnight] Bakery”`` (keywords), or ``Its caption is close in meaning
    (0.31): “a dog on a beach”`` (the caption's vector); empty otherwise."""
    matched = meta.get("matched")
    if matched:
        return (f"Matched the {FIELD_NAMES.get(matched['field'], matched['field'])}: "
                f"“{matched['snippet']}”")
    if meta.get("caption_score") is not None and meta.get("caption"):
        return (f"Its caption is close in meaning ({meta['caption_score']:.2f}): "
                f"“{elide(meta['caption'], 80)}”")
    return ""


def video_label(meta: dict) -> str:
    """`` — video, 0:42, best at 0:12`` for a video's result (empty for a photo)."""
    if meta.get("duration") is None:
        return ""
    moment = f", best at {clock(meta['moment'])}" if "moment" in meta else ""
    return f" — video, {clock(meta['duration'])}{moment}"


MISSING_TIP = ("Not there now: its folder is offline (a drive unplugged?) or the file was "
               "moved or deleted since the last index run")


def marks_label(meta: dict) -> str:
    """``♥ ★★★★`` for a favourite rated 4 stars; empty for a photo without marks."""
    return " ".join(filter(None, ["♥" if meta.get("favourite") else "",
                                  "★" * int(meta.get("rating") or 0)]))


def _badge(painter: QPainter, image: QRect, text: str, top: bool = False,
           right: bool = False) -> None:
    """*text* on a dark badge in a thumbnail's bottom left corner (top left with *top*,
    bottom right with *right*): a video's ▶ and moment shown (else its length), that the
    file is not there, or its favourite heart and stars."""
    metrics = painter.fontMetrics()
    badge = QRect(0, 0, metrics.horizontalAdvance(text) + 8, metrics.height() + 2)
    if top:
        badge.moveTopLeft(image.topLeft() + QPoint(3, 3))
    elif right:
        badge.moveBottomRight(image.bottomRight() + QPoint(-3, -3))
    else:
        badge.moveBottomLeft(image.bottomLeft() + QPoint(3, -3))
    painter.fillRect(badge, QColor(0, 0, 0, 170))
    painter.setPen(QColor(255, 255, 255))
    painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


def file_drag(indexes) -> QMimeData:
    """The photos at *indexes* (:data:`RESULT_ROLE`) as files dragged to another app (a file
    manager, a mail, an editor): their ``file://`` URLs."""
    mime = QMimeData()
    results = [index.data(RESULT_ROLE) for index in indexes]
    mime.setUrls([QUrl.fromLocalFile(r.path) for r in results if r is not None])
    return mime


def allow_file_drags(view) -> None:
    """Let *view*'s selected photos be dragged out as files (copied, never moved)."""
    view.setDragEnabled(True)
    view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
    view.setDefaultDropAction(Qt.DropAction.CopyAction)


class FileDrags:
    """A model whose photos (:data:`RESULT_ROLE`) are dragged out as files, copied."""

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt's name
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802 - Qt's name
        return file_drag(indexes)

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802 - Qt's name
        return Qt.DropAction.CopyAction


class ResultsModel(FileDrags, QAbstractListModel):
    """Search results, best first. DecorationRole is the thumbnail (a QImage; None while it
    loads; a null QImage when the photo cannot be read); ToolTipRole the score, path, why it
    matched and where it was taken."""

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.results: list[Result] = []
        self._rows: dict[str, list[int]] = {}  # content hash → rows showing it
        loader.loaded.connect(self._on_loaded)

    def set_results(self, results: list[Result]) -> None:
        self.beginResetModel()
        self.results = results
        self._rows = {}
        for row, result in enumerate(results):
            key = thumbnail_key(result.meta.get("hash") or "", result.meta.get("moment", 0.0))
            self._rows.setdefault(key, []).append(row)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt\'s signature
        return 0 if parent.isValid() else len(self.results)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        result = self.results[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.image(result.path, result.meta["hash"],
                                     result.meta.get("moment", 0.0))
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [display_path(result.path) + video_label(result.meta)]
            if result.meta.get("missing"):
                lines.append(MISSING_TIP)
            if result.score is not None:
                lines.insert(0, f"score {result.score:.3f}")
            why = why_matched(result.meta)
            if why:
                lines.append(why)
            if result.meta.get("place"):
                lines.append(f"Place: {result.meta['place']}")
            if result.meta.get("albums"):
                lines.append(f"Albums: {', '.join(result.meta['albums'])}")
            if result.meta.get("caption") and "caption_score" not in result.meta:
                lines.append(f"Caption: {elide(result.meta['caption'], 80)}")
            return plain.tooltip("\n".join(lines))
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return os.path.basename(result.path)
        if role == RESULT_ROLE:
            return result
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return super().flags(index) | Qt.ItemFlag.ItemIsDragEnabled

    def _on_loaded(self, key: str) -> None:
        for row in self._rows.get(key, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a thumbnail centred in a square cell, a grey placeholder while it loads, or a
    section's title (:data:`HEADER_ROLE`) across its cell."""

    def __init__(self, size: int, parent=None):
        super().__init__(parent)
        self.size = size

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        return QSize(self.size + 2 * PADDING, self.size + 2 * PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        title = index.data(HEADER_ROLE)
        if title:
            painter.save()
            font = painter.font()
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.25)
            painter.setFont(font)
            painter.setPen(option.palette.color(QPalette.ColorGroup.Active,  # not greyed
                                               QPalette.ColorRole.WindowText))
            painter.drawText(option.rect.adjusted(PADDING, 0, -PADDING, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, title)
            painter.restore()
            return
        if not index.flags() & Qt.ItemFlag.ItemIsEnabled:
            return  # an empty cell at the end of a month's last row
        painter.save()
        cell = option.rect.adjusted(PADDING // 2, PADDING // 2, -PADDING // 2, -PADDING // 2)
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            tint = palette.color(QPalette.ColorRole.Highlight)
            tint.setAlpha(90)
            painter.fillRect(cell, tint)
        inner = cell.adjusted(PADDING // 2, PADDING // 2, -PADDING // 2, -PADDING // 2)
        image = index.data(Qt.ItemDataRole.DecorationRole)
        if image is None or image.isNull():
            painter.fillRect(inner, QColor(128, 128, 128, 60))
            if image is not None:  # unreadable photo
                painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "can't show")
        else:
            scaled = image.size().scaled(inner.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(inner.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, image)
            result = index.data(RESULT_ROLE)
            if result is not None and result.meta.get("duration") is not None:
                _badge(painter, target, f"▶ {clock(result.meta.get('moment', result.meta['duration']))}")
            if result is not None and result.meta.get("missing"):
                _badge(painter, target, "not there", top=True)
            if result is not None and marks_label(result.meta):
                _badge(painter, target, marks_label(result.meta), right=True)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRect(cell.adjusted(0, 0, -1, -1))
        painter.restore()


class ResultsView(QListView):
    """The thumbnail grid. Enter, Space (a quick look, as in file managers) or double-click
    emits ``opened(row)``."""

    opened = Signal(int)

    def __init__(self, size: int, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)  # what keeps the view from asking every row for data
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.delegate = ThumbnailDelegate(size, self)
        self.setItemDelegate(self.delegate)
        self.doubleClicked.connect(lambda index: self.opened.emit(index.row()))
        allow_file_drags(self)

    def set_thumbnail_size(self, size: int) -> None:
        self.delegate.size = size
        self.scheduleDelayedItemsLayout()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and \
                self.currentIndex().isValid():
            self.opened.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)
