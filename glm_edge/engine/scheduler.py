"""The decode thread: continuous batching over `n_parallel` slots of one llama.cpp context.

Each step: take new tasks and aborts from the inbox, free aborted slots, give waiting tasks the idle slots
with the longest cached prefix, build one batch (one token per decoding slot, then prompt chunks up to
`n_batch`), run one `llama_decode`, sample every output with its own sampler chain, and hand the results to
each caller's event loop in one `call_soon_threadsafe` per loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import llama_cpp

from glm_edge.engine.batch import Batch
from glm_edge.engine.detokenizer import IncrementalDetokenizer, StopStringFilter
from glm_edge.engine.model import LlamaModel
from glm_edge.engine.sampler import logprobs_for
from glm_edge.engine.slots import Choice, End, SinkItem, Slot, SlotState, Task, common_prefix_length
from glm_edge.engine.types import GenerationChunk, TokenLogprob
from glm_edge.errors import EngineError, GlmEdgeError, QueueFullError

log = logging.getLogger("glm_edge.engine")

DONE = End.DONE  # end-of-task marker put on a task's queue after its last chunks

# Queue items per caller loop, handed over in one callback per loop and step.
Deliveries = dict[asyncio.AbstractEventLoop, list[tuple["asyncio.Queue[SinkItem]", SinkItem]]]


@dataclass
class _Abort:
    request_id: str


class Scheduler:
    """Owns the llama context and the slots; every method except `post`/`abort`/`stop` runs on its thread."""

    def __init__(self, model: LlamaModel, ctx: llama_cpp.llama_context_p, *, n_parallel: int, n_ctx: int, n_batch: int,
                 max_queue: int) -> None:
        self.model = model
        self.ctx = ctx
        self.mem = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.max_queue = max_queue
        self.slots = [Slot(seq_id=i) for i in range(n_parallel)]
        self.batch: Batch | None = Batch(n_batch)  # None once the native context is freed
        self._lock = threading.Condition()
        self._inbox: collections.deque[Task | _Abort] = collections.deque()
        self._n_waiting = 0  # tasks submitted but not yet in slots (guarded by _lock)
        self._waiting: collections.deque[Task] = collections.deque()
        self._tasks: dict[str, Task] = {}
        self._stopping = False
        self._step_no = 0
        self.counters: dict[str, float] = collections.defaultdict(float)

    # --- called from other threads ----------------------------------------------------------------

    def post(self, task: Task) -> None:
        with self._lock:
            if self._stopping:
                raise EngineError("the engine is shut down")
            if self._n_waiting >= self.max_queue:
                raise QueueFullError(retry_after=1.0)
            self._n_waiting += 1
            self._inbox.append(task)
            self._lock.notify()

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._inbox.append(_Abort(request_id))
            self._lock.notify()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()

    # --- the thread -------------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._inbox and not self._has_work():
                    self._lock.wait()
                if self._stopping:
                    break
                commands = list(self._inbox)
                self._inbox.clear()
            try:
                self._take(commands)
                if self._has_work():
                    t0 = time.perf_counter()
                    self._step()
                    self.counters["step_seconds"] += time.perf_counter() - t0
            except Exception as exc:  # never expected: fail what is running, keep serving
                log.exception("engine step failed")
                self._fail_all(EngineError(f"engine step failed: {exc}"))
        self._fail_all(EngineError("the engine is shut down"))

    def _has_work(self) -> bool:
        return bool(self._waiting) or any(s.state is not SlotState.IDLE for s in self.slots)

    def _take(self, commands: list[Task | _Abort]) -> None:
        for cmd in commands:
            if isinstance(cmd, Task):
                if cmd.request_id in self._tasks:
                    # a second live request with the same id: make the id unique so abort() stays exact
                    cmd.request_id = f"{cmd.request_id}#{id(cmd)}"
                self._tasks[cmd.request_id] = cmd
                self._waiting.append(cmd)
            else:
                task = self._tasks.get(cmd.request_id)
                if task is not None and not task.done:
                    self._abort_task(task)

    def _abort_task(self, task: Task) -> None:
        self.counters["requests_aborted"] += 1
        if task in self._waiting:
            self._waiting.remove(task)
            self._dec_waiting()
            for sampler in task.samplers:
                sampler.free()
        chunks: list[SinkItem] = []
        for slot in self.slots:
            if slot.task is task:
                llama_cpp.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                slot.tokens = []
                slot.release()
        for choice in task.choices:
            if not choice.finished:
                choice.finished = True
                chunks.append(GenerationChunk(index=choice.index, text="", finish_reason="abort",
                                              prompt_tokens=len(task.prompt),
                                              completion_tokens=choice.n_generated))
        self._finish_task(task)
        _deliver({task.sink.loop: [(task.sink.queue, item) for item in [*chunks, DONE]]})

    def _dec_waiting(self) -> None:
        with self._lock:
            self._n_waiting -= 1

    def _fail_all(self, error: GlmEdgeError) -> None:
        out: Deliveries = {}
        for task in list(self._tasks.values()):
            for slot in self.slots:
                if slot.task is task:
                    slot.release()
            for sampler in task.samplers:
                sampler.free()
            out.setdefault(task.sink.loop, []).append((task.sink.queue, error))
            task.done = True
        for slot in self.slots:  # the KV may be inconsistent after a failure: start clean
            slot.tokens = []
            slot.release()
        llama_cpp.llama_memory_clear(self.mem, False)
        with self._lock:
            self._n_waiting -= len(self._waiting)
        self._waiting.clear()
        self._tasks.clear()
        _deliver(out)

    def _finish_task(self, task: Task) -> None:
        task.done = True
        self._tasks.pop(task.request_id, None)

    # --- slot assignment --------------------------------------------------------------------------

    def _assign(self) -> None:
        while self._waiting:
            task = self._waiting[0]
            idle = [s for s in self.slots if s.state is SlotState.IDLE]
            n = task.params.n
            if len(idle) < n:
                return
            self._waiting.popleft()
            self._dec_waiting()
            try:
                self._start_task(task, idle)
            except Exception as exc:  # this task only; the others keep running
                log.exception("could not start request %s", task.request_id)
                for slot in self.slots:
                    if slot.task is task:
                        slot.tokens = []
                        llama_cpp.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                        slot.release()
                self._finish_task(task)
                error = exc if isinstance(exc, GlmEdgeError) else EngineError(f"could not start the request: {exc}")
                _deliver({task.sink.loop: [(task.sink.queue, error)]})

    def _start_task(self, task: Task, idle: list[Slot]) -> None:
        prompt = task.prompt
        task.started_at = time.perf_counter()
        scored = sorted(idle, key=lambda s: (common_prefix_length(s.tokens, prompt), -s.last_used), reverse=True)
        primary = scored[0]
        followers = sorted(scored[1:], key=lambda s: (len(s.tokens) > 0, s.last_used))[: task.params.n - 1]
        n_past = self._reusable_prefix(primary, prompt)
        task.n_cached = n_past
        if n_past > 0:
            self.counters["prefix_cache_hits"] += 1
            self.counters["prompt_tokens_cached"] += n_past
        primary.tokens = primary.tokens[:n_past]
        primary.prefill_pos = n_past
        for i, slot in enumerate([primary] + followers):
            choice = Choice(
                index=i,
                sampler=task.samplers[i],
                detokenizer=IncrementalDetokenizer(self._piece_fn(task)),
                stops=StopStringFilter(task.params.stop),
            )
            task.choices.append(choice)
            slot.task = task
            slot.choice = choice
            slot.last_used = self._step_no
            if slot is not primary:
                llama_cpp.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                slot.tokens = []
                slot.state = SlotState.WAIT_PROMPT
        primary.state = SlotState.PREFILL
        primary.followers = followers

    def _piece_fn(self, task: Task) -> Callable[[int], bytes]:
        special = not task.params.skip_special_tokens
        piece = self.model.token_to_piece
        return lambda t: piece(t, special)

    def _reusable_prefix(self, slot: Slot, prompt: list[int]) -> int:
        """How many prompt tokens this slot's KV already holds; the rest of its KV is dropped."""
        n_past = min(common_prefix_length(slot.tokens, prompt), len(prompt) - 1)  # decode >= 1 token
        if n_past > 0 and self.model.n_swa > 0:
            # sliding-window layers only keep the last n_swa positions: the window before n_past must be there
            pos_min = llama_cpp.llama_memory_seq_pos_min(self.mem, slot.seq_id)
            if pos_min < 0 or pos_min > max(0, n_past - self.model.n_swa):
                n_past = 0
        if n_past > 0 and not llama_cpp.llama_memory_seq_rm(self.mem, slot.seq_id, n_past, -1):
            n_past = 0
        if n_past == 0:
            llama_cpp.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
        return n_past

    # --- one step ---------------------------------------------------------------------------------

    def _step(self) -> None:
        self._step_no += 1
        self._assign()
        batch = self.batch
        if batch is None:
            raise EngineError("the engine is shut down")
        batch.clear()
        outputs: list[tuple[Slot, int]] = []  # (slot, batch index of its logits)
        fed: list[tuple[Slot, list[int]]] = []
        for slot in self.slots:
            if slot.state is SlotState.DECODING:
                token = slot.pending
                assert token is not None, "a decoding slot holds its next token"
                idx = batch.add(token, len(slot.tokens), slot.seq_id, True)
                outputs.append((slot, idx))
                fed.append((slot, [token]))
        for slot in sorted((s for s in self.slots if s.state is SlotState.PREFILL), key=lambda s: s.last_used):
            if batch.free == 0:
                break
            prompt = slot.busy()[0].prompt
            chunk = prompt[slot.prefill_pos: slot.prefill_pos + batch.free]
            last = slot.prefill_pos + len(chunk) == len(prompt)
            idx = batch.add_span(chunk, slot.prefill_pos, slot.seq_id, last)
            slot.prefill_pos += len(chunk)
            fed.append((slot, chunk))
            self.counters["prompt_tokens_processed"] += len(chunk)
            if last:
                outputs.append((slot, idx))
        if batch.n_tokens == 0:
            return
        t0 = time.perf_counter()
        ret = llama_cpp.llama_decode(self.ctx, batch.as_llama_batch())
        self.counters["decode_seconds"] += time.perf_counter() - t0
        self.counters["steps"] += 1
        self.counters["batch_tokens"] += batch.n_tokens
        if ret != 0:
            raise EngineError(f"llama_decode returned {ret} for a batch of {batch.n_tokens} tokens")
        for slot, toks in fed:
            slot.tokens.extend(toks)
        out: Deliveries = {}
        for slot, idx in outputs:
            task = slot.busy()[0]
            followers: list[Slot] = []
            if slot.state is SlotState.PREFILL:
                slot.state = SlotState.DECODING
                followers, slot.followers = slot.followers, []
                for follower in followers:  # n > 1: the other choices share the prompt's KV
                    llama_cpp.llama_memory_seq_cp(self.mem, slot.seq_id, follower.seq_id, -1, -1)
                    follower.tokens = list(slot.tokens)
                    follower.state = SlotState.DECODING
            self._sample(slot, idx, out)
            for follower in followers:
                self._sample(follower, idx, out)
            if task.n_finished == len(task.choices) and not task.done:
                self._finish_task(task)
                out.setdefault(task.sink.loop, []).append((task.sink.queue, DONE))
        _deliver(out)

    def _sample(self, slot: Slot, idx: int, out: Deliveries) -> None:
        task, choice = slot.busy()
        params = task.params
        token = choice.sampler.sample(self.ctx, idx)
        choice.n_generated += 1
        self.counters["tokens_generated"] += 1
        logprobs: list[TokenLogprob] | None = None
        if params.logprobs:
            logprobs = [logprobs_for(self.ctx, idx, self.model.n_vocab, token, params.top_logprobs,
                                     self._piece_fn(task))]
        chunk = GenerationChunk(index=choice.index, text="", token_ids=[token], logprobs=logprobs,
                                prompt_tokens=len(task.prompt), completion_tokens=choice.n_generated,
                                cached_tokens=task.n_cached)
        if choice.n_generated == 1 and task.started_at is not None:
            chunk.queue_seconds = task.started_at - task.posted_at
        if token in task.stop_ids or (not params.ignore_eos and self.model.is_eog(token)):
            chunk.token_ids = []
            chunk.logprobs = None
            chunk.text = choice.stops.flush() + choice.detokenizer.flush()
            chunk.finish_reason = "stop"
            chunk.stop_reason = token
        else:
            result = choice.stops.add(choice.detokenizer.add(token))
            chunk.text = result.text
            if result.stop is not None:
                chunk.finish_reason = "stop"
                chunk.stop_reason = result.stop
            elif (params.max_tokens is not None and choice.n_generated >= params.max_tokens) \
                    or len(slot.tokens) + 1 >= self.n_ctx:  # prompt + answer never exceed the context
                chunk.finish_reason = "length"
                tail = choice.detokenizer.flush()  # an unfinished character at the very end
                if tail:
                    result = choice.stops.add(tail)
                    chunk.text += result.text
                    if result.stop is not None:
                        chunk.finish_reason, chunk.stop_reason = "stop", result.stop
                chunk.text += choice.stops.flush()
        if chunk.finish_reason is None:
            slot.pending = token
        else:
            choice.finished = True
            slot.release()
        out.setdefault(task.sink.loop, []).append((task.sink.queue, chunk))

    def stats(self) -> dict[str, float]:
        states = collections.Counter(s.state for s in self.slots)
        busy = len(self.slots) - states[SlotState.IDLE]
        stats = {
            "slots_total": float(len(self.slots)),
            "slots_busy": float(busy),
            "slots_idle": float(states[SlotState.IDLE]),
            "slots_prefill": float(states[SlotState.PREFILL]),
            "slots_decoding": float(states[SlotState.DECODING]),
            "queue_length": float(self._n_waiting),
            "requests_running": float(len(self._tasks)),
            # cells holding a sequence's tokens (idle slots keep theirs for prefix reuse) out of all cells
            "kv_cache_tokens": float(sum(len(s.tokens) for s in self.slots)),
            "kv_cache_capacity_tokens": float(self.n_ctx * len(self.slots)),
        }
        for key in ("steps", "tokens_generated", "prompt_tokens_processed", "prompt_tokens_cached",
                    "prefix_cache_hits", "requests_aborted", "batch_tokens", "decode_seconds", "step_seconds"):
            stats[key] = float(self.counters.get(key, 0.0))
        return stats


def _deliver(out: Deliveries) -> None:
    """Hand each loop its queue items in one callback (order kept per queue)."""
    for loop, items in out.items():
        try:
            loop.call_soon_threadsafe(_put_all, items)
        except RuntimeError:  # the caller's loop is closed: nobody is listening
            pass


def _put_all(items: list[tuple[asyncio.Queue[SinkItem], SinkItem]]) -> None:
    for queue, item in items:
        queue.put_nowait(item)
