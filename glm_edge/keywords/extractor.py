"""KeyBERT-style keyword extraction on top of an Embedder.

The document and every candidate not yet cached are embedded together (one request, so they share one
micro-batch, unless there are more than the embedder takes at once); vectors are kept in a small LRU
cache, because the same words come back across documents and requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from glm_edge.errors import InvalidRequestError
from glm_edge.keywords.candidates import ngram_candidates, vocab_candidates
from glm_edge.keywords.selection import max_sum, mmr, top_k
from glm_edge.keywords.stopwords import default_stop_words

Keywords = list[tuple[str, float]]


class VectorCache:
    """A thread-safe LRU map text -> embedding vector."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class KeywordExtractor:
    def __init__(self, embedder: Any, *, model_id: str | None = None, cache_size: int = 8192,
                 stop_words: frozenset[str] | None = None) -> None:
        self.embedder = embedder
        self.id = model_id or embedder.id
        self.cache = VectorCache(cache_size)
        self.stop_words = default_stop_words() if stop_words is None else stop_words

    def candidates(self, doc: str, *, vocab: list[str] | None = None,
                   ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
        if vocab is not None:
            return vocab_candidates(doc, vocab)
        return ngram_candidates(doc, ngram_range, self.stop_words)

    def _missing(self, texts: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
        """The texts (document and candidates) not in the cache, and the vectors of those that are."""
        known: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            vec = self.cache.get(text)
            if vec is None:
                missing.append(text)
            else:
                known[text] = vec
        return missing, known

    def _store(self, missing: list[str], vectors: list[np.ndarray], known: dict[str, np.ndarray]) -> None:
        for text, vec in zip(missing, vectors):
            self.cache.put(text, vec)
            known[text] = vec

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        size = int(getattr(self.embedder, "max_inputs", 2048))
        return [texts[i:i + size] for i in range(0, len(texts), size)]

    @staticmethod
    def select(doc_vec: np.ndarray, word_vecs: np.ndarray, words: list[str], *, top_n: int, use_mmr: bool,
               use_maxsum: bool, diversity: float, nr_candidates: int) -> Keywords:
        if top_n < 1:
            raise InvalidRequestError("top must be at least 1", param="top")
        if not 0.0 <= diversity <= 1.0:
            raise InvalidRequestError("diversity must lie in [0, 1]", param="diversity")
        if not words:
            return []
        if use_mmr:  # KeyBERT's precedence: mmr, then maxsum, then plain top-k
            return mmr(doc_vec, word_vecs, words, top_n, diversity)
        if use_maxsum:
            return max_sum(doc_vec, word_vecs, words, top_n, nr_candidates)
        return top_k(doc_vec, word_vecs, words, top_n)

    async def extract(self, doc: str, *, vocab: list[str] | None = None, top_n: int = 10, use_mmr: bool = False,
                      use_maxsum: bool = False, diversity: float = 0.3, ngram_range: tuple[int, int] = (1, 2),
                      nr_candidates: int = 20) -> Keywords:
        if not doc or not doc.strip():
            raise InvalidRequestError("input must be a non-empty text", param="input")
        # segmentation (jieba loads its dictionary on first use) and Max Sum's combinations are CPU work: off the loop
        words = await asyncio.to_thread(self.candidates, doc, vocab=vocab, ngram_range=ngram_range)
        if not words:
            return []
        missing, known = self._missing([doc] + words)
        if missing:
            results = await asyncio.gather(*[self.embedder.embed(chunk, truncate="cut")
                                             for chunk in self._chunks(missing)])
            self._store(missing, [v for r in results for v in r.vectors], known)
        doc_vec, word_vecs = known[doc], np.stack([known[w] for w in words])
        return await asyncio.to_thread(self.select, doc_vec, word_vecs, words, top_n=top_n, use_mmr=use_mmr,
                                       use_maxsum=use_maxsum, diversity=diversity, nr_candidates=nr_candidates)

    def extract_sync(self, doc: str, **options: Any) -> Keywords:
        """Blocking form (scripts, tests); never call it on the event loop."""
        if not doc or not doc.strip():
            raise InvalidRequestError("input must be a non-empty text", param="input")
        vocab = options.pop("vocab", None)
        ngram_range = options.pop("ngram_range", (1, 2))
        words = self.candidates(doc, vocab=vocab, ngram_range=ngram_range)
        if not words:
            return []
        missing, known = self._missing([doc] + words)
        if missing:
            vectors = [v for chunk in self._chunks(missing)
                       for v in self.embedder.embed_sync(chunk, truncate="cut").vectors]
            self._store(missing, vectors, known)
        doc_vec, word_vecs = known[doc], np.stack([known[w] for w in words])
        defaults = {"top_n": 10, "use_mmr": False, "use_maxsum": False, "diversity": 0.3, "nr_candidates": 20}
        return self.select(doc_vec, word_vecs, words, **{**defaults, **options})
