"""Synthetic GGUFs with the exact shapes of the real models and random weights (inputs for benchmarks).

Random data is drawn once into a pool and sliced at varying offsets, and Q8_0 blocks are written as
bytes directly, so a 9B model costs about what the disk takes to write it. K-quants and other types go
through llama.cpp's quantizer from a synthetic Q8_0 file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import gguf
import numpy as np

from glm_edge.errors import ConfigError

from .arch_base import ModelParams, T, add_common_hparams
from .arch_llama import llama3_rope_factors
from .atomic import scratch_file
from .gguf_out import DIRECT_TYPES, write_gguf
from .quantize import ftype_of, quantize_gguf
from .synth_presets import GLM_CHAT_TEMPLATE, NOT_CONTROL, PRESETS, R1_CHAT_TEMPLATE, specials_for
from .synth_vocab import synthetic_vocab
from .tensors import TensorJob, tensor_name
from .vocab import Vocab

Q = gguf.GGMLQuantizationType
ARCHES = ("chatglm", "glm4", "qwen2", "llama")
_POOL_ELEMENTS = 1 << 22  # 4M random values, reused at varying offsets
_CHUNK_ELEMENTS = 1 << 24
_WEIGHT_STD = 0.02


class _RandomSource:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.normal = (self.rng.standard_normal(_POOL_ELEMENTS * 2, dtype=np.float32) * _WEIGHT_STD)
        self.int8 = self.rng.integers(-127, 128, size=_POOL_ELEMENTS * 2, dtype=np.int8)

    def _slice(self, pool: np.ndarray, n: int) -> np.ndarray:
        out = np.empty(n, dtype=pool.dtype)
        done = 0
        while done < n:
            take = min(n - done, _POOL_ELEMENTS)
            start = int(self.rng.integers(0, _POOL_ELEMENTS))
            out[done:done + take] = pool[start:start + take]
            done += take
        return out

    def floats(self, n: int) -> np.ndarray:
        return self._slice(self.normal, n)

    def q8_0_blocks(self, n_elements: int) -> np.ndarray:
        n_blocks = n_elements // 32
        blocks = np.empty((n_blocks, 34), dtype=np.uint8)
        d = np.float16(_WEIGHT_STD / 73.0)  # uniform int8 has std ~73
        blocks[:, :2] = np.frombuffer(d.tobytes(), dtype=np.uint8)
        blocks[:, 2:] = self._slice(self.int8, n_blocks * 32).view(np.uint8).reshape(n_blocks, 32)
        return blocks.reshape(-1)


def _random_job(name: str, shape: tuple[int, ...], src: _RandomSource, *, norm: bool = False) -> TensorJob:
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, _CHUNK_ELEMENTS // cols)

    def encoded(qtype: Q) -> Iterable[np.ndarray]:
        if len(shape) == 1:
            base = np.ones(rows, np.float32) if norm else np.zeros(rows, np.float32)
            yield (base + src.floats(rows)).astype(np.float32)
            return
        for start in range(0, rows, step):
            n = min(step, rows - start) * cols
            if qtype == Q.Q8_0:
                yield src.q8_0_blocks(n)
            elif qtype == Q.F16:
                yield src.floats(n).astype(np.float16)
            elif qtype == Q.F32:
                yield src.floats(n)
            else:
                yield gguf.quants.quantize(src.floats(n).reshape(-1, cols), qtype).reshape(-1)

    return TensorJob(name, shape, chunks=lambda: [], keep_f32=len(shape) == 1, encoded=encoded)


def tensor_shapes(p: ModelParams) -> list[tuple[str, tuple[int, ...], bool]]:
    """(GGUF name, numpy shape, is_norm) of every tensor llama.cpp's loader expects for ``p.gguf_arch``."""
    q, kv, e, ff = p.n_head * p.head_dim, p.n_head_kv * p.head_dim, p.n_embd, p.n_ff
    out: list[tuple[str, tuple[int, ...], bool]] = [(tensor_name(T.TOKEN_EMBD), (p.vocab_size, e), False)]
    if p.gguf_arch == "llama" and p.rope_scaling:
        out.append((tensor_name(T.ROPE_FREQS), (p.n_rot // 2,), False))
    for i in range(p.n_layer):
        out.append((tensor_name(T.ATTN_NORM, bid=i), (e,), True))
        if p.gguf_arch == "chatglm":
            out += [(tensor_name(T.ATTN_QKV, bid=i), (q + 2 * kv, e), False),
                    (tensor_name(T.ATTN_QKV, "bias", i), (q + 2 * kv,), False)]
        else:
            out += [(tensor_name(T.ATTN_Q, bid=i), (q, e), False), (tensor_name(T.ATTN_K, bid=i), (kv, e), False),
                    (tensor_name(T.ATTN_V, bid=i), (kv, e), False)]
            if p.gguf_arch in ("glm4", "qwen2"):
                out += [(tensor_name(T.ATTN_Q, "bias", i), (q,), False),
                        (tensor_name(T.ATTN_K, "bias", i), (kv,), False),
                        (tensor_name(T.ATTN_V, "bias", i), (kv,), False)]
        out.append((tensor_name(T.ATTN_OUT, bid=i), (e, q), False))
        if p.gguf_arch == "glm4":
            out.append((tensor_name(T.ATTN_POST_NORM, bid=i), (e,), True))
        out.append((tensor_name(T.FFN_NORM, bid=i), (e,), True))
        if p.gguf_arch in ("chatglm", "glm4"):
            out.append((tensor_name(T.FFN_UP, bid=i), (2 * ff, e), False))
        else:
            out += [(tensor_name(T.FFN_GATE, bid=i), (ff, e), False), (tensor_name(T.FFN_UP, bid=i), (ff, e), False)]
        out.append((tensor_name(T.FFN_DOWN, bid=i), (e, ff), False))
        if p.gguf_arch == "glm4":
            out.append((tensor_name(T.FFN_POST_NORM, bid=i), (e,), True))
    out.append((tensor_name(T.OUTPUT_NORM), (e,), True))
    if not p.tie_embeddings:
        out.append((tensor_name(T.OUTPUT), (p.vocab_size, e), False))
    return out


def _vocab(arch: str, size: str, p: ModelParams) -> Vocab:
    specials = specials_for(arch, size, p.vocab_size)
    if arch in ("chatglm", "glm4"):
        return synthetic_vocab(p.vocab_size, specials, pre="glm4" if arch == "glm4" else "chatglm-bpe",
                               not_control=set(), bos="<|endoftext|>", eos="<|endoftext|>", eot="<|user|>",
                               add_bos=False, chat_template=GLM_CHAT_TEMPLATE,
                               stop=["<|endoftext|>", "<|user|>", "<|observation|>"])
    return synthetic_vocab(p.vocab_size, specials, pre="qwen2" if arch == "qwen2" else "llama-bpe",
                           not_control=NOT_CONTROL, bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>",
                           eot=None, add_bos=True, chat_template=R1_CHAT_TEMPLATE, stop=["<｜end▁of▁sentence｜>"])


def preset(arch: str, size: str) -> tuple[str, ModelParams]:
    key = (arch.lower(), size.lower())
    if key not in PRESETS:
        known = ", ".join(f"{a}/{s}" for a, s in PRESETS)
        raise ConfigError(f"no synthetic preset for --arch {arch} --size {size}; known: {known}")
    return PRESETS[key]


def _write(arch: str, size: str, out: Path, out_type: str, seed: int, progress: bool) -> Path:
    name, p = preset(arch, size)
    vocab = _vocab(arch.lower(), size.lower(), p)
    src = _RandomSource(seed)
    jobs = [_random_job(n, s, src, norm=is_norm) for n, s, is_norm in tensor_shapes(p)]
    factors = llama3_rope_factors(p) if p.gguf_arch == "llama" else None
    if factors is not None:
        idx = next(i for i, j in enumerate(jobs) if j.name == tensor_name(T.ROPE_FREQS))
        jobs[idx] = TensorJob(jobs[idx].name, factors.shape, chunks=lambda: [factors], keep_f32=True)

    def metadata(w: gguf.GGUFWriter) -> None:
        w.add_type("model")
        w.add_name(f"synthetic-{name}")
        w.add_description(f"random weights with the shapes of {name} (glm-edge synth)")
        add_common_hparams(w, p)
        vocab.add_to(w)

    return write_gguf(out, p.gguf_arch, metadata, jobs, out_type, progress=progress)


def synthesize(arch: str, size: str, out: Path, out_type: str = "F16", *, threads: int | None = None,
               seed: int = 0, progress: bool = True) -> Path:
    """Write a GGUF with the shapes of a real model (``arch`` chatglm|glm4|qwen2|llama, ``size`` 9b|7b|1.5b|8b|tiny)
    and random weights, in ``out_type`` (F16/F32/BF16/Q8_0 directly, other types via llama.cpp's quantizer)."""
    out = Path(out)
    qtype = out_type.upper()
    preset(arch, size)
    if qtype in DIRECT_TYPES:
        return _write(arch, size, out, qtype, seed, progress)
    ftype_of(qtype)
    with scratch_file(out, ".q8_0.gguf") as q8:
        _write(arch, size, q8, "Q8_0", seed, progress)
        quantize_gguf(q8, out, qtype, threads=threads, allow_requantize=True)
    return out
