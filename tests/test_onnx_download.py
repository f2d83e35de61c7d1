"""Published ONNX exports (what a bundle without torch downloads): listed in a manifest,
downloaded only after a yes, checked against the manifest's size and SHA-256, imported, and
then indexing and search run on them. Served here by a local HTTP server."""

from __future__ import annotations

import http.server
import importlib.util
import threading
from functools import partial
from pathlib import Path

import pytest

from mmrag_desktop.clip.onnx_backend import export
from mmrag_desktop.cli import main
from mmrag_desktop.core.config import Config, save_config
from mmrag_desktop.clip.embedder import Embedder
from mmrag_desktop.library.facade import Library
from mmrag_desktop.clip.onnx_download import pack
from mmrag_desktop.domain.query import Term

pytest.importorskip("onnxruntime")


@pytest.fixture
def served(tmp_path, config):
    """A folder served at http://127.0.0.1:PORT/ holding the tiny model's packed export;
    yields (folder, base URL, the request paths seen)."""
    folder = tmp_path / "served"
    made = export(Embedder(config, tmp_path / "maker").torch_backend(), tmp_path / "export")
    pack(made, folder, "mmrag-tiny", "", "the tests' tiny random-weight model", "MIT")
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}/", seen
    server.shutdown()


@pytest.fixture
def bundle_home(home, photos, served, monkeypatch) -> Path:
    """An app folder as the bundle has it: no torch, no weights, the served exports."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name in ("torch", "open_clip") else real_find_spec(name, *args))
    home.mkdir(parents=True)
    save_config(home, Config(model="mmrag-tiny", pretrained="", roots=[str(photos)],
                             onnx_exports_url=served[1]))
    return home


def test_a_published_export_is_downloaded_checked_imported_and_searched(bundle_home, photos,
                                                                        served, capsys):
    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "mmrag-tiny__custom.onnx.tar.gz" in out and served[1] in out and "MIT" in out
    assert sorted(served[2]) == ["/manifest.json", "/mmrag-tiny__custom.onnx.tar.gz"]
    assert not (bundle_home / "models" / ".download").exists()

    engine = Library(home=bundle_home)
    try:
        report = engine.updates.index([str(photos)])
        assert report.embedded == 40 and not report.errors
        assert engine.embedder.describe() == "cpu: images fp32 (onnx), text fp32 (onnx)"
        example = sorted(photos.iterdir())[5]
        assert engine.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
    finally:
        engine.close()


def test_nothing_is_downloaded_without_a_yes(bundle_home, served, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    assert main(["--home", str(bundle_home), "models", "download"]) == 1
    assert served[2] == ["/manifest.json"]
    assert not (bundle_home / "models" / "onnx").exists()


def test_a_download_that_differs_from_the_manifest_installs_nothing(bundle_home, served,
                                                                   capsys):
    archive = served[0] / "mmrag-tiny__custom.onnx.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: a corrupted or tampered download
    archive.write_bytes(bytes(data))
    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) != 0
    assert "is not the published file" in capsys.readouterr().err
    assert not (bundle_home / "models" / "onnx").exists()
    assert not (bundle_home / "models" / ".download").exists()


def test_the_bundles_first_run_downloads_the_published_export(qtbot, bundle_home, served,
                                                              monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from mmrag_desktop.library.facade import Library
    from mmrag_desktop.gui.dialogs import first_run
    from mmrag_desktop.gui.adapters.bridge import LibraryBridge

    asked = []

    def agree(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QMessageBox, "question", agree)
    page = first_run.ModelPage(LibraryBridge(Library(home=bundle_home)))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "not on this computer" in page.state.text(), timeout=10_000)
    assert not page.download_button.isHidden() and page.import_button.isHidden()
    page.ask_download()
    qtbot.waitUntil(page.isComplete, timeout=30_000)
    assert served[1] in asked[0] and "MIT" in asked[0] and "MB" in asked[0]
    assert page.weights.parent == bundle_home / "models" / "onnx"

