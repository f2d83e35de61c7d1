"""``mmrag bench --text``: text-in-photo search measured on phrases rendered onto real
photos — OCR time per photo with and without text, and rank-1 of each phrase as a query in
hybrid, keyword and semantic mode, printed side by side.

The phrases are drawn like text in real photos: several fonts, sizes and colours, rotated
up to 30°, on the busiest region of the photo (the most edges), slightly blurred, saved as
JPEG quality 60.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..core.config import Config, home_dir, load_config
from ..domain.query import Term
from ..library.facade import Library
from ..library.search import SEARCH_MODES
from ..media.files import file_hash, is_image_name

PHRASES = (
    "Hardware Store Receipt", "Midnight Bakery", "Platform Nine Departures", "Lost Cat Pepper",
    "Fresh Lemonade", "Harbour View Hotel", "Museum of Clocks", "Rosewood Avenue",
    "Closed for Renovation", "Garage Sale Saturday", "Blue Lagoon Diner", "Welcome to Oakridge",
    "Parking Permit Required", "Spicy Noodle House", "Annual Kite Festival", "Riverside Library",
    "Vintage Bicycle Repair", "Summit Trail Closed", "Emerald Florist", "Quiet Zone",
    "Northgate Pharmacy", "Coffee and Waffles", "Island Ferry Tickets", "Elm Street Market",
    "Danger High Voltage", "Golden Dragon Takeaway", "Silver Lake Marina", "Thank You Come Again",
    "Pinewood Campground", "Invoice Number Seven", "Mountain Goat Crossing",
    "Grand Central Bowling", "Organic Apple Farm", "Laundry Open Daily",
    "Sunset Boulevard Cinema", "Wildflower Honey", "Electric Scooter Rental",
    "Copper Kettle Tearoom", "Lighthouse Point", "Birthday Party Balloons",
)
COLOURS = ((250, 250, 250), (255, 220, 0), (255, 150, 170), (20, 20, 20), (140, 0, 0),
           (0, 40, 120), (0, 110, 50))
MIN_CONTRAST = 100  # luma levels between the text and the mean of what lies under it
FONT_FOLDERS = ("/usr/share/fonts", "/Library/Fonts", "/System/Library/Fonts",
                "C:/Windows/Fonts")


FONT_FACES = ("DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSansCondensed-BoldOblique.ttf", "DejaVuSansMono-Bold.ttf",
              "DejaVuSansMono.ttf", "DejaVuSerif-Italic.ttf")
"""The faces the phrases are drawn in where the system has them all (DejaVu, in most Linux
distributions): the same pick, and the same measurement, whatever else is installed."""


def fonts() -> list[Path | None]:
    """Six TrueType fonts of this system (:data:`FONT_FACES`, else six spread over what
    there is, in a fixed order), and None for Pillow's built-in one (so there is always
    one)."""
    found = sorted({p for folder in FONT_FOLDERS if Path(folder).is_dir()
                    for p in Path(folder).rglob("*.ttf") if "math" not in p.name.lower()},
                   key=lambda p: p.name)
    named = {p.name: p for p in found}
    if all(face in named for face in FONT_FACES):
        return [named[face] for face in FONT_FACES] + [None]
    step = max(1, len(found) // 6)
    return found[::step][:6] + [None]


def load_font(source: Path | None, size: int) -> ImageFont.FreeTypeFont:
    """*source* (a font of :func:`fonts`) at *size* pixels."""
    return ImageFont.truetype(str(source), size) if source else ImageFont.load_default(size)


def _luma(colour: tuple[int, int, int]) -> float:
    """ITU-R BT.601 luma of an RGB colour, 0–255 (what ``convert("L")`` computes)."""
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def _busiest(image: Image.Image, width: int, height: int, rng: random.Random) -> tuple[int, int]:
    """Top-left corner of the *width* × *height* window with the most edges, of a few
    dozen random candidates."""
    edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    integral = edges.cumsum(0).cumsum(1)
    best, best_xy = -1.0, (0, 0)
    for _ in range(40):
        x = rng.randint(0, max(0, image.width - width - 1))
        y = rng.randint(0, max(0, image.height - height - 1))
        x2, y2 = min(x + width, image.width) - 1, min(y + height, image.height) - 1
        total = integral[y2, x2] - integral[y, x2] - integral[y2, x] + integral[y, x]
        if total > best:
            best, best_xy = float(total), (x, y)
    return best_xy


def render(photo: Path, phrase: str, out: Path, rng: random.Random) -> None:
    """Write *photo* with *phrase* drawn on it to *out* (JPEG quality 60)."""
    image = Image.open(photo).convert("RGB")
    source = rng.choice(fonts())
    size = rng.randint(max(20, image.height // 16), max(28, image.height // 9))
    font = load_font(source, size)
    left, top, right, bottom = font.getbbox(phrase)
    layer = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
    layer_draw = ImageDraw.Draw(layer)
    angle = rng.uniform(-30, 30)
    rotated_size = layer.rotate(angle, expand=True).size
    if rotated_size[0] > image.width:  # too long for the photo: smaller
        font = load_font(source, size * image.width // (rotated_size[0] + 20))
        left, top, right, bottom = font.getbbox(phrase)
        layer = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
        layer_draw = ImageDraw.Draw(layer)
    x, y = _busiest(image, *layer.rotate(angle, expand=True).size, rng)
    region = np.asarray(image.crop((x, y, x + layer.width, y + layer.height)).convert("L"))
    # Signs are made to be read: a colour that stands out from what lies under the text.
    contrast = {c: abs(_luma(c) - float(region.mean())) for c in COLOURS}
    colour = rng.choice([c for c in COLOURS if contrast[c] >= MIN_CONTRAST]
                        or [max(COLOURS, key=contrast.get)])
    layer_draw.text((4 - left, 4 - top), phrase, font=font, fill=(*colour, 255))
    layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    image.paste(layer, (x, y), layer)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.5)))
    image.save(out, "JPEG", quality=60)


def render_phrases(photos: list[Path], out: Path, count: int = len(PHRASES),
                   seed: int = 0) -> list[tuple[Path, str]]:
    """Render the first *count* :data:`PHRASES` onto the first *count* *photos*, into
    *out* as ``text-NN.jpg``; returns (file, phrase) pairs."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for n, (photo, phrase) in enumerate(zip(photos, PHRASES[:count])):
        target = out / f"text-{n:02d}.jpg"
        render(photo, phrase, target, rng)
        made.append((target, phrase))
    return made


