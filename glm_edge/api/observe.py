"""One record per HTTP request (`RequestTrace`), kept by a pure ASGI middleware: request id, route, model, status,
tokens, queue wait, time to first token and total time. When the response body is complete it becomes one log
line (logger `glm_edge.request`) and the Prometheus observations. While the server drains after SIGTERM the same
middleware turns new requests away with 503."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glm_edge.api.errors import error_response
from glm_edge.api.lifecycle import Lifecycle
from glm_edge.api.metrics import Metrics
from glm_edge.errors import ShuttingDownError

log = logging.getLogger("glm_edge.request")

_SCOPE_KEY = "glm_edge.trace"
# routes a draining server still answers: routers poll /health to see it go, and a last scrape is welcome
_DRAIN_OPEN = ("/health", "/metrics")


@dataclass
class RequestTrace:
    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    route: str = "unmatched"
    status: int = 500
    ended: float | None = None
    model: str | None = None
    generation: bool = False  # a chat or text completion (the engine ran)
    prompt_tokens: int | None = None
    completion_tokens: dict[int, int] = field(default_factory=dict)  # per choice
    queue_seconds: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    keep_prompt: bool = False  # --log-prompts
    prompt: str | None = None  # only with keep_prompt

    @property
    def total_seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def ttft_seconds(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    @property
    def tpot_seconds(self) -> float | None:
        """Mean time between tokens after the first; choices decode side by side, so the longest counts."""
        steps = max(self.completion_tokens.values(), default=0) - 1
        if self.first_token is None or self.last_token is None or steps < 1:
            return None
        return (self.last_token - self.first_token) / steps

    def note_tokens(self, index: int, completion_tokens: int, queue_seconds: float | None) -> None:
        """An engine chunk arrived on the request's loop."""
        if queue_seconds is not None and self.queue_seconds is None:
            self.queue_seconds = queue_seconds
        if completion_tokens > self.completion_tokens.get(index, 0):
            now = time.perf_counter()
            if self.first_token is None:
                self.first_token = now
            self.last_token = now
            self.completion_tokens[index] = completion_tokens

    def fields(self, with_prompt: bool) -> dict[str, Any]:
        """What the log line holds (never the prompt unless asked for)."""
        out: dict[str, Any] = {
            "request_id": self.request_id, "method": self.method, "route": self.route, "status": self.status,
            "model": self.model, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": sum(self.completion_tokens.values()) if self.generation else None,
            "queue_seconds": _round(self.queue_seconds), "ttft_seconds": _round(self.ttft_seconds),
            "total_seconds": _round(self.total_seconds),
        }
        if with_prompt and self.prompt is not None:
            out["prompt"] = self.prompt
        return out


def note_model(request: Request, model_id: str, prompt_tokens: int | None = None) -> None:
    """For the log line of a request that is no generation (embeddings, keywords): which model answered it."""
    trace = trace_of(request)
    if trace is not None:
        trace.model, trace.prompt_tokens = model_id, prompt_tokens


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def trace_of(request: Request) -> RequestTrace | None:
    """The trace the middleware keeps for this request (None when the app runs without the middleware)."""
    trace = request.scope.get(_SCOPE_KEY)
    return trace if isinstance(trace, RequestTrace) else None


def _text_line(fields: dict[str, Any]) -> str:
    head = f"{fields['method']} {fields['route']} {fields['status']}"
    rest = " ".join(f"{key}={value!r}" if isinstance(value, str) and key == "prompt" else f"{key}={value}"
                    for key, value in fields.items()
                    if key not in ("method", "route", "status") and value is not None)
    return f"{head} {rest}"


class RequestMiddleware:
    """Pure ASGI (streaming and disconnects pass through untouched): trace, drain gate, log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, lifecycle: Lifecycle, log_prompts: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.log_prompts = log_prompts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1").strip()
        trace = RequestTrace(request_id=given[:128] or uuid.uuid4().hex, method=scope.get("method", ""),
                             path=scope.get("path", ""), keep_prompt=self.log_prompts)
        scope[_SCOPE_KEY] = trace

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                trace.status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", trace.request_id.encode("latin-1"))]}
            await send(message)

        if self.lifecycle.draining and trace.path not in _DRAIN_OPEN:
            response = error_response(ShuttingDownError("the server is shutting down; send the request elsewhere "
                                                        "or retry shortly"))
            try:
                await response(scope, receive, send_traced)
            finally:
                self._done(trace, scope)
            return
        self.lifecycle.in_flight += 1
        try:
            await self.app(scope, receive, send_traced)
        finally:
            self.lifecycle.in_flight -= 1
            self._done(trace, scope)

    def _done(self, trace: RequestTrace, scope: Scope) -> None:
        trace.ended = time.perf_counter()
        route = scope.get("route")
        trace.route = getattr(route, "path", "unmatched")
        self.metrics.observe(trace)
        fields = trace.fields(self.log_prompts)
        log.info(_text_line(fields), extra={"fields": fields})
