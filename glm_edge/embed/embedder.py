"""The embedder the routes and the keyword extractor use: validation, micro-batched inference,
L2 normalisation, Matryoshka `dimensions`, usage counts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from glm_edge.embed.backends import Backend, Item, load_backend
from glm_edge.embed.batcher import MicroBatcher
from glm_edge.embed.pooling import l2_normalize
from glm_edge.errors import InvalidRequestError

Truncate = Literal["cut", "error"]
MAX_INPUTS = 2048  # OpenAI's limit on the number of inputs in one embeddings request


@dataclass
class EmbeddingResult:
    vectors: np.ndarray  # [n, dimensions] float32
    token_counts: list[int]

    @property
    def total_tokens(self) -> int:
        return int(sum(self.token_counts))


class Embedder:
    """One embedding model. `embed` (async) and `embed_sync` (threads) share one micro-batcher."""

    def __init__(self, backend: Backend, *, model_id: str, normalize: bool = True, max_batch_size: int = 64,
                 max_batch_tokens: int = 16384, max_wait_ms: float = 2.0, max_inputs: int = MAX_INPUTS,
                 default_truncate: Truncate = "cut") -> None:
        self.backend = backend
        self.id = model_id
        self.normalize = normalize
        self.max_inputs = max_inputs
        self.default_truncate: Truncate = default_truncate
        self.batcher = MicroBatcher(backend.run, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens,
                                    max_wait_s=max_wait_ms / 1000.0, name=model_id)

    @classmethod
    def load(cls, path: Path | str, *, model_id: str | None = None, threads: int | None = None,
             device: str = "auto", **options: object) -> "Embedder":
        path = Path(path)
        backend = load_backend(path, threads=threads, device=device)
        return cls(backend, model_id=model_id or path.stem, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------ properties

    @property
    def dimensions(self) -> int:
        return self.backend.dimensions

    @property
    def max_seq_length(self) -> int | None:
        return self.backend.max_seq_length

    def check_dimensions(self, dimensions: int | None) -> int:
        """The output size for a request's `dimensions`, or a 400 saying which sizes this model allows."""
        native = self.backend.dimensions
        if dimensions is None or dimensions == native:
            return native
        allowed = self.backend.matryoshka_dims
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise InvalidRequestError("dimensions must be a positive integer", param="dimensions")
        if dimensions > native:
            raise InvalidRequestError(f"dimensions {dimensions} is more than this model's {native}", param="dimensions")
        if not allowed:
            raise InvalidRequestError(
                f"the model '{self.id}' was not trained for shortened embeddings; it only gives {native} dimensions",
                param="dimensions")
        if dimensions < min(allowed):
            raise InvalidRequestError(f"dimensions must be between {min(allowed)} and {native} for '{self.id}'",
                                      param="dimensions")
        return dimensions

    # ------------------------------------------------------------------------------ preparing

    def _check_count(self, n: int) -> None:
        if n == 0:
            raise InvalidRequestError("input must not be empty", param="input")
        if n > self.max_inputs:
            raise InvalidRequestError(f"too many inputs: {n}; at most {self.max_inputs} per request", param="input")

    def _truncate(self, truncate: Truncate | None) -> bool:
        mode = truncate or self.default_truncate
        if mode not in ("cut", "error"):
            raise InvalidRequestError(f"truncate must be 'cut' or 'error', not '{mode}'", param="truncate")
        return mode == "cut"

    def prepare_texts(self, texts: list[str], *, truncate: Truncate | None = None) -> list[Item]:
        self._check_count(len(texts))
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequestError(f"input[{i}] must be a string", param="input")
            if text == "":
                raise InvalidRequestError(f"input[{i}] is an empty string", param="input")
        return self.backend.prepare(texts, truncate=self._truncate(truncate))

    def prepare_token_ids(self, token_ids: list[list[int]], *, truncate: Truncate | None = None) -> list[Item]:
        self._check_count(len(token_ids))
        for i, ids in enumerate(token_ids):
            if not ids:
                raise InvalidRequestError(f"input[{i}] is an empty list of token ids", param="input")
        return self.backend.prepare_ids(token_ids, truncate=self._truncate(truncate))

    def _finish(self, raw: tuple[np.ndarray, list[int]], dims: int) -> EmbeddingResult:
        vectors, counts = raw
        if self.normalize:
            vectors = l2_normalize(vectors)
        if dims != vectors.shape[1]:  # Matryoshka: keep the leading dimensions, then renormalise
            vectors = vectors[:, :dims]
            if self.normalize:
                vectors = l2_normalize(vectors)
        return EmbeddingResult(np.ascontiguousarray(vectors, dtype=np.float32), list(counts))

    # ------------------------------------------------------------------------------ embedding

    async def embed_items(self, items: list[Item], *, dimensions: int | None = None) -> EmbeddingResult:
        dims = self.check_dimensions(dimensions)
        raw = await asyncio.wrap_future(self.batcher.submit(items))
        return self._finish(raw, dims)

    async def embed(self, texts: list[str], *, truncate: Truncate | None = None,
                    dimensions: int | None = None) -> EmbeddingResult:
        """Embed strings. Tokenising a large request runs off the event loop."""
        self.check_dimensions(dimensions)
        if sum(len(t) for t in texts if isinstance(t, str)) > 20_000:
            items = await asyncio.to_thread(self.prepare_texts, texts, truncate=truncate)
        else:
            items = self.prepare_texts(texts, truncate=truncate)
        return await self.embed_items(items, dimensions=dimensions)

    async def embed_token_ids(self, token_ids: list[list[int]], *, truncate: Truncate | None = None,
                              dimensions: int | None = None) -> EmbeddingResult:
        items = self.prepare_token_ids(token_ids, truncate=truncate)
        return await self.embed_items(items, dimensions=dimensions)

    def embed_sync(self, texts: list[str], *, truncate: Truncate | None = None,
                   dimensions: int | None = None) -> EmbeddingResult:
        """Blocking form for threads and scripts (never call it on the event loop)."""
        dims = self.check_dimensions(dimensions)
        items = self.prepare_texts(texts, truncate=truncate)
        return self._finish(self.batcher.submit(items).result(), dims)

    def stats(self) -> dict[str, float]:
        """Counters for /metrics (names prefixed glm_edge_ there)."""
        s = self.batcher.stats
        return {"embed_requests": s.jobs, "embed_inputs": s.items, "embed_batches": s.batches,
                "embed_session_runs": s.runs, "embed_tokens": s.real_tokens, "embed_padded_tokens": s.padded_tokens,
                "embed_queue": self.batcher.queued()}

    def close(self) -> None:
        self.batcher.close()
