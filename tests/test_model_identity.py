"""Vectors of two models never mix, and nothing silently discards them: weights are known by
their content, what was imported last is what loads, read-only and random-weight runs never
touch a real library, and switching back to a model restores its embeddings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from mmrag_desktop.clip import model_files as models
from mmrag_desktop.cli import main
from mmrag_desktop.core.config import Config, load_config, save_config
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from conftest import Repairs, cli_env


def save_weights(path, seed: int) -> None:
    """Random weights of the tiny model (registered by the ``tiny_model`` fixture)."""
    torch.manual_seed(seed)
    torch.save(open_clip.create_model("mmrag-tiny").state_dict(), path)


def weights_file(folder, seed: int) -> str:
    """The path of a new file of the tiny model's random weights made with *seed*."""
    path = folder / f"tiny-{seed}.pt"
    save_weights(path, seed)
    return str(path)


def stored(engine: Library) -> dict[str, np.ndarray]:
    out = {}
    for ids, vectors in engine.store.vectors():
        details = engine.store.details([int(i) for i in ids])
        out.update({details[int(i)]["path"]: v for i, v in zip(ids, vectors)})
    return out


def reference(weights, photo) -> np.ndarray:
    model = open_clip.create_model("mmrag-tiny", pretrained=str(weights)).eval()
    _, _, preprocess = open_clip.create_model_and_transforms("mmrag-tiny")
    with torch.no_grad():
        v = model.encode_image(preprocess(Image.open(photo)).unsqueeze(0))[0].numpy()
    return v / np.linalg.norm(v)


def test_new_weights_under_the_same_file_name_re_embed(home, config, photos, tmp_path):
    """Two fine-tuning epochs both saved as model.pt: same name, same size, new content."""
    weights = tmp_path / "model.pt"
    save_weights(weights, 1)
    config.weights = str(weights)
    engine = Library(home=home, config=config)
    engine.updates.index([str(photos)])
    first = engine.embedder.model_id
    engine.close()

    size = weights.stat().st_size
    save_weights(weights, 2)
    assert weights.stat().st_size == size  # what the old id (name + size) could see
    reopened = Library(home=home, config=config, on_notice=(repairs := Repairs()))
    assert reopened.embedder.model_id != first
    report = reopened.updates.index([str(photos)])
    assert report.embedded == 40
    assert any("model changed" in r for r in repairs)
    photo = sorted(photos.iterdir())[3]
    assert float(stored(reopened)[str(photo)] @ reference(weights, photo)) > 0.999
    assert reopened.vector_index().count() == reopened.store.vector_count() == 40


def test_import_over_old_weights_re_embeds(home, tiny_model, photos, tmp_path, capsys):
    model_config, _ = tiny_model
    home.mkdir(parents=True)
    save_config(home, Config(model="mmrag-tiny", pretrained="tag",
                             model_config=str(model_config), batch_size=8))
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    save_weights(a, 5)
    save_weights(b, 6)
    assert main(["models", "import", str(a)]) == 0
    assert main(["index", str(photos)]) == 0
    assert main(["models", "import", str(b)]) == 0
    capsys.readouterr()
    assert main(["index"]) == 0
    assert "40 embedded" in capsys.readouterr().out
    engine = Library(home=home)
    photo = sorted(photos.iterdir())[0]
    assert float(stored(engine)[str(photo)] @ reference(b, photo)) > 0.999


def test_the_last_import_is_what_loads_whatever_its_type(home, tiny_model, tmp_path):
    from safetensors.torch import save_file

    model_config, _ = tiny_model
    config = Config(model="mmrag-tiny", pretrained="tag", model_config=str(model_config))
    home.mkdir(parents=True)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.pt"
    torch.manual_seed(7)
    state = open_clip.create_model("mmrag-tiny").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, first)
    save_weights(second, 8)
    models.import_weights(first, config, home)
    assert models.find_weights(config, home).suffix == ".safetensors"
    models.import_weights(second, config, home)
    found = models.find_weights(config, home)
    assert found.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in (home / "models").glob("mmrag-tiny*")) == [found.name]


