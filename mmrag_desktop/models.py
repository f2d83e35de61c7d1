"""CLIP weights on disk: finding them, importing a local file, and the one explicit download.

Nothing here touches the network except :func:`download_weights`, which the user starts on
purpose after seeing the size and source (``mmrag models download``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import Config

# open_clip is imported inside the functions that need it: it imports torch (seconds), and
# the GUI and `mmrag status` must start without waiting for that.

# open_clip's file names on the Hugging Face hub, safetensors first (no pickle code on load).
HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class ModelMissingError(RuntimeError):
    """No weights for the configured model were found; the message says how to get them."""


class ModelMismatchError(RuntimeError):
    """The library's embeddings come from another model than the one asked to search them."""


class ModelFileError(ValueError):
    """A weights file does not exist or does not fit the configured architecture."""


TOWERS = ("image", "text")
"""The two towers of a CLIP model; each loads, and may run in a backend, on its own."""

HUB_SIDE_FILES = ("*.json", "*.txt", "*.model", "tokenizer*", "vocab*", "merges*", "spiece*")
"""Files of a Hugging Face repository that a tokenizer or a text-tower configuration needs
(no weights): what the consented download fetches for :func:`hub_side_repos`."""


@dataclass(frozen=True)
class HubSource:
    """Where the weights for a (model, pretrained) pair are published, and the repositories
    whose tokenizer / configuration files the architecture needs besides (``extras``)."""

    repo_id: str
    filename: str
    size: int | None  # bytes; None when the hub could not be asked
    extras: tuple[str, ...] = ()


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


def register_model_config(config: Config) -> None:
    """Make a custom architecture from ``config.model_config`` known to open_clip.

    Raises:
        ModelFileError: the JSON file does not exist.
    """
    if not config.model_config:
        return
    path = Path(config.model_config)
    if not path.is_file():
        raise ModelFileError(f"model config not found: {path}")
    import open_clip

    open_clip.add_model_config(path)


def models_dir(home: Path) -> Path:
    path = home / "models"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def model_slug(model: str, pretrained: str) -> str:
    """A file-name-safe name for a (model, pretrained) pair."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{pretrained or 'custom'}")


def model_id(config: Config, weights: Path, home: Path) -> str:
    """Identifies the weights that made a library's embeddings: the architecture and a
    content hash of the weights file, so a different checkpoint under the same name (or a
    re-import over the old file) is a different model. Vectors of two ids never mix."""
    return f"{config.model}/{weights_digest(weights, home)[:16]}"


def configured_model_id(config: Config, home: Path, random_weights: bool = False) -> str:
    """The :func:`model_id` of the configured weights (``random:ARCH`` with random weights;
    without a weights file, that of an imported ONNX export of the architecture), found
    without loading the model: no torch import when the weights file is set or in the
    models folder.

    Raises:
        ModelMissingError: no weights were found.
    """
    if random_weights:
        return "random:" + config.model
    found = find_model(config, home)
    if found.is_dir():
        from .clip_onnx import OnnxCLIP

        return OnnxCLIP(found).model_id
    return model_id(config, found, home)


def find_model(config: Config, home: Path) -> Path:
    """The configured weights file (:func:`find_weights`) or, in an install that has only
    an ONNX export of the architecture (the bundle), the newest such export's folder.

    Raises:
        ModelMissingError: neither was found; the message says how to get one.
    """
    try:
        return find_weights(config, home)
    except ModelMissingError:
        from .clip_onnx import find_export_of

        export = find_export_of(home, config.model)
        if export is None:
            raise
        return export


def weights_digest(path: Path, home: Path) -> str:
    """BLAKE2b-128 (hex) of a weights file, hashed while streaming it. Remembered in the
    models folder by (path, size, mtime, inode), so a 600 MB checkpoint is hashed once, not
    on every start.

    Raises:
        ModelMissingError: the file cannot be read.
    """
    memo_path = models_dir(home) / ".digests.json"
    try:
        st = path.stat()
        key = [os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino]
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
        if not isinstance(memo, dict):
            memo = {}
        saved = memo.get(key[0])
        if isinstance(saved, dict) and saved.get("key") == key:
            return saved["digest"]
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    except OSError as exc:
        raise ModelMissingError(f"weights file unreadable: {path}: {exc.strerror or exc}") from exc
    memo[key[0]] = {"key": key, "digest": digest}
    try:
        fd, tmp = tempfile.mkstemp(dir=memo_path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(memo))
        os.replace(tmp, memo_path)
    except OSError:
        pass  # not remembered: hashed again next time
    return digest


def _install(staged: Path, config: Config, home: Path, suffix: str) -> Path:
    """Move staged weights into the models folder as the configured pair's file, removing
    that pair's files of other types, so that what was installed last is what loads."""
    slug = model_slug(config.model, config.pretrained)
    target = models_dir(home) / f"{slug}{suffix}"
    staged.replace(target)
    for other in WEIGHT_SUFFIXES:
        if other != suffix:
            (models_dir(home) / f"{slug}{other}").unlink(missing_ok=True)
    return target


