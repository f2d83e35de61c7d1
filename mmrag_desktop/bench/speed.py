"""``mmrag bench``: throughput, latency and ANN recall, printed as numbers.

Measured in one run on the same photos: model-only image throughput (preprocessed tensors
straight into the model), end-to-end indexing throughput (files to stored vectors) and
their ratio — for the given photos and for 12 MP JPEGs generated from them; warm text-query
latency end to end; HNSW search latency and recall@10 against exact search for synthetic
embedding sets; peak resident memory.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..clip.identity import ModelMissingError
from ..clip.model_files import find_weights
from ..core.config import Config, home_dir, load_config, save_config
from ..domain.query import Term
from ..index.vectors import VectorIndex, ef_for
from ..library.facade import Library
from ..library.search import EXACT_SEARCH_SCALE, POST_FILTER_CANDIDATES, searched_exactly
from ..media.files import is_image_name
from ..media.photos import decode

LARGE_SIZE = (4000, 3000)  # 12 MP, a phone camera's photo
QUERIES = ("a dog on a beach", "two people eating pizza", "a red car in the city",
           "a cat sleeping on a sofa", "a plane in the sky")


def _say(text: str) -> None:
    print(text, flush=True)


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of the largest of its ended child
    processes), MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN if children
                              else resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def make_large_jpegs(photos: list[Path], out: Path, count: int) -> list[Path]:
    """Upscale the first *count* photos to 12 MP JPEGs (quality 90) in *out*."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i, photo in enumerate(photos[:count]):
        target = out / f"large_{i:03d}.jpg"
        with Image.open(photo) as img:
            img.convert("RGB").resize(LARGE_SIZE, Image.BICUBIC).save(target, quality=90)
        made.append(target)
    return made


LATENT_DIM = 32


