"""The local vision-language model: a GGUF language model plus its mmproj vision projector,
run by llama.cpp in a helper process (:mod:`.vlm.process`). Loaded on first use, unloaded
after an idle timeout; a crash of the native library costs one answer, never the app.

Nothing here touches the network.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image

from ..core import downloads, helpers
from ..core.config import Config, save_config
from ..core.downloads import RemoteFile, probe, resolve_url
from ..media.photos import decode
from . import process as vlm_process
from .process import (
    DEFAULT_IMAGE_SIDE,
    LLAMA_MISSING,
    ContextFullError,
    ModelInfo,
    Settings,
    VLMError,
)

__all__ = ["VisionLanguageModel", "VLMError", "ContextFullError", "VLMCrashedError",
           "VLMSetupError",
           "ModelInfo", "inspect_files", "image_data_uri", "photo_data_uri", "download_recommended",
           "recommended_files", "use_files", "llama_installed", "LLAMA_MISSING"]

BYTES_PER_CONTEXT_TOKEN = 200_000  # a generous KV-cache estimate for small models


class VLMSetupError(VLMError):
    """Ask is not set up: no model chosen, or llama-cpp-python is not installed. The
    message says what to do; the GUI offers its set-up page."""


class VLMCrashedError(VLMError):
    """llama.cpp's helper process ended in the middle of work (a native crash, or killed).
    The app goes on; the next question starts a new helper."""


class _Helper:
    """One helper process running *entry* (:func:`.vlm.process.serve` or ``inspect``) with
    a pipe to it. Ends when its pipe is closed; :meth:`close` makes sure."""

    def __init__(self, entry: Callable, *args):
        self.process, pipes = helpers.spawn(entry, "mmrag-vlm", ("vlm",), *args)
        self.conn = pipes["vlm"]

    def send(self, *message) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            raise self._crashed() from None

    def receive(self) -> tuple:
        """The helper's next message.

        Raises:
            ContextFullError, VLMError: the helper's own error.
            VLMCrashedError: the helper ended.
        """
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            raise self._crashed() from None
        if message[0] == "error":
            raise (ContextFullError if message[1] == "context" else VLMError)(message[2])
        return message

    def _crashed(self) -> VLMCrashedError:
        self.close()
        return VLMCrashedError(
            f"the vision-language model stopped unexpectedly (llama.cpp's helper process "
            f"{helpers.ended_how(self.process)}). The app is unaffected: ask again to restart "
            "the model. If it keeps happening, check that the model files are intact and "
            "reachable, or lower vlm_gpu_layers or vlm_context.")

    def close(self) -> None:
        helpers.stop(self.process, {"vlm": self.conn})


def inspect_files(model: Path, mmproj: Path | None) -> ModelInfo:
    """Check a model / mmproj pair from their GGUF headers without loading the weights
    (in a helper process, so that a file that crashes llama.cpp cannot crash the caller).

    Raises:
        VLMError: a file is missing, not GGUF, damaged, the mmproj is not a vision
            projector, or its output width does not match the model's embedding width.
        VLMCrashedError: llama.cpp crashed reading the files.
    """
    helper = _Helper(vlm_process.inspect, str(model), str(mmproj or ""))
    try:
        return helper.receive()[1]
    finally:
        helper.close()


def image_data_uri(image: Image.Image, side: int) -> str:
    """The photo downscaled to fit *side* × *side* pixels, as a JPEG ``data:`` URI (what
    llama-cpp-python's chat handlers take; nothing is fetched)."""
    small = image.convert("RGB")
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def photo_data_uri(vlm: VisionLanguageModel, photo: Path, at: float = 0.0) -> str:
    """*photo* (a video's frame *at* seconds) decoded and downscaled to *vlm*'s image input
    size, as a ``data:`` URI.

    Raises:
        BadImage, OSError: the photo cannot be read.
    """
    side = vlm.image_side
    image, _ = decode(photo, min_side=side, at=at)
    return image_data_uri(image, side)


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class VisionLanguageModel:
    """The model, loaded lazily in a helper process, for :meth:`stream`. Thread-safe: one
    answer at a time.

    Args:
        config: ``vlm_*`` settings (files, threads, context, GPU layers, idle unload).
        hold_cpu: called before each answer to keep other work (the indexer) off the CPU;
            returns the function that lets it go on. Both want every core.

    Raises (from :meth:`load` and :meth:`stream`):
        VLMError: no model set, bad files, llama-cpp-python missing, not enough memory.
        VLMCrashedError: the helper process crashed; the next call starts a new one.
    """

    def __init__(self, config: Config,
                 hold_cpu: Callable[[], Callable[[], None]] | None = None):
        self.config = config
        self.hold_cpu = hold_cpu
        self.info: ModelInfo | None = None
        self.context_used = 0  # tokens in the context window after the last answer
        self._helper: _Helper | None = None
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    @property
    def sees_images(self) -> bool:
        return bool(self.config.vlm_mmproj)

    @property
    def image_side(self) -> int:
        """Pixels: the projector's input size, to which photos are downscaled (loads the
        model if need be)."""
        self.load()
        return self.info.image_size or DEFAULT_IMAGE_SIDE

    @property
    def loaded(self) -> bool:
        return self._helper is not None

    @property
    def helper_pid(self) -> int | None:
        """The helper process's id while the model is loaded."""
        return self._helper.process.pid if self._helper else None

    def load(self) -> None:
        """Load the model now (it also loads on first :meth:`stream`)."""
        with self._lock:
            if self._helper is not None and not self._helper.process.is_alive():
                self._helper.close()  # ended while idle (the OOM killer, a user's kill)
                self._helper = None
            if self._helper is not None:
                return
            if not llama_installed():
                raise VLMSetupError(LLAMA_MISSING)
            if not self.config.vlm_model:
                raise VLMSetupError(
                    "no vision-language model is set: choose or download one in the app "
                    "(Ask → Set up…), or mmrag vlm set MODEL.gguf MMPROJ.gguf (or mmrag vlm "
                    "download)")
            model = Path(self.config.vlm_model)
            mmproj = Path(self.config.vlm_mmproj) if self.config.vlm_mmproj else None
            vlm_process.check_gguf(model, "the model file")
            needed = model.stat().st_size + (mmproj.stat().st_size if mmproj and mmproj.is_file()
                                             else 0) \
                + self.config.vlm_context * BYTES_PER_CONTEXT_TOKEN
            available = _available_memory()
            if available is not None and needed > available:
                raise VLMError(f"not enough memory for {model.name}: it needs about "
                               f"{needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is free. "
                               "Close other programs or lower vlm_context.")
            helper = _Helper(vlm_process.serve, Settings(
                str(model), str(mmproj or ""), self.config.vlm_context,
                self.config.vlm_threads, self.config.vlm_gpu_layers))
            try:
                self.info = helper.receive()[1]
            except VLMError:
                helper.close()
                raise
            self._helper = helper

    def unload(self) -> None:
        """Free the model's memory: the helper process ends (it loads again on the next
        question)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._helper is not None:
                self._helper.close()
                self._helper = None

    def stream(self, messages: list[dict], cancel: threading.Event | None = None,
               max_tokens: int | None = None, schema: dict | None = None) -> Iterator[str]:
        """Answer a chat (OpenAI-style *messages*; image parts as ``data:`` URIs), yielding
        text pieces as they are generated. Stops early when *cancel* is set. With *schema*
        (a JSON schema) llama.cpp's grammar keeps the answer to JSON that follows it, up
        to *max_tokens* (where it may be cut: see :mod:`.vlm.structured`).

        Raises:
            VLMError, ContextFullError, VLMCrashedError: see the class.
        """
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self.load()
            helper = self._helper
            release = self.hold_cpu() if self.hold_cpu else None
            ended = cancelled = False
            try:
                helper.send("chat", messages, max_tokens or self.config.vlm_max_tokens, schema)
                while True:
                    if cancel is not None and cancel.is_set() and not cancelled:
                        helper.send("cancel")
                        cancelled = True
                    if not helper.conn.poll(0.05):
                        continue
                    message = helper.receive()
                    if message[0] == "end":
                        ended = True
                        self.context_used = message[1]
                        return
                    if not cancelled:
                        yield message[1]
            except VLMCrashedError:
                self._helper = None
                raise
            except VLMError:
                ended = True  # the helper's own error ends its chat
                raise
            finally:
                if not ended and self._helper is helper:
                    self._finish(helper, cancelled)
                if release:
                    release()
                self._arm_idle_timer()

    def _finish(self, helper: _Helper, cancelled: bool) -> None:
        """The caller stopped reading mid-answer: stop the helper's answer and read it to
        its end, so that the next chat starts in step."""
        try:
            if not cancelled:
                helper.send("cancel")
            while helper.receive()[0] != "end":
                pass
        except VLMError:
            helper.close()
            self._helper = None

    def answer(self, messages: list[dict], on_text: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None, max_tokens: int | None = None,
               schema: dict | None = None) -> str:
        """:meth:`stream`, passing each piece to *on_text*; returns the whole text."""
        pieces = []
        for piece in self.stream(messages, cancel, max_tokens, schema):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        return "".join(pieces)

    def _arm_idle_timer(self) -> None:
        if self.config.vlm_idle_unload > 0 and self._helper is not None:
            self._timer = threading.Timer(self.config.vlm_idle_unload, self._idle)
            self._timer.daemon = True
            self._timer.start()

    def _idle(self) -> None:
        if self._lock.acquire(blocking=False):  # busy answering: not idle after all
            try:
                self.unload()
            finally:
                self._lock.release()


RECOMMENDED_REPO = "ggml-org/SmolVLM-256M-Instruct-GGUF"
RECOMMENDED_FILES = ("SmolVLM-256M-Instruct-Q8_0.gguf", "mmproj-SmolVLM-256M-Instruct-Q8_0.gguf")


def recommended_files() -> list[RemoteFile]:
    """The recommended pair's files with their sizes, asked of the Hub (or
    ``$HF_ENDPOINT``): network, to show before asking the user.

    Raises:
        DownloadError: the Hub cannot be reached or lacks a file.
    """
    return [probe(resolve_url(RECOMMENDED_REPO, name), f"{RECOMMENDED_REPO}/{name}")
            for name in RECOMMENDED_FILES]


def download_recommended(home: Path, progress: Callable[[int], None] | None = None,
                         cancel: threading.Event | None = None) -> tuple[Path, Path]:
    """Download the recommended small pair (SmolVLM-256M-Instruct, Q8_0, with its mmproj)
    into ``home/vlm``, the user having agreed; ``progress(bytes so far, both files)``. The
    files gather in ``home/vlm/.download`` (an interrupted download resumes there) and move
    into place together once both are complete and checked.

    Returns:
        (model, mmproj).

    Raises:
        DownloadCancelled: *cancel* was set.
        DownloadError: the download failed.
        (Neither file is installed after either.)
    """
    staging = home / "vlm" / ".download"
    staging.mkdir(parents=True, exist_ok=True)
    before = 0
    for remote in recommended_files():
        report = (lambda done, before=before: progress(before + done)) if progress else None
        downloads.fetch(remote, staging / Path(remote.name).name, report, cancel)
        before += remote.size
    pair = []
    for name in RECOMMENDED_FILES:
        (staging / name).replace(home / "vlm" / name)
        pair.append(home / "vlm" / name)
    staging.rmdir()
    return pair[0], pair[1]


def llama_installed() -> bool:
    """Whether llama-cpp-python is installed (Ask needs it; see :data:`LLAMA_MISSING`)."""
    return importlib.util.find_spec("llama_cpp") is not None


def use_files(home: Path, config: Config, model: Path, mmproj: Path | None) -> ModelInfo:
    """Check a model / mmproj pair (:func:`inspect_files`) and make it the configured
    vision-language model (``config.toml``; *config* is updated). Returns what the check
    found.

    Raises:
        VLMError: see :func:`inspect_files`.
    """
    info = inspect_files(model, mmproj)
    config.vlm_model, config.vlm_mmproj = str(model), str(mmproj or "")
    save_config(home, config)
    return info
