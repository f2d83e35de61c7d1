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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .config import Config

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


class VLMError(RuntimeError):
    """The vision-language model cannot be used: what is wrong and what to do."""


@dataclass
class ModelInfo:
    """What the GGUF headers say: ``family`` (general.architecture), the model's embedding
    width, whether it has a chat template, and the projector's output width (None without
    an mmproj)."""

    family: str
    embedding_length: int
    chat_template: str | None
    projector_width: int | None


def _read_gguf(path: Path, what: str):
    if not path.is_file():
        raise VLMError(f"{what} not found: {path}")
    with open(path, "rb") as file:
        if file.read(4) != GGUF_MAGIC:
            raise VLMError(f"{what} is not a GGUF file: {path}")
    from gguf import GGUFReader

    try:
        return GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - a damaged header has many ways to fail
        raise VLMError(f"{what} is damaged: {path}: {exc}") from exc


def _model_metadata(path: Path) -> dict[str, str]:
    """The language model's GGUF metadata, read by llama.cpp with ``vocab_only`` (under a
    second for a 262k-token vocabulary, which the gguf package's reader parses in ~15 s)."""
    if not path.is_file():
        raise VLMError(f"the model file not found: {path}")
    with open(path, "rb") as file:
        if file.read(4) != GGUF_MAGIC:
            raise VLMError(f"the model file is not a GGUF file: {path}")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise VLMError("llama-cpp-python is not installed: pip install "
                       "'mmrag-desktop[vlm]'") from exc
    try:
        vocab = Llama(str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        if _field(_read_gguf(path, "the model file"), "general.architecture") == "clip":
            raise VLMError(f"{path} is a vision projector (mmproj), not a language model; "
                           "set it as the mmproj and choose the language model file too") from exc
        raise VLMError(f"the model file is damaged or of an unknown kind: {path}: {exc}") from exc
    try:
        return dict(vocab.metadata)
    finally:
        vocab.close()


def _field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def inspect_files(model: Path, mmproj: Path | None) -> ModelInfo:
    """Check a model / mmproj pair from their GGUF headers.

    Raises:
        VLMError: a file is missing, not GGUF, damaged, the mmproj is not a vision
            projector, or its output width does not match the model's embedding width.
    """
    metadata = _model_metadata(model)
    family = metadata.get("general.architecture") or "unknown"
    width = int(metadata.get(f"{family}.embedding_length") or 0)
    template = metadata.get("tokenizer.chat_template")
    projector = None
    if mmproj is not None:
        proj = _read_gguf(mmproj, "the mmproj file")
        if _field(proj, "general.architecture") != "clip" or not _field(proj, "clip.has_vision_encoder"):
            raise VLMError(f"{mmproj} is not a vision projector (mmproj) file")
        projector = _field(proj, "clip.vision.projection_dim")
        if projector and width and projector != width:
            raise VLMError(
                f"the mmproj does not match the model: {mmproj.name} makes {projector}-wide "
                f"image embeddings, {model.name} ({family}) expects {width}. Use the mmproj "
                "published with this model.")
    return ModelInfo(family, int(width), template or None, projector)


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

    Raises (from :meth:`load` and :meth:`stream`):
        VLMError: no model set, bad files, llama-cpp-python missing, not enough memory.
    """

    def __init__(self, config: Config):
        self.config = config
        self.info: ModelInfo | None = None
        self.load_seconds = 0.0
        self._llama = None
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    @property
    def sees_images(self) -> bool:
        return bool(self.config.vlm_mmproj)

    @property
    def image_side(self) -> int:
        """Pixels: the projector's input size (photos are downscaled to it), 448 if unknown."""
        if self.config.vlm_mmproj:
            reader = _read_gguf(Path(self.config.vlm_mmproj), "the mmproj file")
            return int(_field(reader, "clip.vision.image_size") or 448)
        return 448

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
            info = inspect_files(model, mmproj)
            template = chat_template(info)
            needed = model.stat().st_size + (mmproj.stat().st_size if mmproj else 0) \
                + self.config.vlm_context * BYTES_PER_CONTEXT_TOKEN
            available = _available_memory()
            if available is not None and needed > available:
                raise VLMError(f"not enough memory for {model.name}: it needs about "
                               f"{needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is free. "
                               "Close other programs or lower vlm_context.")
            try:
                from llama_cpp import Llama
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter, MTMDChatHandler
            except ImportError as exc:
                raise VLMError("llama-cpp-python is not installed: pip install "
                               "'mmrag-desktop[vlm]'") from exc
            started = time.perf_counter()
            if mmproj is not None:
                class Handler(MTMDChatHandler):
                    def _get_chat_template(self, llama_model) -> str:
                        return template

                handler = Handler(clip_model_path=str(mmproj), verbose=False,
                                  use_gpu=self.config.vlm_gpu_layers != 0)
            else:
                handler = None
            try:
                llama = Llama(str(model), chat_handler=handler, n_ctx=self.config.vlm_context,
                              n_threads=self.config.vlm_threads or os.cpu_count(),
                              n_gpu_layers=self.config.vlm_gpu_layers, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise VLMError(f"llama.cpp could not load {model.name}: {exc}") from exc
            if handler is None:
                # special=True: the tokens' own text ("<eos>"); without it they render as ""
                # and an empty stop string would end every answer before it starts.
                llama.chat_handler = Jinja2ChatFormatter(
                    template, eos_token=llama.detokenize([llama.token_eos()], special=True).decode(),
                    bos_token=llama.detokenize([llama.token_bos()], special=True).decode(),
                ).to_chat_handler()
            self.info, self._llama = info, llama
            self.load_seconds = time.perf_counter() - started

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
                raise VLMError(str(exc)) from exc
            finally:
                self._arm_idle_timer()

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
    from huggingface_hub import HfApi, hf_hub_download

    try:
        infos = {i.path: i for i in HfApi().get_paths_info(RECOMMENDED_REPO,
                                                            list(RECOMMENDED_FILES))}
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise OSError(f"cannot reach the Hugging Face hub for {RECOMMENDED_REPO}: {exc}") from exc
    sizes = [(name, getattr(infos.get(name), "size", None)) for name in RECOMMENDED_FILES]
    if not confirm(RECOMMENDED_REPO, sizes):
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
