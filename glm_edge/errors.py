"""Domain exceptions and the one table that maps them to OpenAI error types and HTTP statuses."""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    INVALID_REQUEST = ("invalid_request_error", 400)
    AUTHENTICATION = ("authentication_error", 401)
    PERMISSION = ("permission_error", 403)
    NOT_FOUND = ("not_found_error", 404)
    RATE_LIMIT = ("rate_limit_error", 429)
    INTERNAL = ("internal_error", 500)
    UNAVAILABLE = ("unavailable_error", 503)

    @property
    def type(self) -> str:
        return self.value[0]

    @property
    def status(self) -> int:
        return self.value[1]


class GlmEdgeError(Exception):
    """Base of every error a client can be told about."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after


class InvalidRequestError(GlmEdgeError):
    kind = ErrorKind.INVALID_REQUEST


class ContextLengthError(InvalidRequestError):
    """The prompt (plus what must be generated) does not fit the context."""

    def __init__(self, message: str, *, param: str | None = "messages") -> None:
        super().__init__(message, param=param, code="context_length_exceeded")


class AuthenticationError(GlmEdgeError):
    kind = ErrorKind.AUTHENTICATION


class ModelNotFoundError(GlmEdgeError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, message: str, *, param: str | None = "model") -> None:
        super().__init__(message, param=param, code="model_not_found")


class QueueFullError(GlmEdgeError):
    kind = ErrorKind.RATE_LIMIT

    def __init__(self, message: str = "the server is busy: the request queue is full", *,
                 retry_after: float = 1.0) -> None:
        super().__init__(message, code="queue_full", retry_after=retry_after)


class ModelLoadingError(GlmEdgeError):
    kind = ErrorKind.UNAVAILABLE


class ShuttingDownError(GlmEdgeError):
    """The server got SIGTERM: it takes no new requests, and cuts off answers still running after the grace period."""

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, *, retry_after: float | None = 5.0) -> None:
        super().__init__(message, code="server_shutting_down", retry_after=retry_after)


class EngineError(GlmEdgeError):
    """Something broke inside an engine; never expected."""

    kind = ErrorKind.INTERNAL


class ConfigError(Exception):
    """A bad setting at start-up (unknown model, missing file, port in use): one line, exit != 0."""
