"""What gets written: a list of tensor jobs, each producing float32 row chunks on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gguf
import numpy as np

from .safetensors_reader import Checkpoint

ChunkSource = Callable[[], Iterable[np.ndarray]]


@dataclass
class TensorJob:
    """One GGUF tensor: its name, numpy-order shape and a source of float32 row chunks."""

    name: str
    shape: tuple[int, ...]
    chunks: ChunkSource
    keep_f32: bool = False  # norms, biases and rope factors stay F32 whatever the output type
    # Optional: chunks already encoded in a given GGML type (synthetic models write random blocks directly).
    encoded: Callable[[gguf.GGMLQuantizationType], Iterable[np.ndarray]] | None = None


def tensor_name(kind: gguf.MODEL_TENSOR, suffix: str = "weight", bid: int | None = None) -> str:
    """The GGUF name of a tensor kind, e.g. ``blk.3.attn_q.weight``."""
    base = gguf.TENSOR_NAMES[kind]
    if bid is not None:
        base = base.format(bid=bid)
    return f"{base}.{suffix}" if suffix else base


def passthrough(ckpt: Checkpoint, hf_name: str, gguf_name: str) -> TensorJob:
    """Copy a checkpoint tensor unchanged, streamed in row chunks."""
    shape = ckpt.shape(hf_name)
    return TensorJob(gguf_name, shape, lambda: ckpt.iter_rows(hf_name), keep_f32=len(shape) <= 1)


def transformed(ckpt: Checkpoint, hf_name: str, gguf_name: str,
                fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...] | None = None) -> TensorJob:
    """Load a whole checkpoint tensor, transform it (a permutation, a slice) and write the result."""
    out_shape = shape if shape is not None else ckpt.shape(hf_name)
    return TensorJob(gguf_name, out_shape, lambda: [fn(ckpt.load(hf_name))], keep_f32=len(out_shape) <= 1)


def computed(gguf_name: str, data: np.ndarray, keep_f32: bool = True) -> TensorJob:
    """A tensor computed by the converter (e.g. llama3 rope frequency factors)."""
    arr = np.asarray(data, dtype=np.float32)
    return TensorJob(gguf_name, tuple(arr.shape), lambda: [arr], keep_f32=keep_f32)


def concat_rows(ckpt: Checkpoint, hf_names: list[str], gguf_name: str) -> TensorJob:
    """Stack several checkpoint tensors along the first axis (e.g. separate gate and up projections)."""
    shapes = [ckpt.shape(n) for n in hf_names]
    rest = shapes[0][1:]
    if any(s[1:] != rest for s in shapes):
        raise ValueError(f"cannot stack {hf_names}: shapes {shapes}")
    shape = (sum(s[0] for s in shapes), *rest)

    def chunks() -> Iterable[np.ndarray]:
        for n in hf_names:
            yield from ckpt.iter_rows(n)

    return TensorJob(gguf_name, shape, chunks, keep_f32=len(shape) <= 1)
