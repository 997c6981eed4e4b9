"""Chat requests as the server takes them, for tests of the chat layer: a request body validated by the request
model and converted at the API layer's edge (``glm_edge.api.chat_input``), exactly as every served chat request is,
then rendered by the chat layer."""

from __future__ import annotations

from typing import Any

from glm_edge.api.chat_input import chat_input
from glm_edge.api.protocol import ChatCompletionRequest
from glm_edge.chat.messages import ChatInput
from glm_edge.chat.prompt import RenderedPrompt, render_chat_prompt
from glm_edge.chat.template import ChatTemplate


def edge_input(messages: Any, *, history: Any = None, tools: Any = None, tool_choice: Any = None,
               model: str = "this model") -> ChatInput:
    """The chat layer's input for this request body (pydantic's ValidationError or InvalidRequestError if bad)."""
    body: dict[str, Any] = {"messages": messages}
    for key, value in (("history", history), ("tools", tools), ("tool_choice", tool_choice)):
        if value is not None:
            body[key] = value
    return chat_input(ChatCompletionRequest.model_validate(body), model)


def render_request(template: ChatTemplate, family: str, messages: Any, *, history: Any = None, tools: Any = None,
                   tool_choice: Any = None, model: str = "this model", **render: Any) -> RenderedPrompt:
    """The prompt the server renders for this request (``ChatModel.render`` -> ``render_chat_prompt``)."""
    chat = edge_input(messages, history=history, tools=tools, tool_choice=tool_choice, model=model)
    return render_chat_prompt(template, family, chat, model=model, **render)
