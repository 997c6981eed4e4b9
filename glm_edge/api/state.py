"""Typed access to what `create_app` keeps on `app.state` (starlette's `State` is untyped)."""

from __future__ import annotations

from fastapi import Request

from glm_edge.api.metrics import Metrics
from glm_edge.registry import ModelRegistry


def registry_of(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
