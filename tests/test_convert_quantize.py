"""Quantization through llama.cpp's llama_model_quantize, in one step from a checkpoint or from a GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glm_edge.errors import ConfigError
from glm_edge_convert import convert_to_gguf, quantize_gguf, synthesize
from glm_edge_convert.parity import compare_logits, gguf_metadata, gguf_tensor_types, llama_logits
from glm_edge_convert.tiny import build_tiny_checkpoint


def test_convert_straight_to_q4_k_m(tmp_path: Path) -> None:
    model, tok = build_tiny_checkpoint("qwen2", tmp_path / "hf", seed=5)
    out = convert_to_gguf(tmp_path / "hf", tmp_path / "m-q4_k_m.gguf", "Q4_K_M", threads=2, progress=False)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["m-q4_k_m.gguf"]  # the F16 step is gone
    md = gguf_metadata(out)
    assert md["general.file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert md["tokenizer.ggml.pre"] == "qwen2"  # metadata survives quantization
    ids = tok.encode("The quick brown fox 你好 🚀", add_special_tokens=False)
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    # ~4.5 bits per weight on a 64-wide model (most tensors fall back to q5_0): a loose bound
    parity = compare_logits(ref, llama_logits(out, ids))
    assert parity.argmax_agreement >= 0.6 and parity.relative_max_diff <= 0.5, str(parity)


@pytest.mark.parametrize("qtype,ftype,main", [("Q8_0", 7, "Q8_0"), ("Q6_K", 18, "Q6_K"), ("Q5_K_M", 17, "Q5_K"),
                                              ("Q4_K_M", 15, "Q4_K"), ("Q4_0", 2, "Q4_0")])
def test_quantize_gguf_types(tmp_path: Path, qtype: str, ftype: int, main: str) -> None:
    f16 = synthesize("glm4", "tiny", tmp_path / "f16.gguf", "F16", progress=False)
    out = quantize_gguf(f16, tmp_path / f"{qtype}.gguf", qtype, threads=2)
    assert gguf_metadata(out)["general.file_type"] == ftype
    types = gguf_tensor_types(out)
    assert types["blk.0.attn_q.weight"] == main
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert out.stat().st_size < f16.stat().st_size
    assert llama_logits(out, [1, 2, 3, 4]).shape == (4, 1024)


def test_quantize_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        quantize_gguf(tmp_path / "missing.gguf", tmp_path / "o.gguf", "Q4_K_M")
    f16 = synthesize("llama", "tiny", tmp_path / "f16.gguf", "F16", progress=False)
    with pytest.raises(ConfigError, match="unknown quantization type"):
        quantize_gguf(f16, tmp_path / "o.gguf", "Q3_X")
    with pytest.raises(ConfigError, match="different file"):
        quantize_gguf(f16, f16, "Q8_0")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(ConfigError, match="failed to quantize"):
        quantize_gguf(bad, tmp_path / "o.gguf", "Q8_0")
    assert not (tmp_path / "o.gguf").exists()
