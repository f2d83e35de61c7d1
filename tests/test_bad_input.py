"""Bad and unusual input, generated from real photos: every case is recorded with its
reason or indexed correctly; nothing crashes; the good photos are all indexed."""

from __future__ import annotations

import io
import os
import random
import shutil
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from mmrag_desktop.library import indexer as indexer_module
from mmrag_desktop.domain.query import Term
from conftest import coco_photos


@pytest.fixture
def corpus(tmp_path):
    """(folder, {name: expected reason fragment or None for 'indexes fine'})."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    photos = coco_photos()
    data = photos[0].read_bytes()
    expected: dict[str, str | None] = {}

    def put(name: str, content: bytes, reason: str | None) -> None:
        (folder / name).write_bytes(content)
        expected[name] = reason

    put("zero.jpg", b"", "empty file")
    put("text.jpg", b"this is not a photo\n" * 20, "not an image")
    put("random.jpg", random.Random(0).randbytes(5000), "not an image")
    put("page.png", b"<html><body>not a png</body></html>", "not an image")
    put("header_only.jpg", data[:2], "not an image")
    for cut in (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65,
                0.7, 0.75, 0.8, 0.85, 0.9, 0.97):
        put(f"truncated_{int(cut * 100):02d}.jpg", data[: int(len(data) * cut)], "truncated")
    put("giant_header.jpg", _claim_size(data, 65535, 65535), "decompression bomb")
    with Image.open(photos[1]) as img:
        for fmt, ext, cuts in (("PNG", "png", 8), ("WEBP", "webp", 4), ("GIF", "gif", 3),
                               ("TIFF", "tiff", 3)):
            encoded = _encode(img.convert("P") if fmt == "GIF" else img, fmt)
            for i in range(cuts):
                cut = int(len(encoded) * (i + 1) / (cuts + 1))
                put(f"truncated_{i}.{ext}", encoded[:cut], "")
        put("alpha.png", _encode(img.convert("RGBA"), "PNG"), None)
        put("grey16.png", _encode(img.convert("L").point(lambda v: v * 256).convert("I;16"),
                                  "PNG"), None)
        put("photo.webp", _encode(img, "WEBP"), None)
        put("photo.bmp", _encode(img, "BMP"), None)
        put("photo.tiff", _encode(img, "TIFF"), None)
        heic = pillow_heif.from_pillow(img.convert("RGB")).save
        buf = io.BytesIO()
        heic(buf, quality=80)
        put("photo.heic", buf.getvalue(), None)
        for i, cut in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
            put(f"truncated_{i}.heic", buf.getvalue()[: int(len(buf.getvalue()) * cut)], "")
        frames = [img.convert("P"), img.rotate(180).convert("P")]
        gif = io.BytesIO()
        frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
        put("animated.gif", gif.getvalue(), None)
    bomb = io.BytesIO()
    Image.new("1", (15000, 15000)).save(bomb, "PNG")  # 225 MP in a few kB
    put("bomb.png", bomb.getvalue(), "decompression bomb")
    put("bad_exif.jpg", _with_broken_exif(photos[2]), None)
    exif = Image.Exif()
    exif[0x0112] = 9  # an orientation value that does not exist
    exif[306] = "not a date"
    put("odd_exif.jpg", _encode_with_exif(photos[4], exif), None)
    for name in ("ünïcödé 写真.jpg", "emoji 🐕🐕.jpg", "rtl שלום.jpg", "spaces  and\ttab.jpg"):
        shutil.copy2(photos[3 + len(expected) % 5], folder / name)
        expected[name] = None
    nfd = "cafe\u0301.jpg"
    shutil.copy2(photos[9], folder / nfd)
    expected[nfd] = None
    try:
        raw = os.fsdecode(b"bad-\xff\xfe-utf8.jpg")
        shutil.copy2(photos[10], os.path.join(folder, raw))
        expected[raw] = None
    except (OSError, UnicodeError):
        pass  # the file system refuses such names: nothing to test here
    (folder / "loop").mkdir()
    os.symlink("..", folder / "loop" / "back_to_parent")
    os.symlink(folder / "nowhere.jpg", folder / "dangling.jpg")
    # a link to a file of the library is that file: recorded once, under its real name
    os.symlink(folder / "zero.jpg", folder / "link_to_file.jpg")
    good = folder / "good"
    good.mkdir()
    for photo in photos[20:30]:
        shutil.copy2(photo, good / photo.name)
        expected[f"good/{photo.name}"] = None
    return folder, expected


def _claim_size(jpeg: bytes, height: int, width: int) -> bytes:
    """The JPEG with its frame header (SOF0) claiming another size."""
    at = jpeg.find(b"\xff\xc0")
    assert at > 0
    return (jpeg[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big")
            + jpeg[at + 9:])


def _encode_with_exif(photo, exif: Image.Exif) -> bytes:
    buf = io.BytesIO()
    with Image.open(photo) as img:
        img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _with_broken_exif(photo) -> bytes:
    """The photo with an EXIF block whose offsets point past its end."""
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00" + b"\xff" * 40
    segment = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    data = photo.read_bytes()
    return data[:2] + segment + data[2:]


def test_every_bad_input_is_recorded_and_good_photos_indexed(engine, corpus):
    folder, expected = corpus
    skipped_expected = {"dangling.jpg": "broken symbolic link"}
    report = engine.updates.index([str(folder)])
    errors = {os.path.relpath(p, folder): reason for p, reason in report.errors}
    for name, reason in expected.items():
        if reason is None:
            assert name not in errors, (name, errors.get(name))
        else:
            assert name in errors and reason in errors[name], (name, errors.get(name))
    bad_cases = [n for n, r in expected.items() if r is not None] + list(skipped_expected)
    assert len(bad_cases) >= 50
    skipped = {os.path.relpath(p, folder): reason for p, reason in report.skipped}
    assert skipped == skipped_expected
    good = [n for n, r in expected.items() if r is None]
    assert engine.store.counts()["ok"] == len(good)
    assert engine.store.counts()["error"] == len(expected) - len(good)
    stored = {os.path.relpath(p, folder): reason for p, reason in engine.store.errors()}
    assert stored == errors  # reasons are kept in the library, not only printed
    assert "link_to_file.jpg" not in errors and "zero.jpg" in errors
    for photo in coco_photos()[20:30]:  # the good ones are searchable
        hit = engine.search.run([Term(photo=str(photo))], k=1)[0]
        assert hit.path == str(folder / "good" / photo.name)
    rerun = engine.updates.index([str(folder)])
    assert rerun.embedded == 0 and rerun.errors == []  # unchanged bad files are not retried


def test_file_vanishing_between_scan_and_read_is_skipped(engine, photos, monkeypatch):
    victim = sorted(photos.iterdir())[5]
    real_hash = indexer_module.file_hash

    def hash_after_delete(path):
        if path == victim:
            victim.unlink()
        return real_hash(path)

    monkeypatch.setattr(indexer_module, "file_hash", hash_after_delete)
    report = engine.updates.index([str(photos)])
    assert report.skipped == [(str(victim), "vanished before it could be read")]
    assert report.embedded == 39 and engine.store.vector_count() == 39


def test_unreadable_file_is_recorded(engine, photos, monkeypatch):
    victim = sorted(photos.iterdir())[0]
    real_open = Path.open

    def open_(path, *args, **kwargs):
        # chmod 000 does not stop root, who runs CI: refuse the read the way the OS would.
        if path == victim:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    report = engine.updates.index([str(photos)])
    assert report.errors == [(str(victim), "permission denied")]
    assert engine.store.vector_count() == 39


def test_a_named_pipe_as_query_photo_is_refused_not_waited_on(home, config, photos, tmp_path):
    """``mkfifo p.jpg; mmrag search --photo p.jpg`` waited for a writer for ever."""
    import subprocess
    import sys

    from conftest import cli_env
    from mmrag_desktop.core.config import save_config

    home.mkdir(parents=True)
    config.roots = [str(photos)]
    save_config(home, config)
    pipe = tmp_path / "p.jpg"
    os.mkfifo(pipe)
    run = [sys.executable, "-m", "mmrag_desktop"]
    subprocess.run(run + ["index"], env=cli_env(home), check=True, capture_output=True)
    out = subprocess.run(run + ["search", "--photo", str(pipe)], env=cli_env(home),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "not a regular file" in out.stderr


def test_names_with_terminal_escapes_are_printed_escaped(engine, photos, capsys):
    """A file name holding ``ESC [2J`` cleared the screen when `mmrag search` printed it."""
    from mmrag_desktop.cli import main

    evil = photos / "evil\x1b[2J\u202egpj.jpg"
    shutil.copyfile(coco_photos()[100], evil)  # not one of the 40: no identical copy
    engine.folders.add(photos)
    engine.updates.index()
    engine.close()
    assert main(["--home", str(engine.home), "search", "--photo", str(evil), "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "evil\\x1b[2J\\u202egpj.jpg" in out


def test_a_giant_animated_gif_is_refused_before_decoding(engine, tmp_path):
    """Frames of 16,000 × 16,000 in a GIF of a few kB went through the video path at full
    size (4.9 GB for two such GIFs) although the same picture as a still is refused: one
    pixel limit for every decoder, checked before decoding."""
    import resource

    from mmrag_desktop.media.files import BadImage
    from mmrag_desktop.media.video import keyframes

    folder = tmp_path / "gifs"
    folder.mkdir()
    frames = [Image.new("1", (16000, 16000)), Image.new("1", (16000, 16000), 1)]
    frames[0].save(folder / "giant.gif", save_all=True, append_images=frames[1:])
    del frames
    assert (folder / "giant.gif").stat().st_size < 1_000_000
    with pytest.raises(BadImage, match="MP limit"):
        keyframes(folder / "giant.gif", min_side=224)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.folders.add(folder)
    report = engine.updates.index()
    assert report.embedded == 0 and "MP limit" in report.errors[0][1]
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, grown_mb  # a 256 MP frame alone would be 768 MB of RGB
