"""The FastAPI application: every route on one app, models loaded in the background at start-up."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from glm_edge.api.auth import KeyChecker
from glm_edge.api.errors import install_error_handlers
from glm_edge.api.lifecycle import Lifecycle
from glm_edge.api.metrics import CONTENT_TYPE, Metrics
from glm_edge.api.observe import RequestMiddleware
from glm_edge.api.protocol import HealthResponse
from glm_edge.registry import ModelRegistry
from glm_edge.settings import Settings
from glm_edge.web import CONTENT_SECURITY_POLICY, page_path, static_dir

log = logging.getLogger("glm_edge.api")

Loader = Callable[[ModelRegistry], None]


def _stats(registry: ModelRegistry) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, model in {**registry.chat, **registry.embedders}.items():
        stats = getattr(model, "stats", None)
        if callable(stats):
            try:
                out[name] = stats()
            except Exception:  # a scrape must never fail because one model is closing
                log.debug("stats of %s failed", name, exc_info=True)
    return out


def create_app(settings: Settings, *, loader: Loader | None = None, registry: ModelRegistry | None = None,
               on_load_failure: Callable[[str], None] | None = None) -> FastAPI:
    """Build the app. `loader` fills the registry in a worker thread after start-up (health says 503 until
    it is done; a failure is reported to `on_load_failure`); without one, the registry given is served as it is."""
    registry = registry or ModelRegistry(loading=loader is not None)
    if loader is None:
        registry.loading = False

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if loader is not None:
            task = asyncio.create_task(_load(app, loader, registry, on_load_failure))
        try:
            yield
        finally:
            if task is not None and not task.done():
                task.cancel()
            await asyncio.to_thread(_close_all, registry)

    app = FastAPI(title="glm-edge", version=_version(), lifespan=lifespan)
    metrics = Metrics(lambda: _stats(registry), lambda: dict(registry.load_seconds))
    lifecycle = Lifecycle()
    keys = KeyChecker(settings.accepted_keys())
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    app.state.keys = keys
    app.state.load_error = None
    app.add_middleware(RequestMiddleware, metrics=metrics, lifecycle=lifecycle, log_prompts=settings.log_prompts)
    install_error_handlers(app)

    async def require_key(request: Request) -> None:
        keys.check(request)

    from glm_edge.api import embeddings, glm, openai

    guarded = [Depends(require_key)]
    app.include_router(openai.router, dependencies=guarded)
    app.include_router(glm.router, dependencies=guarded)
    app.include_router(embeddings.router, dependencies=guarded)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> Any:
        if lifecycle.draining:  # routers stop sending here while the running requests finish
            return JSONResponse({"status": "shutting_down"}, status_code=503)
        if app.state.load_error:
            return JSONResponse({"status": "error", "error": {"message": app.state.load_error,
                                                               "type": "internal_error"}}, status_code=500)
        if registry.loading:
            return JSONResponse(HealthResponse(status="loading").model_dump(), status_code=503)
        return HealthResponse(status="ok")

    @app.get("/metrics", dependencies=guarded)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> Any:
        return FileResponse(page_path(), media_type="text/html",
                            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    # the page's script, style and vendored libraries; open like the page itself (a browser cannot send the
    # API key with a <script src>)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    return app


async def _load(app: FastAPI, loader: Loader, registry: ModelRegistry,
                on_failure: Callable[[str], None] | None) -> None:
    try:
        await asyncio.to_thread(loader, registry)
        registry.loading = False
        log.info("all models loaded: %s", ", ".join([*registry.chat, *registry.embedders]))
    except Exception as exc:  # reported by /health and by the CLI, which stops the server
        app.state.load_error = f"{type(exc).__name__}: {exc}"
        log.error("loading models failed: %s", app.state.load_error)
        if on_failure is not None:
            on_failure(app.state.load_error)


def _close_all(registry: ModelRegistry) -> None:
    for model in [*registry.chat.values(), *registry.embedders.values()]:
        close = getattr(model, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.debug("closing a model failed", exc_info=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("glm-edge")
    except PackageNotFoundError:
        return "0.0.0"
