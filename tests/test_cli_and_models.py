"""The ``mmrag`` CLI on real photos, search filters and query composition, and weights
management (import, the consented download with a local file standing in, missing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from mmrag_desktop.clip import hub as model_hub, model_files as models
from mmrag_desktop.cli import main
from mmrag_desktop.core.config import Config, load_config, save_config
from mmrag_desktop.library.facade import Library
from mmrag_desktop.clip.hub import HubSource
from mmrag_desktop.clip.identity import ModelFileError, ModelMissingError
from mmrag_desktop.domain.query import Filters, Term
from mmrag_desktop.clip.embedder import query_vector
from conftest import COCO, coco_photos


def _dated_library(root: Path) -> dict[str, list[Path]]:
    """Photos in two folders with EXIF dates in 2019, 2020 and 2021."""
    made: dict[str, list[Path]] = {"2019": [], "2020": [], "2021": []}
    for i, photo in enumerate(coco_photos()[:30]):
        year = ("2019", "2020", "2021")[i % 3]
        folder = root / ("trips" if i % 2 else "home")
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(photo) as img:
            exif = Image.Exif()
            exif.get_ifd(0x8769)[36867] = f"{year}:05:0{1 + i % 9} 12:00:00"
            img.save(folder / photo.name, exif=exif, quality=92)
        made[year].append(folder / photo.name)
    return made


def test_filters_by_date_and_folder(engine, tmp_path):
    made = _dated_library(tmp_path / "lib")
    engine.updates.index([str(tmp_path / "lib")])
    query = [Term(text="a photo")]
    in_2020 = engine.search.run(query, 50, filters=Filters(taken_after="2020-01-01",
                                                       taken_before="2020-12-31"))
    assert {r.path for r in in_2020} == {str(p) for p in made["2020"]}
    trips = engine.search.run(query, 50, filters=Filters(folders=[str(tmp_path / "lib" / "trips")]))
    assert len(trips) == 15 and all("/trips/" in r.path for r in trips)
    both = engine.search.run(query, 50, filters=Filters([str(tmp_path / "lib" / "home")],
                                                    taken_before="2019-12-31"))
    assert {r.path for r in both} == {str(p) for p in made["2019"] if p.parent.name == "home"}
    assert [r.score for r in trips] == sorted((r.score for r in trips), reverse=True)


def test_combined_weighted_query(engine):
    photos = coco_photos()
    engine.updates.index([str(COCO / "images")])
    a, b = str(photos[0]), str(photos[1])
    emb = engine.embedder
    ea, eb = (emb.encode_images(emb.to_pixels(Image.open(p).convert("RGB"))[None])[0]
              for p in (a, b))
    et = emb.encode_texts(["snow"])[0]
    expected = ea + 0.5 * eb - 2 * et
    expected /= np.linalg.norm(expected)
    composed = query_vector(emb, [Term(photo=a), Term(photo=b, weight=0.5),
                                  Term(text="snow", weight=-2)])
    assert np.allclose(composed, expected, atol=1e-5)
    cancelled = engine.search.run([Term(photo=a), Term(photo=b), Term(photo=b, weight=-1)], k=1)
    assert cancelled[0].path == a and cancelled[0].score > 0.999
    assert Term.parse("0.5*snow") == Term(text="snow", weight=0.5)
    assert Term.parse(a, -1) == Term(photo=a, weight=-1)
    everything = engine.search.run([Term(text="a dog")], k=50)
    threshold = float(np.median([r.score for r in everything]))
    floor = engine.search.run([Term(text="a dog")], k=50, min_score=threshold)
    assert [r.path for r in floor] == [r.path for r in everything if r.score >= threshold]
    assert 0 < len(floor) < len(everything)


def test_cli_index_search_status(engine, tmp_path, capsys):
    made = _dated_library(tmp_path / "lib")
    (tmp_path / "lib" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert main(["index", str(tmp_path / "lib")]) == 0
    out = capsys.readouterr()
    assert "30 embedded" in out.out and "broken.jpg: not an image" in out.out

    query = made["2021"][0]
    assert main(["search", "--photo", str(query), "-k", "3", "--after", "2021-01-01",
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["path"] == str(query) and results[0]["score"] > 0.999
    assert len(results) == 3 and all(r["taken_at"].startswith("2021") for r in results)

    assert main(["search", "dogs", "--add", "0.5*snow", "--subtract", "cat", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2

    assert main(["status", "--errors", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["by_status"] == {"ok": 30, "error": 1}
    assert status["photos"] == 30  # in the library; the unreadable file is not a photo of it
    assert status["errors"][0]["path"].endswith("broken.jpg")

    assert main(["index"]) == 0  # all library folders, nothing new
    assert "0 embedded" in capsys.readouterr().out
    assert main(["folders", "remove", str(tmp_path / "lib")]) == 0
    assert "30 photos left" in capsys.readouterr().out  # as status counted them
    assert main(["search", "a photo"]) == 0
    assert "no results" in capsys.readouterr().err


def test_cli_errors_are_messages_not_tracebacks(engine, tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["search", "--photo", str(tmp_path / "missing.jpg")]) == 2
    assert "missing.jpg: vanished" in capsys.readouterr().err
    assert main(["config", "batch_size", "0"]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert main(["config", "batch_size", "16"]) == 0
    assert load_config(engine.home).batch_size == 16
    capsys.readouterr()
    assert main(["config"]) == 0  # the settings, and nothing the app keeps for itself
    listed = [line.split(" = ")[0] for line in capsys.readouterr().out.splitlines()]
    assert "batch_size" in listed and not [key for key in listed if key.startswith("_")]
    assert main(["config", "_loaded"]) == 2


def test_missing_weights_say_how_to_get_them(home, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelMissingError) as err:
        models.find_weights(Config(), home)
    assert "mmrag models download" in str(err.value)
    assert "mmrag models import FILE" in str(err.value)
    assert main(["search", "a dog"]) == 2
    assert "mmrag models import FILE" in capsys.readouterr().err


def test_import_weights_then_load_them(home, tiny_model, tmp_path, capsys):
    model_config, weights = tiny_model
    # fp32: the check below is that these very weights load, to within rounding
    config = Config(model="mmrag-tiny", pretrained="my-tag", model_config=str(model_config),
                    precision="fp32")
    home.mkdir(parents=True)
    save_config(home, config)
    assert main(["models", "import", str(weights)]) == 0
    imported = models.find_weights(config, home)
    assert imported.parent == home / "models" and imported.read_bytes() == weights.read_bytes()

    engine = Library(home=home)
    reference = open_clip.create_model("mmrag-tiny", pretrained=str(weights)).eval()
    with torch.no_grad():
        tokens = open_clip.get_tokenizer("mmrag-tiny")(["a dog"])
        expected = reference.encode_text(tokens)[0].numpy()
    expected /= np.linalg.norm(expected)
    assert np.allclose(engine.embedder.encode_texts(["a dog"])[0], expected, atol=1e-5)

    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ModelFileError, match="does not fit"):
        models.import_weights(wrong, config, home)
    assert main(["models", "import", str(tmp_path / "absent.pt")]) == 2


def test_weights_download_asks_first_checks_and_names_the_published_weights(
        home, tiny_model, tmp_path, monkeypatch):
    """The consented checkpoint download (torch installs), from a local stand-in for the
    Hub: checked against the Hub's SHA-256, and known by its published name, which the
    ONNX export of the same weights shares (a library moves between them as it is)."""
    from hub_server import Hub
    from safetensors.torch import save_file

    model_config, weights = tiny_model
    root = tmp_path / "hub"
    (root / "example" / "repo").mkdir(parents=True)
    served = root / "example" / "repo" / "open_clip_model.safetensors"
    save_file(torch.load(weights), str(served))
    hub = Hub(root).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(model_hub, "hub_repo", lambda _config: "example/repo")
    config = Config(model="mmrag-tiny", pretrained="hub-tag", model_config=str(model_config))
    try:
        asked = []
        assert model_hub.download_weights(config, home, lambda s: asked.append(s) or False) \
            is None
        assert asked[0].size == served.stat().st_size and len(asked[0].sha256) == 64
        assert not [p for m, p in hub.seen if m == "GET"]
        with pytest.raises(ModelMissingError):
            models.find_weights(config, home)
        path = model_hub.download_weights(config, home, lambda s: True)
    finally:
        hub.stop()
    assert models.find_weights(config, home) == path and path.read_bytes() == served.read_bytes()
    assert not (home / "models" / ".download").exists()
    assert models.configured_model_id(config, home) == "mmrag-tiny/hub-tag"
    path.write_bytes(path.read_bytes() + b" ")  # changed since: no longer the published file
    assert models.configured_model_id(config, home).startswith("mmrag-tiny/")
    assert models.configured_model_id(config, home) != "mmrag-tiny/hub-tag"


def test_an_hf_hub_model_is_downloaded_where_it_is_loaded_from(home, tmp_path, monkeypatch):
    """open_clip loads an hf-hub: model (config and weights) from the Hugging Face cache:
    the consented download puts both there, and find_weights finds them."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    config = Config(model="hf-hub:example/tiny-clip", pretrained="")
    source = HubSource("example/tiny-clip", "open_clip_model.safetensors", 7,
                       model_hub.hub_side_repos(config))  # the download itself is stubbed
    monkeypatch.setattr(model_hub, "hub_source", lambda _config: source)
    side = []
    monkeypatch.setattr("huggingface_hub.snapshot_download",
                        lambda repo, allow_patterns: side.append(repo))

    def into_the_cache(repo_id, filename, local_dir=None):
        assert local_dir is None
        folder = cache / f"models--{repo_id.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text("0" * 40)
        target = folder / "snapshots" / ("0" * 40) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return str(target)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", into_the_cache)
    home.mkdir(parents=True)
    path = model_hub.download_weights(config, home, lambda _source: True)
    assert side == ["example/tiny-clip"]
    assert models.find_weights(config, home) == path and path.is_relative_to(cache)


