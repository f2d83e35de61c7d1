"""Questions answered by the local vision-language model: about one photo, or about the whole
library (multimodal retrieval-augmented generation, RAG).

For a library question the engine's search picks the top-k photos (honouring filters), the
model sees the best few (downscaled to its input size) with their metadata, says for each
whether it is relevant and why, and answers citing photos as [1], [2], …; only photos it
accepted as relevant are shown (or, if it judged none, the ones it cited). Follow-up
questions continue the same conversation over the same photos. The prompt layout follows the usual RAG recipe (numbered sources,
answer with citations; Lewis et al., 2020, arXiv:2005.11401), with images as sources.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from ..core.paths import display_path
from ..core.text import clock, elide
from ..domain.answers import Answer, parse_citations, parse_judgements
from ..domain.concepts import TAGGED
from ..domain.query import Filters, Result, Term
from ..media.files import BadImage
from ..vlm.model import ContextFullError, VisionLanguageModel, VLMError, photo_data_uri
from .facade import Library

INSTRUCTIONS = (
    "You answer questions about the user's own photos. Below are {n} numbered photos from "
    "their library with what is known about each. First judge every photo, one line each, "
    "exactly like:\n"
    "[1] relevant: yes - a dog on a beach\n"
    "[2] relevant: no - an indoor kitchen\n"
    "Then write 'Answer:' and answer the question using only the relevant photos, citing "
    "them by number like [1]. If none is relevant, say so."
)
PHOTO_INSTRUCTIONS = "Answer the question about this photo. Be brief and concrete."
ABOUT_PHOTO_INSTRUCTIONS = (
    "You answer questions about the user's photo, shown first, helped by {n} numbered photos "
    "from their library that look related, with what is known about each. First describe "
    "the user's photo in one line starting 'Photo:'. Then judge every numbered photo, one "
    "line each, exactly like:\n"
    "[1] relevant: yes - the same dog, on a beach\n"
    "[2] relevant: no - an indoor kitchen\n"
    "Then write 'Answer:' and answer the question about the user's photo, citing the "
    "relevant numbered photos like [1] where they help."
)

NO_MMPROJ = ("the model has no vision projector (mmproj) set, so it cannot see photos: choose "
             "one in File → Set up Ask…, or mmrag vlm set MODEL.gguf MMPROJ.gguf")


FIELD_CHARS = 80
"""The longest piece of metadata (a file or folder name, a camera) put in a prompt: a
50 kB EXIF field would otherwise fill the model's context."""
TEXT_CHARS = 300
"""The most of a photo's recognised text put in a prompt (a receipt's lines, a sign)."""

_LINE_BREAKS = {"\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029"}


WHEN = re.compile(r"\b(when|last|latest|most recent|first|earliest)\b", re.IGNORECASE)
"""A question about when: its photos are chosen by date (see :meth:`Conversation._by_date`)."""
FIRST = re.compile(r"\b(first|earliest)\b", re.IGNORECASE)


def quoted(text: str, limit: int = FIELD_CHARS) -> str:
    """*text* as one quoted, escaped line of at most *limit* characters: it can neither
    end the line (no newline survives) nor pass for the app's own format."""
    out = json.dumps(elide(text, limit), ensure_ascii=False)  # escapes quotes, backslashes, C0 controls
    for char, escape in _LINE_BREAKS.items():  # breaks str.splitlines() also splits on
        out = out.replace(char, escape)
    return out


