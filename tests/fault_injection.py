"""Crash safety with two writers: a ``mmrag watch`` process and repeated ``mmrag index`` runs
on one library, SIGKILLed at random points (one, the other, or both) while photos are added,
changed, moved and deleted between runs.

After every kill, with the writer lock held so that nothing changes while it looks:
- the long-lived reader in this process (as the GUI would be) and a freshly opened one each
  answer top-k exactly as exact search over the vectors in SQLite does;
- the fresh one opens the HNSW cache on disk without rebuilding it (once one was saved);
- no path is in the library twice, and the database's vector checksum matches its rows;
- no photo that was committed and is still on disk has lost its embedding.

The test suite runs a few kills; for the full campaign run it as a script:

    python tests/fault_injection.py --kills 100
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import Repairs, coco_photos, cli_env, write_tiny_model  # noqa: E402
from mmrag_desktop.library.facade import Library  # noqa: E402
from mmrag_desktop.media.files import file_hash  # noqa: E402
from mmrag_desktop.store.vectors import vector_checksum  # noqa: E402

QUERIES = ["a dog", "a plate of food", "people on a beach", "a red bus", "a cat on a sofa"]
K = 10


def _seq(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0


def mutate(folder: Path, pool: list[Path], rng: random.Random) -> None:
    """Add, delete, move, rename and edit some photos, as a person would."""
    present = sorted(folder.rglob("*.jpg"))
    unused = [p for p in pool if not any(q.name.endswith(p.name) for q in present)]
    for photo in rng.sample(unused, min(len(unused), rng.randint(0, 8))):
        shutil.copy2(photo, folder / photo.name)
    for victim in rng.sample(present, min(len(present), rng.randint(0, 3))):
        victim.unlink(missing_ok=True)
    present = sorted(folder.rglob("*.jpg"))
    for mover in rng.sample(present, min(len(present), rng.randint(0, 3))):
        sub = folder / rng.choice(["a", "b", "c"])
        sub.mkdir(exist_ok=True)
        target = sub / f"m{rng.randint(0, 10**6)}_{mover.name}"
        if not target.exists():
            mover.rename(target)
    present = sorted(folder.rglob("*.jpg"))
    for edited in rng.sample(present, min(len(present), rng.randint(0, 2))):
        from PIL import Image

        with Image.open(edited) as img:
            changed = img.rotate(90, expand=True)
        changed.save(edited, quality=88)


class Watch:
    """A ``mmrag watch`` process that can be killed and restarted."""

    def __init__(self, home: Path):
        self.home, self.proc = home, None
        self.kills = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", "watch",
                                      "--settle", "0.3"], env=cli_env(self.home),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.kills += 1
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def kill_round(home: Path, watch: Watch, rng: random.Random) -> bool:
    """Run ``mmrag index`` beside the watcher and SIGKILL one of them, or both, at a random
    point. True when the index run was killed while it worked."""
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
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside a run (its own or the watcher's)
    victim = rng.choices(["index", "watch", "both"], weights=[60, 25, 15])[0]
    killed = False
    if victim in ("index", "both"):
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    if victim in ("watch", "both"):
        watch.kill()
        watch.start()
    proc.wait()
    return killed


def on_disk(folder: Path) -> dict[str, str]:
    return {str(p): file_hash(p) for p in folder.rglob("*.jpg")}


def exact_top_k(rows: list[tuple], query: np.ndarray) -> list[tuple[int, float]]:
    """Top-k over the online rows' vectors, by cosine similarity (one matrix product)."""
    ids = np.array([r[0] for r in rows])
    matrix = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
    scores = matrix @ query
    order = np.argsort(-scores)[:K]
    return [(int(ids[i]), float(scores[i])) for i in order]


def same_ranking(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        g[0] == w[0] and abs(g[1] - w[1]) < 1e-5 for g, w in zip(got, want))


