"""The GUI's one way to run work off the GUI thread, after Anki's ``CollectionOp`` /
``QueryOp`` (``qt/aqt/operations/``)::

    bridge.op(lambda engine: engine.search.browse(filters)).success(show).failure(warn).run()

``fn`` receives the library's :class:`~mmrag_desktop.library.facade.Library`, never a widget;
``success(result)`` or ``failure(message)`` then runs on the GUI thread. Work runs on named
*lanes*, one thread each, in the order it was asked for: library jobs wait for each other,
while a search or an answer does not wait behind them. The thumbnail loader's requests run
on a lane of their own too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal


class Lanes:
    """Named lanes of background work, one thread each unless *workers* gives a lane more
    (their work then runs side by side). A closed lane drops what is queued and quietly
    refuses new work (a window closing has nobody left to answer)."""

    def __init__(self, workers: dict[str, int] | None = None) -> None:
        self._workers = workers or {}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._closed: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, lane: str, fn: Callable, *args) -> bool:
        """Run ``fn(*args)`` on *lane* after the work queued there; False if it is closed."""
        with self._lock:
            if lane in self._closed:
                return False
            if lane not in self._pools:
                self._pools[lane] = ThreadPoolExecutor(self._workers.get(lane, 1),
                                                       thread_name_prefix=f"mmrag-{lane}")
            self._pools[lane].submit(fn, *args)
            return True

    def close(self, *lanes: str) -> None:
        """Close *lanes* (all, when none is named), waiting for the work that is running."""
        with self._lock:
            names = lanes or tuple(self._pools)
            self._closed.update(names)
            pools = [self._pools[name] for name in names if name in self._pools]
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


class Op(QObject):
    """One piece of background work and what to do with its result; see the module."""

    _finished = Signal(bool, object)
    _running: set[Op] = set()  # kept alive until they finish (a fire-and-forget op)

    def __init__(self, lanes: Lanes, lane: str, fn: Callable[[], Any]):
        super().__init__()
        self._lanes, self._lane, self._fn = lanes, lane, fn
        self._success: Callable[[Any], None] = lambda _result: None
        self._failure: Callable[[str], None] = lambda _message: None
        self._finished.connect(self._finish)  # this object lives on the GUI thread: queued

    def success(self, callback: Callable[[Any], None]) -> Op:
        self._success = callback
        return self

    def failure(self, callback: Callable[[str], None]) -> Op:
        """*callback(message)* on an exception (its text); without one, failures are
        dropped."""
        self._failure = callback
        return self

    def run(self) -> bool:
        """Queue the work; False when the lane is closed."""
        Op._running.add(self)
        if not self._lanes.submit(self._lane, self._work):
            Op._running.discard(self)
            return False
        return True

    def _work(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the failure callback
            self._finished.emit(False, str(exc))
            return
        self._finished.emit(True, result)

    def _finish(self, ok: bool, value: Any) -> None:
        Op._running.discard(self)
        (self._success if ok else self._failure)(value)
