"""JSON that follows a JSON schema, written by the local vision-language model.

llama.cpp's grammar keeps every token the model writes inside the schema (llama-cpp-python
builds the GBNF grammar from the schema: its port of llama.cpp's json-schema-to-grammar),
so the output can only go wrong by being cut short, at the token limit. Cut output is
repaired: ``json_repair`` closes the open strings, arrays and objects, values of the wrong
type are dropped and missing required properties get their type's empty value. Whatever
is still invalid is asked for again with a larger token limit, and never returned
malformed: the result always validates against the schema (``jsonschema``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import json_repair
import jsonschema

from .model import VisionLanguageModel, VLMError

ATTEMPTS = 2  # the first answer, then one more with twice the token limit
_EMPTY = {"string": "", "array": [], "object": {}, "number": None, "integer": None,
          "boolean": None, "null": None}


class StructuredOutputError(VLMError):
    """The model's output did not become JSON valid for the schema, even repaired and
    asked again; nothing was kept."""


@dataclass
class StructuredAnswer:
    """What the model wrote (``value``, valid for the schema), whether it had to be
    ``repaired``, and how many ``attempts`` it took."""

    value: dict
    repaired: bool
    attempts: int


def check_schema(schema: dict) -> None:
    """Raises ValueError when *schema* is not a JSON schema for an object."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"not a valid JSON schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError('the schema must describe an object ("type": "object")')


def _fit(value, schema: dict):
    """*value* with what does not fit *schema* left out (wrong types, properties that
    are not allowed) and missing required properties set to their type's empty value;
    a value that cannot fit at all becomes the empty value."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            value = {}
        properties = schema.get("properties", {})
        out = {}
        for name, item in value.items():
            if name in properties:
                out[name] = _fit(item, properties[name])
            elif schema.get("additionalProperties", True) is not False:
                out[name] = item
        for name in schema.get("required", []):
            if out.get(name) is None and name in properties:
                out[name] = _EMPTY.get(properties[name].get("type"))
        return {k: v for k, v in out.items() if v is not None or k in schema.get("required", [])}
    if kind == "array":
        if not isinstance(value, list):
            return []
        item_schema = schema.get("items", {})
        items = [_fit(item, item_schema) for item in value]
        return [item for item in items if item is not None][:schema.get("maxItems")]
    if kind == "string":
        return value[:schema.get("maxLength")] if isinstance(value, str) else ""
    if kind in ("number", "integer"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (int(value) if kind == "integer" else value) if ok else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return value


def parse(raw: str, schema: dict) -> tuple[dict, bool] | None:
    """The JSON object in *raw*, valid for *schema*, and whether it was repaired; None
    when even the repaired text does not validate (no object at all, a required value
    that has no empty form)."""
    try:
        value = json.loads(raw)
        jsonschema.validate(value, schema)
        return value, False
    except (ValueError, jsonschema.ValidationError):
        pass
    repaired = json_repair.loads(raw)
    if not isinstance(repaired, dict) or not repaired:
        return None
    value = _fit(repaired, schema)
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return None
    return value, True


def generate(vlm: VisionLanguageModel, messages: list[dict], schema: dict, max_tokens: int,
             cancel: threading.Event | None = None) -> StructuredAnswer:
    """Ask *vlm* for JSON following *schema* (a JSON schema for an object).

    Args:
        messages: the chat (OpenAI-style, images as ``data:`` URIs).
        max_tokens: the first attempt's token limit; a retry doubles it.

    Raises:
        StructuredOutputError: no attempt gave valid JSON (or *cancel* was set).
        VLMError, VLMCrashedError: the model cannot be used (see :mod:`.vlm.model`).
    """
    for attempt in range(1, ATTEMPTS + 1):
        raw = vlm.answer(messages, cancel=cancel, max_tokens=max_tokens * attempt,
                         schema=schema)
        if cancel is not None and cancel.is_set():
            break
        parsed = parse(raw, schema)
        if parsed is not None:
            return StructuredAnswer(parsed[0], parsed[1], attempt)
    raise StructuredOutputError(
        "the model's answer was not valid JSON for the schema, even repaired and asked "
        f"again ({ATTEMPTS} attempts): nothing was kept")

