"""``mmrag bench --faces FOLDER``: finding faces and grouping them into people, measured.

Prints seconds per photo and photos per second of :class:`.understanding.faces.FaceReader`
(in this process, one thread: what the understanding pass's helper does), faces found, and
when the folder holds a ``labels.jsonl`` like ``../shared/data/faces-dev``'s (``file``,
``people``, ``faces_at_least``): detection recall (faces found / faces labelled), same-person
pair accuracy at :data:`.domain.people.JOIN_DISTANCE` over the photos of one person (their
largest face), and the grouping's pairwise precision and recall against the labels.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from ..domain.people import JOIN_DISTANCE, clusters
from ..index.faces import within
from ..media.files import BadImage, is_image_name
from ..understanding.faces import DESCRIBE_SIDE, DETECT_SIDE, DETECT_UPSAMPLE, FaceReader


def run_faces_bench(folder: Path) -> dict:
    """Measure face finding (and, with labels, its quality) on *folder*'s photos; prints a
    table and returns the numbers."""
    images = folder / "images" if (folder / "images").is_dir() else folder
    photos = sorted(p for p in images.iterdir() if is_image_name(p))
    reader = FaceReader()
    found: dict[str, list] = {}
    started = time.perf_counter()
    for photo in photos:
        try:
            found[photo.name] = reader.read(photo)[0]
        except BadImage as exc:
            print(f"  skipped {photo.name}: {exc}")
    seconds = time.perf_counter() - started
    faces = sum(len(f) for f in found.values())
    out = {"photos": len(found), "faces": faces, "seconds_per_photo": seconds / len(found),
           "photos_per_second": len(found) / seconds}
    print(f"faces: HOG at {DETECT_SIDE} px upsampled {DETECT_UPSAMPLE}×, descriptors at "
          f"{DESCRIBE_SIDE} px, one thread")
    print(f"  {len(found)} photos, {faces} faces: {out['seconds_per_photo']:.3f} s/photo, "
          f"{out['photos_per_second']:.1f} photos/s")
    labels_file = folder / "labels.jsonl"
    if labels_file.is_file():
        out |= _quality(found, [json.loads(line) for line in labels_file.read_text().splitlines()])
        print(f"  detection recall {out['recall']:.3f} ({out['found']}/{out['labelled']} "
              f"labelled faces)")
        print(f"  same-person pair accuracy at {JOIN_DISTANCE}: {out['pair_accuracy']:.3f} "
              f"(same ≤ {out['same_max']:.3f}, different ≥ {out['different_min']:.3f})")
        print(f"  grouping: pairwise precision {out['precision']:.3f}, recall "
              f"{out['cluster_recall']:.3f}")
    return out


def _quality(found: dict[str, list], labels: list[dict]) -> dict:
    labelled = sum(t["faces_at_least"] for t in labels)
    hits = sum(min(len(found.get(t["file"], [])), t["faces_at_least"]) for t in labels)
    single = [(t["people"][0], t["file"], found[t["file"]][0]) for t in labels
              if len(t["people"]) == 1 and found.get(t["file"])]
    same, other = [], []
    for (p, _, a), (q, _, b) in itertools.combinations(single, 2):
        (same if p == q else other).append(float(np.linalg.norm(a.descriptor - b.descriptor)))
    right = sum(d <= JOIN_DISTANCE for d in same) + sum(d > JOIN_DISTANCE for d in other)
    vectors = np.stack([face.descriptor for _, _, face in single])
    groups = clusters(within(vectors, vectors, JOIN_DISTANCE), [f for _, f, _ in single])
    label = {i: n for n, group in enumerate(groups) for i in group}
    pairs = list(itertools.combinations(range(len(single)), 2))
    truth = [single[i][0] == single[j][0] for i, j in pairs]
    grouped = [i in label and label.get(i) == label.get(j) for i, j in pairs]
    both = sum(t and g for t, g in zip(truth, grouped))
    return {"labelled": labelled, "found": hits, "recall": hits / labelled,
            "pair_accuracy": right / (len(same) + len(other)), "same_max": max(same),
            "different_min": min(other), "precision": both / max(1, sum(grouped)),
            "cluster_recall": both / max(1, sum(truth))}
