"""GGUF -> quantized GGUF through llama.cpp's own ``llama_model_quantize`` (via llama-cpp-python)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from glm_edge.errors import ConfigError

from .atomic import atomic_output

# Output type names accepted by quantize / convert, as llama.cpp's quantize tool spells them.
QUANT_TYPES: tuple[str, ...] = (
    "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q4_0",
    "Q4_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_NL", "IQ4_XS")


def ftype_of(qtype: str) -> int:
    """llama.cpp's ``llama_ftype`` value for a type name (clear error for unknown names)."""
    import llama_cpp

    name = qtype.upper()
    if name not in QUANT_TYPES:
        raise ConfigError(f"unknown quantization type {qtype!r}; choose one of {', '.join(QUANT_TYPES)}")
    attr = "LLAMA_FTYPE_ALL_F32" if name == "F32" else f"LLAMA_FTYPE_MOSTLY_{name}"
    value = getattr(llama_cpp, attr, None)
    if value is None:
        raise ConfigError(f"this llama-cpp-python build has no {attr}")
    return int(value)


def quantize_gguf(src: Path, out: Path, qtype: str, threads: int | None = None, *,
                  allow_requantize: bool = False) -> Path:
    """Quantize ``src`` (an F16/BF16/F32 GGUF; any type with ``allow_requantize``) to ``out`` with llama.cpp.

    The output appears atomically."""
    import llama_cpp

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise ConfigError(f"input GGUF {src} not found")
    if src.resolve() == out.resolve():
        raise ConfigError("quantize: the output must be a different file from the input")
    ftype = ftype_of(qtype)
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = int(threads or os.cpu_count() or 1)
    params.allow_requantize = allow_requantize
    with atomic_output(out) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0:
            raise ConfigError(f"llama.cpp failed to quantize {src} to {qtype} (code {rc}); see its log above")
    return out
