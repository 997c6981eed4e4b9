"""Streaming access to safetensors checkpoints (one file or index-sharded), without torch.

Only the JSON headers are parsed up front; tensor data is read from disk on demand, whole or in row
chunks, and widened to float32. bf16 is handled here because numpy has no bf16 dtype.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glm_edge.errors import ConfigError

_DTYPES: dict[str, np.dtype] = {
    "BF16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
}

# Row chunks of streamed tensors hold about this many elements (64 MiB as float32).
CHUNK_ELEMENTS = 16 * 1024 * 1024


@dataclass(frozen=True)
class TensorRef:
    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int  # absolute byte offset of the data in ``file``

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def _to_f32(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32, copy=False)


def _read_header(path: Path) -> dict[str, TensorRef]:
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ConfigError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not a safetensors file ({e})") from e
    base = 8 + n
    refs: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise ConfigError(f"{path}: tensor {name} has dtype {dtype}; only BF16, F16 and F32 are supported")
        start, _end = info["data_offsets"]
        refs[name] = TensorRef(name, path, dtype, tuple(int(d) for d in info["shape"]), base + int(start))
    return refs


class Checkpoint:
    """The tensors of a safetensors checkpoint directory, by name."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        index = self.directory / "model.safetensors.index.json"
        if index.is_file():
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
            missing = [f for f in files if not (self.directory / f).is_file()]
            if missing:
                raise ConfigError(
                    f"{self.directory}: missing safetensors shard(s) {', '.join(missing)} listed in {index.name}")
            paths = [self.directory / f for f in files]
        else:
            paths = sorted(self.directory.glob("*.safetensors"))
            if not paths:
                if list(self.directory.glob("*.bin")) or list(self.directory.glob("*.pt")):
                    raise ConfigError(f"{self.directory}: only PyTorch .bin weights found; convert them to "
                                      "safetensors first (glm-edge reads safetensors only)")
                raise ConfigError(f"{self.directory}: no *.safetensors weights found")
        self.tensors: dict[str, TensorRef] = {}
        for p in paths:
            self.tensors.update(_read_header(p))

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def names(self) -> list[str]:
        return list(self.tensors)

    def ref(self, name: str) -> TensorRef:
        try:
            return self.tensors[name]
        except KeyError:
            raise ConfigError(f"{self.directory}: tensor {name!r} not found in the checkpoint") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self.ref(name).shape

    def _read(self, ref: TensorRef, first_row: int, n_rows: int) -> np.ndarray:
        dt = _DTYPES[ref.dtype]
        row = int(np.prod(ref.shape[1:], dtype=np.int64)) if len(ref.shape) > 1 else 1
        count = n_rows * row
        raw = np.fromfile(ref.file, dtype=dt, count=count, offset=ref.offset + first_row * row * dt.itemsize)
        if raw.size != count:
            raise ConfigError(f"{ref.file}: truncated data for tensor {ref.name}")
        shape = (n_rows, *ref.shape[1:]) if len(ref.shape) > 1 else (n_rows,)
        return _to_f32(raw, ref.dtype).reshape(shape)

    def load(self, name: str) -> np.ndarray:
        """The whole tensor as float32."""
        ref = self.ref(name)
        if not ref.shape:
            return self._read(ref, 0, 1).reshape(())
        return self._read(ref, 0, ref.shape[0])

    def iter_rows(self, name: str, chunk_elements: int = CHUNK_ELEMENTS) -> Iterator[np.ndarray]:
        """The tensor as float32 chunks of whole rows (peak memory ~ one chunk)."""
        ref = self.ref(name)
        if len(ref.shape) <= 1:
            yield self.load(name)
            return
        row = ref.n_elements // ref.shape[0]
        step = max(1, chunk_elements // max(row, 1))
        for start in range(0, ref.shape[0], step):
            yield self._read(ref, start, min(step, ref.shape[0] - start))
