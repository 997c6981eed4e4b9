"""Glm4ForCausalLM (GLM-4-0414, GLM-Z1) -> GGUF ``glm4``.

HF's GLM rope already rotates interleaved pairs (llama.cpp's "normal" rope), on the first
head_dim * partial_rotary_factor dims: no permutation. ``gate_up_proj`` is [gate; up], which is
llama.cpp's fused ``ffn_up``. The four norms map (mind the names):
input_layernorm -> attn_norm, post_self_attn_layernorm -> post_attention_norm,
post_attention_layernorm -> ffn_norm, post_mlp_layernorm -> post_ffw_norm.
"""

from __future__ import annotations

from typing import Any

from .arch_base import LayerJobs, ModelParams, T
from .arch_llama_like import attention_jobs, standard_jobs, standard_params
from .arch_spec import ArchConverter
from .safetensors_reader import Checkpoint
from .tensors import TensorJob


class Glm4Converter(ArchConverter):
    hf_architectures = ("Glm4ForCausalLM",)
    gguf_arch = "glm4"
    vocab_family = "glm"

    def params(self, config: dict[str, Any]) -> ModelParams:
        return standard_params(config, self.gguf_arch, partial_rotary_default=0.5)

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        def layer(lj: LayerJobs, i: int) -> None:
            pre = f"model.layers.{i}"
            lj.copy(f"{pre}.input_layernorm.weight", T.ATTN_NORM, i)
            attention_jobs(lj, p, i)
            lj.copy(f"{pre}.post_self_attn_layernorm.weight", T.ATTN_POST_NORM, i)
            lj.copy(f"{pre}.post_attention_layernorm.weight", T.FFN_NORM, i)
            lj.copy(f"{pre}.mlp.gate_up_proj.weight", T.FFN_UP, i)
            lj.copy(f"{pre}.mlp.down_proj.weight", T.FFN_DOWN, i)
            lj.copy(f"{pre}.post_mlp_layernorm.weight", T.FFN_POST_NORM, i)

        return standard_jobs(ckpt, p, layer)