@dataclass
class PhraseRanks:
    """Rank-1 rate of the phrases as queries, per search mode (0–1)."""

    rank1: dict[str, float]
    misses: dict[str, list[str]]


def phrase_ranks(engine: Library, made: list[tuple[Path, str]]) -> PhraseRanks:
    """Query each phrase in every mode; a hit is its own photo first."""
    rank1, misses = {}, {}
    for mode in SEARCH_MODES:
        missed = []
        for path, phrase in made:
            results = engine.search.run([Term(phrase)], k=5, mode=mode)
            if not results or Path(results[0].path).name != path.name:
                missed.append(phrase)
        rank1[mode] = 1 - len(missed) / len(made)
        misses[mode] = missed
    return PhraseRanks(rank1, misses)


def _search_latencies(engine: Library, stop: threading.Event, count: int) -> list[float]:
    """Milliseconds of up to *count* hybrid searches, one every 0.1 s until *stop*."""
    latencies = []
    for n in range(count):
        if stop.is_set():
            break
        started = time.perf_counter()
        engine.search.run([Term(PHRASES[n % len(PHRASES)])], k=20, mode="hybrid")
        latencies.append((time.perf_counter() - started) * 1000)
        stop.wait(0.1)
    return latencies


DETECTION_SETTINGS = (("min", 640, 1), ("max", 960, 1), ("max", 640, 1), ("max", 512, 1),
                      ("max", 640, 2))
"""(rapidocr ``limit_type``, detection side in pixels, ONNX Runtime threads) compared by
:func:`detection_table`; ("min", 640) was the app's setting before, ("max", 640, 1) is now."""


def read_verbatim(lines: list, phrase: str) -> bool:
    """Whether the recognised *lines* hold *phrase*, case and line breaks aside."""
    return phrase.lower() in " ".join(line.text for line in lines).lower()


