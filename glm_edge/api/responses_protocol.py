"""Pydantic models of the Responses API (`POST /v1/responses`): the request, its input items and tools, the
response object with its output items, and the streamed events. Validated here once, then mapped onto the chat request
the chat layer consumes (``ResponsesRequest.to_chat_request``); served by the same chat generation as
`/v1/chat/completions`. The chat completion, error and shared shapes are in ``glm_edge.api.protocol``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from glm_edge.api.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    ContentPart,
    ErrorBody,
    JsonSchemaFormat,
    NamedToolChoice,
    NamedToolChoiceFunction,
    RequestModel,
    ResponseFormat,
    now,
)
from glm_edge.chat.deltas import FunctionCall, ToolCall, omitted_when_none
from glm_edge.chat.messages import FunctionDefinition, ToolDefinition
from glm_edge.errors import InvalidRequestError


def response_item_id(prefix: str) -> str:
    """OpenAI's ids of responses and their items: ``resp_…``, ``msg_…``, ``fc_…``, ``rs_…``."""
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseContentPart(RequestModel):
    """A part of an input message: ``input_text`` (or ``output_text`` in an earlier assistant turn). Other parts
    (``input_image``, ``input_file``...) parse here and are refused by the chat layer in one sentence."""

    type: str
    text: str | None = None

    def to_chat(self) -> ContentPart:
        kind = "text" if self.type in ("input_text", "output_text", "text") else self.type
        return ContentPart(type=kind, text=self.text)


class ResponseInputMessage(RequestModel):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Union[str, list[ResponseContentPart]]


class ResponseFunctionCallInput(RequestModel):
    """A call the model made earlier (a ``function_call`` output item sent back)."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None


class ResponseFunctionCallOutputInput(RequestModel):
    """A tool's result going back to the model."""

    type: Literal["function_call_output"]
    call_id: str
    output: Union[str, list[ResponseContentPart]]


class ResponseReasoningInput(RequestModel):
    """An earlier reasoning item sent back: the R1/Z1 templates drop earlier reasoning, so it is not rendered."""

    type: Literal["reasoning"]


