"""Per-sequence sampling with llama.cpp's own sampler chains, and logprobs read only when asked."""

from __future__ import annotations

import ctypes
from typing import Callable

import llama_cpp
import numpy as np

from glm_edge.engine.types import SamplingParams, TokenLogprob
from glm_edge.errors import EngineError, InvalidRequestError

PENALTY_LAST_N = 64  # llama.cpp's and llama-cpp-python's default window for repetition penalties


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class SamplerChain:
    """One `llama_sampler` chain for one sequence; `sample()` picks the token and accepts it.

    A grammar is kept out of the chain: checking all ~150-260k vocabulary entries against the grammar on
    every token is slow, so (as llama.cpp's common sampler does) the chain samples freely, the grammar
    checks only the chosen token, and only a rejected token triggers a resample with the grammar applied
    to the whole row first."""

    def __init__(self, params: SamplingParams, *, vocab: llama_cpp.llama_vocab_p, n_vocab: int,
                 seed: int | None) -> None:
        chain_params = llama_cpp.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self._chain: llama_cpp.llama_sampler_p | None = llama_cpp.llama_sampler_chain_init(chain_params)
        self._grammar: llama_cpp.llama_sampler_p | None = None
        self._n_vocab = n_vocab
        # Greedy without grammar or penalties is an argmax over the (biased) row: done on a view of the
        # logits, it skips building llama.cpp's 12-byte candidate array per vocabulary entry (~0.3 ms of
        # serial work per sequence per step with a 262k vocabulary). Same token as the greedy sampler.
        self._greedy_fast = (params.temperature <= 0.0 and not params.grammar and params.repetition_penalty == 1.0
                             and params.presence_penalty == 0.0 and params.frequency_penalty == 0.0)
        self._bias_ids: np.ndarray | None = None
        if params.logit_bias:
            self._bias_ids = np.fromiter((int(t) for t in params.logit_bias), dtype=np.int64)
            self._bias_vals = np.fromiter((float(b) for b in params.logit_bias.values()), dtype=np.float32)
        try:
            self._build(params, vocab, n_vocab, seed)
        except BaseException:
            self.free()
            raise

    def _add(self, sampler: llama_cpp.llama_sampler_p | None) -> None:
        if not sampler:
            raise InvalidRequestError("llama.cpp refused a sampler setting")
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)

    def _build(self, p: SamplingParams, vocab: llama_cpp.llama_vocab_p, n_vocab: int, seed: int | None) -> None:
        if p.logit_bias:
            items = [(int(t), float(b)) for t, b in p.logit_bias.items()]
            for t, _ in items:
                if not 0 <= t < n_vocab:
                    raise InvalidRequestError(f"logit_bias token id {t} is outside the vocabulary (0..{n_vocab - 1})",
                                              param="logit_bias")
            arr = (llama_cpp.llama_logit_bias * len(items))(*[llama_cpp.llama_logit_bias(t, b) for t, b in items])
            self._add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(items), arr))
        if p.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(vocab, p.grammar.encode("utf-8"), b"root")
            if not grammar:
                raise InvalidRequestError("the grammar could not be parsed (GBNF with a `root` rule expected)",
                                          param="response_format")
            self._grammar = grammar
            self._cur = np.zeros(n_vocab, dtype=_TOKEN_DATA)
            self._ids = np.arange(n_vocab, dtype=np.int32)
            self._one = np.zeros(1, dtype=_TOKEN_DATA)
        if p.repetition_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0:
            if p.repetition_penalty <= 0:
                raise InvalidRequestError("repetition_penalty must be > 0", param="repetition_penalty")
            self._add(llama_cpp.llama_sampler_init_penalties(
                n_vocab, PENALTY_LAST_N, p.repetition_penalty, p.frequency_penalty, p.presence_penalty))
        if p.temperature <= 0.0:
            self._add(llama_cpp.llama_sampler_init_greedy())
            return
        if p.top_k > 0:
            self._add(llama_cpp.llama_sampler_init_top_k(p.top_k))
        if p.top_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
        if p.min_p > 0.0:
            self._add(llama_cpp.llama_sampler_init_min_p(p.min_p, 1))
        self._add(llama_cpp.llama_sampler_init_temp(p.temperature))
        dist_seed = llama_cpp.LLAMA_DEFAULT_SEED if seed is None else int(seed) & 0xFFFFFFFF
        self._add(llama_cpp.llama_sampler_init_dist(dist_seed))

    def sample(self, ctx: llama_cpp.llama_context_p, output_index: int) -> int:
        if self._greedy_fast:
            return self._greedy(_logits_row(ctx, output_index, self._n_vocab))
        if self._grammar is None:
            return int(llama_cpp.llama_sampler_sample(self._chain, ctx, output_index))
        logits = _logits_row(ctx, output_index, self._n_vocab)
        token = self._apply(logits, with_grammar=False)
        if not self._grammar_allows(token):
            token = self._apply(logits, with_grammar=True)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        llama_cpp.llama_sampler_accept(self._chain, token)
        return token

    def _greedy(self, row: np.ndarray) -> int:
        """First index of the largest biased logit (what llama.cpp's logit-bias + greedy samplers pick)."""
        best = int(row.argmax())
        if self._bias_ids is None:
            return best
        biased = row[self._bias_ids] + self._bias_vals
        if best in self._bias_ids:  # the favourite was biased: look at the whole biased row
            row = row.copy()
            row[self._bias_ids] = biased
            return int(row.argmax())
        j = int(biased.argmax())
        challenger = int(self._bias_ids[j])
        if biased[j] > row[best] or (biased[j] == row[best] and challenger < best):
            return challenger
        return best

    def _apply(self, logits: np.ndarray, *, with_grammar: bool) -> int:
        cur = self._cur
        cur["id"] = self._ids
        cur["logit"] = logits
        cur["p"] = 0.0
        arr = llama_cpp.llama_token_data_array(
            data=cur.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(cur), selected=-1, sorted=False)
        if with_grammar:
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(arr))
        if arr.selected < 0:
            raise InvalidRequestError("the grammar allows no token here", param="response_format")
        return int(arr.data[arr.selected].id)

    def _grammar_allows(self, token: int) -> bool:
        one = self._one
        one["id"] = token
        one["logit"] = 1.0
        one["p"] = 0.0
        arr = llama_cpp.llama_token_data_array(
            data=one.ctypes.data_as(llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        return bool(np.isfinite(one["logit"][0]))

    def free(self) -> None:
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:  # safety net; the scheduler frees chains explicitly
        try:
            self.free()
        except Exception:
            pass


def _logits_row(ctx: llama_cpp.llama_context_p, output_index: int, n_vocab: int) -> np.ndarray:
    """A view (no copy) of one output's logits; valid until the next decode."""
    ptr = llama_cpp.llama_get_logits_ith(ctx, output_index)
    if not ptr:
        raise EngineError(f"llama.cpp has no logits for output {output_index}")
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))


def logprobs_for(ctx: llama_cpp.llama_context_p, output_index: int, n_vocab: int, token_id: int, top_n: int,
                 piece: Callable[[int], bytes]) -> TokenLogprob:
    """Log-softmax of the model's logits row for one output (read only when a request asks for logprobs)."""
    row = _logits_row(ctx, output_index, n_vocab).astype(np.float64)
    peak = row.max()
    logz = peak + np.log(np.exp(row - peak).sum())
    top: list[TokenLogprob] = []
    if top_n > 0:
        idx = np.argpartition(-row, min(top_n, n_vocab - 1))[:top_n]
        idx = idx[np.argsort(-row[idx], kind="stable")]
        for t in idx:
            b = piece(int(t))
            top.append(TokenLogprob(b.decode("utf-8", errors="replace"), int(t), float(row[t] - logz), list(b)))
    b = piece(token_id)
    return TokenLogprob(b.decode("utf-8", errors="replace"), token_id, float(row[token_id] - logz), list(b), top)
