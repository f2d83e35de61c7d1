"""Captions and tags by the local vision-language model: the understanding pass's opt-in
``captions`` analysis (slow on a CPU: seconds per photo).

The model writes ``{caption, tags[], objects[], text_seen}`` as JSON held to
:data:`CAPTION_SCHEMA` by llama.cpp's grammar (:mod:`.vlm.structured`). The caption, tags and
objects become searchable words; the caption is also embedded by the CLIP text tower as a
photo's second vector (:mod:`.index.captions`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ..vlm.model import VisionLanguageModel, VLMError, photo_data_uri
from ..vlm.structured import StructuredAnswer, generate

CAPTION_TOKENS = 160  # the first attempt's limit: a sentence and a few words, in JSON
_WORDS = {"type": "string", "maxLength": 40}
CAPTION_SCHEMA = {
    "type": "object",
    "properties": {
        "caption": {"type": "string", "maxLength": 200},
        "tags": {"type": "array", "items": _WORDS, "maxItems": 8},
        "objects": {"type": "array", "items": _WORDS, "maxItems": 8},
        "text_seen": {"type": "string", "maxLength": 200},
    },
    "required": ["caption", "tags", "objects", "text_seen"],
    "additionalProperties": False,
}
"""What a caption holds. The length limits keep a small model from writing until the
token limit (the grammar enforces them)."""
CAPTION_PROMPT = (
    "Describe this photo for a photo search engine, as JSON: \"caption\" is one plain "
    "sentence saying what the photo shows, \"tags\" a few single words for its scene, "
    "activity and mood, \"objects\" the main things visible, \"text_seen\" any writing "
    "legible in it (empty if none).")
NEEDS_MMPROJ = ("captions need a vision-language model that sees photos: set its vision "
                "projector (mmproj) in Ask → Set up…, or mmrag vlm set MODEL.gguf MMPROJ.gguf")


def describe_photo(vlm: VisionLanguageModel, photo: Path,
                   cancel: threading.Event | None = None) -> StructuredAnswer:
    """The caption of *photo*: a :data:`CAPTION_SCHEMA` object.

    Raises:
        VLMError: the model sees no photos (no mmproj) or cannot be used.
        StructuredOutputError: no valid caption came out (see :func:`.vlm.structured.generate`).
        BadImage, OSError: the photo cannot be read.
    """
    if not vlm.sees_images:
        raise VLMError(NEEDS_MMPROJ)
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": photo_data_uri(vlm, photo)}},
        {"type": "text", "text": CAPTION_PROMPT}]}]
    return generate(vlm, messages, CAPTION_SCHEMA, CAPTION_TOKENS, cancel)


def caption_record(answer: StructuredAnswer, model: str) -> tuple[str, str]:
    """(JSON data, searchable text) for a caption made by *model* (its file name): the
    text is the caption, then its tags, objects and the text the model saw, one per line."""
    value = answer.value
    data = value | {"model": model, "repaired": answer.repaired}
    words = [value["caption"], " ".join(value["tags"]), " ".join(value["objects"]),
             value["text_seen"]]
    return json.dumps(data, ensure_ascii=False), "\n".join(w for w in words if w.strip())
