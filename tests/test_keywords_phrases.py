"""Phrase candidates and glm-edge's default keyword ranking: every keyword is a span of the input (English and
Chinese), spans stay inside one clause and do not start or end with a stop word, and the request fields."""

from __future__ import annotations

import re

import pytest

from glm_edge.embed import Embedder
from glm_edge.keywords import KeywordExtractor, phrase_candidates
from glm_edge.keywords.bench import DEFAULT_DATASET, load_dataset
from glm_edge.keywords.stopwords import ENGLISH_STOP_WORDS, default_stop_words, resolve_stop_words
from tests.test_keywords import CHINESE_DOCS, ENGLISH_DOCS

NEWS_ZH = [
    "国家统计局今天发布数据，今年一季度国内生产总值同比增长百分之五点三，消费对经济增长的贡献率明显提高。",
    "受强降雨影响，南方多个省份出现洪涝灾害，应急管理部已启动防汛四级应急响应，并派出工作组赶赴灾区。",
    "中国科学院的研究团队在量子计算领域取得新突破，成功研制出具有更高保真度的超导量子芯片。",
]


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def _occurs(keyword: str, text: str) -> bool:
    """Case-insensitively, with any run of whitespace in the text (wrapped lines) read as one space."""
    return keyword.lower() in _squash(text)


@pytest.fixture(scope="module")
def english_keywords(minilm: Embedder) -> KeywordExtractor:
    return KeywordExtractor(minilm)


@pytest.fixture(scope="module")
def chinese_keywords(use_multilingual: Embedder) -> KeywordExtractor:
    return KeywordExtractor(use_multilingual)


def test_candidates_are_spans_inside_one_clause_without_stop_words_at_the_ends() -> None:
    doc = ("Supervised learning is the machine learning task of learning a function that maps an input to an output "
           "based on example input-output pairs. It infers a function from the state of the art.")
    names = [p.text for p in phrase_candidates(doc, (1, 4), default_stop_words())]
    assert "state of the art" in names and "input-output pairs" in names and "machine learning task" in names
    assert "learning function" not in names and "pairs infers" not in names and "pairs. It infers" not in names
    for name in names:
        assert name in doc
        words = name.lower().split()
        assert words[0] not in ENGLISH_STOP_WORDS and words[-1] not in ENGLISH_STOP_WORDS
        assert not re.search(r"[.,;:!?()]", name)
    surface = [p.text for p in phrase_candidates("Graph Neural Networks, and graph neural networks.", (1, 3))]
    assert surface.count("Graph Neural Networks") == 1 and "graph neural networks" not in surface
    assert phrase_candidates("Wrapped\n\tline here", (2, 2))[0].text == "Wrapped line"


def test_chinese_candidates_are_words_of_one_clause() -> None:
    names = [p.text for p in phrase_candidates(CHINESE_DOCS[0], (1, 3), default_stop_words())]
    assert {"周鸿祎", "北京车展", "智界", "华为", "后座司机"} <= set(names)
    assert not {"华为国产", "司机今天", "我车收到"} & set(names)
    assert all(n in CHINESE_DOCS[0] for n in names) and not any(re.search("[，。“”]", n) for n in names)


@pytest.mark.parametrize("doc", ENGLISH_DOCS + [d[1] for d in load_dataset(DEFAULT_DATASET, 5)])
def test_every_english_keyword_occurs_in_the_input(english_keywords: KeywordExtractor, doc: str) -> None:
    for options in [{}, {"use_mmr": True, "diversity": 0.6}, {"use_maxsum": True}, {"ngram_range": (1, 4)}]:
        found = english_keywords.extract_sync(doc, top_n=10, **options)
        assert found and all(_occurs(name, doc) for name, _ in found), (options, found)
        assert len({n.lower() for n, _ in found}) == len(found)


@pytest.mark.parametrize("doc", CHINESE_DOCS + NEWS_ZH)
def test_every_chinese_keyword_occurs_in_the_input(chinese_keywords: KeywordExtractor, doc: str) -> None:
    found = chinese_keywords.extract_sync(doc, top_n=8)
    assert found and all(_occurs(name, doc) for name, _ in found), found
    assert all(len(name) >= 2 for name, _ in found)


def test_seed_text_gives_real_words(chinese_keywords: KeywordExtractor) -> None:
    names = [n for n, _ in chinese_keywords.extract_sync(CHINESE_DOCS[0], top_n=10)]
    assert not {"华为国产", "司机今天", "我车收到"} & set(names)
    assert {"华为", "周鸿祎", "北京车展", "智界", "智界S7", "后座司机"} & set(names)


def test_stop_words_field() -> None:
    assert resolve_stop_words(None) is None and resolve_stop_words("english") == ENGLISH_STOP_WORDS
    assert resolve_stop_words(["The ", "of"]) == frozenset({"the", "of"})
    names = [p.text for p in phrase_candidates("the art of war", (1, 4), resolve_stop_words([]) or frozenset())]
    assert "the art of war" in names  # no stop words at all: any span
