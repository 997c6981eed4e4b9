"""API keys: `Authorization: Bearer K` or `API-KEY: K`, compared in constant time, never logged."""

from __future__ import annotations

import hmac

from fastapi import Request

from glm_edge.errors import AuthenticationError

OPEN_PATHS = frozenset({"/health", "/", "/favicon.ico"})


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("api-key")
    return key.strip() if key else None


class KeyChecker:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode("utf-8") for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, request: Request) -> None:
        if not self._keys or request.url.path in OPEN_PATHS or request.url.path.startswith("/static/"):
            return
        key = presented_key(request)
        if key is None:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>' or 'API-KEY: <key>'",
                                      code="invalid_api_key")
        given = key.encode("utf-8")
        ok = False
        for accepted in self._keys:  # no early exit: the time does not tell which key matched
            ok |= hmac.compare_digest(given, accepted)
        if not ok:
            raise AuthenticationError("invalid API key", code="invalid_api_key")
