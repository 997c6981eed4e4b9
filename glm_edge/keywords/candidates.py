"""Keyword candidates: the text's n-grams after segmentation and stop-word removal, or the vocabulary
entries that occur in the text.

Segmentation follows scikit-learn's CountVectorizer (what KeyBERT uses) for alphabetic scripts: the text
is lowercased and words are runs of word characters at least two long (`(?u)\\b\\w\\w+\\b`). Runs that
hold Chinese / Japanese / Korean characters are segmented further with jieba, and its words of two or
more characters are kept (single characters are mostly particles). Stop words are removed before n-grams
are built, so an n-gram may span a removed stop word, as in scikit-learn. N-grams are joined with a
space, except between two CJK words, which are joined directly ("北京" + "车展" -> "北京车展").
Candidates come back sorted, as CountVectorizer orders its features (this fixes how ties break).
"""

from __future__ import annotations

import re
import threading
from typing import Iterable, Protocol

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_WORD_RUN = re.compile(r"\w+")
# a word character that is not CJK: what must not touch a vocabulary entry for it to count as a whole word
_NON_CJK_WORD = f"[^\\W{_CJK_RANGES}]"



class _Segmenter(Protocol):
    """What is used of a `jieba.Tokenizer` (jieba ships no type information)."""

    def lcut(self, sentence: str, cut_all: bool = False, HMM: bool = True) -> list[str]: ...  # noqa: N803


_jieba_lock = threading.Lock()
_jieba: _Segmenter | None = None


def _segmenter() -> _Segmenter:  # jieba builds its dictionary on first use (about a second); do it once, thread-safely
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba = tokenizer
    return _jieba


def tokenize(text: str) -> list[str]:
    """Lowercased words of two or more characters, in text order (jieba for CJK runs)."""
    tokens: list[str] = []
    for run in _WORD_RUN.findall(text.lower()):
        if _CJK.search(run):
            tokens.extend(w for w in _segmenter().lcut(run, HMM=True) if len(w) >= 2 and _WORD_RUN.fullmatch(w))
        elif len(run) >= 2:
            tokens.append(run)
    return tokens


def _join(words: Iterable[str]) -> str:
    out = ""
    for word in words:
        if out and not (_CJK.match(out[-1]) and _CJK.match(word[0])):
            out += " "
        out += word
    return out


def ngram_candidates(text: str, ngram_range: tuple[int, int] = (1, 2),
                     stop_words: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The distinct n-grams of the text's words (stop words removed first), sorted."""
    low, high = ngram_range
    if not 1 <= low <= high:
        raise ValueError(f"ngram_range must satisfy 1 <= low <= high, got {ngram_range}")
    words = [w for w in tokenize(text) if w not in stop_words]
    grams = set()
    for n in range(low, high + 1):
        for i in range(len(words) - n + 1):
            grams.add(_join(words[i:i + n]))
    return sorted(grams)


def vocab_candidates(text: str, vocab: Iterable[str]) -> list[str]:
    """The vocabulary entries that occur in the text, in vocabulary order, without repeats. Case is ignored;
    an entry must not be glued to other letters or digits of an alphabetic word ("art" is not in "start"),
    while CJK text has no word boundaries, so a CJK neighbour is fine ("360" occurs in "360楼下")."""
    lowered = text.lower()
    found: list[str] = []
    seen: set[str] = set()
    for entry in vocab:
        term = entry.strip()
        if not term or term in seen:
            continue
        body = term.lower()
        left = f"(?<!{_NON_CJK_WORD})" if re.match(_NON_CJK_WORD, body[0]) else ""
        right = f"(?!{_NON_CJK_WORD})" if re.match(_NON_CJK_WORD, body[-1]) else ""
        pattern = left + re.escape(body) + right
        if re.search(pattern, lowered):
            found.append(term)
            seen.add(term)
    return found
