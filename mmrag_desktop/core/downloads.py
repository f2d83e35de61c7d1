"""Fetching one file over HTTPS, streamed to disk with progress and cancel: the only way the
app downloads (every caller asks the user first). Standard library only."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .errors import MmragError

CHUNK = 1 << 20  # bytes read between progress reports and cancel checks
TIMEOUT_SECONDS = 30  # without a byte from the server


class DownloadCancelled(MmragError):
    """The user stopped a download; nothing of it was kept."""


def read(url: str) -> bytes:
    """A small file's bytes (a manifest).

    Raises:
        OSError: the server cannot be reached or answers with an error.
    """
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return response.read()


def fetch(url: str, target: Path, progress: Callable[[int], None] | None = None,
          cancel: threading.Event | None = None) -> tuple[int, str]:
    """Stream *url* into *target* (``target.partial`` until complete, then renamed), calling
    ``progress(bytes so far)`` after each chunk. Returns (size in bytes, SHA-256 hex).

    Raises:
        DownloadCancelled: *cancel* was set (the partial file is removed).
        OSError: the download failed (the partial file is removed).
    """
    partial = target.with_name(target.name + ".partial")
    digest, done = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                open(partial, "wb") as out:
            while chunk := response.read(CHUNK):
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled(f"the download of {target.name} was stopped")
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return done, digest.hexdigest()


def hub_file_sizes(repo: str, filenames: list[str] | tuple[str, ...]) -> dict[str, int | None]:
    """Which of *filenames* the hub repository *repo* holds, with their sizes in bytes
    (None where the hub gives none). Network.

    Raises:
        OSError: the hub cannot be reached.
    """
    from huggingface_hub import HfApi

    try:
        infos = HfApi().get_paths_info(repo, list(filenames))
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise OSError(f"cannot reach the Hugging Face hub for {repo}: {exc}") from exc
    return {info.path: getattr(info, "size", None) for info in infos}
