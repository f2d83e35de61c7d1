"""Search queries: texts and photos combined with weights, and result filters."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

from ..core.errors import MmragError

KM_PER_DEGREE = 111.195
"""Kilometres per degree of latitude (a great circle of the 6,371 km mean Earth radius)."""

_WEIGHTED = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*\*\s*(.+)$", re.S)


@dataclass
class Term:
    """One part of a query: a text, or a photo file, with a weight (negative subtracts)."""

    text: str | None = None
    photo: str | None = None
    weight: float = 1.0

    @classmethod
    def parse(cls, spec: str, sign: float = 1.0) -> Term:
        """``[WEIGHT*]TEXT_OR_PHOTO``: an existing file is a photo, anything else text.
        ``"0.5*snow"`` is the text "snow" at half weight."""
        weight = 1.0
        match = _WEIGHTED.match(spec)
        if match:
            weight, spec = float(match.group(1)), match.group(2)
        if os.path.isfile(spec):
            return cls(photo=spec, weight=sign * weight)
        return cls(text=spec, weight=sign * weight)


def parse_query(text: str) -> list[Term]:
    """The search field's typed syntax, as text terms (photos join as their own terms):

    - words make one description: ``two dogs in the snow``;
    - ``-word`` or ``-"a phrase"`` subtracts: ``beach -people``;
    - ``N*word`` or ``N*"a phrase"`` weighs: ``2*sunset``;
    - a quoted phrase, or ``+`` between parts, makes a separate term:
      ``2*sunset + "red car"``.

    Unbalanced quotes make the whole text one description. Empty text gives no terms.
    """
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.quotes, lexer.escape = True, '"', ""  # apostrophes are text
    try:
        tokens = list(lexer)
    except ValueError:  # an open quote
        return [Term(text=text.strip())] if text.strip() else []
    quoted = {match.group(1) for match in re.finditer(r'"([^"]*)"', text)}
    terms: list[Term] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            terms.append(Term(text=" ".join(words)))
            words.clear()

    for token in tokens:
        weighted = _WEIGHTED.match(token)
        if token == "+":
            flush()
        elif token.startswith("-") and len(token) > 1:
            flush()
            terms.append(Term(text=token[1:], weight=-1.0))
        elif weighted:
            flush()
            terms.append(Term(text=weighted.group(2), weight=float(weighted.group(1))))
        elif token in quoted and " " in token:
            flush()
            terms.append(Term(text=token))
        else:
            words.append(token)
    flush()
    return [term for term in terms if term.text]


@dataclass
class Filters:
    """Restrict results to photos under some folders, taken in a date range (ISO 8601
    strings, inclusive; a bare date ``YYYY-MM-DD`` covers the whole day), with some
    cameras (EXIF model names, as :meth:`.store.database.Store.cameras` lists them), taken near a
    point: ``near = (latitude, longitude, radius_km)`` from the photos' EXIF GPS, and/or
    in a named place: ``place``, a word or words of the place's names (town, city,
    county, region or country, as the understanding pass found them; case-insensitive),
    and/or tagged with personal concepts (``concepts``, names; :mod:`.domain.concepts`), which
    the engine turns into the photos' row ids (``ids``) before the filter is used, and/or
    showing each of ``people`` (person ids, :mod:`.library.people`: photos with all of them)
    and none of ``not_people``, of one ``media`` kind (``"photo"`` or ``"video"``), and/or
    whose recognised text holds each word of ``says`` (any case; OCR's "Midnight-Bakery"
    holds "Midnight Bakery"), and/or in each of ``albums`` (album ids, :mod:`.store.albums`),
    only ``favourites``, rated at least ``min_rating`` stars (1–5; 0: any)."""

    folders: list[str] = field(default_factory=list)
    taken_after: str | None = None
    taken_before: str | None = None
    cameras: list[str] = field(default_factory=list)
    near: tuple[float, float, float] | None = None
    place: str = ""
    concepts: list[str] = field(default_factory=list)
    ids: frozenset[int] | None = None
    people: list[int] = field(default_factory=list)
    not_people: list[int] = field(default_factory=list)
    media: str | None = None
    says: str = ""
    albums: list[int] = field(default_factory=list)
    favourites: bool = False
    min_rating: int = 0

    def is_empty(self) -> bool:
        return not (self.folders or self.taken_after or self.taken_before or self.cameras
                    or self.near or self.place or self.concepts or self.ids is not None
                    or self.people or self.not_people or self.media or self.says.strip()
                    or self.albums or self.favourites or self.min_rating)


@dataclass
class Result:
    """A photo: row id, path, cosine similarity to the query in [-1, 1] (None when browsing
    without one), and the photo's metadata. ``baseline`` is the query's typical cosine in
    this library under this model (the mean over a sample of its photos, see
    :meth:`.library.search.Search.baseline`; None where not measured): a model's scale, the
    point that a score means nothing above."""

    id: int
    path: str
    score: float | None
    meta: dict
    baseline: float | None = None


def relevant(results: list[Result], cutoff: float) -> list[Result]:
    """The *results*, in their order, that matched by keyword (``meta["matched"]``) or
    score at least ``baseline + cutoff × (best − baseline)``: *cutoff* of the way from the
    query's typical score in the library to the best result's. Measured from the model's
    own baseline, the cut is the same for any model whose scores are an increasing affine
    map of another's (CLIP's cosines around 0.2, SigLIP's around 0 and negative: its
    sigmoid's bias shifts them); a baseline of 0 where none was measured. All *results*
    when none scores above the baseline or *cutoff* is 0."""
    scores = [r.score for r in results if r.score is not None]
    baseline = next((r.baseline for r in results if r.baseline is not None), 0.0)
    if not scores or cutoff <= 0 or max(scores) <= baseline:
        return results
    floor = baseline + cutoff * (max(scores) - baseline)
    return [r for r in results if "matched" in r.meta or (r.score is not None
                                                          and r.score >= floor)]


class QueryError(MmragError, ValueError):
    """A query is empty, or names a photo that cannot be read."""

