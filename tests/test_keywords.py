"""Keyword extraction (glm_edge.keywords): candidates, and ordering parity with the `keybert` package fed the
same embeddings through a custom backend, for plain top-k, MMR and Max Sum, on English and Chinese documents."""

from __future__ import annotations

import numpy as np
import pytest

from glm_edge.embed import Embedder
from glm_edge.errors import InvalidRequestError
from glm_edge.keywords import KeywordExtractor, ngram_candidates, phrase_candidates, tokenize, vocab_candidates
from glm_edge.keywords.stopwords import ENGLISH_STOP_WORDS, chinese_stop_words, default_stop_words

ENGLISH_DOCS = [
    "Supervised learning is the machine learning task of learning a function that maps an input to an output "
    "based on example input-output pairs. It infers a function from labeled training data consisting of a set "
    "of training examples.",
    "The city council approved a new budget on Tuesday that raises spending on public transport, parks and "
    "libraries, while cutting the cost of parking permits for residents.",
    "Electric vehicles are getting cheaper as battery prices fall, and charging networks now cover most highways, "
    "which makes long road trips in an electric car practical.",
]
CHINESE_DOCS = [
    "4月25日，周鸿祎微博发文，称今天在北京车展试了试智界S7，空间很大，很舒服，安全性能和零重力也让我印象深刻，"
    "非常适合我这种“后座司机”。我今天就是坐M9来的，老余很早就把车送到360楼下，那么忙还专门打电话问我车收到没有。"
    "我很感动也很感谢。还是那句话，我永远支持老余支持华为，为国产新能车唱赞歌。",
    "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器，"
    "该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。",
    "深度学习模型的训练需要大量的标注数据和强大的计算资源，图形处理器的并行计算能力大大缩短了训练时间。",
]
GLM_EXAMPLE_VOCAB = ["华为", "周鸿祎", "360", "新能源车", "智界", "工业", "其他"]


def _keybert(extractor: KeywordExtractor):
    """KeyBERT fed exactly the vectors our extractor used (its cache), so only the selection logic is compared:
    int8 models quantise activations per batch, so a text's vector shifts slightly with its batch mates."""
    from keybert import KeyBERT
    from keybert.backend import BaseEmbedder

    class SameEmbeddings(BaseEmbedder):
        def embed(self, documents, verbose=False):  # noqa: ANN001 - KeyBERT's signature
            vectors = [extractor.cache.get(str(d)) for d in documents]
            assert all(v is not None for v in vectors), "KeyBERT asked for a text our extractor did not embed"
            return np.stack(vectors)

    return KeyBERT(model=SameEmbeddings())


# ------------------------------------------------------------------------------------- candidates


@pytest.mark.parametrize("doc", ENGLISH_DOCS)
def test_english_candidates_match_sklearn_count_vectorizer(doc: str) -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    expected = CountVectorizer(ngram_range=(1, 2), stop_words="english").fit([doc]).get_feature_names_out()
    assert ngram_candidates(doc, (1, 2), ENGLISH_STOP_WORDS) == list(expected)
    assert ngram_candidates(doc, (1, 2), default_stop_words()) == list(expected)


def test_chinese_segmentation_and_stop_words() -> None:
    words = tokenize(CHINESE_DOCS[0])
    assert {"周鸿祎", "北京", "车展", "华为", "360", "s7"} <= set(words)
    assert all(len(w) >= 2 for w in words)
    candidates = ngram_candidates(CHINESE_DOCS[0], (1, 2), default_stop_words())
    assert "北京车展" in candidates and "智界 s7" in candidates  # CJK pairs join directly, mixed with a space
    assert "我们" in chinese_stop_words() and not {"我们", "还是", "那么"} & set(candidates)
    assert candidates == sorted(set(candidates))


def test_vocab_candidates_are_the_entries_in_the_text() -> None:
    assert vocab_candidates(CHINESE_DOCS[0], GLM_EXAMPLE_VOCAB) == ["华为", "周鸿祎", "360", "智界"]
    text = "I like the START of Art class; 1360 people came."
    assert vocab_candidates(text, ["art", "Start", "ar", "360", "like the", "art", " ", "class"]) == \
        ["art", "Start", "like the", "class"]


# ------------------------------------------------------------------------- parity with KeyBERT

SETTINGS = [
    dict(use_mmr=False, use_maxsum=False),
    dict(use_mmr=True, diversity=0.5),
    dict(use_mmr=True, diversity=0.8),
    dict(use_maxsum=True, nr_candidates=12),
]


