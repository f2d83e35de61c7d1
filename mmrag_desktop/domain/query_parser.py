"""Query understanding: what a typed query asks besides how photos look — a date or range,
a place, people, a camera, videos or photos, the text a photo shows, and what must not be in
it — each turned into a filter, the rest left as the semantic text. Offline and instant (no
language model): a small English grammar finds the phrases; ``dateparser`` resolves the dates
it knows ("March 2024", "two years ago", "yesterday", "last week"); seasons and holidays,
which it does not know, are ranges of our own. A word becomes a filter only when the library
knows it — a place it has photos from, a person it has named, a camera it has seen —
otherwise it stays in the text."""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11),
           "winter": (12, 2)}
"""Meteorological seasons of the northern hemisphere, (first month, last month): winter
2020 runs from December 2020 to February 2021."""

HOLIDAYS = {"christmas": ((12, 24), (12, 26)), "xmas": ((12, 24), (12, 26)),
            "new year's eve": ((12, 31), (12, 31)), "new year": ((12, 31), (1, 1)),
            "halloween": ((10, 31), (10, 31)), "valentine's day": ((2, 14), (2, 14))}
"""Fixed-date holidays, (first (month, day), last (month, day))."""

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
           "december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_YEAR = r"(?:19|20)\d\d"
_NUMBERS = "a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|\\d+"
_SEASON = "|".join(SEASONS)
_HOLIDAY = "|".join(re.escape(h) for h in sorted(HOLIDAYS, key=len, reverse=True))
_AFTER = {"since": "start", "after": "next", "from": None}
_BEFORE = {"before": "previous", "until": "end", "till": "end", "by": "end"}

# Longest forms first. Bare months, seasons and holidays ("may", "march", "fall", a
# "Christmas tree") only count after a preposition; a bare year counts anywhere.
_PHRASES = [
    r"\d{4}-\d\d-\d\d",
    rf"(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?,? {_YEAR}",
    rf"\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{_MONTHS}),? {_YEAR}",
    rf"(?:{_MONTHS}),? {_YEAR}",
    rf"(?:last|this) (?:{_SEASON}|{_HOLIDAY})",
    rf"(?:{_SEASON}) (?:of )?{_YEAR}",
    rf"(?:{_HOLIDAY}) {_YEAR}",
    rf"(?:{_NUMBERS}) (?:years?|months?|weeks?|days?) ago",
    r"(?:last|this) (?:week|month|year)",
    r"yesterday|today",
    _YEAR,
]
_BARE = rf"(?:{_MONTHS}|{_SEASON}|{_HOLIDAY})"
_PREPOSITION = r"in|on|at|during|from|since|after|before|until|till|by|of|over"
_DATE = re.compile(
    rf"(?<![\w-])(?:({_PREPOSITION}) (?:the )?)?({'|'.join(_PHRASES)})(?![\w-])"
    rf"|(?<![\w-])({_PREPOSITION}) (?:the )?({_BARE})(?![\w-])", re.IGNORECASE)
_QUOTED = re.compile(r'(?:(?:that |which )?(?:says|reads|saying|reading|with the (?:text|words?)) )?'
                     r'"([^"]+)"', re.IGNORECASE)
_SAYS = re.compile(r"(?<!\w)(?:that |which )?(?:says|reads|saying|reading) (\S+(?: \S+){0,3}?)"
                   r"(?=\s+(?:in|at|on|from|near|taken|during|since|before|after)\b|\s*$)",
                   re.IGNORECASE)
_NOT = re.compile(r"(?<![\w-])(?:(?:but )?(?:not|without|except|no) )([\w'-]+(?: [\w'-]+){0,2})"
                  r"|(?<!\S)-([\w'-]+)", re.IGNORECASE)
# Plural, or singular followed by "of": "a team photo" is a kind of photo, not a filter.
_MEDIA = re.compile(r"(?<!\w)(?:(?:a|the|my|our|all) )?(?:(?:(videos|clips|movies|footage)|"
                    r"(photos|pictures|pics|images|snaps))(?: (?:of|from|with|showing|taken))?|"
                    r"(?:(video|clip|movie)|(photo|picture|image)) (?:of|from|showing|taken))"
                    r"(?!\w)", re.IGNORECASE)
