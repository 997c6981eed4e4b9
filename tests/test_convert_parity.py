"""HF -> GGUF conversion of all five checkpoint forms, proven against transformers.

Each tiny checkpoint (2 layers, GQA, a BPE trained on mixed text with the real special tokens) is converted,
loaded by llama.cpp and compared with transformers on the same token ids. A deliberately wrong conversion
of each form must fail the same comparison, so the check has teeth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from glm_edge_convert import convert_to_gguf
from glm_edge_convert.parity import compare_logits, llama_logits, llama_tokenize
from glm_edge_convert.tiny import FORMS, build_tiny_checkpoint

PROMPT = ("The quick brown fox jumps over the lazy dog. 今天天气很好，我们去公园散步吧。"
          "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) 🚀🦙 3.14159 ✅")

# Q8_0 is ~8 bits per weight: we accept up to 15 % of the largest logit and 85 % argmax agreement
# (measured on these checkpoints: ~1-3 % and 100 %).
Q8_MIN_AGREEMENT, Q8_MAX_REL = 0.85, 0.15


@pytest.fixture(scope="module", params=FORMS)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    form = request.param
    directory = tmp_path_factory.mktemp(form)
    model, tokenizer = build_tiny_checkpoint(form, directory / "hf", seed=7)
    return form, directory, model, tokenizer


def _prompt_ids(form: str, tokenizer) -> list[int]:
    ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    if form in ("chatglm", "glm", "glm4"):
        prefix = tokenizer.convert_tokens_to_ids(["[gMASK]", "<sop>", "<|user|>"])
    else:
        prefix = tokenizer.convert_tokens_to_ids(["<｜begin▁of▁sentence｜>", "<｜User｜>"])
    return prefix + ids


def _reference(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def test_f16_and_q8_logits_match_transformers(tiny) -> None:
    form, directory, model, tokenizer = tiny
    ids = _prompt_ids(form, tokenizer)
    assert len(ids) >= 40
    ref = _reference(model, ids)

    f16 = convert_to_gguf(directory / "hf", directory / "model-f16.gguf", "F16", progress=False)
    parity = compare_logits(ref, llama_logits(f16, ids))
    assert parity.ok(min_agreement=0.95, max_relative_diff=0.05), f"{form} F16: {parity}"

    q8 = convert_to_gguf(directory / "hf", directory / "model-q8_0.gguf", "Q8_0", progress=False)
    parity_q8 = compare_logits(ref, llama_logits(q8, ids))
    assert parity_q8.ok(min_agreement=Q8_MIN_AGREEMENT, max_relative_diff=Q8_MAX_REL), f"{form} Q8_0: {parity_q8}"
    assert q8.stat().st_size < f16.stat().st_size


def _permute_like_llama(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _unpermute_like_llama(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    return w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _sabotage(form: str, name: str, t: torch.Tensor, cfg: dict) -> torch.Tensor:
    """The tensor a buggy converter would have produced, expressed as a change of the source checkpoint."""
    heads = {"q_proj": cfg.get("num_attention_heads"), "k_proj": cfg.get("num_key_value_heads")}
    if form == "chatglm" and name.endswith("dense_h_to_4h.weight"):  # [up; gate] instead of [gate; up]
        half = t.shape[0] // 2
        return torch.cat([t[half:], t[:half]])
    if form in ("glm", "qwen2"):  # wrong rope type: rows reordered as if HF used rotate-half (llama's fix-up)
        for proj, n in heads.items():
            if f".{proj}." in name:
                return _permute_like_llama(t, n)
    if form == "glm4" and ".post_self_attn_layernorm." in name:  # the naming trap: norms swapped
        return t.flip(0) * 1.5
    if form == "llama":  # no permutation: the converter's own permutation is undone beforehand
        for proj, n in heads.items():
            if f".{proj}." in name:
                return _unpermute_like_llama(t, n)
    return t


def test_wrong_conversion_fails_the_same_check(tiny) -> None:
    form, directory, model, tokenizer = tiny
    bad = directory / "bad"
    shutil.copytree(directory / "hf", bad, dirs_exist_ok=True)
    cfg = json.loads((bad / "config.json").read_text())
    for shard in bad.glob("*.safetensors"):
        tensors = load_file(str(shard))
        save_file({k: _sabotage(form, k, v, cfg).contiguous() for k, v in tensors.items()}, str(shard))
    ids = _prompt_ids(form, tokenizer)
    out = convert_to_gguf(bad, directory / "bad.gguf", "F16", progress=False)
    parity = compare_logits(_reference(model, ids), llama_logits(out, ids))
    assert not parity.ok(min_agreement=0.95, max_relative_diff=0.05), f"{form}: sabotage went unnoticed: {parity}"


TEXTS = {
    "english": "Hello world! It's a sunny day, isn't it? We'll see what they've done... 12345 3.14",
    "chinese": "今天天气很好，我们去公园散步吧。人工智能正在改变世界！东京和大阪",
    "code": "def f(x: int) -> int:\n    return x ** 2  # square\n\nfor i in range(10):\n\tprint(f'{i}')\n",
    "emoji": "🚀🦙 ✅ 👍🏽 🎉🎉 ❤️ 🐍🦀 🤖 unusual: Ωmega ñandú café",
}


def test_tokenization_matches_hf(tiny) -> None:
    form, directory, _model, tokenizer = tiny
    gguf_path = directory / "vocab.gguf"
    if not gguf_path.exists():
        convert_to_gguf(directory / "hf", gguf_path, "F16", progress=False)
    if form == "chatglm":
        reference = _tiktoken_encoder(directory / "hf")
    else:
        def reference(text: str, special: bool) -> list[int]:
            return tokenizer.encode(text, add_special_tokens=False)
    for kind, text in TEXTS.items():
        assert llama_tokenize(gguf_path, text) == reference(text, False), f"{form} {kind}"
    special_text = ("[gMASK]<sop><|user|>\nhi 你好<|assistant|>" if form in ("chatglm", "glm", "glm4")
                    else "<｜begin▁of▁sentence｜><｜User｜>hi 你好<｜Assistant｜><think>\n")
    assert llama_tokenize(gguf_path, special_text, special=True) == reference(special_text, True)


def _tiktoken_encoder(directory: Path):
    """GLM-4-9b-chat's own tokenizer is tiktoken over tokenizer.model: the reference for the chatglm form."""
    import base64

    import tiktoken

    from glm_edge_convert.vocab import GLM4_REGEX

    ranks = {}
    for line in (directory / "tokenizer.model").read_text().splitlines():
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    added = json.loads((directory / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    enc = tiktoken.Encoding("tiny-glm", pat_str=GLM4_REGEX, mergeable_ranks=ranks,
                            special_tokens={v["content"]: int(k) for k, v in added.items()})

    def encode(text: str, special: bool) -> list[int]:
        return enc.encode(text, allowed_special="all" if special else set(), disallowed_special=())

    return encode


def test_chatglm_layout_and_glm_hf_layout_give_the_same_model(tmp_path: Path) -> None:
    """glm-4-9b-chat (THUDM layout) and glm-4-9b-chat-hf carry the same network: same logits after conversion."""
    m1, tok = build_tiny_checkpoint("chatglm", tmp_path / "a", seed=3)
    build_tiny_checkpoint("glm", tmp_path / "b", seed=3)
    ids = _prompt_ids("glm", tok)
    a = llama_logits(convert_to_gguf(tmp_path / "a", tmp_path / "a.gguf", progress=False), ids)
    b = llama_logits(convert_to_gguf(tmp_path / "b", tmp_path / "b.gguf", progress=False), ids)
    assert np.allclose(a, b, atol=1e-3)
    assert compare_logits(_reference(m1, ids), a).ok()
