"""The CLIP model in a helper process, for the GUI.

Importing torch (217 ms), open_clip (174 ms) or loading the ONNX tokenizer (72 ms) holds the
interpreter lock in C code, measured by ``mmrag bench --gui``: on a worker thread of the GUI
those freeze the window all the same. In a helper process they cost the GUI nothing, and a
native crash of the model costs one batch or query, not the app. The GUI process then
imports neither torch nor ONNX Runtime: it prepares pixels itself
(:func:`.media.photos.model_input`, identical to the backends') and sends batches.

One pipe per tower, each answered by its own thread in the helper: a search's text query
never waits behind an indexing batch.
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
from PIL import Image

from ..core import helpers
from ..core.config import Config
from ..core.errors import MmragError
from ..media.photos import model_input
from .identity import TOWERS
from .model_files import configured_model_id

# What the GUI process may ask of the helper's Embedder, and on which tower's pipe.
_CALLS = {"image_size": "image", "pixel_spec": "image", "to_pixels": "image",
          "encode_images": "image", "device": "image", "describe": "image", "dim": "text",
          "encode_texts": "text"}


class ModelCrashedError(MmragError, RuntimeError):
    """The model's helper process ended in the middle of work (a native crash, or killed).
    The next use starts a new one."""


def serve(connections: dict[str, Connection], config: Config, home: str,
          random_weights: bool) -> None:
    """The helper's main: one :class:`.clip.embedder.Embedder`, each tower's pipe answered on
    its own thread until the GUI closes it. Errors go back to the caller as they are."""
    from .embedder import Embedder

    embedder = Embedder(config, Path(home), random_weights)
    threads = [threading.Thread(target=_answer, args=(embedder, conn), daemon=True)
               for conn in connections.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _answer(embedder, conn: Connection) -> None:
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            value = getattr(embedder, name)
            reply = ("ok", value(*args) if callable(value) else value)
        except Exception as exc:  # noqa: BLE001 - the caller's to handle, as in-process
            reply = ("error", exc)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


class RemoteEmbedder:
    """An :class:`.clip.embedder.Embedder` run in a helper process, started on first use; the
    same interface for what the GUI uses. Thread-safe: one call per tower at a time, the
    two towers at once.

    Raises (from any call):
        ModelMissingError, ModelFileError, ConfigError: as :class:`.clip.embedder.Embedder`.
        ModelCrashedError: the helper ended during the call (the next call restarts it).
    """

    def __init__(self, config: Config, home: Path, random_weights: bool = False):
        self.config, self.home, self.random_weights = config, home, random_weights
        self.model_id = configured_model_id(config, home, random_weights)
        self._process: BaseProcess | None = None
        self._conns: dict[str, Connection] = {}
        self._life = threading.Lock()
        self._towers = {tower: threading.Lock() for tower in TOWERS}
        self._cache: dict[str, object] = {}

    @property
    def helper_pid(self) -> int | None:
        """The helper's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def _connection(self, tower: str) -> tuple[BaseProcess, Connection]:
        with self._life:
            if self._process is not None and not self._process.is_alive():
                # it died while idle (killed, out of memory): replace it unnoticed
                helpers.stop(self._process, self._conns)
                self._process = None
            if self._process is None:
                self._process, self._conns = helpers.spawn(
                    serve, "mmrag-clip", TOWERS, self.config, str(self.home),
                    self.random_weights)
            return self._process, self._conns[tower]

    def _call(self, name: str, *args, tower: str | None = None):
        tower = tower or _CALLS[name]
        with self._towers[tower]:
            process, conn = self._connection(tower)
            try:
                conn.send((name, args))
                status, value = conn.recv()
            except (EOFError, OSError):
                self._stop(process)
                raise ModelCrashedError(
                    f"the CLIP model's helper process stopped unexpectedly "
                    f"({helpers.ended_how(process)}); it restarts on the next search or batch") from None
        if status == "error":
            raise value
        return value

    def _stop(self, process: BaseProcess, patience: float = helpers.STOP_SECONDS) -> None:
        with self._life:
            if self._process is not process:  # another thread restarted it already
                return
            self._process, conns = None, self._conns
        helpers.stop(process, conns, patience)

    def _fixed(self, name: str):
        """A property that does not change while the model is the same."""
        if name not in self._cache:
            self._cache[name] = self._call(name)
        return self._cache[name]

    def close(self) -> None:
        """End the helper at once (it only reads the model: nothing to save; it would also
        end by itself when this process does)."""
        process = self._process
        if process is not None:
            self._stop(process, patience=0)

    def load(self, *towers: str) -> None:
        """Load *towers* (``image``, ``text``; default both) in the helper, at once."""
        errors = []

        def load(tower: str) -> None:
            try:
                self._call("load", tower, tower=tower)
            except Exception as exc:  # noqa: BLE001 - raised below, in this thread
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(t,)) for t in towers or TOWERS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    @property
    def image_size(self) -> int:
        """Pixels: the image tower's input side."""
        return self._fixed("image_size")

    @property
    def dim(self) -> int:
        """The embedding width d."""
        return self._fixed("dim")

    @property
    def device(self) -> str:
        """Where the image tower runs."""
        return self._fixed("device")

    def describe(self) -> str:
        """Where and how each tower runs (see :meth:`.clip.embedder.Embedder.describe`)."""
        return self._call("describe")

    def to_pixels(self, image: Image.Image) -> np.ndarray:
        """The image tower's input for one image, (3, S, S) uint8, prepared here."""
        spec = self._fixed("pixel_spec")
        return model_input(image, *spec) if spec else self._call("to_pixels", image)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) uint8 from :meth:`to_pixels` → (n, d) float32, L2-normalised."""
        return self._call("encode_images", batch)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts → (n, d) float32, L2-normalised."""
        return self._call("encode_texts", texts)
