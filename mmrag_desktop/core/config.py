"""Where the library lives on disk and the user's settings (``config.toml``).

Everything the app writes lives in one private home folder (mode 0700):
``config.toml``, ``library.db`` (SQLite: metadata and embeddings, the source of truth),
``index/`` (the HNSW cache) and ``models/`` (imported or downloaded weights). The folder is
``$MMRAG_HOME`` when set, else the platform's user data folder (platformdirs).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import tomli_w
import tomllib
from filelock import FileLock

from .atomic import write_atomically
from .errors import MmragError
from .paths import path_from_db, path_to_db

APP_NAME = "mmrag-desktop"
RETIRED = ("onnx_exports_url",)
"""Settings earlier versions wrote that no longer mean anything: read without complaint,
dropped at the next save."""

ANALYSIS_NAMES = ("text", "places", "faces", "captions")
"""What the understanding pass can learn, in the order it runs (:data:`.domain.analyses.ANALYSES`)."""

DEFAULT_EXCLUDES = (
    # Junk and system folders that never hold a person's photos, and thumbnail caches that
    # would duplicate every photo at low resolution.
    "node_modules",
    "__pycache__",
    "$RECYCLE.BIN",
    "System Volume Information",
    "@eaDir",
    "#recycle",
    ".thumbnails",
    "Thumbs.db",
    "lost+found",
)


class ConfigError(MmragError, ValueError):
    """The configuration file cannot be read or holds an invalid value."""


@dataclass
class Config:
    """User settings, persisted as TOML in the home folder.

    Attributes:
        roots: photo folders to index (absolute paths).
        excludes: folder or file names (``fnmatch`` patterns) skipped while scanning.
        include_hidden: index dot-files and dot-folders too.
        model: open_clip architecture name, e.g. ``ViT-B-32-256``.
        pretrained: open_clip pretrained tag, e.g. ``datacomp_s34b_b86k``.
        weights: explicit local weights file; overrides the models folder and the HF cache.
        model_config: optional open_clip model-config JSON for an architecture open_clip
            does not ship (registered with ``open_clip.add_model_config``).
        device: ``auto`` (CUDA, then Apple MPS, then CPU), or a torch device string.
        precision: ``auto`` (each tower's fastest precision on this machine that keeps
            cosine ≥ 0.999 to fp32, measured once), or ``fp32``, ``bf16``, ``fp16``,
            ``int8`` (dynamic quantisation, CPU).
        backend: ``auto`` (ONNX Runtime for text queries where the weights were exported
            with ``mmrag models export-onnx``, torch for images where installed), ``torch``
            or ``onnx``.
        batch_size: images per forward pass.
        decode_workers: decoding threads; 0 means one per CPU core.
        hnsw_m, hnsw_ef_construction, hnsw_ef: HNSW graph parameters (Malkov & Yashunin,
            2018, arXiv:1603.09320): links per node, build-time and query-time beam width
            (0: by the library's size, :func:`.index.vectors.ef_for`).
        thumbnail_size: thumbnail edge in pixels (GUI).
        relevance_cutoff: the GUI hides results scoring below this fraction of the way from
            the query's typical score in the library (the model's baseline) to the best
            result's (:func:`.domain.query.relevant`; "Show all" shows them); 0 hides none.
        rescan_interval: seconds between periodic rescans while watching; 0 disables.
        vlm_model: the vision-language model, a GGUF file (llama.cpp); empty: none set.
        vlm_mmproj: its vision projector (mmproj GGUF); empty: text only (no photos seen).
        vlm_threads: CPU threads for the VLM; 0 means one per core.
        vlm_context: context size in tokens (photos, metadata, question and answer).
        vlm_gpu_layers: layers offloaded to the GPU (CUDA / Metal builds); -1 all, 0 none.
        vlm_idle_unload: seconds without a question after which the VLM is unloaded.
        vlm_max_tokens: the longest answer, tokens.
        ask_photos: photos the VLM looks at for a question about the library.
        understand: what the understanding pass learns after photos are embedded
            (:mod:`.understanding.passes`): ``text`` (OCR), ``places`` (names for EXIF GPS),
            ``faces`` (faces and people: leaving it out is the privacy setting that turns
            them off; ``mmrag people forget`` deletes what was stored).
    """

    roots: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    include_hidden: bool = False
    model: str = "ViT-B-32-256"
    pretrained: str = "datacomp_s34b_b86k"
    weights: str = ""
    model_config: str = ""
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    batch_size: int = 32
    decode_workers: int = 0
    # Recall@10 ≥ 0.98 vs exact on 1M 512-d vectors (`mmrag bench --sizes 1000000`, 2-core
    # EPYC, quiet): M 24 needs ef ≈ 240 (2.7 ms p50); M 32 ef 160 (0.982 at 2.34 ms), the
    # graph 3 % larger and built ~1.3x slower. ef 0: by the library's size (index.vectors.ef_for).
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 0
    thumbnail_size: int = 256
    # Halfway from the query's baseline to the best score: on CLIP's usual text-query range
    # (baseline ≈ 0.18, best ≈ 0.32) the cut the old "0.8 × the best" made; not fitted on
    # pretrained weights (none were reachable here). Photo queries (best ≈ 1.0) keep more.
    relevance_cutoff: float = 0.5
    rescan_interval: int = 600
    vlm_model: str = ""
    vlm_mmproj: str = ""
    vlm_threads: int = 0
    vlm_context: int = 4096
    vlm_gpu_layers: int = 0
    vlm_idle_unload: float = 300.0
    vlm_max_tokens: int = 512
    ask_photos: int = 4
    understand: list[str] = field(default_factory=lambda: ["text", "places", "faces"])

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a value is out of range."""
        if self.precision not in ("auto", "fp32", "bf16", "fp16", "int8"):
            raise ConfigError(f"precision must be auto, fp32, bf16, fp16 or int8, got "
                              f"{self.precision!r}")
        if self.backend not in ("auto", "torch", "onnx"):
            raise ConfigError(f"backend must be auto, torch or onnx, got {self.backend!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.decode_workers < 0:
            raise ConfigError(f"decode_workers must be ≥ 0, got {self.decode_workers}")
        if self.hnsw_m < 2 or self.hnsw_ef_construction < 1 or self.hnsw_ef < 0:
            raise ConfigError("hnsw_m must be ≥ 2, hnsw_ef_construction ≥ 1 and hnsw_ef ≥ 0 "
                              "(0: chosen by the library's size)")
        if not 0 <= self.relevance_cutoff < 1:
            raise ConfigError("relevance_cutoff must be in [0, 1)")
        if self.vlm_context < 512 or self.vlm_max_tokens < 1 or self.ask_photos < 1:
            raise ConfigError("vlm_context must be ≥ 512, vlm_max_tokens and ask_photos ≥ 1")
        unknown = [a for a in self.understand if a not in ANALYSIS_NAMES]
        if unknown:
            raise ConfigError(f"understand: unknown {', '.join(unknown)} (known: "
                              f"{', '.join(ANALYSIS_NAMES)})")


def home_dir() -> Path:
    """The app's private home folder, created if missing, and made private (0700, files
    0600) whether or not it existed."""
    home = Path(os.environ.get("MMRAG_HOME") or platformdirs.user_data_dir(APP_NAME))
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    make_private(home)
    return home


def make_private(folder: Path) -> None:
    """Make *folder* and what the app keeps in it readable by its owner only: the folder
    and its subfolders 0700, files 0600. Thumbnails are not visited one by one (there can
    be a million); their folder's 0700 closes them all."""
    def fix(path: Path, mode: int) -> None:
        try:
            if path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)
        except OSError:
            pass  # gone meanwhile, or not ours: nothing to protect here

    fix(folder, 0o700)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            fix(entry, 0o700)
            if entry.name in ("index", "models"):
                for item in entry.iterdir():
                    if not item.is_symlink():
                        fix(item, 0o700 if item.is_dir() else 0o600)
        else:
            fix(entry, 0o600)


