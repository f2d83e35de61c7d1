"""The one way the app downloads: a file from a Hugging Face repository (or a mirror of one),
streamed to disk with progress, cancel and resume, and checked against what the server says
it is. Every caller asks the user first. Standard library only.

The Hub's protocol, as ``huggingface_hub`` uses it (``file_download.get_hf_file_metadata``):
``{endpoint}/{repo}/resolve/{revision}/{path}`` answers a ``HEAD`` with the file's size and
ETag; for a large (LFS) file it redirects to a CDN, and the redirect carries
``X-Linked-Size`` and ``X-Linked-Etag`` (the file's SHA-256). The endpoint is
``$HF_ENDPOINT`` when set (the standard way to point at a mirror), else
``https://huggingface.co``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin

from .errors import MmragError

CHUNK = 1 << 20  # bytes read between progress reports and cancel checks
TIMEOUT_SECONDS = 30  # without a byte from the server
ATTEMPTS = 4  # connections per file: the first and three resumes after a dropped one
HUB = "https://huggingface.co"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadCancelled(MmragError):
    """The user stopped a download; nothing of it was installed."""


class DownloadError(MmragError, OSError):
    """A download failed: offline, not found, refused, damaged, or the disk is full. The
    message names the file and where it was fetched from; nothing was installed.
    ``status`` is the server's HTTP status where it answered with an error, else None."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteFile:
    """One file on a server, as its ``HEAD`` describes it.

    Attributes:
        url: where it is fetched from.
        name: how the user knows it (a repository path).
        size: bytes.
        sha256: lower-case hex, where the server gives it (the Hub's ``X-Linked-Etag`` for
            large files); None for small files, which are checked by size alone.
    """

    url: str
    name: str
    size: int
    sha256: str | None


def hub_endpoint() -> str:
    """The Hugging Face endpoint: ``$HF_ENDPOINT`` (a mirror) or the Hub itself."""
    return (os.environ.get("HF_ENDPOINT") or HUB).rstrip("/")


def resolve_url(repo: str, path: str, revision: str = "main") -> str:
    """The Hub's ``resolve`` URL of *path* in the model repository *repo* (``owner/name``)."""
    return f"{hub_endpoint()}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let a redirect come back as a response: the Hub's redirect itself carries the
    ``X-Linked-*`` headers of a large file."""

    def redirect_request(self, *args, **kwargs):
        return None


def _failure(name: str, url: str, exc: Exception) -> DownloadError:
    """A download error in words: what failed, for which file, from where."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 404:
            why = "it is not there (404 Not Found)"
        elif exc.code in (401, 403):
            why = f"the server refused it ({exc.code}: the repository may be private or gone)"
        else:
            why = f"the server answered {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        why = f"the server cannot be reached (offline? {exc.reason})"
    elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        why = "the disk is full"
    else:
        why = str(exc) or type(exc).__name__
    return DownloadError(f"cannot download {name} from {url}: {why}",
                         exc.code if isinstance(exc, urllib.error.HTTPError) else None)


def probe(url: str, name: str) -> RemoteFile:
    """Ask the server what *url* holds (one ``HEAD``, following plain redirects but reading
    a redirect that carries ``X-Linked-Size``). Network.

    Raises:
        DownloadError: offline, not found, refused, or the server gives no size.
    """
    opener = urllib.request.build_opener(_NoRedirect)
    current = url
    try:
        for _ in range(5):
            request = urllib.request.Request(current, method="HEAD",
                                             headers={"Accept-Encoding": "identity"})
            try:
                response = opener.open(request, timeout=TIMEOUT_SECONDS)
            except urllib.error.HTTPError as exc:
                if exc.code not in (301, 302, 303, 307, 308):
                    raise
                response = exc
            headers = response.headers
            linked = headers.get("X-Linked-Size")
            if linked or response.status < 300:
                size = linked or headers.get("Content-Length")
                if size is None:
                    raise DownloadError(f"cannot download {name} from {url}: the server "
                                        "does not say how large it is")
                etag = (headers.get("X-Linked-Etag") or "").strip('"').lower()
                return RemoteFile(url, name, int(size), etag if _SHA256.fullmatch(etag) else None)
            current = urljoin(current, headers["Location"])
        raise DownloadError(f"cannot download {name} from {url}: too many redirects")
    except DownloadError:
        raise
    except (OSError, ValueError) as exc:
        raise _failure(name, url, exc) from exc