def detection_table(made: list[tuple[Path, str]], plain: list[Path]) -> None:
    """Print, for each of :data:`DETECTION_SETTINGS`, OCR ms per photo (decode, detection,
    recognition; in this process, one photo at a time) over the phrase photos *made* and the
    *plain* ones, and how many phrases were read verbatim."""
    from ..understanding.ocr import TextReader

    print(f"OCR settings over {len(made)} phrase photos + {len(plain)} others (ms per photo):")
    print(f"  {'detect on':>22} {'threads':>7} {'all':>6} {'text':>6} {'others':>6}  read verbatim")
    for limit, side, threads in DETECTION_SETTINGS:
        reader = TextReader(threads, side, limit)
        reader.read(made[0][0])  # the models load outside the timing
        times, read, phrases = [], 0, dict(made)
        for path in [p for p, _ in made] + plain:
            started = time.perf_counter()
            lines = reader.read(path)
            times.append((time.perf_counter() - started) * 1000)
            read += path in phrases and read_verbatim(lines, phrases[path])
        where = "longest" if limit == "max" else "shortest"
        print(f"  {f'{where} side {side} px':>22} {threads:>7} {statistics.mean(times):>6.0f} "
              f"{statistics.mean(times[:len(made)]):>6.0f} {statistics.mean(times[len(made):]):>6.0f}"
              f"  {read}/{len(made)}")


def run_text_bench(photos_dir: Path, count: int = len(PHRASES),
                   random_weights: bool = False) -> None:
    """Index *photos_dir* plus *count* phrase photos made from its first photos, run the
    understanding pass, and print OCR time per photo and phrase rank-1 per mode."""
    photos = sorted(p for p in photos_dir.iterdir() if is_image_name(p))
    with tempfile.TemporaryDirectory(prefix="mmrag-text-bench-") as scratch:
        library, home = Path(scratch) / "photos", Path(scratch) / "home"
        made = render_phrases(photos, library / "phrases", count)
        shutil.copytree(photos_dir, library / "plain")
        detection_table(made, photos[count:count + 60])
        config: Config = load_config(home_dir())
        config.roots, config.understand = [], ["text"]
        engine = Library(home=home, config=config, random_weights=random_weights)
        engine.folders.add(library)
        engine.updates.index()
        times: dict[str, float] = {}
        last = [time.monotonic()]

        def tick(progress) -> None:
            now = time.monotonic()
            if progress.path:
                times[progress.path] = now - last[0]
            last[0] = now

        before = _search_latencies(engine, threading.Event(), 30)
        done = threading.Event()
        during: list[float] = []
        searcher = threading.Thread(
            target=lambda: during.extend(_search_latencies(engine, done, 10_000)))
        searcher.start()
        try:
            report = engine.updates.understand(on_progress=tick)
        finally:
            done.set()
            searcher.join()
        texts = {str(p) for p, _ in made}
        with_text = [t * 1000 for p, t in times.items() if p in texts]
        without = [t * 1000 for p, t in times.items() if p not in texts]
        print(f"OCR over {len(times)} photos: {report.seconds:.1f} s in all, "
              f"{report.seconds / max(1, len(times)) * 1000:.0f} ms per photo on average "
              "(with the helper's start)")
        for label, values in (("with rendered text", with_text), ("the others", without)):
            if values:
                print(f"  {label:>18}: {len(values)} photos, median "
                      f"{statistics.median(values):.0f} ms, mean {statistics.mean(values):.0f} ms")
        print(f"hybrid search latency p50: {statistics.median(before):.1f} ms before the "
              f"pass, {statistics.median(during):.1f} ms during it ({len(during)} searches; "
              f"{statistics.median(during) / statistics.median(before) - 1:+.1%})")
        read = sum(1 for p, phrase in made
                   if phrase.lower() in (engine.search.understood(file_hash(p)).get("text") or "")
                   .lower().replace("\n", " "))
        print(f"phrases read verbatim: {read} of {len(made)}")
        ranks = phrase_ranks(engine, made)
        print("rank-1 of the phrase's photo: " + "   ".join(
            f"{mode} {ranks.rank1[mode]:.1%}" for mode in SEARCH_MODES))
        for mode in SEARCH_MODES:
            if ranks.misses[mode]:
                print(f"  missed in {mode}: {', '.join(ranks.misses[mode])}")
        engine.close()

