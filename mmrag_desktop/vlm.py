"""The local vision-language model: a GGUF language model plus its mmproj vision projector,
run by llama-cpp-python (llama.cpp). Loaded on first use, unloaded after an idle timeout.

Nothing here touches the network. Files are checked before loading (GGUF magic, projector
width against the model's embedding width) so that a wrong pair gets a clear message instead
of a crash inside llama.cpp.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .config import Config
from .models import hub_file_sizes

# Chat templates by model family (GGUF ``general.architecture``), for models whose GGUF
# carries no ``tokenizer.chat_template`` (base models such as gemma-3-270m). Written from
# each family's published prompt format; images are placed where the content parts are.
_GEMMA = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% if not loop.last %}\n{% endif %}"
    "{% else %}{{ part['image_url']['url'] if part['image_url'] is mapping "
    "else part['image_url'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% if not loop.last %}\n{% endif %}"
    "{% else %}{{ part['image_url']['url'] if part['image_url'] is mapping "
    "else part['image_url'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SMOLVLM = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% if not loop.last %}\n{% endif %}"
    "{% else %}{{ part['image_url']['url'] if part['image_url'] is mapping "
    "else part['image_url'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
FAMILY_TEMPLATES = {"gemma3": _GEMMA, "gemma2": _GEMMA, "gemma": _GEMMA, "qwen2": _CHATML,
                    "qwen2vl": _CHATML, "qwen3": _CHATML, "smolvlm": _SMOLVLM,
                    "idefics3": _SMOLVLM}

GGUF_MAGIC = b"GGUF"
BYTES_PER_CONTEXT_TOKEN = 200_000  # a generous KV-cache estimate for small models
DEFAULT_IMAGE_SIDE = 448  # pixels, for a projector that does not say


class VLMError(RuntimeError):
    """The vision-language model cannot be used: what is wrong and what to do."""


class ContextFullError(VLMError):
    """The prompt does not fit the model's context window (``vlm_context`` tokens)."""


@dataclass
class ModelInfo:
    """What the GGUF headers say: ``family`` (general.architecture), the model's embedding
    width and chat template, and the projector's output width and input size in pixels
    (None without an mmproj)."""

    family: str
    embedding_length: int
    chat_template: str | None
    projector_width: int | None
    image_size: int | None


def _check_gguf(path: Path, what: str) -> None:
    if not path.is_file():
        raise VLMError(f"{what} not found: {path}")
    with open(path, "rb") as file:
        if file.read(4) != GGUF_MAGIC:
            raise VLMError(f"{what} is not a GGUF file: {path}")


def _read_gguf(path: Path, what: str):
    """The gguf package's reader: fine for an mmproj, slow (~15 s) over a large vocabulary."""
    _check_gguf(path, what)
    from gguf import GGUFReader

    try:
        return GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - a damaged header has many ways to fail
        raise VLMError(f"{what} is damaged: {path}: {exc}") from exc


def _field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _open_llama(path: Path, **settings):
    """``llama_cpp.Llama(path, **settings)``, with clear errors.

    Raises:
        VLMError: llama-cpp-python missing; the file missing, not GGUF, an mmproj, damaged.
    """
    _check_gguf(path, "the model file")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise VLMError("llama-cpp-python is not installed: pip install "
                       "'mmrag-desktop[vlm]'") from exc
    try:
        return Llama(str(path), verbose=False, **settings)
    except (ValueError, RuntimeError) as exc:
        if _field(_read_gguf(path, "the model file"), "general.architecture") == "clip":
            raise VLMError(f"{path} is a vision projector (mmproj), not a language model; "
                           "set it as the mmproj and choose the language model file too") from exc
        raise VLMError(f"llama.cpp cannot load {path}: {exc}") from exc


