"""The catalog holds the facts the design names, and rejects entries it does not understand."""

from __future__ import annotations

import pytest

from glm_edge.catalog import load_catalog, parse_catalog

CHAT = ["glm-4-9b-chat", "glm-4-9b-chat-hf", "GLM-4-9B-0414", "GLM-Z1-9B-0414", "DeepSeek-R1-Distill-Qwen-1.5B",
        "DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Qwen-32B",
        "DeepSeek-R1-Distill-Llama-8B"]
EMBEDDING = ["bge-m3", "bge-small-zh-v1.5", "bge-large-zh-v1.5", "text2vec-large-chinese",
             "text2vec-base-chinese-paraphrase", "text2vec-base-multilingual", "all-MiniLM-L6-v2"]


def test_every_model_of_the_design_is_there() -> None:
    catalog = load_catalog()
    for model_id in CHAT:
        entry = catalog.get(model_id)
        assert entry is not None and entry.kind == "chat", model_id
        assert entry.repo and entry.architecture and entry.gguf_arch and entry.stop_token_ids
        assert entry.template_text(), model_id  # the template file exists
        assert "temperature" in entry.defaults and "top_p" in entry.defaults
    for model_id in EMBEDDING:
        entry = catalog.get(model_id)
        assert entry is not None and entry.kind == "embedding", model_id
        assert entry.pooling in ("cls", "mean") and entry.dimensions > 0 and entry.max_tokens > 0


def test_glm4_facts() -> None:
    entry = load_catalog().get("glm-4-9b-chat")
    assert set(entry.stop_token_ids) == {151329, 151336, 151338}
    assert 151337 not in entry.stop_token_ids  # <|assistant|> may start a second call
    assert entry.tool_parser == "glm4" and entry.defaults == {"temperature": 0.8, "top_p": 0.8}
    r1 = load_catalog().get("DeepSeek-R1-Distill-Qwen-7B")
    assert r1.reasoning_parser == "deepseek_r1" and r1.tool_parser == ""
    assert r1.defaults == {"temperature": 0.6, "top_p": 0.95}


def test_lookup_is_case_insensitive_and_by_repo() -> None:
    catalog = load_catalog()
    assert catalog.get("glm-4-9b-0414").id == "GLM-4-9B-0414"
    assert catalog.by_repo("thudm/glm-4-9b-chat").id == "glm-4-9b-chat"


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="temprature"):
        parse_catalog('[models.x]\nkind = "chat"\nrepo = "a/b"\narchitecture = "X"\ntemprature = 1\n')
