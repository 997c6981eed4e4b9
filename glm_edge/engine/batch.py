"""A `llama_batch` whose arrays are numpy buffers owned by Python, filled with slice assignments.

Each token belongs to exactly one sequence, so `seq_id[i]` points at element i of one flat int32 array.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np


class Batch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.token = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.seq = np.zeros(capacity, dtype=np.int32)
        self.logits = np.zeros(capacity, dtype=np.int8)
        seq_base = self.seq.ctypes.data
        item = self.seq.itemsize
        self._seq_ptrs = (ctypes.POINTER(llama_cpp.llama_seq_id) * capacity)(
            *[ctypes.cast(seq_base + i * item, ctypes.POINTER(llama_cpp.llama_seq_id)) for i in range(capacity)])
        # pointers into the numpy buffers (given to the constructor: the struct's field annotations say arrays)
        self._struct = llama_cpp.llama_batch(
            n_tokens=0,
            token=self.token.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token)),
            embd=ctypes.POINTER(ctypes.c_float)(),
            pos=self.pos.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_pos)),
            n_seq_id=self.n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(ctypes.POINTER(llama_cpp.llama_seq_id))),
            logits=self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )
        self.n_tokens = 0

    def clear(self) -> None:
        self.n_tokens = 0

    @property
    def free(self) -> int:
        return self.capacity - self.n_tokens

    def add(self, token: int, pos: int, seq: int, output: bool) -> int:
        """Append one token; returns its index in the batch (the index of its logits if `output`)."""
        i = self.n_tokens
        self.token[i] = token
        self.pos[i] = pos
        self.seq[i] = seq
        self.logits[i] = 1 if output else 0
        self.n_tokens = i + 1
        return i

    def add_span(self, tokens: list[int], start_pos: int, seq: int, output_last: bool) -> int:
        """Append consecutive prompt tokens of one sequence; returns the index of the last one."""
        n = len(tokens)
        i = self.n_tokens
        self.token[i:i + n] = tokens
        self.pos[i:i + n] = np.arange(start_pos, start_pos + n, dtype=np.int32)
        self.seq[i:i + n] = seq
        self.logits[i:i + n] = 0
        if output_last:
            self.logits[i + n - 1] = 1
        self.n_tokens = i + n
        return i + n - 1

    def as_llama_batch(self) -> "llama_cpp.llama_batch":
        self._struct.n_tokens = self.n_tokens
        return self._struct
