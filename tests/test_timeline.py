"""Browsing without a query: the library newest first by month, and its folder tree."""

from __future__ import annotations

import os
import shutil

from PIL import Image

from mmrag_desktop.domain.query import Filters
from mmrag_desktop.domain.timeline import folder_tree
from conftest import coco_photos

DAY = 86_400


def test_browse_orders_by_date_taken_else_file_time_and_groups_by_month(engine, tmp_path):
    # 6 photos without EXIF dates (file times: Jan 2022, a day apart) in a subfolder, and 3
    # with EXIF dates in June 2021 whose files are newer than everything (copied today):
    # the date taken wins over the file's time.
    folder = tmp_path / "library"
    (folder / "trip" / "day 1").mkdir(parents=True)
    photos = coco_photos()
    for i, photo in enumerate(photos[:6]):
        target = folder / "trip" / "day 1" / photo.name
        shutil.copyfile(photo, target)
        when = 1_641_000_000 + i * DAY  # 2022-01-01 ... 2022-01-06
        os.utime(target, (when, when))
    for i, photo in enumerate(photos[6:9]):
        exif = Image.Exif()
        exif[306] = f"2021:06:{10 + i:02d} 08:00:00"
        with Image.open(photo) as img:
            img.save(folder / photo.name, "JPEG", exif=exif)
    engine.folders.add(folder)
    engine.updates.index()

    timeline = engine.search.browse()
    assert len(timeline) == 9
    assert timeline.paths[:6] == [str(folder / "trip" / "day 1" / p.name)
                                  for p in reversed(photos[:6])]  # newest file first
    assert timeline.paths[6:] == [str(folder / p.name) for p in reversed(photos[6:9])]
    assert timeline.dates[6:] == ["2021-06-12T08:00:00", "2021-06-11T08:00:00",
                                  "2021-06-10T08:00:00"]
    assert [(m.key, m.start, m.count, m.title) for m in timeline.months] == [
        ("2022-01", 0, 6, "January 2022"), ("2021-06", 6, 3, "June 2021")]
    photo = timeline[7]
    assert (photo.path, photo.score, photo.meta["date"]) == (
        str(folder / photos[7].name), None, "2021-06-11T08:00:00")
    assert timeline.position(photo.path) == 7 and timeline.position("/nowhere.jpg") is None

    inside = engine.search.browse(Filters(folders=[str(folder / "trip")]))
    assert inside.paths == timeline.paths[:6]
    assert engine.search.browse(Filters(taken_before="2021-06-11")).paths == timeline.paths[7:]

    [tree] = engine.folders.tree()
    assert (tree.path, tree.photos) == (str(folder), 9)
    [trip] = tree.children
    assert (trip.name, trip.photos, [(c.name, c.photos) for c in trip.children]) == (
        "trip", 6, [("day 1", 6)])


def test_folder_tree_sums_subfolders_and_keeps_roots_apart():
    counts = {"/a": 2, "/a/x/y": 3, "/a/x/z": 1, "/ab": 5, "/b/q": 4}
    trees = folder_tree(["/a", "/b", "/c"], counts)
    assert [(t.path, t.photos) for t in trees] == [("/a", 6), ("/b", 4), ("/c", 0)]
    [x] = trees[0].children  # "/ab" is not below "/a"
    assert (x.path, x.photos, [(c.name, c.photos) for c in x.children]) == (
        "/a/x", 4, [("y", 3), ("z", 1)])
    assert [(c.name, c.photos) for c in trees[1].children] == [("q", 4)]
