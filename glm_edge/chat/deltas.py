"""The assistant-message wire types: what the output parsers emit and what the API sends, one set.

These are OpenAI's shapes (pydantic models): a finished call (``ToolCall``), a piece of a streamed one
(``ToolCallDelta``) and one SSE chunk's ``delta`` (``DeltaMessage``). The parsers build them directly and
``api/protocol.py`` serves them as they are (it imports them from here, since the chat layer sits below the API
layer); there is no other copy and no conversion in between. The one tool-call id source is ``new_tool_call_id``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _is_none(value: object) -> bool:
    return value is None


def omitted_when_none(alias: str | None = None) -> Any:
    """A response field that is left out of the JSON when None: for fields that OpenAI's spec types as
    present-or-absent but not nullable (``tool_calls``, ``system_fingerprint``, a delta's fields)."""
    return Field(default=None, alias=alias, exclude_if=_is_none)


class FunctionCall(BaseModel):
    name: str
    arguments: str  # the JSON text exactly as the model wrote it


class ToolCall(BaseModel):
    """One finished call."""

    id: str = Field(default_factory=new_tool_call_id)
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def of(cls, name: str, arguments: str) -> ToolCall:
        return cls(function=FunctionCall(name=name, arguments=arguments))


# A chunk's delta carries only what is new: its fields are left out when None.


class ToolCallDeltaFunction(BaseModel):
    name: str | None = omitted_when_none()
    arguments: str | None = omitted_when_none()


class ToolCallDelta(BaseModel):
    """A piece of a streamed call, as OpenAI streams them: the first piece of call ``index`` carries ``id``,
    ``type`` and ``name`` (and ``arguments`` ""), the following ones carry argument text."""

    index: int
    id: str | None = omitted_when_none()
    type: Literal["function"] | None = omitted_when_none()
    function: ToolCallDeltaFunction

    @classmethod
    def opening(cls, index: int, name: str) -> ToolCallDelta:
        return cls(index=index, id=new_tool_call_id(), type="function",
                   function=ToolCallDeltaFunction(name=name, arguments=""))

    @classmethod
    def more_arguments(cls, index: int, arguments: str) -> ToolCallDelta:
        return cls(index=index, function=ToolCallDeltaFunction(arguments=arguments))


class DeltaMessage(BaseModel):
    """One SSE chunk's ``delta``. A parser's delta holds at most one tool-call piece, so that a chunk never
    holds two pieces of the same call."""

    role: Literal["assistant"] | None = omitted_when_none()
    content: str | None = omitted_when_none()
    reasoning_content: str | None = omitted_when_none()
    tool_calls: list[ToolCallDelta] | None = omitted_when_none()

    @classmethod
    def call_piece(cls, piece: ToolCallDelta) -> DeltaMessage:
        return cls(tool_calls=[piece])

    @property
    def tool_call(self) -> ToolCallDelta | None:
        """The delta's tool-call piece, if it has one."""
        return self.tool_calls[0] if self.tool_calls else None

    def is_empty(self) -> bool:
        return not self.content and not self.reasoning_content and not self.tool_calls


@dataclass
class ParsedOutput:
    """A whole assistant message as the parsers found it. ``content`` is None when the answer is only tool calls;
    ``reasoning_content`` is None when there was no reasoning."""

    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
