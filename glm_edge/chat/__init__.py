"""The chat layer: the typed messages it takes (validated once by the API layer's edge), prompt rendering from the
model's Jinja template, the message conversions each model family needs, and the reasoning and tool-call output
parsers (streaming and one-shot). Pure Python: no engine imports here; the engine gives text, this layer gives
OpenAI shapes."""

from glm_edge.chat.conversation import (
    FAMILIES,
    FAMILY_PARSERS,
    detect_family,
    supports_tools,
    to_template_input,
)
from glm_edge.chat.deltas import DeltaMessage, ParsedOutput, ToolCall, ToolCallDelta
from glm_edge.chat.messages import ChatInput, Message, ToolDefinition
from glm_edge.chat.output import REASONING_PARSERS, TOOL_PARSERS, ChatOutputParser
from glm_edge.chat.prompt import RenderedPrompt, render_chat_prompt
from glm_edge.chat.template import ChatTemplate, builtin_template_names, load_template

__all__ = [
    "FAMILIES", "FAMILY_PARSERS", "detect_family", "supports_tools", "to_template_input",
    "DeltaMessage", "ParsedOutput", "ToolCall", "ToolCallDelta",
    "ChatInput", "Message", "ToolDefinition",
    "REASONING_PARSERS", "TOOL_PARSERS", "ChatOutputParser",
    "RenderedPrompt", "render_chat_prompt",
    "ChatTemplate", "builtin_template_names", "load_template",
]
