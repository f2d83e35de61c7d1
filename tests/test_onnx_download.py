"""Published ONNX exports (what every install downloads to search): the tests' tiny model in
rclip's and in Immich's layout, served by a local stand-in for the Hugging Face Hub
(:mod:`hub_server`, reached through ``HF_ENDPOINT`` as a user's mirror would be), downloaded
only after a yes, resumed after a dropped connection, checked against the Hub's SHA-256,
installed whole or not at all, and then indexed and searched without torch."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, coco_photos
from hub_server import Hub
from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.clip import catalogue
from mmrag_desktop.clip.catalogue import CatalogueModel
from mmrag_desktop.clip.embedder import Embedder
from mmrag_desktop.clip.onnx_backend import OnnxCLIP, find_export
from mmrag_desktop.clip.onnx_download import install, plan, staging_folder
from mmrag_desktop.core.config import Config, load_config, save_config
from mmrag_desktop.core.downloads import DownloadCancelled, DownloadError
from mmrag_desktop.core.text import size_text
from mmrag_desktop.domain.query import Term
from mmrag_desktop.library.facade import Library

pytest.importorskip("onnxruntime")

RCLIP = CatalogueModel(
    name="tiny-rclip", title="The tests' model", architecture="mmrag-tiny", pretrained="tiny_rclip", layout="rclip",
    repo="tests/rclip-models", folder="mmrag-tiny-tiny_rclip", good_at="the tests' model",
    download_mb=1, images_per_second=1.0, published="none (random weights)",
    licence="MIT (the tests')")
IMMICH = CatalogueModel(
    name="tiny-immich", title="The tests' model, Immich's way", architecture="mmrag-tiny",
    pretrained="tiny_immich", layout="immich",
    repo="tests/mmrag-tiny__tiny_immich", folder="", good_at="the tests' model, Immich's way",
    download_mb=1, images_per_second=1.0, published="none (random weights)",
    licence="AGPL-3.0 (the tests')")


@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_model) -> Path:
    """The tiny model as both sources publish it, in one folder the Hub stand-in serves."""
    from model_layouts import write_immich, write_rclip

    root = tmp_path_factory.mktemp("hub")
    write_rclip(tiny_model[1], root, RCLIP.repo, RCLIP.folder)
    write_immich(tiny_model[1], root, IMMICH.repo, TINY_CONFIG)
    return root


@pytest.fixture
def hub(published, monkeypatch):
    """The Hub stand-in, as ``HF_ENDPOINT``, with the tests' catalogue."""
    server = Hub(published).start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setattr(catalogue, "CATALOGUE", (RCLIP, IMMICH))
    yield server
    server.stop()