_CAMERA = re.compile(r"(?<!\w)(?:(?:taken|shot) )?(?:with|on|using|by) (?:my |the |a |an )?"
                     r"([\w-]+(?: [\w-]+){0,2})", re.IGNORECASE)
_PLACE = re.compile(r"(?<!\w)(?:in|at|near|from|around|to) ((?:[\w'.-]+ ){0,3}[\w'.-]+)",
                    re.IGNORECASE)
_FAVOURITES = re.compile(r"(?<![\w-])(?:my |our |the )?(?:favou?rites?|faves?)(?![\w-])",
                         re.IGNORECASE)
_STARS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_RATING = re.compile(r"(?<![\w-])(?:(?:rated|with) )?([1-5]|one|two|three|four|five)[ -]?stars?"
                     r"(\+| or (?:more|better|above|higher))?(?![\w-])"
                     r"|(?<![\w-])rated ([1-5])(\+| or (?:more|better|above|higher))?(?![\w-])",
                     re.IGNORECASE)
_DANGLING = {"in", "at", "on", "from", "of", "with", "and", "by", "during", "taken", "shot",
             "near", "since", "before", "after", "until", "the", "a", "an", "that", "which",
             "but", "&", ","}


@dataclass
class Vocabulary:
    """What the library knows by name: place names (towns, cities, counties, regions,
    countries), named people, cameras as (model, make), and albums."""

    places: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    cameras: list[tuple[str, str]] = field(default_factory=list)
    albums: list[str] = field(default_factory=list)


@dataclass
class Understood:
    """What a query asks: ``text`` (the semantic rest), a date range (``after``, ``before``:
    ISO dates, inclusive; either may be None), a ``place`` name, ``people`` (names), the
    ``camera`` models meant, ``media`` (``"photo"``, ``"video"`` or None), ``says`` (words the
    photo's text must hold), ``not_`` (people's names or words that must not be in it),
    ``albums`` (names), only ``favourites``, and a ``min_rating`` in stars (0: any)."""

    text: str = ""
    after: str | None = None
    before: str | None = None
    place: str = ""
    people: list[str] = field(default_factory=list)
    camera: list[str] = field(default_factory=list)
    media: str | None = None
    says: str = ""
    not_: list[str] = field(default_factory=list)
    albums: list[str] = field(default_factory=list)
    favourites: bool = False
    min_rating: int = 0
    phrases: list[tuple[str, str]] = field(default_factory=list)
    """(what a person reads: "Since 2020-01-01", the words typed: "since 2020") per part."""

    def as_dict(self) -> dict:
        """The JSON form (``mmrag search --explain --json``): ``{"text", "after",
        "before", "place", "people", "camera", "media", "says", "not", "albums",
        "favourites", "rating"}``."""
        return {"text": self.text, "after": self.after, "before": self.before,
                "place": self.place, "people": self.people, "camera": self.camera,
                "media": self.media, "says": self.says, "not": self.not_,
                "albums": self.albums, "favourites": self.favourites, "rating": self.min_rating}


