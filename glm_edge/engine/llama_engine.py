"""`LlamaEngine`: the Engine protocol over llama.cpp with continuous batching.

One dedicated thread loads the model, owns the `llama_context` and runs the scheduler's step loop. The
asyncio side only tokenizes (read-only vocabulary), posts tasks and awaits chunks on its own queue.

    engine = LlamaEngine("model.gguf", n_parallel=4).start()
    async for chunk in engine.generate(engine.tokenize("Hello"), SamplingParams(max_tokens=16), "req-1"):
        print(chunk.text, end="")
"""

from __future__ import annotations

import asyncio
import os
import random
import threading

import llama_cpp
import numpy as np

from glm_edge.engine.model import LlamaModel
from glm_edge.engine.sampler import SamplerChain
from glm_edge.engine.scheduler import Scheduler
from glm_edge.engine.slots import End, Sink, SinkItem, Task
from glm_edge.engine.types import ChunkStream, SamplingParams
from glm_edge.errors import ConfigError, ContextLengthError, InvalidRequestError, ModelLoadingError

_FLASH_ATTN = {None: llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO, True: llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
               False: llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED}


def kv_cache_type(name: str) -> int:
    """'f16', 'q8_0', 'q4_0', ... -> the ggml type id llama.cpp expects for type_k / type_v."""
    value = getattr(llama_cpp, f"GGML_TYPE_{name.strip().upper()}", None)
    if not isinstance(value, int):
        raise ConfigError(f"unknown KV cache type {name!r} (use f16, bf16, q8_0, q5_1, q5_0, q4_1 or q4_0)")
    return value


