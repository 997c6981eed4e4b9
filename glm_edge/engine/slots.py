"""What the decode thread keeps per sequence (`Slot`), per answer (`Choice`) and per request (`Task`).

Vocabulary after llama.cpp's server: a slot is one sequence id of the shared context with its cached
tokens; a task is one request with `n` choices, each decoded in its own slot.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field

from glm_edge.engine.detokenizer import IncrementalDetokenizer, StopStringFilter
from glm_edge.engine.sampler import SamplerChain
from glm_edge.engine.types import GenerationChunk, SamplingParams


class SlotState(enum.Enum):
    IDLE = "idle"  # free; keeps its tokens and KV for prefix reuse
    PREFILL = "prefill"  # feeding the prompt, chunk by chunk
    WAIT_PROMPT = "wait_prompt"  # a choice > 0 of an n > 1 request, waiting for the shared prompt's KV
    DECODING = "decoding"  # one token per step


class End(enum.Enum):
    DONE = "done"  # put on a task's queue after its last chunks


# What the decode thread puts on a task's queue: chunks, then End.DONE, or an exception that ends the task.
SinkItem = GenerationChunk | BaseException | End


@dataclass
class Sink:
    """Where a task's results go: an asyncio queue on the caller's loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[SinkItem]


@dataclass
class Choice:
    index: int
    sampler: SamplerChain
    detokenizer: IncrementalDetokenizer
    stops: StopStringFilter
    n_generated: int = 0
    finished: bool = False


@dataclass
class Task:
    request_id: str
    prompt: list[int]
    params: SamplingParams
    sink: Sink
    stop_ids: frozenset[int]
    samplers: list[SamplerChain] = field(default_factory=list)  # one per choice, built by the caller
    choices: list[Choice] = field(default_factory=list)
    done: bool = False
    posted_at: float = field(default_factory=time.perf_counter)  # when the caller submitted it
    started_at: float | None = None  # when it got its slots
    n_cached: int = 0  # prompt tokens reused from the slot's KV

    @property
    def n_finished(self) -> int:
        return sum(1 for c in self.choices if c.finished)


@dataclass
class Slot:
    seq_id: int
    state: SlotState = SlotState.IDLE
    tokens: list[int] = field(default_factory=list)  # tokens whose KV is in the context, in position order
    task: Task | None = None
    choice: Choice | None = None
    prefill_pos: int = 0  # next prompt index to feed (PREFILL)
    pending: int | None = None  # sampled token not yet in the KV (DECODING)
    followers: list["Slot"] = field(default_factory=list)  # slots of choices > 0 (n > 1), on the primary
    last_used: int = 0  # step counter, for choosing which idle cache to overwrite

    def busy(self) -> tuple[Task, Choice]:
        """The task and choice of a slot that is not idle."""
        assert self.task is not None and self.choice is not None, f"slot {self.seq_id} is idle"
        return self.task, self.choice

    def release(self) -> None:
        if self.choice is not None:
            self.choice.sampler.free()
        self.state = SlotState.IDLE
        self.task = None
        self.choice = None
        self.pending = None
        self.followers = []


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
