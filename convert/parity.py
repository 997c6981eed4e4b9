"""Checks of a converted GGUF against its source: llama.cpp logits and tokenization (used by tests and by
anyone verifying a conversion by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LogitsParity:
    argmax_agreement: float  # fraction of positions where the top token agrees
    max_abs_diff: float
    ref_max_abs: float  # the largest |reference logit|

    @property
    def relative_max_diff(self) -> float:
        return self.max_abs_diff / self.ref_max_abs

    def ok(self, *, min_agreement: float = 0.95, max_relative_diff: float = 0.05) -> bool:
        return self.argmax_agreement >= min_agreement and self.relative_max_diff <= max_relative_diff

    def __str__(self) -> str:
        return (f"argmax agreement {self.argmax_agreement:.1%}, max |diff| {self.max_abs_diff:.4f} "
                f"= {self.relative_max_diff:.2%} of max |ref| {self.ref_max_abs:.3f}")


def compare_logits(reference: np.ndarray, got: np.ndarray) -> LogitsParity:
    """Compare [positions, vocab] logits (reference first)."""
    if reference.shape != got.shape:
        raise ValueError(f"logits shapes differ: {reference.shape} vs {got.shape}")
    agree = float(np.mean(reference.argmax(-1) == got.argmax(-1)))
    return LogitsParity(agree, float(np.max(np.abs(reference - got))), float(np.max(np.abs(reference))))


def _quiet_llama(path: Path, **kwargs: object):  # noqa: ANN202 - llama_cpp.Llama
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)


def llama_logits(path: Path, token_ids: list[int], *, threads: int = 2) -> np.ndarray:
    """llama.cpp's logits for every position of ``token_ids`` (one sequence, evaluated from position 0)."""
    llm = _quiet_llama(path, n_ctx=max(64, len(token_ids)), n_batch=max(64, len(token_ids)), logits_all=True,
                       n_threads=threads, n_threads_batch=threads)
    try:
        llm.eval(token_ids)
        return np.array(llm.scores[: len(token_ids)], dtype=np.float32)
    finally:
        llm.close()


class GGUFTokenizer:
    """A GGUF's own tokenizer (vocab only, no weights), kept open for many texts: ``with GGUFTokenizer(p) as t``."""

    def __init__(self, path: Path) -> None:
        self._llm = _quiet_llama(path, vocab_only=True)

    def __enter__(self) -> GGUFTokenizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._llm.close()

    def encode(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS added; ``special``: control-token text becomes the control token)."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def decode(self, ids: list[int]) -> bytes:
        return bytes(self._llm.detokenize(ids, special=True))


def llama_tokenize(path: Path, text: str, *, special: bool = False) -> list[int]:
    """Tokenize with the GGUF's own tokenizer (no BOS added)."""
    with GGUFTokenizer(path) as tok:
        return tok.encode(text, special=special)


def gguf_metadata(path: Path) -> dict[str, object]:
    """A GGUF file's key-value metadata as plain Python values (strings, numbers, lists), without tensors.

    Reads the GGUF v2/v3 header directly (glm_edge.gguf_header): ``gguf.GGUFReader`` builds a numpy view per
    array element and takes ~20 s on a 150k-token vocabulary (with 300k merges), this takes about one second.
    """
    from glm_edge.gguf_header import read_gguf_metadata

    return read_gguf_metadata(path)


def gguf_tensor_types(path: Path) -> dict[str, str]:
    """Tensor name -> GGML type name (e.g. ``Q4_K``) of a GGUF file."""
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