@pytest.fixture
def bundle_home(home, photos, monkeypatch) -> Path:
    """An app folder as the bundle has it: no torch, no weights, the rclip-layout model."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name in ("torch", "open_clip") else real_find_spec(name, *args))
    home.mkdir(parents=True)
    save_config(home, Config(model="mmrag-tiny", pretrained="tiny_rclip", roots=[str(photos)]))
    return home


def _gets(hub: Hub, path: str) -> list[str]:
    return [m for m, p in hub.seen if p.endswith(path) and m == "GET"]


def test_rclips_export_is_shown_downloaded_installed_and_searched_without_torch(
        bundle_home, photos, hub, capsys):
    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) == 0
    out = capsys.readouterr().out
    for path in RCLIP.files():
        size = (hub.root / RCLIP.repo / path).stat().st_size
        assert f"{RCLIP.repo}/{path}  {size_text(size)}" in out
    assert hub.endpoint in out and "MIT (the tests')" in out
    assert not staging_folder(bundle_home, RCLIP).exists()

    engine = Library(home=bundle_home)
    try:
        report = engine.updates.index([str(photos)])
        assert report.embedded == 40 and not report.errors
        assert engine.embedder.describe() == "cpu: images fp32 (onnx), text fp32 (onnx)"
        assert engine.embedder.model_id == RCLIP.model_id == "mmrag-tiny/tiny_rclip"
        example = sorted(photos.iterdir())[5]
        assert engine.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
        assert len(engine.search.run([Term(text="a dog on a beach")], k=3)) == 3
    finally:
        engine.close()


@pytest.mark.parametrize("source", [RCLIP, IMMICH], ids=["rclip", "immich"])
def test_each_layout_embeds_like_the_torch_checkpoint(tmp_path, config, hub, source):
    """Parity: a library indexed from source with the checkpoint and one indexed by the
    bundle with the published export agree (cosine ≥ 0.999, photos and texts)."""
    folder = install(plan(source), tmp_path)
    exported = OnnxCLIP(folder)
    torch_clip = Embedder(config, tmp_path / "torch").torch_backend()
    images = [Image.open(p) for p in coco_photos()[:6]]
    assert exported.pixel_spec == torch_clip.pixel_spec
    pixels = np.stack([torch_clip.to_pixels(image) for image in images])
    texts = ["a dog on a beach", "Two people, riding bikes!", "a red car", "pizza"]
    for got, expected in ((exported.encode_images(pixels), torch_clip.encode_images(pixels)),
                          (exported.encode_texts(texts), torch_clip.encode_texts(texts))):
        assert got.shape == expected.shape
        assert float((got * expected).sum(-1).min()) >= 0.999


def test_a_fixed_batch_export_runs_item_by_item(tmp_path, hub):
    """Immich's recent exports take one item at a time: a batch of five still works."""
    import onnxruntime

    folder = install(plan(IMMICH), tmp_path)
    session = onnxruntime.InferenceSession(str(folder / "image.onnx"))
    assert session.get_inputs()[0].shape[0] == 1
    exported = OnnxCLIP(folder)
    pixels = np.random.default_rng(0).integers(0, 255, (5, 3, 224, 224), dtype=np.uint8)
    batch = exported.encode_images(pixels)
    one_by_one = np.concatenate([exported.encode_images(pixels[i:i + 1]) for i in range(5)])
    assert batch.shape == (5, 64) and np.allclose(batch, one_by_one, atol=1e-6)
    assert exported.encode_texts(["a", "b c", "d"]).shape == (3, 64)


def test_a_dropped_connection_is_resumed_where_it_stopped(tmp_path, hub):
    hub.drop_after = 40_000
    folder = install(plan(RCLIP), tmp_path)
    gets = _gets(hub, f"{RCLIP.folder}/visual.onnx")
    assert len(gets) >= 2  # the redirect, the dropped connection, the resumed one
    assert f"{RCLIP.folder}/visual.onnx" in " ".join(hub.dropped)
    assert (folder / "image.onnx").read_bytes() == \
        (hub.root / RCLIP.repo / RCLIP.folder / "visual.onnx").read_bytes()


def test_an_interrupted_download_resumes_on_the_next_try(tmp_path, hub):
    stop = threading.Event()
    download = plan(RCLIP)
    with pytest.raises(DownloadCancelled):
        install(download, tmp_path, lambda done: done > 50_000 and stop.set(), stop)
    assert find_export(tmp_path, RCLIP.model_id) is None
    partial = staging_folder(tmp_path, RCLIP) / RCLIP.folder / "visual.onnx.partial"
    kept = partial.stat().st_size
    assert kept > 50_000
    seen = []
    folder = install(download, tmp_path, seen.append)
    assert seen[0] >= kept and seen[-1] == download.size  # did not start again from zero
    assert (folder / "image.onnx").read_bytes() == \
        (hub.root / RCLIP.repo / RCLIP.folder / "visual.onnx").read_bytes()


def test_a_flipped_byte_is_refused_and_nothing_is_installed(bundle_home, hub, capsys):
    hub.flipped = {f"{RCLIP.folder}/textual.onnx"}
    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "textual.onnx" in err and "damaged" in err and "SHA-256" in err
    assert find_export(bundle_home, RCLIP.model_id) is None
    assert not list(staging_folder(bundle_home, RCLIP).rglob("textual.onnx*"))