def _model_info(model: Path, metadata: dict[str, str], mmproj: Path | None) -> ModelInfo:
    family = metadata.get("general.architecture") or "unknown"
    width = int(metadata.get(f"{family}.embedding_length") or 0)
    projector = image_size = None
    if mmproj is not None:
        proj = _read_gguf(mmproj, "the mmproj file")
        if _field(proj, "general.architecture") != "clip" or not _field(proj, "clip.has_vision_encoder"):
            raise VLMError(f"{mmproj} is not a vision projector (mmproj) file")
        projector = _field(proj, "clip.vision.projection_dim")
        image_size = int(_field(proj, "clip.vision.image_size") or DEFAULT_IMAGE_SIDE)
        if projector and width and projector != width:
            raise VLMError(
                f"the mmproj does not match the model: {mmproj.name} makes {projector}-wide "
                f"image embeddings, {model.name} ({family}) expects {width}. Use the mmproj "
                "published with this model.")
    return ModelInfo(family, width, metadata.get("tokenizer.chat_template") or None,
                     projector, image_size)


def inspect_files(model: Path, mmproj: Path | None) -> ModelInfo:
    """Check a model / mmproj pair from their GGUF headers without loading the weights
    (llama.cpp reads the model's metadata with ``vocab_only``, under a second).

    Raises:
        VLMError: a file is missing, not GGUF, damaged, the mmproj is not a vision
            projector, or its output width does not match the model's embedding width.
    """
    vocab = _open_llama(model, vocab_only=True)
    try:
        return _model_info(model, dict(vocab.metadata), mmproj)
    finally:
        vocab.close()


def chat_template(info: ModelInfo) -> str:
    """The model's own chat template, or its family's.

    Raises:
        VLMError: neither exists.
    """
    if info.chat_template:
        return info.chat_template
    try:
        return FAMILY_TEMPLATES[info.family]
    except KeyError:
        raise VLMError(f"the model has no chat template and its family '{info.family}' has "
                       f"no known one ({', '.join(sorted(FAMILY_TEMPLATES))})") from None


