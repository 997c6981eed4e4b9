"""LiteLLM's SDK (`litellm.completion`, `litellm.embedding` with model "openai/<id>" and an api_base) against the
real server on the embedded default chat model, Qwen2.5-Coder-0.5B-Instruct, and all-MiniLM-L6-v2: an answer,
streamed and not, a tool call, embeddings. One server for the module; greedy, short answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests.server_process import running_default

# LiteLLM fetches its model-cost map from GitHub at import unless told to use the copy it ships
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Iterator[dict[str, Any]]:
    with running_default(tmp_path_factory.mktemp("litellm-server"), embeddings=True) as url:
        yield {"api_base": url, "api_key": "unused", "timeout": 180, "num_retries": 0}


def test_completion(server: dict[str, Any]) -> None:
    answer = litellm.completion(model=f"openai/{MODEL}", messages=FRANCE, temperature=0, max_tokens=32, **server)
    choice = answer.choices[0]
    assert "Paris" in choice.message.content and choice.finish_reason == "stop"
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 0


def test_completion_streamed(server: dict[str, Any]) -> None:
    chunks = list(litellm.completion(model=f"openai/{MODEL}", messages=FRANCE, temperature=0, max_tokens=32,
                                     stream=True, **server))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert "Paris" in text and finish == ["stop"]
    assert text == litellm.completion(model=f"openai/{MODEL}", messages=FRANCE, temperature=0, max_tokens=32,
                                      **server).choices[0].message.content


def test_tool_call(server: dict[str, Any]) -> None:
    answer = litellm.completion(model=f"openai/{MODEL}", messages=[
        {"role": "user", "content": "What's the weather in Paris?"}], tools=[WEATHER_TOOL], temperature=0,
        max_tokens=64, **server)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert "Paris" in json.loads(call.function.arguments)["city"]


def test_embedding(server: dict[str, Any]) -> None:
    texts = ["The food was delicious.", "The meal was tasty.", "Quarterly revenue fell."]
    result = litellm.embedding(model="openai/all-MiniLM-L6-v2", input=texts, **server)
    vectors = np.array([d["embedding"] for d in result.data])
    assert vectors.shape == (3, 384) and [d["index"] for d in result.data] == [0, 1, 2]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert result.usage.prompt_tokens > 0
