"""Tiny random checkpoints in the real layouts of the GLM family members in the catalog (needs torch + transformers).

- ``chatglm3``: THUDM/chatglm3-6b (ChatGLMModel, remote code): the real config.json with its sizes shrunk, the
  real SentencePiece ``tokenizer.model`` (copied from ``tokenizer_dir``), ``rope_ratio`` only when given
  (chatglm3-6b has none; the -32k/-128k variants scale the rope base with it).
- ``glm-4-9b`` / ``glm-4-9b-chat-1m``: GLM-4-9b's THUDM layout (the same as glm-4-9b-chat) with the variant's
  config differences (the 1m model: 4 query groups instead of 2, rope_ratio 10000, a 1M context); a small
  tiktoken-style tokenizer.model trained on mixed text with GLM-4's 14 special tokens.
- ``glm-edge``: THUDM/glm-edge-*-chat (GlmForCausalLM in transformers' own layout, tokenizer.json): no
  attention bias, tied embeddings, ``partial_rotary_factor`` as given.

The reference of every form is transformers' ``GlmForCausalLM`` with the same weights: ChatGLM's
modeling_chatglm.py rotates interleaved pairs of the first half of each head (``RotaryEmbedding(kv_channels
// 2)``), with fused [q; k; v] (+ bias) and [gate; up] projections, RMSNorm and SwiGLU, which is that model.
Weights are rounded to bf16, so every stored dtype holds them exactly.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tiny import (
    GLM_TEMPLATE,
    round_weights,
    save_safetensors,
    save_thudm_weights,
    train_tokenizer,
    write_glm4_tiktoken_files,
)
from .vocab import GLM4_REGEX, GLM4_SPECIAL_TOKENS

FAMILY_FORMS = ("chatglm3", "glm-4-9b", "glm-4-9b-chat-1m", "glm-edge")


@dataclass(frozen=True)
class TinyShape:
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 96
    layers: int = 2


def _glm_reference(shape: TinyShape, vocab: int, *, rope_theta: float, partial: float, bias: bool, tied: bool,
                   eps: float, eos: list[int], pad: int, seed: int) -> Any:
    import torch
    from transformers import GlmConfig, GlmForCausalLM

    torch.manual_seed(seed)
    config = GlmConfig(hidden_size=shape.hidden, num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                       head_dim=shape.hidden // shape.heads, intermediate_size=shape.ffn,
                       num_hidden_layers=shape.layers, max_position_embeddings=4096, vocab_size=vocab,
                       attention_bias=bias, rms_norm_eps=eps, tie_word_embeddings=tied, eos_token_id=eos,
                       pad_token_id=pad, rope_parameters={"rope_type": "default", "rope_theta": rope_theta,
                                                          "partial_rotary_factor": partial})
    model = GlmForCausalLM(config)
    model.eval()  # type: ignore[no-untyped-call]
    round_weights(model, seed)
    return model


def _shrunk_thudm_config(base: dict[str, Any], shape: TinyShape, vocab: int, seq_length: int) -> dict[str, Any]:
    config = dict(base)
    config.update({"hidden_size": shape.hidden, "num_attention_heads": shape.heads,
                   "kv_channels": shape.hidden // shape.heads, "multi_query_group_num": shape.kv_heads,
                   "ffn_hidden_size": shape.ffn, "num_layers": shape.layers, "padded_vocab_size": vocab,
                   "seq_length": seq_length})
    if "num_hidden_layers" in config:
        config["num_hidden_layers"] = shape.layers
    if "vocab_size" in config:
        config["vocab_size"] = vocab
    return config


def build_thudm_real_vocab(directory: Path, tokenizer_dir: Path, *, rope_ratio: float | None = None, seed: int = 0,
                           shape: TinyShape = TinyShape()) -> Any:
    """A tiny checkpoint in THUDM's ChatGLMModel layout (chatglm3-6b, glm-4-9b-chat) around the real tokenizer
    files of ``tokenizer_dir``; returns the reference (GlmForCausalLM with the same weights).

    ``tokenizer_dir`` holds THUDM's config.json, tokenizer.model and tokenizer_config.json (and, where the model
    has them, generation_config.json and tokenization_chatglm.py), copied unchanged. The embedding keeps the real
    padded_vocab_size, so every real token id is a row; ``rope_ratio`` overrides the config's own.
    """
    directory, tokenizer_dir = Path(directory), Path(tokenizer_dir)
    directory.mkdir(parents=True, exist_ok=True)
    base = json.loads((tokenizer_dir / "config.json").read_text(encoding="utf-8"))
    vocab = int(base["padded_vocab_size"])
    ratio = rope_ratio if rope_ratio is not None else base.get("rope_ratio")
    eos = base["eos_token_id"]
    model = _glm_reference(shape, vocab, rope_theta=10000.0 * float(ratio or 1.0), partial=0.5, bias=True,
                           tied=False, eps=float(base["layernorm_epsilon"]),
                           eos=[int(i) for i in (eos if isinstance(eos, list) else [eos])],
                           pad=int(base["pad_token_id"]), seed=seed)
    config = _shrunk_thudm_config(base, shape, vocab, int(base["seq_length"]))
    if ratio is not None:
        config["rope_ratio"] = ratio
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in ("tokenizer.model", "tokenizer_config.json", "generation_config.json", "tokenization_chatglm.py"):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, directory / name)
    save_thudm_weights(model, directory, "bf16", 2)
    return model


def _glm4_tiktoken(directory: Path) -> tuple[Any, int]:
    """A trained tiktoken-style tokenizer.model + tokenizer_config.json in GLM-4's format; (HF tokenizer, size)."""
    tok = train_tokenizer(GLM4_REGEX, GLM4_SPECIAL_TOKENS, [], ignore_merges=True)
    write_glm4_tiktoken_files(tok, directory)
    return tok, tok.get_vocab_size()


