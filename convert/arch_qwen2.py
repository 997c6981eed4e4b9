"""Qwen2ForCausalLM (DeepSeek-R1-Distill-Qwen) -> GGUF ``qwen2``.

llama.cpp uses NEOX (rotate-half) rope for qwen2, HF's own layout: q/k/v weights and biases are
written as they are. The token list is padded to config ``vocab_size`` by the vocab writer.
"""

from __future__ import annotations

from typing import Any

from .arch_base import LayerJobs, ModelParams, T
from .arch_llama_like import attention_jobs, gated_mlp_jobs, standard_jobs, standard_params
from .arch_spec import ArchConverter
from .safetensors_reader import Checkpoint
from .tensors import TensorJob


class Qwen2Converter(ArchConverter):
    hf_architectures = ("Qwen2ForCausalLM",)
    gguf_arch = "qwen2"
    vocab_family = "qwen2"

    def params(self, config: dict[str, Any]) -> ModelParams:
        return standard_params(config, self.gguf_arch)

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        def layer(lj: LayerJobs, i: int) -> None:
            lj.copy(f"model.layers.{i}.input_layernorm.weight", T.ATTN_NORM, i)
            attention_jobs(lj, p, i)
            lj.copy(f"model.layers.{i}.post_attention_layernorm.weight", T.FFN_NORM, i)
            gated_mlp_jobs(lj, i)

        return standard_jobs(ckpt, p, layer)
