"""Per-choice output parsing: reasoning first, then tool calls, streamed or one-shot.

The catalog names a model's parsers (``reasoning_parser = "deepseek_r1"``, ``tool_parser = "glm4"``);
``ChatOutputParser.create`` builds a FRESH pair for each choice of each request (vLLM's shared parser
state caused real bugs under concurrency and ``n > 1``), so nothing here is shared or global except
the registries, which only map names to classes.
"""

from __future__ import annotations

from typing import Sequence

from glm_edge.chat.deltas import DeltaMessage, ParsedOutput, ToolCall
from glm_edge.chat.qwen_tool_parser import QwenToolParser
from glm_edge.chat.reasoning import DeepSeekR1ReasoningParser, ReasoningParser
from glm_edge.chat.tool_parsers import Glm4ToolParser, ToolParser

REASONING_PARSERS: dict[str, type[ReasoningParser]] = {
    DeepSeekR1ReasoningParser.name: DeepSeekR1ReasoningParser,
}
TOOL_PARSERS: dict[str, type[ToolParser]] = {
    Glm4ToolParser.name: Glm4ToolParser,
    QwenToolParser.name: QwenToolParser,
}


def reasoning_parser_class(name: str) -> type[ReasoningParser]:
    try:
        return REASONING_PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown reasoning parser {name!r}; valid: {', '.join(sorted(REASONING_PARSERS))}") from None


def tool_parser_class(name: str) -> type[ToolParser]:
    try:
        return TOOL_PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown tool parser {name!r}; valid: {', '.join(sorted(TOOL_PARSERS))}") from None


class ChatOutputParser:
    """Parses one choice's generated text. Without parsers it passes text through as content."""

    def __init__(self, reasoning: ReasoningParser | None = None, tools: ToolParser | None = None) -> None:
        self.reasoning = reasoning
        self.tools = tools
        self._saw_tool_call = False

    @classmethod
    def create(cls, reasoning_parser: str | None = None, tool_parser: str | None = None,
               tool_names: Sequence[str] = ()) -> "ChatOutputParser":
        """Fresh parsers for one choice. ``tool_names``: the functions offered to this request (an empty
        list still runs the tool parser, which then only trims the answer's leading newline)."""
        reasoning = reasoning_parser_class(reasoning_parser)() if reasoning_parser else None
        tools = tool_parser_class(tool_parser)(list(tool_names)) if tool_parser else None
        return cls(reasoning, tools)

    # one-shot --------------------------------------------------------------------------------
    def parse(self, text: str) -> ParsedOutput:
        reasoning: str | None = None
        content = text
        if self.reasoning is not None:
            reasoning, content = self.reasoning.extract(text)
        calls: list[ToolCall] = []
        if self.tools is not None:
            content, calls = self.tools.extract(content)
        self._saw_tool_call = bool(calls)
        return ParsedOutput(content=None if calls and not content else content,
                            reasoning_content=reasoning or None, tool_calls=calls)

    # streaming -------------------------------------------------------------------------------
    def feed(self, text: str) -> list[DeltaMessage]:
        """Deltas to send for newly generated ``text`` (possibly none): each is one SSE chunk."""
        return self._route(*self.reasoning.feed(text) if self.reasoning else ("", text), final=False)

    def finish(self) -> list[DeltaMessage]:
        """Whatever was held back, at the end of generation."""
        return self._route(*self.reasoning.finish() if self.reasoning else ("", ""), final=True)

    def _route(self, reasoning: str, content: str, *, final: bool) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        if reasoning:
            out.append(DeltaMessage(reasoning_content=reasoning))
        if self.tools is None:
            if content:
                out.append(DeltaMessage(content=content))
            return out
        pieces = self.tools.feed(content) if content else []
        if final:
            pieces += self.tools.finish()
        for piece in pieces:
            if piece.tool_call is not None:
                self._saw_tool_call = True
            out.append(piece)
        return out

    def finish_reason(self, engine_reason: str | None) -> str | None:
        """OpenAI's finish_reason: "tool_calls" when the model stopped after making calls."""
        if self._saw_tool_call and engine_reason == "stop":
            return "tool_calls"
        return engine_reason
