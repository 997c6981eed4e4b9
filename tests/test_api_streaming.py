"""api/streaming.py end to end: an error after the 200 reaches the client as one SSE error event, then [DONE].

The real app, the real engine on the real embedded GGUF, and a real failure: the engine shuts down while
the answer is streaming (what a server shutdown or a dead decode thread does to running requests).
Nothing is mocked."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from glm_edge.api.app import create_app
from glm_edge.loader import load_chat
from glm_edge.registry import ModelRegistry
from glm_edge.resolve import resolve_chat
from glm_edge.settings import Settings


def test_error_after_the_200_is_one_sse_error_event_before_done(default_gguf: Path) -> None:
    settings = Settings(parallel=1, ctx_size=1024, threads=2)
    model = load_chat(resolve_chat(None), settings)
    registry = ModelRegistry(chat={model.id: model})
    # no end-of-generation token can end the answer early: it is still streaming when the engine goes
    never_stop = {str(t): -100.0 for t in {*model.stop_token_ids, model.engine.eos_token_id()}}
    body = {"messages": [{"role": "user", "content": "Tell me a long story about the sea."}], "stream": True,
            "temperature": 0, "max_tokens": 900, "logit_bias": never_stop}
    closed_after: list[float] = []

    def close_while_streaming() -> None:
        deadline = time.monotonic() + 120
        while model.engine.stats().get("tokens_generated", 0.0) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        closed_after.append(model.engine.stats().get("tokens_generated", 0.0))
        model.engine.close()  # the decode thread stops: every running request fails with EngineError

    closer = threading.Thread(target=close_while_streaming)
    try:
        with TestClient(create_app(Settings(), registry=registry)) as client:
            closer.start()
            res = client.post("/v1/chat/completions", json=body)
            closer.join()
    finally:
        model.close()

    assert closed_after and 3 <= closed_after[0] < 900  # the failure came mid-answer
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
    events = [block.removeprefix("data: ") for block in res.text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in res.text.split("\n\n") if block)
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    errors = [p for p in payloads if "error" in p]
    assert len(errors) == 1 and payloads[-1] is errors[0]  # one error event, right before [DONE]
    error = errors[0]["error"]
    assert error["message"] == "the engine is shut down" and error["type"] == "internal_error"
    chunks = payloads[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)  # text came before the error
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)  # the answer never finished
