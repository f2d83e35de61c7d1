"""What the vision-language model answers about photos, read: its verdict on each
candidate photo, the photos it cites, its description of a photo and the answer itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .query import Result

# "[2] relevant: no - a kitchen", "Photo 2: relevant: NO — …", "3. irrelevant: …"
_JUDGEMENT = re.compile(
    r"^\W*(?:photo\s*)?\[?(\d{1,3})\]?[\s.:)\-]*"
    r"(?:relevant\s*[:=\-]\s*(?P<answer>yes|no)\b|(?P<word>not relevant|irrelevant|relevant(?!\s*[:=\-]))\b)"
    r"\W*(?P<reason>.*)$", re.IGNORECASE)
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_ANSWER = re.compile(r"^\W*answer\W*:", re.IGNORECASE | re.MULTILINE)
_PHOTO_LINE = re.compile(r"^\W*photo\W*:", re.IGNORECASE)


@dataclass
class Judgement:
    """The model's verdict on candidate ``number`` (1-based)."""

    number: int
    relevant: bool
    reason: str


@dataclass
class Answer:
    """A finished (or cancelled) answer. ``shown`` are the photos to show the user: those
    the model accepted as relevant, or, when it judged none, those it cited; in the order
    they were offered."""

    text: str
    candidates: list[Result]
    judgements: list[Judgement] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    cancelled: bool = False

    @property
    def shown(self) -> list[Result]:
        keep = ({j.number for j in self.judgements if j.relevant} if self.judgements
                else set(self.cited))
        return [r for i, r in enumerate(self.candidates, 1) if i in keep]

    @property
    def description(self) -> str:
        """The model's one-line description of the photo asked about ("Photo: …"), or ""."""
        head = self.text[:m.start()] if (m := _ANSWER.search(self.text)) else self.text
        line = next((ln for ln in head.splitlines() if _PHOTO_LINE.match(ln)), "")
        return _PHOTO_LINE.sub("", line).strip()

    @property
    def body(self) -> str:
        """The answer without the per-photo judgement lines (and the photo's description):
        what follows "Answer:", or, when the model wrote no such line, its lines that are
        neither a judgement nor the description."""
        match = _ANSWER.search(self.text)
        if match:
            return self.text[match.end():].strip()
        return "\n".join(line for line in self.text.splitlines()
                         if not _JUDGEMENT.match(line.strip())
                         and not _PHOTO_LINE.match(line)).strip()


def parse_judgements(text: str, count: int) -> list[Judgement]:
    """The per-photo verdicts in *text* for photos 1..*count*; lines that do not parse, or
    name a photo out of range, are ignored; the first verdict on a photo wins."""
    seen: dict[int, Judgement] = {}
    for line in text.splitlines():
        match = _JUDGEMENT.match(line.strip())
        if not match:
            continue
        number = int(match.group(1))
        if 1 <= number <= count and number not in seen:
            verdict = (match.group("answer") or match.group("word")).lower()
            seen[number] = Judgement(number, verdict in ("yes", "relevant"),
                                     match.group("reason").strip(" -:—"))
    return [seen[n] for n in sorted(seen)]


def parse_citations(text: str, count: int) -> list[int]:
    """Photo numbers cited as ``[n]`` or ``[n, m]`` in *text*, in order of first citation,
    within 1..*count*."""
    cited: list[int] = []
    for match in _CITATION.finditer(text):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= count and number not in cited:
                cited.append(number)
    return cited
