"""The real server on real-shape GLM-4, GLM-Z1 and R1-distill GGUFs (tiny, random weights, written by
`glm-edge synth` in about a second): the catalog's template, family, parsers and stop ids all apply."""

from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest

from glm_edge_convert import synthesize
from tests.server_process import running_server

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather of a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "北京的天气如何？"}]


@pytest.fixture(scope="module", params=[("glm4", "GLM-Z1-9B-0414"), ("chatglm", "glm-4-9b-chat"),
                                        ("qwen2", "DeepSeek-R1-Distill-Qwen-1.5B")], ids=lambda p: p[1])
def family_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    arch, model_id = request.param
    folder = tmp_path_factory.mktemp(arch)
    gguf = synthesize(arch, "tiny", folder / f"{model_id}-tiny.gguf", progress=False)
    with running_server(str(gguf), "--no-embedding", "--ctx-size", "1024", "--parallel", "2",
                        log_path=folder / "serve.log") as url:
        yield url, model_id


def chat(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"max_tokens": 24, "temperature": 0, **body}, timeout=120)


def stream_text(url: str, **body: object) -> tuple[str, str, list[str]]:
    reasoning, content, finishes = "", "", []
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=120,
                      json={"max_tokens": 24, "temperature": 0, "stream": True, **body}) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk["choices"]:
                reasoning += choice["delta"].get("reasoning_content") or ""
                content += choice["delta"].get("content") or ""
                if choice.get("finish_reason"):
                    finishes.append(choice["finish_reason"])
    return reasoning, content, finishes


def test_family_serves_with_catalog_facts(family_server: tuple[str, str]) -> None:
    url, model_id = family_server
    models = httpx.get(f"{url}/v1/models").json()["data"]
    assert [m["id"] for m in models] == [model_id]  # the file name maps onto the catalog entry
    res = chat(url, messages=MESSAGES)
    assert res.status_code == 200, res.text
    message = res.json()["choices"][0]["message"]
    reasoning, content, finishes = stream_text(url, messages=MESSAGES)
    assert finishes == [res.json()["choices"][0]["finish_reason"]]
    assert (message["reasoning_content"] or "") == reasoning
    assert (message["content"] or "") == content
    if model_id.startswith(("GLM-Z1", "DeepSeek-R1")):
        # the prompt opens <think>; random weights never close it, so the whole answer is reasoning
        assert reasoning and not content
    else:
        assert content and message["reasoning_content"] is None


def test_tools_follow_the_family(family_server: tuple[str, str]) -> None:
    url, model_id = family_server
    res = chat(url, messages=MESSAGES, tools=TOOLS)
    if model_id.startswith("DeepSeek-R1"):
        assert res.status_code == 400 and res.json()["error"]["param"] == "tools"
    else:
        assert res.status_code == 200, res.text
        assert res.json()["usage"]["prompt_tokens"] > chat(url, messages=MESSAGES).json()["usage"]["prompt_tokens"]
    followup = MESSAGES + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 25}'},
    ]
    res = chat(url, messages=followup, tools=TOOLS)
    assert res.status_code == (400 if model_id.startswith("DeepSeek-R1") else 200), res.text


def test_tokenize_glm_route(family_server: tuple[str, str]) -> None:
    url, model_id = family_server
    res = httpx.post(f"{url}/tokenize", json={"prompt": "你好，世界"}).json()
    assert res["model"] == model_id and len(res["tokenIds"]) == len(res["tokens"]) > 0
    bare = httpx.post(f"{url}/tokenize", json={"prompt": "你好，世界", "add_special_tokens": False}).json()
    if model_id.startswith("DeepSeek-R1"):  # the R1 distills' tokenizer adds its BOS (add_bos_token: true)
        assert res["tokens"][0] == "<｜begin▁of▁sentence｜>" and res["tokenIds"][1:] == bare["tokenIds"]
    else:  # GLM's encode() starts with its prefix tokens
        assert res["tokens"][:2] == ["[gMASK]", "<sop>"] and res["tokenIds"][2:] == bare["tokenIds"]
