"""End to end: `/metrics` scraped before and after real requests to the real server (the deltas must match what the
requests did), and the one JSON log line per request. Nothing is mocked."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from glm_edge.api.metrics import STATS_METRICS
from tests.server_process import running_server

MARKER = "zebra-quokka-4711"  # prompt text that must never reach the log


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, default_gguf: Path) -> Iterator[tuple[str, Path, str]]:
    log = tmp_path_factory.mktemp("observability") / "serve.log"
    with running_server("gemma-3-270m", "--no-embedding", "--parallel", "2", "--ctx-size", "512", "--threads", "2",
                        "--log-format", "json", log_path=log) as url:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        yield url, log, model


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, labels) -> value), parsed by prometheus_client's own parser."""
    text = httpx.get(f"{url}/metrics").text
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def stream_completion(url: str, model: str) -> dict[str, Any]:
    body = {"model": model, "prompt": "1, 2, 3, 4,", "max_tokens": 6, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    usage: dict[str, Any] = {}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                event = json.loads(line[6:])
                usage = event.get("usage") or usage
    return usage


def test_metrics_deltas_follow_real_requests(served: tuple[str, Path, str]) -> None:
    url, _, model = served
    types0, before = scrape(url)
    chat = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                      json={"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 6,
                            "temperature": 0}).json()["usage"]
    streamed = stream_completion(url, model)
    assert httpx.post(f"{url}/v1/chat/completions", json={"model": model}).status_code == 400
    types, after = scrape(url)
    usages = [chat, streamed]

    # counters are counters, with _total on their samples; no engine counter is exported as a gauge any more
    for key, (name, is_counter, _) in STATS_METRICS.items():
        if key.startswith("embed_"):
            continue  # --no-embedding
        assert types.get(name) == ("counter" if is_counter else "gauge"), name
    for gone in ("glm_edge_tokens_generated", "glm_edge_slots_total", "glm_edge_steps", "glm_edge_queue_length"):
        assert gone not in types  # the old gauges
    assert types["glm_edge_decode_seconds"] == types["glm_edge_requests_aborted"] == "counter"
    counters = [name for name, kind in types.items() if kind == "counter"]
    assert counters and all(any(s[0] == f"{name}_total" for s in after) for name in counters)

    route = "/v1/chat/completions"
    assert delta(before, after, "glm_edge_http_requests_total", route=route, status="200") == 1
    assert delta(before, after, "glm_edge_http_requests_total", route=route, status="400") == 1
    assert delta(before, after, "glm_edge_http_requests_total", route="/v1/completions", status="200") == 1
    assert delta(before, after, "glm_edge_http_request_duration_seconds_count", route=route) == 2

    generated = sum(u["completion_tokens"] for u in usages)
    prompted = sum(u["prompt_tokens"] for u in usages)
    assert generated > 0
    assert delta(before, after, "glm_edge_completion_tokens_total", model=model) == generated
    assert delta(before, after, "glm_edge_prompt_tokens_total", model=model) == prompted
    assert delta(before, after, "glm_edge_sampled_tokens_total", model=model) == generated
    # every prompt token is either prefilled or taken from a slot's cached prefix
    assert (delta(before, after, "glm_edge_prompt_tokens_processed_total", model=model)
            + delta(before, after, "glm_edge_prompt_tokens_cached_total", model=model)) == prompted
    assert delta(before, after, "glm_edge_decode_steps_total", model=model) >= max(u["completion_tokens"]
                                                                                   for u in usages)

    # one observation per generation request in each per-model histogram; TPOT only where > 1 token came
    for name in ("glm_edge_time_to_first_token_seconds", "glm_edge_request_queue_time_seconds",
                 "glm_edge_e2e_request_latency_seconds"):
        assert types[name] == "histogram"
        assert delta(before, after, f"{name}_count", model=model) == 2, name
        assert delta(before, after, f"{name}_bucket", model=model, le="+Inf") == 2, name
        assert delta(before, after, f"{name}_sum", model=model) > 0, name
    multi = sum(1 for u in usages if u["completion_tokens"] > 1)
    assert delta(before, after, "glm_edge_time_per_output_token_seconds_count", model=model) == multi
    # the time to the first token is part of the whole request's time
    assert (delta(before, after, "glm_edge_time_to_first_token_seconds_sum", model=model)
            <= delta(before, after, "glm_edge_e2e_request_latency_seconds_sum", model=model))

    # KV cache: idle slots keep their tokens for prefix reuse, so the cells of these prompts are in use
    used = value(after, "glm_edge_kv_cache_tokens", model=model)
    capacity = value(after, "glm_edge_kv_cache_capacity_tokens", model=model)
    assert capacity == 2 * value(after, "glm_edge_slot_context_tokens", model=model)
    assert 0 < used <= capacity
    assert value(after, "glm_edge_kv_cache_usage_ratio", model=model) == pytest.approx(used / capacity)
    assert value(after, "glm_edge_model_load_seconds", model=model) > 0
    assert value(after, "glm_edge_requests_running", model=model) == 0
    assert types0.keys() <= types.keys()


def log_line(log: Path, request_id: str) -> dict[str, Any]:
    """The request's line (written once its response has ended, so it may come a moment after the client's)."""
    for _ in range(200):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if request_id in line:
                return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_one_json_log_line_per_request_without_prompt_text(served: tuple[str, Path, str]) -> None:
    url, log, model = served
    request_id = f"test-{uuid.uuid4().hex}"
    body = {"model": model, "messages": [{"role": "user", "content": f"Repeat: {MARKER}"}], "max_tokens": 5,
            "temperature": 0}
    res = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"X-Request-Id": request_id}, timeout=120)
    assert res.status_code == 200 and res.headers["x-request-id"] == request_id
    usage = res.json()["usage"]
    line = log_line(log, request_id)
    assert line["logger"] == "glm_edge.request" and line["level"] == "INFO"
    assert line["route"] == "/v1/chat/completions" and line["method"] == "POST" and line["status"] == 200
    assert line["model"] == model
    assert line["prompt_tokens"] == usage["prompt_tokens"]
    assert line["completion_tokens"] == usage["completion_tokens"]
    assert 0 <= line["queue_seconds"] <= line["ttft_seconds"] <= line["total_seconds"]

    other = httpx.get(f"{url}/v1/models", headers={"X-Request-Id": request_id + "-models"})
    models_line = log_line(log, request_id + "-models")
    assert models_line["status"] == other.status_code == 200 and models_line["route"] == "/v1/models"
    assert models_line["model"] is None and models_line["ttft_seconds"] is None

    text = log.read_text(encoding="utf-8", errors="replace")
    assert MARKER not in text
    assert len([ln for ln in text.splitlines() if request_id + '"' in ln]) == 1  # one line per request
    started = [ln for ln in text.splitlines() if "Uvicorn running on" in ln]  # uvicorn's lines are JSON too
    assert started and json.loads(started[0])["logger"] == "uvicorn.error"
