"""The CLIP model's files, for the first-run assistant, Settings and `mmrag models`: the
catalogue of models to choose from, where the configured one's files are, what a download
would fetch, the download (one service for every install), the choice, and an import.

Answering some of these needs open_clip, which loads torch (seconds, and ~0.9 GB resident).
A library whose model runs in a helper process (the GUI's) asks them in a short-lived helper
process too (:func:`.core.helpers.call_apart`), so torch never loads into the window's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import helpers
from ..core.config import Config, save_config

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..clip.catalogue import CatalogueModel
    from ..clip.hub import HubSource
    from ..clip.onnx_download import DownloadPlan
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

    @staticmethod
    def catalogue() -> tuple[CatalogueModel, ...]:
        """The models the app offers (:mod:`.clip.catalogue`), the default first."""
        from ..clip import catalogue
        return catalogue.CATALOGUE

    def chosen(self) -> CatalogueModel | None:
        """The catalogue's entry for the configured model, if it is one of them."""
        from ..clip import catalogue
        return catalogue.of(self.lib.config.model, self.lib.config.pretrained)

    def find(self) -> Path:
        """The configured model's weights file, or ONNX export folder, on this computer.

        Raises:
            ModelMissingError: neither is here (the message says how to get them).
        """
        from ..clip.model_files import find_model
        return self._call(find_model, self.lib.config, self.lib.home)

    def plan(self, name: str | None = None) -> DownloadPlan:
        """What downloading the catalogue's model *name* (default: the configured one)
        would fetch: each file with its URL, size and SHA-256 (network: one ``HEAD`` per
        file, to show before asking).

        Raises:
            UnknownModelError: *name* is not in the catalogue.
            ModelMissingError: no name, and the configured model is not in the catalogue.
            DownloadError: the source cannot be reached or lacks a file.
        """
        from ..clip import catalogue, onnx_download
        from ..clip.identity import ModelMissingError

        model = catalogue.find(name) if name else self.chosen()
        if model is None:
            config = self.lib.config
            raise ModelMissingError(
                f"{config.model} ({config.pretrained or 'custom weights'}) has no published "
                "export to download; choose one of the catalogue's models (mmrag models "
                "list), or import its weights or an export (mmrag models import PATH)")
        return onnx_download.plan(model)

    def install(self, plan: DownloadPlan, progress: Callable[[int], None] | None = None,
                cancel: threading.Event | None = None) -> Path:
        """Download and install what :meth:`plan` found (the user agreed); returns the
        export's folder. See :func:`.clip.onnx_download.install` for *progress*, *cancel*
        and the errors."""
        from ..clip import onnx_download
        return onnx_download.install(plan, self.lib.home, progress, cancel)

    def use(self, name: str) -> CatalogueModel:
        """Make the catalogue's model *name* the configured one (saved in ``config.toml``;
        an explicit weights file or model config is cleared). The library switches to it
        when it next opens its index, keeping the other model's embeddings
        (:meth:`.store.vectors.Vectors.switch_model`); the next index run embeds the rest.

        Raises:
            UnknownModelError: *name* is not in the catalogue.
        """
        from ..clip import catalogue

        model = catalogue.find(name)
        config = self.lib.config
        config.model, config.pretrained = model.architecture, model.pretrained
        config.weights = config.model_config = ""
        save_config(self.lib.home, config)
        return model

    def weights_source(self) -> HubSource:
        """The configured model's open_clip checkpoint on the Hugging Face Hub, for the
        torch backend (network: one ``HEAD``).

        Raises:
            ModelMissingError: open_clip lists no download for it, or torch is not here.
            DownloadError: the Hub cannot be reached.
        """
        from ..clip import hub as model_hub
        return self._call(model_hub.hub_source, self.lib.config)

    def download_weights(self) -> Path:
        """Download the checkpoint :meth:`weights_source` found (the user agreed); returns
        the weights file.

        Raises:
            OSError: the download failed or its SHA-256 did not match.
        """
        return self._call(_download_weights, self.lib.config, self.lib.home)

    def import_file(self, path: Path) -> Path:
        """Check that a weights file or ONNX export folder fits the configured model and
        runs, and copy it into :attr:`folder`; returns where it now lies. A weights file's
        ONNX export is made at once (:func:`.clip.embedder.export_for_search`: a fast cold
        text search with no manual step).

        Raises:
            ModelMismatchError, ValueError, OSError: it does not fit, or cannot be read.
        """
        return self._call(_import, Path(path), self.lib.config, self.lib.home)


def _import(path: Path, config: Config, home: Path) -> Path:
    """A weights file or export folder imported; a weights file's export made."""
    from ..clip.embedder import export_for_search
    from ..clip.model_files import import_model

    imported = import_model(path, config, home)
    if imported.is_file():
        export_for_search(config, home)
    return imported


def _download_weights(config: Config, home: Path) -> Path:
    """The configured weights downloaded from the hub, the user having said yes already,
    and their ONNX export made (see :func:`_import`)."""
    from ..clip import hub as model_hub
    from ..clip.embedder import export_for_search

    weights = model_hub.download_weights(config, home, lambda _source: True)
    export_for_search(config, home)
    return weights
