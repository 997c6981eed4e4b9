"""One call from an OpenAI chat request to the prompt text: validate, convert for the family, render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from glm_edge.chat.conversation import normalize_messages, normalize_tools, to_template_input, tool_names
from glm_edge.chat.template import ChatTemplate


@dataclass(frozen=True)
class ChatInput:
    """What a chat request gives the chat layer, as plain data (the API layer builds it from its wire types)."""

    messages: list[dict[str, Any]]
    history: list[dict[str, Any]] | None = None  # GLM-API servers: earlier turns, prepended to messages
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


@dataclass
class RenderedPrompt:
    prompt: str  # tokenize with special tokens parsed and no extra BOS
    tool_names: list[str] = field(default_factory=list)  # the functions offered: give them to the tool parser


def render_chat_prompt(template: ChatTemplate, family: str, messages: Iterable[Any], *,
                       history: Iterable[Any] | None = None, tools: Any = None, tool_choice: Any = None,
                       bos_token: str = "", eos_token: str = "", add_generation_prompt: bool = True,
                       model: str = "this model", **extra: Any) -> RenderedPrompt:
    """Raises ``InvalidRequestError`` for anything wrong with the request (including tools offered to a
    family that has none, and messages the template itself refuses)."""
    normalized = normalize_messages(messages, history, model=model)
    offered = normalize_tools(tools, tool_choice)
    template_messages, template_tools = to_template_input(family, normalized, offered, model=model)
    prompt = template.render(template_messages, tools=template_tools, add_generation_prompt=add_generation_prompt,
                             bos_token=bos_token, eos_token=eos_token, **extra)
    return RenderedPrompt(prompt=prompt, tool_names=tool_names(offered))
