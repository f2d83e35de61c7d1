"""The configured CLIP model's files, for the first-run assistant and `mmrag models`:
where they are, what a download would fetch, the download and an import.

Answering some of these needs open_clip, which loads torch (seconds, and ~0.9 GB resident).
A library whose model runs in a helper process (the GUI's) asks them in a short-lived helper
process too (:func:`.core.helpers.call_apart`), so torch never loads into the window's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import helpers
from ..core.config import Config

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..clip.hub import HubSource
    from ..clip.onnx_download import PublishedExport
    from .facade import Library


class ModelFiles:
    """The model's files (``library.model_files``)."""

    def __init__(self, lib: Library):
        self.lib = lib

    def _call(self, function: Callable, *args):
        """``function(*args)``, apart where open_clip must not load into this process."""
        if self.lib.model_process and self.runs_torch():
            return helpers.call_apart(function, *args)
        return function(*args)

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
        return self._call(find_model, self.lib.config, self.lib.home)

    def source(self) -> HubSource | tuple[PublishedExport, str]:
        """What a download of the configured model would fetch, with its size, before any
        download: the weights file on the Hugging Face hub where torch runs, else the
        published ONNX export and its URL (network: the hub's API or the exports list).

        Raises:
            OSError: the source cannot be reached or does not have the model.
        """
        from ..clip import hub as model_hub
        from ..clip import onnx_download
        return self._call(model_hub.hub_source, self.lib.config) if self.runs_torch() else \
            onnx_download.find_published(self.lib.config)

    def download(self, source: HubSource | tuple[PublishedExport, str]) -> Path:
        """Download what :meth:`source` found into :attr:`folder`; returns
        the weights file or export folder.

        Raises:
            OSError: the download failed or its SHA-256 did not match.
        """
        from ..clip import onnx_download
        if isinstance(source, tuple):
            return onnx_download.download(*source, self.lib.home)
        return self._call(_download_weights, self.lib.config, self.lib.home)

    def import_file(self, path: Path) -> Path:
        """Check that a weights file or ONNX export folder fits the configured model and
        runs, and copy it into :attr:`models_folder`; returns where it now lies.

        Raises:
            ModelMismatchError, ValueError, OSError: it does not fit, or cannot be read.
        """
        from ..clip.model_files import import_model
        return self._call(import_model, Path(path), self.lib.config, self.lib.home)


def _download_weights(config: Config, home: Path) -> Path:
    """The configured weights downloaded from the hub, the user having said yes already."""
    from ..clip import hub as model_hub
    return model_hub.download_weights(config, home, lambda _source: True)
