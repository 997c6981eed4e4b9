"""What the chat layer renders, typed: a conversation's messages and the tools a prompt offers.

The API layer validates a request once, at its edge (``glm_edge.api.chat_input``), and hands the chat layer a
``ChatInput`` of these types; nothing below checks a message again. ``Message`` is the one form of a turn after the
edge: four roles (``developer`` is a ``system`` turn, the legacy ``function`` role and GLM's ``observation`` are
``tool`` turns), content as one text (None only for an assistant turn that only calls tools), calls as the wire
``ToolCall``. The conversation store keeps messages in this form.

``ToolDefinition`` is OpenAI's request-side function tool, used by the API's request model as it is (the chat layer
sits below the API layer, so the type lives here, as the assistant-side wire types live in ``chat.deltas``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glm_edge.chat.deltas import ToolCall

MessageRole = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    """One turn of a conversation, as the templates are given it."""

    role: MessageRole
    content: str | None = None
    reasoning_content: str | None = None  # an earlier assistant turn's thinking, when the client sent it back
    tool_calls: list[ToolCall] | None = None  # assistant turns only
    tool_call_id: str | None = None  # tool turns only
    name: str | None = None  # tool turns only: the function whose result this is

    def stored(self) -> dict[str, Any]:
        """The message as JSON data (what the conversation store keeps and ``GET /v1/conversations`` shows)."""
        return self.model_dump(mode="json", exclude_none=True)


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"] = "function"
    function: FunctionDefinition

    @property
    def name(self) -> str:
        return self.function.name

    def template_form(self) -> dict[str, Any]:
        """``{"type": "function", "function": {...}}`` as plain data, for the templates (which ``tojson`` it)."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class ChatInput:
    """A chat request as the chat layer renders it: every turn in order (stored conversation, GLM-API ``history``,
    the request's messages) and the tools the prompt offers (``tool_choice`` already applied)."""

    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
