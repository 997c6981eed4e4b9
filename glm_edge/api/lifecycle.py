"""Graceful shutdown on the app's side: after SIGTERM the server drains (`/health` says 503, new requests get 503),
running requests get a grace period to finish, then the generations still running are aborted in their engines
and end with an in-stream error. `glm_edge.server.GracefulServer` calls `drain()` and then lets uvicorn exit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from glm_edge.engine.types import Engine
from glm_edge.errors import ShuttingDownError

log = logging.getLogger("glm_edge.api")

_POLL_SECONDS = 0.05
_CANCEL_WAIT_SECONDS = 10.0  # aborted streams end within an engine step; this only bounds a stuck one


class Lifecycle:
    def __init__(self) -> None:
        self.draining = False  # SIGTERM came: no new requests
        self.cancelled = False  # the grace period is over: running generations are cut off
        self.grace_seconds = 0.0
        self.in_flight = 0  # HTTP requests being answered (kept by the request middleware)
        self._generations: dict[int, tuple[Engine, str]] = {}
        self._ids = itertools.count()

    def add_generation(self, engine: Engine, request_id: str) -> int:
        """Register a running generation, so that the end of the grace period can abort it; returns its key."""
        if self.cancelled:
            raise self.cut_off()
        key = next(self._ids)
        self._generations[key] = (engine, request_id)
        return key

    def remove_generation(self, key: int) -> None:
        self._generations.pop(key, None)

    def cut_off(self) -> ShuttingDownError:
        return ShuttingDownError(f"the server is shutting down: the answer was cut off after the "
                                 f"{self.grace_seconds:g} s grace period", retry_after=None)

    async def drain(self, grace_seconds: float) -> None:
        """Stop taking requests; wait up to `grace_seconds` for the running ones; abort the rest and wait for
        their streams to end."""
        self.draining = True
        self.grace_seconds = grace_seconds
        log.info("shutting down: %d request(s) running, %g s to finish", self.in_flight, grace_seconds)
        try:
            await asyncio.wait_for(self._idle(), timeout=grace_seconds)
            return
        except asyncio.TimeoutError:
            pass
        self.cancelled = True
        running = list(self._generations.values())
        log.warning("grace period over: cutting off %d generation(s)", len(running))
        for engine, request_id in running:
            engine.abort(request_id)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle(), timeout=_CANCEL_WAIT_SECONDS)

    async def _idle(self) -> None:
        while self.in_flight > 0:
            await asyncio.sleep(_POLL_SECONDS)
