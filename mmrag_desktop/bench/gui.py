"""``mmrag bench --gui PHOTOS``: launch time, and how long the GUI's event loop is ever kept
waiting while the model loads, a folder is indexed, searches run and the grid scrolls; then
the same for a library of 100,000 photos (synthetic rows: PHOTOS' files, under links, with
their embeddings and made-up dates over ten years), browsed without a query.

The event-loop probe is a 5 ms timer on the GUI thread: every tick that comes late by more
than its interval means the loop could not react for that long (no repaint, no input).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication

from ..core.config import home_dir, load_config, save_config
from ..gui.adapters.bridge import LibraryBridge
from ..gui.window import MainWindow
from ..library.facade import Library
from .speed import QUERIES, peak_rss_mb

STALL_LIMIT_MS = 50  # the bound on a blocked event loop
LAUNCHES = 3
LARGE_LIBRARY = 100_000


class LatencyProbe(QObject):
    """A repeating timer on the GUI thread that records how late each tick fires (ms)."""

    def __init__(self, interval_ms: int = 5):
        super().__init__()
        self.interval = interval_ms / 1000
        self.delays: list[float] = []
        self._last = 0.0
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.delays = []
        self._last = time.perf_counter()
        self._timer.start()

    def take(self) -> list[float]:
        """The delays since the last call, ms."""
        delays, self.delays = self.delays, []
        return delays

    def _tick(self) -> None:
        now = time.perf_counter()
        self.delays.append(max(0.0, (now - self._last - self.interval) * 1000))
        self._last = now


def run_loop(ms: int) -> None:
    """Run the Qt event loop for *ms* milliseconds."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Run the Qt event loop until *condition* holds (True) or *timeout* seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        run_loop(20)
    return True


def measure_launch(home: Path, random_weights: bool) -> list[float]:
    """Seconds from starting ``mmrag gui`` to its first painted window, :data:`LAUNCHES` times."""
    command = [sys.executable, "-m", "mmrag_desktop", "--home", str(home)]
    command += ["--random-weights"] if random_weights else []
    command += ["gui", "--quit-when-shown"]
    env = os.environ | {"QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    times = []
    for _ in range(LAUNCHES):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env, text=True)
        line = process.stdout.readline()
        times.append(time.perf_counter() - start)
        process.wait(30)
        if line.strip() != "shown":
            raise RuntimeError("the GUI did not start")
    return times


def _report(name: str, delays: list[float]) -> None:
    if not delays:
        print(f"  {name:<34} no samples")
        return
    over = sum(d > STALL_LIMIT_MS for d in delays)
    p99 = statistics.quantiles(delays, n=100)[98] if len(delays) > 1 else delays[0]
    print(f"  {name:<34} worst {max(delays):6.1f} ms   p99 {p99:5.1f} ms   "
          f"ticks {len(delays):6d}   over {STALL_LIMIT_MS} ms: {over}", flush=True)


def run_gui_bench(photos: Path, random_weights: bool = False) -> None:
    """Print launch times and event-loop stalls (see module docstring) on *photos*, in a
    temporary library with the configured model (or its architecture with random weights)."""
    config = load_config(home_dir())
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        save_config(home, replace(config, roots=[]))
        # This machine's models folder: its weights, ONNX exports and precision measurements
        # (the app as a user has it after the first start, not a first start).
        (home / "models").symlink_to(home_dir() / "models", target_is_directory=True)
        print(f"GUI benchmark on {photos} ({config.model}, "
              f"{'random weights' if random_weights else 'configured weights'})", flush=True)
        probe = LatencyProbe()
        bridge = LibraryBridge(Library(home=home, random_weights=random_weights,
                                       model_process=True), settle=0.5)
        window = MainWindow(bridge)
        window.show()
        probe.start()
        bridge.add_folder(str(photos))
        window.start()
        started = time.perf_counter()
        wait_until(lambda: window.device != "", 300)
        loaded = time.perf_counter()
        load_delays = probe.take()
        indexed = wait_until(lambda: window.last_report is not None and window.folders_panel
                              .states and window.folders_panel.states[0].state == "up to date",
                              3600)
        index_delays = probe.take()
        photos_indexed = bridge.engine.store.vector_count()
        print(f"  model load {loaded - started:.1f} s; indexed {photos_indexed} photos in "
              f"{time.perf_counter() - loaded:.1f} s{'' if indexed else ' (timed out)'}")

        search_times = []
        for query in QUERIES * 4:
            done = window.searches_done
            start = time.perf_counter()
            window.query.setText(query)
            window.search()
            wait_until(lambda: window.searches_done > done, 60)  # noqa: B023 - waited for here
            search_times.append(time.perf_counter() - start)
            run_loop(100)  # let the visible thumbnails load
        search_delays = probe.take()

        bar = window.view.verticalScrollBar()
        for value in range(0, bar.maximum() + 1, 120):
            bar.setValue(value)
            run_loop(30)
        run_loop(500)
        scroll_delays = probe.take()

        for row in range(min(5, len(window.results))):
            preview = window.open_preview(row)
            run_loop(400)
            preview.accept()
        preview_delays = probe.take()

        print("Event loop (a 5 ms timer; delay = how long it could not run):")
        _report("model load (background)", load_delays)
        _report("indexing (watcher thread)", index_delays)
        _report(f"{len(search_times)} searches + thumbnails", search_delays)
        _report("scrolling the grid", scroll_delays)
        _report("5 previews", preview_delays)
        everything = load_delays + index_delays + search_delays + scroll_delays + preview_delays
        print(f"  worst case overall: {max(everything):.1f} ms")
        print(f"  search round trip (GUI): p50 {statistics.median(search_times) * 1000:.0f} ms")
        window.close()
        app.processEvents()

        launches = measure_launch(home, random_weights)
        print(f"Launch to a painted window ({LAUNCHES} runs, library of {photos_indexed} "
              f"photos): " + ", ".join(f"{t:.2f} s" for t in launches))
        _large_library(home, Path(tmp) / "large", random_weights, probe)
        print(f"Peak RSS of the benchmark process: {peak_rss_mb():.0f} MiB")


