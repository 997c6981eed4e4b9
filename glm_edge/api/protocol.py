"""Pydantic models of the wire protocol: OpenAI's routes and the GLM-API server's custom routes.

Request models ignore unknown fields (clients send extras) and reject wrong ones; response models are
what handlers return, never hand-built dicts. Only shapes live here: no serving logic.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from glm_edge.chat.deltas import (  # the assistant-message wire types, shared with the parsers that emit them
    DeltaMessage,
    FunctionCall,
    ToolCall,
    omitted_when_none,
)
from glm_edge.chat.messages import FunctionDefinition, ToolDefinition  # the tool wire types, which the chat layer reads
from glm_edge.engine.types import SamplingParams
from glm_edge.errors import InvalidRequestError


def random_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# ---------------------------------------------------------------------------------------------- errors


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# ---------------------------------------------------------------------------------------------- models


class ModelCard(BaseModel):
    """One entry of `/v1/models` and of the GLM-API `/models` listing (which adds root/parent/permission)."""

    id: str
    object: str = "model"
    created: int = Field(default_factory=now)
    owned_by: str = "owner"
    root: str | None = None
    parent: str | None = None
    permission: list[Any] | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ chat


# the roles a client may send; the edge (glm_edge.api.chat_input) folds them into the chat layer's four
Role = Literal["system", "developer", "user", "assistant", "tool", "function", "observation"]


class ContentPart(RequestModel):
    """One part of a message's content. Every part type parses here (text, image_url, input_audio, file,
    refusal...): which ones a model can read is decided in one place, ``glm_edge.api.chat_input``, so that
    a part it cannot take is one sentence naming the part and the model, not pydantic's union errors."""

    type: str = "text"
    text: str | None = None
    file_url: Union[dict[str, Any], str, None] = None  # glm-api: {"url": data URL or path}
    file: dict[str, Any] | None = None  # OpenAI: {"filename", "file_data": data URL} (glm_edge.documents)


class ChatMessage(RequestModel):
    role: Role
    content: Union[str, list[ContentPart], None] = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None  # the legacy single call of an assistant turn
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class NamedToolChoiceFunction(RequestModel):
    name: str


class NamedToolChoice(RequestModel):
    type: Literal["function"] = "function"
    function: NamedToolChoiceFunction


