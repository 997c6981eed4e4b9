"""Chat completions: prompt in, engine stream through fresh per-choice parsers, OpenAI response or SSE out."""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

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

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"


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
    prompt_tokens = model.prompt_tokens(request)
    limit = request.new_token_limit()
    params = request.to_sampling_params(
        model.defaults, max_tokens=limit, stop_token_ids=model.stop_token_ids,
        logprobs=request.logprobs, top_logprobs=request.top_logprobs or 0, grammar=grammar_for(request))
    request_id = random_id("chatcmpl")
    stream = model.engine.generate(prompt_tokens, params, request_id)
    first = await _first_chunk(stream)  # queue-full / context errors surface here, before the 200
    metrics = raw.app.state.metrics
    if request.stream:
        return StreamingResponse(_stream(request, model, request_id, first, stream, len(prompt_tokens), metrics),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    return await _complete(request, model, request_id, first, stream, len(prompt_tokens), metrics)


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


async def _complete(request: ChatCompletionRequest, model: Any, request_id: str, first: GenerationChunk | None,
                    stream: AsyncIterator[GenerationChunk], n_prompt: int, metrics: Any) -> ChatCompletionResponse:
    parsers = [model.output_parser(request) for _ in range(request.n)]
    finish: dict[int, str] = {}
    logprobs: dict[int, list[TokenLogprob]] = {i: [] for i in range(request.n)}
    completion_tokens: dict[int, int] = {}
    chunks = _chunks(first, stream)
    try:
        async for chunk in chunks:
            parsers[chunk.index].feed(chunk.text)
            if chunk.logprobs:
                logprobs[chunk.index].extend(chunk.logprobs)
            completion_tokens[chunk.index] = chunk.completion_tokens
            if chunk.finish_reason is not None:
                parsers[chunk.index].finish()
                finish[chunk.index] = chunk.finish_reason
    finally:
        await chunks.aclose()
    choices = []
    for index, parser in enumerate(parsers):
        result = parser.result()
        reason = "tool_calls" if result.tool_calls else finish.get(index, "stop")
        message = AssistantMessage(content=result.content if (result.content or not result.tool_calls) else None,
                                   reasoning_content=result.reasoning or None,
                                   tool_calls=result.tool_calls or None)
        choices.append(ChatChoice(index=index, message=message, finish_reason=reason,
                                  logprobs=ChoiceLogprobs(content=logprob_entries(logprobs[index]))
                                  if request.logprobs else None))
    generated = sum(completion_tokens.values())
    metrics.count_tokens(model.id, n_prompt, generated)
    return ChatCompletionResponse(id=request_id, model=model.id, choices=choices,
                                  usage=Usage(prompt_tokens=n_prompt, completion_tokens=generated,
                                              total_tokens=n_prompt + generated))


async def _stream(request: ChatCompletionRequest, model: Any, request_id: str, first: GenerationChunk | None,
                  stream: AsyncIterator[GenerationChunk], n_prompt: int, metrics: Any) -> AsyncIterator[str]:
    created = now()
    parsers = [model.output_parser(request) for _ in range(request.n)]
    completion_tokens: dict[int, int] = {}
    chunks = _chunks(first, stream)

    def chunk_json(choice: ChatChunkChoice | None, usage: Usage | None = None) -> str:
        body = ChatCompletionChunk(id=request_id, created=created, model=model.id,
                                   choices=[choice] if choice else [], usage=usage)
        return sse(body.model_dump_json(exclude={"usage"} if usage is None else None))

    try:
        for index in range(request.n):
            yield chunk_json(ChatChunkChoice(index=index, delta=DeltaMessage(role="assistant", content="")))
        async for chunk in chunks:
            parser = parsers[chunk.index]
            completion_tokens[chunk.index] = chunk.completion_tokens
            delta = parser.feed(chunk.text)
            if chunk.finish_reason is not None:
                delta = delta.merge(parser.finish())
            lp = ChoiceLogprobs(content=logprob_entries(chunk.logprobs)) if request.logprobs and chunk.logprobs else None
            if not delta.empty() or lp is not None:
                yield chunk_json(ChatChunkChoice(index=chunk.index, delta=delta.to_wire(), logprobs=lp))
            if chunk.finish_reason is not None:
                reason = "tool_calls" if parser.result().tool_calls else chunk.finish_reason
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

