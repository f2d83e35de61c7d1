"""Screenshots of the GUI for the README, made headless from the real window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/screenshots.py [--out resources/screenshots]

Indexes coco-mini (../shared/data) with the tiny random-weight test model into a temporary
library, so the rankings shown are not meaningful; everything else is the real app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import (COCO, REPO, encode_video, render_receipt, with_gps,  # noqa: E402
                      write_tiny_model)
from test_concepts import shots_of  # noqa: E402


def _ask_answer(window, photos: Path, wait, pump, out: Path) -> None:
    """The Ask panel after a question about a dropped photo, with the tests' real gemma-3
    270M GGUF and random-weight projector (tests/vlm_fixture.py; the answer's words are
    that small text-only model's, the layout is the app's). Skipped without llama.cpp."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        print("no llama-cpp-python: ask-answer.png not made")
        return
    from vlm_fixture import gemma_gguf, tiny_mmproj

    config = window.bridge.engine.config
    config.vlm_model, config.vlm_mmproj = str(gemma_gguf()), str(tiny_mmproj())
    config.vlm_max_tokens, config.ask_photos = 60, 3
    window.bridge.vlm_ready.emit("gemma-3-270m")
    panel = window.ask_panel
    panel.set_photo(str(sorted(photos.rglob("0*.jpg"))[3]))
    panel.question.setText("What is in this photo?")
    answers = []
    window.bridge.answered.connect(answers.append)
    panel.ask()
    wait(lambda: bool(answers))
    pump(2.0)  # thumbnails
    window.ask_dock.resize(520, 900)
    window.ask_dock.grab().save(str(out / "ask-answer.png"))