class LlamaEngine:
    """Continuous-batching engine: `n_parallel` slots of `n_ctx` tokens each share one llama context."""

    def __init__(self, model_path: str, *, n_ctx: int = 4096, n_parallel: int = 4, n_batch: int = 512,
                 n_ubatch: int | None = None, n_gpu_layers: int = -1, main_gpu: int = 0,
                 split_mode: str = "layer", tensor_split: list[float] | None = None,
                 rpc_servers: list[str] | None = None,
                 flash_attn: bool | None = None, type_k: str | None = None, type_v: str | None = None,
                 n_threads: int | None = None, n_threads_batch: int | None = None, max_queue: int = 64,
                 seed: int | None = None, verbose: bool = False) -> None:
        if n_parallel < 1:
            raise ConfigError("--parallel must be at least 1")
        if n_ctx < 16:
            raise ConfigError("the context per slot must be at least 16 tokens")
        if n_batch < n_parallel:
            raise ConfigError(f"n_batch ({n_batch}) must be at least the number of slots ({n_parallel})")
        self.model_path = str(model_path)
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.n_batch = n_batch
        self.n_ubatch = n_ubatch or n_batch
        self.n_gpu_layers = n_gpu_layers
        self.main_gpu = main_gpu
        self.split_mode = split_mode
        self.tensor_split = list(tensor_split or [])
        self.rpc_servers = list(rpc_servers or [])
        self.flash_attn = flash_attn
        self.type_k = kv_cache_type(type_k) if type_k else None
        self.type_v = kv_cache_type(type_v) if type_v else None
        cpus = os.cpu_count() or 1
        self.n_threads = n_threads or cpus
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.max_queue = max_queue
        self.seed = seed
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.verbose = verbose
        self.model: LlamaModel | None = None
        self._ctx: llama_cpp.llama_context_p | None = None
        self._scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> "LlamaEngine":
        """Load the model and the context on the engine thread; return once ready (raises ConfigError)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._thread_main, name="glm-edge-engine", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._load_error is not None:
            self._thread.join()
            raise self._load_error
        return self

    def __enter__(self) -> "LlamaEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _thread_main(self) -> None:
        try:
            model = self.model = LlamaModel(self.model_path, n_gpu_layers=self.n_gpu_layers,
                                            main_gpu=self.main_gpu, split_mode=self.split_mode,
                                            tensor_split=self.tensor_split, rpc_servers=self.rpc_servers,
                                            verbose=self.verbose)
            ctx = self._ctx = self._new_context(model)
            n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(ctx))
            scheduler = self._scheduler = Scheduler(
                model, ctx, n_parallel=self.n_parallel, n_ctx=min(n_ctx_seq, self.n_ctx) if n_ctx_seq else self.n_ctx,
                n_batch=self.n_batch, max_queue=self.max_queue)
            self.n_ctx = scheduler.n_ctx  # what each slot really holds
        except BaseException as exc:  # reported by start()
            self._load_error = exc if isinstance(exc, ConfigError) else ConfigError(str(exc))
            self._free_native()
            self._ready.set()
            return
        self._ready.set()
        try:
            scheduler.run()
        finally:
            self._free_native()

    def _new_context(self, model: LlamaModel) -> llama_cpp.llama_context_p:
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = self.n_ctx * self.n_parallel
        p.n_seq_max = self.n_parallel
        p.n_batch = self.n_batch
        p.n_ubatch = self.n_ubatch
        p.n_threads = self.n_threads
        p.n_threads_batch = self.n_threads_batch
        p.flash_attn_type = _FLASH_ATTN[self.flash_attn]
        p.kv_unified = False  # one KV stream per slot: attention only over the slot's own cells
        p.no_perf = True
        if self.type_k is not None:
            p.type_k = self.type_k
        if self.type_v is not None:
            p.type_v = self.type_v
        ctx: llama_cpp.llama_context_p | None = llama_cpp.llama_init_from_model(model.model, p)
        if not ctx:
            raise ConfigError(
                f"llama.cpp could not create a context of {self.n_parallel} x {self.n_ctx} tokens for "
                f"{self.model_path} (out of memory, or an unsupported KV cache type / flash-attention setting)")
        return ctx

    def _free_native(self) -> None:
        if self._scheduler is not None:
            self._scheduler.batch = None
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self.model is not None:
            self.model.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._thread is not None:
            self._thread.join()

    # --- vocabulary (any thread) ------------------------------------------------------------------

    def _model(self) -> LlamaModel:
        if self.model is None or self.model.model is None:
            raise ModelLoadingError("the model is not loaded")
        return self.model

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        return self._model().tokenize(text, add_special=add_special, parse_special=parse_special)

    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        return self._model().token_to_piece(token_id, special)

    def detokenize(self, token_ids: list[int], *, special: bool = False) -> str:
        return self._model().detokenize(token_ids, special=special)

    def metadata(self) -> dict[str, str]:
        return self._model().metadata()

    def eos_token_id(self) -> int:
        return self._model().eos_token_id()

    def bos_token_id(self) -> int:
        return self._model().bos_token_id()

    def is_eog(self, token_id: int) -> bool:
        """The model's end-of-generation set (EOS, EOT, <end_of_turn>, ...)."""
        return self._model().is_eog(token_id)

    @property
    def add_bos(self) -> bool:
        return self._model().add_bos

    @property
    def n_vocab(self) -> int:
        return self._model().n_vocab

    # --- generation -------------------------------------------------------------------------------

    def _validate(self, prompt_tokens: list[int], params: SamplingParams, n_ctx: int) -> None:
        model = self._model()
        if not prompt_tokens:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        arr = np.asarray(prompt_tokens, dtype=np.int64)
        if arr.min() < 0 or arr.max() >= model.n_vocab:
            raise InvalidRequestError(f"prompt token ids must be in 0..{model.n_vocab - 1}", param="prompt")
        if len(prompt_tokens) >= n_ctx:
            raise ContextLengthError(
                f"This model's context holds {n_ctx} tokens per sequence, but the prompt has "
                f"{len(prompt_tokens)} tokens; at least one token must be left for the answer.")
        if params.n < 1 or params.n > self.n_parallel:
            raise InvalidRequestError(f"n must be between 1 and {self.n_parallel} (the number of parallel slots)",
                                      param="n")
        if params.max_tokens is not None and params.max_tokens < 1:
            raise InvalidRequestError("max_tokens must be at least 1", param="max_tokens")
        if params.logprobs and not 0 <= params.top_logprobs <= 20:
            raise InvalidRequestError("top_logprobs must be between 0 and 20", param="top_logprobs")

    async def generate(self, prompt_tokens: list[int], params: SamplingParams,
                       request_id: str) -> ChunkStream:
        """Stream the answer's chunks (one per token per choice; `text` may be empty while held back).

        Errors (QueueFullError, ContextLengthError, InvalidRequestError) are raised on the first
        iteration, before any chunk. Leaving the loop early (or cancelling the task) aborts the request
        and frees its slots within one step. Every choice ends with one chunk whose finish_reason is
        "stop" (stop_reason: the stop string or token id, neither part of the text), "length", or
        "abort" (after `abort(request_id)`)."""
        scheduler = self._scheduler
        if scheduler is None or self._closed:
            raise ModelLoadingError("the engine is not running")
        self._validate(prompt_tokens, params, scheduler.n_ctx)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[SinkItem] = asyncio.Queue()
        stop_ids = frozenset(int(t) for t in params.stop_token_ids)
        samplers = self._samplers(params)  # bad grammar / logit bias -> InvalidRequestError here, not later
        task = Task(request_id=request_id, prompt=list(prompt_tokens), params=params, sink=Sink(loop, queue),
                    stop_ids=stop_ids, samplers=samplers)
        try:
            scheduler.post(task)
        except BaseException:
            for sampler in samplers:
                sampler.free()
            raise
        finished = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, End):
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                scheduler.abort(task.request_id)

    def _samplers(self, params: SamplingParams) -> list[SamplerChain]:
        model = self._model()
        seed = params.seed
        if seed is None and self.seed is not None:
            with self._rng_lock:
                seed = self._rng.getrandbits(32)
        chains: list[SamplerChain] = []
        try:
            for i in range(params.n):  # choice i samples with seed + i: same seed, same n -> same texts
                chains.append(SamplerChain(params, vocab=model.vocab, n_vocab=model.n_vocab,
                                           seed=None if seed is None else seed + i))
        except BaseException:
            for chain in chains:
                chain.free()
            raise
        return chains

    def abort(self, request_id: str) -> None:
        if self._scheduler is not None:
            self._scheduler.abort(request_id)

    def stats(self) -> dict[str, float]:
        if self._scheduler is None:
            return {}
        out = self._scheduler.stats()
        out["n_ctx_per_slot"] = float(self._scheduler.n_ctx)
        out["n_gpu_layers"] = float(self.model.n_gpu_layers if self.model else 0)
        return out
