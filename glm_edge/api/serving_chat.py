"""Chat completions: prompt in, engine stream through fresh per-choice parsers, OpenAI response or SSE out."""

from __future__ import annotations

from typing import AsyncIterator, Sequence

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from glm_edge.api.metrics import Metrics
from glm_edge.api.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChoiceLogprobs,
    DeltaMessage,
    NamedToolChoice,
    TokenLogprobEntry,
    TopLogprob,
    Usage,
    now,
    random_id,
)
from glm_edge.api.state import metrics_of, registry_of
from glm_edge.api.streaming import SSE_HEADERS, event_stream, sse, start_generation, unless_disconnected
from glm_edge.chat_model import ChatModel
from glm_edge.engine.types import ChunkStream, TokenLogprob


def logprob_entries(items: list[TokenLogprob] | None) -> list[TokenLogprobEntry]:
    return [TokenLogprobEntry(token=t.token, logprob=t.logprob, bytes=t.bytes,
                              top_logprobs=[TopLogprob(token=c.token, logprob=c.logprob, bytes=c.bytes) for c in t.top])
            for t in items or []]


def grammar_for(request: ChatCompletionRequest, tool_parser: str = "",
                offered: Sequence[str] = ()) -> str | None:
    """The grammar of ``response_format``, or of the one call that ``tool_choice`` "required" or a named function
    asks for (in the format of the model's tool parser; ``offered``: the tool names the prompt offers)."""
    from glm_edge.engine.grammar import forced_tool_call_grammar, json_object_grammar, json_schema_grammar

    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        return json_object_grammar()
    if fmt is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema_ if fmt.json_schema else None
        return json_schema_grammar(schema or {"type": "object"})
    if offered and (request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice)):
        tools = [t.model_dump(exclude_none=True) for t in request.tools or [] if t.function.name in offered]
        return forced_tool_call_grammar(tool_parser, tools)
    return None


async def create_chat_completion(request: ChatCompletionRequest,
                                 raw: Request) -> ChatCompletionResponse | Response:
    model = registry_of(raw).chat_model(request.model)
    rendered = model.render(request)
    prompt_tokens = model.tokenize_prompt(rendered.prompt)
    limit = request.new_token_limit()
    params = request.to_sampling_params(
        model.defaults, max_tokens=limit, stop_token_ids=model.stop_token_ids,
        logprobs=request.logprobs, top_logprobs=request.top_logprobs or 0,
        grammar=grammar_for(request, model.tool_parser, rendered.tool_names),
        skip_special_tokens=model.skip_special_tokens)
    request_id = random_id("chatcmpl")
    chunks = await start_generation(model.engine, prompt_tokens, params, request_id, raw, model.id)
    metrics = metrics_of(raw)
    if request.stream:
        events = _events(request, model, rendered.tool_names, request_id, chunks, len(prompt_tokens), metrics)
        return StreamingResponse(event_stream(events, chunks), media_type="text/event-stream", headers=SSE_HEADERS)
    return await unless_disconnected(
        raw, _complete(request, model, rendered.tool_names, request_id, chunks, len(prompt_tokens), metrics))


async def _complete(request: ChatCompletionRequest, model: ChatModel, tool_names: list[str], request_id: str,
                    chunks: ChunkStream, n_prompt: int, metrics: Metrics) -> ChatCompletionResponse:
    texts = [""] * request.n
    finish: dict[int, str] = {}
    logprobs: dict[int, list[TokenLogprob]] = {i: [] for i in range(request.n)}
    completion_tokens: dict[int, int] = {}
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


async def _events(request: ChatCompletionRequest, model: ChatModel, tool_names: list[str], request_id: str,
                  chunks: ChunkStream, n_prompt: int, metrics: Metrics) -> AsyncIterator[str]:
    created = now()
    parsers = [model.output_parser(tool_names) for _ in range(request.n)]  # fresh per choice
    completion_tokens: dict[int, int] = {}

    def chunk_json(choice: ChatChunkChoice | None, usage: Usage | None = None) -> str:
        body = ChatCompletionChunk(id=request_id, created=created, model=model.id,
                                   choices=[choice] if choice else [], usage=usage)
        return sse(body.model_dump_json())

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
