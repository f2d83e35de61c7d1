"""Text→image retrieval quality on a captioned photo set (Recall@K).

Each caption is a query whose one relevant result is its own photo; Recall@K is the share
of queries that find it in the top K — the protocol of the Flickr30k / MS-COCO retrieval
tables in the CLIP paper (Radford et al., 2021, arXiv:2103.00020) and open_clip's results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

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

