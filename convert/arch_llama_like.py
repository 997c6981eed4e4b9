"""The transformers decoder layout shared by Llama, Qwen2, GLM and GLM-4 (``model.layers.N.*``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .arch_base import LayerJobs, ModelParams, T, require, rope_parameters
from .safetensors_reader import Checkpoint
from .tensors import TensorJob, tensor_name, transformed

RowTransform = Callable[[np.ndarray, int], np.ndarray]  # (tensor, n_heads of that tensor) -> tensor


def standard_params(config: dict[str, Any], gguf_arch: str, *, partial_rotary_default: float = 1.0) -> ModelParams:
    n_embd = int(require(config, "hidden_size"))
    n_head = int(require(config, "num_attention_heads"))
    head_dim = int(config.get("head_dim") or n_embd // n_head)
    rp = rope_parameters(config)
    partial = float(rp.get("partial_rotary_factor", partial_rotary_default))
    return ModelParams(
        hf_arch=config["architectures"][0],
        gguf_arch=gguf_arch,
        n_layer=int(require(config, "num_hidden_layers")),
        n_embd=n_embd,
        n_ff=int(require(config, "intermediate_size")),
        n_head=n_head,
        n_head_kv=int(config.get("num_key_value_heads") or n_head),
        head_dim=head_dim,
        n_rot=int(head_dim * partial),
        rope_theta=float(rp.get("rope_theta", 10000.0)),
        rms_eps=float(require(config, "rms_norm_eps")),
        n_ctx=int(require(config, "max_position_embeddings")),
        vocab_size=int(require(config, "vocab_size")),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        rope_scaling=rp,
    )


def attention_jobs(lj: LayerJobs, p: ModelParams, i: int, qk_transform: RowTransform | None = None) -> None:
    """q/k/v (weights and optional biases, with an optional row transform of q and k) and o_proj."""
    pre = f"model.layers.{i}.self_attn"
    for proj, kind, heads in (("q_proj", T.ATTN_Q, p.n_head), ("k_proj", T.ATTN_K, p.n_head_kv),
                              ("v_proj", T.ATTN_V, None)):
        for suffix in ("weight", "bias"):
            hf = f"{pre}.{proj}.{suffix}"
            if suffix == "bias" and hf not in lj.ckpt:
                continue
            if heads is not None and qk_transform is not None:
                fn = _bind(qk_transform, heads)
                lj.add(transformed(lj.ckpt, hf, tensor_name(kind, suffix, i), fn), hf)
            else:
                lj.copy(hf, kind, i, suffix)
    lj.copy(f"{pre}.o_proj.weight", T.ATTN_OUT, i)
    lj.copy(f"{pre}.o_proj.bias", T.ATTN_OUT, i, "bias", optional=True)


def _bind(fn: RowTransform, heads: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda w: fn(w, heads)


def hf_rotate_half_to_interleaved(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder q/k rows from HF's rotate-half rope layout to llama.cpp's interleaved pairs, per head."""
    shape = w.shape
    return w.reshape(n_heads, 2, shape[0] // n_heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def gated_mlp_jobs(lj: LayerJobs, i: int) -> None:
    pre = f"model.layers.{i}.mlp"
    lj.copy(f"{pre}.gate_proj.weight", T.FFN_GATE, i)
    lj.copy(f"{pre}.up_proj.weight", T.FFN_UP, i)
    lj.copy(f"{pre}.down_proj.weight", T.FFN_DOWN, i)


def standard_jobs(ckpt: Checkpoint, p: ModelParams, layer_fn: Callable[[LayerJobs, int], None]) -> list[TensorJob]:
    lj = LayerJobs(ckpt)
    lj.embeddings_and_output("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", p.tie_embeddings)
    for i in range(p.n_layer):
        layer_fn(lj, i)
    return lj.finish()
