"""Video playback inside the viewer: Qt Multimedia (its FFmpeg backend) decodes, this bar
holds play / pause, the position slider and the time, and each frame goes to the viewer as a
``QImage`` (so zoom, pan and full screen work on a playing video as on a photo)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from ...core.text import clock

try:
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer, QVideoFrame, QVideoSink
except ImportError as error:  # PySide6-Addons missing, or a system library it links (libpulse)
    PLAYBACK_MISSING: str | None = f"videos play in another app here: {error}"
else:
    PLAYBACK_MISSING = None


class VideoBar(QWidget):
    """Play / pause, a position slider and "0:06 / 0:12" for one video at a time. Emits
    ``frame(QImage)`` for every decoded frame and ``failed(str)`` when the file cannot be
    played. Build only where :data:`PLAYBACK_MISSING` is None."""

    frame = Signal(QImage)
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.sink = QVideoSink(self)
        self.player.setVideoSink(self.sink)
        self.player.setAudioOutput(QAudioOutput(self))
        self.path = ""
        self._start_ms: int | None = None  # where to begin once the file is loaded
        self.button = QPushButton("▶ Play")
        self.button.setAutoDefault(False)
        self.button.setToolTip("Play here from this moment (K)")
        self.button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.sliderMoved.connect(self.player.setPosition)
        self.time = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.time)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self.player.durationChanged.connect(self._on_duration)
        self.player.positionChanged.connect(self._on_position)
        self.player.mediaStatusChanged.connect(self._on_status)
        self.player.playbackStateChanged.connect(self._on_state)
        self.player.errorOccurred.connect(lambda _e, text: self.failed.emit(text or "cannot play it"))

    @property
    def playing(self) -> bool:
        return self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    def load(self, path: str, duration: float, at: float) -> None:
        """Get ready to play *path* (*duration* seconds long) from *at* seconds; nothing is
        decoded until :meth:`toggle`."""
        self.stop()
        self.path, self._start_ms = path, round(at * 1000)
        self.slider.setRange(0, round(duration * 1000))
        self.slider.setValue(self._start_ms)
        self.slider.setEnabled(False)
        self.time.setText(f"{clock(at)} / {clock(duration)}")

    def toggle(self) -> None:
        """Play from the loaded moment (the first time), pause, or go on."""
        if self.playing:
            self.player.pause()
        elif self.player.source().isEmpty():
            self.player.setSource(QUrl.fromLocalFile(self.path))  # plays once loaded
        else:
            self.player.play()

    def stop(self) -> None:
        """Stop and let go of the file (another result is shown, or the viewer closes)."""
        self.player.stop()
        self.player.setSource(QUrl())
        self.button.setText("▶ Play")

    def _on_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._start_ms is not None:
            self.player.setPosition(self._start_ms)
            self._start_ms = None
            self.slider.setEnabled(True)
            self.player.play()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.failed.emit(self.player.errorString() or "not a video Qt can play")

    def _on_state(self, _state: QMediaPlayer.PlaybackState) -> None:
        self.button.setText("❚❚ Pause" if self.playing else "▶ Play")

    def _on_frame(self, frame: QVideoFrame) -> None:
        # a frame decoded before stop() can arrive after it: not on the next photo shown
        if frame.isValid() and not self.player.source().isEmpty():
            self.frame.emit(frame.toImage())

    def _on_duration(self, ms: int) -> None:
        if ms > 0:
            self.slider.setRange(0, ms)

    def _on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self.time.setText(f"{clock(ms / 1000)} / {clock(self.slider.maximum() / 1000)}")
