"""Setting up Ask in the app: the vision-language model page (Ask → Set up…, the Ask
panel's button, File → Set up Ask…). Download the recommended pair after seeing its files,
sizes and source (with progress and Stop), or choose a local model / mmproj pair, checked as
``mmrag vlm set`` checks it. Without llama-cpp-python it says so, with the exact remedy."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.downloads import hub_endpoint
from ...core.text import size_text
from ..adapters.bridge import LibraryBridge

RECOMMENDED_REPO, RECOMMENDED_FILES = LibraryBridge.vlm_recommended
RECOMMENDED = (
    f"Recommended: SmolVLM-256M-Instruct (Q8_0) with its vision projector, a small model "
    f"that runs on any computer, from huggingface.co/{RECOMMENDED_REPO} (Apache-2.0). "
    "Larger pairs (Qwen2.5-VL, Gemma 3, …) answer better: choose their two GGUF files.")


class VLMDialog(QDialog):
    """The page; its state follows the bridge's ``vlm_*`` signals."""

    def __init__(self, bridge: LibraryBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("Set up Ask")
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        recommended = QLabel(RECOMMENDED)
        recommended.setWordWrap(True)
        self.download_button = QPushButton("Download…")
        self.choose_button = QPushButton("Choose files…")
        self.stop_button = QPushButton("Stop")
        self.stop_button.hide()
        self.download_button.clicked.connect(self.ask_download)
        self.choose_button.clicked.connect(self._choose_files)
        self.stop_button.clicked.connect(bridge.cancel_vlm_download)
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m MB")
        self.progress.hide()
        buttons = QHBoxLayout()
        for button in (self.download_button, self.choose_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addWidget(recommended)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        layout.addWidget(close)
        bridge.vlm_sizes.connect(self._confirm_download)
        bridge.vlm_progress.connect(lambda done: self.progress.setValue(done // 1_000_000))
        bridge.vlm_ready.connect(self._ready)
        bridge.vlm_failed.connect(self._failed)
        self.resize(620, 300)
        self._show_status()

    def _show_status(self) -> None:
        problem = self.bridge.vlm_status()
        config = self.bridge.engine.config
        if problem and config.vlm_model:  # set, but llama-cpp-python is missing
            problem = f"{config.vlm_model} is set, but: {problem}"
        self.state.setText(problem or f"✔ Ask uses {config.vlm_model}"
                           + (f" with {config.vlm_mmproj}" if config.vlm_mmproj else
                              " (text only: it cannot see photos)"))
        self._busy(False)

    def _busy(self, busy: bool) -> None:
        usable = self.bridge.vlm_can_run()
        self.download_button.setEnabled(usable and not busy)
        self.choose_button.setEnabled(usable and not busy)
        self.stop_button.setVisible(busy)

    # --- download ---------------------------------------------------------------------------

    def ask_download(self) -> None:
        """Ask the hub for the sizes (the only network access before a yes), then the user."""
        self._busy(True)
        self.stop_button.hide()
        self.state.setText("Asking the Hugging Face hub for the files' sizes…")
        self.bridge.ask_vlm_sizes()

    def _confirm_download(self, files: list) -> None:
        listing = "\n".join(f"  {name} ({size_text(size)})" if size else f"  {name}"
                            for name, size in files)
        answer = QMessageBox.question(
            self, "Download the vision-language model?",
            f"Download\n{listing}\nfrom {hub_endpoint()}\ninto "
            f"{self.bridge.engine.home / 'vlm'}?\n\nAfter that, answers never use the network.")
        if answer != QMessageBox.StandardButton.Yes:
            self._show_status()
            return
        total = sum(size or 0 for _, size in files)
        self.progress.setRange(0, total // 1_000_000)
        self.progress.setValue(0)
        self.progress.show()
        self.state.setText(f"Downloading {', '.join(RECOMMENDED_FILES)}…")
        self._busy(True)
        self.bridge.download_vlm()

    # --- local files ------------------------------------------------------------------------

    def _choose_files(self) -> None:
        model, _ = QFileDialog.getOpenFileName(self, "The model (GGUF)", "", "GGUF (*.gguf)")
        if not model:
            return
        # opened in the model's folder, nothing chosen: the model is not its own projector
        mmproj, _ = QFileDialog.getOpenFileName(
            self, "Its vision projector (mmproj GGUF; cancel for a text-only model)",
            os.path.dirname(model), "GGUF (*.gguf)")
        if mmproj and os.path.samefile(mmproj, model):
            self.state.setText("The projector must be another file than the model "
                               "(its name usually holds “mmproj”).")
            return
        self.use_files(model, mmproj or None)

    def use_files(self, model: str, mmproj: str | None) -> None:
        """Check the pair (in llama.cpp's helper process) and use it."""
        self.state.setText(f"Checking {model}…")
        self._busy(True)
        self.stop_button.hide()
        self.bridge.use_vlm_files(model, mmproj)

    def _ready(self, description: str) -> None:
        self.progress.hide()
        self._show_status()
        self.state.setText(f"✔ Ask is ready: {description}")

    def _failed(self, message: str) -> None:
        self.progress.hide()
        self._show_status()
        self.state.setText(message)
