"""The edge between the wire and the chat layer: a chat request whose shapes pydantic has checked
(``protocol.ChatCompletionRequest``) becomes the chat layer's typed ``ChatInput`` here, once; nothing below checks a
message again.

What the request model's types cannot say is checked here, each mistake a 400 naming the message or part at fault:
a content part the model cannot read (image_url, input_audio...; ``file`` parts are read as documents when a reader
is given), a text part without text, an assistant turn with neither content nor calls, any other turn without
content. On the way the seven wire roles fold into the chat layer's four (``developer`` -> ``system``; ``function``
and GLM's ``observation`` -> ``tool``), text parts join with newlines, the legacy ``function_call`` becomes
``tool_calls``, and ``tool_choice`` narrows the offered tools.
"""

from __future__ import annotations

from typing import Any, Sequence

from glm_edge.api.protocol import ChatCompletionRequest, ChatMessage, ContentPart, NamedToolChoice
from glm_edge.chat.deltas import ToolCall
from glm_edge.chat.messages import ChatInput, Message, MessageRole, ToolDefinition
from glm_edge.documents import DocumentReader
from glm_edge.errors import InvalidRequestError

_TEXT_PARTS = ("text", "input_text")
# every wire role (protocol.Role) and the chat layer's role it becomes
CHAT_ROLE: dict[str, MessageRole] = {"system": "system", "developer": "system", "user": "user",
                                 "assistant": "assistant", "tool": "tool", "function": "tool", "observation": "tool"}


def chat_input(request: ChatCompletionRequest, model: str = "this model", *, earlier: Sequence[Message] = (),
               files: DocumentReader | None = None) -> ChatInput:
    """The chat layer's input: ``earlier`` turns (a stored conversation), then the request's ``history`` and
    ``messages``, and the tools the prompt offers. ``model`` names the model in the errors."""
    return ChatInput(messages=[*earlier, *request_messages(request, model, files)], tools=offered_tools(request))


def request_messages(request: ChatCompletionRequest, model: str = "this model",
                     files: DocumentReader | None = None) -> list[Message]:
    """The request's own turns, typed: ``history`` (GLM-API servers' earlier turns), then ``messages``."""
    history = [to_message(m, f"history[{i}]", model, files) for i, m in enumerate(request.history or [])]
    return history + [to_message(m, f"messages[{i}]", model, files) for i, m in enumerate(request.messages)]


def has_file_parts(request: ChatCompletionRequest) -> bool:
    """Whether converting the request reads documents (blocking work, for a thread)."""
    return any(isinstance(m.content, list) and any(p.type == "file" for p in m.content)
               for m in [*(request.history or []), *request.messages])


def offered_tools(request: ChatCompletionRequest) -> list[ToolDefinition]:
    """The function tools the prompt offers: none for ``tool_choice`` "none", only the named one for a named
    choice (the request model has checked that it is among ``tools``), else all."""
    tools = list(request.tools or [])
    choice = request.tool_choice
    if choice == "none":
        return []
    if isinstance(choice, NamedToolChoice):
        return [t for t in tools if t.name == choice.function.name]
    return tools


def stored_message(data: dict[str, Any]) -> Message:
    """A message the conversation store kept: this version's ``Message`` form, or the wire form that earlier
    versions stored (read as a client's message would be)."""
    return to_message(ChatMessage.model_validate(data), "stored message", "this model", None)


def to_message(message: ChatMessage, where: str, model: str, files: DocumentReader | None) -> Message:
    param = where.split("[", 1)[0]
    role = CHAT_ROLE[message.role]
    content = _text(message.content, where, model, files)
    if role == "assistant":
        legacy = message.function_call
        calls = message.tool_calls or ([] if legacy is None else [ToolCall(function=legacy)])
        if not calls and content is None:
            raise InvalidRequestError(f"{where}: an assistant message needs content or tool_calls", param=param)
        return Message(role=role, content=content, tool_calls=calls or None,
                       reasoning_content=message.reasoning_content)
    if content is None:
        raise InvalidRequestError(f"{where}: a {role} message needs content", param=param)
    if role == "tool":
        return Message(role=role, content=content, tool_call_id=message.tool_call_id, name=message.name)
    return Message(role=role, content=content)


def _text(content: str | list[ContentPart] | None, where: str, model: str, files: DocumentReader | None) -> str | None:
    """A message's content as one string: a string, null, or its parts (text, and documents read from file parts)
    joined by newlines. The one place that refuses the parts a model cannot read."""
    if content is None or isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        if part.type in _TEXT_PARTS:
            if part.text is None:
                raise InvalidRequestError(f"{here} is a text part without a text string", param=here)
            texts.append(part.text)
        elif part.type == "file" and files is not None:
            texts.append(files.read(part, here))
        else:
            article = "an" if part.type[:1].lower() in tuple("aeiou") else "a"
            raise InvalidRequestError(f"{here} is {article} {part.type} part; {model} reads text only",
                                      param=here, code="unsupported_content_part")
    return "\n".join(texts)