def describe(number: int, result: Result) -> str:
    """One photo's line for the prompt: number, file, folder, date taken, camera, place
    (its name where the understanding pass found it, else the coordinates), its caption
    and tags, the text recognised in it (up to :data:`TEXT_CHARS`), what was extracted
    from it, a video's length and moment, the named people in it and the personal
    concepts it shows; every text
    field quoted and capped (see :func:`quoted`)."""
    meta = result.meta
    parts = [f"[{number}] file {quoted(display_path(os.path.basename(result.path)))}",
             f"folder {quoted(display_path(os.path.basename(os.path.dirname(result.path))))}"]
    if meta.get("taken_at"):
        parts.append(f"taken {quoted(meta['taken_at'].replace('T', ' '))}")
    camera = " ".join(filter(None, [meta.get("camera_make"), meta.get("camera_model")]))
    if camera:
        parts.append(f"camera {quoted(camera)}")
    if meta.get("place"):
        parts.append(f"place {quoted(meta['place'])}")
    elif meta.get("gps_lat") is not None and meta.get("gps_lon") is not None:
        parts.append(f"place {meta['gps_lat']:.4f}, {meta['gps_lon']:.4f}")
    if meta.get("caption"):
        parts.append(f"caption {quoted(meta['caption'])}")
    if meta.get("tags"):
        parts.append(f"tags {quoted(meta['tags'])}")
    if meta.get("text"):
        parts.append(f"text in the photo {quoted(meta['text'], TEXT_CHARS)}")
    if meta.get("extracted"):
        parts.append(f"extracted {quoted(meta['extracted'], TEXT_CHARS)}")
    if meta.get("duration") is not None:
        moment = f", the frame shown at {clock(meta['moment'])}" if "moment" in meta else ""
        parts.append(f"a video of {clock(meta['duration'])}{moment}")
    if meta.get("people"):
        parts.append(f"people {quoted(', '.join(meta['people']))}")
    shows = [name for name, p in meta.get("concepts", {}).items() if p >= TAGGED]
    if shows:
        parts.append(f"shows {quoted(', '.join(shows))}")
    return ", ".join(parts)


def build_messages(question: str, candidates: list[Result], images: list[str | None],
                   history: list[dict], subject: tuple[str, str] | None = None) -> list[dict]:
    """The chat for a library question: one user turn with the numbered photos (image
    parts where *images* has a data URI), their metadata and the instructions, then the
    earlier turns of this conversation (*history*), then *question*. With *subject* (the
    photo asked about: its file name and data URI) that photo comes first, and the
    numbered ones are there to help answer about it."""
    if history:
        return history + [{"role": "user", "content": question}]
    if subject is None:
        content: list[dict] = [{"type": "text",
                                "text": INSTRUCTIONS.format(n=len(candidates))}]
    else:
        name, uri = subject
        content = [{"type": "text", "text": ABOUT_PHOTO_INSTRUCTIONS.format(n=len(candidates))},
                   {"type": "image_url", "image_url": {"url": uri}},
                   {"type": "text", "text": f"The user's photo: file {quoted(name)}"}]
    for number, (result, image) in enumerate(zip(candidates, images), 1):
        if image is not None:
            content.append({"type": "image_url", "image_url": {"url": image}})
        content.append({"type": "text", "text": describe(number, result)})
    content.append({"type": "text", "text": f"Question: {question}"})
    return [{"role": "user", "content": content}]


