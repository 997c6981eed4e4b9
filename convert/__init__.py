"""glm-edge conversion: HF checkpoints -> GGUF (our own writer on the ``gguf`` package), quantization
through llama.cpp, and synthetic full-shape models for benchmarks."""

from __future__ import annotations

from .convert import convert_to_gguf, is_embedding_checkpoint
from .quantize import QUANT_TYPES, quantize_gguf
from .synth import synthesize

__all__ = ["QUANT_TYPES", "convert_to_gguf", "is_embedding_checkpoint", "quantize_gguf", "synthesize"]