def test_not_found_and_offline_say_which_file_and_where(bundle_home, hub, monkeypatch,
                                                        capsys):
    missing = CatalogueModel(**{**RCLIP.__dict__, "name": "gone", "repo": "tests/gone"})
    monkeypatch.setattr(catalogue, "CATALOGUE", (RCLIP, missing))
    with pytest.raises(DownloadError, match=r"tests/gone/.*visual\.onnx.*404") as caught:
        plan(missing)
    assert caught.value.status == 404
    assert main(["--home", str(bundle_home), "models", "download", "gone", "--yes"]) == 2
    assert "404" in capsys.readouterr().err

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: offline
    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "visual.onnx" in err and "127.0.0.1:9" in err
    assert not (bundle_home / "models" / "onnx").exists()


def test_nothing_is_downloaded_without_a_yes(bundle_home, hub, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["--home", str(bundle_home), "models", "download"]) == 1
    assert not [p for m, p in hub.seen if m == "GET"]
    assert not (bundle_home / "models" / "onnx").exists()


def test_switching_models_keeps_each_models_embeddings(bundle_home, photos, hub, capsys):
    for source in (RCLIP, IMMICH):
        assert main(["--home", str(bundle_home), "models", "download", source.name,
                     "--yes"]) == 0
    assert main(["--home", str(bundle_home), "models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "* tiny-rclip" in listing and "  tiny-immich" in listing

    def index() -> int:
        engine = Library(home=bundle_home)
        try:
            return engine.updates.index([str(photos)]).embedded
        finally:
            engine.close()

    assert index() == 40
    assert main(["--home", str(bundle_home), "models", "use", "tiny-immich"]) == 0
    config = load_config(bundle_home)
    assert (config.model, config.pretrained) == ("mmrag-tiny", "tiny_immich")
    assert index() == 40  # the new model embeds every photo
    assert main(["--home", str(bundle_home), "models", "use", "tiny-rclip"]) == 0
    assert index() == 0  # switching back: the first model's embeddings were kept
    assert main(["--home", str(bundle_home), "models", "use", "no-such-model"]) == 2


def test_the_first_run_page_offers_the_catalogue_and_downloads_the_choice(
        qtbot, bundle_home, hub, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.dialogs import first_run

    asked = []

    def agree(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QMessageBox, "question", agree)
    page = first_run.ModelPage(LibraryBridge(Library(home=bundle_home)))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "not on this computer" in page.state.text(), timeout=10_000)
    assert [page.choice.itemData(i) for i in range(page.choice.count())] == \
        ["tiny-rclip", "tiny-immich"]
    page.choice.setCurrentIndex(1)
    hub.slow = 0.02  # time to press Stop
    page.ask_download()
    text_tower = staging_folder(bundle_home, IMMICH) / "textual" / "model.onnx.partial"
    # the large file (13 MB) well under way: the rest cannot arrive before Stop is seen
    qtbot.waitUntil(lambda: not page.stop_button.isHidden() and text_tower.exists()
                    and text_tower.stat().st_size > 1 << 20, timeout=30_000)
    page.stop_download()
    qtbot.waitUntil(lambda: page.state.text().startswith("Stopped"), timeout=30_000)
    assert page.stop_button.isHidden() and not page.isComplete()
    assert find_export(bundle_home, IMMICH.model_id) is None
    hub.slow = 0.0
    page.ask_download()  # continues where it stopped
    qtbot.waitUntil(page.isComplete, timeout=60_000)
    assert hub.ranges and all(r.startswith("bytes=") for _, r in hub.ranges)
    assert hub.endpoint in asked[0] and "AGPL-3.0" in asked[0] and "visual/model.onnx" in asked[0]
    assert page.weights == find_export(bundle_home, IMMICH.model_id)
    config = load_config(bundle_home)
    assert (config.model, config.pretrained) == ("mmrag-tiny", "tiny_immich")


def test_settings_switch_to_a_new_model_downloads_it_and_reembeds(qtbot, bundle_home, photos,
                                                                   hub, monkeypatch):
    """Settings lists the catalogue; saving a model that is not here yet opens the model
    page, which downloads it; the library is then indexed with it."""
    from PySide6.QtWidgets import QMessageBox

    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.window.main_window import MainWindow

    assert main(["--home", str(bundle_home), "models", "download", "--yes"]) == 0
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Yes)
    window = MainWindow(LibraryBridge(Library(home=bundle_home), settle=0.2))
    qtbot.addWidget(window)
    window.show()
    try:
        window.start()
        qtbot.waitUntil(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                        == [(40, "up to date")], timeout=60_000)
        settings = window.open_settings()
        names = [settings.search_model.itemText(i) for i in range(settings.search_model.count())]
        assert names == ["The tests' model", "The tests' model, Immich's way"]  # no jargon
        settings.search_model.setCurrentIndex(1)
        settings.accept()
        # the new model is not here: the model page opens, set to it, and downloads it
        qtbot.waitUntil(lambda: window.wizard is not None and window.wizard.isVisible(),
                        timeout=30_000)
        page = window.wizard.model_page
        qtbot.waitUntil(lambda: "not on this computer" in page.state.text(), timeout=30_000)
        assert page.choice.currentData() == "tiny-immich"
        page.ask_download()
        qtbot.waitUntil(page.isComplete, timeout=60_000)
        window.wizard.accept()
        engine = window.bridge.engine
        qtbot.waitUntil(lambda: engine.store.get_meta("model_id") == IMMICH.model_id,
                        timeout=60_000)
        qtbot.waitUntil(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                        == [(40, "up to date")], timeout=60_000)
    finally:
        window.close()
    config = load_config(bundle_home)
    assert (config.model, config.pretrained) == ("mmrag-tiny", "tiny_immich")


def test_a_full_disk_says_so_and_installs_nothing(tmp_path, hub, monkeypatch):
    import errno

    from mmrag_desktop.core import downloads

    real = downloads._stream

    def full(remote, partial, done, progress, cancel):
        if remote.name.endswith("textual.onnx"):
            partial.write_bytes(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(remote, partial, done, progress, cancel)
    monkeypatch.setattr(downloads, "_stream", full)
    with pytest.raises(DownloadError, match=r"textual\.onnx.*the disk is full"):
        install(plan(RCLIP), tmp_path)
    assert find_export(tmp_path, RCLIP.model_id) is None
    assert not list(staging_folder(tmp_path, RCLIP).rglob("textual.onnx*"))  # space given back


def test_siglips_text_is_canonicalised_before_tokenizing(tmp_path, hub):
    """open_clip's ``clean: canonicalize`` (SigLIP): no punctuation, lower case; other
    models keep both (CLIP's own tokenizer lower-cases, but keeps punctuation)."""
    import json

    from mmrag_desktop.clip.tokenizer import clean_text

    assert clean_text("  A DOG,  on the   Beach! ", True) == "a dog on the beach"
    assert clean_text("  A DOG,  on the   Beach! ", False) == "A DOG, on the Beach!"
    folder = install(plan(IMMICH), tmp_path)
    plain = OnnxCLIP(folder)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(meta | {"canonicalize": True}))
    canonical = OnnxCLIP(folder)
    shouted, quiet = "A DOG, on the beach!!", "a dog on the beach"
    assert np.allclose(canonical.encode_texts([shouted]), canonical.encode_texts([quiet]))
    assert not np.allclose(plain.encode_texts([shouted]), plain.encode_texts([quiet]))


def test_onnx_runtime_writes_no_telemetry(tmp_path):
    """ONNX Runtime's device id and telemetry queue (~/.cache/Microsoft/…) are never
    written: the app turns them off in every process before onnxruntime loads."""
    import subprocess
    import sys

    from conftest import REPO

    import shutil

    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    written = tmp_path / ".cache" / "Microsoft"
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True,
                   capture_output=True)
    if not written.exists():
        pytest.skip("this onnxruntime writes no telemetry folder even unasked")
    shutil.rmtree(written)
    probe = ("import mmrag_desktop.clip.onnx_backend, onnxruntime; "
             "print(onnxruntime.get_available_providers())")
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True)
    assert not written.exists()