def fetch(remote: RemoteFile, target: Path, progress: Callable[[int], None] | None = None,
          cancel: threading.Event | None = None) -> None:
    """Stream *remote* into *target*, which appears only complete and checked (a *target*
    already there with the announced size is such a file, kept as it is).

    The bytes go to ``target.partial`` first. A dropped connection is resumed where it
    stopped (an HTTP ``Range`` request), up to :data:`ATTEMPTS` connections; a partial file
    left by an earlier, interrupted call is resumed too. When all bytes are there, the size
    and (where known) the SHA-256 are checked, and only then is the file renamed.
    ``progress(bytes so far)`` is called after each chunk.

    Raises:
        DownloadCancelled: *cancel* was set (the partial file is kept, to resume later).
        DownloadError: the server failed, the file differs from what the server said it is
            (the partial file is removed), or the disk is full (removed too).
    """
    if target.is_file() and target.stat().st_size == remote.size:  # checked when it came
        if progress:
            progress(remote.size)
        return
    partial = target.with_name(target.name + ".partial")
    for attempt in range(ATTEMPTS):
        done = partial.stat().st_size if partial.exists() else 0
        if done > remote.size:
            partial.unlink()
            done = 0
        try:
            if done < remote.size:
                _stream(remote, partial, done, progress, cancel)
            break
        except DownloadCancelled:
            raise
        except urllib.error.HTTPError as exc:
            raise _failure(remote.name, remote.url, exc) from exc
        except (OSError, http.client.HTTPException) as exc:  # dropped: IncompleteRead too
            if getattr(exc, "errno", None) == errno.ENOSPC:
                partial.unlink(missing_ok=True)
                raise _failure(remote.name, remote.url, exc) from exc
            if attempt == ATTEMPTS - 1:
                raise _failure(remote.name, remote.url, exc) from exc
            time.sleep(0.5 * (attempt + 1))  # a dropped connection: resume
    _check(remote, partial)
    partial.replace(target)


def _stream(remote: RemoteFile, partial: Path, done: int,
            progress: Callable[[int], None] | None, cancel: threading.Event | None) -> None:
    """Append the bytes from *done* on to *partial* (from the start where the server
    ignores the range)."""
    headers = {"Accept-Encoding": "identity"}
    if done:
        headers["Range"] = f"bytes={done}-"
    request = urllib.request.Request(remote.url, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        if done and response.status != 206:  # the whole file again
            done = 0
        with open(partial, "ab" if done else "wb") as out:
            if progress:
                progress(done)
            while chunk := response.read(CHUNK):
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled(f"the download of {remote.name} was stopped")
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
    if done < remote.size:
        raise ConnectionResetError(f"the connection closed after {done:,} of "
                                   f"{remote.size:,} bytes")


def _check(remote: RemoteFile, partial: Path) -> None:
    """Compare the downloaded bytes with what the server said; remove them when they
    differ."""
    size = partial.stat().st_size
    problem = None
    if size != remote.size:
        problem = f"{size:,} bytes, not the {remote.size:,} the server announced"
    elif remote.sha256:
        with partial.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != remote.sha256:
            problem = f"SHA-256 {digest[:16]}…, not the {remote.sha256[:16]}… the server announced"
    if problem:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"the download of {remote.name} from {remote.url} is damaged "
                            f"({problem}); nothing was installed")
