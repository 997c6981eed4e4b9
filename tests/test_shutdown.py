"""End to end: SIGTERM with answers streaming from the real server. It drains (`/health` 503, new requests 503 in
the OpenAI error shape with Retry-After), lets the running answers finish within the grace period or cuts them
off with an in-stream error event, always ends every stream with `[DONE]`, and exits 0. Nothing is mocked."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from glm_edge.catalog import load_catalog
from tests.server_process import server_process

COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"  # a prompt the model keeps continuing


class Stream(threading.Thread):
    """One streamed completion read to its end in a thread: its data events, and whether text has come."""

    def __init__(self, url: str, model: str, max_tokens: int | None) -> None:
        super().__init__(daemon=True)
        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.events: list[Any] = []
        self.status = 0
        self.streaming = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        body: dict[str, Any] = {"model": self.model, "prompt": COUNTING, "temperature": 0, "stream": True,
                                "stream_options": {"include_usage": True}}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        else:  # until the context is full (/v1/completions' own default is 16 tokens), the model's
            # end-of-generation tokens banned: a base model may otherwise write <eos> within the grace period
            entry = load_catalog().get(self.model)
            assert entry is not None and entry.stop_token_ids
            body["max_tokens"] = 100_000
            body["logit_bias"] = {str(i): -100 for i in entry.stop_token_ids}
        try:
            with httpx.stream("POST", f"{self.url}/v1/completions", json=body, timeout=300) as res:
                self.status = res.status_code
                for line in res.iter_lines():  # a cut chunked body raises here
                    if not line.startswith("data: "):
                        continue
                    self.events.append("[DONE]" if line == "data: [DONE]" else json.loads(line[6:]))
                    if any(c.get("text") for e in self.events if isinstance(e, dict) for c in e.get("choices", [])):
                        self.streaming.set()
        except BaseException as exc:  # reported by the test
            self.failure = exc
        finally:
            self.streaming.set()

    def finish_reasons(self) -> list[str]:
        return [c["finish_reason"] for e in self.events if isinstance(e, dict) for c in e.get("choices", [])
                if c.get("finish_reason")]

    def errors(self) -> list[dict[str, Any]]:
        return [e["error"] for e in self.events if isinstance(e, dict) and "error" in e]


def start_streams(url: str, model: str, count: int, max_tokens: int | None) -> list[Stream]:
    streams = [Stream(url, model, max_tokens) for _ in range(count)]
    for stream in streams:
        stream.start()
    for stream in streams:
        assert stream.streaming.wait(timeout=300)
        assert stream.failure is None and stream.status == 200
    return streams


def wait_draining(url: str) -> httpx.Response:
    """/health once the server has taken the signal (uvicorn hands it over at its next tick)."""
    for _ in range(600):
        res = httpx.get(f"{url}/health", timeout=10)
        if res.status_code != 200:
            return res
        threading.Event().wait(0.05)
    raise AssertionError("the server never started draining")


def assert_unavailable(res: httpx.Response) -> None:
    assert res.status_code == 503
    error = res.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "unavailable_error" and error["code"] == "server_shutting_down"


def served_model(url: str) -> str:
    return str(httpx.get(f"{url}/v1/models").json()["data"][0]["id"])


def test_sigterm_lets_running_streams_finish_then_exits_0(tmp_path: Path, default_gguf: Path) -> None:
    log = tmp_path / "serve.log"
    with server_process("gemma-3-270m", "--no-embedding", "--parallel", "4", "--ctx-size", "512", "--threads", "2",
                        "--shutdown-grace", "120", log_path=log) as (url, proc):
        model = served_model(url)
        streams = start_streams(url, model, 4, max_tokens=160)
        proc.send_signal(signal.SIGTERM)
        health = wait_draining(url)
        assert health.status_code == 503 and health.json() == {"status": "shutting_down"}
        refused = httpx.post(f"{url}/v1/completions", json={"model": model, "prompt": "Hi", "max_tokens": 2})
        assert_unavailable(refused)
        assert int(refused.headers["retry-after"]) >= 1
        for stream in streams:
            stream.join(timeout=300)
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    for stream in streams:
        assert stream.failure is None, stream.failure
        assert stream.events[-1] == "[DONE]"
        assert stream.errors() == []
        assert len(stream.finish_reasons()) == 1
        usage = stream.events[-2]["usage"]
        assert 0 < usage["completion_tokens"] <= 160
        if stream.finish_reasons() == ["length"]:
            assert usage["completion_tokens"] == 160  # never cut short


def waiting_requests(url: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "glm_edge_requests_waiting":
                return sample.value
    return 0.0


def test_sigterm_cuts_off_answers_longer_than_the_grace_period(tmp_path: Path, default_gguf: Path) -> None:
    grace = "1"
    log = tmp_path / "serve.log"
    with server_process("gemma-3-270m", "--no-embedding", "--parallel", "4", "--ctx-size", "2048", "--threads", "2",
                        "--shutdown-grace", grace, log_path=log) as (url, proc):
        model = served_model(url)
        streams = start_streams(url, model, 4, max_tokens=None)  # until the context is full: far past the grace
        queued: dict[str, httpx.Response] = {}

        def fifth() -> None:  # no slot is free: it waits in the engine's queue
            queued["res"] = httpx.post(f"{url}/v1/completions", timeout=300,
                                       json={"model": model, "prompt": COUNTING, "max_tokens": 4})

        waiter = threading.Thread(target=fifth, daemon=True)
        waiter.start()
        for _ in range(600):
            if waiting_requests(url) == 1:
                break
            threading.Event().wait(0.05)
        assert waiting_requests(url) == 1
        proc.send_signal(signal.SIGTERM)
        for stream in streams:
            stream.join(timeout=300)
        waiter.join(timeout=300)
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    for stream in streams:
        assert stream.failure is None, stream.failure
        assert stream.events[-1] == "[DONE]"
        errors = stream.errors()
        assert len(errors) == 1 and errors[0]["code"] == "server_shutting_down", stream.finish_reasons()
        assert f"{grace} s grace period" in errors[0]["message"]
        assert isinstance(stream.events[-2], dict) and "error" in stream.events[-2]
        assert stream.finish_reasons() == []  # cut off, not finished
    assert_unavailable(queued["res"])
