"""Tiny random-weight HF checkpoints around a *real* tokenizer, for tests (needs torch + transformers).

``build_tiny_checkpoint`` (tiny.py) trains a small BPE; the builders here instead copy a model family's real
tokenizer files verbatim into a checkpoint in that family's real layout, with an embedding of the real
vocabulary's size (kept cheap by a small hidden size). Converting such a checkpoint exercises the converter on
the real vocabulary, merges, split regex and added tokens; comparing llama.cpp's ids with the HF
``tokenizers`` ids of the same ``tokenizer.json`` then says whether the GGUF tokenizes like the model.

Forms: "qwen2" (DeepSeek-R1-Distill-Qwen: Qwen2ForCausalLM, Qwen2.5 BPE) and "llama" (DeepSeek-R1-Distill-Llama:
LlamaForCausalLM, Llama-3 BPE). Other forms may be added to ``REAL_FORMS``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tiny import round_weights, save_safetensors

# Files of a tokenizer folder that are copied unchanged into the checkpoint, when present.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                   "chat_template.jinja")


@dataclass(frozen=True)
class RealForm:
    """What a family's real config.json says, less the sizes that make a model expensive."""

    architecture: str
    vocab_size: int  # embedding rows of the real model (>= the tokenizer's ids)
    bos: str  # token text of the config's bos_token_id / eos_token_id when tokenizer_config.json names none
    eos: str
    dtype: str  # safetensors dtype the real checkpoint ships in
    tie_word_embeddings: bool


REAL_FORMS: dict[str, RealForm] = {
    # deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B: vocab_size 151936, bf16, untied embeddings.
    "qwen2": RealForm("Qwen2ForCausalLM", 151936, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "bf16", False),
    # deepseek-ai/DeepSeek-R1-Distill-Llama-8B: vocab_size 128256, bf16, untied, llama3 rope scaling.
    "llama": RealForm("LlamaForCausalLM", 128256, "<|begin_of_text|>", "<|end_of_text|>", "bf16", False),
}

_HIDDEN = dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=1, intermediate_size=48,
               num_hidden_layers=1, max_position_embeddings=4096)


def tokenizer_ids(tokenizer_json: Path) -> dict[str, int]:
    """Every token text of a ``tokenizer.json`` (model vocabulary and added tokens) -> id."""
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    ids: dict[str, int] = dict(data["model"]["vocab"])
    ids.update({t["content"]: int(t["id"]) for t in data.get("added_tokens", [])})
    return ids


def _token_text(tok: Any) -> str | None:
    if isinstance(tok, dict):
        content = tok.get("content")
        return content if isinstance(content, str) else None
    return tok if isinstance(tok, str) else None


def with_added_tokens(tokenizer_json: Path, added_tokens: list[dict[str, Any]], out: Path,
                      *, bos: str | None = None) -> Path:
    """Write ``tokenizer_json`` with its ``added_tokens`` replaced by ``added_tokens`` (HF entries with id and
    content), and, when ``bos`` is given, the post-processor that prepends it (the layout of a fine-tune such as
    DeepSeek-R1-Distill-Qwen, which keeps the base model's BPE and swaps the added tokens). Returns ``out``."""
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    for t in added_tokens:
        if t["id"] < len(vocab) or t["content"] in vocab:
            raise ValueError(f"added token {t['content']!r} (id {t['id']}) collides with the model vocabulary")
    data["added_tokens"] = added_tokens
    if bos is not None:
        bos_id = next(t["id"] for t in added_tokens if t["content"] == bos)
        data["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
        }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return out


def _hf_model(form: str, spec: RealForm, vocab_size: int, bos_id: int, eos_id: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common: dict[str, Any] = dict(_HIDDEN, vocab_size=vocab_size, bos_token_id=bos_id, eos_token_id=eos_id,
                                  tie_word_embeddings=spec.tie_word_embeddings)
    if form == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common, rms_norm_eps=1e-6,
                                            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))
    return LlamaForCausalLM(LlamaConfig(**common, rms_norm_eps=1e-5,
                                        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                         "original_max_position_embeddings": 1024}))


def build_real_vocab_checkpoint(form: str, tokenizer_dir: Path, directory: Path, seed: int = 0) -> Any:
    """Write a tiny random-weight checkpoint of ``form`` (a key of ``REAL_FORMS``) into ``directory`` whose
    tokenizer files are those of ``tokenizer_dir``, copied unchanged; return the float32 transformers model.

    The embedding has the real model's number of rows (or the tokenizer's, if larger); bos/eos ids come from the
    tokenizer's own tokenizer_config.json, else from the family's real config.
    """
    if form not in REAL_FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of {tuple(REAL_FORMS)}")
    import torch

    spec = REAL_FORMS[form]
    tokenizer_dir, directory = Path(tokenizer_dir), Path(directory)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir} has no tokenizer.json")
    directory.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, directory / name)

    ids = tokenizer_ids(tokenizer_dir / "tokenizer.json")
    tok_cfg_path = tokenizer_dir / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text(encoding="utf-8")) if tok_cfg_path.is_file() else {}
    bos = _token_text(tok_cfg.get("bos_token")) or spec.bos
    eos = _token_text(tok_cfg.get("eos_token")) or spec.eos
    vocab_size = max(spec.vocab_size, max(ids.values()) + 1)

    torch.manual_seed(seed)
    model = _hf_model(form, spec, vocab_size, ids[bos], ids[eos])
    model.eval()
    round_weights(model, seed, std=0.15)
    model.config.architectures = [spec.architecture]
    model.config.save_pretrained(str(directory))
    state = dict(model.state_dict())
    if spec.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_safetensors(state, directory, spec.dtype)
    return model
