"""Favourites, star ratings and albums: kept by content (a moved photo keeps them), a photo in
several albums, filters and understood queries ("favourite dogs", "4 stars", "in the Summer
trip album"), the CLI, and bad input."""

from __future__ import annotations

import json
import os

import pytest

from mmrag_desktop.cli import main
from mmrag_desktop.domain.query import Filters, Term
from mmrag_desktop.library.albums import AlbumError


def _names(results) -> set[str]:
    return {os.path.basename(r.path) for r in results}


def test_marks_and_albums_follow_the_photo_when_it_moves(engine, photos):
    engine.folders.add(photos)
    engine.updates.index()
    first, second, third = sorted(photos.iterdir())[:3]
    engine.albums.favourite([str(first), str(second)])
    engine.albums.rate([str(second)], 4)
    engine.albums.rate([str(third)], 2)
    engine.albums.add("Summer trip", [str(first), str(third)], create=True)
    engine.albums.add("Best of", [str(first)], create=True)

    (photos / "moved").mkdir()
    moved = photos / "moved" / "renamed.jpg"
    os.rename(first, moved)
    assert engine.updates.index().moved == 1

    favourites = engine.search.run([], k=40, filters=Filters(favourites=True))
    assert _names(favourites) == {"renamed.jpg", second.name}
    assert _names(engine.search.run([], k=40, filters=Filters(min_rating=3))) == {second.name}
    assert _names(engine.search.run([], k=40, filters=Filters(min_rating=2))) == {
        second.name, third.name}
    trip, best = engine.albums.get("summer TRIP"), engine.albums.get("Best of")
    assert (trip.photos, best.photos) == (2, 1)
    # in each album asked for: only the moved photo is in both
    both = engine.search.run([], k=40, filters=Filters(albums=[trip.id, best.id]))
    assert _names(both) == {"renamed.jpg"}
    [details] = engine.search.details([both[0].id]).values()
    assert details["favourite"] and details["albums"] == ["Best of", "Summer trip"]
    assert "rating" in details and details["rating"] == 0

    # taken away again
    engine.albums.favourite([str(moved)], on=False)
    engine.albums.rate([str(second)], 0)
    assert _names(engine.search.run([], k=40, filters=Filters(favourites=True))) == {second.name}
    assert _names(engine.search.run([], k=40, filters=Filters(min_rating=1))) == {third.name}
    assert engine.albums.remove("Summer trip", [str(moved)]) == 1
    assert engine.albums.photos("Summer trip") == [str(third)]


def test_a_query_names_favourites_ratings_and_albums(engine, photos):
    engine.folders.add(photos)
    engine.updates.index()
    paths = sorted(str(p) for p in photos.iterdir())
    engine.albums.favourite(paths[:5])
    engine.albums.rate(paths[3:8], 5)
    engine.albums.add("Summer trip", paths[6:12], create=True)

    favourite = engine.search.run([Term("my favourite dogs")], k=40)
    assert {r.path for r in favourite} == set(paths[:5])
    assert {r.path for r in engine.search.run([Term("5 star dogs")], k=40)} == set(paths[3:8])
    both = engine.search.run([Term("favourite 5 star photos of dogs")], k=40)
    assert {r.path for r in both} == set(paths[3:5])
    in_album = engine.search.run([Term("dogs in the Summer trip album")], k=40)
    assert {r.path for r in in_album} == set(paths[6:12])
    understood = engine.search.understand("dogs in the Summer trip album").as_dict()
    assert understood["albums"] == ["Summer trip"] and understood["text"] == "dogs"
    # a name that is not an album's stays in the text
    assert engine.search.understand("dogs in the Winter album").albums == []


