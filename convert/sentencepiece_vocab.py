"""SentencePiece ``tokenizer.model`` files (ChatGLM3) -> GGUF vocabulary of llama.cpp's ``llama`` (SPM) type.

The file is a protobuf ``ModelProto``; it is read here with a few lines of wire-format decoding, so converting
needs neither ``sentencepiece`` nor ``protobuf`` (the tests check the result against ``sentencepiece`` itself).

ChatGLM3 (THUDM/chatglm3-6b, -32k, -128k) appends its own special tokens after the SentencePiece pieces, in
``tokenization_chatglm.py``'s order: ``[MASK] [gMASK] [sMASK] sop eop <|system|> <|user|> <|assistant|>
<|observation|>``; its ``encode()`` puts ``[gMASK] sop`` in front of every text. Generation stops on ``</s>``
(id 2), ``<|user|>`` and ``<|observation|>`` (modeling_chatglm.py's ``chat()``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from glm_edge.errors import ConfigError

from .vocab import Vocab

CHATGLM3_SPECIAL_TOKENS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop",
                           "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]
CHATGLM3_STOP_TOKENS = ["<|user|>", "<|observation|>"]
CHATGLM3_PREFIX = ["[gMASK]", "sop"]

# sentencepiece_model.proto: ModelProto.SentencePiece.Type; llama.cpp's token types use the same numbers.
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6
SP_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


@dataclass(frozen=True)
class SentencePieceModel:
    pieces: list[str]
    scores: list[float]
    types: list[int]
    model_type: str = "unigram"
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    normalizer: str = ""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    treat_whitespace_as_suffix: bool = False


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: ints for varints, bytes for the others."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf) or number == 0:
            raise ValueError("truncated or malformed protobuf message")
        out.append((number, wire, value))
    return out


def _int32(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def read_sentencepiece(path: Path) -> SentencePieceModel | None:
    """The pieces and settings of a SentencePiece model file, or None when the file is not one."""
    data = Path(path).read_bytes()
    try:
        top = _fields(data)
        pieces: list[str] = []
        scores: list[float] = []
        types: list[int] = []
        trainer: dict[int, Any] = {}
        normalizer: dict[int, Any] = {}
        for number, wire, value in top:
            if number == 1 and wire == 2:
                piece, score, kind = "", 0.0, SP_NORMAL
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        piece = v.decode("utf-8")
                    elif n == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif n == 3 and w == 0:
                        kind = v
                pieces.append(piece)
                scores.append(score)
                types.append(kind)
            elif number == 2 and wire == 2:
                trainer = {n: v for n, _w, v in _fields(value)}
            elif number == 3 and wire == 2:
                normalizer = {n: v for n, _w, v in _fields(value)}
            elif wire != 2:
                return None  # a text file (e.g. tiktoken ranks) does not parse as this message
    except (ValueError, UnicodeDecodeError):
        return None
    if not pieces or any(t not in range(1, 7) for t in types):
        return None
    return SentencePieceModel(
        pieces=pieces, scores=scores, types=types,
        model_type=SP_MODEL_TYPES.get(trainer.get(3, 1), "unigram"),
        byte_fallback=bool(trainer.get(35, 0)),
        unk_id=_int32(trainer.get(40, 0)), bos_id=_int32(trainer.get(41, 1)), eos_id=_int32(trainer.get(42, 2)),
        pad_id=_int32(trainer.get(43, (1 << 64) - 1)),
        treat_whitespace_as_suffix=bool(trainer.get(24, 0)),
        normalizer=normalizer.get(1, b"").decode("utf-8", "replace"),
        add_dummy_prefix=bool(normalizer.get(3, 1)),
        remove_extra_whitespaces=bool(normalizer.get(4, 1)),
        escape_whitespaces=bool(normalizer.get(5, 1)),
    )


@dataclass
class SentencePieceVocab(Vocab):
    """A ``Vocab`` written as llama.cpp's SentencePiece (``llama``) tokenizer: pieces with scores, no merges."""

    scores: list[float] = field(default_factory=list)
    add_space_prefix: bool = True
    remove_extra_whitespaces: bool = False

    def _add_tokens(self, w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre(self.pre)  # llama.cpp ignores it for SentencePiece vocabularies
        w.add_token_list(self.tokens)
        w.add_token_scores(self.scores)
        w.add_token_types(self.types)
        w.add_add_space_prefix(self.add_space_prefix)
        w.add_remove_extra_whitespaces(self.remove_extra_whitespaces)


def _check_supported(sp: SentencePieceModel, path: Path) -> None:
    if sp.model_type != "bpe":
        raise ConfigError(f"{path}: a SentencePiece {sp.model_type} model; glm-edge converts SentencePiece BPE "
                          "models (llama.cpp's 'llama' tokenizer reproduces BPE, not unigram segmentation)")
    if sp.treat_whitespace_as_suffix:
        raise ConfigError(f"{path}: SentencePiece models with treat_whitespace_as_suffix are not supported")
    if sp.normalizer not in ("", "identity"):
        raise ConfigError(f"{path}: SentencePiece normalizer {sp.normalizer!r} is not supported (llama.cpp "
                          "applies no normalization rules); only 'identity' models convert exactly")


def chatglm3_vocab(src: Path, vocab_size: int, config: dict[str, Any], gen_cfg: dict[str, Any],
                   chat_template: str | None) -> SentencePieceVocab | None:
    """ChatGLM3's vocabulary from ``src/tokenizer.model``, or None when that file is not a SentencePiece model."""
    path = Path(src) / "tokenizer.model"
    sp = read_sentencepiece(path)
    if sp is None:
        return None
    _check_supported(sp, path)
    n_sp = len(sp.pieces)
    n_tokens = n_sp + len(CHATGLM3_SPECIAL_TOKENS)
    if n_tokens > vocab_size:
        raise ConfigError(f"the tokenizer has {n_tokens} tokens but the model's embedding only {vocab_size} rows")
    tokens = [*sp.pieces, *CHATGLM3_SPECIAL_TOKENS] + [f"[PAD{i}]" for i in range(n_tokens, vocab_size)]
    scores = [*sp.scores] + [0.0] * (vocab_size - n_sp)
    types = [*sp.types, *[SP_CONTROL] * len(CHATGLM3_SPECIAL_TOKENS)] + [SP_UNUSED] * (vocab_size - n_tokens)
    ids = {t: i for i, t in enumerate(tokens[:n_tokens])}

    special: dict[str, int] = {"unk": sp.unk_id}
    eos = config.get("eos_token_id", sp.eos_id)
    special["eos"] = eos if isinstance(eos, int) else sp.eos_id
    special["bos"] = sp.bos_id if sp.bos_id >= 0 else special["eos"]  # never added: add_bos is False
    pad = config.get("pad_token_id", sp.unk_id)
    special["pad"] = pad if isinstance(pad, int) else sp.unk_id
    special["eot"] = ids["<|user|>"]

    stop = {special["eos"], *(ids[t] for t in CHATGLM3_STOP_TOKENS)}
    for src_ids in (config.get("eos_token_id"), gen_cfg.get("eos_token_id")):
        for i in (src_ids if isinstance(src_ids, list) else [src_ids]):
            if isinstance(i, int) and 0 <= i < vocab_size:
                stop.add(i)
    return SentencePieceVocab(
        tokens=tokens, types=types, merges=[], pre="chatglm-spm", special=special, add_bos=False, add_eos=False,
        chat_template=chat_template, stop_ids=sorted(stop), scores=scores,
        add_space_prefix=sp.add_dummy_prefix, remove_extra_whitespaces=sp.remove_extra_whitespaces)
