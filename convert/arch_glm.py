"""GlmForCausalLM (glm-4-9b-chat-hf) -> GGUF ``chatglm``.

Same network as the THUDM ChatGLM layout, in transformers' names: separate q/k/v with biases (llama.cpp's
chatglm loader takes them separately), interleaved-pair rope on half of each head (no permutation),
``gate_up_proj`` = [gate; up] -> ``ffn_up``. Unlike upstream's converter, rope base, eps and context
come from transformers' own names (rope_theta, rms_norm_eps, max_position_embeddings).
"""

from __future__ import annotations

from typing import Any

from glm_edge.errors import ConfigError

from .arch_base import LayerJobs, ModelParams, T
from .arch_llama_like import attention_jobs, standard_jobs, standard_params
from .arch_spec import ArchConverter
from .safetensors_reader import Checkpoint
from .tensors import TensorJob


class GlmConverter(ArchConverter):
    hf_architectures = ("GlmForCausalLM",)
    gguf_arch = "chatglm"
    vocab_family = "glm"

    def params(self, config: dict[str, Any]) -> ModelParams:
        p = standard_params(config, self.gguf_arch, partial_rotary_default=0.5)
        if p.head_dim * p.n_head != p.n_embd:
            raise ConfigError(f"GlmForCausalLM with head_dim*heads ({p.head_dim}*{p.n_head}) != hidden_size "
                              f"({p.n_embd}) has no llama.cpp chatglm equivalent")
        return p

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        def layer(lj: LayerJobs, i: int) -> None:
            pre = f"model.layers.{i}"
            lj.copy(f"{pre}.input_layernorm.weight", T.ATTN_NORM, i)
            attention_jobs(lj, p, i)
            lj.copy(f"{pre}.post_attention_layernorm.weight", T.FFN_NORM, i)
            lj.copy(f"{pre}.mlp.gate_up_proj.weight", T.FFN_UP, i)
            lj.copy(f"{pre}.mlp.down_proj.weight", T.FFN_DOWN, i)

        return standard_jobs(ckpt, p, layer)
