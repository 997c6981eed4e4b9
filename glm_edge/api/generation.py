"""One generation, shared by `/v1/chat/completions`, `/v1/responses` and `/v1/completions`: the engine stream with
its token counts (`Generation`), and for chat the request rendered with the model's template and fresh output parsers
per choice (`ChatGeneration`). The routes only format what this gives, whole (`collect`, `results`) or piece by
piece (`stream`, `events`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence

from fastapi import Request

from glm_edge.api.conversations import Turn
from glm_edge.api.metrics import Metrics
from glm_edge.api.protocol import ChatCompletionRequest, NamedToolChoice, PromptTokensDetails, Usage, random_id
from glm_edge.api.state import metrics_of, registry_of
from glm_edge.api.streaming import start_generation
from glm_edge.chat.deltas import DeltaMessage, ParsedOutput
from glm_edge.chat.messages import ToolDefinition
from glm_edge.chat_model import ChatModel
from glm_edge.engine.types import ChunkStream, GenerationChunk, TokenLogprob
from glm_edge.errors import ContextLengthError


def grammar_for(request: ChatCompletionRequest, tool_parser: str = "",
                offered: Sequence[ToolDefinition] = ()) -> str | None:
    """The grammar of ``response_format``, or of the one call that ``tool_choice`` "required" or a named function
    asks for (in the format of the model's tool parser; ``offered``: the tools the prompt offers)."""
    from glm_edge.engine.grammar import forced_tool_call_grammar, json_object_grammar, json_schema_grammar

    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        return json_object_grammar()
    if fmt is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema_ if fmt.json_schema else None
        return json_schema_grammar(schema or {"type": "object"})
    if offered and (request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice)):
        return forced_tool_call_grammar(tool_parser, [t.template_form() for t in offered])
    return None


@dataclass
class ChoiceEvent:
    """What one engine chunk adds to choice ``index``: the parsed deltas (possibly none), its logprobs, and on
    the choice's last chunk OpenAI's finish reason ("tool_calls" when the model stopped after calls)."""

    index: int
    deltas: list[DeltaMessage]
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None


@dataclass
class ChoiceResult:
    """One whole choice: the parsed assistant message, OpenAI's finish reason, every token's logprobs."""

    index: int
    parsed: ParsedOutput
    finish_reason: str
    logprobs: list[TokenLogprob]


@dataclass
class Collected:
    """Every choice of a generation that has ended: its text, engine finish reason and logprobs."""

    texts: list[str]
    finish: dict[int, str]
    logprobs: dict[int, list[TokenLogprob]]


@dataclass(kw_only=True)
class Generation:
    """One request's engine stream (``n`` choices) and its token counts, counted into the metrics once it has ended:
    the accumulator that chat, the Responses API and text completions share."""

    model: ChatModel
    request_id: str
    chunks: ChunkStream
    prompt_tokens: int
    n: int
    metrics: Metrics
    completion_tokens: dict[int, int] = field(default_factory=dict)
    cached_tokens: int = 0  # prompt tokens the slot already held

    @property
    def generated_tokens(self) -> int:
        return sum(self.completion_tokens.values())

    def usage(self) -> Usage:
        generated = self.generated_tokens
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=generated,
                     total_tokens=self.prompt_tokens + generated,
                     prompt_tokens_details=PromptTokensDetails(cached_tokens=self.cached_tokens))

    async def stream(self) -> AsyncIterator[GenerationChunk]:
        """The engine's chunks, noting each choice's token count (the caller closes ``chunks``)."""
        async for chunk in self.chunks:
            self.completion_tokens[chunk.index] = chunk.completion_tokens
            self.cached_tokens = max(self.cached_tokens, chunk.cached_tokens)
            yield chunk
        self.metrics.count_tokens(self.model.id, self.prompt_tokens, self.generated_tokens)

    async def collect(self) -> Collected:
        """Every choice, whole, once generation has ended (the engine stream is closed in any case)."""
        out = Collected(texts=[""] * self.n, finish={}, logprobs={i: [] for i in range(self.n)})
        try:
            async for chunk in self.stream():
                out.texts[chunk.index] += chunk.text
                if chunk.logprobs:
                    out.logprobs[chunk.index].extend(chunk.logprobs)
                if chunk.finish_reason is not None:
                    out.finish[chunk.index] = chunk.finish_reason
        finally:
            await self.chunks.aclose()
        return out


