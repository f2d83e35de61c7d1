"""Structured extraction: a receipt's merchant, items and total, an invoice's lines, a
business card's contact, a table's rows, a screenshot's app and message — as JSON that
follows a built-in or a user's JSON schema, written by the local vision-language model
through llama.cpp's grammar (:mod:`.vlm.structured`).

A model that sees photos reads the photo; a text-only one reads the text the understanding
pass recognised in it (:mod:`.understanding.ocr`), which is often enough for a receipt. Results are
stored by content hash as the kind ``extracted:<schema>`` (searchable by keyword through
the ``extracted`` field) and export to JSON, or CSV with one line per row of the schema's
table (a receipt's items, a table's rows).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ..core.errors import MmragError
from ..domain.schemas import SCHEMAS, flatten
from ..vlm.model import VisionLanguageModel, photo_data_uri
from ..vlm.structured import StructuredAnswer, check_schema, generate

EXTRACTION_VERSION = 1
EXTRACTION_TOKENS = 384  # the first attempt's limit: a long receipt's items fit


PROMPT = (
    "Extract the {name} shown in this photo as JSON with the fields of the schema. Copy "
    "names and numbers exactly as written; leave out what is not there.")
TEXT_PROMPT = (
    "Extract the {name} from this text, read from a photo by OCR (it may hold misread "
    "letters), as JSON with the fields of the schema. Copy names and numbers exactly as "
    "written; leave out what is not there.\n\nText:\n{text}")
MAX_TEXT_CHARS = 3000  # recognised text given to a text-only model


class ExtractionError(MmragError, ValueError):
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


def extract(vlm: VisionLanguageModel, photo: Path, name: str, schema: dict,
            recognised_text: str = "", cancel: threading.Event | None = None
            ) -> StructuredAnswer:
    """Fill *schema* from *photo*: from the photo itself where *vlm* sees images, else
    from *recognised_text* (the photo's OCR text).

    Raises:
        ExtractionError: a text-only model and no recognised text.
        StructuredOutputError: no valid JSON came out (see :func:`.vlm.structured.generate`).
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

