"""KeyBERT's three ways to pick keywords from scored candidates, in numpy.

They follow KeyBERT 0.9 (`keybert/_model.py`, `_mmr.py`, `_maxsum.py`) step for step, including how ties
break (argsort / argmax over candidates in their given order, first best combination for Max Sum) and the
order results come back in, so the same embeddings give the same keywords in the same order.
Similarities are cosines, rounded to 4 decimals.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

from glm_edge.errors import InvalidRequestError

MAX_MAXSUM_COMBINATIONS = 2_000_000


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of a against rows of b, like sklearn's (normalise, then dot), in the inputs' dtype."""
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), np.finfo(a.dtype).tiny, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), np.finfo(b.dtype).tiny, None)
    return np.asarray(a @ b.T)


def top_k(doc: np.ndarray, words: np.ndarray, names: list[str], top_n: int) -> list[tuple[str, float]]:
    distances = cosine_similarity(doc.reshape(1, -1), words)
    return [(names[i], round(float(distances[0][i]), 4)) for i in distances.argsort()[0][-top_n:]][::-1]


def mmr(doc: np.ndarray, words: np.ndarray, names: list[str], top_n: int, diversity: float) -> list[tuple[str, float]]:
    """Maximal Marginal Relevance: each next keyword maximises (1-diversity)*sim(doc) - diversity*max sim(chosen)."""
    word_doc = cosine_similarity(words, doc.reshape(1, -1))
    word_word = cosine_similarity(words, words)
    chosen = [int(np.argmax(word_doc))]
    rest = [i for i in range(len(names)) if i != chosen[0]]
    for _ in range(min(top_n - 1, len(names) - 1)):
        relevance = word_doc[rest, :]
        redundancy = np.max(word_word[rest][:, chosen], axis=1)
        scores = (1 - diversity) * relevance - diversity * redundancy.reshape(-1, 1)
        best = rest[int(np.argmax(scores))]
        chosen.append(best)
        rest.remove(best)
    picked = [(names[i], round(float(word_doc.reshape(1, -1)[0][i]), 4)) for i in chosen]
    return sorted(picked, key=lambda kv: kv[1], reverse=True)


def max_sum(doc: np.ndarray, words: np.ndarray, names: list[str], top_n: int,
            nr_candidates: int) -> list[tuple[str, float]]:
    """Max Sum Distance: among the `nr_candidates` best candidates, the `top_n` whose pairwise similarities
    sum lowest. Unlike KeyBERT, asking for more keywords than there are candidates shrinks `top_n` (KeyBERT
    returns nothing) and `nr_candidates` is raised to at least `top_n` (KeyBERT raises)."""
    top_n = min(top_n, len(names))
    nr_candidates = max(nr_candidates, top_n)
    if top_n == 0:
        return []
    pool = min(nr_candidates, len(names))
    if comb(pool, top_n) > MAX_MAXSUM_COMBINATIONS:
        raise InvalidRequestError(
            f"maxsum over {pool} candidates for {top_n} keywords means {comb(pool, top_n)} combinations; "
            "lower nr_candidates or top", param="nr_candidates")
    distances = cosine_similarity(doc.reshape(1, -1), words)
    word_word = cosine_similarity(words, words)
    idx = list(distances.argsort()[0][-nr_candidates:])
    sub = word_word[np.ix_(idx, idx)].astype(np.float64)
    np.fill_diagonal(sub, 0.0)
    combos = np.array(list(itertools.combinations(range(len(idx)), top_n)), dtype=np.int64)
    best, best_sum = None, np.inf
    for start in range(0, len(combos), 65536):  # bounded memory: 64k combinations x top_n^2 at a time
        block = combos[start:start + 65536]
        sums = sub[block[:, :, None], block[:, None, :]].sum(axis=(1, 2))
        j = int(np.argmin(sums))
        if sums[j] < best_sum:
            best, best_sum = block[j], sums[j]
    assert best is not None
    return [(names[idx[i]], round(float(distances[0][idx[i]]), 4)) for i in best]
