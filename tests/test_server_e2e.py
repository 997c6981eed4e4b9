"""End to end: the real server with the real embedded models, called with the official openai client and
plain HTTP. Nothing is mocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import openai
import pytest

from tests.server_process import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, default_gguf: Path) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with running_server("gemma-3-270m", "--parallel", "4", "--ctx-size", "1024", "--threads", "2",
                        log_path=log) as url:
        yield url


@pytest.fixture()
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)


MESSAGES = [{"role": "user", "content": "Write one sentence about the sea."}]


def test_chat_stream_equals_non_stream(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="gemma-3-270m", messages=MESSAGES, temperature=0, max_tokens=24)
    text = full.choices[0].message.content
    assert text and full.choices[0].finish_reason in ("stop", "length")
    assert full.usage.completion_tokens > 0 and full.usage.prompt_tokens > 0

    stream = client.chat.completions.create(model="gemma-3-270m", messages=MESSAGES, temperature=0, max_tokens=24,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert joined == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [full.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_embeddings_are_normalised(client: openai.OpenAI) -> None:
    texts = ["The food was delicious.", "A completely different sentence.", "你好，我是谁？"]
    result = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    assert [d.index for d in result.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert result.usage.prompt_tokens > 0


def test_models_list_both(client: openai.OpenAI, server: str) -> None:
    ids = {m.id for m in client.models.list().data}
    assert {"gemma-3-270m", "all-MiniLM-L6-v2", "use-multilingual-v3-int8"} <= ids
    glm = httpx.get(f"{server}/models").json()
    assert glm["object"] == "list"
    for card in glm["data"]:
        assert set(card) == {"id", "object", "created", "owned_by", "root", "parent", "permission"}
        assert card["owned_by"] == "owner" and card["root"] is None and card["permission"] is None
    kinds = {(c["id"], c["object"]) for c in glm["data"]}
    assert ("gemma-3-270m", "chat.completion") in kinds and ("all-MiniLM-L6-v2", "embedding") in kinds


def test_default_embedding_model_handles_chinese(server: str) -> None:
    """Requests that name no model get the multilingual encoder: Chinese paraphrases land close together."""
    body = {"prompt": ["今天天气很好", "今天的天气非常不错", "我喜欢吃苹果"]}
    res = httpx.post(f"{server}/embedding", json=body, timeout=60).json()
    assert res["model"] == "use-multilingual-v3-int8" and res["object"] == "embedding"
    a, b, c = (np.array(v) for v in res["data"])
    assert a @ b > a @ c


def test_glm_api_chat_and_tokenize(server: str) -> None:
    body = {"model": "gemma-3-270m", "stream": False, "temperature": 0, "max_tokens": 8,
            "history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            "messages": [{"role": "user", "content": "How are you?"}], "repetition_penalty": 1.1, "top_k": 40}
    answer = httpx.post(f"{server}/chat", json=body, timeout=120).json()
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["role"] == "assistant"
    tok = httpx.post(f"{server}/tokenize", json={"prompt": "给你一个机会，你会想逃离吗？", "max_tokens": 5}).json()
    assert set(tok) == {"tokenIds", "tokens", "model", "object"} and tok["object"] == "tokenizer"
    assert len(tok["tokenIds"]) == len(tok["tokens"]) <= 5


def test_stop_string_never_leaks(client: openai.OpenAI) -> None:
    base = client.chat.completions.create(model="gemma-3-270m", messages=MESSAGES, temperature=0, max_tokens=24)
    text = base.choices[0].message.content
    words = text.split()
    assert len(words) >= 3
    stop = words[2]
    cut = client.chat.completions.create(model="gemma-3-270m", messages=MESSAGES, temperature=0, max_tokens=24,
                                         stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in cut.choices[0].message.content
    assert text.startswith(cut.choices[0].message.content)


@pytest.mark.parametrize("body, status, param", [
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, 400, "temperature"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, None),
    ({"messages": [{"role": "user", "content": "hi"}], "model": "no-such-model"}, 404, "model"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": "many"}, 400, "n"),
    ({"messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, 400, "tools"),
])
def test_bad_requests_get_openai_errors(server: str, body: dict, status: int, param: str | None) -> None:
    res = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert res.status_code == status
    error = res.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param:
        assert param in (error["param"] or "")


def test_garbage_and_unknown_routes(server: str) -> None:
    res = httpx.post(f"{server}/v1/chat/completions", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert res.status_code == 400 and "error" in res.json()
    res = httpx.get(f"{server}/v1/nothing-here")
    assert res.status_code == 404 and res.json()["error"]["type"] == "not_found_error"
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}


def test_context_overflow_is_a_400_with_numbers(server: str) -> None:
    long = "word " * 3000
    res = httpx.post(f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": long}]},
                     timeout=60)
    assert res.status_code == 400
    assert "1024" in res.json()["error"]["message"]


def test_metrics_and_page(server: str) -> None:
    text = httpx.get(f"{server}/metrics").text
    assert "glm_edge_http_requests_total" in text and "glm_edge_" in text
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "<title>glm-edge</title>" in page.text


def test_stream_that_fails_before_its_first_token_is_a_plain_http_400(server: str) -> None:
    """A streaming request that fails before the first token gets a plain HTTP error, not a broken stream."""
    body = {"messages": [{"role": "user", "content": "word " * 3000}], "stream": True}
    res = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert res.status_code == 400 and json.loads(res.text)["error"]["code"] == "context_length_exceeded"


def _engine_stat(server: str, name: str) -> float:
    for line in httpx.get(f"{server}/metrics").text.splitlines():
        if line.startswith(f"glm_edge_{name}{{") and 'model="gemma-3-270m"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def _wait_idle(server: str) -> None:
    import time

    for _ in range(200):
        if _engine_stat(server, "slots_busy") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("a slot stayed busy after its client went away")


@pytest.mark.parametrize("stream", [True, False])
def test_client_that_goes_away_frees_its_slot(server: str, stream: bool) -> None:
    _wait_idle(server)
    aborted = _engine_stat(server, "requests_aborted_total")
    body = {"model": "gemma-3-270m", "messages": MESSAGES, "max_tokens": 900, "temperature": 0.7,
            "stream": stream}
    if stream:
        with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=60) as res:
            lines = res.iter_lines()
            for _ in range(4):
                next(lines)  # a few chunks arrive, then the client hangs up
    else:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server}/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=0.5))
    _wait_idle(server)
    assert _engine_stat(server, "requests_aborted_total") == aborted + 1


def test_text_completions(client: openai.OpenAI) -> None:
    full = client.completions.create(model="gemma-3-270m", prompt="The capital of France is", max_tokens=12,
                                     temperature=0, logprobs=2)
    text = full.choices[0].text
    assert text and full.usage.completion_tokens == len(full.choices[0].logprobs.tokens) == 12
    assert all(len(top) <= 2 for top in full.choices[0].logprobs.top_logprobs)
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="gemma-3-270m", prompt="The capital of France is", max_tokens=12, temperature=0, stream=True)
        if c.choices)
    assert streamed == text
    echoed = client.completions.create(model="gemma-3-270m", prompt="The capital of France is", max_tokens=12,
                                       temperature=0, echo=True)
    assert echoed.choices[0].text.endswith(text) and "The capital of France is" in echoed.choices[0].text


def test_full_queue_is_429_with_retry_after(tmp_path: Path, default_gguf: Path) -> None:
    import threading

    body = {"messages": MESSAGES, "max_tokens": 16, "temperature": 0.7}
    with running_server("gemma-3-270m", "--no-embedding", "--parallel", "1", "--max-queue", "1", "--ctx-size", "4096",
                        log_path=tmp_path / "serve.log") as url:
        # holds the slot until this client hangs up: Gemma's <eos> and <end_of_turn> are banned
        long = {**body, "max_tokens": 4000, "stream": True, "logit_bias": {"1": -100, "106": -100}}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=long, timeout=60) as first:
            lines = first.iter_lines()  # keep a reference: a collected iterator closes the response
            next(lines)  # the only slot is busy
            waiting = threading.Thread(target=lambda: httpx.post(f"{url}/v1/chat/completions", json=body,
                                                                 timeout=60))
            waiting.start()  # fills the queue
            for _ in range(200):
                if _engine_stat(url, "requests_waiting") == 1:
                    break
                threading.Event().wait(0.05)
            res = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
            assert res.status_code == 429
            assert res.json()["error"]["type"] == "rate_limit_error" and int(res.headers["Retry-After"]) >= 1
        waiting.join(timeout=60)