def test_read_only_and_random_weight_runs_never_touch_the_library(engine, photos, home, tmp_path):
    engine.updates.index([str(photos)])
    before = (engine.store.seq(), engine.store.checksum(), engine.store.vector_count())
    index_file = engine.vector_index().data_file
    env = cli_env(home)
    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "--random-weights", "search",
                          "a dog"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (engine.store.seq(), engine.store.checksum(), engine.store.vector_count()) == before
    assert index_file.exists()

    # A search with another configured model explains itself and changes nothing.
    other = tmp_path / "other.pt"
    save_weights(other, 11)
    config = load_config(home)
    config.weights = str(other)
    save_config(home, config)
    run = subprocess.run([sys.executable, "-m", "mmrag_desktop", "search", "a dog"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "run `mmrag index` to switch" in run.stderr
    assert (engine.store.seq(), engine.store.checksum(), engine.store.vector_count()) == before


def test_switching_the_model_back_restores_its_embeddings(home, config, photos, tmp_path):
    a, b = weights_file(tmp_path, 21), weights_file(tmp_path, 22)
    config.weights = a
    first = Library(home=home, config=config)
    first.updates.index([str(photos)])
    original = stored(first)
    first.close()

    config.weights = b
    second = Library(home=home, config=config)
    assert second.updates.index([str(photos)]).embedded == 40
    second.close()

    config.weights = a
    back = Library(home=home, config=config)
    report = back.updates.index([str(photos)])
    assert report.embedded == 0 and report.unchanged == 40
    restored = stored(back)
    assert restored.keys() == original.keys()
    assert all(np.array_equal(restored[p], original[p]) for p in original)
    query = sorted(photos.iterdir())[9]
    assert back.search.run([Term(photo=str(query))], k=1)[0].path == str(query)


@pytest.mark.parametrize("model", ["ViT-B-16-SigLIP", "roberta-ViT-B-32",
                                   "hf-hub:timm/ViT-B-16-SigLIP"])
def test_models_that_name_hub_files_never_reach_the_network(model, home, tmp_path, monkeypatch,
                                                             no_network):
    """An HF tokenizer, an HF text tower's configuration, a whole hf-hub: model: none is
    fetched when the model loads; the message says how to get them with consent."""
    from huggingface_hub import constants

    from mmrag_desktop.clip.embedder import Embedder
    from mmrag_desktop.clip.identity import ModelMissingError

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    home.mkdir(parents=True)
    with pytest.raises(ModelMissingError, match="mmrag models download"):
        Embedder(Config(model=model, pretrained=""), home, random_weights=True).load()
    assert no_network == []


def test_an_hf_hub_model_in_the_cache_loads_without_the_network(home, tmp_path, monkeypatch,
                                                                 tiny_model, no_network):
    """What the consented download leaves for an hf-hub: model (config and weights in the
    Hugging Face cache) is enough to load it, embed, and know it by its content."""
    import json

    from huggingface_hub import constants
    from safetensors.torch import save_file

    from conftest import TINY_CONFIG
    from mmrag_desktop.clip.embedder import Embedder
    from mmrag_desktop.clip.model_files import find_weights

    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    snapshot = cache / "models--example--tiny-clip" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    (snapshot / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    torch.manual_seed(31)
    state = open_clip.create_model("mmrag-tiny").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()},
              snapshot / "open_clip_model.safetensors")
    home.mkdir(parents=True)
    # fp32: the check below is that these very weights load, to within rounding
    config = Config(model="hf-hub:example/tiny-clip", pretrained="", precision="fp32")
    embedder = Embedder(config, home)
    assert find_weights(config, home) == snapshot / "open_clip_model.safetensors"
    assert embedder.model_id.startswith("hf-hub:example/tiny-clip/")
    reference = open_clip.create_model("mmrag-tiny").eval()
    reference.load_state_dict(state)
    with torch.no_grad():
        expected = reference.encode_text(open_clip.get_tokenizer("mmrag-tiny")(["a dog"]))[0]
    expected = (expected / expected.norm()).numpy()
    assert np.allclose(embedder.encode_texts(["a dog"])[0], expected, atol=1e-5)
    assert no_network == []


def test_weights_that_cannot_be_loaded_change_nothing(home, config, photos, tmp_path, capsys):
    """A truncated weights file set as ``weights`` emptied the library: every photo became
    "unreadable", the good model's embeddings were dropped, and the rows stayed errors after
    the setting was restored. The setting is checked when set; a model that fails to load
    stops the run with one message; nothing in the library changes."""
    from pathlib import Path

    from mmrag_desktop.cli import main
    from mmrag_desktop.core.config import load_config, save_config
    from mmrag_desktop.library.facade import Library

    home.mkdir(parents=True)
    config.roots = [str(photos)]
    save_config(home, config)
    assert main(["--home", str(home), "index"]) == 0
    good = load_config(home).weights
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(Path(good).read_bytes()[: Path(good).stat().st_size // 2])
    capsys.readouterr()

    assert main(["--home", str(home), "config", "weights", str(bad)]) == 2
    assert "truncated" in capsys.readouterr().err and load_config(home).weights == good

    edited = load_config(home)  # set another way (a hand-edited config.toml)
    edited.weights = str(bad)
    save_config(home, edited)
    assert main(["--home", str(home), "index"]) == 2
    err = capsys.readouterr().err
    assert "truncated.pt" in err and err.count("\n") <= 3, err  # one message, not 40
    library = Library(home=home, read_only=True)
    try:
        rows = library.store.db.execute(
            "SELECT status, vector IS NOT NULL FROM photos").fetchall()
        assert rows and all(row == ("ok", 1) for row in rows), set(rows)
        model_before = library.store.get_meta("model_id")
    finally:
        library.close()
    assert not model_before.startswith("random")

    edited.weights = good
    save_config(home, edited)
    assert main(["--home", str(home), "index"]) == 0
    out = capsys.readouterr().out
    assert "0 embedded" in out and "0 unreadable" in out, out


def test_settings_refuse_a_damaged_weights_file(qtbot, tmp_path, tiny_model, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from mmrag_desktop.core.config import Config
    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.dialogs.settings import SettingsDialog

    bad = tmp_path / "truncated.pt"
    bad.write_bytes(tiny_model[1].read_bytes()[:1000])
    dialog = SettingsDialog(Config(), None, (), LibraryBridge.check_weights)
    qtbot.addWidget(dialog)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text: warned.append(text))
    dialog.weights.setText(str(bad))
    dialog.accept()
    assert warned and "truncated" in warned[0] and not dialog.result()
    dialog.weights.setText(str(tiny_model[1]))
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
