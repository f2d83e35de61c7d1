"""The configured CLIP model's files, for the first-run assistant and `mmrag models`:
where they are, what a download would fetch, the download and an import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..clip.hub import HubSource
    from ..clip.onnx_download import PublishedExport
    from .facade import Library


class ModelFiles:
    """The model's files (``library.model_files``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    @property
    def folder(self) -> Path:
        """Where downloaded and imported weights and ONNX exports are kept."""
        from ..clip.identity import models_dir
        return models_dir(self.lib.home)

    @staticmethod
    def runs_torch() -> bool:
        """Whether torch models can run in this install (a bundle runs ONNX exports only)."""
        from ..clip.identity import has_torch
        return has_torch()

    def find(self) -> Path:
        """The configured model's weights file, or ONNX export folder, on this computer.

        Raises:
            ModelMissingError: neither is here (the message says how to get them).
        """
        from ..clip.model_files import find_model
        return find_model(self.lib.config, self.lib.home)

    def source(self) -> HubSource | tuple[PublishedExport, str]:
        """What a download of the configured model would fetch, with its size, before any
        download: the weights file on the Hugging Face hub where torch runs, else the
        published ONNX export and its URL (network: the hub's API or the exports list).

        Raises:
            OSError: the source cannot be reached or does not have the model.
        """
        from ..clip import hub as model_hub
        from ..clip import onnx_download
        return model_hub.hub_source(self.lib.config) if self.runs_torch() else \
            onnx_download.find_published(self.lib.config)

    def download(self, source: HubSource | tuple[PublishedExport, str]) -> Path:
        """Download what :meth:`model_source` found into :attr:`models_folder`; returns
        the weights file or export folder.

        Raises:
            OSError: the download failed or its SHA-256 did not match.
        """
        from ..clip import hub as model_hub
        from ..clip import onnx_download
        if isinstance(source, tuple):
            return onnx_download.download(*source, self.lib.home)
        return model_hub.download_weights(self.lib.config, self.lib.home, lambda _source: True)

    def import_file(self, path: Path) -> Path:
        """Check that a weights file or ONNX export folder fits the configured model and
        runs, and copy it into :attr:`models_folder`; returns where it now lies.

        Raises:
            ModelMismatchError, ValueError, OSError: it does not fit, or cannot be read.
        """
        from ..clip.model_files import import_model
        return import_model(Path(path), self.lib.config, self.lib.home)
