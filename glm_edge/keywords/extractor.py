"""Keyword extraction on top of an Embedder.

Without a `vocab`, candidates are phrases of the text itself (`phrase_candidates`: contiguous spans inside one
clause, no stop word at either end) and the default ranking is glm-edge's own: each phrase's cosine to the
document, plus a small bonus for phrases the text repeats (`FREQUENCY_WEIGHT` x log of the count), picked
by Maximal Marginal Relevance at `PHRASE_DIVERSITY`, so that near-duplicates ("neural network", "neural
networks", "network") do not fill the list. On Inspec this doubles KeyBERT's F1@10 with the same model
(README, keywords). `mmr` / `maxsum` ask for KeyBERT's own selections instead (step for step, see
`selection`), over the same phrase candidates; with a `vocab` the candidates are the vocabulary entries
found in the text and the selection is KeyBERT's (plain top-k unless `mmr` / `maxsum`), exactly as before.

The document and every candidate not yet cached are embedded in one request; the micro-batcher groups them
by length, so the document does not pad the short phrases. Vectors are kept in a small LRU cache, because
the same words come back across documents and requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from glm_edge.errors import InvalidRequestError
from glm_edge.keywords.candidates import Phrase, phrase_candidates, vocab_candidates
from glm_edge.keywords.selection import cosine_similarity, max_sum, mmr, top_k
from glm_edge.keywords.stopwords import default_stop_words

Keywords = list[tuple[str, float]]
DEFAULT_NGRAM_RANGE = (1, 3)
FREQUENCY_WEIGHT = 0.05
PHRASE_DIVERSITY = 0.25


def rank_phrases(doc_vec: np.ndarray, word_vecs: np.ndarray, phrases: list[Phrase], top_n: int) -> Keywords:
    """glm-edge's default ranking (module docstring): (keyword, cosine to the document) in rank order."""
    sims = cosine_similarity(word_vecs, doc_vec.reshape(1, -1))[:, 0].astype(np.float64)
    counts = np.array([p.count for p in phrases], dtype=np.float64)
    relevance = sims + FREQUENCY_WEIGHT * np.log(counts)
    unit = word_vecs / np.clip(np.linalg.norm(word_vecs, axis=1, keepdims=True), 1e-12, None)
    chosen: list[int] = []
    redundancy = np.full(len(phrases), -np.inf)
    available = np.ones(len(phrases), dtype=bool)
    for _ in range(min(top_n, len(phrases))):
        score = relevance if not chosen else (1 - PHRASE_DIVERSITY) * relevance - PHRASE_DIVERSITY * redundancy
        score = np.where(available, score, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, unit @ unit[best])
    return [(phrases[i].text, round(float(sims[i]), 4)) for i in chosen]


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
                   ngram_range: tuple[int, int] = DEFAULT_NGRAM_RANGE,
                   stop_words: frozenset[str] | None = None) -> list[Phrase] | list[str]:
        """Phrases of the text, or (with `vocab`) the vocabulary entries found in it."""
        if vocab is not None:
            return vocab_candidates(doc, vocab)
        return phrase_candidates(doc, ngram_range, self.stop_words if stop_words is None else stop_words)

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
               use_maxsum: bool, diversity: float, nr_candidates: int,
               phrases: list[Phrase] | None = None) -> Keywords:
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
        if phrases is not None:
            return rank_phrases(doc_vec, word_vecs, phrases, top_n)
        return top_k(doc_vec, word_vecs, words, top_n)

    def _split(self, found: list[Phrase] | list[str]) -> tuple[list[str], list[Phrase] | None]:
        if found and isinstance(found[0], Phrase):
            phrases = [p for p in found if isinstance(p, Phrase)]
            return [p.text for p in phrases], phrases
        return [w for w in found if isinstance(w, str)], None

    async def extract(self, doc: str, *, vocab: list[str] | None = None, top_n: int = 10, use_mmr: bool = False,
                      use_maxsum: bool = False, diversity: float = 0.3,
                      ngram_range: tuple[int, int] = DEFAULT_NGRAM_RANGE, nr_candidates: int = 20,
                      stop_words: frozenset[str] | None = None) -> Keywords:
        if not doc or not doc.strip():
            raise InvalidRequestError("input must be a non-empty text", param="input")
        # segmentation (jieba loads its dictionary on first use) and Max Sum's combinations are CPU work: off the loop
        found = await asyncio.to_thread(self.candidates, doc, vocab=vocab, ngram_range=ngram_range,
                                        stop_words=stop_words)
        words, phrases = self._split(found)
        if not words:
            return []
        missing, known = self._missing([doc] + words)
        if missing:
            results = await asyncio.gather(*[self.embedder.embed(chunk, truncate="cut")
                                             for chunk in self._chunks(missing)])
            self._store(missing, [v for r in results for v in r.vectors], known)
        doc_vec, word_vecs = known[doc], np.stack([known[w] for w in words])
        return await asyncio.to_thread(self.select, doc_vec, word_vecs, words, top_n=top_n, use_mmr=use_mmr,
                                       use_maxsum=use_maxsum, diversity=diversity, nr_candidates=nr_candidates,
                                       phrases=phrases)

    def extract_sync(self, doc: str, **options: Any) -> Keywords:
        """Blocking form (scripts, tests); never call it on the event loop."""
        if not doc or not doc.strip():
            raise InvalidRequestError("input must be a non-empty text", param="input")
        vocab = options.pop("vocab", None)
        ngram_range = options.pop("ngram_range", DEFAULT_NGRAM_RANGE)
        words, phrases = self._split(self.candidates(doc, vocab=vocab, ngram_range=ngram_range,
                                                     stop_words=options.pop("stop_words", None)))
        if not words:
            return []
        missing, known = self._missing([doc] + words)
        if missing:
            vectors = [v for chunk in self._chunks(missing)
                       for v in self.embedder.embed_sync(chunk, truncate="cut").vectors]
            self._store(missing, vectors, known)
        doc_vec, word_vecs = known[doc], np.stack([known[w] for w in words])
        defaults = {"top_n": 10, "use_mmr": False, "use_maxsum": False, "diversity": 0.3, "nr_candidates": 20}
        return self.select(doc_vec, word_vecs, words, **{**defaults, **options}, phrases=phrases)
