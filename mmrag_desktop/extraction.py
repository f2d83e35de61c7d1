"""Structured extraction: a receipt's merchant, items and total, an invoice's lines, a
business card's contact, a table's rows, a screenshot's app and message — as JSON that
follows a built-in or a user's JSON schema, written by the local vision-language model
through llama.cpp's grammar (:mod:`.structured`).

A model that sees photos reads the photo; a text-only one reads the text the understanding
pass recognised in it (:mod:`.ocr`), which is often enough for a receipt. Results are
stored by content hash as the kind ``extracted:<schema>`` (searchable by keyword through
the ``extracted`` field) and export to JSON, or CSV with one line per row of the schema's
table (a receipt's items, a table's rows).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from .structured import StructuredAnswer, check_schema, flatten, generate
from .vlm import VisionLanguageModel, photo_data_uri

EXTRACTION_VERSION = 1
EXTRACTION_TOKENS = 384  # the first attempt's limit: a long receipt's items fit
_TEXT = {"type": "string", "maxLength": 120}
_MONEY = {"type": "number"}
_CURRENCY = {"type": "string", "maxLength": 8}


def _lines(text: str, amount: str) -> dict:
    """A bill's lines: up to 40 of {*text*, quantity, *amount*}."""
    return {"type": "array", "maxItems": 40, "items": {
        "type": "object", "properties": {text: _TEXT, "quantity": _MONEY, amount: _MONEY},
        "required": [text, amount], "additionalProperties": False}}


SCHEMAS: dict[str, dict] = {
    "receipt": {
        "type": "object",
        "properties": {"merchant": _TEXT, "date": _TEXT, "currency": _CURRENCY,
                       "items": _lines("name", "price"), "total": _MONEY},
        "required": ["merchant"], "additionalProperties": False,
    },
    "invoice": {
        "type": "object",
        "properties": {"issuer": _TEXT, "customer": _TEXT, "invoice_number": _TEXT,
                       "date": _TEXT, "currency": _CURRENCY,
                       "lines": _lines("description", "amount"), "total": _MONEY},
        "required": ["issuer"], "additionalProperties": False,
    },
    "business_card": {
        "type": "object",
        "properties": {"name": _TEXT, "title": _TEXT, "company": _TEXT, "phone": _TEXT,
                       "email": _TEXT, "website": _TEXT, "address": _TEXT},
        "required": ["name"], "additionalProperties": False,
    },
    "table": {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "maxItems": 12, "items": _TEXT},
            "rows": {"type": "array", "maxItems": 60, "items": {
                "type": "array", "maxItems": 12, "items": _TEXT}},
        },
        "required": ["columns", "rows"], "additionalProperties": False,
    },
    "screenshot": {
        "type": "object",
        "properties": {"app": _TEXT, "title": _TEXT, "summary": {"type": "string",
                                                                 "maxLength": 300},
                       "people": {"type": "array", "maxItems": 10, "items": _TEXT},
                       "dates": {"type": "array", "maxItems": 10, "items": _TEXT}},
        "required": ["summary"], "additionalProperties": False,
    },
}
"""The built-in schemas, by name (JSON schemas of objects). Few properties are required:
llama.cpp's grammar writes required ones first, so an answer cut at the token limit in a
long list of items still repairs to a valid object (the total is then missing, not made up)."""
PROMPT = (
    "Extract the {name} shown in this photo as JSON with the fields of the schema. Copy "
    "names and numbers exactly as written; leave out what is not there.")
TEXT_PROMPT = (
    "Extract the {name} from this text, read from a photo by OCR (it may hold misread "
    "letters), as JSON with the fields of the schema. Copy names and numbers exactly as "
    "written; leave out what is not there.\n\nText:\n{text}")
MAX_TEXT_CHARS = 3000  # recognised text given to a text-only model


@dataclass
class Extraction:
    """What was extracted from ``photo`` by schema ``name``: ``value`` (valid for the
    schema); ``stored`` when it was read from the library rather than made now, and
    whether the model's output had to be ``repaired``."""

    photo: str
    name: str
    value: dict
    stored: bool = False
    repaired: bool = False