def _input_item_tag(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return str(kind)


ResponseInputItem = Annotated[
    Union[Annotated[ResponseInputMessage, Tag("message")],
          Annotated[ResponseFunctionCallInput, Tag("function_call")],
          Annotated[ResponseFunctionCallOutputInput, Tag("function_call_output")],
          Annotated[ResponseReasoningInput, Tag("reasoning")]],
    Discriminator(_input_item_tag, custom_error_type="invalid_input_item",
                  custom_error_message="an input item's type must be message, function_call, function_call_output "
                                       "or reasoning")]


class ResponseFunctionTool(RequestModel):
    """A function tool in the Responses API's flat shape (``name`` at the top, no ``function`` object)."""

    type: str = "function"
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("type")
    @classmethod
    def _function_only(cls, value: str) -> str:
        if value != "function":
            raise ValueError(f"only function tools are served here, not {value!r}")
        return value


class ResponseNamedToolChoice(RequestModel):
    type: Literal["function"]
    name: str


class ResponseTextFormat(RequestModel):
    """``text.format``: plain text, any JSON object, or JSON following ``schema`` (echoed as given)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = omitted_when_none()
    description: str | None = omitted_when_none()
    schema_: dict[str, Any] | None = omitted_when_none(alias="schema")
    strict: bool | None = omitted_when_none()

    @model_validator(mode="after")
    def _schema_named(self) -> "ResponseTextFormat":
        if self.type == "json_schema" and (self.schema_ is None or not self.name):
            raise ValueError("a json_schema format needs a name and a schema")
        return self


class ResponseTextConfig(RequestModel):
    format: ResponseTextFormat = Field(default_factory=ResponseTextFormat)


class ResponsesRequest(RequestModel):
    model: str | None = None
    input: Union[str, list[ResponseInputItem]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    tools: list[ResponseFunctionTool] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], ResponseNamedToolChoice, None] = None
    parallel_tool_calls: bool | None = None
    text: ResponseTextConfig | None = None
    stream: bool = False
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ResponsesRequest":
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input must not be empty")
        if isinstance(self.tool_choice, ResponseNamedToolChoice):
            if self.tool_choice.name not in {t.name for t in self.tools or []}:
                raise ValueError(f"tool_choice names '{self.tool_choice.name}', which is not in tools")
        return self

    def to_chat_request(self) -> ChatCompletionRequest:
        """The chat request this response is generated from: ``instructions`` as the first (system) message,
        the input items as messages (calls made earlier as an assistant turn with ``tool_calls``, their results as
        ``tool`` turns), flat function tools as chat tools, ``max_output_tokens`` as the token limit."""
        messages: list[ChatMessage] = []
        if self.instructions:
            messages.append(ChatMessage(role="system", content=self.instructions))
        for item in [ResponseInputMessage(role="user", content=self.input)] if isinstance(self.input, str) \
                else self.input:
            if isinstance(item, ResponseInputMessage):
                content = item.content if isinstance(item.content, str) else [p.to_chat() for p in item.content]
                messages.append(ChatMessage(role=item.role, content=content))
            elif isinstance(item, ResponseFunctionCallInput):
                call = ToolCall(id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments))
                last = messages[-1] if messages else None
                if last is not None and last.role == "assistant" and last.tool_calls is not None:
                    last.tool_calls.append(call)  # parallel calls: one assistant turn
                else:
                    messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
            elif isinstance(item, ResponseFunctionCallOutputInput):
                output = item.output if isinstance(item.output, str) else [p.to_chat() for p in item.output]
                messages.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=output))
        if not messages:
            raise InvalidRequestError("input holds no message", param="input")
        choice = self.tool_choice
        fmt = self.text.format if self.text is not None else None
        return ChatCompletionRequest(
            model=self.model, messages=messages, max_tokens=self.max_output_tokens, temperature=self.temperature,
            top_p=self.top_p, stream=self.stream, user=self.user, parallel_tool_calls=self.parallel_tool_calls,
            conversation_id=self.previous_response_id, store=self.store,
            tools=[ToolDefinition(function=FunctionDefinition(name=t.name, description=t.description,
                                                              parameters=t.parameters, strict=t.strict))
                   for t in self.tools] if self.tools else None,
            tool_choice=NamedToolChoice(function=NamedToolChoiceFunction(name=choice.name))
            if isinstance(choice, ResponseNamedToolChoice) else choice,
            response_format=None if fmt is None or fmt.type == "text" else ResponseFormat(
                type=fmt.type, json_schema=JsonSchemaFormat(name=fmt.name or "response", description=fmt.description,
                                                            schema=fmt.schema_, strict=fmt.strict)
                if fmt.type == "json_schema" else None))


class ResponseOutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class ResponseReasoningText(BaseModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class ResponseOutputMessage(BaseModel):
    id: str = Field(default_factory=lambda: response_item_id("msg"))
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: ItemStatus = "completed"
    content: list[ResponseOutputText] = Field(default_factory=list)


class ResponseFunctionCall(BaseModel):
    id: str = Field(default_factory=lambda: response_item_id("fc"))
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    status: ItemStatus = "completed"


class ResponseReasoningItem(BaseModel):
    """R1/Z1 thinking: the text itself as ``reasoning_text`` content; no summary is written."""

    id: str = Field(default_factory=lambda: response_item_id("rs"))
    type: Literal["reasoning"] = "reasoning"
    summary: list[Any] = Field(default_factory=list)
    content: list[ResponseReasoningText] = Field(default_factory=list)
    status: ItemStatus = "completed"


ResponseOutputItem = Union[ResponseOutputMessage, ResponseFunctionCall, ResponseReasoningItem]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseObject(BaseModel):
    id: str = Field(default_factory=lambda: response_item_id("resp"))
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=now)
    status: Literal["completed", "failed", "in_progress", "incomplete"] = "completed"
    error: ErrorBody | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[ResponseOutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    tool_choice: Union[Literal["none", "auto", "required"], ResponseNamedToolChoice] = "auto"
    tools: list[ResponseFunctionTool] = Field(default_factory=list)
    text: ResponseTextConfig = Field(default_factory=ResponseTextConfig)
    store: bool = False
    usage: ResponseUsage | None = omitted_when_none()


# Streamed events: each names itself by ``type`` and counts up ``sequence_number``.


class _StreamEvent(BaseModel):
    sequence_number: int = 0


class _ItemEvent(_StreamEvent):
    """An event about one output item: which one, by id and by place."""

    item_id: str
    output_index: int


class _ContentEvent(_ItemEvent):
    content_index: int = 0


class ResponseLifecycleEvent(_StreamEvent):
    type: Literal["response.created", "response.in_progress", "response.completed", "response.incomplete"]
    response: ResponseObject


class ResponseItemEvent(_StreamEvent):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: ResponseOutputItem


class ResponseContentPartEvent(_ContentEvent):
    type: Literal["response.content_part.added", "response.content_part.done"]
    part: ResponseOutputText


class ResponseDeltaEvent(_ItemEvent):
    """A piece of the open item: of its text or its reasoning text (which have a ``content_index``; text also
    ``logprobs``), or of its call's arguments."""

    type: Literal["response.output_text.delta", "response.reasoning_text.delta",
                  "response.function_call_arguments.delta"]
    content_index: int | None = omitted_when_none()
    delta: str
    logprobs: list[Any] | None = omitted_when_none()


class ResponseTextDoneEvent(_ContentEvent):
    """The whole text (``output_text.done``, with ``logprobs``) or reasoning text of an item."""

    type: Literal["response.output_text.done", "response.reasoning_text.done"]
    text: str
    logprobs: list[Any] | None = omitted_when_none()


class ResponseArgumentsDoneEvent(_ItemEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    name: str
    arguments: str


class ResponseErrorEvent(_StreamEvent):
    type: Literal["error"] = "error"
    code: str | None = None
    message: str
    param: str | None = None


ResponseStreamEvent = Union[
    ResponseLifecycleEvent, ResponseItemEvent, ResponseContentPartEvent, ResponseDeltaEvent, ResponseTextDoneEvent,
    ResponseArgumentsDoneEvent, ResponseErrorEvent]
