"""Typed chat messages (``glm_edge.chat.messages``, validated once by the API layer's edge) -> the form each model
family's chat template expects: per family, the message list and top-level ``tools`` variable that the family's
template reads (see DESIGN.md §4):

- ``chatglm`` (glm-4-9b-chat): tools ride on a *system message* carrying a ``tools`` key; ``tool`` results become
  ``observation`` turns; an assistant message with ``tool_calls`` becomes one
  ``{"role": "assistant", "metadata": name, "content": arguments}`` per call.
- ``glm4`` (GLM-4-0414) and ``glm-z1``: the same message shapes; tools go in the top-level ``tools`` variable,
  which the template renders into the system turn. Z1 drops the reasoning of earlier assistant turns.
- ``deepseek-r1`` (R1 distills): earlier assistant turns lose their reasoning; tools are refused.
- ``gemma``: plain user/assistant turns; tools are refused.
- ``qwen`` (Qwen2.5 instruct templates, ``<|im_start|>`` turns with ``<tool_call>``): OpenAI-shaped messages and
  top-level ``tools``, except that a call's ``arguments`` go to the template as the JSON *object* (the template
  writes ``arguments | tojson`` into ``{"name": ..., "arguments": ...}``).
- ``chatml``: ``<|im_start|>`` templates without tools (SmolLM2): plain turns; tools are refused.
- ``generic``: any other template: OpenAI-shaped messages, top-level ``tools``.

The only requests refused here are what a family cannot render (tools offered to, or tool turns sent to, a family
whose template has none): an ``InvalidRequestError`` (HTTP 400) naming the model.
"""

from __future__ import annotations

import json
from typing import Any

from glm_edge.chat.deltas import ToolCall
from glm_edge.chat.messages import Message, ToolDefinition
from glm_edge.chat.reasoning import THINK_END
from glm_edge.errors import InvalidRequestError

FAMILIES = ("chatglm", "glm4", "glm-z1", "deepseek-r1", "gemma", "qwen", "chatml", "generic")
_TOOL_FAMILIES = {"chatglm", "glm4", "glm-z1", "qwen", "generic"}


# Parsers a family's output needs: (reasoning parser, tool parser). The catalog states them per model;
# this is the fallback for a model outside the catalog (a local GGUF), found by ``detect_family``.
FAMILY_PARSERS: dict[str, tuple[str | None, str | None]] = {
    "chatglm": (None, "glm4"),
    "glm4": (None, "glm4"),
    "glm-z1": ("deepseek_r1", "glm4"),
    "deepseek-r1": ("deepseek_r1", None),
    "gemma": (None, None),
    "qwen": (None, "qwen"),
    "chatml": (None, None),
    "generic": (None, None),
}

# What a family's own tokenizer puts before any text when asked to add special tokens (GLM's encode()
# starts with get_prefix_tokens(): [gMASK] and <sop>); families not listed add only what the GGUF says (BOS).
FAMILY_PREFIX: dict[str, str] = {
    "chatglm": "[gMASK]<sop>",
    "glm4": "[gMASK]<sop>",
    "glm-z1": "[gMASK]<sop>",
}


def detect_family(template_source: str) -> str:
    """The family of a chat template by its markers (for GGUFs that are not in the catalog)."""
    if "[gMASK]<sop>" in template_source:
        if "item['tools'] is defined" in template_source:
            return "chatglm"
        return "glm-z1" if "<think>" in template_source else "glm4"
    if "<｜Assistant｜>" in template_source and "<think>" in template_source:
        return "deepseek-r1"
    if "<start_of_turn>" in template_source:
        return "gemma"
    if "<|im_start|>" in template_source and "<tool_call>" in template_source:
        return "qwen"
    if "<|im_start|>" in template_source and "tools" not in template_source:
        return "chatml"
    return "generic"


def supports_tools(family: str) -> bool:
    _check_family(family)
    return family in _TOOL_FAMILIES


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown chat family {family!r}; valid: {', '.join(FAMILIES)}")


def strip_reasoning(content: str) -> str:
    """The visible answer of an earlier assistant turn: the text after the last ``</think>``."""
    if THINK_END in content:
        return content.split(THINK_END)[-1].lstrip()
    return content


def _glm_messages(messages: list[Message], *, drop_reasoning: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for msg in messages:
        content = msg.content or ""
        if msg.role == "tool":
            out.append({"role": "observation", "content": content})
        elif msg.role == "assistant":
            if drop_reasoning:
                content = strip_reasoning(content)
            if msg.tool_calls:
                if content.strip():
                    out.append({"role": "assistant", "metadata": "", "content": content})
                for call in msg.tool_calls:
                    out.append({"role": "assistant", "metadata": call.function.name,
                                "content": call.function.arguments})
            else:
                out.append({"role": "assistant", "metadata": "", "content": content})
        else:
            out.append({"role": msg.role, "content": content})
    return out


def _refuse_tools(model: str, messages: list[Message], tools: list[ToolDefinition]) -> None:
    if tools:
        raise InvalidRequestError(f"tool calling is not supported by {model}: its chat template has no tools",
                                  param="tools")
    for i, msg in enumerate(messages):
        if msg.role == "tool" or msg.tool_calls:
            raise InvalidRequestError(
                f"messages[{i}]: tool calls and tool results are not supported by {model}", param="messages")


def to_template_input(family: str, messages: list[Message], tools: list[ToolDefinition] | None = None,
                      *, model: str = "this model") -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for the template of ``family``, as the plain data a Jinja template reads. The second item
    is the template's top-level ``tools`` variable (None when the family has none)."""
    _check_family(family)
    tools = tools or []
    offered = [tool.template_form() for tool in tools]
    if family == "chatglm":
        out = _glm_messages(messages, drop_reasoning=False)
        if offered:
            out.insert(0, {"role": "system", "content": "", "tools": offered})
        return out, None
    if family in ("glm4", "glm-z1"):
        return _glm_messages(messages, drop_reasoning=family == "glm-z1"), offered or None
    if family == "deepseek-r1":
        _refuse_tools(model, messages, tools)
        out = []
        for msg in messages:
            content = msg.content or ""
            if msg.role == "assistant" and THINK_END in content:
                # exactly what the distills' own template keeps (`content.split('</think>')[-1]`), blank line
                # after `</think>` included: the prompt must equal apply_chat_template's token for token
                content = content.split(THINK_END)[-1]
            out.append({"role": msg.role, "content": content})
        return out, None
    if family in ("gemma", "chatml"):
        _refuse_tools(model, messages, tools)
        return [{"role": m.role, "content": m.content or ""} for m in messages], None
    # generic and qwen: OpenAI shapes, as transformers-style templates read them
    out = []
    for msg in messages:
        item = msg.model_dump(mode="json", exclude_none=True, exclude={"reasoning_content", "tool_calls"})
        item["content"] = msg.content or ""
        if msg.tool_calls:
            item["tool_calls"] = [_template_call(call, object_arguments=family == "qwen") for call in msg.tool_calls]
        out.append(item)
    return out, offered or None


def _template_call(call: ToolCall, *, object_arguments: bool) -> dict[str, Any]:
    """A call as plain data. With ``object_arguments`` (Qwen's template serializes them itself) JSON-text arguments
    that hold an object are parsed; any other arguments stay the client's text."""
    data = call.model_dump(mode="json")
    if object_arguments:
        try:
            arguments = json.loads(call.function.arguments)
        except ValueError:
            return data
        if isinstance(arguments, dict):
            data["function"]["arguments"] = arguments
    return data
