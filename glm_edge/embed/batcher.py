"""Micro-batching: concurrent requests are gathered into one session run.

One worker thread per model owns the ONNX session. Requests (a list of prepared items each) go into a
thread-safe queue. The worker takes the first job, then keeps taking jobs that are already waiting
(and waits up to `max_wait_s` for more) until `max_batch_size` items are gathered. While a batch runs,
new requests queue up, so under load batches fill without any waiting. The gathered items are
sorted by length and cut into sub-batches bounded by `max_batch_size` items and `max_batch_tokens`
padded tokens, and grouped by length: a sub-batch never pads a text past `max_pad_ratio` times its own
length plus `pad_slack` tokens, so one long text does not make every short one in its run cost as much as
itself (one 256-token document among 200 three-word phrases used to triple the request's time). Results go back through
`concurrent.futures.Future`s, so asyncio handlers (`await asyncio.wrap_future(...)`) on any event loop
and plain threads can both submit.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from glm_edge.embed.backends import Item

BatchResult = tuple[np.ndarray, list[int]]  # vectors [n, d] float32, token counts
RunFn = Callable[[list[Item]], BatchResult]


@dataclass
class _Job:
    items: list[Item]
    future: Future[BatchResult] = field(default_factory=Future)


@dataclass
class BatchStats:
    batches: int = 0
    runs: int = 0
    items: int = 0
    jobs: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0


class MicroBatcher:
    def __init__(self, run: RunFn, *, max_batch_size: int = 64, max_batch_tokens: int = 16384,
                 max_wait_s: float = 0.002, name: str = "embed", max_pad_ratio: float = 2.0,
                 pad_slack: int = 8) -> None:
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_size and max_batch_tokens must be positive")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_pad_ratio = max_pad_ratio
        self.pad_slack = pad_slack
        self.stats = BatchStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"{name}-batcher", daemon=True)
        self._thread.start()

    def submit(self, items: list[Item]) -> Future[BatchResult]:
        """Queue items; the future resolves to (vectors [n, d] float32, token counts) in the items' order."""
        if self._closed:
            raise RuntimeError("the embedder is closed")
        job = _Job(items)
        if not items:
            job.future.set_result((np.zeros((0, 0), dtype=np.float32), []))
            return job.future
        self._queue.put(job)
        return job.future

    def queued(self) -> int:
        """Requests waiting for the worker (approximate: read without a lock)."""
        return self._queue.qsize()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------------------ worker thread

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, count, stop = [first], len(first.items), False
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            jobs.append(job)
            count += len(job.items)
        return jobs, stop

    def _chunks(self, order: list[int], items: list[Item]) -> list[list[int]]:
        chunks: list[list[int]] = []
        current: list[int] = []
        for idx in order:  # ascending length: the first item of a chunk is its shortest, the last sets its width
            width = items[idx].length
            if current and (len(current) >= self.max_batch_size or width * (len(current) + 1) > self.max_batch_tokens
                            or width > items[current[0]].length * self.max_pad_ratio + self.pad_slack):
                chunks.append(current)
                current = []
            current.append(idx)
        if current:
            chunks.append(current)
        return chunks

    def _execute(self, jobs: list[_Job]) -> None:
        items = [it for job in jobs for it in job.items]
        order = sorted(range(len(items)), key=lambda i: items[i].length)
        vectors: list[np.ndarray | None] = [None] * len(items)
        counts = [0] * len(items)
        for chunk in self._chunks(order, items):
            batch = [items[i] for i in chunk]
            out, n_tokens = self._run(batch)
            self.stats.runs += 1
            self.stats.padded_tokens += max(it.length for it in batch) * len(batch)
            for row, idx in enumerate(chunk):
                vectors[idx] = out[row]
                counts[idx] = n_tokens[row]
        self.stats.batches += 1
        self.stats.jobs += len(jobs)
        self.stats.items += len(items)
        self.stats.real_tokens += sum(counts)
        start = 0
        for job in jobs:
            n = len(job.items)
            job.future.set_result((np.stack(vectors[start:start + n]), counts[start:start + n]))  # type: ignore[arg-type]
            start += n

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if live:
                try:
                    self._execute(live)
                except BaseException as exc:  # the session failed: every waiting request hears about it
                    for job in live:
                        if not job.future.done():
                            job.future.set_exception(exc)
            if stop:
                return