def _extraction(window, wait, pump, out: Path) -> None:
    """The Extract dialog on a photographed receipt, filled by the tests' real gemma-3 270M
    without a projector: it reads the text the OCR recognised (the values are that small
    model's). Skipped without llama.cpp."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        print("no llama-cpp-python: extract-receipt.png not made")
        return
    from vlm_fixture import gemma_gguf

    config = window.bridge.engine.config
    config.vlm_model, config.vlm_mmproj = str(gemma_gguf()), ""
    window.bridge.vlm.unload()
    done = window.searches_done
    window.query.setText("Hardware Haven")
    window.set_query_photo(None)  # searches
    wait(lambda: window.searches_done > done)
    paths = [r.path for r in window.results]
    preview = window.open_preview(next(i for i, p in enumerate(paths)
                                       if p.endswith("hardware-haven.jpg")))
    dialog = preview._extract()
    dialog.schema.setCurrentText("receipt")
    dialog.extract()
    wait(lambda: dialog.extraction is not None or dialog.extract_button.isEnabled())
    if dialog.extraction is None:
        raise SystemExit(f"extraction: {dialog.status.text()} ({preview.result.path})")
    pump(0.5)
    dialog.grab().save(str(out / "extract-receipt.png"))
    dialog.close()
    preview.accept()


def _map(window, wait, pump, out: Path) -> None:
    """The map of the library with a lasso's photos chosen and one hovered (the layout of
    the tiny random-weight model's embeddings: its clusters mean little)."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QPainterPath

    dialog = window.open_map()
    wait(lambda: dialog.view is not None)
    canvas = dialog.canvas
    pump(0.3)
    centre = canvas._screen()[len(canvas.xy) // 3]
    lasso = QPainterPath(QPointF(centre[0] - 60, centre[1] - 30))
    for dx, dy in ((30, -70), (80, -10), (50, 60), (-40, 50)):
        lasso.lineTo(QPointF(centre[0] + dx, centre[1] + dy))
    lasso.closeSubpath()
    canvas.select_in(lasso)
    canvas._hover_at(QPointF(*centre))
    pump(1.5)  # the hovered photo's thumbnail
    canvas._lasso = lasso  # drawn as it was while dragging
    canvas.update()
    pump(0.2)
    dialog.grab().save(str(out / "map.png"))
    canvas._lasso = None
    dialog.close()


def _videos(window, clips: list[Path], scene: Path, wait, pump, out: Path) -> None:
    """The grid after a search by one scene of a video: the video found at that moment,
    its frame as the thumbnail with a ▶ badge."""
    done = window.searches_done
    window.query.setText("")
    window.set_query_photo(str(scene))
    wait(lambda: window.searches_done > done)
    pump(2.0)  # thumbnails
    window.grab().save(str(out / "videos.png"))


def _concepts(window, shots: list[Path], wait, pump, out: Path) -> None:
    """A personal concept made from 4 shots, searched by its name, and the list of
    concepts."""
    window.label("The Millers", [str(p) for p in shots[:4]], True)
    wait(lambda: window.filter_bar.concept_names == ["The Millers"])
    done = window.searches_done
    window.set_query_photo(None)
    window.query.setText("the Millers")
    window.search()
    wait(lambda: window.searches_done > done)
    pump(2.0)  # thumbnails
    window.grab().save(str(out / "concepts.png"))
    dialog = window.open_concepts()
    wait(lambda: dialog.list.count() and "examples" in dialog.list.item(0).text())
    dialog.list.setCurrentRow(0)
    pump(0.2)
    dialog.grab().save(str(out / "concepts-list.png"))
    dialog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PIL import Image
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from mmrag_desktop.core.config import Config, save_config
    from mmrag_desktop.library.facade import Library
    from mmrag_desktop.gui import resource
    from mmrag_desktop.bench.gui import run_loop, wait_until
    from mmrag_desktop.gui.adapters.bridge import LibraryBridge
    from mmrag_desktop.gui.window import MainWindow
    from mmrag_desktop.bench.text import render_phrases

    def pump(seconds: float) -> None:
        run_loop(int(seconds * 1000))

    def wait(condition) -> None:
        if not wait_until(condition, 300):
            raise SystemExit("timed out")

    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_config, weights = write_tiny_model(tmp)
        photos = tmp / "Pictures" / "Holidays"
        shutil.copytree(COCO / "images", photos)
        first = sorted(photos.glob("*.jpg"))[0]
        (photos / "scan-0042.jpg").write_bytes(first.read_bytes()[:3000])  # a truncated file
        twin = sorted(photos.glob("*.jpg"))[5]  # copies for the duplicates view
        shutil.copy2(twin, photos / f"copy of {twin.name}")
        with Image.open(twin) as img:
            img.resize((img.width // 2, img.height // 2)).save(photos / "IMG_small.jpg",
                                                                quality=60)
        # A library that looks lived in: subfolders, and dates spread over a year and a half
        # (file times; coco-mini has no EXIF dates).
        for i, photo in enumerate(sorted(photos.glob("0*.jpg"))):
            album = photos / ("2024 Lisbon" if i % 5 == 1 else "Garden" if i % 7 == 2 else "")
            album.mkdir(exist_ok=True)
            moved = photo.rename(album / photo.name)
            when = 1_717_000_000 - i * 200_000  # a photo every 2.3 days back from June 2024
            os.utime(moved, (when, when))
        # Text to read (phrases drawn onto photos, as `mmrag bench --text` does) and a place.
        render_phrases(sorted((COCO / "images").glob("*.jpg"))[200:], photos / "Signs", 6)
        with_gps(sorted((COCO / "images").glob("*.jpg"))[230], photos / "Paris.jpg",
                 48.8584, 2.2945)
        render_receipt(photos / "Receipts" / "hardware-haven.jpg")
        # Videos made of coco-mini photos (3 s a scene), and a family seen in 12 shots.
        (photos / "Clips").mkdir()
        coco = sorted((COCO / "images").glob("*.jpg"))
        clips = [photos / "Clips" / "birthday.mp4", photos / "Clips" / "street.mov"]
        encode_video(clips[0], coco[60:64], seconds=3.0)
        encode_video(clips[1], coco[64:68], seconds=3.0)
        (photos / "Family").mkdir()
        shots = shots_of(coco[1], photos / "Family", 12)
        for n, made in enumerate(clips + shots):  # taken on a few days in 2023
            when = 1_690_000_000 + (n // 4) * 3_000_000 + n * 600
            os.utime(made, (when, when))
        home = tmp / "home"
        home.mkdir()
        save_config(home, Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                                 model_config=str(model_config), thumbnail_size=192))
        window = MainWindow(LibraryBridge(Library(home=home), settle=0.3),
                            QIcon(str(resource("mmrag-desktop.svg"))))
        window.resize(1600, 900)
        window.show()
        window.start()
        wait(lambda: window.wizard is not None and window.wizard.isVisible())
        window.wizard.folders_page.add_folder(str(photos))
        pump(0.3)
        window.wizard.grab().save(str(args.out / "first-run.png"))
        window.wizard.accept()
        wait(lambda: window.folders_panel.states and
             window.folders_panel.states[0].state == "up to date")
        wait(lambda: window.stack.currentWidget() is window.timeline_view)
        window.folders_panel.tree.topLevelItem(0).setExpanded(True)
        pump(2.0)  # thumbnails
        window.grab().save(str(args.out / "timeline.png"))
        example = sorted(photos.glob("*.jpg"))[20]
        done = window.searches_done
        window.query.setText("at the beach")
        window.set_query_photo(str(example))
        wait(lambda: window.searches_done > done)
        pump(2.0)  # thumbnails
        window.grab().save(str(args.out / "main-window.png"))
        window.folders_dock.grab().save(str(args.out / "folders.png"))
        preview = window.open_preview(0)
        preview.resize(1100, 700)
        pump(1.5)
        preview.grab().save(str(args.out / "preview.png"))
        preview.accept()
        window.ask_dock.grab().save(str(args.out / "ask-needs-setup.png"))
        _ask_answer(window, photos, wait, pump, args.out)
        dialog = window.open_vlm_setup()
        pump(0.3)
        dialog.grab().save(str(args.out / "ask-setup.png"))
        dialog.reject()
        duplicates = window.open_duplicates()
        duplicates.threshold.setValue(99.9)  # the tiny model: see tests/test_duplicates.py
        duplicates.find()
        wait(lambda: duplicates.find_button.isEnabled() and duplicates.groups)
        pump(1.5)  # thumbnails
        duplicates.grab().save(str(args.out / "duplicates.png"))
        duplicates.reject()
        _map(window, wait, pump, args.out)
        _videos(window, clips, coco[62], wait, pump, args.out)
        _concepts(window, shots, wait, pump, args.out)
        # What the understanding pass read: a search by the text in a photo, and its preview.
        engine = window.bridge.engine
        wait(lambda: all(done == total for done, total in
                         engine.updates.understanding_pass().pending().values()))
        done = window.searches_done
        window.query.setText("Midnight Bakery")
        window.set_query_photo(None)  # searches
        wait(lambda: window.searches_done > done)
        preview = window.open_preview(0)
        preview.resize(1100, 700)
        pump(1.5)
        preview.grab().save(str(args.out / "preview-text.png"))
        preview.accept()
        _extraction(window, wait, pump, args.out)
        window.close()
        app.processEvents()
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()
