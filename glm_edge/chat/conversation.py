"""OpenAI chat messages -> the form each model family's chat template expects.

Two steps:

1. ``normalize_messages``: validate what the client sent (``history`` prepended, content as a string
   or a list of text parts, assistant ``tool_calls``, ``tool`` results) into plain dicts.
2. ``to_template_input``: per family, the message list and top-level ``tools`` variable that the
   family's template reads (see DESIGN.md §4):

   - ``chatglm`` (glm-4-9b-chat): tools ride on a *system message* carrying a ``tools`` key; ``tool``
     results become ``observation`` turns; an assistant message with ``tool_calls`` becomes one
     ``{"role": "assistant", "metadata": name, "content": arguments}`` per call.
   - ``glm4`` (GLM-4-0414) and ``glm-z1``: the same message shapes; tools go in the top-level
     ``tools`` variable, which the template renders into the system turn. Z1 drops the reasoning of
     earlier assistant turns.
   - ``deepseek-r1`` (R1 distills): earlier assistant turns lose their reasoning; tools are refused.
   - ``gemma``: plain user/assistant turns; tools are refused.
   - ``qwen`` (Qwen2.5 instruct templates, ``<|im_start|>`` turns with ``<tool_call>``): OpenAI-shaped messages
     and top-level ``tools``, except that a call's ``arguments`` go to the template as the JSON *object* (the
     template writes ``arguments | tojson`` into ``{"name": ..., "arguments": ...}``).
   - ``chatml``: ``<|im_start|>`` templates without tools (SmolLM2): plain turns; tools are refused.
   - ``generic``: any other template: OpenAI-shaped messages, top-level ``tools``.

Every mistake is an ``InvalidRequestError`` (HTTP 400) naming the message at fault.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Literal, Mapping, get_args

from glm_edge.chat.reasoning import THINK_END
from glm_edge.errors import InvalidRequestError

FAMILIES = ("chatglm", "glm4", "glm-z1", "deepseek-r1", "gemma", "qwen", "chatml", "generic")
_TOOL_FAMILIES = {"chatglm", "glm4", "glm-z1", "qwen", "generic"}
# the roles a client may send: protocol.ChatMessage's type and this module's check read the same list
Role = Literal["system", "developer", "user", "assistant", "tool", "function", "observation"]
ROLES: tuple[str, ...] = get_args(Role)


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


def _as_dict(obj: Any, where: str) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):  # a pydantic wire model
        obj = obj.model_dump(exclude_none=True)
    if not isinstance(obj, Mapping):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    return dict(obj)


def _text_content(content: Any, where: str, model: str) -> str | None:
    """A message's content as one string: a string, null, or a list of text parts (joined by newlines). This is
    the one place that refuses the parts a model cannot read (image_url, input_audio, file...)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            here = f"{where}.content[{j}]"
            part = _as_dict(part, here)
            kind = part.get("type", "text")
            if kind in ("text", "input_text"):
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidRequestError(f"{here} is a text part without a text string", param=here)
                texts.append(text)
            else:
                article = "an" if str(kind)[:1].lower() in tuple("aeiou") else "a"
                raise InvalidRequestError(f"{here} is {article} {kind} part; {model} reads text only",
                                          param=here, code="unsupported_content_part")
        return "\n".join(texts)
    raise InvalidRequestError(f"{where}.content must be a string, null or a list of text parts", param=where)


def _tool_calls(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidRequestError(f"{where}.tool_calls must be a list", param=where)
    calls = []
    for j, call in enumerate(raw):
        here = f"{where}.tool_calls[{j}]"
        call = _as_dict(call, here)
        kind = call.get("type", "function")
        if kind != "function":
            raise InvalidRequestError(f"{here}.type must be 'function'", param=where)
        fn = _as_dict(call.get("function"), f"{here}.function")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"{here}.function.name must be a non-empty string", param=where)
        args = fn.get("arguments", "{}")
        if isinstance(args, (dict, list)):
            args = json.dumps(args, ensure_ascii=False)
        elif not isinstance(args, str):
            raise InvalidRequestError(f"{here}.function.arguments must be a JSON string", param=where)
        calls.append({"id": str(call.get("id") or f"call_{j}"), "type": "function",
                      "function": {"name": name, "arguments": args}})
    return calls


