"""Emptying a layout whose widgets are made again and again (chips, face buttons, groups).

A widget taken out of a layout with ``takeAt`` and left to ``deleteLater`` loses the last
Python reference PySide holds to it, so its wrapper can be freed while the widget waits for
deletion; the deletion then reaches the freed wrapper (a segfault in shiboken's
``releaseWrapper``, seen once in about 25 runs of the user-journey test while a search's
chips were rebuilt). :class:`Retired` keeps each wrapper until Qt has deleted its widget.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtWidgets import QLayout, QWidget


class Retired:
    """Widgets taken out of layouts, each referenced until Qt has deleted it."""

    def __init__(self) -> None:
        self._widgets: list[QWidget] = []

    def empty(self, layout: QLayout, keep_last: int = 0) -> None:
        """Take every widget but the last *keep_last* items out of *layout*, hidden, to be
        deleted when control returns to the event loop (a widget may be the sender of the
        signal that asked for this)."""
        self._widgets = [w for w in self._widgets if shiboken6.isValid(w)]
        while layout.count() > keep_last:
            widget = layout.takeAt(0).widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
                self._widgets.append(widget)
