"""Text that comes from photos (paths, file names, EXIF fields) shown as plain text.

Qt guesses whether a label's or tooltip's text is rich text (``Qt::mightBeRichText``), so a
file name or an EXIF field holding markup would be rendered, images and links included.
Labels showing such text are fixed to plain text; tooltips, which cannot be, get the text
HTML-escaped inside an explicit rich-text paragraph, which shows it exactly as it is.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


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
