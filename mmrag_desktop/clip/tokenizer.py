"""Text tokenizers of the ONNX backend as Hugging Face ``tokenizers`` pipelines (no torch,
no open_clip): CLIP's byte-level BPE built from its vocabulary file, and a tokenizer file
(Immich's exports: Gemma's for SigLIP 2, XLM-RoBERTa's sentencepiece) set to its model's
context length and padding."""

from __future__ import annotations

import gzip
import string
from pathlib import Path

# What open_clip's SimpleTokenizer names its start and end tokens.
START, END = "<start_of_text>", "<end_of_text>"
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, which CLIP's BPE works on
    (Radford et al. 2019; ``simple_tokenizer.py`` of openai/CLIP)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def clip_bpe(vocab_file: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token → id) and merges (by rank) of CLIP's BPE from its vocabulary
    file (``bpe_simple_vocab_16e6.txt.gz``), built as openai/CLIP's and open_clip's
    ``SimpleTokenizer`` build them: 256 byte tokens, the same with ``</w>``, one token per
    merge (the file's first 48,894), then the start and end tokens (ids 49406, 49407).

    Raises:
        OSError: the file cannot be read; ValueError: it is not a BPE vocabulary.
    """
    lines = gzip.open(vocab_file).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    if not merges or any(len(pair) != 2 for pair in merges):
        raise ValueError(f"{vocab_file.name} is not a BPE vocabulary")
    tokens = list(bytes_to_unicode().values())
    tokens += [token + "</w>" for token in tokens]
    tokens += ["".join(pair) for pair in merges] + [START, END]
    return {token: index for index, token in enumerate(tokens)}, merges


def clip_tokenizer(vocab_file: Path, context_length: int):
    """open_clip's CLIP tokenizer as a ``tokenizers.Tokenizer``: NFC, whitespace runs to one
    space, lower case, CLIP's word pattern, byte-level BPE with ``</w>`` word ends, start
    and end tokens, truncation and zero padding to *context_length* tokens (as
    transformers' ``CLIPConverter`` defines it).

    Raises:
        OSError, ValueError: see :func:`clip_bpe`.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    vocab, merges = clip_bpe(vocab_file)
    tokenizer = Tokenizer(BPE(vocab=vocab, merges=merges, continuing_subword_prefix="",
                              end_of_word_suffix="</w>", fuse_unk=False, unk_token=None))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}", special_tokens=[(START, vocab[START]), (END, vocab[END])])
    tokenizer.enable_truncation(context_length)
    tokenizer.enable_padding(length=context_length, pad_id=0)
    return tokenizer


def padded_tokenizer(tokenizer_file: Path, pad_token: str, context_length: int):
    """A tokenizer file (``tokenizer.json``) set to truncate and pad to *context_length*
    tokens with *pad_token*, as Immich's ``OpenClipTextualEncoder`` loads it.

    Raises:
        ValueError: the file is not a tokenizer, or lacks *pad_token*.
    """
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises its own Exception type
        raise ValueError(f"{tokenizer_file.name} is not a tokenizer: {exc}") from exc
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise ValueError(f"{tokenizer_file.name} has no padding token {pad_token!r}")
    tokenizer.enable_truncation(context_length)
    tokenizer.enable_padding(length=context_length, pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def clean_text(text: str, canonicalize: bool) -> str:
    """Whitespace runs to one space; with *canonicalize* (open_clip's ``clean``
    ``"canonicalize"``, SigLIP's) also no punctuation and lower case (open_clip's
    ``canonicalize_text``, as Immich's ``clean_text``)."""
    text = " ".join(text.split())
    return text.translate(_PUNCTUATION).lower() if canonicalize else text