def image_data_uri(image: Image.Image, side: int) -> str:
    """The photo downscaled to fit *side* × *side* pixels, as a JPEG ``data:`` URI (what
    llama-cpp-python's chat handlers take; nothing is fetched)."""
    small = image.convert("RGB")
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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
    """A lazily loaded llama.cpp model for :meth:`stream`. Thread-safe: one answer at a time.

    Args:
        config: ``vlm_*`` settings (files, threads, context, GPU layers, idle unload).
        hold_cpu: called before each answer to keep other work (the indexer) off the CPU;
            returns the function that lets it go on. Both want every core.

    Raises (from :meth:`load` and :meth:`stream`):
        VLMError: no model set, bad files, llama-cpp-python missing, not enough memory.
    """

    def __init__(self, config: Config,
                 hold_cpu: Callable[[], Callable[[], None]] | None = None):
        self.config = config
        self.hold_cpu = hold_cpu
        self.info: ModelInfo | None = None
        self._llama = None
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
        return self._llama is not None

    def load(self) -> None:
        """Load the model now (it also loads on first :meth:`stream`)."""
        with self._lock:
            if self._llama is not None:
                return
            if not self.config.vlm_model:
                raise VLMError("no vision-language model is set: mmrag vlm set MODEL.gguf "
                               "MMPROJ.gguf (or mmrag vlm download)")
            model = Path(self.config.vlm_model)
            mmproj = Path(self.config.vlm_mmproj) if self.config.vlm_mmproj else None
            _check_gguf(model, "the model file")
            needed = model.stat().st_size + (mmproj.stat().st_size if mmproj and mmproj.is_file()
                                             else 0) \
                + self.config.vlm_context * BYTES_PER_CONTEXT_TOKEN
            available = _available_memory()
            if available is not None and needed > available:
                raise VLMError(f"not enough memory for {model.name}: it needs about "
                               f"{needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is free. "
                               "Close other programs or lower vlm_context.")
            llama = _open_llama(model, n_ctx=self.config.vlm_context,
                                n_threads=self.config.vlm_threads or os.cpu_count(),
                                n_gpu_layers=self.config.vlm_gpu_layers)
            try:
                info = _model_info(model, llama.metadata, mmproj)
                llama.chat_handler = self._chat_handler(llama, info, mmproj)
            except VLMError:
                llama.close()
                raise
            self.info, self._llama = info, llama

    def _chat_handler(self, llama, info: ModelInfo, mmproj: Path | None):
        """llama-cpp-python's generic MTMD handler for images, a Jinja one for text only;
        both on the model's chat template, or its family's."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter, MTMDChatHandler

        template = chat_template(info)
        if mmproj is not None:
            class Handler(MTMDChatHandler):
                def _get_chat_template(self, llama_model) -> str:
                    return template

            return Handler(clip_model_path=str(mmproj), verbose=False,
                           use_gpu=self.config.vlm_gpu_layers != 0)
        # special=True: the tokens' own text ("<eos>"); without it they render as "" and an
        # empty stop string would end every answer before it starts.
        return Jinja2ChatFormatter(
            template, eos_token=llama.detokenize([llama.token_eos()], special=True).decode(),
            bos_token=llama.detokenize([llama.token_bos()], special=True).decode(),
        ).to_chat_handler()

    def unload(self) -> None:
        """Free the model's memory (it loads again on the next question)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def stream(self, messages: list[dict], cancel: threading.Event | None = None,
               max_tokens: int | None = None) -> Iterator[str]:
        """Answer a chat (OpenAI-style *messages*; image parts as ``data:`` URIs), yielding
        text pieces as they are generated. Stops early when *cancel* is set.

        Raises:
            VLMError: see the class.
        """
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self.load()
            release = self.hold_cpu() if self.hold_cpu else None
            try:
                chunks = self._llama.create_chat_completion(
                    messages=messages, stream=True, temperature=0.2,
                    max_tokens=max_tokens or self.config.vlm_max_tokens)
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except ValueError as exc:  # llama-cpp-python's errors: prompt too long, bad image
                if "exceed context window" in str(exc):
                    raise ContextFullError(
                        f"the question and its photos do not fit the model's context "
                        f"({self.config.vlm_context} tokens): ask about fewer photos "
                        f"(ask_photos) or raise vlm_context ({exc})") from exc
                raise VLMError(str(exc)) from exc
            finally:
                if release:
                    release()
                self._arm_idle_timer()

    def answer(self, messages: list[dict], on_text: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> str:
        """:meth:`stream`, passing each piece to *on_text*; returns the whole text."""
        pieces = []
        for piece in self.stream(messages, cancel):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        return "".join(pieces)

    def _arm_idle_timer(self) -> None:
        if self.config.vlm_idle_unload > 0:
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


def download_recommended(home: Path, confirm) -> tuple[Path, Path] | None:
    """Download the recommended small pair (SmolVLM-256M-Instruct, Q8_0, with its mmproj)
    into ``home/vlm`` after ``confirm(repo, [(file, bytes or None), …])`` returns True.

    Returns:
        (model, mmproj), or None when the user declined.

    Raises:
        OSError: the hub cannot be reached or the download failed (nothing is kept then).
    """
    from huggingface_hub import hf_hub_download

    known = hub_file_sizes(RECOMMENDED_REPO, RECOMMENDED_FILES)
    if not confirm(RECOMMENDED_REPO, [(name, known.get(name)) for name in RECOMMENDED_FILES]):
        return None
    target = home / "vlm"
    fetched = []
    try:
        for name in RECOMMENDED_FILES:
            fetched.append(Path(hf_hub_download(RECOMMENDED_REPO, name, local_dir=target)))
    except Exception as exc:  # noqa: BLE001
        for path in fetched:
            path.unlink(missing_ok=True)
        raise OSError(f"download from {RECOMMENDED_REPO} failed: {exc}") from exc
    return fetched[0], fetched[1]
