"""The interface every architecture module implements."""

from __future__ import annotations

from typing import Any, ClassVar

import gguf

from .arch_base import ModelParams, add_common_hparams
from .safetensors_reader import Checkpoint
from .tensors import TensorJob


class ArchConverter:
    """Converts one family of HF checkpoints to one GGUF architecture."""

    hf_architectures: ClassVar[tuple[str, ...]] = ()
    gguf_arch: ClassVar[str] = ""
    # Which tokenizer rules apply (special ids, pre-tokenizer names): "glm", "qwen2" or "llama".
    vocab_family: ClassVar[str] = ""

    def params(self, config: dict[str, Any]) -> ModelParams:
        raise NotImplementedError

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        raise NotImplementedError

    def add_hparams(self, w: gguf.GGUFWriter, p: ModelParams) -> None:
        add_common_hparams(w, p)
