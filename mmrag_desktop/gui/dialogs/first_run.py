"""The first-run assistant: choose photo folders, then the search model (download it after
seeing its files, sizes, source and licence, or import a local one). Afterwards everything
is offline."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
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

from ...core.downloads import hub_endpoint
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
    """Choose the search model and download it, or import one: complete once it is on this
    computer."""

    def __init__(self, bridge: LibraryBridge):
        super().__init__()
        self.bridge = bridge
        files = bridge.engine.model_files
        self.setTitle("The search model")
        self.torch = files.runs_torch()
        self.setSubTitle(
            "The app finds photos from a description with a model that runs on this "
            "computer. It is not part of the app: download it once (after that, nothing "
            "leaves this computer), or import one you already have.")
        self.choice = QComboBox()
        chosen = getattr(files.chosen(), "name", None)
        for model in files.catalogue():
            self.choice.addItem(f"{model.title} — about {model.download_mb:,} MB", model.name)
            self.choice.setItemData(self.choice.count() - 1, model.name,
                                    Qt.ItemDataRole.ToolTipRole)
            if model.name == chosen:
                self.choice.setCurrentIndex(self.choice.count() - 1)
        self.choice.currentIndexChanged.connect(self._describe)
        self.about = plain.label()
        self.about.setWordWrap(True)
        self.state = plain.label("Looking for the model on this computer…")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton("Download…")
        self.import_button = QPushButton("Import a weights file…")
        self.export_button = QPushButton("Import a model folder…")
        self.download_button.clicked.connect(self.ask_download)
        self.import_button.clicked.connect(self._choose_file)
        self.export_button.clicked.connect(self._choose_export)
        self.import_button.setVisible(self.torch)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("What has arrived is kept: Download again continues")
        self.stop_button.clicked.connect(self.stop_download)
        self.stop_button.hide()
        self._stop = threading.Event()
        self.progress = QProgressBar()
        self.progress.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.choice)
        layout.addWidget(self.about)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        self.weights: Path | None = None
        self._describe()
        self._poll = QTimer(self, interval=500)
        self._poll.timeout.connect(self._show_download_progress)
        # after any settings change that is still being applied (the same lane)
        self._run(lambda engine: engine.model_files.find(), self._found, self._not_found,
                  lane="jobs")

    def isComplete(self) -> bool:
        return self.weights is not None

    def _model(self):
        name = self.choice.currentData()
        return next(m for m in self.bridge.engine.model_files.catalogue() if m.name == name)

    def _describe(self) -> None:
        model = self._model()
        self.about.setText(f"{model.good_at[:1].upper()}{model.good_at[1:]}. Reads about "
                           f"{model.images_per_second:g} photos a second on a 2-core computer.")
        # the figures and the licence for those who look for them, not in everyone's way
        self.about.setToolTip(plain.tooltip(f"{model.name}\nPublished results: "
                                            f"{model.published}.\nLicence: {model.licence}."))

    def _run(self, fn, on_done, on_failed, lane: str = "setup") -> None:
        self.bridge.op(fn, lane=lane).success(on_done).failure(on_failed).run()

    def _busy(self, busy: bool) -> None:
        for button in (self.download_button, self.import_button, self.export_button):
            button.setEnabled(not busy)
        self.choice.setEnabled(not busy)

    def _found(self, path: Path) -> None:
        self.weights = path
        self.stop_button.hide()
        self.state.setText(f"✔ The model is ready: {path}")
        self._busy(False)
        self.download_button.setText("Download another…")
        self.import_button.setText("Import another file…")
        self.export_button.setText("Import another model folder…")
        self.progress.hide()
        self._poll.stop()
        self.completeChanged.emit()

    def _not_found(self, message: str) -> None:
        self.state.setText("The model is not on this computer yet.")
        self._busy(False)

    def _failed(self, message: str) -> None:
        self._poll.stop()
        self.progress.hide()
        self.stop_button.hide()
        self._busy(False)
        if self._stop.is_set():  # the user's own stop: no warning
            self.state.setText("Stopped. Download again to continue where it stopped.")
            return
        self.state.setText(message)
        QMessageBox.warning(self, "Model", message)

    def stop_download(self) -> None:
        """Stop the download after its current chunk; what arrived is kept to resume."""
        self._stop.set()

    # --- download ---------------------------------------------------------------------------

    def ask_download(self) -> None:
        """Ask the model's source for its files' sizes (the only network access until
        the user agrees), then ask the user."""
        self._busy(True)
        name = self._model().name
        self.state.setText("Asking for the size of the model's files…")
        self._run(lambda engine: engine.model_files.plan(name), self._confirm, self._failed)

    def _confirm(self, plan) -> None:
        """Show each file of *plan* (:meth:`.library.model_files.ModelFiles.plan`), its
        size, source and licence, and download after a yes."""
        files = "\n".join(f"  {f.name} ({size_text(f.size)})" for f in plan.files)
        answer = QMessageBox.question(
            self, "Download the model?",
            f"Download {plan.model.name} ({size_text(plan.size)}):\n{files}\n"
            f"from {hub_endpoint()}\n"
            f"into {self.bridge.engine.model_files.folder}?\n\nLicence: {plan.model.licence}"
            "\n\nThis is the only time the app uses the network.")
        if answer != QMessageBox.StandardButton.Yes:
            self._not_found("")
            return
        self.state.setText(f"Downloading {plan.model.name}…")
        self.progress.setRange(0, max(plan.size // 1_000_000, 1))
        self.progress.setFormat("%v of %m MB")
        self.progress.show()
        self._poll.start()
        self._stop.clear()
        self.stop_button.show()

        def install_and_use(engine):
            folder = engine.model_files.install(plan, cancel=self._stop)
            engine.model_files.use(plan.model.name)
            return folder
        self._run(install_and_use, self._found, self._failed)

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
