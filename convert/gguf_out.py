"""Streaming GGUF output: metadata first, then each tensor converted chunk by chunk to the output type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
from tqdm import tqdm

from glm_edge.errors import ConfigError

from .atomic import atomic_output
from .tensors import TensorJob

Q = gguf.GGMLQuantizationType
_F16_MAX = 65504.0

# Output types that the writer produces itself; others go through llama.cpp's quantizer.
DIRECT_TYPES: dict[str, tuple[Q, gguf.LlamaFileType]] = {
    "F32": (Q.F32, gguf.LlamaFileType.ALL_F32),
    "F16": (Q.F16, gguf.LlamaFileType.MOSTLY_F16),
    "BF16": (Q.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "Q8_0": (Q.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}


def tensor_type(job: TensorJob, out: Q) -> Q:
    """The GGML type a tensor gets in a file of output type ``out``."""
    if job.keep_f32 or len(job.shape) <= 1 or out == Q.F32:
        return Q.F32
    if out in (Q.F16, Q.BF16):
        return out
    block, _ = gguf.GGML_QUANT_SIZES[out]
    return out if job.shape[-1] % block == 0 else Q.F16


def _nbytes(shape: tuple[int, ...], qtype: Q) -> int:
    if qtype == Q.F32:
        return int(np.prod(shape, dtype=np.int64)) * 4
    if qtype == Q.F16:
        return int(np.prod(shape, dtype=np.int64)) * 2
    return int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype), dtype=np.int64))


def _encode(chunk: np.ndarray, qtype: Q) -> np.ndarray:
    if qtype == Q.F32:
        return np.ascontiguousarray(chunk, dtype=np.float32)
    if qtype == Q.F16:
        if chunk.size and float(np.max(np.abs(chunk))) > _F16_MAX:
            raise ConfigError("a weight exceeds the float16 range (65504); convert with out_type='BF16' or 'F32'")
        return np.ascontiguousarray(chunk, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(chunk, dtype=np.float32), qtype)


def write_gguf(path: Path, arch: str, add_metadata: Callable[[gguf.GGUFWriter], None],
               jobs: list[TensorJob], out_type: str = "F16", *, progress: bool = True) -> Path:
    """Write a GGUF file atomically, streaming tensor data (peak memory ~ one chunk or one transformed tensor)."""
    if out_type not in DIRECT_TYPES:
        raise ConfigError(f"the GGUF writer writes {', '.join(DIRECT_TYPES)}; got {out_type!r}")
    out_q, file_type = DIRECT_TYPES[out_type]
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names in the conversion plan")
    types = [tensor_type(j, out_q) for j in jobs]
    sizes = [_nbytes(j.shape, t) for j, t in zip(jobs, types)]

    path = Path(path)
    with atomic_output(path) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        add_metadata(writer)
        writer.add_file_type(int(file_type))
        if out_q not in (Q.F32, Q.F16, Q.BF16):
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for job, qtype, size in zip(jobs, types, sizes):
            np_dtype = np.float16 if qtype == Q.F16 else np.float32
            raw = None if qtype in (Q.F16, Q.F32) else qtype
            writer.add_tensor_info(job.name, job.shape, np.dtype(np_dtype), size, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        fout = writer.fout[0]
        align = writer.data_alignment
        bar = tqdm(total=sum(sizes), unit="B", unit_scale=True, desc=f"writing {path.name}",
                   disable=not progress, leave=False)
        try:
            for job, qtype, size in zip(jobs, types, sizes):
                pos = fout.tell()
                fout.write(b"\0" * (gguf.GGUFWriter.ggml_pad(pos, align) - pos))
                written = 0
                source = job.encoded(qtype) if job.encoded is not None else (
                    _encode(chunk, qtype) for chunk in job.chunks())
                for data in source:
                    data.tofile(fout)
                    written += data.nbytes
                    bar.update(data.nbytes)
                if written != size:
                    raise ValueError(f"tensor {job.name}: wrote {written} bytes, planned {size}")
        finally:
            bar.close()
            writer.close()
    return path
