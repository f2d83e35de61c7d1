"""The ONNX Runtime backend: an export embeds every coco-mini photo and 100 captions like
the torch model, tokenises like open_clip, shares the library (same model id, nothing
re-embedded), and a text search through it never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
from PIL import Image

from mmrag_desktop.clip.onnx_backend import OnnxCLIP, export, export_folder
from mmrag_desktop.clip.tokenizer import clip_tokenizer
from mmrag_desktop.core.config import save_config
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from conftest import COCO, cli_env, coco_photos

pytest.importorskip("onnxruntime")


def _captions(n: int) -> list[str]:
    lines = (COCO / "captions.jsonl").read_text().splitlines()
    return [json.loads(line)["captions"][0] for line in lines][:n]


def test_an_onnx_export_embeds_like_torch_and_serves_the_same_library(home, config, photos):
    home.mkdir(parents=True)
    config.backend, config.precision = "torch", "fp32"
    save_config(home, config)
    torch_engine = Library(home=home)
    torch_engine.updates.index([str(photos)])
    model_id = torch_engine.embedder.model_id
    folder = export(torch_engine.embedder.torch_backend(), export_folder(home, model_id))
    onnx = OnnxCLIP(folder)
    assert onnx.model_id == model_id

    # every coco-mini photo, each backend with its own preprocessing
    embedder = torch_engine.embedder
    cosines = []
    for path in coco_photos():
        image = Image.open(path).convert("RGB")
        a = embedder.encode_images(embedder.to_pixels(image)[None])[0]
        b = onnx.encode_images(onnx.to_pixels(image)[None])[0]
        cosines.append(float(a @ b))
    assert len(cosines) == len(coco_photos()) > 200 and min(cosines) >= 0.999
    captions = _captions(100)
    text_cosines = (embedder.encode_texts(captions) * onnx.encode_texts(captions)).sum(1)
    assert len(captions) == 100 and text_cosines.min() >= 0.999
    torch_engine.close()

    # the same library under the ONNX backend: nothing re-embedded, searches work
    config.backend = "onnx"
    save_config(home, config)
    onnx_engine = Library(home=home)
    report = onnx_engine.updates.index([str(photos)])
    assert (report.embedded, report.unchanged) == (0, 40)
    assert onnx_engine.embedder.describe() == "cpu: images fp32 (onnx), text fp32 (onnx)"
    example = photos / coco_photos()[11].name
    best = onnx_engine.search.run([Term(photo=str(example))], k=1)[0]
    assert best.path == str(example) and best.score > 0.999
    onnx_engine.close()


def test_the_tokenizer_matches_open_clips(tmp_path):
    texts = _captions(300) + [
        "A dog's ball, 3 cats & 12 birds!", "Café crème — naïve résumé", "  lots   of   space ",
        "emoji 🐶🏖", "x" * 400, "UPPER lower MiXeD", "don't they'll we've", "",
        "snow-covered, sun_lit; (weird) [chars] {here}"]
    reference = open_clip.get_tokenizer("ViT-B-32")(texts).numpy()
    path = tmp_path / "tokenizer.json"
    clip_tokenizer(Path(open_clip.tokenizer.default_bpe()), 77).save(str(path))
    from tokenizers import Tokenizer

    ours = np.array([e.ids for e in Tokenizer.from_file(str(path)).encode_batch(texts)])
    assert ours.shape == reference.shape and (ours == reference).all()


@pytest.mark.parametrize("how", ["export-onnx", "import"])
def test_a_cold_text_search_through_an_export_never_imports_torch(home, config, photos, how):
    """After ``models export-onnx``, and with no manual step at all after a weights file
    is imported: a cold text search loads neither torch nor open_clip."""
    home.mkdir(parents=True)
    config.roots = [str(photos)]
    weights, config.weights = config.weights, "" if how == "import" else config.weights
    save_config(home, config)
    env = cli_env(home)
    run = [sys.executable, "-m", "mmrag_desktop"]
    if how == "import":
        subprocess.run(run + ["models", "import", weights], env=env, check=True,
                       capture_output=True)
    subprocess.run(run + ["index"], env=env, check=True, capture_output=True)
    if how == "export-onnx":
        subprocess.run(run + ["models", "export-onnx"], env=env, check=True,
                       capture_output=True)
    probe = ("import sys; from mmrag_desktop.cli import main; code = main(['search', "
             "'a dog on a beach', '-k', '3', '--json']); "
             "print('torch' in sys.modules, 'open_clip' in sys.modules, file=sys.stderr); "
             "sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "False False"
    assert len(json.loads(out.stdout)) == 3


def test_an_install_with_only_an_imported_export_indexes_and_searches(home, config, photos,
                                                                      tmp_path, capsys):
    # What a bundle without torch has: an export made elsewhere, imported; no weights file.
    # It indexes (image tower in ONNX Runtime) and searches, under the export's model id.
    from mmrag_desktop.cli import main
    from mmrag_desktop.clip.embedder import Embedder

    maker = tmp_path / "maker"
    maker.mkdir()
    made = export(Embedder(config, maker).torch_backend(), tmp_path / "shared-export")
    model_id = json.loads((made / "model.json").read_text())["model_id"]

    home.mkdir(parents=True)
    save_config(home, type(config)(model=config.model, model_config=config.model_config,
                                   pretrained="", roots=[str(photos)]))
    assert main(["--home", str(home), "models", "import", str(made)]) == 0
    engine = Library(home=home)
    assert engine.embedder.model_id == model_id
    report = engine.updates.index([str(photos)])
    assert report.embedded == 40 and not report.errors
    assert engine.embedder.describe() == "cpu: images fp32 (onnx), text fp32 (onnx)"
    example = photos / coco_photos()[3].name
    assert engine.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
    with pytest.raises(Exception, match="only an ONNX export"):
        engine.embedder.torch_backend()  # never random weights in place of missing ones
    engine.close()
