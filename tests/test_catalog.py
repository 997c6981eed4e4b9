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


GLM_FAMILY = ["chatglm3-6b", "chatglm3-6b-32k", "chatglm3-6b-128k", "glm-4-9b", "glm-4-9b-chat-1m",
              "glm-edge-1.5b-chat", "glm-edge-4b-chat"]


def test_glm_family_members_are_there_and_convert_to_chatglm() -> None:
    from glm_edge_convert.arch_registry import converter_for

    catalog = load_catalog()
    for model_id in GLM_FAMILY:
        entry = catalog.get(model_id)
        assert entry is not None and entry.kind == "chat", model_id
        assert entry.repo.startswith("THUDM/") and entry.stop_token_ids and entry.context_length > 0, model_id
        assert converter_for(entry.architecture).gguf_arch == entry.gguf_arch == "chatglm", model_id
        if entry.template:
            assert entry.template_text(), model_id


def test_chatglm3_facts_come_from_its_own_files() -> None:
    """Context, architecture, stop ids and defaults as THUDM's config.json, tokenizer and chat code give them."""
    import importlib.util
    import json
    import re
    from pathlib import Path

    data = Path(__file__).parent / "data" / "chatglm3-6b"
    config = json.loads((data / "config.json").read_text())
    spec = importlib.util.spec_from_file_location("thudm_tok3", data / "tokenization_chatglm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sp = module.SPTokenizer(str(data / "tokenizer.model"))
    entry = load_catalog().get("chatglm3-6b")
    assert entry.context_length == config["seq_length"]
    assert entry.architecture == config["architectures"][0]
    # modeling_chatglm.py chat(): eos_token_id = [tokenizer.eos_token_id, <|user|>, <|observation|>]
    assert entry.stop_token_ids == (config["eos_token_id"], sp.special_tokens["<|user|>"],
                                    sp.special_tokens["<|observation|>"])
    assert sp.special_tokens["<|assistant|>"] not in entry.stop_token_ids
    for variant in ("chatglm3-6b-32k", "chatglm3-6b-128k"):  # one tokenizer for the three
        assert load_catalog().get(variant).stop_token_ids == entry.stop_token_ids
    assert entry.tool_parser == "" and entry.chat_family == "generic"  # not GLM-4's "[gMASK]<sop>" format
    # modeling_chatglm.py's chat(): the sampling defaults of THUDM's own chat loop
    modeling = (data / "modeling_chatglm.py").read_text()
    signature = modeling[modeling.index("    def chat("):modeling.index("):", modeling.index("    def chat("))]
    assert {k: float(v) for k, v in re.findall(r"(top_p|temperature)=([\d.]+)", signature)} == entry.defaults
