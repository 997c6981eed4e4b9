"""Reference measurements in this process, on the same GGUF: what a user would otherwise run.

- `llama_baseline`: llama-cpp-python's high-level `Llama` (non-stream and stream), greedy.
- `bare_batched_loop`: the plainest batched-decode loop on the low-level API (one `llama_decode` per step,
  greedy sampler, no scheduling), the ceiling our engine's per-step overhead is judged against.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import llama_cpp

from glm_edge.engine.batch import Batch
from glm_edge.engine.model import LlamaModel


@dataclass
class BaselineResult:
    name: str
    streams: int
    completion_tokens: int
    seconds: float
    ttft_s: float | None = None

    @property
    def tok_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tok_s"] = self.tok_s
        return d


class LlamaBaseline:
    """llama-cpp-python's `Llama` on a GGUF, timed per completion (greedy, no prompt cache between runs)."""

    def __init__(self, model_path: str, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int = -1, logit_bias: dict[int, float] | None = None) -> None:
        n_threads = n_threads or os.cpu_count() or 1
        self.llm = llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads,
                                   n_threads_batch=n_threads, n_gpu_layers=n_gpu_layers, verbose=False)
        self.bias = logit_bias if logit_bias is not None else {self.llm.token_eos(): -100.0}

    def run(self, prompt: str, max_tokens: int, *, stream: bool) -> BaselineResult:
        llm = self.llm
        llm.reset()  # type: ignore[no-untyped-call]  # each run pays its prefill, as a fresh request would
        t0 = time.perf_counter()
        ttft = None
        n = 0
        if stream:
            chunks = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True,
                                           logit_bias=self.bias)
            if isinstance(chunks, dict):
                raise TypeError("Llama.create_completion(stream=True) returned one response, not a stream")
            for chunk in chunks:
                choice = chunk["choices"][0]
                if ttft is None and choice["text"]:
                    ttft = time.perf_counter() - t0
                if choice["finish_reason"] is None:  # one chunk per token, then a closing chunk
                    n += 1
        else:
            out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, logit_bias=self.bias)
            if not isinstance(out, dict):
                raise TypeError("Llama.create_completion(stream=False) returned a stream")
            n = out["usage"]["completion_tokens"]
        dt = time.perf_counter() - t0
        return BaselineResult("llama-cpp-python Llama " + ("stream" if stream else "non-stream"), 1, n, dt, ttft)

    def close(self) -> None:
        self.llm.close()


def llama_baseline(model_path: str, prompt: str, max_tokens: int, *, stream: bool, n_ctx: int = 4096,
                   n_threads: int | None = None, n_gpu_layers: int = -1, repeats: int = 1,
                   logit_bias: dict[int, float] | None = None) -> BaselineResult:
    """`Llama.create_completion` greedy, `max_tokens` tokens (end-of-generation tokens biased away by
    `logit_bias`, default: EOS only), best of `repeats` runs."""
    base = LlamaBaseline(model_path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                         logit_bias=logit_bias)
    try:
        runs = [base.run(prompt, max_tokens, stream=stream) for _ in range(max(1, repeats))]
        return max(runs, key=lambda r: r.tok_s)
    finally:
        base.close()


def bare_batched_loop(model_path: str, n_seq: int, n_tokens: int, *, prompt: str = "Once upon a time",
                      n_threads: int | None = None, n_ctx_per_seq: int = 1024) -> BaselineResult:
    """`n_seq` copies of one prompt decoded together, greedy, `n_tokens` each; tokens/s over the decode steps."""
    n_threads = n_threads or os.cpu_count() or 1
    model = LlamaModel(model_path)
    p = llama_cpp.llama_context_default_params()
    p.n_ctx = n_ctx_per_seq * n_seq
    p.n_seq_max = n_seq
    p.n_batch = max(512, n_seq)
    p.n_threads = n_threads
    p.n_threads_batch = n_threads
    p.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model.model, p)
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    try:
        tokens = model.tokenize(prompt, add_special=True)
        batch = Batch(max(512, n_seq * len(tokens)))
        for s in range(n_seq):
            batch.add_span(tokens, 0, s, True)
        last = [(s + 1) * len(tokens) - 1 for s in range(n_seq)]
        if llama_cpp.llama_decode(ctx, batch.as_llama_batch()) != 0:
            raise RuntimeError("llama_decode failed on the prompt")
        t0 = time.perf_counter()
        pos = len(tokens)
        generated = 0
        for _ in range(n_tokens):
            next_tokens = [llama_cpp.llama_sampler_sample(chain, ctx, i) for i in last]
            generated += n_seq
            batch.clear()
            last = [batch.add(t, pos, s, True) for s, t in enumerate(next_tokens)]
            pos += 1
            if llama_cpp.llama_decode(ctx, batch.as_llama_batch()) != 0:
                raise RuntimeError("llama_decode failed")
        dt = time.perf_counter() - t0
        return BaselineResult(f"bare batched loop x{n_seq}", n_seq, generated, dt)
    finally:
        llama_cpp.llama_sampler_free(chain)
        llama_cpp.llama_free(ctx)
        model.close()
