"""What the loader takes from a GGUF that glm-edge converted, and how it guesses an unknown model's family."""

from __future__ import annotations

from pathlib import Path

import gguf

from glm_edge.catalog import load_catalog
from glm_edge.chat.conversation import detect_family
from glm_edge.loader import gguf_generation_facts
from glm_edge_convert import synthesize


def test_stop_ids_come_from_the_converted_gguf(tmp_path: Path) -> None:
    path = synthesize("chatglm", "tiny", tmp_path / "my-model.gguf", progress=False)
    defaults, stops = gguf_generation_facts(path)
    eos = gguf.GGUFReader(str(path)).fields["tokenizer.ggml.eos_token_id"].contents()
    assert eos in stops and len(stops) == 3  # <|endoftext|>, <|user|>, <|observation|> of its own vocabulary
    assert defaults == {}


def test_family_guess_from_templates() -> None:
    catalog = load_catalog()
    for model_id in ["glm-4-9b-chat", "GLM-4-9B-0414", "GLM-Z1-9B-0414", "DeepSeek-R1-Distill-Qwen-7B",
                     "DeepSeek-R1-Distill-Llama-8B", "gemma-3-270m"]:
        entry = catalog.get(model_id)
        assert detect_family(entry.template_text()) == entry.chat_family, model_id
    assert detect_family("{{ messages }}") == "generic"
