"""LlamaIndex's `OpenAILike` (llama-index-llms-openai-like, the integration LlamaIndex documents for
OpenAI-compatible servers) against the real server on the embedded default chat model, Qwen2.5-Coder-0.5B-Instruct:
complete, chat and stream_chat with is_chat_model=True. One server for the module; greedy, short answers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.llms.openai_like import OpenAILike

from tests.server_process import running_default

MODEL = "qwen2.5-coder-0.5b-instruct"
FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Iterator[OpenAILike]:
    with running_default(tmp_path_factory.mktemp("llamaindex-server")) as url:
        yield OpenAILike(model=MODEL, api_base=url, api_key="unused", is_chat_model=True,
                         context_window=2048, temperature=0, max_tokens=32, max_retries=0, timeout=180)


def test_complete(llm: OpenAILike) -> None:
    answer = llm.complete(FRANCE)  # a chat model: complete() goes through /v1/chat/completions
    assert "Paris" in answer.text


def test_chat(llm: OpenAILike) -> None:
    answer = llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="You are a helpful assistant."),
                       ChatMessage(role=MessageRole.USER, content=FRANCE)])
    assert answer.message.role == MessageRole.ASSISTANT and "Paris" in (answer.message.content or "")


def test_stream_chat(llm: OpenAILike) -> None:
    messages = [ChatMessage(role=MessageRole.USER, content=FRANCE)]
    chunks = list(llm.stream_chat(messages))
    assert len(chunks) > 3
    text = "".join(c.delta or "" for c in chunks)
    assert text == chunks[-1].message.content  # each delta once: the last chunk holds their concatenation
    assert text == llm.chat(messages).message.content and "Paris" in text
