"""The request log line (api/observe.py) in process: the real app on the real engine and embedded GGUF, and on the
real MiniLM embedder. The prompt text is in the line only with log_prompts; the JSON formatter writes the line's
fields as keys. Nothing is mocked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from glm_edge.api.app import create_app
from glm_edge.loader import load_chat, load_embedder
from glm_edge.registry import ModelRegistry
from glm_edge.resolve import resolve_chat, resolve_embedding
from glm_edge.server import JsonFormatter
from glm_edge.settings import Settings

MARKER = "pelican-marmalade-0815"


def request_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "glm_edge.request" and request_id in r.getMessage()]


def test_prompt_text_only_with_log_prompts(default_gguf: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(parallel=1, ctx_size=512, threads=2)
    model = load_chat(resolve_chat("gemma-3-270m"), settings)
    registry = ModelRegistry(chat={model.id: model})
    body = {"messages": [{"role": "user", "content": f"Say {MARKER}."}], "max_tokens": 3, "temperature": 0}
    caplog.set_level(logging.INFO, logger="glm_edge.request")
    try:
        with TestClient(create_app(Settings(log_prompts=True), registry=registry)) as asked, \
                TestClient(create_app(Settings(), registry=registry)) as default:
            shown = asked.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "with-prompt"})
            hidden = default.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "without-prompt"})
    finally:
        model.close()
    assert shown.status_code == hidden.status_code == 200

    [with_prompt] = request_lines(caplog, "with-prompt")
    fields = getattr(with_prompt, "fields")
    assert MARKER in fields["prompt"] and MARKER in with_prompt.getMessage()
    assert fields["prompt_tokens"] == shown.json()["usage"]["prompt_tokens"]
    assert fields["completion_tokens"] == shown.json()["usage"]["completion_tokens"]

    [without] = request_lines(caplog, "without-prompt")
    assert "prompt" not in getattr(without, "fields")
    assert MARKER not in without.getMessage()
    assert not any(MARKER in r.getMessage() for r in caplog.records if r is not with_prompt)

    line = json.loads(JsonFormatter().format(without))
    assert line["request_id"] == "without-prompt" and line["route"] == "/v1/chat/completions"
    assert line["status"] == 200 and line["model"] == model.id and line["logger"] == "glm_edge.request"
    assert MARKER not in json.dumps(line)


def test_embedding_request_line_names_its_model_and_tokens(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(embed_threads=1)
    embedder = load_embedder(resolve_embedding("all-MiniLM-L6-v2"), settings)
    registry = ModelRegistry(embedders={embedder.id: embedder})
    caplog.set_level(logging.INFO, logger="glm_edge.request")
    with TestClient(create_app(settings, registry=registry)) as client:
        res = client.post("/v1/embeddings", json={"model": embedder.id, "input": [f"a {MARKER}", "two"]},
                          headers={"X-Request-Id": "embedding-line"})
    assert res.status_code == 200
    [line] = request_lines(caplog, "embedding-line")
    fields = getattr(line, "fields")
    assert fields["route"] == "/v1/embeddings" and fields["status"] == 200 and fields["model"] == embedder.id
    assert fields["prompt_tokens"] == res.json()["usage"]["prompt_tokens"] > 0
    assert fields["completion_tokens"] is None and fields["ttft_seconds"] is None
    assert MARKER not in line.getMessage()