def synthetic_embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    """(n, dim) float32 L2-normalised vectors with a low intrinsic dimension, like real
    image embeddings: a 32-d Gaussian latent mapped into *dim* dimensions by a fixed random
    projection, plus 10 % isotropic noise. (Vectors uniform on a 512-d sphere would make
    nearest neighbours meaningless: all distances nearly equal.) The projection is the same
    for every *seed*, so data and queries drawn with different seeds share one space."""
    projection = np.random.default_rng(0).standard_normal((LATENT_DIM, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = rng.standard_normal((m, LATENT_DIM)).astype(np.float32) @ projection
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        block += 0.1 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force cosine top-k row indices: (q, k) int64."""
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(data), 50_000):
        scores = queries @ data[start:start + 50_000].T
        ids = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, ids], axis=1)
        keep = np.argpartition(-all_scores, k, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, 1)
        best_ids = np.take_along_axis(all_ids, keep, 1)
    return best_ids


def high_water_mb(pid: int | str = "self") -> float | None:
    """A process's own peak resident memory (``VmHWM``, MiB), or None where there is no
    /proc or it has exited. Unlike ``ru_maxrss``, exec resets it: a child's ru_maxrss starts
    from its parent's size at the fork."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024
    except (OSError, StopIteration):
        return None


def _percentiles(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms"


def bench_throughput(engine: Library, files: list[Path], label: str, scratch: Path) -> float:
    """Model-only vs end-to-end images per second on *files*; returns end-to-end's."""
    embedder = engine.embedder
    pixels = [embedder.to_pixels(decode(f, embedder.image_size)[0]) for f in files]
    batch = engine.config.batch_size
    embedder.encode_images(np.stack(pixels[:batch]))  # warm-up
    started = time.perf_counter()
    for start in range(0, len(pixels), batch):
        embedder.encode_images(np.stack(pixels[start:start + batch]))
    model_rate = len(pixels) / (time.perf_counter() - started)

    # The same loaded model: loading it is not indexing time.
    library = Library(home=engine.home, path=scratch / f"lib-{label}", config=engine.config,
                      embedder=embedder)
    library.vector_index()
    started = time.perf_counter()
    report = library.updates.index([str(files[0].parent)])
    e2e_rate = report.embedded / (time.perf_counter() - started)
    library.close()
    _say(f"[{label}] {len(files)} photos: model-only {model_rate:.1f} img/s, "
         f"end-to-end {e2e_rate:.1f} img/s, ratio {e2e_rate / model_rate:.2f}")
    return e2e_rate


def bench_precisions(engine: Library) -> float:
    """Each precision candidate's image throughput and text latency on this machine, with
    the least cosine similarity of its probe embeddings to fp32's, freshly measured; and
    what ``auto`` picked (or would pick). Returns fp32's images/s (model only)."""
    from ..clip import precision  # imports torch: `bench --gui` must not load it up front

    trials = engine.embedder.measure_precisions()
    for t in trials:
        _say(f"[precision {t.precision}] image tower {t.images_per_s:.1f} img/s "
             f"(min cosine to fp32 {t.image_cosine:.5f}), text tower {t.text_ms:.1f} ms per "
             f"query (min cosine {t.text_cosine:.5f})")
    picked = precision.pick(trials)
    _say(f"[precision] auto picks images {picked.image}, text {picked.text} (floor: cosine "
         f">= {precision.FIDELITY_FLOOR}); this run uses {engine.embedder.describe()}")
    return next(t.images_per_s for t in trials if t.precision == "fp32")


def bench_cold(config: Config, photos_dir: Path, random_weights: bool, scratch: Path,
               runs: int = 3) -> None:
    """Wall time and peak RSS of fresh processes, as a user starting them sees: an index
    run with nothing to do (``mmrag index``) and a text search (``mmrag search``) on the
    torch backend, then, after ``mmrag models export-onnx``, through the ONNX text tower;
    *runs* times each, on a library of *photos_dir* in a scratch home with this model."""
    home = scratch / "cold-home"
    home.mkdir()
    cold = replace(config, roots=[str(photos_dir)], backend="auto")
    if not random_weights:
        cold.weights = str(find_weights(config, home_dir()))
    save_config(home, cold)
    env = os.environ | {"MMRAG_HOME": str(home)}
    flags = ["--random-weights"] if random_weights else []

    def run(command: list[str]) -> tuple[float, float | None]:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "mmrag_desktop", *flags, *command],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = None
        while process.poll() is None:
            peak = high_water_mb(process.pid) or peak
            time.sleep(0.005)
        if process.returncode != 0:
            raise SystemExit(f"mmrag {' '.join(command)} failed (exit {process.returncode})")
        return time.perf_counter() - started, peak

    def timed(label: str, command: list[str]) -> None:
        for _ in range(runs):
            wall, peak = run(command)
            memory = f"peak RSS {peak:,.0f} MiB" if peak else "peak RSS unknown (no /proc)"
            _say(f"[cold {label}, fresh process] {wall:.2f} s wall, {memory}")

    search = ["search", "a dog on a beach", "-k", "5"]
    run(["index"])  # the library, and the precision measurement, outside the timings
    timed("index, nothing changed", ["index"])
    timed("text search, torch", search)
    try:
        run(["models", "export-onnx"])
    except SystemExit as exc:
        _say(f"[cold text search, onnx] no export: {exc}")
        return
    timed("text search, onnx text tower (backend auto)", search)


_OPEN_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from mmrag_desktop.index.vectors import VectorIndex
from mmrag_desktop.bench.speed import high_water_mb
def peak_mb():
    return high_water_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
index = VectorIndex(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], 2, 1, 1)
before = peak_mb()
started = time.perf_counter()
problem = index.read_saved()
print(json.dumps({"seconds": time.perf_counter() - started, "problem": problem,
                  "baseline_mb": before, "peak_mb": peak_mb()}))
"""


def open_in_fresh_process(index: VectorIndex) -> dict:
    """Load *index*'s saved file (:meth:`.VectorIndex.read_saved`) in a new Python process:
    ``seconds`` it took, the process's ``peak_mb`` (VmHWM where there is /proc) and ``baseline_mb`` before the
    load, and the file's ``file_mb``.

    Raises:
        RuntimeError: the file did not load (with the reason).
    """
    done = subprocess.run([sys.executable, "-c", _OPEN_SCRIPT, str(index.path), str(index.dim),
                           index.model_id], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if found["problem"]:
        raise RuntimeError(f"the saved index did not load: {found['problem']}")
    return {"seconds": found["seconds"], "peak_mb": found["peak_mb"],
            "baseline_mb": found["baseline_mb"],
            "file_mb": index.data_file.stat().st_size / 2**20}


def bench_ann(dim: int, n: int, queries: int, m: int, ef_construction: int, ef: int,
              scratch: Path) -> None:
    """HNSW build time, library open time and memory (a fresh process), then search latency
    and recall@10 vs exact on *n* synthetic vectors for a range of query-time ``ef`` with
    the one chosen for *n* (:func:`.index.vectors.ef_for`; the recall / latency curve), and
    filtered searches that pass 10 % and 3 % of the vectors."""
    data = synthetic_embeddings(n, dim, seed=1)
    probe = synthetic_embeddings(queries, dim, seed=2)
    index = VectorIndex(scratch / f"ann-{n}.hnsw", dim, "bench", m, ef_construction, ef)
    index.start_empty(n)
    started = time.perf_counter()
    for start in range(0, n, 50_000):
        index.add(np.arange(start, min(n, start + 50_000)), data[start:start + 50_000])
    build = time.perf_counter() - started
    _say(f"[ANN n={n:,} d={dim} M={m} ef_construction={ef_construction}] build {build:.1f} s "
         f"({n / build:,.0f} vectors/s), peak RSS {peak_rss_mb():,.0f} MiB")
    # Opening a library of n photos is dominated by its HNSW file (checksum, load, ids; SQLite's
    # own open takes milliseconds): timed in a fresh process, whose peak memory is its own.
    index.save()
    opened = open_in_fresh_process(index)
    _say(f"[ANN n={n:,}] library open in a fresh process (HNSW file of "
         f"{opened['file_mb'] / 1024:.2f} GiB, page cache warm): {opened['seconds']:.1f} s, "
         f"peak RSS {opened['peak_mb']:,.0f} MiB = {opened['peak_mb'] / opened['file_mb']:.2f}× "
         f"the file, of which {opened['baseline_mb']:,.0f} MiB before the load (Python, numpy, "
         f"hnswlib): the load itself {(opened['peak_mb'] - opened['baseline_mb']) / opened['file_mb']:.2f}×")
    truth = exact_top_k(data, probe, 10)
    chosen = ef_for(n, ef)

    def measure(allowed_ids: np.ndarray | None, expected: np.ndarray) -> tuple[float, list[float]]:
        allowed = None if allowed_ids is None else set(allowed_ids.tolist())
        index.search(probe[0], 10, allowed)
        latencies, found = [], []
        for q in probe[:len(expected)]:
            t = time.perf_counter()
            ids, _ = index.search(q, 10, allowed)
            latencies.append(time.perf_counter() - t)
            found.append(ids)
        return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / 10
                              for f, t in zip(found, expected)])), latencies

    for ef_value in sorted({32, 64, 96, 128, 160, 200, 240, chosen}):
        index.set_ef(ef_value)
        recall, latencies = measure(None, truth)
        _say(f"[ANN n={n:,} ef={ef_value}{' (chosen)' if ef_value == chosen else ''}] "
             f"recall@10 vs exact {recall:.4f}, search {_percentiles(latencies)}")
    # Filters: the index walks past the refused photos (at ef_for's filtered ef); the app
    # searches the smallest sets exactly instead (searched_exactly), which is said.
    index.set_ef(ef)
    rng = np.random.default_rng(3)
    limit = int(EXACT_SEARCH_SCALE * n ** 0.5)
    for allowed in sorted({limit // 2, limit, 2 * limit, n * 3 // 100, n // 10}):
        if not 10 < allowed < n:
            continue
        allowed_ids = np.sort(rng.choice(n, allowed, replace=False))
        expected = allowed_ids[exact_top_k(data[allowed_ids], probe[:300], 10)]
        recall, latencies = measure(allowed_ids, expected)
        exact = searched_exactly(allowed, n, 10)
        _say(f"[ANN n={n:,} filter passing {allowed:,} ({allowed / n:.1%}), "
             f"ef={ef_for(n, ef, allowed / n)}{'; the app searches these exactly' if exact else ''}] "
             f"walk: recall@10 vs exact {recall:.4f}, search {_percentiles(latencies)}")
        if exact or allowed <= 2 * limit:
            _say(f"[ANN n={n:,} filter passing {allowed:,}] exact, vectors from the saved index "
                 f"file: {_exact_from_file(index, allowed_ids, probe[:len(expected)], expected)}")
    # Broad filters: the app first post-filters the unfiltered top candidates (library/search.py)
    for share in (0.5, 0.1, 0.03):
        allowed_ids = np.sort(rng.choice(n, int(n * share), replace=False))
        allowed = set(allowed_ids.tolist())
        expected = allowed_ids[exact_top_k(data[allowed_ids], probe[:300], 10)]
        latencies, recalls, answered = [], [], 0
        for q, truth_ids in zip(probe[:300], expected):
            t = time.perf_counter()
            ids, _ = index.search(q, POST_FILTER_CANDIDATES)
            kept = [i for i in ids.tolist() if i in allowed][:10]
            latencies.append(time.perf_counter() - t)
            if len(kept) == 10:
                answered += 1
                recalls.append(len(set(kept) & set(truth_ids.tolist())) / 10)
        _say(f"[ANN n={n:,} post-filter, {share:.0%} pass] top {POST_FILTER_CANDIDATES} candidates "
             f"answer {answered / len(expected):.0%} of queries (the rest walk), recall@10 vs exact "
             f"{np.mean(recalls) if recalls else float('nan'):.4f}, {_percentiles(latencies)} "
             "(+ the filter's SQL check of the candidates, < 1 ms)")


def _exact_from_file(index: VectorIndex, allowed_ids: np.ndarray, queries: np.ndarray,
                     expected: np.ndarray) -> str:
    """Time the exact top 10 among *allowed_ids* as the app scores it (library/search.py):
    their vectors from the saved index file's memory map, one matrix product; its recall@10
    against *expected* ((q, 10) ids) shows the file gave the right vectors. The first query
    maps the file's pages in; the others find them mapped."""
    latencies, recalls = [], []
    for q, truth in zip(queries, expected):
        t = time.perf_counter()
        held, vectors = index.saved_vectors(allowed_ids)
        top = allowed_ids[held][np.argpartition(-(vectors @ q), 10)[:10]]
        latencies.append(time.perf_counter() - t)
        recalls.append(len(set(top.tolist()) & set(truth.tolist())) / 10)
    return (f"recall@10 {np.mean(recalls):.4f}, first {latencies[0] * 1000:.1f} ms, then "
            f"{_percentiles(latencies[1:])}")


def run_bench(photos_dir: Path, large: int = 24, ann_sizes: tuple[int, ...] = (100_000,),
              queries: int = 1000, random_weights: bool = False) -> None:
    """Run every benchmark and print one line of numbers per measurement."""
    home = home_dir()
    config = load_config(home)
    if not random_weights:
        try:
            find_weights(config, home)
        except ModelMissingError:
            _say("no model weights found: timing the architecture with random weights")
            random_weights = True
    photos = sorted(p for p in photos_dir.iterdir() if is_image_name(p))
    if not photos:
        raise SystemExit(f"mmrag bench: no photos in {photos_dir}")
    with tempfile.TemporaryDirectory(prefix="mmrag-bench-") as tmp:
        scratch = Path(tmp)
        engine = Library(home=home, path=scratch / "main", config=config,
                         random_weights=random_weights)
        started = time.perf_counter()
        embedder = engine.embedder
        embedder.load()
        _say(f"model {embedder.model_id} on {embedder.describe()}, batch {config.batch_size}, "
             f"{sys.modules['torch'].get_num_threads()} torch threads; loaded in "
             f"{time.perf_counter() - started:.1f} s")
        fp32_rate = bench_precisions(engine)
        e2e_rate = bench_throughput(engine, photos, "photos", scratch)
        _say(f"[photos] end-to-end indexing is {e2e_rate / fp32_rate:.2f}x the fp32 model-only "
             f"throughput ({fp32_rate:.1f} img/s, probe batch)")
        if large:
            big = make_large_jpegs(photos, scratch / "large", large)
            bench_throughput(engine, big, "12MP", scratch)

        engine.updates.index([str(photos_dir)])
        for text in QUERIES:  # warm-up
            engine.search.run([Term(text=text)], 10)
        latencies = []
        for _ in range(10):
            for text in QUERIES:
                t = time.perf_counter()
                engine.search.run([Term(text=text)], 10)
                latencies.append(time.perf_counter() - t)
        _say(f"[text query, warm, end to end, {len(photos)} photos] {_percentiles(latencies)}")
        engine.close()
        bench_cold(config, photos_dir, random_weights, scratch)
        for n in ann_sizes:
            bench_ann(embedder.dim, n, queries, config.hnsw_m, config.hnsw_ef_construction,
                      config.hnsw_ef, scratch)
    _say(f"peak RSS {peak_rss_mb():,.0f} MiB")


def bench_rescan(n: int, scratch: Path, per_folder: int = 100) -> None:
    """A full run over an indexed library of *n* photos in which nothing changed (what a
    periodic rescan or ``mmrag index`` does most days): wall time, and the peak Python heap
    of a second such run (tracemalloc: rows, file lists, anything the run holds; hnswlib's
    own memory is not counted). Files are stand-ins (a few bytes each, never decoded: nothing changed);
    embeddings are random 4-wide vectors, so that the HNSW cache is cheap to build."""
    import tracemalloc

    from ..library.indexer import Indexer
    from ..library.scanner import Excluder
    from ..store.database import Store

    root = scratch / f"rescan-{n}" / "photos"
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    store = Store(scratch / f"rescan-{n}" / "library.db")
    for start in range(0, n, 10_000):
        batch = []
        for i in range(start, min(n, start + 10_000)):
            path = root / f"{i // per_folder:06d}" / f"IMG_{i:07d}.jpg"
            if i % per_folder == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"stand-in")
            st = path.stat()
            fields = {"path": str(path), "root": str(root), "size": st.st_size,
                      "mtime_ns": st.st_mtime_ns, "hash": f"{i:032x}"}
            batch.append((None, fields, rng.standard_normal(4).astype(np.float32)))
        store.write_batch(batch, [], [])
    vectors = VectorIndex(root.parent / "index.hnsw", 4, "bench", 4, 16, 16)
    vectors.open(store)
    setup = time.perf_counter() - started

    def no_model():
        raise AssertionError("nothing changed: the run must not need the model")

    indexer = Indexer(store, vectors, no_model, Excluder([]))
    started = time.perf_counter()
    report = indexer.run([str(root)])
    elapsed = time.perf_counter() - started
    tracemalloc.start()  # a second run: tracing slows the first's timing down about twice
    indexer.run([str(root)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    store.close()
    _say(f"[rescan, nothing changed, {n:,} photos in {n // per_folder:,} folders] "
         f"{elapsed:.1f} s ({report.unchanged:,} unchanged, {report.deleted} deleted), "
         f"peak Python heap {peak / 2**20:,.1f} MiB ({peak / n:,.0f} bytes per photo); "
         f"setup {setup:.0f} s")


def run_vlm_bench(photos_dir: Path, model: str = "", mmproj: str = "", runs: int = 3) -> None:
    """Print the vision-language model's load time, time to first token, tokens per second
    (generated pieces per second after the first) and peak RSS, for a question about a photo
    (when an mmproj is set) and a text-only question, *runs* times each."""
    from ..library.ask import ask_photo
    from ..vlm.model import VisionLanguageModel

    config = load_config(home_dir())
    config.vlm_model = model or config.vlm_model
    if model:
        config.vlm_mmproj = mmproj
    config.vlm_idle_unload = 0
    vlm = VisionLanguageModel(config)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    vlm.load()
    projector = Path(config.vlm_mmproj).name if config.vlm_mmproj else "no mmproj"
    _say(f"VLM {Path(config.vlm_model).name} + {projector}: loaded in {time.perf_counter() - started:.2f} s ({vlm.info.family}, "
         f"{config.vlm_threads or os.cpu_count()} threads, context {config.vlm_context})")
    photo = next(p for p in sorted(photos_dir.iterdir()) if is_image_name(p))

    def timed(label: str, ask) -> None:
        for _ in range(runs):
            stamps = []
            start = time.perf_counter()
            ask(lambda piece: stamps.append(time.perf_counter()))  # noqa: B023 - called inside ask()
            if not stamps:
                _say(f"  {label}: no tokens")
                continue
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
            _say(f"  {label}: first token {stamps[0] - start:.2f} s, {rate:.1f} tokens/s "
                 f"({len(stamps)} tokens)")

    if vlm.sees_images:
        timed("photo question", lambda on: ask_photo(vlm, photo, "What is in this photo?", on))
    messages = [{"role": "user", "content": "Name three things people photograph on holiday."}]
    timed("text question", lambda on: vlm.answer(messages, on))
    vlm.unload()
    _say(f"peak RSS: app {peak_rss_mb():.0f} MiB (before loading: {rss_before:.0f} MiB), "
         f"model's helper process {peak_rss_mb(children=True):.0f} MiB")
