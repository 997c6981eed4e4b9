"""Text completions (`/v1/completions`): a raw prompt, no chat template, no parsers; the engine stream and its
token counts through the same accumulator as chat (`glm_edge.api.generation.Generation`)."""

from __future__ import annotations

from typing import AsyncIterator, TypeGuard

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from glm_edge.api.generation import Generation
from glm_edge.api.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    now,
    random_id,
)
from glm_edge.api.state import metrics_of, registry_of
from glm_edge.api.streaming import SSE_HEADERS, event_stream, sse, start_generation, unless_disconnected
from glm_edge.chat_model import ChatModel
from glm_edge.engine.types import TokenLogprob
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
    generation = Generation(model=model, request_id=request_id, chunks=chunks, prompt_tokens=len(tokens),
                            n=request.n, metrics=metrics_of(raw))
    echo = model.engine.detokenize(tokens) if request.echo else ""
    if request.stream:
        return StreamingResponse(event_stream(_events(request, generation, echo), chunks),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    return await unless_disconnected(raw, _complete(request, generation, echo, want_logprobs))


async def _complete(request: CompletionRequest, generation: Generation, echo: str,
                    want_logprobs: bool) -> CompletionResponse:
    collected = await generation.collect()
    choices = [CompletionChoice(index=i, text=echo + text, finish_reason=collected.finish.get(i, "stop"),
                                logprobs=_logprobs(collected.logprobs[i]) if want_logprobs else None)
               for i, text in enumerate(collected.texts)]
    return CompletionResponse(id=generation.request_id, model=generation.model.id, choices=choices,
                              usage=generation.usage())


async def _events(request: CompletionRequest, generation: Generation, echo: str) -> AsyncIterator[str]:
    created = now()
    model_id = generation.model.id

    def body(index: int, text: str, finish: str | None, logprobs: CompletionLogprobs | None = None) -> str:
        response = CompletionResponse(id=generation.request_id, created=created, model=model_id,
                                      choices=[CompletionChoice(index=index, text=text, finish_reason=finish,
                                                                logprobs=logprobs)])
        return sse(response.model_dump_json(exclude={"usage"}))

    if echo:
        for index in range(request.n):
            yield body(index, echo, None)
    async for chunk in generation.stream():
        lp = _logprobs(chunk.logprobs or []) if request.logprobs is not None else None
        if chunk.text or chunk.finish_reason:
            yield body(chunk.index, chunk.text, chunk.finish_reason, lp)
    if request.stream_options and request.stream_options.include_usage:
        usage = CompletionResponse(id=generation.request_id, created=created, model=model_id, choices=[],
                                   usage=generation.usage())
        yield sse(usage.model_dump_json())