def understand(query: str, vocabulary: Vocabulary, today: date | None = None) -> Understood:
    """Split *query* into filters the library can apply and the semantic rest.

    Args:
        query: what the user typed, e.g. ``"Anna at the beach last summer"``.
        vocabulary: what the library knows by name (only those become filters).
        today: the date relative phrases count from (default: today).

    Returns:
        The :class:`Understood` parts; a phrase not understood stays in ``text``.
    """
    today = today or date.today()
    out = Understood()
    rest = f" {' '.join(query.split())} "

    says = []
    for match in _QUOTED.finditer(rest):
        says.append(match.group(1))
        out.phrases.append((f"Says “{match.group(1)}”", match.group(0).strip()))
    rest = _QUOTED.sub(" ", rest)
    said = _SAYS.search(rest)
    if said:
        says.append(said.group(1))
        out.phrases.append((f"Says “{said.group(1)}”", said.group(0).strip()))
        rest = rest[:said.start()] + " " + rest[said.end():]
    out.says = " ".join(" ".join(says).split())

    people = sorted(vocabulary.people, key=len, reverse=True)
    for match in list(_NOT.finditer(rest)):
        words = match.group(1) or match.group(2)
        name = next((p for p in people if re.match(rf"{re.escape(p)}(?![\w'-])", words,
                                                   re.IGNORECASE)), None)
        target = name or words.split()[0]
        out.not_.append(target)
        span = match.group(0)
        span = span[:span.lower().index(target.lower()) + len(target)]
        out.phrases.append((f"Not {target}", span.strip()))
        rest = rest.replace(span, " ", 1)
    for name in people:
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
        found = pattern.search(rest)
        if found:
            out.people.append(name)
            out.phrases.append((name, found.group(0)))
            rest = pattern.sub(" ", rest)

    for name in sorted(vocabulary.albums, key=len, reverse=True):
        found = re.search(rf"(?<![\w-])(?:(?:in|from) )?(?:(?:the|my|our) )?(?:album (?:called |named )?"
                          rf"{re.escape(name)}|{re.escape(name)} album)(?![\w-])", rest, re.IGNORECASE)
        if found:
            out.albums.append(name)
            out.phrases.append((f"Album: {name}", found.group(0).strip()))
            rest = rest[:found.start()] + " " + rest[found.end():]
    favourite = _FAVOURITES.search(rest)
    if favourite:
        out.favourites = True
        out.phrases.append(("Favourites", favourite.group(0)))
        rest = rest[:favourite.start()] + " " + rest[favourite.end():]
    rating = _RATING.search(rest)
    if rating:
        stars = (rating.group(1) or rating.group(3)).lower()
        out.min_rating = _STARS.get(stars) or int(stars)
        out.phrases.append((f"{'★' * out.min_rating}" + (" or more" if out.min_rating < 5 else ""),
                            rating.group(0)))
        rest = rest[:rating.start()] + " " + rest[rating.end():]

    for match in list(_DATE.finditer(rest)):
        preposition = (match.group(1) or match.group(3) or "").lower()
        span = date_range(match.group(2) or match.group(4), today)
        if span is None:
            continue
        start, end = span
        if preposition in _AFTER and _AFTER[preposition]:
            out.after = (start if _AFTER[preposition] == "start"
                         else end + timedelta(days=1)).isoformat()
            label = f"From {out.after}"
        elif preposition in _BEFORE:
            out.before = (start - timedelta(days=1) if _BEFORE[preposition] == "previous"
                          else end).isoformat()
            label = f"Until {out.before}"
        else:
            out.after, out.before = start.isoformat(), end.isoformat()
            label = out.after if start == end else f"{out.after} – {out.before}"
        out.phrases.append((label, match.group(0)))
        rest = rest.replace(match.group(0), " ", 1)

    media = _MEDIA.search(rest)
    if media:
        out.media = "video" if media.group(1) or media.group(3) else "photo"
        out.phrases.append(("Videos" if out.media == "video" else "Photos, not videos",
                            media.group(0)))
        rest = rest[:media.start()] + " " + rest[media.end():]

    for match in _CAMERA.finditer(rest):
        words = match.group(1).split()
        for n in range(len(words), 0, -1):
            models = cameras_named(" ".join(words[:n]), vocabulary.cameras)
            if models:
                out.camera = models
                phrase = match.group(0)[:match.group(0).lower().rindex(words[n - 1].lower())
                                        + len(words[n - 1])]
                out.phrases.append((f"Camera: {' '.join(words[:n])}", phrase))
                rest = rest.replace(phrase, " ", 1)
                break
        if out.camera:
            break

    places = {p.lower(): p for p in vocabulary.places}
    for match in _PLACE.finditer(rest):
        words = match.group(1).split()
        for n in range(len(words), 0, -1):
            name = places.get(" ".join(words[:n]).lower().strip(".,"))
            if name:
                out.place = name
                phrase = match.group(0)[:match.group(0).rindex(words[n - 1]) + len(words[n - 1])]
                out.phrases.append((f"In {name}", phrase))
                rest = rest.replace(phrase, " ", 1)
                break
        if out.place:
            break
    if not out.place:  # a known place named without a preposition, written as a name
        for name in sorted(vocabulary.places, key=len, reverse=True):
            found = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", rest)
            if found and len(name) >= 4 and name[:1].isupper():
                out.place = name
                out.phrases.append((f"In {name}", found.group(0)))
                rest = rest[:found.start()] + " " + rest[found.end():]
                break
    out.text = _tidy(rest)
    return out


