"""The status bar's permanent part: indexing progress with pause / resume, the understanding
pass's progress, and the library's facts (photos, model, device)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QProgressBar, QPushButton, QStatusBar

from ...domain.analyses import ANALYSES
from . import plain

if TYPE_CHECKING:  # events the bridge hands over; only read here
    from ...library.indexer import Progress
    from ...understanding.passes import Progress as UnderstandProgress


def duration(seconds: float) -> str:
    """``1 h 05 min``, ``3 min 07 s``, ``42 s``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class IndexingStatus:
    """Widgets added to *status_bar* (its permanent, right-hand part); the window connects
    ``pause_button.clicked``."""

    def __init__(self, status_bar: QStatusBar):
        self.progress_label = plain.ElidedLabel()
        self.progress_bar = QProgressBar(maximumWidth=220, textVisible=False)
        self.pause_button = QPushButton("Pause")
        self.library_label = plain.ElidedLabel("Loading the model…")
        # the understanding pass (text in photos, places), after indexing
        self.understand_label = plain.ElidedLabel()
        for widget in (self.progress_label, self.progress_bar, self.pause_button,
                       self.understand_label):
            status_bar.addPermanentWidget(widget)
            widget.hide()
        status_bar.addPermanentWidget(self.library_label)

    def progress(self, progress: Progress) -> None:
        """An index run's progress event: scanning, then indexing with rate and time left."""
        for widget in (self.progress_label, self.progress_bar, self.pause_button):
            widget.show()
        if progress.phase == "scan":
            self.progress_bar.setRange(0, 0)
            self.progress_label.setText(f"Looking for photos… {progress.done:,} found")
        elif progress.phase == "index":
            self.progress_bar.setRange(0, max(progress.total, 1))
            self.progress_bar.setValue(progress.done)
            text = f"Indexing {progress.done:,} of {progress.total:,}"
            if progress.rate:
                text += f" · {progress.rate:.1f} photos/s"
            if progress.eta is not None:
                text += f" · {duration(progress.eta)} left"
            self.progress_label.setText(text)

    def understanding(self, progress: UnderstandProgress | None) -> None:
        """The understanding pass's progress, or None when it ended."""
        if progress is None:
            self.understand_label.hide()
            self.pause_button.setVisible(not self.progress_label.isHidden())
            return
        self.understand_label.setText(
            f"{ANALYSES[progress.analysis].doing}: {progress.done:,} of {progress.total:,}"
            + (" (paused)" if progress.paused else ""))
        self.understand_label.show()
        self.pause_button.show()  # the pass pauses with indexing

    def indexed(self) -> None:
        """An index run ended (not paused): its progress leaves the status bar (Pause
        stays while the understanding pass runs)."""
        for widget in (self.progress_label, self.progress_bar):
            widget.hide()
        self.pause_button.setVisible(not self.understand_label.isHidden())

    def paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.progress_label.setText("Indexing paused")

    def library(self, status: dict, device: str) -> None:
        """The library's facts: photos, the model and, once loaded, its device."""
        device = f" · {device}" if device else ""
        self.library_label.setText(f"{status['photos']:,} photos · {status['model']}{device}")