class ExtractionError(ValueError):
    """An extraction cannot be asked for: an unknown schema, a user schema that is not
    valid, or a photo a text-only model cannot read (no text recognised in it)."""


def load_schema(spec: str) -> tuple[str, dict]:
    """(name, schema) for a built-in schema's name (:data:`SCHEMAS`) or the path of a
    JSON schema file (named by its file name).

    Raises:
        ExtractionError: unknown name, unreadable file, or not a JSON schema of an object.
    """
    if spec in SCHEMAS:
        return spec, SCHEMAS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ExtractionError(f"unknown schema {spec!r}: use one of {', '.join(SCHEMAS)} or "
                              "the path of a JSON schema file")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        check_schema(schema)
    except (OSError, ValueError) as exc:
        raise ExtractionError(f"{path}: {exc}") from None
    return path.stem, schema


def kind(name: str) -> str:
    """The understanding kind results of schema *name* are stored under."""
    return f"extracted:{name}"


def extract(vlm: VisionLanguageModel, photo: Path, name: str, schema: dict,
            recognised_text: str = "", cancel: threading.Event | None = None
            ) -> StructuredAnswer:
    """Fill *schema* from *photo*: from the photo itself where *vlm* sees images, else
    from *recognised_text* (the photo's OCR text).

    Raises:
        ExtractionError: a text-only model and no recognised text.
        StructuredOutputError: no valid JSON came out (see :func:`.structured.generate`).
        VLMError: the model cannot be used.
        BadImage, OSError: the photo cannot be read.
    """
    label = name.replace("_", " ")
    if vlm.sees_images:
        content = [{"type": "image_url", "image_url": {"url": photo_data_uri(vlm, photo)}},
                   {"type": "text", "text": PROMPT.format(name=label)}]
    elif recognised_text.strip():
        content = TEXT_PROMPT.format(name=label, text=recognised_text[:MAX_TEXT_CHARS])
    else:
        raise ExtractionError(
            f"the model cannot see photos (no mmproj) and no text was recognised in "
            f"{photo.name}: set a vision projector, or let the understanding pass read it")
    return generate(vlm, [{"role": "user", "content": content}], schema, EXTRACTION_TOKENS,
                    cancel)


def record(answer: StructuredAnswer, name: str, model: str) -> tuple[str, str]:
    """(JSON data, searchable text) to store: the value with the schema's name, the
    model's file name and whether it was repaired; the text is every value found."""
    data = {"value": answer.value, "schema": name, "model": model, "repaired": answer.repaired}
    return (json.dumps(data, ensure_ascii=False),
            "\n".join(text for _, text in flatten(answer.value)))


def table_of(value: dict) -> str | None:
    """The property holding an extraction's table — the first list of objects or of
    lists (a receipt's ``items``, a table's ``rows``) — or None."""
    return next((name for name, item in value.items() if isinstance(item, list) and item
                 and all(isinstance(row, (dict, list)) for row in item)), None)


def to_csv(extracted: list[tuple[str, dict]]) -> str:
    """CSV of (photo path, value) pairs: one line per row of the value's table
    (:func:`table_of`, with the photo and the value's other fields repeated on each), or
    one line per photo without one. A table's ``columns`` name its rows' cells."""
    lines: list[dict[str, str]] = []
    for photo, value in extracted:
        table = table_of(value)
        outer = {"photo": photo} | {key: text for key, text in flatten(
            {k: v for k, v in value.items() if k != table and k != "columns"})}
        rows = value[table] if table else []
        if not rows:
            lines.append(outer)
            continue
        names = value.get("columns") or []
        for row in rows:
            if isinstance(row, list):
                row = {(names[i] if i < len(names) and names[i] else f"column {i + 1}"): cell
                       for i, cell in enumerate(row)}
            lines.append(outer | dict(flatten(row)))
    columns = list(dict.fromkeys(key for line in lines for key in line))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    return out.getvalue()
