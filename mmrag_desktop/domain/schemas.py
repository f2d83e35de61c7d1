"""Structured extraction's vocabulary: the built-in JSON schemas (a receipt, an invoice, a
business card, a table, a screenshot), what an extraction holds, and its export to CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

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


def kind(name: str) -> str:
    """The understanding kind results of schema *name* are stored under."""
    return f"extracted:{name}"


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


def flatten(value) -> list[tuple[str, str]]:
    """(dotted key, text) for every non-empty scalar in *value* (lists numbered from 1),
    in order: what is searchable and what a person reads of an extraction."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, item) -> None:
        if isinstance(item, dict):
            for key, sub in item.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        elif isinstance(item, list):
            for n, sub in enumerate(item, 1):
                walk(f"{prefix}.{n}", sub)
        elif item not in (None, ""):
            out.append((prefix, str(item)))

    walk("", value)
    return out
