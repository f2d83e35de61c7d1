"""People: faces found by dlib's real models on ../shared/data/faces-dev, grouped into people,
named and corrected (corrections kept across later grouping), searched by person, and bad
input (no face, a crowd, a rotated photo, damaged model files)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import REPO, cli_env
from mmrag_desktop.core.config import load_config, save_config
from mmrag_desktop.domain.people import JOIN_DISTANCE
from mmrag_desktop.domain.query import Filters, Term

pytest.importorskip("dlib", reason="finding faces needs dlib-bin (pip install -e '.[dev]')")

FACES = REPO.parent / "shared" / "data" / "faces-dev"


def labels() -> list[dict]:
    if not FACES.is_dir():
        pytest.skip(f"faces-dev not found at {FACES} (see shared/README.md)")
    return [json.loads(line) for line in (FACES / "labels.jsonl").read_text().splitlines()]


@pytest.fixture
def faces_library(engine, tmp_path):
    """The engine with faces-dev indexed and understood for faces (people grouped)."""
    labels()  # skips without the data
    folder = tmp_path / "faces"
    shutil.copytree(FACES / "images", folder)
    engine.config.understand = ["faces"]
    save_config(engine.home, engine.config)
    engine.folders.add(folder)
    engine.updates.index()
    report = engine.updates.understand()
    assert report.analysed == {"faces": 20} and not report.failed
    return engine, folder, report


def who(engine, folder: Path) -> dict[str, list[int | None]]:
    """file name → the person of each of its faces."""
    rows = engine.store.details([r[0] for r in engine.store.db.execute("SELECT id FROM photos")])
    found = engine.people.in_photos([r["hash"] for r in rows.values()])
    return {Path(r["path"]).name: [face.person for face, _ in found.get(r["hash"], [])]
            for r in rows.values()}


def test_faces_are_found_and_grouped_into_the_labelled_people(faces_library):
    engine, folder, report = faces_library
    found = who(engine, folder)
    truth = labels()
    # Detection recall: every labelled face is found.
    assert sum(min(len(found[t["file"]]), t["faces_at_least"]) for t in truth) == 23
    # Clustering against the labels, over the photos of one person (their largest face).
    single = [(t["people"][0], engine.store.faces_of([_hash(engine, folder / t["file"])])
               [_hash(engine, folder / t["file"])][0].person) for t in truth
              if len(t["people"]) == 1]
    pairs = list(itertools.combinations(single, 2))
    same_truth = [a[0] == b[0] for a, b in pairs]
    same_found = [a[1] is not None and a[1] == b[1] for a, b in pairs]
    true_pos = sum(t and f for t, f in zip(same_truth, same_found))
    precision = true_pos / max(1, sum(same_found))
    recall = true_pos / sum(same_truth)
    assert precision == 1.0 and recall >= 0.9, (precision, recall)
    # Each person seen in two or more photos is a person; Lin-Manuel Miranda (once) waits.
    people = engine.people.everyone()
    assert len(people) == 5 and report.people["waiting"] >= 1
    assert [p.photos for p in people][:2] == [8, 4]  # Obama (6 + 2 groups), Biden (2 + 2)


def _hash(engine, path: Path) -> str:
    return engine.store.hash_of(str(path))


def test_descriptors_tell_people_apart_only_when_aligned(faces_library):
    engine, folder, _ = faces_library
    truth = {t["file"]: t["people"][0] for t in labels() if len(t["people"]) == 1}
    faces = {name: engine.store.db.execute(
        "SELECT descriptor FROM faces WHERE hash = ? ORDER BY size DESC LIMIT 1",
        [_hash(engine, folder / name)]).fetchone()[0] for name in truth}
    vectors = {name: np.frombuffer(blob, np.float32) for name, blob in faces.items()}
    same, other = [], []
    for a, b in itertools.combinations(truth, 2):
        distance = float(np.linalg.norm(vectors[a] - vectors[b]))
        (same if truth[a] == truth[b] else other).append(distance)
    assert max(same) < JOIN_DISTANCE < min(other), (max(same), min(other))


def test_names_and_corrections_survive_later_grouping(faces_library, tmp_path):
    engine, folder, _ = faces_library
    obama = engine.people.everyone()[0]
    engine.people.name(obama.id, "Barack Obama")
    assert engine.people.get("barack obama").id == obama.id
    # "Not this person" on one of his faces, "not a face" on another.
    faces = engine.people.faces(obama.id)
    rejected, wrong = faces[-1].id, faces[-2].id
    engine.people.not_this_person(rejected)
    engine.people.not_a_face(wrong)
    # A split: Biden's two group-photo faces become a person of their own (by hand).
    biden = engine.people.everyone()[1]
    split = [f.id for f in engine.people.faces(biden.id)][:2]
    new = engine.people.move(split, None)
    engine.people.name(new, "Joe in groups")

    # More photos of the same people arrive: copies under new names (new faces, new rows).
    more = tmp_path / "more"
    more.mkdir()
    for t in labels():
        if t["people"] == ["obama"] or t["people"] == ["biden"]:
            image = Image.open(FACES / "images" / t["file"]).convert("RGB")
            image.resize((image.width - 2, image.height - 2)).save(more / f"copy {t['file']}")
    engine.folders.add(more)
    engine.updates.index()
    report = engine.updates.understand()
    assert report.analysed["faces"] == 8 and report.people["joined"] >= 8
    assert engine.people.get("Barack Obama").id == obama.id  # never renamed
    face = engine.store.face(rejected)
    assert face.person != obama.id  # said not him: never back, whatever joins later
    assert engine.store.face(wrong).person is None
    assert all(engine.store.face(f).person == new for f in split)
    assert engine.people.get("Joe in groups").id == new
    names = {p.name for p in engine.people.everyone()}
    assert {"Barack Obama", "Joe in groups"} <= names

    # Merge: Biden's groups back into Biden; the name moves when Biden had none.
    engine.people.merge(biden.id, "Joe in groups")
    assert engine.people.get("Joe in groups").id == biden.id
    with pytest.raises(Exception, match="no person called"):
        engine.people.get("nobody at all")


def test_search_by_person_alone_together_and_by_name_in_the_query(faces_library):
    engine, folder, _ = faces_library
    obama, biden = engine.people.everyone()[:2]
    engine.people.name(obama.id, "Obama")
    engine.people.name(biden.id, "Biden")
    both = engine.search.run([Term(text="a photo")], k=30,
                             filters=Filters(people=[obama.id, biden.id]))
    assert sorted(Path(r.path).name for r in both) == ["group_obama_biden.jpg",
                                                       "group_two_people.jpg"]
    # The name in the query is that person, fused like a filter; the rest searches.
    named = engine.search.run([Term(text="Obama and Biden")], k=30)
    assert sorted(Path(r.path).name for r in named) == ["group_obama_biden.jpg",
                                                        "group_two_people.jpg"]
    assert all(set(r.meta["people"]) >= {"Obama", "Biden"} for r in named)


def test_cli_lists_names_merges_searches_and_forgets(faces_library, home):
    engine, folder, _ = faces_library

    def mmrag(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "mmrag_desktop", *args], env=cli_env(home),
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return run.stdout

    people = json.loads(mmrag("people", "--json"))
    assert [p["faces"] for p in people][:1] == [8] and len(people) == 5
    assert all(set(p) == {"id", "name", "faces", "photos"} for p in people)
    top = people[0]
    mmrag("people", "name", str(top["id"]), "Barack")
    lines = mmrag("search", "--person", "Barack", "--json", "-k", "30", "a photo")
    assert sorted(Path(r["path"]).name for r in json.loads(lines)) == sorted(
        Path(p).name for p in top["photos"])
    everyone = json.loads(mmrag("people", "--json", "--all"))
    loose = [p for p in everyone if p["id"] is None]
    assert loose and all(p["faces"] == 1 for p in loose)  # a face of nobody yet: its own entry
    out = mmrag("people", "forget")
    assert "faces" in out and engine.store.face_count() == (0, 0)
    assert json.loads(mmrag("people", "--json")) == []
    assert load_config(home).understand == []  # turned off, and it stays off


def test_no_face_a_crowd_and_a_rotated_photo(tmp_path):
    from mmrag_desktop.understanding.faces import MAX_FACES, FaceReader

    labels()
    reader = FaceReader()
    landscape = tmp_path / "landscape.png"
    Image.new("RGB", (800, 600), (90, 140, 60)).save(landscape)
    assert reader.read(landscape) == ([], 0)

    # A crowd: 7 × 7 faces tiled; the largest MAX_FACES are kept, and the count says so.
    face = ImageOps.exif_transpose(Image.open(FACES / "images" / "obama_1.jpg")).convert("RGB")
    [one], _ = reader.read(FACES / "images" / "obama_1.jpg")
    left, top, right, bottom = (int(v * s) for v, s in zip(one.box, face.size * 2))
    tile = face.crop((left - 60, top - 60, right + 60, bottom + 60)).resize((200, 200))
    crowd = Image.new("RGB", (1400, 1400))
    for i in range(49):
        crowd.paste(tile, ((i % 7) * 200, (i // 7) * 200))
    crowd.save(tmp_path / "crowd.jpg")
    faces, found = reader.read(tmp_path / "crowd.jpg")
    assert found >= 45 and len(faces) == MAX_FACES

    # Rotated by EXIF: the boxes are in the displayed photo's orientation.
    upright = FACES / "images" / "biden_2.jpg"
    [expected], _ = reader.read(upright)
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.open(upright).convert("RGB").transpose(Image.Transpose.ROTATE_90).save(turned,
                                                                                  exif=exif)
    [seen], _ = reader.read(turned)
    assert np.allclose(seen.box, expected.box, atol=0.03), (seen.box, expected.box)


def test_a_damaged_face_model_gives_a_clear_message(tmp_path, monkeypatch):
    import face_recognition_models

    from mmrag_desktop.understanding.faces import FaceModelsMissing, FaceReader

    damaged = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    damaged.write_bytes(b"not a model")
    monkeypatch.setattr(face_recognition_models, "face_recognition_model_location",
                        lambda: str(damaged))
    with pytest.raises(FaceModelsMissing, match="damaged"):
        FaceReader()


def test_ask_knows_who_is_in_each_photo_and_when_they_were_last_seen(faces_library):
    import os
    import time

    from mmrag_desktop.library.ask import Conversation, describe

    engine, folder, _ = faces_library
    obama = engine.people.everyone()[0]
    engine.people.name(obama.id, "Obama")
    now = time.time()
    os.utime(folder / "obama_3.jpg", (now + 86400,) * 2)  # newer than any other photo
    engine.updates.index()  # the new modification times are the photos' dates
    asked = Conversation(engine, vlm=None)
    last = asked._retrieve("When did I last see Obama?")
    assert Path(last[0].path).name == "obama_3.jpg"
    assert len(last) == engine.config.ask_photos and all("Obama" in r.meta["people"] for r in last)
    first = asked._retrieve("When did I first see Obama?")
    assert Path(first[0].path).name != "obama_3.jpg" and "obama_3.jpg" not in str(first)
    assert "people \"Obama\"" in describe(1, last[0])


def test_a_video_shows_the_people_in_its_keyframes(engine, tmp_path):
    from conftest import coco_photos, encode_video

    labels()
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("obama_2.jpg", "obama_3.jpg"):
        shutil.copy2(FACES / "images" / name, folder / name)
    # a scene without a face, then his portrait (its aspect ratio kept: 4:5)
    encode_video(folder / "speech.mp4", [coco_photos()[1], FACES / "images" / "obama_1.jpg"],
                 seconds=3.0, size=(480, 600))
    engine.config.understand = ["faces"]
    engine.folders.add(folder)
    engine.updates.index()
    assert engine.updates.understand().analysed == {"faces": 3}
    [obama] = engine.people.everyone()
    video = engine.store.hash_of(str(folder / "speech.mp4"))
    faces = engine.store.faces_of([video])[video]  # his, in the second scene's keyframes
    assert faces and all(f.time >= 3.0 and f.person == obama.id for f in faces)
    assert obama.photos == 3
