"""Pooling of token states into one vector per text, and L2 normalisation (numpy, as sentence-transformers does)."""

from __future__ import annotations

import numpy as np

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len", "lasttoken")


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """hidden [B, T, H] float32, mask [B, T] (1 = token, 0 = padding, right-padded) -> [B, H]."""
    if mode == "cls":
        return np.asarray(hidden[:, 0])
    m = mask.astype(hidden.dtype)[:, :, None]
    if mode in ("mean", "mean_sqrt_len"):
        summed = (hidden * m).sum(axis=1)
        counts = np.clip(m.sum(axis=1), 1e-9, None)
        return np.asarray(summed / (counts if mode == "mean" else np.sqrt(counts)))
    if mode == "max":
        return np.asarray(np.where(m > 0, hidden, np.finfo(hidden.dtype).min).max(axis=1))
    if mode == "lasttoken":
        last = mask.sum(axis=1).astype(np.int64) - 1
        return np.asarray(hidden[np.arange(hidden.shape[0]), np.clip(last, 0, None)])
    raise ValueError(f"unknown pooling mode '{mode}'; known: {', '.join(POOLING_MODES)}")


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.clip(norms, 1e-12, None))
