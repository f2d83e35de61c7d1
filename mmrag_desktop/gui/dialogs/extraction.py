"""Structured extraction from a photo (:mod:`.understanding.extraction`): pick a schema, wait while the
vision-language model fills it, read the JSON, save it as JSON or CSV."""

from __future__ import annotations

import json
import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...domain.schemas import SCHEMAS, Extraction, to_csv
from ..adapters.bridge import LibraryBridge
from ..widgets import plain

OWN_SCHEMA = "A JSON schema file…"


class ExtractionDialog(QDialog):
    """Extracts from one photo: a schema chooser and Extract, then the result with Save
    as JSON / Save as CSV. Stored results come back at once (the library keeps them)."""

    def __init__(self, bridge: LibraryBridge, path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.path = bridge, path
        self.extraction: Extraction | None = None
        self.setWindowTitle(f"Extract from {os.path.basename(path)}")
        self.schema = QComboBox()
        self.schema.addItems([name.replace("_", " ") for name in SCHEMAS] + [OWN_SCHEMA])
        self.extract_button = QPushButton("Extract")
        self.extract_button.setDefault(True)
        self.extract_button.clicked.connect(self.extract)
        top = QHBoxLayout()
        top.addWidget(QLabel("What the photo shows"))
        top.addWidget(self.schema, 1)
        top.addWidget(self.extract_button)
        self.status = plain.label("Choose what to extract. The vision-language model fills "
                                  "it in; a model without a vision projector reads the text "
                                  "recognised in the photo.")
        self.status.setWordWrap(True)
        self.result = QPlainTextEdit(readOnly=True)
        self.result.setPlaceholderText("The extracted fields appear here as JSON.")
        self.save_json = QPushButton("Save as JSON…")
        self.save_json.clicked.connect(lambda: self._save("json"))
        self.save_csv = QPushButton("Save as CSV…")
        self.save_csv.clicked.connect(lambda: self._save("csv"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.save_json, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.save_csv, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.result, 1)
        layout.addWidget(buttons)
        self._show_saving(False)
        self.resize(620, 520)

    def extract(self) -> None:
        """Start the extraction by the chosen schema (asks for a file for one's own)."""
        choice = self.schema.currentText()
        if choice == OWN_SCHEMA:
            schema, _ = QFileDialog.getOpenFileName(self, "JSON schema", "",
                                                    "JSON schema (*.json)")
            if not schema:
                return
        else:
            schema = choice.replace(" ", "_")
        self.extract_button.setEnabled(False)
        self._show_saving(False)
        self.status.setText("Extracting… (the model may take a minute on a CPU)")
        self.bridge.extract(self.path, schema).success(self._done) \
            .failure(self._failed).run()

    def _done(self, extraction: Extraction) -> None:
        self.extraction = extraction
        self.extract_button.setEnabled(True)
        how = ("from the library (extracted before)" if extraction.stored else
               "repaired: the model's answer was cut short" if extraction.repaired else
               "stored in the library: searchable by its words")
        self.status.setText(f"{extraction.name.replace('_', ' ').capitalize()}, {how}.")
        self.result.setPlainText(json.dumps(extraction.value, indent=2, ensure_ascii=False))
        self._show_saving(True)

    def _failed(self, message: str) -> None:
        self.extract_button.setEnabled(True)
        self.status.setText(f"Could not extract: {message}")

    def _show_saving(self, enabled: bool) -> None:
        self.save_json.setEnabled(enabled)
        self.save_csv.setEnabled(enabled)

    def _save(self, kind: str) -> None:
        found = self.extraction
        stem = os.path.splitext(os.path.basename(self.path))[0]
        target, _ = QFileDialog.getSaveFileName(
            self, f"Save as {kind.upper()}", f"{stem}-{found.name}.{kind}",
            "CSV (*.csv)" if kind == "csv" else "JSON (*.json)")
        if not target:
            return
        if kind == "csv":
            text = to_csv([(found.photo, found.value)])
        else:
            text = json.dumps({"photo": found.photo, "schema": found.name, **found.value},
                              indent=2, ensure_ascii=False) + "\n"
        try:
            with open(target, "w", encoding="utf-8", newline="") as file:
                file.write(text)
        except OSError as exc:
            self.status.setText(f"Could not save {target}: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved {target}")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
