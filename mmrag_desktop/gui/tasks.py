"""One-off background calls for dialogs: run a function on a thread, get the answer as a
signal on the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal


class Task(QObject):
    """``Task(fn, *args).start()`` runs ``fn(*args)`` on a thread; emits ``done(result)`` or
    ``failed(message)``. Keep a reference until it finishes."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable, *args, parent: QObject | None = None):
        super().__init__(parent)
        self._fn, self._args = fn, args
        self.thread = threading.Thread(target=self._run, daemon=True, name="mmrag-gui-task")

    def start(self) -> Task:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self._fn(*self._args)
        except Exception as exc:  # noqa: BLE001 - shown to the user by the caller
            self.failed.emit(str(exc))
            return
        self.done.emit(result)
