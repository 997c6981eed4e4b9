"""LangChain's OpenAI integration (`langchain_openai`) against the real server on the embedded default chat model,
Qwen2.5-Coder-0.5B-Instruct, and the all-MiniLM-L6-v2 embedding model: ChatOpenAI's invoke, stream, batch,
bind_tools and with_structured_output (function_calling, json_schema, json_mode), and OpenAIEmbeddings.
One server for the module; greedy decoding and short answers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field

from tests.server_process import running_default

MODEL = "qwen2.5-coder-0.5b-instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Iterator[str]:
    with running_default(tmp_path_factory.mktemp("langchain-server"), embeddings=True) as url:
        yield url


@pytest.fixture(scope="module")
def llm(base_url: str) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=base_url, api_key="unused", temperature=0, max_tokens=32,
                      max_retries=0, timeout=180)


def test_invoke(llm: ChatOpenAI) -> None:
    answer = llm.invoke(FRANCE)
    assert isinstance(answer, AIMessage) and "Paris" in answer.content
    assert answer.response_metadata["finish_reason"] == "stop" and answer.response_metadata["model_name"] == MODEL
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    assert not answer.tool_calls


def test_stream(llm: ChatOpenAI) -> None:
    chunks = list(llm.stream(FRANCE))
    assert len(chunks) > 3 and all(isinstance(c, AIMessageChunk) for c in chunks)
    whole = "".join(str(c.content) for c in chunks)
    assert whole == llm.invoke(FRANCE).content  # greedy: the stream says what the one-shot answer says


def test_batch(llm: ChatOpenAI) -> None:
    france, italy = llm.batch([FRANCE, "What is the capital of Italy?"])
    assert "Paris" in france.content and "Rome" in italy.content


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city"""
    return f"sunny in {city}"


def test_bind_tools_returns_a_tool_call(llm: ChatOpenAI) -> None:
    answer = llm.bind_tools([get_weather]).invoke("What's the weather in Paris?")
    assert answer.response_metadata["finish_reason"] == "tool_calls" and answer.content == ""
    assert len(answer.tool_calls) == 1
    call = answer.tool_calls[0]
    assert call["name"] == "get_weather" and "Paris" in call["args"]["city"] and call["id"].startswith("call_")
    assert get_weather.invoke(call).content == "sunny in Paris"  # the call runs the tool as LangChain gives it


class City(BaseModel):
    """A city and the country it is in"""

    name: str = Field(description="the city's name")
    country: str = Field(description="the country the city is in")


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_with_structured_output(llm: ChatOpenAI, method: str) -> None:
    """function_calling forces a call by a named tool_choice (a grammar), json_schema sends response_format
    json_schema (a grammar of the schema), json_mode sends json_object and relies on the prompt for the keys."""
    question = "Paris is the capital of which country?"
    if method == "json_mode":
        question += ' Answer in JSON with the keys "name" (the city) and "country".'
    result = llm.with_structured_output(City, method=method, include_raw=True).invoke(question)
    assert result["parsing_error"] is None, result["raw"]
    assert result["parsed"] == City(name="Paris", country="France")
    raw = result["raw"]
    if method == "function_calling":
        assert [c["name"] for c in raw.tool_calls] == ["City"]
    else:
        assert not raw.tool_calls and raw.content.lstrip().startswith("{")


def test_openai_embeddings(base_url: str) -> None:
    """LangChain's OpenAIEmbeddings with check_embedding_ctx_length=False sends the texts themselves, which is
    what its documentation says to do for servers other than OpenAI's. (By default it sends tiktoken cl100k_base
    token ids, which offline it cannot even compute: tiktoken downloads that vocabulary at first use.)"""
    embeddings = OpenAIEmbeddings(model=EMBEDDING_MODEL, base_url=base_url, api_key="unused",
                                  check_embedding_ctx_length=False, max_retries=0)
    texts = ["The food was delicious and the waiter was kind.", "The meal was tasty and the staff friendly.",
             "Quarterly revenue fell by four percent."]
    documents = np.array(embeddings.embed_documents(texts))
    query = np.array(embeddings.embed_query(texts[0]))
    assert documents.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(query, documents[0], atol=1e-6)
    reference = openai.OpenAI(base_url=base_url, api_key="unused").embeddings.create(
        model=EMBEDDING_MODEL, input=texts, encoding_format="float")
    np.testing.assert_allclose(documents, [d.embedding for d in reference.data], atol=1e-6)
    similarity = documents @ documents.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # the paraphrase is nearer than the unrelated sentence