def test_eval_prints_recall_at_k(engine, capsys):
    photos = coco_photos()  # skips without the shared data
    assert main(["eval", str(COCO / "captions.jsonl"), str(COCO / "images"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == len(photos)
    lines = [json.loads(line) for line in (COCO / "captions.jsonl").read_text().splitlines()]
    assert result["queries"] == sum(len(item["captions"]) for item in lines)
    assert engine.store.counts() == {}  # evaluation uses its own library

    # The same measurement made independently: open_clip's own preprocessing and encoders,
    # exact cosine ranking, Recall@K as in the CLIP paper's retrieval tables.
    model, _, preprocess = open_clip.create_model_and_transforms(
        "mmrag-tiny", pretrained=engine.config.weights)
    tokenizer = open_clip.get_tokenizer("mmrag-tiny")
    model.eval()
    with torch.no_grad():
        images = torch.stack([preprocess(Image.open(COCO / "images" / item["file"]))
                              for item in lines])
        image_features = model.encode_image(images)
        captions = [(c, i) for i, item in enumerate(lines) for c in item["captions"]]
        text_features = model.encode_text(tokenizer([c for c, _ in captions]))
    image_features /= image_features.norm(dim=-1, keepdim=True)
    text_features /= text_features.norm(dim=-1, keepdim=True)
    ranks = (-(text_features @ image_features.T)).argsort(dim=1)
    truth = torch.tensor([i for _, i in captions])
    for k in (1, 5, 10):
        reference = (ranks[:, :k] == truth[:, None]).any(dim=1).float().mean().item()
        assert abs(result[f"recall@{k}"] - reference) <= 0.01, (k, result, reference)
    assert result["ann_overlap@10"] >= 0.95


def test_the_cli_fails_one_way_keeping_its_exit_statuses(home, capsys):
    """Every error the app raises on purpose reaches the user as one line, ``mmrag:
    <message>``, from the one handler in cli/__init__.py: status 2 for a command that cannot
    go on, 1 for wrong arguments (as SystemExit gave them before)."""
    assert main(["index"]) == 2
    assert capsys.readouterr().err.startswith("mmrag: no folders yet; add one with:")
    assert main(["vlm", "set"]) == 1
    assert capsys.readouterr().err.startswith("mmrag: usage: mmrag vlm set MODEL.gguf")
    assert main(["models", "import"]) == 2
    assert capsys.readouterr().err == "mmrag: models import needs a PATH\n"