def normalize_messages(messages: Iterable[Any], history: Iterable[Any] | None = None, *,
                       model: str = "this model") -> list[dict[str, Any]]:
    """Validated messages, ``history`` first. Each is ``{"role", "content": str | None}`` plus
    ``tool_calls`` (assistant), ``tool_call_id``/``name`` (tool) and ``reasoning_content`` when given.
    ``developer`` becomes ``system``; the legacy ``function`` role and GLM's ``observation`` become ``tool``."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise InvalidRequestError("messages must be a list", param="messages")
    earlier: list[Any] = []
    if history is not None:
        if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
            raise InvalidRequestError("history must be a list of messages", param="history")
        earlier = list(history)
    items = [("history", i, m) for i, m in enumerate(earlier)]
    items += [("messages", i, m) for i, m in enumerate(list(messages))]
    if not any(src == "messages" for src, _, _ in items):
        raise InvalidRequestError("messages must not be empty", param="messages")

    out: list[dict[str, Any]] = []
    for src, i, raw in items:
        where = f"{src}[{i}]"
        msg = _as_dict(raw, where)
        role = msg.get("role")
        if role not in ROLES:
            raise InvalidRequestError(f"{where}.role must be one of {', '.join(ROLES)} (got {role!r})", param=src)
        role = {"developer": "system", "function": "tool", "observation": "tool"}.get(role, role)
        content = _text_content(msg.get("content"), where, model)
        norm: dict[str, Any] = {"role": role, "content": content}
        if role == "assistant":
            if msg.get("tool_calls"):
                norm["tool_calls"] = _tool_calls(msg["tool_calls"], where)
            elif msg.get("function_call"):  # the legacy single-call form
                norm["tool_calls"] = _tool_calls([{"type": "function", "function": msg["function_call"]}], where)
            elif content is None:
                raise InvalidRequestError(f"{where}: an assistant message needs content or tool_calls", param=src)
            reasoning = msg.get("reasoning_content")
            if isinstance(reasoning, str):
                norm["reasoning_content"] = reasoning
        elif content is None:
            raise InvalidRequestError(f"{where}: a {role} message needs content", param=src)
        if role == "tool":
            for key in ("tool_call_id", "name"):
                if isinstance(msg.get(key), str):
                    norm[key] = msg[key]
        out.append(norm)
    return out


def normalize_tools(tools: Any, tool_choice: Any = None) -> list[dict[str, Any]]:
    """The offered function tools in OpenAI form, narrowed by ``tool_choice`` ("none" offers none;
    ``{"type": "function", "function": {"name": N}}`` offers only N; "auto"/"required"/None offer all)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list", param="tools")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        tool = _as_dict(tool, f"tools[{i}]")
        if tool.get("type", "function") != "function":
            raise InvalidRequestError(f"tools[{i}].type must be 'function'", param="tools")
        fn = _as_dict(tool.get("function"), f"tools[{i}].function")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequestError(f"tools[{i}].function.name must be a non-empty string", param="tools")
        out.append({"type": "function", "function": fn})
    if tool_choice is None or tool_choice in ("auto", "required"):
        return out
    if tool_choice == "none":
        return []
    choice = _as_dict(tool_choice, "tool_choice")
    name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), Mapping) else None
    chosen = [t for t in out if t["function"]["name"] == name]
    if not chosen:
        raise InvalidRequestError(f"tool_choice names a function that is not in tools: {name!r}", param="tool_choice")
    return chosen


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def strip_reasoning(content: str) -> str:
    """The visible answer of an earlier assistant turn: the text after the last ``</think>``."""
    if THINK_END in content:
        return content.split(THINK_END)[-1].lstrip()
    return content


def _glm_messages(messages: list[dict[str, Any]], *, drop_reasoning: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for msg in messages:
        role, content = msg["role"], msg["content"] or ""
        if role == "tool":
            out.append({"role": "observation", "content": content})
        elif role == "assistant":
            if drop_reasoning:
                content = strip_reasoning(content)
            if msg.get("tool_calls"):
                if content.strip():
                    out.append({"role": "assistant", "metadata": "", "content": content})
                for call in msg["tool_calls"]:
                    out.append({"role": "assistant", "metadata": call["function"]["name"],
                                "content": call["function"]["arguments"]})
            else:
                out.append({"role": "assistant", "metadata": "", "content": content})
        else:
            out.append({"role": role, "content": content})
    return out


def _refuse_tools(family: str, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
    if tools:
        raise InvalidRequestError(f"tool calling is not supported by {model}: its chat template has no tools",
                                  param="tools")
    for i, msg in enumerate(messages):
        if msg["role"] == "tool" or msg.get("tool_calls"):
            raise InvalidRequestError(
                f"messages[{i}]: tool calls and tool results are not supported by {model}", param="messages")


def to_template_input(family: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                      *, model: str = "this model") -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for the template of ``family``, from ``normalize_messages``/``normalize_tools`` output.
    The second item is the template's top-level ``tools`` variable (None when the family has none)."""
    _check_family(family)
    tools = tools or []
    if family == "chatglm":
        out = _glm_messages(messages, drop_reasoning=False)
        if tools:
            out.insert(0, {"role": "system", "content": "", "tools": tools})
        return out, None
    if family in ("glm4", "glm-z1"):
        return _glm_messages(messages, drop_reasoning=family == "glm-z1"), tools or None
    if family == "deepseek-r1":
        _refuse_tools(family, model, messages, tools)
        out = []
        for msg in messages:
            content = msg["content"] or ""
            if msg["role"] == "assistant" and THINK_END in content:
                # exactly what the distills' own template keeps (`content.split('</think>')[-1]`), blank line
                # after `</think>` included: the prompt must equal apply_chat_template's token for token
                content = content.split(THINK_END)[-1]
            out.append({"role": msg["role"], "content": content})
        return out, None
    if family in ("gemma", "chatml"):
        _refuse_tools(family, model, messages, tools)
        return [{"role": m["role"], "content": m["content"] or ""} for m in messages], None
    # generic and qwen: OpenAI shapes, as transformers-style templates read them
    out = []
    for msg in messages:
        item = {k: v for k, v in msg.items() if k != "reasoning_content"}
        if item["content"] is None:
            item["content"] = ""
        if family == "qwen" and item.get("tool_calls"):
            item["tool_calls"] = [_with_object_arguments(call) for call in item["tool_calls"]]
        out.append(item)
    return out, tools or None


def _with_object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """A call whose JSON-text ``arguments`` are parsed (Qwen's template serializes them itself); arguments that
    are not a JSON object stay the client's text."""
    try:
        arguments = json.loads(call["function"]["arguments"])
    except ValueError:
        return call
    if not isinstance(arguments, dict):
        return call
    return {**call, "function": {**call["function"], "arguments": arguments}}
