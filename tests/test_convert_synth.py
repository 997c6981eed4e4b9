"""Synthetic models: real shapes and vocab sizes, a working tokenizer, loadable and quantizable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glm_edge.errors import ConfigError
from glm_edge_convert import synthesize
from glm_edge_convert.parity import gguf_metadata, llama_logits, llama_tokenize
from glm_edge_convert.synth import preset, tensor_shapes

# Published parameter counts of the real models.
REAL_PARAMS = {("chatglm", "9b"): 9.40e9, ("glm4", "9b"): 9.40e9, ("qwen2", "1.5b"): 1.78e9,
               ("qwen2", "7b"): 7.62e9, ("llama", "8b"): 8.03e9}


@pytest.mark.parametrize("key", list(REAL_PARAMS))
def test_presets_have_the_real_models_size(key: tuple[str, str]) -> None:
    _name, p = preset(*key)
    total = sum(int(np.prod(shape)) for name, shape, _ in tensor_shapes(p) if name != "rope_freqs.weight")
    assert total == pytest.approx(REAL_PARAMS[key], rel=0.02)


@pytest.mark.parametrize("arch", ["chatglm", "glm4", "qwen2", "llama"])
def test_tiny_synth_loads_tokenizes_and_runs(arch: str, tmp_path: Path) -> None:
    out = synthesize(arch, "tiny", tmp_path / "m.gguf", "Q8_0", progress=False)
    md = gguf_metadata(out)
    assert md["general.architecture"] == arch
    assert len(md["tokenizer.ggml.tokens"]) == md[f"{arch}.vocab_size"] == 1024
    ids = llama_tokenize(out, "the quick brown fox")
    assert 0 < len(ids) < len("the quick brown fox")  # merges work: fewer tokens than bytes
    tokens = md["tokenizer.ggml.tokens"]
    assert "".join(tokens[i] for i in ids).replace("Ġ", " ") == "the quick brown fox"
    special = (["[gMASK]", "<sop>", "<|user|>"] if arch in ("chatglm", "glm4")
               else ["<｜begin▁of▁sentence｜>", "<｜User｜>"])
    sp_ids = llama_tokenize(out, "".join(special), special=True)
    assert [tokens[i] for i in sp_ids] == special
    logits = llama_logits(out, ids)
    assert logits.shape == (len(ids), 1024) and np.isfinite(logits).all() and logits.std() > 0


def test_real_special_ids(tmp_path: Path) -> None:
    from glm_edge_convert.synth_presets import specials_for

    glm = specials_for("glm4", "9b", 151552)
    assert glm[151329] == "<|endoftext|>" and glm[151331] == "[gMASK]" and glm[151338] == "<|observation|>"
    assert specials_for("qwen2", "1.5b", 151936)[151643] == "<｜end▁of▁sentence｜>"
    assert specials_for("llama", "8b", 128256)[128000] == "<｜begin▁of▁sentence｜>"


def test_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no synthetic preset for --arch glm4 --size 70b"):
        synthesize("glm4", "70b", tmp_path / "m.gguf")