def _keybert_with_our_candidates(extractor: KeywordExtractor, doc: str, settings: dict, ngram_range=(1, 3)):
    """Ours, and KeyBERT's selection fed our phrase candidates (and our vectors): KeyBERT's `mmr` / `maxsum`
    are reproduced over the phrases; its plain top-k is what `vocab` mode gives with the phrases as vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer

    names = [p.text for p in phrase_candidates(doc, ngram_range, extractor.stop_words)]
    vectorizer = CountVectorizer(analyzer=lambda text: names, lowercase=False)
    plain = not settings.get("use_mmr") and not settings.get("use_maxsum")
    ours = extractor.extract_sync(doc, top_n=5, ngram_range=ngram_range, vocab=names if plain else None, **settings)
    reference = _keybert(extractor).extract_keywords(doc, vectorizer=vectorizer, top_n=5, **settings)
    return ours, reference


@pytest.mark.parametrize("settings", SETTINGS, ids=["plain", "mmr0.5", "mmr0.8", "maxsum"])
@pytest.mark.parametrize("doc", ENGLISH_DOCS, ids=["ml", "council", "ev"])
def test_english_parity_with_keybert(minilm: Embedder, doc: str, settings: dict) -> None:
    ours, reference = _keybert_with_our_candidates(KeywordExtractor(minilm), doc, settings)
    assert ours == reference and len(ours) == 5


@pytest.mark.parametrize("settings", SETTINGS, ids=["plain", "mmr0.5", "mmr0.8", "maxsum"])
@pytest.mark.parametrize("doc", CHINESE_DOCS, ids=["car", "ai", "dl"])
def test_chinese_parity_with_keybert(use_multilingual: Embedder, doc: str, settings: dict) -> None:
    ours, reference = _keybert_with_our_candidates(KeywordExtractor(use_multilingual), doc, settings)
    assert ours == reference and len(ours) == 5


def test_vocab_mode_matches_keybert_given_the_same_candidates(use_multilingual: Embedder) -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    present = vocab_candidates(CHINESE_DOCS[0], GLM_EXAMPLE_VOCAB)
    vectorizer = CountVectorizer(analyzer=lambda text: present, vocabulary=present)
    extractor = KeywordExtractor(use_multilingual)
    ours = extractor.extract_sync(CHINESE_DOCS[0], vocab=GLM_EXAMPLE_VOCAB, top_n=5, use_mmr=True, use_maxsum=True,
                                  diversity=0.7)
    reference = _keybert(extractor).extract_keywords(CHINESE_DOCS[0], vectorizer=vectorizer, top_n=5, use_mmr=True,
                                                     diversity=0.7)
    assert ours == reference


@pytest.mark.parametrize("which", ["minilm", "use_multilingual"])
def test_glm_api_keyword_example(which: str, request: pytest.FixtureRequest) -> None:
    extractor = KeywordExtractor(request.getfixturevalue(which))
    found = extractor.extract_sync(CHINESE_DOCS[0], vocab=GLM_EXAMPLE_VOCAB, top_n=5, use_mmr=True, use_maxsum=True,
                                   diversity=0.7)
    assert sorted(name for name, _ in found) == sorted(["华为", "周鸿祎", "360", "智界"])
    assert all(0 < score <= 1 and round(score, 4) == score for _, score in found)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


# ------------------------------------------------------------------------------- behaviour


def test_maxsum_with_more_keywords_than_candidates(minilm: Embedder) -> None:
    found = KeywordExtractor(minilm).extract_sync("Rust compilers", top_n=10, use_maxsum=True)
    assert sorted(n for n, _ in found) == ["Rust", "Rust compilers", "compilers"]  # KeyBERT would return []


def test_maxsum_refuses_a_combinatorial_explosion(minilm: Embedder) -> None:
    with pytest.raises(InvalidRequestError, match="combinations"):
        KeywordExtractor(minilm).extract_sync(ENGLISH_DOCS[0], top_n=20, use_maxsum=True, nr_candidates=200)


def test_no_candidates_and_bad_arguments(minilm: Embedder) -> None:
    extractor = KeywordExtractor(minilm)
    assert extractor.extract_sync("the and of it", top_n=3) == []  # only stop words
    assert extractor.extract_sync("some text", vocab=["absent"]) == []
    with pytest.raises(InvalidRequestError, match="non-empty"):
        extractor.extract_sync("   ")
    with pytest.raises(InvalidRequestError, match="diversity"):
        extractor.extract_sync("some text here", use_mmr=True, diversity=1.5)


def test_cache_serves_repeated_texts(minilm: Embedder) -> None:
    extractor = KeywordExtractor(minilm, cache_size=1000)
    first = extractor.extract_sync(ENGLISH_DOCS[1], top_n=5)
    jobs = minilm.batcher.stats.jobs
    again = extractor.extract_sync(ENGLISH_DOCS[1], top_n=5)
    assert again == first and minilm.batcher.stats.jobs == jobs and extractor.cache.hits > 0
    tiny = KeywordExtractor(minilm, cache_size=3)
    tiny.extract_sync(ENGLISH_DOCS[2], top_n=2)
    assert len(tiny.cache) == 3


def test_async_extract_equals_sync(minilm: Embedder) -> None:
    import asyncio

    extractor = KeywordExtractor(minilm, cache_size=0)
    sync = extractor.extract_sync(ENGLISH_DOCS[2], top_n=4, use_mmr=True, diversity=0.4)
    async_ = asyncio.run(extractor.extract(ENGLISH_DOCS[2], top_n=4, use_mmr=True, diversity=0.4))
    assert [n for n, _ in async_] == [n for n, _ in sync]
    np.testing.assert_allclose([s for _, s in async_], [s for _, s in sync], atol=2e-4)


def test_stop_word_lists() -> None:
    assert len(ENGLISH_STOP_WORDS) == 318 and "the" in ENGLISH_STOP_WORDS
    assert len(chinese_stop_words()) > 500 and "的" in chinese_stop_words()
