"""LlamaForCausalLM (DeepSeek-R1-Distill-Llama) -> GGUF ``llama``.

llama.cpp rotates interleaved pairs for llama, so q/k rows are permuted from HF's rotate-half layout
(k with the KV head count). Llama-3 ``rope_scaling`` becomes a ``rope_freqs`` tensor of factors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .arch_base import LayerJobs, ModelParams, T
from .arch_llama_like import (
    attention_jobs,
    gated_mlp_jobs,
    hf_rotate_half_to_interleaved,
    standard_jobs,
    standard_params,
)
from .arch_spec import ArchConverter
from .safetensors_reader import Checkpoint
from .tensors import TensorJob, computed, tensor_name


def llama3_rope_factors(p: ModelParams) -> np.ndarray | None:
    """Per-frequency divisors of Llama-3 rope scaling, or None when the config has no llama3 scaling."""
    rp = p.rope_scaling
    if str(rp.get("rope_type", "")).lower() != "llama3":
        return None
    factor = float(rp.get("factor", 8.0))
    low = float(rp.get("low_freq_factor", 1.0))
    high = float(rp.get("high_freq_factor", 4.0))
    old_ctx = float(rp.get("original_max_position_embeddings", 8192))
    dim = p.n_rot
    freqs = 1.0 / (p.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


class LlamaConverter(ArchConverter):
    hf_architectures = ("LlamaForCausalLM",)
    gguf_arch = "llama"
    vocab_family = "llama"

    def params(self, config: dict[str, Any]) -> ModelParams:
        return standard_params(config, self.gguf_arch)

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        def layer(lj: LayerJobs, i: int) -> None:
            lj.copy(f"model.layers.{i}.input_layernorm.weight", T.ATTN_NORM, i)
            attention_jobs(lj, p, i, qk_transform=hf_rotate_half_to_interleaved)
            lj.copy(f"model.layers.{i}.post_attention_layernorm.weight", T.FFN_NORM, i)
            gated_mlp_jobs(lj, i)

        jobs = standard_jobs(ckpt, p, layer)
        factors = llama3_rope_factors(p)
        if factors is not None:
            jobs.insert(0, computed(tensor_name(T.ROPE_FREQS), factors))
        return jobs
