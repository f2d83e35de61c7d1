"""Text→image retrieval quality on a captioned photo set (Recall@K).

Each caption is a query whose one relevant result is its own photo; Recall@K is the share
of queries that find it in the top K — the protocol of the Flickr30k / MS-COCO retrieval
tables in the CLIP paper (Radford et al., 2021, arXiv:2103.00020) and open_clip's results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..domain.query import Term
from ..library.facade import Library
from ..library.indexer import Progress

K_VALUES = (1, 5, 10)


def load_captions(path: Path, images: Path) -> list[tuple[str, str]]:
    """(caption, absolute photo path) pairs from a JSONL file of
    ``{"file": NAME, "captions": [...]}`` lines; files missing from *images* are left out.

    Raises:
        ValueError: a line is not JSON or lacks ``file`` / ``captions``.
    """
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            photo = images / item["file"]
            captions = list(item["captions"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected {{'file', 'captions'}}: {exc}") from exc
        if photo.is_file():
            pairs += [(str(c), str(photo)) for c in captions]
    return pairs


def evaluate(engine: Library, captions: Path, images: Path,
             on_progress: Callable[[Progress], None] | None = None,
             batch: int = 256) -> dict:
    """Index *images* into *engine*'s library, then measure text→image retrieval.

    Returns:
        ``recall@1/5/10`` from the HNSW (approximate) top-10 the app serves,
        ``ann_overlap@10``: mean share of the exact (brute-force cosine) top-10 that the
        HNSW top-10 also holds, and the counts of ``queries`` and ``photos``.
    """
    engine.updates.index([str(images)], on_progress=on_progress)
    pairs = load_captions(captions, images)
    ids_all, matrix = [], []
    for ids, vectors in engine.store.vectors():
        ids_all.append(ids)
        matrix.append(vectors)
    ids_all, matrix = np.concatenate(ids_all), np.concatenate(matrix)
    path_of = {i: d["path"] for i, d in engine.store.details([int(i) for i in ids_all]).items()}
    hits = {k: 0 for k in K_VALUES}
    overlap = 0.0
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        queries = engine.embedder.encode_texts([c for c, _ in chunk])
        exact = np.argsort(-(queries @ matrix.T), axis=1)[:, :10]
        for query, truth, exact_row in zip(queries, (p for _, p in chunk), exact):
            ann_ids, _ = engine.vector_index().search(query, 10)
            ranked = [path_of[int(i)] for i in ann_ids]
            for k in K_VALUES:
                hits[k] += truth in ranked[:k]
            overlap += len(set(ann_ids.tolist()) & set(ids_all[exact_row].tolist())) / 10
    n = max(1, len(pairs))
    return {
        "model": engine.embedder.model_id, "photos": int(len(ids_all)), "queries": len(pairs),
        **{f"recall@{k}": hits[k] / n for k in K_VALUES}, "ann_overlap@10": overlap / n,
    }


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
