"""HF checkpoint directory -> GGUF: the orchestration behind ``glm-edge convert``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gguf

from glm_edge.errors import ConfigError

from .arch_registry import converter_for
from .atomic import scratch_file
from .gguf_out import DIRECT_TYPES, write_gguf
from .quantize import ftype_of, quantize_gguf
from .safetensors_reader import Checkpoint
from .vocab import load_vocab

log = logging.getLogger(__name__)

_EMBEDDING_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "nomic_bert", "new"}


def read_config(src: Path) -> dict[str, Any]:
    path = Path(src) / "config.json"
    if not Path(src).is_dir():
        raise ConfigError(f"checkpoint directory {src} not found")
    if not path.is_file():
        raise ConfigError(f"{src}: no config.json (is this a Hugging Face checkpoint directory?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e})") from e


def is_embedding_checkpoint(src: Path) -> bool:
    """True for sentence-transformers / BERT / XLM-R style encoders (they convert to ONNX, not GGUF)."""
    src = Path(src)
    if (src / "modules.json").is_file() or (src / "config_sentence_transformers.json").is_file():
        return True
    if not (src / "config.json").is_file():
        return False
    config = read_config(src)
    if str(config.get("model_type", "")).lower() in _EMBEDDING_MODEL_TYPES:
        return True
    archs = config.get("architectures") or []
    return any(a.startswith(("Bert", "Roberta", "XLMRoberta", "MPNet", "DistilBert")) for a in archs)


def _add_general(w: gguf.GGUFWriter, src: Path, config: dict[str, Any]) -> None:
    w.add_type("model")
    w.add_name(str(config.get("_name_or_path") or src.resolve().name).rstrip("/").split("/")[-1])
    gen = {}
    if (src / "generation_config.json").is_file():
        gen = json.loads((src / "generation_config.json").read_text(encoding="utf-8"))
    if isinstance(gen.get("temperature"), (int, float)):
        w.add_sampling_temp(float(gen["temperature"]))
    if isinstance(gen.get("top_p"), (int, float)):
        w.add_sampling_top_p(float(gen["top_p"]))
    if isinstance(gen.get("top_k"), int) and gen["top_k"] > 0:
        w.add_sampling_top_k(int(gen["top_k"]))


def _write_direct(src: Path, out: Path, out_type: str, *, chat_template: str | Path | None,
                  tokenizer_pre: str | None, progress: bool) -> Path:
    config = read_config(src)
    archs = config.get("architectures") or []
    if not archs:
        if is_embedding_checkpoint(src):
            raise ConfigError(f"{src} is an embedding model: it converts to ONNX, not GGUF")
        raise ConfigError(f"{src}/config.json has no 'architectures' entry")
    conv = converter_for(archs[0])
    params = conv.params(config)
    ckpt = Checkpoint(src)
    vocab = load_vocab(src, conv.vocab_family, params.vocab_size, chat_template=chat_template,
                       tokenizer_pre=tokenizer_pre)
    jobs = conv.jobs(ckpt, params)
    embd = next(j for j in jobs if j.name == "token_embd.weight")
    if embd.shape[0] != len(vocab.tokens):
        raise ConfigError(f"embedding has {embd.shape[0]} rows but the vocabulary {len(vocab.tokens)} tokens")

    def metadata(w: gguf.GGUFWriter) -> None:
        _add_general(w, src, config)
        conv.add_hparams(w, params)
        vocab.add_to(w)

    log.info("converting %s (%s -> %s) to %s", src, archs[0], conv.gguf_arch, out_type)
    return write_gguf(out, conv.gguf_arch, metadata, jobs, out_type, progress=progress)


def convert_to_gguf(src: Path, out: Path, out_type: str = "F16", *, chat_template: str | Path | None = None,
                    threads: int | None = None, progress: bool = True, tokenizer_pre: str | None = None) -> Path:
    """Convert a HF checkpoint directory to a GGUF file of ``out_type``.

    ``chat_template`` overrides the checkpoint's own template: a ``Path`` names a Jinja file, a ``str`` is
    the template text. ``threads`` is for llama.cpp's quantizer; ``tokenizer_pre`` names the llama.cpp
    pre-tokenizer when the tokenizer's split regex is not one glm-edge knows.

    F32/F16/BF16/Q8_0 are written directly (streamed, peak memory ~ one tensor); other types
    (Q6_K, Q5_K_M, Q4_K_M, Q4_0, ...) are written as F16 beside ``out`` and quantized by llama.cpp.
    """
    src, out = Path(src), Path(out)
    qtype = out_type.upper()
    if qtype in DIRECT_TYPES:
        return _write_direct(src, out, qtype, chat_template=chat_template, tokenizer_pre=tokenizer_pre,
                             progress=progress)
    ftype_of(qtype)  # unknown types fail before the long write
    with scratch_file(out, ".f16.gguf") as f16:
        _write_direct(src, f16, "F16", chat_template=chat_template, tokenizer_pre=tokenizer_pre,
                      progress=progress)
        quantize_gguf(f16, out, qtype, threads=threads)
    return out
