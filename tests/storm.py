"""A storm: thousands of photos copied into a watched folder at once. Every one must be
indexed exactly once; the time taken and peak memory are printed.

    python tests/storm.py --files 10000
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FLICKR, write_tiny_model  # noqa: E402
from mmrag_desktop.core.config import Config  # noqa: E402
from mmrag_desktop.library.facade import Library  # noqa: E402
from mmrag_desktop.library.watcher import Watcher  # noqa: E402

QUALITIES = (70, 75, 80, 85, 90)


def make_variants(sources: list[Path], count: int, out: Path) -> list[Path]:
    """*count* distinct JPEGs: each source re-encoded at several qualities, mirrored or not."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for k in range(count):
        source = sources[k % len(sources)]
        variant = k // len(sources)
        with Image.open(source) as img:
            img = img.convert("RGB")
            if variant % 2:
                img = ImageOps.mirror(img)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=QUALITIES[(variant // 2) % len(QUALITIES)])
        target = out / f"{k // 1000:02d}" / f"storm_{k:05d}.jpg"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(buf.getvalue())
        made.append(target)
    return made


def storm(engine: Library, staging: Path, watched: Path, timeout: float = 3600) -> dict:
    """Copy every file under *staging* into the watched folder and wait until all are
    indexed. Returns counts, seconds and peak RSS (MiB)."""
    files = sorted(staging.rglob("*.jpg"))
    engine.folders.add(watched)
    engine.vector_index()
    w = Watcher(engine, settle=1.0, max_delay=10.0, rescan_interval=0)
    w.start()
    while w.runs < 1:
        time.sleep(0.05)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    for f in files:
        target = watched / f.relative_to(staging)
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(f, target)
    copied = time.monotonic() - started
    while engine.store.vector_count() < len(files) and time.monotonic() - started < timeout:
        time.sleep(0.2)
    while not w.idle():
        time.sleep(0.2)
    seconds = time.monotonic() - started
    w.stop()
    paths = engine.store.db.execute("SELECT COUNT(DISTINCT path), COUNT(*) FROM photos").fetchone()
    return {"files": len(files), "rows": paths[1], "distinct_paths": paths[0],
            "vectors": engine.vector_index().count(), "runs": w.runs, "copy_seconds": round(copied, 1),
            "seconds": round(seconds, 1), "files_per_second": round(len(files) / seconds, 1),
            "peak_rss_mib_before": round(rss_before), "peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    sources = sorted((FLICKR / "images").glob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="mmrag-storm-") as tmp:
        root = Path(tmp)
        model_config, weights = write_tiny_model(root)
        make_variants(sources, args.files, root / "staging")
        config = Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                        model_config=str(model_config), understand=[])
        engine = Library(home=root / "home", config=config)
        (root / "watched").mkdir()
        result = storm(engine, root / "staging", root / "watched")
        print(json.dumps(result))
        ok = result["rows"] == result["distinct_paths"] == result["vectors"] == result["files"]
        print(f"storm: {int(ok)} passed, {int(not ok)} failed")


if __name__ == "__main__":
    main()
