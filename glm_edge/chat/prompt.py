"""One call from a chat request, typed and validated by the API layer's edge, to the prompt text: convert for the
family, render with the model's template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glm_edge.chat.conversation import to_template_input
from glm_edge.chat.messages import ChatInput
from glm_edge.chat.template import ChatTemplate


@dataclass
class RenderedPrompt:
    prompt: str  # tokenize with special tokens parsed and no extra BOS
    tool_names: list[str] = field(default_factory=list)  # the functions offered: give them to the tool parser


def render_chat_prompt(template: ChatTemplate, family: str, chat: ChatInput, *, bos_token: str = "",
                       eos_token: str = "", add_generation_prompt: bool = True, model: str = "this model",
                       **extra: Any) -> RenderedPrompt:
    """Raises ``InvalidRequestError`` for what the family cannot render (tools offered to a family that has none)
    and for messages the template itself refuses."""
    template_messages, template_tools = to_template_input(family, chat.messages, chat.tools, model=model)
    prompt = template.render(template_messages, tools=template_tools, add_generation_prompt=add_generation_prompt,
                             bos_token=bos_token, eos_token=eos_token, **extra)
    return RenderedPrompt(prompt=prompt, tool_names=[tool.name for tool in chat.tools])