def config_path(home: Path) -> Path:
    return home / "config.toml"


def _read_settings(path: Path) -> dict:
    """The settings in *path* as stored values (roots decoded), checked against
    :class:`Config`'s fields and types; {} when the file does not exist.

    Raises:
        ConfigError: not valid TOML, an unknown setting, or a value of the wrong type.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key in RETIRED:
        data.pop(key, None)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    defaults = dataclasses.asdict(Config())
    for key, value in data.items():
        expected = type(defaults[key])
        if expected is float and type(value) is int:
            data[key] = value = float(value)
        if type(value) is not expected or (
                expected is list and not all(isinstance(v, str) for v in value)):
            wanted = "a list of texts" if expected is list else {
                bool: "true or false", int: "a whole number", float: "a number",
                str: "a text"}[expected]
            raise ConfigError(f"{path}: setting {key!r} must be {wanted}, not {value!r}")
    if "roots" in data:
        data["roots"] = [path_from_db(r) for r in data["roots"]]
    return data


def load_config(home: Path) -> Config:
    """Read ``config.toml`` from *home*; defaults when it does not exist.

    Raises:
        ConfigError: the file is not valid TOML, names an unknown setting or a bad value
            (the message names the setting).
    """
    config = Config(**_read_settings(config_path(home)))
    config.validate()
    config._loaded = dataclasses.asdict(config)  # type: ignore[attr-defined]
    return config


def save_config(home: Path, config: Config) -> None:
    """Save *config* to ``config.toml``, merged with what another process saved since
    *config* was loaded: under a lock, the file is read again, and only the settings this
    process changed are written over it (list settings such as ``roots`` take this
    process's additions and removals). Written to a unique temp file, fsynced, renamed.
    *config* is updated to the merged settings. A Config not made by :func:`load_config`
    is written whole.

    Raises:
        ConfigError: a value is invalid, or the file on disk is.
    """
    config.validate()
    path = config_path(home)
    with FileLock(str(path) + ".lock", mode=0o600):
        mine = dataclasses.asdict(config)
        base = getattr(config, "_loaded", None)
        merged = mine
        if base is not None:
            merged = dataclasses.asdict(Config()) | _read_settings(path)
            for key, value in mine.items():
                if value == base[key]:
                    continue  # not changed here: the file's value stands
                if isinstance(value, list):
                    added = [v for v in value if v not in base[key]]
                    kept = [v for v in merged[key] if v in value or v not in base[key]]
                    merged[key] = kept + [v for v in added if v not in kept]
                else:
                    merged[key] = value
        Config(**merged).validate()
        stored = merged | {"roots": [path_to_db(r) for r in merged["roots"]]}
        write_atomically(path, lambda f: f.write(tomli_w.dumps(stored).encode("utf-8")),
                         durable=True)
        for key, value in merged.items():
            setattr(config, key, value)
        config._loaded = dataclasses.asdict(config)  # type: ignore[attr-defined]
