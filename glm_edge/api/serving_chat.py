"""Chat completions: the shared chat generation (`glm_edge.api.generation`), formatted as an OpenAI chat
completion or as its SSE chunks."""

from __future__ import annotations

from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from glm_edge.api.generation import ChatGeneration
from glm_edge.api.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChoiceLogprobs,
    TokenLogprobEntry,
    TopLogprob,
    Usage,
    now,
)
from glm_edge.api.streaming import SSE_HEADERS, event_stream, sse, unless_disconnected
from glm_edge.chat.deltas import DeltaMessage
from glm_edge.engine.types import TokenLogprob


def logprob_entries(items: list[TokenLogprob] | None) -> list[TokenLogprobEntry]:
    return [TokenLogprobEntry(token=t.token, logprob=t.logprob, bytes=t.bytes,
                              top_logprobs=[TopLogprob(token=c.token, logprob=c.logprob, bytes=c.bytes) for c in t.top])
            for t in items or []]


async def create_chat_completion(request: ChatCompletionRequest,
                                 raw: Request) -> ChatCompletionResponse | Response:
    generation = await ChatGeneration.start(request, raw)
    if request.stream:
        return StreamingResponse(event_stream(_events(generation), generation.chunks),
                                 media_type="text/event-stream", headers={**SSE_HEADERS, **generation.turn.headers()})
    response = await unless_disconnected(raw, _complete(generation))
    if isinstance(response, ChatCompletionResponse):
        return JSONResponse(response.model_dump(mode="json"), headers=generation.turn.headers())
    return response


async def _complete(generation: ChatGeneration) -> ChatCompletionResponse:
    request = generation.request
    choices = []
    for result in await generation.results():
        parsed = result.parsed
        message = AssistantMessage(content=parsed.content, reasoning_content=parsed.reasoning_content,
                                   tool_calls=parsed.tool_calls or None)
        choices.append(ChatChoice(index=result.index, message=message, finish_reason=result.finish_reason,
                                  logprobs=ChoiceLogprobs(content=logprob_entries(result.logprobs))
                                  if request.logprobs else None))
    return ChatCompletionResponse(id=generation.request_id, model=generation.model.id, choices=choices,
                                  usage=generation.usage(), conversation_id=generation.turn.public_id)


async def _events(generation: ChatGeneration) -> AsyncIterator[str]:
    request = generation.request
    created = now()

    def chunk_json(choice: ChatChunkChoice | None, usage: Usage | None = None) -> str:
        body = ChatCompletionChunk(id=generation.request_id, created=created, model=generation.model.id,
                                   choices=[choice] if choice else [], usage=usage,
                                   conversation_id=generation.turn.public_id)
        return sse(body.model_dump_json())

    for index in range(request.n):
        yield chunk_json(ChatChunkChoice(index=index, delta=DeltaMessage(role="assistant", content="")))
    async for event in generation.events():
        lp = ChoiceLogprobs(content=logprob_entries(event.logprobs)) if request.logprobs and event.logprobs else None
        if lp is not None and not event.deltas:
            yield chunk_json(ChatChunkChoice(index=event.index, delta=DeltaMessage(), logprobs=lp))
        for position, delta in enumerate(event.deltas):
            yield chunk_json(ChatChunkChoice(index=event.index, delta=delta, logprobs=lp if position == 0 else None))
        if event.finish_reason is not None:
            yield chunk_json(ChatChunkChoice(index=event.index, delta=DeltaMessage(),
                                             finish_reason=event.finish_reason))
    await generation.remember()
    if request.stream_options and request.stream_options.include_usage:
        yield chunk_json(None, generation.usage())
