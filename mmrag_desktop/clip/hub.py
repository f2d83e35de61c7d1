"""CLIP weights on the Hugging Face hub: which repository open_clip lists for a model, its
side files, and the one explicit download (``mmrag models download``), which the user
starts on purpose after seeing the size and source. Nothing else here touches the network."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ..core import downloads
from ..core.config import Config
from .identity import (
    ModelMissingError,
    has_torch,
    install_weights,
    model_slug,
    models_dir,
    record_published,
)

# open_clip's file names on the Hugging Face hub, safetensors first (no pickle code on load).
HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


HUB_SIDE_FILES = ("*.json", "*.txt", "*.model", "tokenizer*", "vocab*", "merges*", "spiece*")
"""Files of a Hugging Face repository that a tokenizer or a text-tower configuration needs
(no weights): what the consented download fetches for :func:`hub_side_repos`."""


@dataclass(frozen=True)
class HubSource:
    """Where the weights for a (model, pretrained) pair are published, and the repositories
    whose tokenizer / configuration files the architecture needs besides (``extras``)."""

    repo_id: str
    filename: str
    size: int  # bytes
    extras: tuple[str, ...] = ()
    sha256: str | None = None  # hex, as the Hub announces it for a large file

    @property
    def remote(self) -> downloads.RemoteFile:
        """The file to download (:func:`.core.downloads.fetch`)."""
        return downloads.RemoteFile(downloads.resolve_url(self.repo_id, self.filename),
                                    f"{self.repo_id}/{self.filename}", self.size, self.sha256)


@contextmanager
def hub_offline() -> Iterator[None]:
    """No network while a model loads: huggingface_hub, and transformers through it, read
    their cache only. Without this, open_clip fetches a Hugging Face tokenizer (49 of its
    built-in configs name one), the configuration of a Hugging Face text tower, or a whole
    ``hf-hub:`` model on every load, without the user's consent."""
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def hub_side_repos(config: Config) -> tuple[str, ...]:
    """Hugging Face repositories whose tokenizer or configuration files the architecture
    needs besides its weights (empty for open_clip's own tokenizer and text towers)."""
    import open_clip

    if config.model.startswith("hf-hub:"):
        return (config.model.removeprefix("hf-hub:"),)
    text = (open_clip.get_model_config(config.model) or {}).get("text_cfg", {})
    return tuple(sorted({r for r in (text.get("hf_tokenizer_name"), text.get("hf_model_name"))
                         if r}))


def hub_files_missing(config: Config, cause: Exception) -> ModelMissingError:
    """The error for a model whose Hugging Face side files are not on this computer."""
    repos = ", ".join(hub_side_repos(config)) or "a Hugging Face repository"
    return ModelMissingError(
        f"{config.model} needs tokenizer / configuration files from {repos} that are not on "
        f"this computer, and the app never fetches them unasked.\n"
        f"  • Download them with the model: mmrag models download (asks first)\n"
        f"({type(cause).__name__}: {str(cause).splitlines()[0][:200] if str(cause) else ''})")


def hub_repo(config: Config) -> str | None:
    """The Hugging Face repository open_clip lists for the configured pair, if any (None
    where open_clip is not installed: the bundle, which runs ONNX exports)."""
    if config.model.startswith("hf-hub:"):
        return config.model.removeprefix("hf-hub:").strip("/") or None
    if not has_torch():
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(config.model, config.pretrained) or {}
    return (cfg.get("hf_hub") or "").strip("/") or None


def hub_source(config: Config) -> HubSource:
    """Ask the hub which file would be downloaded and its size (network).

    Raises:
        ModelMissingError: open_clip lists no hub source for this pair.
        OSError: the hub cannot be reached.
    """
    repo = hub_repo(config)
    if not repo and not has_torch():
        raise ModelMissingError(
            "this install runs the model in ONNX Runtime (no torch): import an ONNX export "
            "with mmrag models import FOLDER, made by mmrag models export-onnx in an install "
            "with torch")
    if not repo:
        raise ModelMissingError(
            f"open_clip lists no download for {config.model} ({config.pretrained}); "
            "import a local file with: mmrag models import FILE"
        )
    for filename in HF_FILENAMES:
        try:
            found = downloads.probe(downloads.resolve_url(repo, filename), f"{repo}/{filename}")
        except downloads.DownloadError as exc:
            if exc.status == 404:
                continue
            raise
        return HubSource(repo, filename, found.size, hub_side_repos(config), found.sha256)
    raise ModelMissingError(f"{repo} holds none of {', '.join(HF_FILENAMES)}")


def download_weights(
    config: Config, home: Path, confirm: Callable[[HubSource], bool],
    progress: Callable[[int], None] | None = None,
) -> Path | None:
    """Download the configured weights into the models folder after ``confirm(source)``
    returns True (the caller shows size and source), checked against the SHA-256 the Hub
    announces and remembered as the published weights (:func:`.clip.identity.record_published`:
    their ONNX export shares their model id). ``progress(bytes so far)``.

    Returns:
        The weights path, or None when the user declined.

    Raises:
        ModelMissingError, OSError: see :func:`hub_source`; OSError also when the download
            fails part-way (nothing is left in the models folder then).
    """
    source = hub_source(config)
    if not confirm(source):
        return None
    from huggingface_hub import snapshot_download

    # its own folder: models/.download also holds other downloads' partial files (resumable)
    staging = models_dir(home) / ".download" / (model_slug(config.model, config.pretrained)
                                                + "-weights")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        for repo in source.extras:  # into the Hugging Face cache, where loading looks
            snapshot_download(repo, allow_patterns=list(HUB_SIDE_FILES))
        if config.model.startswith("hf-hub:"):
            # open_clip finds an hf-hub: model's weights in the Hugging Face cache only
            from huggingface_hub import hf_hub_download
            return Path(hf_hub_download(source.repo_id, source.filename))
        fetched = staging / source.filename
        downloads.fetch(source.remote, fetched, progress)
        weights = install_weights(fetched, config, home, Path(source.filename).suffix)
        if config.pretrained:
            record_published(weights, config.model, config.pretrained, source.remote.url)
        return weights
    except downloads.DownloadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise OSError(f"download from {source.repo_id} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with suppress(OSError):  # empty now, unless another download is there
            staging.parent.rmdir()