@dataclass(kw_only=True)
class ChatGeneration(Generation):
    """A chat generation: the request rendered with the model's template, and fresh output parsers per choice."""

    request: ChatCompletionRequest
    tool_names: list[str]
    turn: Turn
    raw: Request
    texts: dict[int, str] = field(default_factory=dict)  # every choice's raw text so far

    @classmethod
    async def start(cls, request: ChatCompletionRequest, raw: Request,
                    request_id: str | None = None) -> "ChatGeneration":
        """Render, tokenize, make the engine parameters and wait for the first chunk (errors come before any 200)."""
        model = registry_of(raw).chat_model(request.model)
        turn, chat = await Turn.begin(request, raw, model.id)
        rendered = model.render(chat)
        prompt_tokens = model.tokenize_prompt(rendered.prompt)
        if turn.documents and len(prompt_tokens) >= model.engine.n_ctx:
            names = ", ".join(repr(d.name) for d in turn.documents)
            over = len(prompt_tokens) - model.engine.n_ctx + 1
            raise ContextLengthError(
                f"the document(s) {names} do not fit the context: the prompt "
                f"is {len(prompt_tokens)} tokens, {over} tokens more than the {model.engine.n_ctx - 1} that a "
                f"context of {model.engine.n_ctx} tokens leaves for a prompt; shorten or split the document")
        params = request.to_sampling_params(
            model.defaults, max_tokens=request.new_token_limit(), stop_token_ids=model.stop_token_ids,
            logprobs=request.logprobs, top_logprobs=request.top_logprobs or 0,
            grammar=grammar_for(request, model.tool_parser, chat.tools),
            skip_special_tokens=model.skip_special_tokens)
        request_id = request_id or random_id("chatcmpl")
        chunks = await start_generation(model.engine, prompt_tokens, params, request_id, raw, model.id)
        return cls(request=request, model=model, request_id=request_id, tool_names=rendered.tool_names, turn=turn,
                   raw=raw, chunks=chunks, prompt_tokens=len(prompt_tokens), n=request.n, metrics=metrics_of(raw))

    async def results(self) -> list[ChoiceResult]:
        """Every choice, parsed, once generation has ended."""
        collected = await self.collect()
        results = []
        for index, text in enumerate(collected.texts):
            parser = self.model.output_parser(self.tool_names)  # fresh per choice
            parsed = parser.parse(text)
            reason = parser.finish_reason(collected.finish.get(index, "stop")) or "stop"
            results.append(ChoiceResult(index=index, parsed=parsed, finish_reason=reason,
                                        logprobs=collected.logprobs[index]))
        if results:
            await self.turn.finish(self.raw, results[0].parsed, self.request_id)
        return results

    async def remember(self) -> None:
        """After a stream has ended: store the turn, with choice 0's answer parsed anew from its text."""
        parsed = self.model.output_parser(self.tool_names).parse(self.texts.get(0, ""))
        await self.turn.finish(self.raw, parsed, self.request_id)

    async def events(self) -> AsyncIterator[ChoiceEvent]:
        """One event per engine chunk, through fresh per-choice parsers (the caller closes ``chunks``)."""
        parsers = [self.model.output_parser(self.tool_names) for _ in range(self.n)]  # fresh per choice
        async for chunk in self.stream():
            parser = parsers[chunk.index]
            self.texts[chunk.index] = self.texts.get(chunk.index, "") + chunk.text
            deltas = parser.feed(chunk.text) if chunk.text else []
            if chunk.finish_reason is not None:
                deltas += parser.finish()
            reason = parser.finish_reason(chunk.finish_reason) if chunk.finish_reason is not None else None
            yield ChoiceEvent(index=chunk.index, deltas=deltas, logprobs=chunk.logprobs, finish_reason=reason)
