"""The first-run assistant: choose photo folders, then set up the model (download it after
seeing its size and source, or import a local file). Afterwards everything is offline."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from ...core.text import size_text
from ..adapters.bridge import LibraryBridge
from ..widgets import plain
from .vlm import VLMDialog


class FoldersPage(QWizardPage):
    """Pick the folders to index; complete with at least one."""

    def __init__(self, folders: list[str]):
        super().__init__()
        self.setTitle("Your photo folders")
        self.setSubTitle("Choose the folders that hold your photos. They are indexed on this "
                         "computer and watched for new, changed and deleted photos.")
        self.list = QListWidget()
        self.list.addItems(folders)
        add, remove = QPushButton("Add folder…"), QPushButton("Remove")
        add.clicked.connect(self._choose)
        remove.clicked.connect(self._remove)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    def folders(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add_folder(self, folder: str) -> None:
        path = os.path.abspath(folder)
        if os.path.isdir(path) and path not in self.folders():
            self.list.addItem(path)
            self.completeChanged.emit()

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder",
                                                  str(Path.home() / "Pictures"))
        if folder:
            self.add_folder(folder)

    def _remove(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.list.count() > 0


class ModelPage(QWizardPage):
    """Find the model's weights, or get them: complete once they are on this computer."""

    def __init__(self, bridge: LibraryBridge):
        super().__init__()
        self.bridge = bridge
        config = bridge.engine.config
        self.setTitle("The search model")
        # The bundle has no torch: it runs ONNX exports only, imported from a folder.
        self.torch = bridge.engine.model_files.runs_torch()
        self.setSubTitle(
            f"Photos are found with the CLIP model {config.model} "
            f"({config.pretrained or 'custom weights'}). Its weights are not part of the app: "
            + ("download them once, or import a file you already have (weights, or an ONNX "
               "export folder). " if self.torch else
               "download their ONNX export once, or import one (a folder made by mmrag "
               "models export-onnx). ")
            + "After that, nothing leaves this computer.")
        self.state = plain.label("Looking for the model on this computer…")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton("Download…")
        self.import_button = QPushButton("Import a file…")
        self.export_button = QPushButton("Import an ONNX export…")
        self.download_button.clicked.connect(self.ask_download)
        self.import_button.clicked.connect(self._choose_file)
        self.export_button.clicked.connect(self._choose_export)
        self.import_button.setVisible(self.torch)
        self.progress = QProgressBar()
        self.progress.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        self.weights: Path | None = None
        self._poll = QTimer(self, interval=500)
        self._poll.timeout.connect(self._show_download_progress)
        self._run(lambda engine: engine.model_files.find(), self._found, self._not_found)

    def isComplete(self) -> bool:
        return self.weights is not None

    def _run(self, fn, on_done, on_failed) -> None:
        self.bridge.op(fn).success(on_done).failure(on_failed).run()

    def _busy(self, busy: bool) -> None:
        for button in (self.download_button, self.import_button, self.export_button):
            button.setEnabled(not busy)

    def _found(self, path: Path) -> None:
        self.weights = path
        self.state.setText(f"✔ The model is ready: {path}")
        self._busy(False)
        self.download_button.hide()
        self.import_button.setText("Import another file…")
        self.export_button.setText("Import another ONNX export…")
        self.progress.hide()
        self._poll.stop()
        self.completeChanged.emit()

    def _not_found(self, message: str) -> None:
        self.state.setText("The model's weights are not on this computer yet.")
        self._busy(False)

    def _failed(self, message: str) -> None:
        self._poll.stop()
        self.progress.hide()
        self._busy(False)
        self.state.setText(message)
        QMessageBox.warning(self, "Model", message)

    # --- download ---------------------------------------------------------------------------

    def ask_download(self) -> None:
        """Ask what would be downloaded (the only network access: the Hugging Face hub for
        weights, or the list of published ONNX exports without torch), then ask the user."""
        self._busy(True)
        self.state.setText("Asking the Hugging Face hub for the file's size…" if self.torch
                           else "Asking for the published ONNX export's size…")
        self._run(lambda engine: engine.model_files.source(), self._confirm, self._failed)

    def _confirm(self, source) -> None:
        """Ask before downloading *source* (a hub file, or a published ONNX export and its
        URL: :meth:`.library.model_files.ModelFiles.source`)."""
        if isinstance(source, tuple):
            export, url = source
            agreed = self._consent(export.file, export.size, url, f"\nThe weights come from "
                                   f"{export.source} ({export.licence}).\n")
        else:
            agreed = self._consent(source.filename, source.size,
                                   f"https://huggingface.co/{source.repo_id}", "")
        if agreed:
            self._run(lambda engine: engine.model_files.download(source), self._found, self._failed)

    def _consent(self, filename: str, size: int | None, url: str, more: str) -> bool:
        """Ask before downloading; on yes, show the download's progress."""
        answer = QMessageBox.question(
            self, "Download the model?",
            f"Download {filename} ({size_text(size) if size else 'size not given by the hub'})\nfrom {url}\n"
            f"into {self.bridge.engine.model_files.folder}?\n{more}\n"
            "This is the only time the app uses the network.")
        if answer != QMessageBox.StandardButton.Yes:
            self._not_found("")
            return False
        self.state.setText(f"Downloading {filename}…")
        self.progress.setRange(0, (size or 0) // 1_000_000)
        self.progress.setFormat("%v of %m MB")
        self.progress.show()
        self._poll.start()
        return True

    def _show_download_progress(self) -> None:
        staging = self.bridge.engine.model_files.folder / ".download"
        done = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file()) \
            if staging.is_dir() else 0
        self.progress.setValue(done // 1_000_000)

    # --- import -----------------------------------------------------------------------------

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import model weights", str(Path.home()),
            "Weights (*.safetensors *.bin *.pt *.pth)")
        if path:
            self.import_file(path)

    def _choose_export(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import an ONNX export (a folder)",
                                                str(Path.home()))
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Check that the weights file or ONNX export folder fits the model and runs, and
        copy it into the models folder."""
        self._busy(True)
        self.state.setText(f"Checking {path}…")
        self._run(lambda engine: engine.model_files.import_file(Path(path)), self._found, self._failed)


class AskPage(QWizardPage):
    """Optional: set up Ask (the vision-language model) now, or later from the Ask panel."""

    def __init__(self, bridge: LibraryBridge):
        super().__init__()
        self.bridge = bridge
        self.setTitle("Ask questions about your photos (optional)")
        self.setSubTitle("A local vision-language model answers questions such as \"what "
                         "breed is this dog?\" on this computer. You can set it up now or "
                         "later, from the Ask panel.")
        self.state = plain.label()
        self.state.setWordWrap(True)
        self.setup_button = QPushButton("Set up Ask…")
        self.setup_button.clicked.connect(self.open_setup)
        button_row = QHBoxLayout()
        button_row.addWidget(self.setup_button)
        button_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(button_row)
        layout.addStretch(1)
        self.dialog = None
        bridge.vlm_ready.connect(lambda _description: self._show_state())
        self._show_state()

    def _show_state(self) -> None:
        self.state.setText(self.bridge.vlm_status() or "✔ Ask is set up.")

    def open_setup(self):
        """Ask's set-up page (download or choose a model), over the assistant."""
        if self.dialog is None:
            self.dialog = VLMDialog(self.bridge, self)
        self.dialog.open()
        return self.dialog


class FirstRunWizard(QWizard):
    """Folders, model, then (optionally) Ask. ``folders()`` gives the chosen folders after
    ``accept``."""

    def __init__(self, bridge: LibraryBridge, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Welcome to mmrag-desktop")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.folders_page = FoldersPage(list(bridge.engine.config.roots))
        self.model_page = ModelPage(bridge)
        self.ask_page = AskPage(bridge)
        self.addPage(self.folders_page)
        self.addPage(self.model_page)
        self.addPage(self.ask_page)
        self.resize(720, 480)

    def folders(self) -> list[str]:
        return self.folders_page.folders()
