"""Captions by the local vision-language model (the real gemma-3-270m with a random-weight
mmproj, through llama.cpp's JSON-schema grammar): always schema-valid, repaired when cut
short, stored by content and searchable by keyword; the caption's own vector (the CLIP text
tower) in its own HNSW index, alone and fused with the image vector."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from mmrag_desktop.understanding import captions
from mmrag_desktop.vlm import structured
from mmrag_desktop.library.ask import describe, quoted
from mmrag_desktop.understanding.captions import CAPTION_SCHEMA, caption_record
from mmrag_desktop.domain.analyses import CAPTION_VERSION
from mmrag_desktop.library.facade import Library
from mmrag_desktop.media.files import file_hash
from mmrag_desktop.domain.query import Term
from mmrag_desktop.vlm.structured import StructuredAnswer, parse
from mmrag_desktop.vlm.model import VisionLanguageModel
from conftest import coco_photos

COCO_CAPTIONS = "../shared/data/coco-mini/captions.jsonl"


def _library(engine: Library, folder, count: int) -> list:
    folder.mkdir()
    photos = []
    for photo in coco_photos()[:count]:
        shutil.copyfile(photo, folder / photo.name)
        photos.append(folder / photo.name)
    engine.folders.add(folder)
    engine.updates.index()
    return photos


def _captioning(engine: Library, gemma, mmproj) -> VisionLanguageModel:
    config = engine.config
    config.understand = ["captions"]
    config.vlm_model, config.vlm_mmproj, config.vlm_context = str(gemma), str(mmproj), 2048
    return VisionLanguageModel(config)


def _stored(engine: Library) -> dict[str, dict]:
    return {digest: json.loads(data) for digest, data in engine.store.understanding_rows("caption")}


def _valid(value: dict) -> None:
    jsonschema.validate({k: value[k] for k in CAPTION_SCHEMA["properties"]}, CAPTION_SCHEMA)


@pytest.fixture(autouse=True)
def _llama():
    pytest.importorskip("llama_cpp", reason="the vlm extra (llama-cpp-python) is needed")


def test_captions_are_schema_valid_json_stored_by_content_and_searchable(
        engine, tmp_path, gemma, mmproj):
    photos = _library(engine, tmp_path / "photos", 4)
    vlm = _captioning(engine, gemma, mmproj)
    try:
        report = engine.updates.understand(vlm=vlm)
    finally:
        vlm.unload()
    assert report.analysed == {"captions": 4} and not report.failed, report
    stored = _stored(engine)
    assert set(stored) == {file_hash(p) for p in photos}
    for value in stored.values():  # 100 % schema-valid: the grammar and the repair
        _valid(value)
        assert value["model"] == gemma.name
    digest = file_hash(photos[0])
    caption = stored[digest]
    summary = engine.search.understood(digest)
    assert summary["caption"] == caption["caption"] and caption["caption"]
    # searchable by its words: the caption field says why
    word = next(w for w in caption["caption"].split() if len(w.strip(".,")) >= 3).strip(".,")
    found = engine.search.run([Term(word)], k=10, mode="keyword")
    assert str(photos[0]) in [r.path for r in found]
    assert {r.meta["matched"]["field"] for r in found if r.path == str(photos[0])} == {"caption"}
    # Ask's prompt line for the photo carries its caption and tags
    line = describe(1, next(r for r in found if r.path == str(photos[0])))
    assert f"caption {quoted(caption['caption'])}" in line
    assert ("tags " in line) == bool(caption["tags"])
    # nothing is left to do: a second pass asks the model nothing
    assert engine.updates.understand(vlm=vlm).analysed == {"captions": 0}


def test_output_cut_at_the_token_limit_is_repaired_never_stored_malformed(
        engine, tmp_path, gemma, mmproj, monkeypatch):
    _library(engine, tmp_path / "photos", 3)
    monkeypatch.setattr(captions, "CAPTION_TOKENS", 16)  # cut inside the JSON, both attempts
    vlm = _captioning(engine, gemma, mmproj)
    try:
        report = engine.updates.understand(vlm=vlm)
    finally:
        vlm.unload()
    assert report.analysed == {"captions": 3} and not report.failed
    stored = _stored(engine)
    assert len(stored) == 3
    for value in stored.values():
        _valid(value)
        assert value["repaired"] is True


def test_parse_repairs_cut_json_and_rejects_what_cannot_be_repaired():
    cut = ('{ "caption": "two dogs in the snow", "tags": [ "winter", "dogs" ], "objects":')
    value, repaired = parse(cut, CAPTION_SCHEMA)
    assert repaired and value == {"caption": "two dogs in the snow", "tags": ["winter", "dogs"],
                                  "objects": [], "text_seen": ""}
    value, repaired = parse('{"caption": "a red bus", "tags": ["bus", "stre', CAPTION_SCHEMA)
    assert repaired and value["tags"] == ["bus", "stre"] and value["caption"] == "a red bus"
    whole = '{"caption": "a cat", "tags": [], "objects": ["cat"], "text_seen": ""}'
    assert parse(whole, CAPTION_SCHEMA) == (json.loads(whole), False)
    assert parse("", CAPTION_SCHEMA) is None
    assert parse('["not", "an", "object"]', CAPTION_SCHEMA) is None
    receipt = structured_receipt_schema()
    assert parse('{"merchant": "Hardware', receipt) is None  # a required number is missing


class _CutFirst:
    """A model whose first answer is cut before a required number (what a small token
    limit does) and whose second is whole: records the token limit of each request."""

    def __init__(self):
        self.limits = []

    def answer(self, messages, cancel=None, max_tokens=None, schema=None):
        self.limits.append(max_tokens)
        return '{"merchant": "Hardware' if len(self.limits) == 1 else \
            '{"merchant": "Hardware Haven", "total": 18.74}'


def test_an_answer_that_cannot_be_repaired_is_asked_again_with_more_tokens():
    model = _CutFirst()
    answer = structured.generate(model, [], structured_receipt_schema(), 100)
    assert model.limits == [100, 200]
    assert answer.attempts == 2 and not answer.repaired
    assert answer.value == {"merchant": "Hardware Haven", "total": 18.74}


def structured_receipt_schema() -> dict:
    return {"type": "object", "properties": {"merchant": {"type": "string"},
                                             "total": {"type": "number"}},
            "required": ["merchant", "total"]}


def test_an_answer_that_stays_invalid_is_recorded_as_failed_not_stored(
        engine, tmp_path, gemma, mmproj, monkeypatch):
    photos = _library(engine, tmp_path / "photos", 1)
    monkeypatch.setattr(structured, "parse", lambda raw, schema: None)
    vlm = _captioning(engine, gemma, mmproj)
    try:
        report = engine.updates.understand(vlm=vlm)
    finally:
        vlm.unload()
    assert [path for path, _ in report.failed] == [str(photos[0])]
    assert "not valid JSON" in report.failed[0][1]
    [value] = _stored(engine).values()
    assert set(value) == {"error"}  # no caption: nothing malformed is searchable
    assert engine.search.understood(file_hash(photos[0])) == {}


def test_captions_without_a_vision_projector_say_why_and_do_not_start(engine, tmp_path, gemma):
    _library(engine, tmp_path / "photos", 1)
    vlm = _captioning(engine, gemma, "")
    report = engine.updates.understand(vlm=vlm)
    assert report.analysed == {"captions": 0}
    assert "mmproj" in report.unavailable["captions"]
    assert not vlm.loaded


# --- the caption's own vector ------------------------------------------------------------------

def _coco_captions() -> dict[str, str]:
    with open(COCO_CAPTIONS) as lines:
        return {row["file"]: row["captions"][0] for row in map(json.loads, lines)}


def test_the_caption_vector_has_its_own_index_searched_alone_or_fused(engine, tmp_path,
                                                                     monkeypatch, capsys):
    """COCO's human captions stand in for a good VLM's (the one here has random image
    weights): each caption as a query finds its photo first by the caption vector."""
    photos = _library(engine, tmp_path / "photos", 30)
    human = _coco_captions()
    engine.store.put_understanding("caption", CAPTION_VERSION, [
        (file_hash(p), *caption_record(StructuredAnswer(
            {"caption": human[p.name], "tags": [], "objects": [], "text_seen": ""}, False, 1),
            "coco")) for p in photos])

    def rank1(field: str) -> float:
        hits = [engine.search.run([Term(human[p.name])], k=5, mode="semantic", field=field)
                for p in photos]
        return sum(bool(h) and h[0].path == str(p) for h, p in zip(hits, photos)) / len(photos)

    rates = {field: rank1(field) for field in ("image", "caption", "both")}
    with capsys.disabled():
        print("\ncaption query rank-1 by field (random CLIP weights): " +
              ", ".join(f"{f} {r:.0%}" for f, r in rates.items()))
    assert rates["caption"] == 1.0
    [hit] = engine.search.run([Term(human[photos[3].name])], k=1, mode="semantic", field="caption")
    # the same text, embedded in a batch and alone: equal up to the precision's rounding
    assert hit.meta["caption_score"] == pytest.approx(1.0, abs=5e-3)
    assert hit.meta["caption"] == human[photos[3].name]

    # saved beside the library: a new engine searches without embedding the captions again
    encoded = []
    reopened = Library(engine.home, config=engine.config, random_weights=False)
    real = reopened.embedder.encode_texts
    monkeypatch.setattr(reopened.embedder, "encode_texts",
                        lambda texts: encoded.append(len(texts)) or real(texts))
    [again] = reopened.search.run([Term(human[photos[3].name])], k=1, field="caption")
    assert again.path == str(photos[3]) and encoded == [1]  # the query only

    # a deleted photo's caption leaves the index; a changed caption is embedded again
    photos[3].unlink()
    reopened.updates.index()
    reopened.updates.understand()
    assert len(reopened.captions()) == 29
    assert str(photos[3]) not in [r.path for r in reopened.search.run(
        [Term(human[photos[3].name])], k=5, field="caption")]
    reopened.store.put_understanding("caption", CAPTION_VERSION, [(file_hash(photos[5]), *caption_record(
        StructuredAnswer({"caption": "a purple giraffe juggling teacups", "tags": [],
                          "objects": [], "text_seen": ""}, False, 1), "coco"))])
    [moved] = reopened.search.run([Term("a purple giraffe juggling teacups")], k=1, field="caption")
    assert moved.path == str(photos[5]) and moved.score == pytest.approx(1.0, abs=5e-3)
    # fused with the image vector, the caption's best match joins the image's top-k
    fused = reopened.search.run([Term("a purple giraffe juggling teacups")], k=3, field="both")
    assert str(photos[5]) in [r.path for r in fused]
    assert all("caption_score" not in r.meta for r in reopened.search.run(
        [Term("a purple giraffe juggling teacups")], k=3, field="image"))
    reopened.close()