def check(home: Path, folder: Path, reader: Library, committed: dict[str, str]) -> dict[str, str]:
    """Check the invariants (module docstring) after a kill; returns path → hash of the rows
    holding an embedding now. Raises AssertionError on a violation."""
    with reader.lock.hold("checking the library"):
        rows = reader.store.db.execute(
            "SELECT id, path, hash, status, vector FROM photos WHERE vector IS NOT NULL"
        ).fetchall()
        all_paths = [r[0] for r in reader.store.db.execute("SELECT path FROM photos")]
        assert len(all_paths) == len(set(all_paths)), "a photo is in the library twice"
        assert reader.store.checksum() == vector_checksum(
            [r[0] for r in rows], [r[4] for r in rows]), "the vector checksum disagrees"
        now = {p: h for _, p, h, _, _ in rows}
        disk = on_disk(folder)
        lost = {h for h in committed.values() if h in set(disk.values())} - set(now.values())
        assert not lost, f"{len(lost)} committed photos lost their embedding: " + "; ".join(
            f"{[p for p, d in disk.items() if d == h]} (was {[p for p, c in committed.items() if c == h]}): "
            + str(reader.store.db.execute(
                "SELECT path, hash, status, error, vector IS NULL FROM photos WHERE path IN ("
                + ",".join("?" * len(ps)) + ")", ps).fetchall())
            for h in lost for ps in [[p for p, d in disk.items() if d == h]])

        online = [r for r in rows if r[3] == "ok"]
        saved_before = bool(list((home / "index").glob("*.json")))  # else built now, rightly
        fresh = Library(home=home, read_only=True, embedder=reader.embedder,
                        on_notice=(repairs := Repairs()))
        try:
            fresh.vector_index()
            assert not (saved_before and repairs), f"the cache on disk needed a rebuild: {repairs}"
            for text in QUERIES:
                query = reader.embedder.encode_texts([text])[0]
                want = exact_top_k(online, query) if online else []
                for engine in (reader, fresh):
                    got = [(r.id, r.score) for r in engine.search.by_vector(query, K)]
                    assert same_ranking(got, want), f"top-{K} for {text!r} differs from exact"
        finally:
            fresh.close()
        return now


def campaign(home: Path, folder: Path, pool: list[Path], kills: int, seed: int,
             index_kills: int = 0) -> dict:
    """Alternate folder changes and killed runs, checking after each, for *kills* rounds
    and then on until *index_kills* index runs were killed while they worked and the
    watcher at least once (at most 3 × *kills* rounds: whether a kill lands mid-run
    depends on the machine's speed); finish with a complete run and check that the
    library equals the folder."""
    rng = random.Random(seed)
    watch = Watch(home)
    watch.start()
    reader = Library(home=home, read_only=True)
    committed: dict[str, str] = {}
    index_killed = checks = 0
    try:
        while checks < kills or (checks < 3 * kills and (
                index_killed < index_kills or (index_kills and not watch.kills))):
            mutate(folder, pool, rng)
            index_killed += kill_round(home, watch, rng)
            committed = check(home, folder, reader, committed)
            checks += 1
    finally:
        watch.stop()
    final = subprocess.run([sys.executable, "-m", "mmrag_desktop", "index"], env=cli_env(home),
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    check(home, folder, reader, committed)
    rows = dict(reader.store.db.execute(
        "SELECT path, hash FROM photos WHERE vector IS NOT NULL").fetchall())
    assert rows == on_disk(folder), "after a complete run the library must equal the folder"
    reader.close()
    return {"kills": checks, "index_killed_mid_run": index_killed, "watch_killed": watch.kills,
            "checks": checks + 1, "photos": len(rows)}


def prepare(root: Path, model_config: Path, weights: Path) -> tuple[Path, Path]:
    """A home whose config uses the given model, and a library folder with 30 photos."""
    from mmrag_desktop.core.config import Config, save_config

    home, folder = root / "home", root / "photos"
    home.mkdir(parents=True)
    folder.mkdir()
    save_config(home, Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                             model_config=str(model_config), batch_size=4, roots=[str(folder)],
                             rescan_interval=0, understand=[]))
    for photo in coco_photos()[:30]:
        shutil.copy2(photo, folder / photo.name)
    return home, folder


def main() -> None:
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
        print(f"faults: {result['checks']} passed, 0 failed")


if __name__ == "__main__":
    main()
