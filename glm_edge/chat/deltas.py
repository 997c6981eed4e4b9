"""What the output parsers produce: OpenAI-shaped pieces of an assistant message, whole or streamed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class ToolCall:
    """One finished call: ``arguments`` is the JSON text exactly as the model wrote it."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ToolCallDelta:
    """A piece of a streamed call. The first piece of call ``index`` carries ``id`` and ``name``
    (and ``arguments`` ""), the following ones carry argument text, as OpenAI streams them."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index}
        function: dict[str, Any] = {"arguments": self.arguments}
        if self.id is not None:
            out["id"] = self.id
            out["type"] = "function"
        if self.name is not None:
            function["name"] = self.name
        out["function"] = function
        return out


@dataclass
class DeltaMessage:
    """One SSE chunk's ``delta`` (without ``role``): at most one tool-call piece, so that a chunk never
    holds two pieces of the same call."""

    content: str = ""
    reasoning_content: str = ""
    tool_call: ToolCallDelta | None = None

    def is_empty(self) -> bool:
        return not self.content and not self.reasoning_content and self.tool_call is None

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reasoning_content:
            out["reasoning_content"] = self.reasoning_content
        if self.content:
            out["content"] = self.content
        if self.tool_call is not None:
            out["tool_calls"] = [self.tool_call.to_openai()]
        return out


@dataclass
class ParsedOutput:
    """A whole assistant message. ``content`` is None when the answer is only tool calls;
    ``reasoning_content`` is None when there was no reasoning."""

    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_openai_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning_content is not None:
            msg["reasoning_content"] = self.reasoning_content
        if self.tool_calls:
            msg["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        return msg
