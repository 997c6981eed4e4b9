"""The narrow interface between the HTTP layer and an inference engine.

The API layer renders prompts, parses reasoning and tool calls, and builds wire responses; the engine
only tokenizes, batches, decodes and samples. Everything crossing the boundary is defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncGenerator, Protocol


@dataclass
class SamplingParams:
    """Per-request generation settings, already resolved against the model's defaults."""

    max_tokens: int | None = None  # new tokens; None = until the context is full
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)  # stop strings, never part of the output
    stop_token_ids: list[int] = field(default_factory=list)  # stop on these ids (plus the model's EOG set)
    ignore_eos: bool = False
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: str | None = None  # GBNF
    logprobs: bool = False
    top_logprobs: int = 0
    n: int = 1  # choices sharing one prompt
    skip_special_tokens: bool = True  # control tokens (e.g. <|user|>) render as "" in the text; False shows them


@dataclass
class TokenLogprob:
    token: str
    token_id: int
    logprob: float
    bytes: list[int]
    top: list["TokenLogprob"] = field(default_factory=list)


@dataclass
class GenerationChunk:
    """One step of one choice: new complete-UTF-8 text (may be empty) and, at the end, the finish."""

    index: int  # choice index (0 .. n-1)
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None  # "stop" | "length" | None while running
    stop_reason: str | int | None = None  # the stop string or token id that ended it
    prompt_tokens: int = 0
    completion_tokens: int = 0  # tokens generated so far by this choice
    cached_tokens: int = 0  # prompt tokens whose KV the slot already held (reused, not decoded again)
    queue_seconds: float | None = None  # on each choice's first chunk: how long the request waited for a slot


# What `Engine.generate` returns: closing it (`aclose`, or leaving an `async for` early) aborts the request.
ChunkStream = AsyncGenerator[GenerationChunk, None]


class Engine(Protocol):
    """What the API layer needs from an engine. Implementations live in glm_edge/engine/."""

    model_path: str
    n_ctx: int  # context per sequence (slot)

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]: ...

    def token_to_piece(self, token_id: int) -> bytes: ...

    def detokenize(self, token_ids: list[int]) -> str: ...

    def metadata(self) -> dict[str, str]:  # GGUF key/values (chat template, eos id, ...)
        ...

    def eos_token_id(self) -> int: ...

    def bos_token_id(self) -> int: ...

    def generate(self, prompt_tokens: list[int], params: SamplingParams,
                 request_id: str) -> ChunkStream:
        """Stream chunks on the caller's asyncio loop; raises EngineError subclasses (glm_edge.errors)."""
        ...

    def abort(self, request_id: str) -> None: ...

    def stats(self) -> dict[str, float]: ...

    def close(self) -> None: ...
