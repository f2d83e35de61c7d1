"""Videos: keyframes decoded with PyAV from short videos this test encodes out of coco-mini
photos (each photo a scene held for a few seconds, a keyframe every second), searched by
a frame, found at the right moment; moved, deleted, corrupt and empty videos handled as
photos are."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mmrag_desktop.media.photos import decode
from mmrag_desktop.domain.query import Term
from mmrag_desktop.clip.embedder import query_vector
from mmrag_desktop.media.video import INTERVAL, keyframes
from conftest import coco_photos, encode_video

SCENE = 3.0  # seconds each photo is held


@pytest.fixture
def library(tmp_path):
    """A folder with 3 videos of 4 scenes each (distinct coco photos) and 12 photos."""
    folder = tmp_path / "media"
    folder.mkdir()
    photos = coco_photos()
    videos = {}
    for n, name in enumerate(["beach.mp4", "party.mov", "walk.webm"]):
        scenes = photos[40 + 4 * n: 44 + 4 * n]
        encode_video(folder / name, scenes, seconds=SCENE)
        videos[name] = scenes
    for photo in photos[:12]:
        shutil.copy2(photo, folder / photo.name)
    return folder, videos


def test_keyframes_are_the_scene_changes_and_every_few_seconds(tmp_path):
    video = tmp_path / "clip.mp4"
    encode_video(video, coco_photos()[:4], seconds=SCENE)
    stills, meta = keyframes(video, min_side=64)
    times = [k.time for k in stills]
    assert meta.duration == pytest.approx(4 * SCENE)
    # every scene's first keyframe (a cut), and one at least every INTERVAL within a scene
    assert {0.0, 3.0, 6.0, 9.0} <= set(times)
    assert all(b - a <= 2.0 + 1e-6 for a, b in zip(times, times[1:]))
    assert min(stills[0].image.size) == 64


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif"])
def test_every_container_is_indexed_with_its_keyframes(engine, tmp_path, suffix):
    folder = tmp_path / "clips"
    folder.mkdir()
    encode_video(folder / f"clip{suffix}", coco_photos()[:3], seconds=2.0)
    engine.folders.add(folder)
    report = engine.updates.index()
    assert report.errors == [] and report.embedded == 1
    (result,) = engine.search.run([Term(text="a photo")], k=5)
    assert result.meta["duration"] == pytest.approx(6.0)
    times, vectors = engine.store.frames_of(engine.vector_index().model_id, result.meta["hash"])
    assert times.tolist() == [0.0, 2.0, 4.0] and vectors.shape == (3, engine.vector_index().dim)


def test_a_frame_finds_its_video_at_its_moment(engine, library, tmp_path):
    folder, videos = library
    engine.folders.add(folder)
    report = engine.updates.index()
    assert report.errors == [] and report.found == 15
    for name, scenes in videos.items():
        for scene in range(len(scenes)):
            middle = scene * SCENE + SCENE / 2
            frame, _ = decode(folder / name, at=middle)  # a frame as a photo query
            query = tmp_path / f"{name}-{scene}.png"
            frame.save(query)
            best = engine.search.run([Term(photo=str(query))], k=5)[0]
            assert best.path == str(folder / name)
            moment = best.meta["moment"]  # in the frame's scene, a keyframe interval away
            assert scene * SCENE <= moment < (scene + 1) * SCENE
            assert abs(moment - middle) <= INTERVAL
    # any-to-any: the scene's original photo finds the video too, and a photo is a photo
    best = engine.search.run([Term(photo=str(videos["party.mov"][2]))], k=3)[0]
    assert best.path == str(folder / "party.mov")
    assert 2 * SCENE <= best.meta["moment"] < 3 * SCENE
    photo = engine.search.run([Term(photo=str(coco_photos()[0]))], k=1)[0]
    assert photo.meta["duration"] is None and "moment" not in photo.meta


def test_find_similar_on_a_video_uses_its_keyframes(engine, library):
    folder, _ = library
    engine.folders.add(folder)
    engine.updates.index()
    best = engine.search.run([Term(photo=str(folder / "walk.webm"))], k=3)[0]
    assert best.path == str(folder / "walk.webm")
    assert best.score == pytest.approx(1.0, abs=1e-4)
    # the query is the keyframes' mean, as stored, not the frame a photo decoder would see
    query = query_vector(engine.embedder, [Term(photo=str(folder / "walk.webm"))])
    _, frames = engine.store.frames_of(engine.vector_index().model_id, best.meta["hash"])
    assert float(query @ engine.search.vectors_of(np.asarray([best.id]))[0]) > 0.9999
    assert float(query @ frames[0]) < 0.999


def test_moved_deleted_corrupt_and_empty_videos(engine, library):
    folder, _ = library
    engine.folders.add(folder)
    engine.updates.index()
    model = engine.vector_index().model_id
    frames_before = engine.store.frame_state(model)[0]
    assert frames_before >= 3 * 4
    # moved: its embedding and keyframes kept, nothing decoded again
    (folder / "trips").mkdir()
    (folder / "beach.mp4").rename(folder / "trips" / "beach.mp4")
    report = engine.updates.index()
    assert report.moved == 1 and report.embedded == 0
    assert engine.store.frame_state(model)[0] == frames_before
    query = Term(photo=str(coco_photos()[41]))  # beach.mp4's second scene
    best = engine.search.run([query], k=1)[0]
    assert best.path == str(folder / "trips" / "beach.mp4")
    assert SCENE <= best.meta["moment"] < 2 * SCENE
    # deleted: the row and its keyframes go
    (folder / "trips" / "beach.mp4").unlink()
    report = engine.updates.index()
    assert report.deleted == 1
    assert engine.store.frame_state(model)[0] < frames_before
    assert all(r.path != str(folder / "trips" / "beach.mp4")
               for r in engine.search.run([query], k=20))
    # bad input: each recorded with its reason, the rest of the library untouched
    good = (folder / "party.mov").read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "noise.mkv").write_bytes(bytes(range(256)) * 40)
    (folder / "cut.mov").write_bytes(good[: len(good) // 2])
    (folder / "text.avi").write_text("not a video\n" * 50)
    report = engine.updates.index()
    errors = dict((path.rsplit("/", 1)[1], why) for path, why in report.errors)
    assert errors["empty.mp4"] == "empty file (0 bytes)"
    for name in ("noise.mkv", "cut.mov", "text.avi"):
        assert "corrupt or truncated" in errors[name], errors[name]
    assert engine.store.counts()["error"] == 4
    assert len(engine.search.run([Term(text="a photo")], k=50)) == 14


def test_an_unplugged_drive_keeps_its_videos_offline(engine, library, tmp_path):
    folder, videos = library
    engine.folders.add(folder)
    engine.updates.index()
    model = engine.vector_index().model_id
    frames = engine.store.frame_state(model)[0]
    query = Term(photo=str(videos["walk.webm"][1]))
    assert engine.search.run([query], k=1)[0].path == str(folder / "walk.webm")
    folder.rename(tmp_path / "away")  # the drive is unplugged
    report = engine.updates.index()
    assert report.offline_roots == [str(folder)] and report.deleted == 0
    assert engine.store.frame_state(model)[0] == frames  # keyframes kept
    assert all(r.path != str(folder / "walk.webm") for r in engine.search.run([query], k=20))
    (tmp_path / "away").rename(folder)  # and back: nothing decoded again
    report = engine.updates.index()
    assert report.embedded == 0 and not report.offline_roots
    best = engine.search.run([query], k=1)[0]
    assert best.path == str(folder / "walk.webm") and SCENE <= best.meta["moment"] < 2 * SCENE