class Conversation:
    """Questions about the library, or about one *photo* helped by the library's photos
    that look like it, with follow-ups over the same photos.

    Args:
        engine: the library (retrieval).
        vlm: the model.
        filters: restrict retrieval (folders, date range, cameras, place).
        photo: the photo asked about (in the library or not); retrieval then uses its
            embedding with the question's, and leaves the photo itself out.
        among: library photos' row ids chosen by the user (the map's lasso): the question
            is about these, the first ``ask_photos`` of them, instead of retrieved ones.
    """

    def __init__(self, engine: Library, vlm: VisionLanguageModel, filters: Filters | None = None,
                 photo: Path | None = None, among: tuple[int, ...] = ()):
        self.engine, self.vlm = engine, vlm
        self.filters = filters or Filters()
        self.photo, self.among = photo, tuple(among)
        self.candidates: list[Result] = []
        self.history: list[dict] = []

    def ask(self, question: str, on_text: Callable[[str], None] | None = None,
            cancel: threading.Event | None = None,
            on_photos: Callable[[list[Result]], None] | None = None) -> Answer:
        """Answer *question* (the first retrieves the photos, told to *on_photos* as soon as
        they are chosen; later ones follow up), streaming text pieces to *on_text*.

        Raises:
            VLMError: the model cannot be used, or cannot see the photo asked about (no
                mmproj). BadImage: that photo cannot be read. QueryError /
                ModelMissingError: retrieval.
        """
        first = not self.history
        subject = None
        if first and self.photo is not None:
            if not self.vlm.sees_images:
                raise VLMError(NO_MMPROJ)
            subject = (display_path(self.photo.name), photo_data_uri(self.vlm, self.photo))
        if first:
            self.candidates = self._retrieve(question)
            if on_photos is not None:
                on_photos(self.candidates)
        images = [self._image(r) for r in self.candidates] if first else []
        while True:
            messages = build_messages(question, self.candidates, images, self.history,
                                      subject)
            try:
                text = self.vlm.answer(messages, on_text, cancel)
                break
            except ContextFullError:
                # Forget the oldest follow-up (question and answer); the first turn, with the
                # photos and the model's judgements of them, stays.
                if len(self.history) <= 2:
                    raise
                self.history = self.history[:2] + self.history[4:]
        self.history = messages + [{"role": "assistant", "content": text}]
        answer = Answer(text, self.candidates, cancelled=bool(cancel and cancel.is_set()))
        answer.judgements = parse_judgements(text, len(self.candidates))
        answer.cited = parse_citations(answer.body, len(self.candidates))
        return answer

    def _retrieve(self, question: str) -> list[Result]:
        k = self.engine.config.ask_photos
        if self.among:
            return self.engine.search.photos(list(self.among[:k]))
        if self.photo is None and WHEN.search(question):
            dated = self._by_date(question, k)
            if dated is not None:
                return dated
        if self.photo is None:
            # hybrid: a question naming words in a photo ("the receipt from the hardware
            # shop") finds it by its recognised text as well as by its looks
            return self.engine.search.run([Term(text=question)], k=k, filters=self.filters,
                                          mode="hybrid")
        found = self.engine.search.run([Term(photo=str(self.photo)), Term(text=question)], k=k + 1,
                                       filters=self.filters, mode="hybrid")
        same = os.path.realpath(self.photo)
        return [r for r in found if os.path.realpath(r.path) != same][:k]

    def _by_date(self, question: str, k: int) -> list[Result] | None:
        """For "when did I last see Anna?" or "when was I last in Lisbon?": the newest
        (oldest, for "first") *k* photos that the question's people, place or dates allow,
        or None when it names nothing the library knows."""
        filters, _ = self.engine.search.with_understanding([Term(text=question)], self.filters)
        if filters == self.filters:
            return None
        rows = self.engine.store.timeline(filters)  # newest first
        if FIRST.search(question):
            rows = rows[::-1]
        return self.engine.search.photos([row[0] for row in rows[:k]])

    def _image(self, result: Result) -> str | None:
        if not self.vlm.sees_images:
            return None
        try:
            return photo_data_uri(self.vlm, Path(result.path), result.meta.get("moment", 0.0))
        except (BadImage, OSError):
            return None  # described by its metadata only


def ask_photo(vlm: VisionLanguageModel, photo: Path, question: str,
              on_text: Callable[[str], None] | None = None,
              cancel: threading.Event | None = None) -> str:
    """Answer *question* about one photo, streaming text pieces to *on_text*.

    Raises:
        VLMError: the model cannot be used or sees no images (no mmproj set).
        BadImage: the photo cannot be read.
    """
    if not vlm.sees_images:
        raise VLMError(NO_MMPROJ)
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": photo_data_uri(vlm, photo)}},
        {"type": "text", "text": f"{PHOTO_INSTRUCTIONS}\nQuestion: {question}"}]}]
    return vlm.answer(messages, on_text, cancel)
