"""Precision chosen by measurement: the auto choice keeps the fidelity floor, is cached per
model and machine, and a library indexed in one precision is searched in another without
re-embedding."""

from __future__ import annotations

import json

import pytest
import torch

from mmrag_desktop.clip import precision
from mmrag_desktop.core.config import ConfigError, save_config
from mmrag_desktop.clip.embedder import Embedder
from mmrag_desktop.library.facade import Library
from mmrag_desktop.domain.query import Term
from conftest import coco_photos


def test_auto_keeps_the_fidelity_floor_picks_the_fastest_and_is_cached(home, config,
                                                                       monkeypatch):
    embedder = Embedder(config, home)
    choice = embedder.precision
    trials = {t.precision: t for t in choice.trials}
    assert list(trials) == precision.candidates(torch.device(embedder.device))  # every candidate timed
    assert trials["fp32"].image_cosine > 0.99999  # the reference
    qualifying = [t for t in choice.trials if t.image_cosine >= precision.FIDELITY_FLOOR]
    assert trials[choice.image] == max(qualifying, key=lambda t: t.images_per_s)
    assert trials[choice.text].text_cosine >= precision.FIDELITY_FLOOR
    cache = json.loads((home / "models" / "precision.json").read_text())
    assert [entry["image"] for entry in cache.values()] == [choice.image]

    def measure(*args):
        raise AssertionError("measured again")
    monkeypatch.setattr(precision, "measure", measure)
    again = Embedder(config, home)
    assert (again.precision.image, again.precision.text) == (choice.image, choice.text)


def test_a_fast_candidate_below_the_floor_is_never_chosen(home, config, monkeypatch):
    # int8 made lossy on purpose (its Linear weights scrambled after quantising, as a
    # broken kernel would): measured, it falls below the floor, and auto passes it over
    real_convert = precision.convert

    def lossy(module, name):
        module = real_convert(module, name)
        if name == "int8":
            for sub in module.modules():
                if type(sub).__name__ == "Linear" and hasattr(sub, "_packed_params"):
                    weight, bias = sub._packed_params._weight_bias()
                    sub.set_weight_bias(weight.flip(0), bias)
        return module
    monkeypatch.setattr(precision, "convert", lossy)
    choice = Embedder(config, home).precision
    int8 = next(t for t in choice.trials if t.precision == "int8")
    assert int8.image_cosine < precision.FIDELITY_FLOOR
    assert choice.image != "int8"
    # and the rule itself, on figures where the lossy candidate is by far the fastest
    trials = [precision.Trial("fp32", 10, 1.0, 5.0, 1.0),
              precision.Trial("bf16", 30, 0.9999, 2.0, 0.9985),
              precision.Trial("int8", 90, 0.95, 1.0, 0.95)]
    picked = precision.pick(trials)
    assert (picked.image, picked.text) == ("bf16", "fp32")


def test_a_library_indexed_in_one_precision_is_searched_in_another(home, config, photos):
    home.mkdir(parents=True)
    config.precision = "fp32"
    save_config(home, config)
    fp32 = Library(home=home)
    fp32.updates.index([str(photos)])
    model_id = fp32.embedder.model_id
    example = photos / coco_photos()[7].name
    assert fp32.search.run([Term(photo=str(example))], k=1)[0].path == str(example)
    fp32.close()

    config.precision = "bf16"
    save_config(home, config)
    bf16 = Library(home=home)
    assert bf16.embedder.precision.image == "bf16" and bf16.embedder.model_id == model_id
    report = bf16.updates.index([str(photos)])
    assert (report.embedded, report.unchanged) == (0, 40)  # nothing re-embedded
    best = bf16.search.run([Term(photo=str(example))], k=1)[0]
    assert best.path == str(example) and best.score > 0.99
    bf16.close()


def test_a_precision_the_device_lacks_is_a_clear_error(home, config):
    config.precision = "fp16"
    with pytest.raises(ConfigError, match="precision fp16 is not available on cpu"):
        Embedder(config, home).encode_texts(["a dog"])
    config.precision = "fp64"
    with pytest.raises(ConfigError, match="precision must be"):
        config.validate()
