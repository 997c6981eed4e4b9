"""Prometheus metrics by the conventions: counters end in `_total`, units are in the names (`_seconds`, `_tokens`,
`_ratio`), latency figures are histograms per model.

HTTP traffic and the per-request figures (time to first token, time per output token, queue time, end-to-end
latency) are observed here on the asyncio side when a request ends. The engines' and embedders' own counters
come from their `stats()` (plain floats, read at scrape time): the decode thread never touches these objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from glm_edge.api.observe import RequestTrace

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# stats() key -> (metric name without `_total`, counter?, help). Keys not listed here are not exported.
STATS_METRICS: dict[str, tuple[str, bool, str]] = {
    # engine (glm_edge.engine.scheduler.Scheduler.stats, LlamaEngine.stats)
    "steps": ("glm_edge_decode_steps", True, "decode steps run (one llama_decode each)"),
    "tokens_generated": ("glm_edge_sampled_tokens", True, "tokens sampled, over all choices"),
    "prompt_tokens_processed": ("glm_edge_prompt_tokens_processed", True,
                                "prompt tokens prefilled (not taken from the prefix cache)"),
    "prompt_tokens_cached": ("glm_edge_prompt_tokens_cached", True,
                             "prompt tokens whose KV was reused from a slot's cached prefix"),
    "prefix_cache_hits": ("glm_edge_prefix_cache_hits", True, "requests that reused a cached prefix"),
    "requests_aborted": ("glm_edge_requests_aborted", True, "requests aborted (client gone, shutdown)"),
    "batch_tokens": ("glm_edge_batch_tokens", True, "tokens fed to llama_decode"),
    "decode_seconds": ("glm_edge_decode_seconds", True, "time spent in llama_decode"),
    "step_seconds": ("glm_edge_step_seconds", True, "time spent in engine steps (decode and sampling)"),
    "slots_total": ("glm_edge_slots", False, "sequence slots of the context"),
    "slots_busy": ("glm_edge_slots_busy", False, "slots holding a request"),
    "slots_idle": ("glm_edge_slots_idle", False, "free slots"),
    "slots_prefill": ("glm_edge_slots_prefill", False, "slots feeding a prompt"),
    "slots_decoding": ("glm_edge_slots_decoding", False, "slots generating"),
    "queue_length": ("glm_edge_requests_waiting", False, "requests waiting for a slot"),
    "requests_running": ("glm_edge_requests_running", False, "requests in the engine (waiting or in slots)"),
    "kv_cache_tokens": ("glm_edge_kv_cache_tokens", False, "KV cache cells holding tokens (idle slots keep theirs)"),
    "kv_cache_capacity_tokens": ("glm_edge_kv_cache_capacity_tokens", False, "KV cache cells, all slots"),
    "n_ctx_per_slot": ("glm_edge_slot_context_tokens", False, "context length of each slot"),
    "n_gpu_layers": ("glm_edge_gpu_layers", False, "layers offloaded to the GPU"),
    # embedders (glm_edge.embed.embedder.Embedder.stats)
    "embed_requests": ("glm_edge_embed_requests", True, "embedding requests"),
    "embed_inputs": ("glm_edge_embed_inputs", True, "texts embedded"),
    "embed_batches": ("glm_edge_embed_batches", True, "micro-batches formed"),
    "embed_session_runs": ("glm_edge_embed_session_runs", True, "ONNX Runtime session runs"),
    "embed_tokens": ("glm_edge_embed_tokens", True, "tokens embedded (without padding)"),
    "embed_padded_tokens": ("glm_edge_embed_padded_tokens", True, "tokens run, padding included"),
    "embed_queue": ("glm_edge_embed_queue_length", False, "embedding jobs waiting for a batch"),
}

# seconds; from a fast GPU's first token to a long answer on 2 CPU cores
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)


class _StatsCollector(Collector):
    """Reads `stats()` of every loaded model at scrape time, and the models' load times."""

    def __init__(self, stats: Callable[[], dict[str, dict[str, float]]],
                 load_seconds: Callable[[], dict[str, float]]) -> None:
        self._stats = stats
        self._load_seconds = load_seconds

    def collect(self) -> Iterable[Any]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for model, values in self._stats().items():
            for key, value in values.items():
                known = STATS_METRICS.get(key)
                if known is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                name, is_counter, doc = known
                if name not in families:
                    kind = CounterMetricFamily if is_counter else GaugeMetricFamily
                    families[name] = kind(name, doc, labels=["model"])
                families[name].add_metric([model], float(value))
            used, capacity = values.get("kv_cache_tokens"), values.get("kv_cache_capacity_tokens")
            if used is not None and capacity:
                name = "glm_edge_kv_cache_usage_ratio"
                if name not in families:
                    families[name] = GaugeMetricFamily(name, "share of the KV cache cells in use (0..1)",
                                                       labels=["model"])
                families[name].add_metric([model], used / capacity)
        yield from families.values()
        load = GaugeMetricFamily("glm_edge_model_load_seconds", "time it took to load the model", labels=["model"])
        for model, seconds in self._load_seconds().items():
            load.add_metric([model], seconds)
        yield load


class Metrics:
    def __init__(self, stats: Callable[[], dict[str, dict[str, float]]],
                 load_seconds: Callable[[], dict[str, float]] = dict) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("glm_edge_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=reg)
        self.duration = Histogram("glm_edge_http_request_duration_seconds",
                                  "time from the request to the end of its response body, by route",
                                  ["route"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.prompt_tokens = Counter("glm_edge_prompt_tokens", "prompt tokens of generation requests", ["model"],
                                     registry=reg)
        self.completion_tokens = Counter("glm_edge_completion_tokens", "tokens generated for requests", ["model"],
                                         registry=reg)
        self.ttft = Histogram("glm_edge_time_to_first_token_seconds",
                              "time from the request to its first generated token", ["model"],
                              buckets=_LATENCY_BUCKETS, registry=reg)
        self.tpot = Histogram("glm_edge_time_per_output_token_seconds",
                              "time between generated tokens after the first, per request", ["model"],
                              buckets=_TOKEN_BUCKETS, registry=reg)
        self.queue_time = Histogram("glm_edge_request_queue_time_seconds",
                                    "time a request waited for a slot", ["model"], buckets=_LATENCY_BUCKETS,
                                    registry=reg)
        self.e2e = Histogram("glm_edge_e2e_request_latency_seconds",
                             "time from a generation request to the end of its response", ["model"],
                             buckets=_LATENCY_BUCKETS, registry=reg)
        reg.register(_StatsCollector(stats, load_seconds))

    def count_tokens(self, model: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model=model).inc(prompt)
        self.completion_tokens.labels(model=model).inc(completion)

    def observe(self, trace: RequestTrace) -> None:
        """A request has ended (its response body is complete, or the client left)."""
        self.requests.labels(route=trace.route, status=str(trace.status)).inc()
        self.duration.labels(route=trace.route).observe(trace.total_seconds)
        if trace.model is None or not trace.generation:
            return
        model = trace.model
        self.e2e.labels(model=model).observe(trace.total_seconds)
        if trace.queue_seconds is not None:
            self.queue_time.labels(model=model).observe(trace.queue_seconds)
        if trace.ttft_seconds is not None:
            self.ttft.labels(model=model).observe(trace.ttft_seconds)
        if trace.tpot_seconds is not None:
            self.tpot.labels(model=model).observe(trace.tpot_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
