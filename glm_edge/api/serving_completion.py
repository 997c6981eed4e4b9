"""Text completions (`/v1/completions`): a raw prompt, no chat template, no parsers."""

from __future__ import annotations

from typing import AsyncIterator, TypeGuard

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from glm_edge.api.metrics import Metrics
from glm_edge.api.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    Usage,
    now,
    random_id,
)
from glm_edge.api.state import metrics_of, registry_of
from glm_edge.api.streaming import SSE_HEADERS, event_stream, sse, start_generation, unless_disconnected
from glm_edge.chat_model import ChatModel
from glm_edge.engine.types import ChunkStream, TokenLogprob
from glm_edge.errors import InvalidRequestError


def _is_token_ids(value: object) -> TypeGuard[list[int]]:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) for t in value)


def _prompt_tokens(request: CompletionRequest, model: ChatModel) -> list[int]:
    prompt = request.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if prompt == "":
            raise InvalidRequestError("prompt must not be empty", param="prompt")
        return model.engine.tokenize(prompt, add_special=True, parse_special=False)
    if _is_token_ids(prompt):
        return list(prompt)
    raise InvalidRequestError("one prompt per request: a string or a list of token ids", param="prompt")


def _logprobs(items: list[TokenLogprob]) -> CompletionLogprobs:
    out = CompletionLogprobs()
    offset = 0
    for item in items:
        out.tokens.append(item.token)
        out.token_logprobs.append(item.logprob)
        out.top_logprobs.append({c.token: c.logprob for c in item.top})
        out.text_offset.append(offset)
        offset += len(item.token)
    return out


async def create_completion(request: CompletionRequest, raw: Request) -> CompletionResponse | Response:
    model = registry_of(raw).chat_model(request.model)
    if request.suffix:
        raise InvalidRequestError("suffix (fill-in-the-middle) is not supported", param="suffix")
    tokens = _prompt_tokens(request, model)
    want_logprobs = request.logprobs is not None
    params = request.to_sampling_params(model.defaults, max_tokens=request.max_tokens,
                                        stop_token_ids=model.stop_token_ids, logprobs=want_logprobs,
                                        top_logprobs=request.logprobs or 0, grammar=None)
    request_id = random_id("cmpl")
    chunks = await start_generation(model.engine, tokens, params, request_id, raw, model.id)
    echo = model.engine.detokenize(tokens) if request.echo else ""
    metrics = metrics_of(raw)
    if request.stream:
        events = _events(request, model.id, request_id, echo, chunks, len(tokens), metrics)
        return StreamingResponse(event_stream(events, chunks), media_type="text/event-stream", headers=SSE_HEADERS)
    return await unless_disconnected(raw, _complete(request, model.id, request_id, echo, chunks, len(tokens),
                                                     metrics, want_logprobs))


async def _complete(request: CompletionRequest, model_id: str, request_id: str, echo: str,
                    chunks: ChunkStream, n_prompt: int, metrics: Metrics,
                    want_logprobs: bool) -> CompletionResponse:
    texts = {i: echo for i in range(request.n)}
    lps: dict[int, list[TokenLogprob]] = {i: [] for i in range(request.n)}
    finish: dict[int, str] = {}
    generated: dict[int, int] = {}
    async for chunk in chunks:
        texts[chunk.index] += chunk.text
        lps[chunk.index].extend(chunk.logprobs or [])
        generated[chunk.index] = chunk.completion_tokens
        if chunk.finish_reason:
            finish[chunk.index] = chunk.finish_reason
    total = sum(generated.values())
    metrics.count_tokens(model_id, n_prompt, total)
    choices = [CompletionChoice(index=i, text=texts[i], finish_reason=finish.get(i, "stop"),
                                logprobs=_logprobs(lps[i]) if want_logprobs else None) for i in range(request.n)]
    return CompletionResponse(id=request_id, model=model_id, choices=choices,
                              usage=Usage(prompt_tokens=n_prompt, completion_tokens=total,
                                          total_tokens=n_prompt + total))


async def _events(request: CompletionRequest, model_id: str, request_id: str, echo: str,
                  chunks: ChunkStream, n_prompt: int, metrics: Metrics) -> AsyncIterator[str]:
    created = now()
    generated: dict[int, int] = {}

    def body(index: int, text: str, finish: str | None, logprobs: CompletionLogprobs | None = None) -> str:
        response = CompletionResponse(id=request_id, created=created, model=model_id,
                                      choices=[CompletionChoice(index=index, text=text, finish_reason=finish,
                                                                logprobs=logprobs)])
        return sse(response.model_dump_json(exclude={"usage"}))

    if echo:
        for index in range(request.n):
            yield body(index, echo, None)
    async for chunk in chunks:
        generated[chunk.index] = chunk.completion_tokens
        lp = _logprobs(chunk.logprobs or []) if request.logprobs is not None else None
        if chunk.text or chunk.finish_reason:
            yield body(chunk.index, chunk.text, chunk.finish_reason, lp)
    total = sum(generated.values())
    metrics.count_tokens(model_id, n_prompt, total)
    if request.stream_options and request.stream_options.include_usage:
        usage = CompletionResponse(id=request_id, created=created, model=model_id, choices=[],
                                   usage=Usage(prompt_tokens=n_prompt, completion_tokens=total,
                                               total_tokens=n_prompt + total))
        yield sse(usage.model_dump_json())