def _large_library(home: Path, folder: Path, random_weights: bool, probe: LatencyProbe) -> None:
    """Grow the library to :data:`LARGE_LIBRARY` photos (see the module docstring), then
    time a launch, browsing and scrolling the timeline."""
    engine = Library(home=home, random_weights=random_weights)
    ids = sorted(engine.store.content_hashes())
    details = engine.store.details(ids)
    vectors = {}
    for chunk_ids, chunk in engine.store.vectors(ids=ids):
        vectors.update(zip(chunk_ids.tolist(), chunk))
    start = time.perf_counter()
    for first in range(0, LARGE_LIBRARY, 5000):
        batch = []
        for i in range(first, min(first + 5000, LARGE_LIBRARY)):
            source = details[ids[i % len(ids)]]
            path = folder / f"{i // 1000:03d}" / f"IMG_{i:06d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(source["path"])
            day = 3650 - i * 3650 // LARGE_LIBRARY  # newest first: ten years, back from 2025
            year, rest = 2015 + day // 365, day % 365
            fields = {"path": str(path), "root": str(folder), "size": source["size"],
                      "mtime_ns": source["mtime_ns"], "hash": source["hash"],
                      "width": source["width"], "height": source["height"],
                      "taken_at": f"{year}-{rest // 31 % 12 + 1:02d}-{rest % 28 + 1:02d}T12:00:00"}
            batch.append((None, fields, vectors[source["id"]]))
        engine.store.write_batch(batch, [], [])
    config = engine.config
    config.roots = [str(folder)]
    save_config(home, config)
    engine.close()
    print(f"Library of {LARGE_LIBRARY:,} photos (synthetic rows) written in "
          f"{time.perf_counter() - start:.0f} s", flush=True)

    launches = measure_launch(home, random_weights)
    print(f"  launch to a painted window ({LAUNCHES} runs): "
          + ", ".join(f"{t:.2f} s" for t in launches))
    bridge = LibraryBridge(Library(home=home, random_weights=random_weights), settle=0.5)
    window = MainWindow(bridge)
    window.resize(1280, 820)
    window.show()
    run_loop(200)
    probe.start()  # the loop did not run while the library was written: start afresh
    start = time.perf_counter()
    window.browse()
    wait_until(lambda: window.browses_done > 0, 60)
    print(f"  timeline of {len(window.timeline_view.timeline):,} photos, "
          f"{len(window.timeline_view.timeline.months)} months, shown in "
          f"{time.perf_counter() - start:.2f} s")
    browse_delays = probe.take()
    bar = window.timeline_view.verticalScrollBar()
    for value in range(0, bar.maximum() + 1, max(bar.maximum() // 400, 1)):
        bar.setValue(value)  # 400 steps over the whole timeline, 20 ms apart
        run_loop(20)
    run_loop(500)
    scroll_delays = probe.take()
    for value in range(0, min(bar.maximum(), 60 * bar.pageStep()), 40):
        bar.setValue(value)  # a wheel's pace through the first sixty screens
        run_loop(16)
    run_loop(500)
    wheel_delays = probe.take()
    print("  event loop:")
    _report("browsing (timeline query + layout)", browse_delays)
    _report("scrolling the whole timeline", scroll_delays)
    _report("scrolling 60 screens, 40 px steps", wheel_delays)
    window.close()
    QApplication.processEvents()