class JsonSchemaFormat(RequestModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(RequestModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs a json_schema object")
        return self


class StreamOptions(RequestModel):
    include_usage: bool = False


class SamplingFields(RequestModel):
    """Sampling fields shared by chat and text completions. None means: the model's own default."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: Union[str, list[str], None] = None
    n: int = Field(default=1, ge=1, le=16)
    logit_bias: dict[str, float] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: Union[str, list[str], None]) -> list[str]:
        if value is None:
            return []
        stops = [value] if isinstance(value, str) else value
        if len(stops) > 16:
            raise ValueError("at most 16 stop sequences")
        if any(s == "" for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
            if not -100.0 <= bias <= 100.0:
                raise ValueError(f"logit_bias values must be in [-100, 100], got {bias}")
        return value


    def to_sampling_params(self, defaults: dict[str, Any], *, max_tokens: int | None, stop_token_ids: list[int],
                           logprobs: bool, top_logprobs: int, grammar: str | None,
                           skip_special_tokens: bool = True) -> SamplingParams:
        """The one place a request becomes engine parameters: omitted fields take the model's defaults,
        then OpenAI's. ``skip_special_tokens``: False where the model's parsers read control tokens."""

        def pick(name: str, fallback: Any) -> Any:
            value = getattr(self, name)
            return value if value is not None else defaults.get(name, fallback)

        bias = {int(k): float(v) for k, v in (self.logit_bias or {}).items()}
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=pick("temperature", 1.0),
            top_p=pick("top_p", 1.0),
            top_k=pick("top_k", 0),
            min_p=pick("min_p", 0.0),
            repetition_penalty=pick("repetition_penalty", 1.0),
            presence_penalty=pick("presence_penalty", 0.0),
            frequency_penalty=pick("frequency_penalty", 0.0),
            seed=self.seed,
            stop=list(self.stop or []),
            stop_token_ids=list(stop_token_ids),
            logit_bias=bias,
            grammar=grammar,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            n=self.n,
            skip_special_tokens=skip_special_tokens,
        )


class ChatCompletionRequest(SamplingFields):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    history: list[ChatMessage] | None = None  # GLM-API servers: earlier turns, prepended to messages
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], NamedToolChoice, None] = None
    parallel_tool_calls: bool | None = None
    # a stored conversation (or a response id of one of its answers) to continue: its messages go first
    conversation_id: str | None = Field(default=None, min_length=1, max_length=200)
    store: bool | None = None  # false: do not store this turn

    @model_validator(mode="after")
    def _consistent(self) -> "ChatCompletionRequest":
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not in tools")
        return self

    def new_token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobEntry(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobEntry] | None = None
    refusal: list[TokenLogprobEntry] | None = None  # required by OpenAI's spec, nullable; we never refuse


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None  # required by OpenAI's spec, nullable
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = omitted_when_none()


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # prompt tokens whose KV the slot already held


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = omitted_when_none()


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: random_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = omitted_when_none()
    conversation_id: str | None = omitted_when_none()  # the stored conversation this answer continues


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None  # null until the choice's last chunk


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = omitted_when_none()  # only on the include_usage chunk
    conversation_id: str | None = omitted_when_none()


# ------------------------------------------------------------------------------------ text completions


class CompletionRequest(SamplingFields):
    model: str | None = None
    prompt: Union[str, list[str], list[int], list[list[int]]]
    max_tokens: int | None = Field(default=16, ge=1)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) == 0:
            raise ValueError("prompt must not be empty")
        return value


class CompletionLogprobs(BaseModel):
    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: random_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


# ------------------------------------------------------------------------------------------ embeddings


class EmbeddingRequest(RequestModel):
    """OpenAI `POST /v1/embeddings`."""

    model: str | None = None
    input: Union[str, list[str], list[int], list[list[int]]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    truncate: Literal["cut", "error"] = "cut"
    user: str | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: Union[list[float], str]
    index: int


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class GlmEmbeddingRequest(RequestModel):
    """GLM-API `POST /embedding`: `{"model": str, "prompt": [str]}`."""

    model: str | None = None
    prompt: Union[list[str], str]


class GlmEmbeddingResponse(BaseModel):
    data: list[list[float]]
    model: str
    object: Literal["embedding"] = "embedding"


# ------------------------------------------------------------------------------------------- keywords


class KeywordRequest(RequestModel):
    """GLM-API `POST /keyword`."""

    input: str = Field(min_length=1)
    model: str | None = None
    vocab: list[str] | None = None
    top: int = Field(default=10, ge=1, le=100)
    mmr: bool = False
    maxsum: bool = False
    diversity: float = Field(default=0.3, ge=0.0, le=1.0)
    # phrase length in words (Chinese: jieba words); KeyBERT's name and the GLM-API's are both accepted
    # [default (1, 3)]; ignored with `vocab`
    ngram_range: tuple[int, int] | None = None
    keyphrase_ngram_range: tuple[int, int] | None = None
    nr_candidates: int = Field(default=20, ge=1, le=1000)
    # "english", "chinese", "default" (both, the default), or a list of words ([] for none)
    stop_words: str | list[str] | None = None


class Keyword(BaseModel):
    name: str
    similarity: float


class KeywordResponse(BaseModel):
    model: str
    keywords: list[Keyword]


# ------------------------------------------------------------------------------------------- tokenize


class TokenizeRequest(RequestModel):
    """GLM-API `POST /tokenize`."""

    prompt: str
    max_tokens: int | None = Field(default=None, ge=1)
    model: str | None = None
    add_special_tokens: bool = True  # the tokenizer's prefix (GLM: [gMASK]<sop>) or BOS


class TokenizeResponse(BaseModel):
    tokenIds: list[int]  # noqa: N815 - the GLM-API field name
    tokens: list[str]
    model: str
    object: Literal["tokenizer"] = "tokenizer"


# --------------------------------------------------------------------------------------------- health


class HealthResponse(BaseModel):
    status: Literal["ok", "loading"]


# --------------------------------------------------------------------------------------- responses API
# `POST /v1/responses`: validated here once, then mapped onto the chat request the chat layer consumes
# (``ResponsesRequest.to_chat_request``); served by the same chat generation as `/v1/chat/completions`.


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
