"""One writer at a time per library, across processes (an OS file lock, through filelock).

The GUI can be open all day while ``mmrag index`` or ``mmrag watch`` runs in a terminal.
Readers never take this lock (SQLite WAL gives them consistent snapshots); anything that
changes the library's rows or vectors does, for the duration of that change only, so a
second writer waits for the first one's run rather than for the first process to exit.
The holder writes who it is beside the lock, so a waiting process can say whom it waits for.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..core.atomic import write_atomically
from ..core.errors import MmragError

POLL_SECONDS = 0.25


class LibraryBusyError(MmragError, RuntimeError):
    """Another process is writing the library and did not finish within the wait."""


class WriterLock:
    """The library's writer lock: re-entrant within a thread, exclusive across threads and
    processes.

    Args:
        folder: the library folder; the lock is ``library.lock`` in it and the holder's
            description ``library.lock.owner``.
    """

    def __init__(self, folder: Path):
        self.path = folder / "library.lock"
        self.owner_path = folder / "library.lock.owner"
        self._file = FileLock(str(self.path), thread_local=False, mode=0o600)
        self._threads = threading.RLock()
        self._depth = 0

    def holder(self) -> str:
        """Who holds the lock, as a sentence fragment (best effort: the owner file may be
        from a holder that has just finished)."""
        try:
            info = json.loads(self.owner_path.read_text(encoding="utf-8"))
            since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
            return f"{info['activity']} (process {info['pid']}, since {since})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    @contextmanager
    def hold(self, activity: str, wait: float | None = None,
             on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lock for a block of writes.

        Args:
            activity: what this process is doing, shown to a process that has to wait.
            wait: seconds to wait for another writer; None waits as long as it takes.
            on_wait: called once with the holder's description when this call has to wait.

        Raises:
            LibraryBusyError: *wait* seconds passed and another process still holds it.
        """
        with self._threads:
            if self._depth == 0:
                self._acquire(activity, wait, on_wait)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self, activity: str, wait: float | None,
                 on_wait: Callable[[str], None] | None) -> None:
        deadline = None if wait is None else time.monotonic() + wait
        told = False
        while True:
            try:
                self._file.acquire(timeout=POLL_SECONDS)
                break
            except Timeout:
                if not told and on_wait is not None:
                    on_wait(self.holder())
                    told = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise LibraryBusyError(
                        f"the library is being changed by {self.holder()}; try again when "
                        "it has finished") from None
        info = {"pid": os.getpid(), "activity": activity, "since": time.time()}
        write_atomically(self.owner_path, lambda f: f.write(json.dumps(info).encode("utf-8")))

    def _release(self) -> None:
        try:
            self.owner_path.unlink()
        except OSError:
            pass
        self._file.release()
