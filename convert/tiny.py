"""Tiny random HF checkpoints of every architecture glm-edge converts, for tests (needs torch + transformers).

Each builder writes a checkpoint directory the way the real model ships (config.json, safetensors,
tokenizer files with the real special tokens and a small BPE trained on mixed text) and returns the
float32 transformers model that serves as the reference. Weights are rounded to bf16 so every stored
dtype (bf16/f16/f32) holds them exactly.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from .tiktoken_vocab import token_to_bytes
from .tiny_corpus import CORPUS
from .vocab import GLM4_REGEX, GLM4_SPECIAL_TOKENS, LLAMA3_REGEX, QWEN2_REGEX

FORMS = ("chatglm", "glm", "glm4", "qwen2", "llama")

R1_SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
R1_ADDED = ["<think>", "</think>"]

GLM_TEMPLATE = ("[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")


def train_tokenizer(regex: str, special: list[str], added: list[str], *, vocab_size: int = 700,
                    ignore_merges: bool = False) -> Any:
    """A byte-level BPE in the real models' style: regex split + ByteLevel, special tokens appended."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator([CORPUS] * 3, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    if added:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in added])
    return tok


def _padded(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def round_weights(model: Any, seed: int, std: float = 0.15) -> None:
    """Random weights (norms near 1) rounded to bf16, so every stored dtype holds them exactly."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def save_safetensors(tensors: dict[str, Any], directory: Path, dtype: str, n_shards: int = 1) -> None:
    """Write tensors as safetensors in ``dtype`` ("bf16" | "f16" | "f32"), sharded with an index if n_shards > 1."""
    import torch
    from safetensors.torch import save_file

    tdt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[dtype]
    names = list(tensors)
    shards = [names[i::n_shards] for i in range(n_shards)]
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = "model.safetensors" if n_shards == 1 else f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({n: tensors[n].detach().to(tdt).contiguous().clone() for n in shard}, str(directory / fname),
                  metadata={"format": "pt"})
        weight_map.update({n: fname for n in shard})
    if n_shards > 1:
        (directory / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))


def _save_tokenizer(tok: Any, directory: Path, *, bos: str | None, eos: str, pad: str | None,
                    template: str, add_bos: bool) -> Any:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad)
    fast.chat_template = template
    fast.save_pretrained(str(directory))
    cfg_path = directory / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["add_bos_token"] = add_bos
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=1))
    return fast


def _build_hf(form: str, directory: Path, seed: int) -> tuple[Any, Any]:
    """Build the transformers model + tokenizer of a form and save it (for chatglm: the glm twin)."""
    import torch
    from transformers import (
        Glm4Config,
        Glm4ForCausalLM,
        GlmConfig,
        GlmForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    common = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                  num_hidden_layers=2, max_position_embeddings=4096)
    if form in ("glm", "glm4", "chatglm"):
        tok = train_tokenizer(GLM4_REGEX, GLM4_SPECIAL_TOKENS, [], ignore_merges=(form == "glm4"))
        vocab = _padded(tok.get_vocab_size())
        eos_ids = [tok.token_to_id(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
        glm_common = dict(common, vocab_size=vocab, eos_token_id=eos_ids, pad_token_id=eos_ids[0],
                          attention_bias=True, rms_norm_eps=1.5625e-07, tie_word_embeddings=False)
        if form == "glm4":
            config = Glm4Config(**glm_common, head_dim=32,
                                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "partial_rotary_factor": 0.5})
            model = Glm4ForCausalLM(config)
        else:
            config = GlmConfig(**glm_common, head_dim=16,
                               rope_parameters={"rope_type": "default", "rope_theta": 20000.0,
                                                "partial_rotary_factor": 0.5})
            model = GlmForCausalLM(config)
        fast = _save_tokenizer(tok, directory, bos=None, eos="<|endoftext|>", pad="<|endoftext|>",
                               template=GLM_TEMPLATE, add_bos=False)
    else:
        regex = QWEN2_REGEX if form == "qwen2" else LLAMA3_REGEX
        tok = train_tokenizer(regex, R1_SPECIAL, R1_ADDED, ignore_merges=(form == "llama"))
        vocab = _padded(tok.get_vocab_size())
        bos, eos = tok.token_to_id(R1_SPECIAL[0]), tok.token_to_id(R1_SPECIAL[1])
        if form == "qwen2":
            config = Qwen2Config(**common, vocab_size=vocab, bos_token_id=bos, eos_token_id=eos,
                                 rms_norm_eps=1e-6, tie_word_embeddings=True,
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
            model = Qwen2ForCausalLM(config)
        else:
            config = LlamaConfig(**common, vocab_size=vocab, bos_token_id=bos, eos_token_id=eos,
                                 rms_norm_eps=1e-5, tie_word_embeddings=False,
                                 rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 64})
            model = LlamaForCausalLM(config)
        fast = _save_tokenizer(tok, directory, bos=R1_SPECIAL[0], eos=R1_SPECIAL[1], pad=R1_SPECIAL[1],
                               template=R1_TEMPLATE, add_bos=True)
    model.eval()
    round_weights(model, seed, std=0.15)
    return model, fast


_DTYPES = {"chatglm": ("bf16", 2), "glm": ("f32", 1), "glm4": ("bf16", 1), "qwen2": ("f16", 1), "llama": ("bf16", 2)}


def build_tiny_checkpoint(form: str, directory: Path, seed: int = 0) -> tuple[Any, Any]:
    """Write a tiny checkpoint of ``form`` (one of FORMS) into ``directory``; return (reference model, HF tokenizer).

    The chatglm form is GLM-4-9b-chat's THUDM layout (remote code, not in transformers): its reference is
    the GlmForCausalLM with the same weights, and its tokenizer ships as a tiktoken-style tokenizer.model.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of {FORMS}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model, fast = _build_hf(form, directory, seed)
    dtype, shards = _DTYPES[form]
    state = {k: v for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    if form == "chatglm":
        _write_chatglm(model, fast, directory, dtype, shards)
    else:
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(str(directory))
        save_safetensors(state, directory, dtype, shards)
    return model, fast


def _write_chatglm(model: Any, fast: Any, directory: Path, dtype: str, shards: int) -> None:
    _write_chatglm_weights(model, directory, dtype, shards)
    # THUDM ships a tiktoken file (base64 token, rank) and lists the special tokens in tokenizer_config.json.
    for name in ("tokenizer.json", "special_tokens_map.json", "chat_template.jinja"):
        (directory / name).unlink(missing_ok=True)
    write_glm4_tiktoken_files(fast.backend_tokenizer, directory)


def write_glm4_tiktoken_files(tok: Any, directory: Path) -> None:
    """A trained ``tokenizers.Tokenizer`` as GLM-4-9b-chat ships its tokenizer: a tiktoken ``tokenizer.model``
    (base64 token, rank) and the special tokens in ``tokenizer_config.json``."""
    vocab: dict[str, int] = tok.get_vocab(with_added_tokens=False)
    lines = [f"{base64.b64encode(token_to_bytes(t)).decode()} {i}"
             for t, i in sorted(vocab.items(), key=lambda x: x[1])]
    (directory / "tokenizer.model").write_text("\n".join(lines) + "\n", encoding="utf-8")
    added = {str(tok.token_to_id(t)): {"content": t, "special": True} for t in GLM4_SPECIAL_TOKENS}
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": added, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "chat_template": GLM_TEMPLATE, "tokenizer_class": "ChatGLM4Tokenizer"}, ensure_ascii=False, indent=1),
        encoding="utf-8")


def save_thudm_weights(model: Any, directory: Path, dtype: str, shards: int) -> None:
    """Save a GlmForCausalLM's weights under THUDM's ChatGLMModel names (fused qkv with bias, [gate; up])."""
    import torch

    state = model.state_dict()
    out = {"transformer.embedding.word_embeddings.weight": state["model.embed_tokens.weight"],
           "transformer.encoder.final_layernorm.weight": state["model.norm.weight"],
           "transformer.output_layer.weight": state["lm_head.weight"],
           "transformer.rotary_pos_emb.inv_freq": torch.arange(4, dtype=torch.float32)}
    for i in range(model.config.num_hidden_layers):
        h, t = f"model.layers.{i}", f"transformer.encoder.layers.{i}"
        out[f"{t}.input_layernorm.weight"] = state[f"{h}.input_layernorm.weight"]
        out[f"{t}.self_attention.query_key_value.weight"] = torch.cat(
            [state[f"{h}.self_attn.{p}_proj.weight"] for p in "qkv"], 0)
        out[f"{t}.self_attention.query_key_value.bias"] = torch.cat(
            [state[f"{h}.self_attn.{p}_proj.bias"] for p in "qkv"], 0)
        out[f"{t}.self_attention.dense.weight"] = state[f"{h}.self_attn.o_proj.weight"]
        out[f"{t}.post_attention_layernorm.weight"] = state[f"{h}.post_attention_layernorm.weight"]
        out[f"{t}.mlp.dense_h_to_4h.weight"] = state[f"{h}.mlp.gate_up_proj.weight"]
        out[f"{t}.mlp.dense_4h_to_h.weight"] = state[f"{h}.mlp.down_proj.weight"]
    save_safetensors(out, directory, dtype, shards)


def _write_chatglm_weights(model: Any, directory: Path, dtype: str, shards: int) -> None:
    """The GlmForCausalLM ``model`` in THUDM's ChatGLMModel tensor names and config.json."""
    save_thudm_weights(model, directory, dtype, shards)
    cfg = model.config
    n = cfg.num_hidden_layers
    rope_theta = cfg.rope_parameters["rope_theta"]
    config = {
        "architectures": ["ChatGLMModel"], "model_type": "chatglm", "add_bias_linear": False, "add_qkv_bias": True,
        "ffn_hidden_size": cfg.intermediate_size, "hidden_size": cfg.hidden_size, "kv_channels": cfg.head_dim,
        "layernorm_epsilon": cfg.rms_norm_eps, "multi_query_attention": True,
        "multi_query_group_num": cfg.num_key_value_heads, "num_attention_heads": cfg.num_attention_heads,
        "num_layers": n, "num_hidden_layers": n, "padded_vocab_size": cfg.vocab_size, "post_layer_norm": True,
        "rmsnorm": True, "rope_ratio": rope_theta / 10000.0, "seq_length": cfg.max_position_embeddings,
        "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id, "torch_dtype": "bfloat16",
        "tie_word_embeddings": False,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=1))


def tiny_checkpoint_config(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "config.json").read_text())
