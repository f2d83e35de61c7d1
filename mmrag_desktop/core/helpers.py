"""Helper processes: where a model whose native code could crash, or whose loading holds
the interpreter lock, runs apart from the app (the CLIP model under the GUI, the VLM)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

STOP_SECONDS = 5  # for a helper to end after its pipes closed, before it is killed


def spawn(target: Callable, name: str, channels: tuple[str, ...], *args
          ) -> tuple[BaseProcess, dict[str, Connection]]:
    """Start ``target({channel: connection}, *args)`` in a new daemon process with one pipe
    per channel; returns the process and this side's ends. Spawned, not forked: a forked
    child would inherit the app's threads' locks (Qt, SQLite)."""
    context = multiprocessing.get_context("spawn")
    pipes = {channel: context.Pipe() for channel in channels}
    process = context.Process(target=target, name=name, daemon=True,
                              args=({c: child for c, (_, child) in pipes.items()}, *args))
    process.start()
    for _, child in pipes.values():
        child.close()
    return process, {c: parent for c, (parent, _) in pipes.items()}


def exit_with_parent() -> None:
    """In a helper process: end it (at once, no clean-up: it owns nothing the app keeps)
    when the process that started it ends, however that ends (SIGKILL, a logout's
    SIGTERM, a crash). A pool's worker waits on a queue whose writing end it holds itself,
    so its parent's death never reaches it otherwise; the parent's sentinel
    (:func:`multiprocessing.parent_process`) does. Call it first thing in the helper (a
    pool's ``initializer``)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def call_apart(function: Callable, *args):
    """``function(*args)`` run in a new helper process (spawned, as :func:`spawn`), which
    ends with it: how the GUI asks open_clip something (a hub repository, whether a weights
    file fits) without loading torch into its own process. *function* and *args* must
    pickle; its result, or the exception it raised, comes back as if called here."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=exit_with_parent) as pool:
        return pool.submit(function, *args).result()


def stop(process: BaseProcess, connections: dict[str, Connection],
         patience: float = STOP_SECONDS) -> None:
    """Close the pipes (the helper ends), wait *patience* seconds, then kill it. A helper
    that holds nothing to save (the model's: it only reads its files) is given 0: a torch
    process takes 1–2 s to tear itself down, which quitting the app would wait for."""
    for conn in connections.values():
        conn.close()
    process.join(patience)
    if process.is_alive():
        process.kill()
        process.join()


def ended_how(process: BaseProcess) -> str:
    """How a finished process ended, in words: ``killed by SIGSEGV``, ``exit status 1``."""
    code = process.exitcode
    try:
        return f"killed by {signal.Signals(-code).name}" if code and code < 0 \
            else f"exit status {code}"
    except ValueError:
        return f"exit status {code}"
