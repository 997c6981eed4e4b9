"""What the loader takes from a GGUF that glm-edge converted, and how it guesses an unknown model's family."""

from __future__ import annotations

from pathlib import Path

import gguf

from glm_edge.catalog import load_catalog
from glm_edge.loader import _infer_family, gguf_generation_facts
from glm_edge_convert import synthesize


def test_stop_ids_come_from_the_converted_gguf(tmp_path: Path) -> None:
    path = synthesize("chatglm", "tiny", tmp_path / "my-model.gguf", progress=False)
    defaults, stops = gguf_generation_facts(path)
    eos = gguf.GGUFReader(str(path)).fields["tokenizer.ggml.eos_token_id"].contents()
    assert eos in stops and len(stops) == 3  # <|endoftext|>, <|user|>, <|observation|> of its own vocabulary
    assert defaults == {}


def test_family_guess_from_templates() -> None:
    catalog = load_catalog()
    for model_id, arch in [("glm-4-9b-chat", "chatglm"), ("GLM-4-9B-0414", "glm4"), ("GLM-Z1-9B-0414", "glm4"),
                           ("DeepSeek-R1-Distill-Qwen-7B", "qwen2"), ("DeepSeek-R1-Distill-Llama-8B", "llama"),
                           ("gemma-3-270m", "gemma3")]:
        entry = catalog.get(model_id)
        assert _infer_family(arch, entry.template_text()) == entry.chat_family, model_id
    assert _infer_family("llama", "{{ messages }}") == "generic"
