"""GGUF metadata written by the converter: the facts each architecture depends on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glm_edge_convert import convert_to_gguf
from glm_edge_convert.parity import gguf_metadata
from glm_edge_convert.tiny import build_tiny_checkpoint


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    """Each tiny form converted once: form -> (checkpoint dir, GGUF metadata, HF tokenizer)."""
    out = {}
    for form in ("chatglm", "glm", "glm4", "qwen2", "llama"):
        d = tmp_path_factory.mktemp(form)
        _model, tok = build_tiny_checkpoint(form, d / "hf", seed=1)
        gguf_path = convert_to_gguf(d / "hf", d / "m.gguf", progress=False)
        out[form] = (d / "hf", gguf_metadata(gguf_path), tok, gguf_path)
    return out


def _cfg(d: Path) -> dict:
    return json.loads((d / "config.json").read_text())


def test_glm_special_tokens_and_stops(converted) -> None:
    for form, arch in (("chatglm", "chatglm"), ("glm", "chatglm"), ("glm4", "glm4")):
        _d, md, tok, _ = converted[form]
        eot = tok.convert_tokens_to_ids("<|endoftext|>")
        assert md["general.architecture"] == arch
        # <|endoftext|> is bos/eos/unk ([gMASK] as bos misbehaves), <|user|> the eot, no BOS added
        assert md["tokenizer.ggml.bos_token_id"] == eot
        assert md["tokenizer.ggml.eos_token_id"] == eot
        assert md["tokenizer.ggml.eot_token_id"] == tok.convert_tokens_to_ids("<|user|>")
        assert md["tokenizer.ggml.add_bos_token"] is False
        stops = {tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")}
        assert set(md["glm_edge.stop_token_ids"]) == stops
        assert tok.convert_tokens_to_ids("<|assistant|>") not in md["glm_edge.stop_token_ids"]
        assert md["tokenizer.chat_template"].startswith("[gMASK]<sop>")
    assert converted["glm4"][1]["tokenizer.ggml.pre"] == "glm4"          # ignore_merges tokenizer.json
    assert converted["glm"][1]["tokenizer.ggml.pre"] == "chatglm-bpe"    # plain BPE tokenizer.json
    assert converted["chatglm"][1]["tokenizer.ggml.pre"] == "glm4"       # tiktoken: whole pieces first


def test_chatglm_hparams_from_thudm_names(converted) -> None:
    d, md, _tok, _ = converted["chatglm"]
    cfg = _cfg(d)
    assert md["chatglm.rope.freq_base"] == pytest.approx(10000 * cfg["rope_ratio"])
    assert md["chatglm.rope.dimension_count"] == cfg["kv_channels"] // 2
    assert md["chatglm.context_length"] == cfg["seq_length"]
    assert md["chatglm.attention.head_count_kv"] == cfg["multi_query_group_num"]
    assert md["chatglm.attention.layer_norm_rms_epsilon"] == pytest.approx(cfg["layernorm_epsilon"])
    assert len(md["tokenizer.ggml.tokens"]) == cfg["padded_vocab_size"]


def test_glm_hf_hparams_from_transformers_names(converted) -> None:
    """Upstream reads only THUDM names here (rope base 10000, eps 1e-5, wrong context); we read HF's."""
    d, md, _tok, _ = converted["glm"]
    cfg = _cfg(d)
    assert md["chatglm.rope.freq_base"] == pytest.approx(cfg["rope_parameters"]["rope_theta"]) != 10000
    assert md["chatglm.attention.layer_norm_rms_epsilon"] == pytest.approx(cfg["rms_norm_eps"])
    assert md["chatglm.context_length"] == cfg["max_position_embeddings"]


def test_glm4_rope_and_head_dim(converted) -> None:
    d, md, _tok, _ = converted["glm4"]
    cfg = _cfg(d)
    assert md["glm4.rope.dimension_count"] == cfg["head_dim"] // 2
    assert md["glm4.attention.key_length"] == cfg["head_dim"] != cfg["hidden_size"] // cfg["num_attention_heads"]


def test_r1_distills_bos_padding_and_pre(converted) -> None:
    for form, pre in (("qwen2", "qwen2"), ("llama", "llama-bpe")):
        d, md, tok, _ = converted[form]
        cfg = _cfg(d)
        assert md["tokenizer.ggml.pre"] == pre
        assert md["tokenizer.ggml.bos_token_id"] == tok.convert_tokens_to_ids("<｜begin▁of▁sentence｜>")
        assert md["tokenizer.ggml.eos_token_id"] == tok.convert_tokens_to_ids("<｜end▁of▁sentence｜>")
        assert md["tokenizer.ggml.add_bos_token"] is True
        tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
        assert len(tokens) == cfg["vocab_size"] > len(tok)  # padded up to the embedding size
        assert tokens[-1] == f"[PAD{cfg['vocab_size'] - 1}]" and types[-1] == 5  # UNUSED
        think = tok.convert_tokens_to_ids("<think>")
        assert types[think] == 4  # USER_DEFINED (a plain added token), not CONTROL
        assert md["tokenizer.chat_template"].startswith("{{ bos_token }}")


def test_llama3_rope_freqs(converted) -> None:
    import gguf

    from glm_edge_convert.arch_base import ModelParams
    from glm_edge_convert.arch_llama import llama3_rope_factors

    d, md, _tok, path = converted["llama"]
    cfg = _cfg(d)
    reader = gguf.GGUFReader(str(path))
    freqs = next(t for t in reader.tensors if t.name == "rope_freqs.weight")
    values = np.array(freqs.data, dtype=np.float32)
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    assert values.shape == (head_dim // 2,)
    # with original context 64: the fastest frequencies are untouched, the slowest divided by the factor
    assert values[0] == 1.0 and values[-1] == pytest.approx(8.0)
    p = ModelParams("LlamaForCausalLM", "llama", 2, 64, 96, 4, 2, head_dim, head_dim, 500000.0, 1e-5, 4096, 10,
                    rope_scaling=cfg["rope_parameters"])
    assert np.allclose(values, llama3_rope_factors(p))


def test_chat_template_override(converted, tmp_path: Path) -> None:
    d = converted["qwen2"][0]
    tpl = tmp_path / "t.jinja"
    tpl.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    out = convert_to_gguf(d, tmp_path / "o.gguf", chat_template=tpl, progress=False)
    assert gguf_metadata(out)["tokenizer.chat_template"] == tpl.read_text()
    out = convert_to_gguf(d, tmp_path / "o.gguf", chat_template="{{ messages[0]['content'] }}", progress=False)
    assert gguf_metadata(out)["tokenizer.chat_template"] == "{{ messages[0]['content'] }}"
