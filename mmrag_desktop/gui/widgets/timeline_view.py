"""The library without a query: a grid of every photo, newest first, under month headers.

A table whose rows are either a month's header (one cell spanning the row) or up to
``columns`` thumbnails, so Qt's own virtualisation, selection and arrow-key moves work at
100,000 photos: only the cells on screen are painted or asked for thumbnails.
"""

from __future__ import annotations

from bisect import bisect_right

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QTableView,
    QToolTip,
    QWidget,
)

from ...core.paths import display_path
from ...domain.query import Result
from ...domain.timeline import Timeline
from ..adapters.thumbnail_loader import ThumbnailLoader
from . import plain
from .results import (
    HEADER_ROLE,
    PADDING,
    RESULT_ROLE,
    FileDrags,
    ThumbnailDelegate,
    allow_file_drags,
)

HEADER_HEIGHT = 40  # pixels of a month's header row


class TimelineModel(FileDrags, QAbstractTableModel):
    """A :class:`.domain.timeline.Timeline` laid out *columns* photos wide: each month starts a
    new row with its header."""

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.timeline = Timeline([])
        self.columns = 1
        self._month_rows: list[int] = []  # table row of each month's header
        self._month_starts: list[int] = []  # timeline position of each month's first photo
        self._rows = 0
        self._by_hash: dict[str, list[int]] = {}
        loader.loaded.connect(self._on_loaded)

    def set_timeline(self, timeline: Timeline) -> None:
        self.beginResetModel()
        self.timeline = timeline
        self._by_hash = {}
        self._month_starts = [month.start for month in timeline.months]
        for i, digest in enumerate(timeline.hashes):
            self._by_hash.setdefault(digest, []).append(i)
        self._layout()
        self.endResetModel()

    def set_columns(self, columns: int) -> None:
        self.beginResetModel()
        self.columns = max(1, columns)
        self._layout()
        self.endResetModel()

    def _layout(self) -> None:
        self._month_rows, row = [], 0
        for month in self.timeline.months:
            self._month_rows.append(row)
            row += 1 + -(-month.count // self.columns)
        self._rows = row

    def header_rows(self) -> list[int]:
        return list(self._month_rows)

    def month_of_header(self, row: int) -> int | None:
        """The month (index into ``timeline.months``) whose header is table *row*, else None."""
        m = bisect_right(self._month_rows, row) - 1
        return m if m >= 0 and self._month_rows[m] == row else None

    def photo_at(self, row: int, column: int) -> int | None:
        """The timeline position shown in a cell; None for a header or an empty cell."""
        m = bisect_right(self._month_rows, row) - 1
        if m < 0 or row == self._month_rows[m] or column >= self.columns:
            return None
        month = self.timeline.months[m]
        offset = (row - self._month_rows[m] - 1) * self.columns + column
        return month.start + offset if offset < month.count else None

    def index_of(self, position: int) -> QModelIndex:
        """The cell showing timeline *position*."""
        m = bisect_right(self._month_starts, position) - 1
        offset = position - self.timeline.months[m].start
        return self.index(self._month_rows[m] + 1 + offset // self.columns,
                          offset % self.columns)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt\'s signature
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt\'s signature
        return 0 if parent.isValid() else self.columns

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if self.photo_at(index.row(), index.column()) is None:
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        position = self.photo_at(index.row(), index.column())
        if position is None:
            if role == HEADER_ROLE and index.column() == 0:
                m = bisect_right(self._month_rows, index.row()) - 1
                if self._month_rows[m] == index.row():
                    month = self.timeline.months[m]
                    return f"{month.title}  ·  {month.count:,} photo{'s' * (month.count > 1)}"
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.image(self.timeline.paths[position],
                                     self.timeline.hashes[position])
        if role == Qt.ItemDataRole.ToolTipRole:
            day = self.timeline.dates[position].replace("T", " ")
            return plain.tooltip(f"{day}\n{display_path(self.timeline.paths[position])}")
        if role == RESULT_ROLE:
            return self.timeline[position]
        return None

    def _on_loaded(self, digest: str) -> None:
        for position in self._by_hash.get(digest, ()):
            index = self.index_of(position)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


SCRUBBER_WIDTH = 40  # pixels of the date scrubber over the timeline's right edge


class DateScrubber(QWidget):
    """The years of a :class:`TimelineView` down its right edge (over the photos, on dark
    labels), each where its photos are;
    clicking or dragging along it jumps to the month there (its name follows the mouse)."""

    def __init__(self, view: TimelineView):
        super().__init__(view)
        self.view = view
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Drag to jump through the years")

    def month_at(self, y: float) -> int | None:
        """The month whose photos are at *y* pixels down the scrubber."""
        model, header = self.view.timeline_model, self.view.verticalHeader()
        rows = model.header_rows()
        if not rows or self.height() <= 0:
            return None
        target = y / self.height() * max(header.length(), 1)
        return max(0, bisect_right([header.sectionPosition(r) for r in rows], target) - 1)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setPen(QColor(255, 255, 255))
        model, header = self.view.timeline_model, self.view.verticalHeader()
        length, last_y, last_year = max(header.length(), 1), -100, None
        height = painter.fontMetrics().height()
        for month, row in zip(self.view.timeline.months, model.header_rows()):
            year = month.key[:4]
            y = header.sectionPosition(row) / length * self.height()
            if year != last_year and y - last_y >= height:
                label = QRect(2, int(y), self.width() - 4, height)
                painter.fillRect(label, QColor(0, 0, 0, 150))  # readable over any photo
                painter.drawText(label, Qt.AlignmentFlag.AlignCenter, year)
                last_y = y
            last_year = year

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._jump(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._jump(event)

    def _jump(self, event: QMouseEvent) -> None:
        month = self.month_at(event.position().y())
        if month is not None:
            chosen = self.view.timeline.months[month]
            self.view.scroll_to_month(chosen.key)
            QToolTip.showText(event.globalPosition().toPoint(), chosen.title, self)


class TimelineView(QTableView):
    """The timeline grid; as many columns as fit. Enter, Space or a double-click emits
    ``opened(position)``; a relayout (a resize, a new timeline) keeps the photo at the top
    left in view."""

    opened = Signal(int)

    def __init__(self, loader: ThumbnailLoader, size: int, parent=None):
        super().__init__(parent)
        self.scrubber = DateScrubber(self)
        self.timeline_model = TimelineModel(loader, self)
        self.setModel(self.timeline_model)
        self.delegate = ThumbnailDelegate(size, self)
        self.setItemDelegate(self.delegate)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.horizontalHeader().hide()
        self.verticalHeader().hide()
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(1)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.doubleClicked.connect(self._open)
        allow_file_drags(self)
        self._cell = 0
        self.set_thumbnail_size(size)

    @property
    def timeline(self) -> Timeline:
        return self.timeline_model.timeline

    def set_thumbnail_size(self, size: int) -> None:
        self.delegate.size = size
        self._cell = size + 2 * PADDING
        self.verticalHeader().setDefaultSectionSize(self._cell)
        self._relayout(self.columns_that_fit())

    def set_timeline(self, timeline: Timeline) -> None:
        """Show *timeline*, keeping the photo that was at the top left in view when it is
        still there."""
        top = self._top()
        self.timeline_model.set_timeline(timeline)
        self._spans()
        self._scroll_back(top)
        self.scrubber.update()

    def columns_that_fit(self) -> int:
        return max(1, self.viewport().width() // max(self._cell, 1))

    def top_photo(self) -> str | None:
        """The path of the first photo at least partly in view."""
        model = self.timeline_model
        row = self.rowAt(0)
        for r in (row, row + 1):
            for column in range(model.columns):
                position = model.photo_at(r, column)
                if r >= 0 and position is not None:
                    return model.timeline.paths[position]
        return None

    def _top(self) -> str | None:
        """What :meth:`_scroll_back` needs: the top photo, None when scrolled to the top."""
        return self.top_photo() if self.verticalScrollBar().value() > 0 else None

    def _scroll_back(self, top: str | None) -> None:
        position = None if top is None else self.timeline.position(top)
        if position is None:
            self.scrollToTop()
            return
        index = self.timeline_model.index_of(position)
        if index.row() > 0 and self.timeline_model.photo_at(index.row() - 1, 0) is None:
            index = self.timeline_model.index(index.row() - 1, 0)  # its month's title too
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)

    def _relayout(self, columns: int) -> None:
        top = self._top()
        selected = [index.data(RESULT_ROLE).path for index in self.selectedIndexes()]
        self.timeline_model.set_columns(columns)
        self._fit_width()
        self._spans()
        timeline, model = self.timeline, self.timeline_model
        for path in selected:
            position = timeline.position(path)
            if position is not None:
                self.selectionModel().select(model.index_of(position),
                                             QItemSelectionModel.SelectionFlag.Select)
        self._scroll_back(top)
        self.scrubber.update()

    def _spans(self) -> None:
        """Month headers span their row and are :data:`HEADER_HEIGHT` tall; every other
        row is a cell tall (a row that held a header before a relayout is one no more)."""
        self.clearSpans()
        model, header = self.timeline_model, self.verticalHeader()
        headers = set(model.header_rows())
        for row in range(model.rowCount()):
            if row in headers and model.columns > 1:
                self.setSpan(row, 0, 1, model.columns)
            height = HEADER_HEIGHT if row in headers else self._cell
            if header.sectionSize(row) != height:
                header.resizeSection(row, height)

    def _fit_width(self) -> None:
        """The columns share the width: no empty band at the right."""
        width = self.viewport().width() // self.timeline_model.columns
        self.horizontalHeader().setDefaultSectionSize(max(width, self._cell))

    def updateGeometries(self) -> None:  # noqa: N802 - Qt's name
        super().updateGeometries()
        # over the grid's right edge, as in Google Photos: the layout keeps its width
        area = self.viewport().geometry()
        self.scrubber.setGeometry(area.right() + 1 - SCRUBBER_WIDTH, area.top(), SCRUBBER_WIDTH,
                                  area.height())
        self.scrubber.raise_()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.columns_that_fit() != self.timeline_model.columns:
            self._relayout(self.columns_that_fit())
        else:
            self._fit_width()

    def select_month(self, month: int) -> None:
        """Select the photos of ``timeline.months[month]`` (clicking its title; with Ctrl,
        added to what is selected)."""
        chosen = self.timeline.months[month]
        first, last = (self.timeline_model.index_of(chosen.start),
                       self.timeline_model.index_of(chosen.start + chosen.count - 1))
        selection = QItemSelection(self.timeline_model.index(first.row(), 0),
                                   self.timeline_model.index(last.row(),
                                                             self.timeline_model.columns - 1))
        flags = QItemSelectionModel.SelectionFlag.Select
        if not QApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier:
            flags |= QItemSelectionModel.SelectionFlag.Clear
        self.selectionModel().select(selection, flags)
        self.setFocus()

    def scroll_to_month(self, key: str) -> None:
        """Bring the month *key* (``YYYY-MM``), or the newest before it, to the top (the date
        scrubber)."""
        months = self.timeline.months
        m = next((i for i, month in enumerate(months) if month.key <= key), len(months) - 1)
        if m >= 0:
            row = self.timeline_model.header_rows()[m]
            self.scrollTo(self.timeline_model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtTop)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        month = self.timeline_model.month_of_header(self.rowAt(int(event.position().y())))
        if month is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select_month(month)
            return
        super().mousePressEvent(event)

    def selected_results(self) -> list[Result]:
        """The selected photos, in timeline order."""
        model = self.timeline_model
        positions = sorted(model.photo_at(i.row(), i.column()) for i in self.selectedIndexes())
        return [self.timeline[p] for p in positions if p is not None]

    def current_position(self) -> int | None:
        index = self.currentIndex()
        return (self.timeline_model.photo_at(index.row(), index.column())
                if index.isValid() else None)

    def _open(self, index: QModelIndex) -> None:
        position = self.timeline_model.photo_at(index.row(), index.column())
        if position is not None:
            self.opened.emit(position)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and \
                self.current_position() is not None:
            self.opened.emit(self.current_position())
            return
        super().keyPressEvent(event)
