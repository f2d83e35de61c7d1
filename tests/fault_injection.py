"""Crash safety: SIGKILL `mmrag index` at random points while the photo folder keeps
changing, and check after every kill that nothing committed is lost or duplicated.

The test suite runs a few kills; for the full campaign run it as a script:

    python tests/fault_injection.py --kills 100
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import coco_photos, cli_env, write_tiny_model  # noqa: E402
from mmrag_desktop.engine import Engine  # noqa: E402
from mmrag_desktop.imaging import content_hash  # noqa: E402


def _seq(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0


def mutate(folder: Path, pool: list[Path], rng: random.Random) -> None:
    """Add, delete, move and rename some photos, as a person would between runs."""
    present = sorted(p for p in folder.rglob("*.jpg"))
    unused = [p for p in pool if not any(q.name.endswith(p.name) for q in present)]
    for photo in rng.sample(unused, min(len(unused), rng.randint(0, 12))):
        shutil.copy2(photo, folder / photo.name)
    for victim in rng.sample(present, min(len(present), rng.randint(0, 3))):
        victim.unlink()
    present = sorted(p for p in folder.rglob("*.jpg"))
    for mover in rng.sample(present, min(len(present), rng.randint(0, 3))):
        sub = folder / rng.choice(["a", "b", "c"])
        sub.mkdir(exist_ok=True)
        target = sub / f"m{rng.randint(0, 10**6)}_{mover.name}"
        if not target.exists():
            mover.rename(target)


def kill_once(home: Path, rng: random.Random) -> bool:
    """Run `mmrag index` and SIGKILL it at a random point. True if it was killed mid-work."""
    db = home / "library.db"
    before = _seq(db)
    proc = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "index"], env=cli_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if rng.random() < 0.15:
        time.sleep(rng.uniform(0.0, 3.0))  # sometimes while it starts up
    else:
        deadline = time.monotonic() + 60
        while _seq(db) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside the run
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def on_disk(folder: Path) -> dict[str, str]:
    return {str(p): content_hash(p.read_bytes()) for p in folder.rglob("*.jpg")}


def check(home: Path, folder: Path, committed: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Reopen the library and check its invariants after a kill.

    Args:
        committed: path → hash of the rows that held an embedding before this kill.

    Returns:
        The rows holding an embedding now (path → hash) and the repairs the reopen made.
    """
    engine = Engine(home=home)
    try:
        vectors = engine.vectors
        rows = engine.store.db.execute(
            "SELECT id, path, hash FROM photos WHERE vector IS NOT NULL").fetchall()
        paths = [p for _, p, _ in rows]
        assert len(paths) == len(set(paths)), "a photo is in the library twice"
        assert vectors.ids() == {i for i, _, _ in rows}, "HNSW and SQLite disagree"
        now = {p: h for _, p, h in rows}
        disk_hashes = set(on_disk(folder).values())
        lost = {h for h in committed.values() if h in disk_hashes} - set(now.values())
        assert not lost, f"{len(lost)} committed photos lost"
        return now, list(engine.repairs)
    finally:
        engine.close()


def campaign(home: Path, folder: Path, pool: list[Path], kills: int, seed: int) -> dict:
    """Alternate folder changes and killed runs; finish with a complete run and check it."""
    rng = random.Random(seed)
    committed: dict[str, str] = {}
    mid_run = repairs = 0
    for _ in range(kills):
        mutate(folder, pool, rng)
        mid_run += kill_once(home, rng)
        committed, repaired = check(home, folder, committed)
        repairs += len(repaired)
    engine = Engine(home=home)
    report = engine.index()
    disk = on_disk(folder)
    rows = dict(engine.store.db.execute(
        "SELECT path, hash FROM photos WHERE vector IS NOT NULL").fetchall())
    assert rows == disk, "after a complete run the library must equal the folder"
    assert engine.vectors.ids() == {r[0] for r in engine.store.db.execute(
        "SELECT id FROM photos WHERE vector IS NOT NULL")}
    engine.close()
    return {"kills": kills, "killed_mid_run": mid_run, "repairs": repairs,
            "photos": len(disk), "final_embedded": report.embedded}


def prepare(root: Path, model_config: Path, weights: Path) -> tuple[Path, Path]:
    """A home whose config uses the given model, and a library folder with 30 photos."""
    from mmrag_desktop.config import Config, save_config

    home, folder = root / "home", root / "photos"
    home.mkdir(parents=True)
    folder.mkdir()
    save_config(home, Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                             model_config=str(model_config), batch_size=4, roots=[str(folder)]))
    for photo in coco_photos()[:30]:
        shutil.copy2(photo, folder / photo.name)
    return home, folder


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmrag-faults-") as tmp:
        root = Path(tmp)
        home, folder = prepare(root, *write_tiny_model(root))
        started = time.monotonic()
        result = campaign(home, folder, coco_photos()[30:], args.kills, args.seed)
        result["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(result))
        print(f"faults: {result['kills']} passed, 0 failed")


if __name__ == "__main__":
    main()
