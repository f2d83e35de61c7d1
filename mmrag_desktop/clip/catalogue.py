"""The models a user can choose, each a published ONNX export of open_clip weights on the
Hugging Face Hub, in one of two layouts:

- ``rclip``: rclip's exports (``yurijmikhalevich/rclip-models``, MIT): ``<name>/visual.onnx``,
  ``<name>/textual.onnx`` (input ``input``, output ``output``, not L2-normalised) and the
  shared ``tokenizer/bpe_simple_vocab_16e6.txt.gz``; the preprocessing is not in the repository,
  so the entry carries it (rclip's ``model.py``: bicubic, shortest side, centre crop, OpenAI
  mean and std, 77 tokens).
- ``immich``: Immich's exports (``immich-app/<name>``): ``config.json`` (the open_clip model
  config), ``visual/model.onnx`` + ``visual/preprocess_cfg.json``, ``textual/model.onnx`` +
  ``textual/tokenizer.json`` + ``textual/tokenizer_config.json``; inputs ``image`` (float)
  and ``text`` (int32), outputs L2-normalised, recent exports with a fixed batch of 1.

Published figures are open_clip's results tables (``docs/openclip_results.csv``,
``docs/openclip_retrieval_results.csv``, ``docs/openclip_multilingual_retrieval_results.csv``
in mlfoundations/open_clip) or, for SigLIP 2, its paper (Tschannen et al. 2025,
arXiv:2502.14786, Table 1). Speeds are this project's measurements with random weights of
the same architecture (``mmrag bench``), on the 2-core development machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import MmragError

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RCLIP_REPO = "yurijmikhalevich/rclip-models"
RCLIP_TOKENIZER = "tokenizer/bpe_simple_vocab_16e6.txt.gz"


@dataclass(frozen=True)
class CatalogueModel:
    """One model the app offers.

    Attributes:
        name: what the user types (``mmrag models use NAME``).
        architecture, pretrained: open_clip's names for the weights (the config's
            ``model`` and ``pretrained``).
        layout: ``rclip`` or ``immich`` (see the module's docstring).
        repo: the Hugging Face model repository.
        folder: the export's folder in *repo* (``rclip``; empty for ``immich``).
        title: what the model is, in a few plain words, for the model list.
        good_at: one line for the user.
        download_mb: the export's size in MB, as published (the download shows the exact
            sizes the server gives).
        images_per_second: image-tower throughput measured here (ONNX Runtime, fp32, random
            weights of the architecture, batches of 16, 2 cores; XLM-RoBERTa's image tower
            is ViT-B-32's at 224 px).
        published: zero-shot / retrieval figures and their source.
        licence: the weights' licence and the export's.
        image_size, mean, std, interpolation, context_length: the preprocessing, for the
            ``rclip`` layout (``immich`` exports carry their own).
    """

    name: str
    title: str
    architecture: str
    pretrained: str
    layout: str
    repo: str
    folder: str
    good_at: str
    download_mb: int
    images_per_second: float
    published: str
    licence: str
    image_size: int = 224
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    context_length: int = 77

    @property
    def model_id(self) -> str:
        """The id of these weights' embeddings (:func:`.clip.identity.named_model_id`)."""
        from .identity import named_model_id
        return named_model_id(self.architecture, self.pretrained)

    def files(self) -> tuple[str, ...]:
        """The repository paths of the export's files."""
        if self.layout == "rclip":
            return (f"{self.folder}/visual.onnx", f"{self.folder}/textual.onnx", RCLIP_TOKENIZER)
        return ("config.json", "visual/model.onnx", "visual/preprocess_cfg.json",
                "textual/model.onnx", "textual/tokenizer.json", "textual/tokenizer_config.json")


CATALOGUE = (
    CatalogueModel(
        name="ViT-B-32-256__datacomp_s34b_b86k", title="Recommended: fast, English",
        architecture="ViT-B-32-256",
        pretrained="datacomp_s34b_b86k", layout="rclip", repo=RCLIP_REPO,
        folder="ViT-B-32-256-datacomp_s34b_b86k",
        good_at="the default: fast on any computer, good English search (rclip's model)",
        download_mb=605, images_per_second=15.2,
        published="ImageNet zero-shot 72.8 %; Flickr30k text→image R@1 64.9 %, MSCOCO 39.9 % "
                  "(open_clip results tables)",
        licence="weights MIT (DataComp, open_clip); export MIT (rclip)",
        image_size=256),
    CatalogueModel(
        name="ViT-B-16-SigLIP2__webli", title="Most accurate, English (slower)",
        architecture="ViT-B-16-SigLIP2", pretrained="webli",
        layout="immich", repo="immich-app/ViT-B-16-SigLIP2__webli", folder="",
        good_at="more accurate English search and finer details; about 3× slower to index",
        download_mb=1500, images_per_second=5.2,
        published="ImageNet zero-shot 78.2 %; MSCOCO text→image R@1 52.1 % (SigLIP 2 paper, "
                  "arXiv:2502.14786, Table 1, B/16 at 224 px)",
        licence="weights Apache-2.0 (Google); export AGPL-3.0 repository, weights unchanged "
                "(Immich)"),
    CatalogueModel(
        name="XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k", title="Many languages",
        architecture="xlm-roberta-base-ViT-B-32", pretrained="laion5b_s13b_b90k",
        layout="immich", repo="immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
        folder="", good_at="queries in about 100 languages (German, Spanish, Chinese, …)",
        download_mb=1465, images_per_second=19.9,
        published="ImageNet zero-shot 62.4 %; Crossmodal-3600 text→image R@1 42.6 % averaged "
                  "over 36 languages (open_clip results tables)",
        licence="weights MIT (LAION, open_clip); export AGPL-3.0 repository, weights "
                "unchanged (Immich)"),
)
DEFAULT = CATALOGUE[0].name


class UnknownModelError(MmragError, LookupError):
    """A name that is not in the catalogue."""


def find(name: str) -> CatalogueModel:
    """The catalogue's model called *name* (case-insensitive).

    Raises:
        UnknownModelError: no such model; the message lists the known names.
    """
    for model in CATALOGUE:
        if model.name.lower() == name.lower():
            return model
    raise UnknownModelError(f"no model called {name!r}; choose one of: "
                            + ", ".join(m.name for m in CATALOGUE))


def of(architecture: str, pretrained: str) -> CatalogueModel | None:
    """The catalogue's entry for these open_clip weights, if any."""
    for model in CATALOGUE:
        if (model.architecture, model.pretrained) == (architecture, pretrained):
            return model
    return None
