"""The one place that turns exceptions into OpenAI-shaped error responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from glm_edge.api.protocol import ErrorBody, ErrorResponse
from glm_edge.errors import ErrorKind, GlmEdgeError

log = logging.getLogger("glm_edge.api")

_STATUS_KIND = {kind.status: kind for kind in ErrorKind}


def error_body(exc: GlmEdgeError) -> ErrorResponse:
    return ErrorResponse(error=ErrorBody(message=exc.message, type=exc.kind.type, param=exc.param, code=exc.code))


def error_response(exc: GlmEdgeError) -> JSONResponse:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(round(exc.retry_after))))
    return JSONResponse(error_body(exc).model_dump(), status_code=exc.kind.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts = []
    param = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc)
        param = param or (where or None)
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request", param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GlmEdgeError)
    async def _domain(_: Request, exc: GlmEdgeError) -> JSONResponse:
        if exc.kind is ErrorKind.INTERNAL:
            log.error("internal error: %s", exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        body = ErrorResponse(error=ErrorBody(message=message, type=ErrorKind.INVALID_REQUEST.type, param=param,
                                             code="invalid_value"))
        return JSONResponse(body.model_dump(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        fallback = ErrorKind.INVALID_REQUEST if exc.status_code < 500 else ErrorKind.INTERNAL
        kind = _STATUS_KIND.get(exc.status_code, fallback)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = "no such route"
        elif exc.status_code == 405:
            message = "method not allowed on this route"
        body = ErrorResponse(error=ErrorBody(message=message, type=kind.type, code=None))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = ErrorResponse(error=ErrorBody(message=f"internal error: {type(exc).__name__}",
                                             type=ErrorKind.INTERNAL.type))
        return JSONResponse(body.model_dump(), status_code=500)