def build_glm4_thudm(directory: Path, *, variant: str, seed: int = 0) -> tuple[Any, Any]:
    """A tiny glm-4-9b (``variant="base"``) or glm-4-9b-chat-1m (``"1m"``) in THUDM's layout; (reference, tokenizer)."""
    if variant not in ("base", "1m"):
        raise ValueError(f"unknown GLM-4-9b variant {variant!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok, n = _glm4_tiktoken(directory)
    vocab = (n + 63) // 64 * 64
    eos = [tok.token_to_id(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    # glm-4-9b-chat-1m: multi_query_group_num 4 (of 32 heads), rope_ratio 10000; the base model: 2 groups, no ratio.
    shape = TinyShape(hidden=64, heads=8, kv_heads=4) if variant == "1m" else TinyShape()
    rope_ratio = 10000.0 if variant == "1m" else 1.0
    model = _glm_reference(shape, vocab, rope_theta=10000.0 * rope_ratio, partial=0.5, bias=True, tied=False,
                           eps=1.5625e-07, eos=eos, pad=eos[0], seed=seed)
    base = {"architectures": ["ChatGLMModel"], "model_type": "chatglm", "add_bias_linear": False,
            "add_qkv_bias": True, "apply_query_key_layer_scaling": True, "layernorm_epsilon": 1.5625e-07,
            "multi_query_attention": True, "original_rope": True, "post_layer_norm": True, "rmsnorm": True,
            "num_hidden_layers": shape.layers, "eos_token_id": eos, "pad_token_id": eos[0],
            "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    if variant == "1m":
        base["rope_ratio"] = rope_ratio
    config = _shrunk_thudm_config(base, shape, vocab, 1048576 if variant == "1m" else 8192)
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_thudm_weights(model, directory, "bf16", 1)
    return model, tok


def build_glm_edge(directory: Path, *, partial_rotary_factor: float, seed: int = 0) -> tuple[Any, Any]:
    """A tiny glm-edge-*-chat (GlmForCausalLM, tokenizer.json, tied embeddings, no attention bias)."""
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(GLM4_REGEX, GLM4_SPECIAL_TOKENS, [], ignore_merges=False)
    vocab = (tok.get_vocab_size() + 63) // 64 * 64
    eos = [tok.token_to_id(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    model = _glm_reference(TinyShape(), vocab, rope_theta=10000.0, partial=partial_rotary_factor, bias=False,
                           tied=True, eps=1e-5, eos=eos, pad=eos[0], seed=seed)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")  # type: ignore[no-untyped-call]
    fast.chat_template = GLM_TEMPLATE
    fast.save_pretrained(str(directory))
    model.config.architectures = ["GlmForCausalLM"]
    model.config.save_pretrained(str(directory))
    # glm-edge's config.json spells the rope settings at the top level (transformers 4.47's GlmConfig).
    cfg_path = directory / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("rope_parameters", None)
    cfg.update(partial_rotary_factor=partial_rotary_factor, rope_theta=10000.0)
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_safetensors(state, directory, "bf16", 1)
    return model, fast
