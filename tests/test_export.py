"""Export: copies in a folder, as they are or made smaller, never overwriting; an album or the
favourites from the command line; bad input skipped with a reason."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image

from mmrag_desktop.cli import main
from mmrag_desktop.library.export import ExportError, export_photos
from conftest import coco_photos


def test_copies_keep_their_names_and_nothing_is_overwritten(tmp_path):
    photos = coco_photos()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    first, second = shutil.copy(photos[0], a / "IMG_1.jpg"), shutil.copy(photos[1], b / "IMG_1.jpg")
    broken = a / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a photo")
    out = tmp_path / "out"
    out.mkdir()
    (out / "IMG_1.jpg").write_bytes(b"the user's own file")
    report = export_photos([first, second, str(broken)], out, max_side=200)
    assert [os.path.basename(p) for p in report.written] == ["IMG_1 (2).jpg", "IMG_1 (3).jpg"]
    assert (out / "IMG_1.jpg").read_bytes() == b"the user's own file"
    assert [p for p, _ in report.skipped] == [str(broken)]
    for written in report.written:
        with Image.open(written) as image:
            assert max(image.size) == 200
    originals = export_photos([first], out)
    assert open(originals.written[0], "rb").read() == open(first, "rb").read()
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
    with pytest.raises(ExportError, match="not a folder"):
        export_photos([first], tmp_path / "missing")


def test_an_upright_copy_of_a_rotated_photo(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 is written upright, orientation
    reset, so every viewer shows it the right way up."""
    source = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (800, 400), "red").save(source, exif=exif.tobytes())
    [written] = export_photos([str(source)], tmp_path, max_side=300).written
    with Image.open(written) as image:
        assert image.size == (150, 300) and image.getexif().get(0x0112) == 1


def test_the_cli_exports_an_album(engine, photos, home, tmp_path, capsys):
    engine.folders.add(photos)
    engine.updates.index()
    paths = sorted(str(p) for p in photos.iterdir())[:3]
    engine.albums.add("Trip", paths, create=True)
    engine.albums.favourite(paths[:1])
    out = tmp_path / "usb"
    out.mkdir()
    assert main(["--home", str(home), "export", str(out), "--album", "Trip", "--favourites"]) == 0
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in paths)
    assert "exported 3 photo(s)" in capsys.readouterr().out
    assert main(["--home", str(home), "export", str(out)]) == 2
    assert "nothing to export" in capsys.readouterr().err
