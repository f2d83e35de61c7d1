"""The settings dialog: the search model, device, exclusions, thumbnail size, what the
understanding pass learns, and the way to Ask's set-up page. Saved with the engine's config
(``config.toml``), so the CLI sees the same settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ...core.config import Config

DEVICES = ("auto", "cpu", "cuda", "mps")
ANALYSIS_CHOICES = {
    "text": "Read the text in photos (OCR)",
    "places": "Name the places of photos with GPS",
    "faces": "Find faces and group them into people (off: every face and name is deleted)",
    "captions": "Describe photos with the vision-language model (slow: seconds per photo)",
}
"""The understanding pass's analyses (:data:`.domain.analyses.ANALYSES`), as people read them."""


class SettingsDialog(QDialog):
    """Edits a copy of *config*; :meth:`config` returns it after ``accept``.
    ``vlm_setup_requested`` asks for Ask's set-up page (it saves its own choice)."""

    vlm_setup_requested = Signal()

    def __init__(self, config: Config, parent: QWidget | None = None, models: tuple = (),
                 check_weights: Callable[[str], str | None] = lambda path: None):
        super().__init__(parent)
        self._check_weights = check_weights
        self.setWindowTitle("Settings")
        self._original = config
        self.search_model = QComboBox()
        self.search_model.setToolTip("The model that finds photos from a description "
                                     "(mmrag models list). A new one is downloaded after "
                                     "saving; the other model's embeddings are kept.")
        self._pairs = [(model.architecture, model.pretrained) for model in models]
        for model in models:
            self.search_model.addItem(model.title)
            self.search_model.setItemData(self.search_model.count() - 1,
                                          f"{model.name}: {model.good_at}",
                                          Qt.ItemDataRole.ToolTipRole)
        current = (config.model, config.pretrained)
        if current not in self._pairs:  # set with mmrag config: keep it
            self._pairs.append(current)
            self.search_model.addItem(f"{config.model} ({config.pretrained or 'custom'})")
        self.search_model.setCurrentIndex(self._pairs.index(current))
        self.weights = QLineEdit(config.weights)
        self.weights.setPlaceholderText("from the models folder or the download")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights)
        weights_row.addWidget(browse)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        if config.device not in DEVICES:
            self.device.addItem(config.device)
        self.device.setCurrentText(config.device)
        self.batch_size = QSpinBox(minimum=1, maximum=1024, value=config.batch_size)
        self.excludes = QPlainTextEdit("\n".join(config.excludes))
        self.excludes.setToolTip("Folder or file names to skip, one per line (* and ? match "
                                 "any characters)")
        self.include_hidden = QCheckBox("Index hidden files and folders")
        self.include_hidden.setChecked(config.include_hidden)
        self.thumbnail_size = QSpinBox(minimum=64, maximum=512, singleStep=32,
                                       value=config.thumbnail_size, suffix=" px")
        form = QFormLayout(self)
        form.addRow("Search model", self.search_model)
        form.addRow("Weights file", weights_row)
        form.addRow("Device", self.device)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Exclude", self.excludes)
        form.addRow("", self.include_hidden)
        form.addRow("Thumbnail size", self.thumbnail_size)
        self.analyses = {}
        for name, label in ANALYSIS_CHOICES.items():
            box = self.analyses[name] = QCheckBox(label)
            box.setChecked(name in config.understand)
            form.addRow("Understand" if name == "text" else "", box)
        self.vlm_button = QPushButton("Set up Ask (vision-language model)…")
        self.vlm_button.clicked.connect(self.vlm_setup_requested.emit)
        form.addRow("Ask", self.vlm_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, 480)

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model weights", self.weights.text(),
                                              "Weights (*.safetensors *.bin *.pt *.pth)")
        if path:
            self.weights.setText(path)

    def accept(self) -> None:
        """Save, unless the weights file chosen is missing or damaged (then say why), or
        faces are being turned off and the user keeps them (asked first: it deletes every
        face, person and name)."""
        weights = self.weights.text().strip()
        if weights and weights != self._original.weights:
            problem = self._check_weights(weights)
            if problem:
                QMessageBox.warning(self, "Weights file", problem)
                return
        if "faces" in self._original.understand and not self.analyses["faces"].isChecked():
            answer = QMessageBox.question(
                self, "Turn faces off?", "Turning faces off deletes every face, person and "
                "name the library holds, and no photo is read for faces again until you turn "
                "it back on.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        super().accept()

    def config(self) -> Config:
        """The edited settings (a new Config; the original is unchanged)."""
        excludes = [line.strip() for line in self.excludes.toPlainText().splitlines()
                    if line.strip()]
        model, pretrained = self._pairs[self.search_model.currentIndex()]
        changed = (model, pretrained) != (self._original.model, self._original.pretrained)
        return dataclasses.replace(
            self._original, roots=list(self._original.roots), model=model,
            pretrained=pretrained, weights="" if changed else self.weights.text().strip(),
            model_config="" if changed else self._original.model_config,
            device=self.device.currentText(),
            batch_size=self.batch_size.value(), excludes=excludes,
            include_hidden=self.include_hidden.isChecked(),
            thumbnail_size=self.thumbnail_size.value(),
            understand=[name for name, box in self.analyses.items() if box.isChecked()])
