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


# ------------------------------------------------------------------------------------ phrase candidates
#
# What a reader would accept as a keyphrase: a contiguous span of the original text, inside one clause (no
# sentence or clause punctuation inside it), that neither starts nor ends with a stop word; stop words inside
# it are kept ("state of the art"). The surface form is the text's own (only runs of whitespace, as in
# wrapped lines, become one space). Chinese runs are cut into jieba words; a Chinese phrase is one to
# `high` consecutive noun-like words (jieba's POS tags) of one clause, joined as they stand in the text.

# a word: letters / digits, with inner hyphens, apostrophes or dots ("input-output", "don't", "e.g", "3.5")
_LATIN_WORD = re.compile(r"[^\W_]+(?:[-'\u2019.][^\W_]+)*")
# words of a phrase may be separated by whitespace only (CJK words by nothing); anything else ends the clause
_GAP_OK = re.compile(r"[ \t\r\n\u00a0\u3000]*")
_BLANK_LINE = re.compile(r"\n[ \t\r\u00a0\u3000]*\n")
# jieba tags of words that can be part of a noun phrase: nouns (n, nr, ns, nt, nz, ng...), verbal / adjectival
# nouns, abbreviations, idioms used as nouns, foreign words, and words jieba does not know (its HMM's finds)
_NOUNISH_TAGS = ("n", "vn", "an", "j", "eng", "nz", "x?")
# the only stop words a phrase may hold inside ("state of the art", "research and development"); any other
# stop word ends the span, which keeps clauses such as "learning is the machine" out
CONNECTORS = frozenset({"of", "and", "for", "the", "in", "on", "to", "a", "an", "with", "by", "at", "from", "de"})


def _nounish(tag: str) -> bool:
    return tag.startswith("n") or tag in _NOUNISH_TAGS


def _word_tags() -> dict[str, str]:
    import jieba.posseg

    return jieba.posseg.dt.word_tag_tab  # type: ignore[no-any-return]


class Phrase:
    """One distinct candidate: its surface form (first occurrence), how often and how early it occurs."""

    __slots__ = ("text", "count", "first", "words")

    def __init__(self, text: str, first: float, words: int) -> None:
        self.text = text
        self.count = 1
        self.first = first  # offset of the first occurrence / length of the document, in [0, 1)
        self.words = words

    def __repr__(self) -> str:
        return f"Phrase({self.text!r}, count={self.count}, first={self.first:.2f})"


_Token = tuple[int, int, int, bool]  # start, end, kind (WORD / CONNECTOR / STOP), may be in a phrase
WORD, CONNECTOR, STOP = 0, 1, 2


def _kind(low: str, stop_words: frozenset[str] | set[str]) -> int:
    if low.isdigit():  # a bare number may sit inside a phrase ("windows 95 users") but not end one
        return CONNECTOR
    if low in stop_words:
        return CONNECTOR if low in CONNECTORS else STOP
    return WORD


def _tokens(text: str, stop_words: frozenset[str] | set[str]) -> list[list[_Token]]:
    """The text's words as clauses: lists of (start, end, is stop word, may be in a phrase)."""
    clauses: list[list[_Token]] = []
    current: list[_Token] = []
    tags: dict[str, str] | None = None
    last_end = 0
    for match in _LATIN_WORD.finditer(text):
        gap = text[last_end:match.start()]
        if current and (not _GAP_OK.fullmatch(gap) or _BLANK_LINE.search(gap)):
            clauses.append(current)
            current = []
        last_end = match.end()
        word = match.group()
        if not _CJK.search(word):
            low = word.lower()
            current.append((match.start(), match.end(), _kind(low, stop_words), len(word) >= 2 or word.isdigit()))
            continue
        if tags is None:
            tags = _word_tags()
        pos = match.start()
        for piece in _segmenter().lcut(word, HMM=True):
            start, pos = pos, pos + len(piece)
            if not _CJK.search(piece):  # a Latin / digit piece glued to Chinese ("智界S7", "360楼下")
                current.append((start, pos, _kind(piece.lower(), stop_words), len(piece) >= 2 or piece.isdigit()))
                continue
            tag = tags.get(piece, "x?")
            current.append((start, pos, STOP if piece in stop_words else WORD, len(piece) >= 2 and _nounish(tag)))
    if current:
        clauses.append(current)
    return clauses


def phrase_candidates(text: str, ngram_range: tuple[int, int] = (1, 3),
                      stop_words: frozenset[str] | set[str] = frozenset()) -> list[Phrase]:
    """The distinct phrase candidates of the text (see above), in order of first occurrence; two spans that
    differ only in case or spacing are one candidate, named by its first occurrence."""
    low, high = ngram_range
    if not 1 <= low <= high:
        raise ValueError(f"ngram_range must satisfy 1 <= low <= high, got {ngram_range}")
    found: dict[str, Phrase] = {}
    size = max(len(text), 1)
    for clause in _tokens(text, stop_words):
        for i, (start, _, kind_first, ok_first) in enumerate(clause):
            if kind_first != WORD or not ok_first:
                continue
            for n in range(1, min(high, len(clause) - i) + 1):
                _, end, kind, ok = clause[i + n - 1]
                if kind == STOP or not ok:
                    break  # a stop word other than a connector, or a word that may not be in a phrase, ends it
                if n < low or kind != WORD:
                    continue
                surface = " ".join(text[start:end].split())
                key = surface.lower()
                phrase = found.get(key)
                if phrase is None:
                    found[key] = Phrase(surface, start / size, n)
                else:
                    phrase.count += 1
    return list(found.values())
