"""Structured extraction by the local vision-language model (the real gemma-3-270m through
llama.cpp's JSON-schema grammar): a photographed receipt read by the real OCR and given to
the text-only model, a photo seen through a random-weight mmproj; always schema-valid,
stored by content, searchable, exported as JSON and CSV, from the CLI."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest
from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.domain.schemas import SCHEMAS, to_csv
from mmrag_desktop.understanding.extraction import ExtractionError, load_schema
from mmrag_desktop.media.files import file_hash
from mmrag_desktop.domain.query import Term
from mmrag_desktop.vlm.model import VisionLanguageModel
from conftest import coco_photos, render_receipt

@pytest.fixture(autouse=True)
def _llama():
    pytest.importorskip("llama_cpp", reason="the vlm extra (llama-cpp-python) is needed")


def _model(engine, gemma, mmproj="") -> VisionLanguageModel:
    engine.config.vlm_model, engine.config.vlm_mmproj = str(gemma), str(mmproj)
    engine.config.vlm_context = 2048
    return VisionLanguageModel(engine.config)


def test_a_text_only_model_extracts_a_receipt_from_its_recognised_text(engine, tmp_path,
                                                                      gemma, capsys,
                                                                      monkeypatch):
    folder = tmp_path / "papers"
    folder.mkdir()
    render_receipt(folder / "receipt.jpg")
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(folder / "sky.jpg")
    engine.config.understand = ["text"]
    engine.folders.add(folder)
    engine.updates.index()
    engine.updates.understand()
    assert "HAVEN" in engine.search.understood(file_hash(folder / "receipt.jpg"))["text"].upper()
    vlm = _model(engine, gemma)
    prompts = []
    answer = vlm.answer
    monkeypatch.setattr(vlm, "answer", lambda messages, **kw: prompts.append(
        messages[0]["content"]) or answer(messages, **kw))
    try:
        found = engine.updates.extract(folder / "receipt.jpg", "receipt", vlm)
        with pytest.raises(ExtractionError, match="no text was recognised"):
            engine.updates.extract(folder / "sky.jpg", "receipt", vlm)
    finally:
        vlm.unload()
    with capsys.disabled():
        print("\nreceipt extracted by gemma-3-270m from OCR text:", json.dumps(found.value))
    jsonschema.validate(found.value, SCHEMAS["receipt"])
    assert not found.stored
    assert isinstance(prompts[0], str) and "HAVEN" in prompts[0].upper()  # the OCR text
    # stored by content: asked again, the library answers (no model is loaded)
    again = engine.updates.extract(folder / "receipt.jpg", "receipt", VisionLanguageModel(engine.config))
    assert again.stored and again.value == found.value
    [listed] = engine.updates.extracted("receipt")
    assert listed.photo == str(folder / "receipt.jpg") and listed.value == found.value
    assert engine.search.understood(file_hash(folder / "receipt.jpg"))["extracted"].startswith(
        "receipt: ")
    # CSV: one line per item (or one for the receipt when the model found none)
    rows = list(csv.DictReader(io.StringIO(to_csv([(listed.photo, listed.value)]))))
    assert len(rows) == max(1, len(found.value.get("items", [])))
    assert {row["photo"] for row in rows} == {listed.photo}
    assert "merchant" in rows[0]


def test_an_extraction_from_the_photo_is_searchable_and_exported_by_the_cli(
        engine, tmp_path, gemma, mmproj, capsys):
    folder = tmp_path / "cards"
    folder.mkdir()
    photo = folder / "card.jpg"
    photo.write_bytes(coco_photos()[1].read_bytes())
    engine.folders.add(folder)
    engine.updates.index()
    vlm = _model(engine, gemma, mmproj)
    try:
        found = engine.updates.extract(photo, "business_card", vlm)
    finally:
        vlm.unload()
    jsonschema.validate(found.value, SCHEMAS["business_card"])
    word = next(w for _, w in _words(found.value) if len(w) >= 3)
    hits = engine.search.run([Term(word)], k=5, mode="keyword")
    assert [h.path for h in hits] == [str(photo)]
    assert hits[0].meta["matched"]["field"] == "extracted"
    # the CLI exports what is stored, as JSON and CSV; asking again reads the library
    assert main(["extract", "--schema", "business_card"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == [{"photo": str(photo), "schema": "business_card", **found.value}]
    out = tmp_path / "cards.csv"
    assert main(["extract", "--schema", "business_card", str(photo), "--format", "csv",
                 "--out", str(out)]) == 0
    assert "(stored)" in capsys.readouterr().err
    [row] = list(csv.DictReader(out.open()))
    assert row["photo"] == str(photo) and row["name"] == found.value["name"]
    assert main(["extract", "--schema", "poem", str(photo)]) == 2
    assert "unknown schema 'poem'" in capsys.readouterr().err
    assert main(["extract", "--schema", "receipt", str(tmp_path / "elsewhere.jpg")]) == 2
    assert "not in the library" in capsys.readouterr().err


def _words(value) -> list[tuple[str, str]]:
    from mmrag_desktop.domain.schemas import flatten
    return [(k, w) for k, text in flatten(value) for w in text.split()]


def test_a_user_schema_file_is_checked(tmp_path):
    good = tmp_path / "recipe.json"
    good.write_text(json.dumps({"type": "object", "properties": {
        "dish": {"type": "string"}, "minutes": {"type": "integer"}}, "required": ["dish"]}))
    assert load_schema(str(good))[0] == "recipe"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "object", "properties": {"x": {"type": "nonsense"}}}))
    with pytest.raises(ExtractionError, match="not a valid JSON schema"):
        load_schema(str(bad))
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps({"type": "array"}))
    with pytest.raises(ExtractionError, match="must describe an object"):
        load_schema(str(listing))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ExtractionError):
        load_schema(str(tmp_path / "broken.json"))


def test_every_built_in_schema_is_valid_and_becomes_a_grammar():
    from llama_cpp.llama_grammar import LlamaGrammar

    from mmrag_desktop.understanding.captions import CAPTION_SCHEMA
    from mmrag_desktop.vlm.structured import check_schema

    for schema in [*SCHEMAS.values(), CAPTION_SCHEMA]:
        check_schema(schema)
        assert LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
