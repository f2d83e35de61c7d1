"""Personal concepts measured on coco-mini: photos whose captions name a COCO word stand in
for a person's own concept (tests/test_concepts.py reports precision@20 with them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrag_desktop.bench.evaluation import load_captions
from mmrag_desktop.domain.query import Term
from mmrag_desktop.library.facade import Library


COCO_CONCEPTS = ("kitchen", "table", "food", "toilet", "dog", "cat", "bicycle")
"""COCO words that stand in for personal concepts: each names 10–36 coco-mini photos."""


def captioned_with(path: Path, images: Path, words: tuple[str, ...]) -> dict[str, list[str]]:
    """Word → the photos (absolute paths, sorted) any of whose captions has the word or its
    plural (whole words, case-insensitive); the file format of :func:`load_captions`."""
    found: dict[str, set[str]] = {word: set() for word in words}
    for caption, photo in load_captions(path, images):
        for word in words:
            if re.search(rf"\b{re.escape(word)}s?\b", caption, re.IGNORECASE):
                found[word].add(photo)
    return {word: sorted(photos) for word, photos in found.items()}


@dataclass
class ConceptScore:
    """Precision@K of one category searched as text (``a photo of a WORD``), as a concept
    learned from a few examples, and as that concept once the user has answered its top K
    suggestions (yes for the category's photos, no for the rest). ``chance`` is the share
    of the library in the category. Examples and answered photos are left out of every
    ranking."""

    word: str
    members: int
    text: float
    concept: float
    answered: float
    chance: float


def concept_precision(engine: Library, categories: dict[str, list[str]], examples: int = 5,
                      k: int = 20, seed: int = 0) -> list[ConceptScore]:
    """:class:`ConceptScore` of each category with at least *examples* + 1 photos, by
    precision@*k* (Manning et al., "Introduction to Information Retrieval", §8.4). The
    concepts are made in *engine*'s library and removed again."""
    rng = np.random.default_rng(seed)
    total = engine.status()["photos"]
    scores = []
    for word, members in categories.items():
        if len(members) <= examples:
            continue
        chosen = sorted(rng.choice(members, examples, replace=False).tolist())
        name = f"evaluation {word}"
        engine.concepts.label(name, chosen)
        labelled = set(chosen)

        def precision(terms: list[Term]) -> float:  # called within this iteration
            found = [r.path for r in engine.search.run(terms, k + len(labelled))  # noqa: B023
                     if r.path not in labelled][:k]  # noqa: B023
            return sum(path in members for path in found) / k  # noqa: B023

        text = precision([Term(f"a photo of a {word}")])
        concept = precision([Term(name)])
        suggested = [r.path for r in engine.search.run([Term(name)], k + len(labelled))
                     if r.path not in labelled][:k]
        yes = [p for p in suggested if p in members]
        if yes:
            engine.concepts.label(name, yes)
        if len(yes) < len(suggested):
            engine.concepts.label(name, [p for p in suggested if p not in members], yes=False)
        labelled |= set(suggested)
        answered = precision([Term(name)])
        engine.concepts.forget(name)
        scores.append(ConceptScore(word, len(members), text, concept, answered,
                                   (len(members) - examples) / max(total - examples, 1)))
    return scores
