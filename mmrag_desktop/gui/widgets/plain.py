"""Text that comes from photos (paths, file names, EXIF fields) shown as plain text.

Qt guesses whether a label's or tooltip's text is rich text (``Qt::mightBeRichText``), so a
file name or an EXIF field holding markup would be rendered, images and links included.
Labels showing such text are fixed to plain text; tooltips, which cannot be, get the text
HTML-escaped inside an explicit rich-text paragraph, which shows it exactly as it is.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

CHIP_WIDTH = 260
"""The widest a chip (a folder, a place, a photo asked about) is: longer text is elided, so
that no chip widens the window."""


def label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows *text* literally."""
    widget = QLabel(parent)
    widget.setTextFormat(Qt.TextFormat.PlainText)
    widget.setText(text)
    return widget


def tooltip(text: str) -> str:
    """A tooltip string that shows *text* literally, line breaks kept."""
    return ("<p style='white-space:pre-wrap'>"
            + html.escape(text).replace("\n", "<br>") + "</p>")


def chip_text(button: QAbstractButton, text: str, width: int = CHIP_WIDTH) -> None:
    """Show *text* on a chip elided in the middle to at most *width* pixels (the whole text
    in its tooltip, its ✕ kept)."""
    metrics = button.fontMetrics()
    shown = metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, width - 40)
    button.setText(f"{shown}  ✕")
    button.setToolTip(tooltip(text))


class ElidedLabel(QLabel):
    """A plain-text label that never asks for more width than it is given: text that does
    not fit is elided at the end (the whole text is its tooltip). For the status bar,
    whose permanent widgets would otherwise widen the window."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setToolTip(tooltip(text) if text else "")

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(min(60, super().minimumSizeHint().width()), super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                              self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)
