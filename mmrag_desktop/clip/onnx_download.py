"""Published ONNX exports of CLIP weights: what an install without torch (the bundle)
downloads in place of a weights file, after showing the size, source and licence.

The release workflow makes each published export with ``mmrag models export-onnx`` from
the weights open_clip names (so anyone can reproduce it), packs it with :func:`pack`, and
publishes the archive beside a ``manifest.json`` that lists every archive with its size
and SHA-256. The app reads the manifest, asks, downloads the archive, checks its hash and
imports it like a local export (:func:`.clip.onnx_backend.import_export`, which runs it once).

Nothing here touches the network except :func:`find_published` and :func:`download`, both
started by the user.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urljoin

from ..core import downloads
from ..core.config import Config
from .identity import ModelFileError, ModelMissingError, model_slug, models_dir

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PublishedExport:
    """One archive the manifest lists: the weights it was exported from (open_clip's
    architecture and pretrained tag), its file name beside the manifest, its size in bytes
    and SHA-256 (hex), where the weights come from and their licence."""

    model: str
    pretrained: str
    file: str
    size: int
    sha256: str
    source: str
    licence: str


def find_published(config: Config) -> tuple[PublishedExport, str]:
    """The published export of the configured weights, and its URL (reads the manifest at
    ``config.onnx_exports_url``: network).

    Raises:
        ModelMissingError: the manifest lists no export of these weights.
        OSError: the manifest cannot be fetched or read.
    """
    url = urljoin(config.onnx_exports_url, MANIFEST)
    try:
        entries = json.loads(downloads.read(url))["exports"]
        published = [PublishedExport(**entry) for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise OSError(f"the list of published exports at {url} is unreadable: {exc}") from exc
    except OSError as exc:
        raise OSError(f"cannot fetch the list of published exports at {url}: {exc}") from exc
    for export in published:
        if (export.model, export.pretrained) == (config.model, config.pretrained):
            return export, urljoin(config.onnx_exports_url, export.file)
    raise ModelMissingError(
        f"no ONNX export of {config.model} ({config.pretrained}) is published at "
        f"{config.onnx_exports_url}; make one with mmrag models export-onnx where torch is "
        "installed, then import it (mmrag models import FOLDER)")


def download(export: PublishedExport, url: str, home: Path,
             progress: Callable[[int], None] | None = None,
             cancel: threading.Event | None = None) -> Path:
    """Download *export* from *url* into ``models/.download`` (see :func:`.core.downloads.fetch`
    for *progress* and *cancel*), check its size and SHA-256, unpack it and import it.
    Nothing is left behind when any step fails. Returns the imported export's folder.

    Raises:
        OSError: the download failed.
        DownloadCancelled: *cancel* was set.
        ModelFileError: the archive's size or hash differs from the manifest's, it is not
            a valid archive, or the export in it does not run.
    """
    from .onnx_backend import import_export

    staging = models_dir(home) / ".download"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    archive = staging / export.file
    try:
        size, sha256 = downloads.fetch(url, archive, progress, cancel)
        if size != export.size or sha256 != export.sha256:
            raise ModelFileError(
                f"the download of {export.file} is not the published file ({size:,} bytes, "
                f"SHA-256 {sha256[:16]}…; expected {export.size:,} bytes, "
                f"{export.sha256[:16]}…); nothing was installed")
        unpacked = staging / "export"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
        except tarfile.TarError as exc:
            raise ModelFileError(f"{export.file} is not a valid archive: {exc}") from exc
        return import_export(unpacked, home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pack(folder: Path, out: Path, model: str, pretrained: str, source: str,
         licence: str) -> PublishedExport:
    """Pack the export in *folder* (as ``export-onnx`` wrote it) into an archive in *out*
    and add it to ``out/manifest.json`` (for the release workflow). Returns its entry."""
    out.mkdir(parents=True, exist_ok=True)
    name = model_slug(model, pretrained) + ".onnx.tar.gz"
    with tarfile.open(out / name, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    data = (out / name).read_bytes()
    entry = PublishedExport(model, pretrained, name, len(data), hashlib.sha256(data).hexdigest(),
                            source, licence)
    manifest_path = out / MANIFEST
    entries = json.loads(manifest_path.read_text())["exports"] if manifest_path.exists() else []
    entries = [e for e in entries if e["file"] != name] + [asdict(entry)]
    manifest_path.write_text(json.dumps({"exports": entries}, indent=1))
    return entry
