"""Pydantic models of the wire protocol: OpenAI's routes and the GLM-API server's custom routes (the Responses API's
own models are in ``glm_edge.api.responses_protocol``).

Request models ignore unknown fields (clients send extras) and reject wrong ones; response models are
what handlers return, never hand-built dicts. Only shapes live here: no serving logic.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from glm_edge.chat.deltas import (  # the assistant-message wire types, shared with the parsers that emit them
    DeltaMessage,
    FunctionCall,
    ToolCall,
    omitted_when_none,
)
from glm_edge.chat.messages import ToolDefinition  # the tool wire type, which the chat layer reads
from glm_edge.engine.types import SamplingParams


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