def cameras_named(words: str, cameras: list[tuple[str, str]]) -> list[str]:
    """The camera models that *words* name: a model or make holding them as whole words
    ("iPhone" names "iPhone 12 Pro" and "iPhone SE"; "Canon" every Canon)."""
    pattern = re.compile(rf"(?<!\w){re.escape(words)}(?!\w)", re.IGNORECASE)
    return [model for model, make in cameras if pattern.search(model) or pattern.search(make)]


def date_range(phrase: str, today: date) -> tuple[date, date] | None:
    """The days (first, last) a date phrase means, counted back from *today*: a day, a
    week (Monday to Sunday), a month, a year, a season (:data:`SEASONS`) or a holiday
    (:data:`HOLIDAYS`); a season or holiday without a year is the latest one that has
    begun. The current week, month or year ends today. None when not a date."""
    text = " ".join(phrase.lower().replace(",", " ").split())
    words = text.split()
    year = next((int(w) for w in words if re.fullmatch(_YEAR, w)), None)
    latest_ended = words[0] == "last"  # "last summer" in July: the one before this
    season = next((SEASONS[w] for w in words if w in SEASONS), None)
    if season:
        first, last = season
        if year is None:  # the latest season that has begun
            year = today.year if today.month >= first else today.year - 1
            if latest_ended and _season(year, first, last)[1] >= today:
                year -= 1
        return _season(year, first, last)
    holiday = next((HOLIDAYS[h] for h in sorted(HOLIDAYS, key=len, reverse=True)
                    if re.search(rf"(?<![\w']){re.escape(h)}(?![\w'])", text)), None)
    if holiday:
        (m1, d1), (m2, d2) = holiday
        if year is None:
            year = today.year if (today.month, today.day) >= (m1, d1) else today.year - 1
            if latest_ended and _holiday(year, m1, d1, m2, d2)[1] >= today:
                year -= 1
        return _holiday(year, m1, d1, m2, d2)
    return _dateparser_range(text, today)


def _season(year: int, first: int, last: int) -> tuple[date, date]:
    """The days of the season (first, last month) that begins in *year*."""
    end_year = year + 1 if first > last else year
    return date(year, first, 1), date(end_year, last, monthrange(end_year, last)[1])


def _holiday(year: int, m1: int, d1: int, m2: int, d2: int) -> tuple[date, date]:
    """The days of the holiday that begins in *year*."""
    return date(year, m1, d1), date(year + 1 if (m2, d2) < (m1, d1) else year, m2, d2)


_PARSERS: dict[date, object] = {}


def _dateparser_range(text: str, today: date) -> tuple[date, date] | None:
    """A day, week, month or year by ``dateparser`` (its period says which)."""
    parser = _PARSERS.get(today)
    if parser is None:
        from dateparser.date import DateDataParser  # ~0.1 s to import: on first use

        _PARSERS.clear()
        parser = _PARSERS[today] = DateDataParser(languages=["en"], settings={
            "PREFER_DATES_FROM": "past", "RETURN_TIME_AS_PERIOD": True,
            "RELATIVE_BASE": datetime(today.year, today.month, today.day, 12)})
    found = parser.get_date_data(text)
    if found.date_obj is None:
        return None
    day, period = found.date_obj.date(), found.period
    current = text.startswith("this ")
    if period == "year":
        first, last = date(day.year, 1, 1), date(day.year, 12, 31)
    elif period == "month":
        first = day.replace(day=1)
        last = day.replace(day=monthrange(day.year, day.month)[1])
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
    else:
        first = last = day
    return first, min(last, today) if current else last


def _tidy(rest: str) -> str:
    """The semantic rest without the words left dangling by what was taken out."""
    words = rest.split()
    while words and words[-1].lower().strip(",") in _DANGLING:
        words.pop()
    while words and words[0].lower() in {"and", "but", "&", ","}:
        words.pop(0)
    return " ".join(words)
