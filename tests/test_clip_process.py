"""The CLIP model in a helper process (the GUI's): the GUI process prepares pixels exactly
as the backends do, indexes and searches with the same results as in-process, never
imports torch or ONNX Runtime itself, and outlives the helper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from mmrag_desktop.core.config import save_config
from mmrag_desktop.clip.embedder import Embedder
from mmrag_desktop.library.facade import Library
from mmrag_desktop.media.photos import decode, model_input
from mmrag_desktop.domain.query import Term
from conftest import cli_env, coco_photos


def test_pixels_prepared_without_torch_are_identical_to_open_clips(home, config):
    embedder = Embedder(config, home)
    spec = embedder.pixel_spec
    assert spec == (embedder.image_size, "bicubic", "shortest")
    for photo in coco_photos():
        image, _ = decode(photo, min_side=embedder.image_size)
        assert np.array_equal(model_input(image, *spec), embedder.to_pixels(image)), photo


def test_squashed_pixels_are_open_clips_squash():
    """SigLIP's preprocessing (``resize_mode`` ``squash``: both sides to S, no crop),
    prepared without torch, is open_clip's own transform's input to within rounding."""
    import open_clip
    import torch

    transform = open_clip.image_transform(224, is_train=False, mean=(0.0,) * 3,
                                          std=(1.0,) * 3, resize_mode="squash")
    for photo in coco_photos()[:20]:
        image, _ = decode(photo, min_side=224)
        ours = model_input(image, 224, "bicubic", "squash").astype(np.int16)
        theirs = (transform(image) * 255).round().to(torch.int16).numpy()
        assert ours.shape == theirs.shape == (3, 224, 224)
        assert np.abs(ours - theirs).max() <= 1, photo
        assert not np.array_equal(ours, model_input(image, 224, "bicubic", "shortest"))


# Run in a fresh interpreter: this test process has imported torch long ago.
_GUI_LIKE = """
import json, sys
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
engine = Library(model_process=True)
engine.updates.index([sys.argv[1]])
text = engine.search.run([Term(text="a dog on a beach")], 5)
photo = engine.search.run([Term(photo=sys.argv[2])], 5)
heavy = sorted(m for m in ("torch", "open_clip", "onnxruntime", "tokenizers") if m in sys.modules)
print(json.dumps({"text": [r.path for r in text], "photo": [r.path for r in photo],
                  "count": engine.store.vector_count(), "heavy": heavy}))
engine.loaded_embedder.close()
"""


def test_a_gui_engine_indexes_and_searches_through_the_helper_without_torch(home, config,
                                                                          photos):
    home.mkdir(parents=True)
    save_config(home, config)
    query_photo = sorted(photos.iterdir())[3]
    out = subprocess.run([sys.executable, "-c", _GUI_LIKE, str(photos), str(query_photo)],
                         env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    remote = json.loads(out.stdout.splitlines()[-1])
    assert remote["heavy"] == []
    assert remote["count"] == 40
    # The same library searched in-process: same model id (nothing re-embedded), same answers.
    local = Library(home=home)
    try:
        assert local.store.vector_count() == 40
        assert [r.path for r in local.search.run([Term(text="a dog on a beach")], 5)] == remote["text"]
        assert [r.path for r in local.search.run([Term(photo=str(query_photo))], 5)] == remote["photo"]
        assert remote["photo"][0] == str(query_photo)
    finally:
        local.close()


def test_a_helper_that_died_is_replaced_and_the_app_goes_on(home, config, photos):
    home.mkdir(parents=True)
    save_config(home, config)
    engine = Library(home=home, model_process=True)
    try:
        engine.updates.index([str(photos)])
        before = [r.path for r in engine.search.run([Term(text="a red car")], 5)]
        embedder = engine.loaded_embedder
        first = embedder.helper_pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while embedder.helper_pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.path for r in engine.search.run([Term(text="a red car")], 5)] == before
        assert embedder.helper_pid not in (None, first)
    finally:
        engine.loaded_embedder.close()
        engine.close()
