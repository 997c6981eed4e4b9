"""Prometheus metrics: HTTP traffic, tokens, and the engines' and embedders' live state."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StatsCollector(Collector):
    """Reads `stats()` of every loaded model at scrape time (slots busy, queue length, ...)."""

    def __init__(self, stats: Callable[[], dict[str, dict[str, float]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Any]:
        families: dict[str, GaugeMetricFamily] = {}
        for model, values in self._stats().items():
            for key, value in values.items():
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                name = f"glm_edge_{key}"
                if name not in families:
                    families[name] = GaugeMetricFamily(name, f"engine statistic {key}", labels=["model"])
                families[name].add_metric([model], float(value))
        yield from families.values()


class Metrics:
    def __init__(self, stats: Callable[[], dict[str, dict[str, float]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("glm_edge_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("glm_edge_http_request_seconds", "time to the response head, by route",
                                 ["route"], registry=self.registry)
        self.prompt_tokens = Counter("glm_edge_prompt_tokens", "prompt tokens processed", ["model"],
                                     registry=self.registry)
        self.completion_tokens = Counter("glm_edge_completion_tokens", "tokens generated", ["model"],
                                         registry=self.registry)
        self.registry.register(_StatsCollector(stats))

    def observe_request(self, route: str, status: int, started: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(time.perf_counter() - started)

    def count_tokens(self, model: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model=model).inc(prompt)
        self.completion_tokens.labels(model=model).inc(completion)

    def render(self) -> bytes:
        return generate_latest(self.registry)
