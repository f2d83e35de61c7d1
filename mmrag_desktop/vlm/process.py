"""The vision-language model's helper process: the only module that runs llama.cpp
(llama-cpp-python). A native crash there (a bad build, a model file that vanished from
under its memory map, a driver fault) ends the helper, never the app; :mod:`.vlm.model` starts
the helper, talks to it through a pipe and reports such a crash.

Files are checked before loading (GGUF magic, projector width against the model's
embedding width) so that a wrong pair gets a clear message instead of a crash.

Protocol on the pipe (tuples; the parent speaks first only after ``ready``):
    parent → helper: ``("chat", messages, max_tokens, schema)`` (*schema*: a JSON schema
        the answer must follow, enforced by llama.cpp's grammar, or None), ``("cancel",)``;
        closing the pipe ends the helper.
    helper → parent: ``("ready", ModelInfo)`` once loaded; per chat any number of
        ``("text", piece)`` then ``("end", context_tokens)``; ``("error", kind, message)``
        in place of ``ready`` or ``end`` (kind ``"context"`` or ``"vlm"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from ..core.errors import MmragError

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
DEFAULT_IMAGE_SIDE = 448  # pixels, for a projector that does not say


LLAMA_MISSING = (
    "Ask needs llama-cpp-python, which this install does not have. In the source install, "
    "run: CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" "
    ".venv/bin/pip install -e '.[vlm]' in the source folder (it compiles llama.cpp: 4–9 "
    "minutes), then restart the app. The desktop bundles include it.")


class VLMError(MmragError, RuntimeError):
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


@dataclass
class Settings:
    """How the helper loads the model: files, context (tokens), CPU threads, layers
    offloaded to the GPU (-1: all)."""

    model: str
    mmproj: str
    context: int
    threads: int
    gpu_layers: int


def check_gguf(path: Path, what: str) -> None:
    """Raises VLMError when *path* is missing or does not start with the GGUF magic."""
    if not path.is_file():
        raise VLMError(f"{what} not found: {path}")
    with open(path, "rb") as file:
        if file.read(4) != GGUF_MAGIC:
            raise VLMError(f"{what} is not a GGUF file: {path}")


def _read_gguf(path: Path, what: str):
    """The gguf package's reader: fine for an mmproj, slow (~15 s) over a large vocabulary."""
    check_gguf(path, what)
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
    check_gguf(path, "the model file")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise VLMError(LLAMA_MISSING) from exc
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


def _chat_handler(llama, info: ModelInfo, mmproj: Path | None, use_gpu: bool):
    """llama-cpp-python's generic MTMD handler for images, a Jinja one for text only;
    both on the model's chat template, or its family's."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter, MTMDChatHandler

    template = chat_template(info)
    if mmproj is not None:
        class Handler(MTMDChatHandler):
            def _get_chat_template(self, llama_model) -> str:
                return template

        return Handler(clip_model_path=str(mmproj), verbose=False, use_gpu=use_gpu)
    # special=True: the tokens' own text ("<eos>"); without it they render as "" and an
    # empty stop string would end every answer before it starts.
    return Jinja2ChatFormatter(
        template, eos_token=llama.detokenize([llama.token_eos()], special=True).decode(),
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode(),
    ).to_chat_handler()


def inspect(pipes: dict[str, Connection], model: str, mmproj: str) -> None:
    """Helper entry: check a model / mmproj pair from their GGUF headers without loading
    the weights (llama.cpp reads the model's metadata with ``vocab_only``, under a second);
    sends ``("ready", ModelInfo)`` or an error on ``pipes["vlm"]``, then ends."""
    conn = pipes["vlm"]
    try:
        vocab = _open_llama(Path(model), vocab_only=True)
        try:
            conn.send(("ready", _model_info(Path(model), dict(vocab.metadata),
                                            Path(mmproj) if mmproj else None)))
        finally:
            vocab.close()
    except VLMError as exc:
        conn.send(("error", "vlm", str(exc)))


def serve(pipes: dict[str, Connection], settings: Settings) -> None:
    """Helper entry: load the model, send ``ready``, then answer chats on ``pipes["vlm"]``
    until it closes."""
    conn = pipes["vlm"]
    mmproj = Path(settings.mmproj) if settings.mmproj else None
    try:
        llama = _open_llama(Path(settings.model), n_ctx=settings.context,
                            n_threads=settings.threads or os.cpu_count(),
                            n_gpu_layers=settings.gpu_layers)
        info = _model_info(Path(settings.model), llama.metadata, mmproj)
        llama.chat_handler = _chat_handler(llama, info, mmproj, settings.gpu_layers != 0)
    except VLMError as exc:
        conn.send(("error", "vlm", str(exc)))
        return
    conn.send(("ready", info))
    try:
        while True:
            request = conn.recv()
            if request[0] == "chat":
                _chat(conn, llama, settings, *request[1:])
    except (EOFError, BrokenPipeError):  # the app closed the pipe (unload, exit, crash)
        pass
    finally:
        llama.close()


def _chat(conn: Connection, llama, settings: Settings, messages: list[dict],
          max_tokens: int, schema: dict | None) -> None:
    # llama-cpp-python turns the schema into a GBNF grammar (its json_schema_to_gbnf, a port
    # of llama.cpp's json-schema-to-grammar) that masks every token breaking it.
    response_format = {"type": "json_object", "schema": schema} if schema else None
    try:
        chunks = llama.create_chat_completion(messages=messages, stream=True, temperature=0.2,
                                              max_tokens=max_tokens,
                                              response_format=response_format)
        for chunk in chunks:
            if conn.poll() and conn.recv()[0] == "cancel":
                break
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                conn.send(("text", piece))
    except ValueError as exc:  # llama-cpp-python's errors: prompt too long, bad image
        if "exceed context window" in str(exc):
            conn.send(("error", "context",
                       f"the question and its photos do not fit the model's context "
                       f"({settings.context} tokens): ask about fewer photos (ask_photos) "
                       f"or raise vlm_context ({exc})"))
        else:
            conn.send(("error", "vlm", str(exc)))
        return
    conn.send(("end", llama.n_tokens))