def has_torch() -> bool:
    """Whether the torch backend can run here (torch and open_clip installed); a bundle
    has neither and runs ONNX exports only."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "open_clip"))


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


def find_weights(config: Config, home: Path) -> Path:
    """Locate the weights file, in order: ``config.weights``, the app's models folder,
    the Hugging Face cache (read offline, never downloaded here).

    Raises:
        ModelMissingError: nothing was found; the message names both ways to get weights.
    """
    if config.weights:
        path = Path(config.weights)
        if not path.is_file():
            raise ModelMissingError(f"weights file not found: {path}")
        return path
    slug = model_slug(config.model, config.pretrained)
    for suffix in WEIGHT_SUFFIXES:
        candidate = models_dir(home) / f"{slug}{suffix}"
        if candidate.is_file():
            return candidate
    repo = hub_repo(config)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in HF_FILENAMES:
            cached = try_to_load_from_cache(repo, filename)
            if isinstance(cached, str):
                return Path(cached)
    source = f" ({repo} on the Hugging Face hub)" if repo else ""
    raise ModelMissingError(
        f"No weights found for {config.model} ({config.pretrained}).\n"
        f"  • Download them{source}: mmrag models download\n"
        f"  • Or import a file you already have: mmrag models import FILE\n"
        f"Looked in: {models_dir(home)} and the Hugging Face cache."
    )


def import_model(source: Path, config: Config, home: Path) -> Path:
    """Import a weights file (:func:`import_weights`) or an ONNX export folder
    (:func:`.clip_onnx.import_export`) into the models folder; returns where it now lies.

    Raises:
        ModelFileError: it is missing, damaged, or does not fit the configured model.
    """
    if source.is_dir():
        from .clip_onnx import import_export

        return import_export(source, home)
    return import_weights(source, config, home)


def import_weights(source: Path, config: Config, home: Path) -> Path:
    """Check that *source* loads into the configured architecture, then copy it into the
    models folder, where :func:`find_weights` finds it.

    Raises:
        ModelFileError: the file is missing, of an unknown type, or its tensors do not fit.
    """
    if not source.is_file():
        raise ModelFileError(f"no such file: {source}")
    suffix = source.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ModelFileError(f"{source.name}: expected one of {', '.join(WEIGHT_SUFFIXES)}")
    register_model_config(config)
    import open_clip

    with hub_offline():
        try:
            model = open_clip.create_model(config.model, pretrained=None, pretrained_text=False)
        except (OSError, ValueError) as exc:
            raise hub_files_missing(config, exc) from exc
    try:
        open_clip.load_checkpoint(model, str(source))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelFileError(
            f"{source.name} does not fit {config.model}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    staged = models_dir(home) / f".{model_slug(config.model, config.pretrained)}{suffix}.part"
    shutil.copyfile(source, staged)
    return _install(staged, config, home, suffix)


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
    sizes = hub_file_sizes(repo, HF_FILENAMES)
    for filename in HF_FILENAMES:
        if filename in sizes:
            return HubSource(repo, filename, sizes[filename], hub_side_repos(config))
    raise ModelMissingError(f"{repo} holds none of {', '.join(HF_FILENAMES)}")


def download_weights(
    config: Config, home: Path, confirm: Callable[[HubSource], bool]
) -> Path | None:
    """Download the configured weights into the models folder after ``confirm(source)``
    returns True (the caller shows size and source). Progress is shown by huggingface_hub.

    Returns:
        The weights path, or None when the user declined.

    Raises:
        ModelMissingError, OSError: see :func:`hub_source`; OSError also when the download
            fails part-way (nothing is left in the models folder then).
    """
    source = hub_source(config)
    if not confirm(source):
        return None
    from huggingface_hub import hf_hub_download, snapshot_download

    staging = models_dir(home) / ".download"
    try:
        for repo in source.extras:  # into the Hugging Face cache, where loading looks
            snapshot_download(repo, allow_patterns=list(HUB_SIDE_FILES))
        if config.model.startswith("hf-hub:"):
            # open_clip loads an hf-hub: model's weights from that cache too (find_weights
            # looks there).
            return Path(hf_hub_download(source.repo_id, source.filename))
        fetched = Path(hf_hub_download(source.repo_id, source.filename, local_dir=staging))
        return _install(fetched, config, home, Path(source.filename).suffix)
    except Exception as exc:  # noqa: BLE001
        raise OSError(f"download from {source.repo_id} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
