"""Chat completions: prompt in, engine stream through fresh per-choice parsers, OpenAI response or SSE out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, AsyncIterator, Awaitable, TypeVar

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from glm_edge.api.errors import error_body
from glm_edge.api.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChoiceLogprobs,
    DeltaMessage,
    TokenLogprobEntry,
    TopLogprob,
    Usage,
    now,
    random_id,
)
from glm_edge.engine.types import GenerationChunk, TokenLogprob
from glm_edge.errors import EngineError, GlmEdgeError

log = logging.getLogger("glm_edge.api")

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"


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


def logprob_entries(items: list[TokenLogprob] | None) -> list[TokenLogprobEntry]:
    return [TokenLogprobEntry(token=t.token, logprob=t.logprob, bytes=t.bytes,
                              top_logprobs=[TopLogprob(token=c.token, logprob=c.logprob, bytes=c.bytes) for c in t.top])
            for t in items or []]


def grammar_for(request: ChatCompletionRequest) -> str | None:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    from glm_edge.engine.grammar import json_object_grammar, json_schema_grammar

    if fmt.type == "json_object":
        return json_object_grammar()
    schema = fmt.json_schema.schema_ if fmt.json_schema else None
    return json_schema_grammar(schema or {"type": "object"})


async def create_chat_completion(request: ChatCompletionRequest, raw: Request) -> Any:
    registry = raw.app.state.registry
    model = registry.chat_model(request.model)
    rendered = model.render(request)
    prompt_tokens = model.tokenize_prompt(rendered.prompt)
    limit = request.new_token_limit()
    params = request.to_sampling_params(
        model.defaults, max_tokens=limit, stop_token_ids=model.stop_token_ids,
        logprobs=request.logprobs, top_logprobs=request.top_logprobs or 0, grammar=grammar_for(request))
    params.skip_special_tokens = model.skip_special_tokens
    request_id = random_id("chatcmpl")
    stream = model.engine.generate(prompt_tokens, params, request_id)
    first = await _first_chunk(stream)  # queue-full / context errors surface here, before the 200
    metrics = raw.app.state.metrics
    if request.stream:
        return StreamingResponse(_stream(request, model, rendered.tool_names, request_id, first, stream,
                                         len(prompt_tokens), metrics),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    return await unless_disconnected(
        raw, _complete(request, model, rendered.tool_names, request_id, first, stream, len(prompt_tokens), metrics))


async def _first_chunk(stream: AsyncIterator[GenerationChunk]) -> GenerationChunk | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def _chunks(first: GenerationChunk | None, stream: Any) -> AsyncIterator[GenerationChunk]:
    """The engine's chunks; closing this (client gone, handler cancelled) closes the engine stream, which
    aborts the request and frees its slot at the next step."""
    try:
        if first is None:
            return
        yield first
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


async def _complete(request: ChatCompletionRequest, model: Any, tool_names: list[str], request_id: str,
                    first: GenerationChunk | None, stream: AsyncIterator[GenerationChunk], n_prompt: int,
                    metrics: Any) -> ChatCompletionResponse:
    texts = [""] * request.n
    finish: dict[int, str] = {}
    logprobs: dict[int, list[TokenLogprob]] = {i: [] for i in range(request.n)}
    completion_tokens: dict[int, int] = {}
    chunks = _chunks(first, stream)
    try:
        async for chunk in chunks:
            texts[chunk.index] += chunk.text
            if chunk.logprobs:
                logprobs[chunk.index].extend(chunk.logprobs)
            completion_tokens[chunk.index] = chunk.completion_tokens
            if chunk.finish_reason is not None:
                finish[chunk.index] = chunk.finish_reason
    finally:
        await chunks.aclose()
    choices = []
    for index, text in enumerate(texts):
        parser = model.output_parser(tool_names)  # fresh per choice
        parsed = parser.parse(text)
        reason = parser.finish_reason(finish.get(index, "stop"))
        message = AssistantMessage.model_validate(parsed.to_openai_message())
        choices.append(ChatChoice(index=index, message=message, finish_reason=reason,
                                  logprobs=ChoiceLogprobs(content=logprob_entries(logprobs[index]))
                                  if request.logprobs else None))
    generated = sum(completion_tokens.values())
    metrics.count_tokens(model.id, n_prompt, generated)
    return ChatCompletionResponse(id=request_id, model=model.id, choices=choices,
                                  usage=Usage(prompt_tokens=n_prompt, completion_tokens=generated,
                                              total_tokens=n_prompt + generated))


async def _stream(request: ChatCompletionRequest, model: Any, tool_names: list[str], request_id: str,
                  first: GenerationChunk | None, stream: AsyncIterator[GenerationChunk], n_prompt: int,
                  metrics: Any) -> AsyncIterator[str]:
    created = now()
    parsers = [model.output_parser(tool_names) for _ in range(request.n)]  # fresh per choice
    completion_tokens: dict[int, int] = {}
    chunks = _chunks(first, stream)

    def chunk_json(choice: ChatChunkChoice | None, usage: Usage | None = None) -> str:
        body = ChatCompletionChunk(id=request_id, created=created, model=model.id,
                                   choices=[choice] if choice else [], usage=usage)
        data = body.model_dump(exclude_none=True)  # deltas carry only what is new
        for item in data["choices"]:
            item.setdefault("finish_reason", None)
        return sse(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    try:
        for index in range(request.n):
            yield chunk_json(ChatChunkChoice(index=index, delta=DeltaMessage(role="assistant", content="")))
        async for chunk in chunks:
            parser = parsers[chunk.index]
            completion_tokens[chunk.index] = chunk.completion_tokens
            deltas = parser.feed(chunk.text) if chunk.text else []
            if chunk.finish_reason is not None:
                deltas += parser.finish()
            lp = ChoiceLogprobs(content=logprob_entries(chunk.logprobs)) if request.logprobs and chunk.logprobs else None
            if lp is not None and not deltas:
                yield chunk_json(ChatChunkChoice(index=chunk.index, delta=DeltaMessage(), logprobs=lp))
            for position, delta in enumerate(deltas):
                wire = DeltaMessage.model_validate(delta.to_openai())
                yield chunk_json(ChatChunkChoice(index=chunk.index, delta=wire, logprobs=lp if position == 0 else None))
            if chunk.finish_reason is not None:
                reason = parser.finish_reason(chunk.finish_reason)
                yield chunk_json(ChatChunkChoice(index=chunk.index, delta=DeltaMessage(), finish_reason=reason))
        generated = sum(completion_tokens.values())
        metrics.count_tokens(model.id, n_prompt, generated)
        if request.stream_options and request.stream_options.include_usage:
            yield chunk_json(None, Usage(prompt_tokens=n_prompt, completion_tokens=generated,
                                         total_tokens=n_prompt + generated))
    except GlmEdgeError as exc:  # after the 200: the error travels inside the stream
        yield sse(error_body(exc).model_dump_json())
    except Exception as exc:  # never expected; still end the stream properly
        log.exception("chat stream failed")
        yield sse(error_body(EngineError(f"internal error: {type(exc).__name__}")).model_dump_json())
    finally:
        await chunks.aclose()
    yield sse("[DONE]")

