"""The engine's chunk stream as the HTTP handlers use it: started before the 200, ended on disconnect, and
sent as server-sent events with in-stream errors and the closing [DONE]."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Awaitable, Callable, TypeVar

from fastapi import Request
from fastapi.responses import Response

from glm_edge.api.errors import error_body
from glm_edge.api.lifecycle import Lifecycle
from glm_edge.api.observe import trace_of
from glm_edge.engine.types import ChunkStream, Engine, GenerationChunk, SamplingParams
from glm_edge.errors import EngineError, GlmEdgeError

log = logging.getLogger("glm_edge.api")

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: str, event: str | None = None) -> str:
    """One server-sent event; ``event`` names it (the Responses API names each event by its type)."""
    return f"event: {event}\ndata: {payload}\n\n" if event else f"data: {payload}\n\n"


def error_event(exc: GlmEdgeError) -> str:
    return sse(error_body(exc).model_dump_json())


async def start_generation(engine: Engine, prompt_tokens: list[int], params: SamplingParams, request_id: str,
                           raw: Request | None = None, model_id: str | None = None) -> ChunkStream:
    """Wait for the first chunk, so that queue-full and context errors are raised here, before any 200; then
    return every chunk. Closing the result (client gone, handler cancelled) closes the engine stream, which
    aborts the request and frees its slot at the next step.

    With the HTTP request (`raw`), the chunks are noted on its trace (model, tokens, queue wait, first and last
    token) and the generation is registered for shutdown: once the grace period after SIGTERM is over it is
    aborted, and the stream raises ShuttingDownError (an in-stream error event, or a 503 before the 200)."""
    trace = trace_of(raw) if raw is not None else None
    lifecycle: Lifecycle | None = getattr(raw.app.state, "lifecycle", None) if raw is not None else None
    if trace is not None:
        trace.model, trace.generation, trace.prompt_tokens = model_id, True, len(prompt_tokens)
        if trace.keep_prompt:
            trace.prompt = engine.detokenize(prompt_tokens)
    key = lifecycle.add_generation(engine, request_id) if lifecycle is not None else None
    finished: set[int] = set()

    def seen(chunk: GenerationChunk) -> GenerationChunk:
        if trace is not None:
            trace.note_tokens(chunk.index, chunk.completion_tokens, chunk.queue_seconds)
        if lifecycle is not None and lifecycle.cancelled and chunk.finish_reason == "abort":
            raise lifecycle.cut_off()
        if chunk.finish_reason is not None:
            finished.add(chunk.index)
        return chunk

    def release() -> None:
        if lifecycle is not None and key is not None:
            lifecycle.remove_generation(key)

    def ended() -> None:
        if lifecycle is not None and lifecycle.cancelled and len(finished) < params.n:
            raise lifecycle.cut_off()  # aborted while still waiting for a slot

    stream = engine.generate(prompt_tokens, params, request_id)
    try:
        try:
            first = seen(await stream.__anext__())
        except StopAsyncIteration:
            ended()
            first = None
    except BaseException:
        release()
        await stream.aclose()
        raise

    async def chunks() -> ChunkStream:
        try:
            if first is None:
                return
            yield first
            async for chunk in stream:
                yield seen(chunk)
            ended()
        finally:
            release()
            await stream.aclose()

    return chunks()


async def event_stream(events: AsyncIterator[str], chunks: ChunkStream,
                       on_error: Callable[[GlmEdgeError], str] = error_event, done: bool = True) -> AsyncIterator[str]:
    """SSE body: the handler's events; an error after the 200 as one event (`on_error`: by default
    `data: {"error": ...}`); then `[DONE]` unless ``done`` is False (the Responses API ends with its last event)."""
    try:
        async for event in events:
            yield event
    except GlmEdgeError as exc:
        yield on_error(exc)
    except Exception as exc:  # never expected; still end the stream properly
        log.exception("stream failed")
        yield on_error(EngineError(f"internal error: {type(exc).__name__}"))
    finally:
        await chunks.aclose()
    if done:
        yield sse("[DONE]")


async def unless_disconnected(raw: Request, work: Awaitable[T]) -> T | Response:
    """Run a non-streaming answer, but stop it (and so free its slot) as soon as the client goes away.
    The body was read already, so the next ASGI message is the disconnect."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await raw.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()  # closes the engine stream: the request is aborted at the next step
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("client went away before its answer; request cancelled")
    return Response(status_code=499)