def test_deleting_an_album_can_be_undone_and_keeps_its_photos(engine, photos):
    engine.folders.add(photos)
    engine.updates.index()
    paths = sorted(str(p) for p in photos.iterdir())[:6]
    engine.albums.add("Kids", paths, create=True)
    held = engine.albums.delete("Kids")
    assert engine.albums.all() == [] and len(held) == 6
    assert engine.store.vector_count() == 40 and all(os.path.exists(p) for p in paths)
    restored = engine.albums.restore("Kids", held)
    assert restored.photos == 6 and set(engine.albums.photos("Kids")) == set(paths)


def test_album_mistakes_are_refused_with_a_reason(engine, photos, tmp_path):
    engine.folders.add(photos)
    engine.updates.index()
    photo = str(sorted(photos.iterdir())[0])
    engine.albums.create("Kids")
    with pytest.raises(AlbumError, match="already"):
        engine.albums.create(" kids ")
    with pytest.raises(AlbumError, match="no album called 'Pets'.*Kids"):
        engine.albums.add("Pets", [photo])
    with pytest.raises(AlbumError, match="needs a name"):
        engine.albums.create("   ")
    with pytest.raises(AlbumError, match="0 to 5"):
        engine.albums.rate([photo], 6)
    stranger = tmp_path / "elsewhere.jpg"
    stranger.write_bytes(b"x")
    with pytest.raises(AlbumError, match="not an indexed photo"):
        engine.albums.favourite([str(stranger)])
    engine.albums.create("Pets")
    with pytest.raises(AlbumError, match="already"):
        engine.albums.rename("Pets", "KIDS")
    assert [a.name for a in engine.albums.all()] == ["Kids", "Pets"]


def test_the_cli_lists_albums_and_filters_searches(engine, photos, home, capsys):
    engine.folders.add(photos)
    engine.updates.index()
    paths = sorted(str(p) for p in photos.iterdir())
    assert main(["--home", str(home), "albums", "add", "Summer trip", *paths[:3]]) == 0
    assert main(["--home", str(home), "albums", "add", "Beach", paths[2]]) == 0
    assert main(["--home", str(home), "favourite", paths[2], paths[5]]) == 0
    assert main(["--home", str(home), "rate", "4", paths[5]]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "albums", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "Beach", "photos": 1},
                                                    {"name": "Summer trip", "photos": 3}]
    assert main(["--home", str(home), "search", "--album", "summer trip", "--favourites",
                 "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["path"] == paths[2] and hit["favourite"] and hit["albums"] == ["Beach", "Summer trip"]
    assert main(["--home", str(home), "search", "a dog", "--rating", "4", "--json"]) == 0
    assert [h["path"] for h in json.loads(capsys.readouterr().out)] == [paths[5]]
    assert main(["--home", str(home), "albums", "rename", "Beach", "Seaside"]) == 0
    assert main(["--home", str(home), "albums", "show", "Seaside"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == paths[2]
    assert main(["--home", str(home), "albums", "add", "Seaside", "/nowhere/x.jpg"]) == 2
    assert "not an indexed photo" in capsys.readouterr().err
    assert main(["--home", str(home), "albums", "delete", "Seaside"]) == 0
    assert main(["--home", str(home), "albums", "show", "Seaside"]) == 2
    assert "no album called 'Seaside'" in capsys.readouterr().err


def test_a_photo_edited_in_place_keeps_its_marks_and_albums(engine, photos):
    """Marks are kept by content: an edit (a crop, a filter) makes new content, which must
    not drop the photo out of its albums or lose its heart and stars."""
    from PIL import Image

    engine.folders.add(photos)
    engine.updates.index()
    photo = sorted(photos.iterdir())[0]
    engine.albums.favourite([str(photo)])
    engine.albums.rate([str(photo)], 3)
    engine.albums.add("Kids", [str(photo)], create=True)
    with Image.open(photo) as image:
        image.crop((0, 0, image.width // 2, image.height // 2)).save(photo)
    assert engine.updates.index().embedded == 1
    assert engine.albums.photos("Kids") == [str(photo)]
    marks = engine.albums.marks([str(photo)])[str(photo)]
    assert (marks.rating, marks.favourite) == (3, True)
