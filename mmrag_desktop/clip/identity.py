"""Which CLIP model a library's embeddings come from, and where its files lie: the models
folder, file names per (architecture, pretrained) pair, the weights' content digest, and the
errors of finding or reading them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import zipfile
from pathlib import Path

from ..core.atomic import write_atomically
from ..core.config import Config
from ..core.errors import MmragError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class ModelMissingError(MmragError, RuntimeError):
    """No weights for the configured model were found; the message says how to get them."""


class ModelMismatchError(MmragError, RuntimeError):
    """The library's embeddings come from another model than the one asked to search them."""


class ModelFileError(MmragError, ValueError):
    """A weights file does not exist or does not fit the configured architecture."""


TOWERS = ("image", "text")
"""The two towers of a CLIP model; each loads, and may run in a backend, on its own."""


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
    """Identifies the weights that made a library's embeddings. Weights downloaded from
    their published source (:func:`record_published`) have the published name
    (:func:`named_model_id`), which the ONNX export of the same weights shares, so a
    library moves between the two without re-embedding; any other file has the
    architecture and a content hash, so a different checkpoint under the same name (or a
    re-import over the old file) is a different model. Vectors of two ids never mix."""
    published = _published_id(weights)
    return published or f"{config.model}/{weights_digest(weights, home)[:16]}"


def named_model_id(architecture: str, pretrained: str) -> str:
    """The id of open_clip's published weights *pretrained* of *architecture*, however
    they run (a checkpoint, rclip's or Immich's ONNX export): ``ARCH/pretrained``."""
    return f"{architecture}/{pretrained}"


def _provenance(weights: Path) -> Path:
    return weights.with_name(weights.name + ".source.json")


def record_published(weights: Path, architecture: str, pretrained: str, url: str) -> None:
    """Remember that *weights* (as they are now: size and modification time) are the
    published weights *pretrained* of *architecture*, downloaded from *url* and checked
    against the server's SHA-256."""
    st = weights.stat()
    record = {"model_id": named_model_id(architecture, pretrained), "url": url,
              "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    write_atomically(_provenance(weights), lambda f: f.write(json.dumps(record).encode()))


def _published_id(weights: Path) -> str | None:
    """The published name recorded for *weights*, while the file is unchanged since."""
    try:
        record = json.loads(_provenance(weights).read_text())
        st = weights.stat()
        if (record["size"], record["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return str(record["model_id"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


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
        write_atomically(memo_path, lambda f: f.write(json.dumps(memo).encode()))
    except OSError:
        pass  # not remembered: hashed again next time
    return digest


def check_weights_file(path: Path) -> None:
    """A quick check that *path* can be a checkpoint, made when the ``weights`` setting is
    set (reading it whole is the model load's job): it exists, has a known type, and its
    container is whole — a safetensors header that fits the file, a torch zip archive with
    its directory at the end (a truncated download has none).

    Raises:
        ModelFileError: it is missing, of an unknown type, or damaged (the message says).
    """
    if not path.is_file():
        raise ModelFileError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ModelFileError(f"{path.name}: expected one of {', '.join(WEIGHT_SUFFIXES)}")
    try:
        with path.open("rb") as f:
            if suffix == ".safetensors":
                length = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(length)) if 0 < length <= path.stat().st_size else None
                ends = max((v["data_offsets"][1] for k, v in (header or {}).items()
                            if k != "__metadata__"), default=-1)
                whole = header is not None and 8 + length + ends == path.stat().st_size
            else:
                whole = zipfile.is_zipfile(f) or (f.seek(0) == 0 and f.read(2) == b"\x80\x02")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelFileError(f"{path.name} cannot be read as model weights: {exc}") from exc
    if not whole:
        raise ModelFileError(f"{path.name} is damaged or not model weights (truncated?); "
                             "the setting was not changed")


def install_weights(staged: Path, config: Config, home: Path, suffix: str) -> Path:
    """Move staged weights into the models folder as the configured pair's file, removing
    that pair's files of other types, so that what was installed last is what loads."""
    slug = model_slug(config.model, config.pretrained)
    target = models_dir(home) / f"{slug}{suffix}"
    _provenance(target).unlink(missing_ok=True)
    staged.replace(target)
    for other in WEIGHT_SUFFIXES:
        if other != suffix:
            (models_dir(home) / f"{slug}{other}").unlink(missing_ok=True)
    return target


def has_torch() -> bool:
    """Whether the torch backend can run here (torch and open_clip installed); a bundle
    has neither and runs ONNX exports only."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "open_clip"))
