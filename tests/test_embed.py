"""The embedder (glm_edge.embed): tokenisation, truncation, pooling, dimensions, token ids, micro-batching,
the cached MiniLM default and the multilingual string-input default. Real ONNX Runtime sessions throughout."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from glm_edge.embed import Embedder, default_embedding_dir, multilingual_default_model
from glm_edge.embed.backends import Item
from glm_edge.embed.batcher import MicroBatcher
from glm_edge.embed.pooling import l2_normalize, pool
from glm_edge.errors import InvalidRequestError
from glm_edge_convert.embedding_onnx import convert_embedding


@pytest.fixture(scope="module")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_embedding_dir(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def embedder(minilm_dir: Path):
    e = Embedder.load(minilm_dir, model_id="all-MiniLM-L6-v2", threads=2, max_wait_ms=20)
    yield e
    e.close()


def test_default_dir_is_converted_once(minilm_dir: Path) -> None:
    assert minilm_dir.name == "all-MiniLM-L6-v2-onnx"
    stamp = (minilm_dir / "model.onnx").stat().st_mtime_ns
    assert default_embedding_dir(minilm_dir.parent) == minilm_dir
    assert (minilm_dir / "model.onnx").stat().st_mtime_ns == stamp


def test_vectors_are_normalised_with_token_counts(embedder: Embedder) -> None:
    result = embedder.embed_sync(["hello world", "你好", "The food was delicious."])
    assert result.vectors.shape == (3, 384) and result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert result.token_counts == [4, 4, 7]  # [CLS] hello world [SEP]; 你 好 one token each; 5 words + specials
    assert result.total_tokens == 15


def test_similar_texts_are_closer(embedder: Embedder) -> None:
    v = embedder.embed_sync(["A man is playing a guitar.", "Someone plays an instrument.",
                             "Stocks fell sharply."]).vectors
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_truncation_cut_and_error(embedder: Embedder) -> None:
    long_text = " ".join(f"w{i}" for i in range(600))
    cut = embedder.embed_sync([long_text], truncate="cut")
    assert cut.token_counts == [256]
    with pytest.raises(InvalidRequestError) as info:
        embedder.embed_sync([long_text], truncate="error")
    assert info.value.code == "context_length_exceeded" and "256" in info.value.message
    at_limit = embedder.embed_sync(["word " * 254], truncate="error")  # 254 + 2 specials: exactly the limit
    assert at_limit.token_counts == [256]


@pytest.mark.parametrize("texts,message", [([], "must not be empty"), ([""], "empty string"),
                                           (["ok", 3], "must be a string")])
def test_bad_inputs(embedder: Embedder, texts: list, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        embedder.embed_sync(texts)


def test_too_many_inputs(minilm_dir: Path) -> None:
    small = Embedder.load(minilm_dir, model_id="m", max_inputs=3)
    try:
        with pytest.raises(InvalidRequestError, match="too many inputs: 4"):
            small.embed_sync(["a", "b", "c", "d"])
    finally:
        small.close()


def test_dimensions_refused_for_a_model_without_matryoshka(embedder: Embedder) -> None:
    assert embedder.embed_sync(["x"], dimensions=384).vectors.shape == (1, 384)
    for bad in (128, 500, 0):
        with pytest.raises(InvalidRequestError) as info:
            embedder.embed_sync(["x"], dimensions=bad)
        assert info.value.param == "dimensions"


def test_matryoshka_dimensions(minilm_checkpoint: Path, tmp_path: Path, embedder: Embedder) -> None:
    folder = convert_embedding(minilm_checkpoint, tmp_path / "m", matryoshka_dims=[64, 128, 256])
    assert json.loads((folder / "embedding.json").read_text())["matryoshka_dims"] == [64, 128, 256]
    m = Embedder.load(folder, model_id="m")
    try:
        short = m.embed_sync(["Matryoshka embeddings nest"], dimensions=128).vectors
        full = embedder.embed_sync(["Matryoshka embeddings nest"]).vectors
        assert short.shape == (1, 128)
        np.testing.assert_allclose(short, l2_normalize(full[:, :128]), atol=1e-5)
        with pytest.raises(InvalidRequestError, match="between 64 and 384"):
            m.embed_sync(["x"], dimensions=32)
    finally:
        m.close()


def test_token_ids_match_text(embedder: Embedder) -> None:
    text = "Token ids in, the same vector out."
    by_text = embedder.embed_sync([text]).vectors
    ids = embedder.backend.tokenizer.encode(text, add_special_tokens=False).ids
    with_specials = embedder.backend.tokenizer.encode(text).ids
    result = asyncio.run(embedder.embed_token_ids([ids, with_specials]))
    np.testing.assert_allclose(result.vectors, np.repeat(by_text, 2, axis=0), atol=1e-5)
    assert result.token_counts == [len(with_specials)] * 2
    with pytest.raises(InvalidRequestError, match="outside this model's vocabulary"):
        asyncio.run(embedder.embed_token_ids([[5, 10**7]]))
    with pytest.raises(InvalidRequestError, match="empty list of token ids"):
        asyncio.run(embedder.embed_token_ids([[]]))
    with pytest.raises(InvalidRequestError, match="maximum of 256"):
        asyncio.run(embedder.embed_token_ids([[2000] * 300], truncate="error"))
    assert asyncio.run(embedder.embed_token_ids([[2000] * 300])).token_counts == [256]


def test_concurrent_requests_are_micro_batched(embedder: Embedder) -> None:
    texts = [f"request number {i} asks about {'embeddings ' * (i % 7)}" for i in range(32)]
    together = embedder.embed_sync(texts).vectors
    before = embedder.batcher.stats.batches

    async def one_each() -> list[np.ndarray]:
        results = await asyncio.gather(*[embedder.embed([t]) for t in texts])
        return [r.vectors[0] for r in results]

    separately = np.stack(asyncio.run(one_each()))
    np.testing.assert_allclose(separately, together, atol=1e-5)
    assert embedder.batcher.stats.batches - before <= 4  # 32 requests gathered into a few session runs


def test_batch_order_survives_length_sorting_and_token_budget(minilm_dir: Path) -> None:
    texts = ["short", "a much longer text " * 20, "mid length text here", "x", "another long one " * 15]
    e = Embedder.load(minilm_dir, model_id="m", max_batch_size=2, max_batch_tokens=64)
    try:
        batched = e.embed_sync(texts)
        assert e.batcher.stats.runs >= 3
        for i, text in enumerate(texts):
            single = e.embed_sync([text])
            np.testing.assert_allclose(batched.vectors[i], single.vectors[0], atol=1e-5)
            assert batched.token_counts[i] == single.token_counts[0]
    finally:
        e.close()


def test_batcher_reports_failures_to_every_waiter() -> None:
    def broken(items: list[Item]):
        raise RuntimeError("session failed")

    batcher = MicroBatcher(broken, max_wait_s=0.01)
    futures = [batcher.submit([Item(text="a")]), batcher.submit([Item(text="b")])]
    for f in futures:
        with pytest.raises(RuntimeError, match="session failed"):
            f.result(timeout=10)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit([Item(text="c")])


def test_pooling_modes() -> None:
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(pool(hidden, mask, "cls"), hidden[:, 0])
    np.testing.assert_allclose(pool(hidden, mask, "mean"), [[1, 2], [8, 9]])
    np.testing.assert_allclose(pool(hidden, mask, "max"), [[2, 3], [10, 11]])
    np.testing.assert_allclose(pool(hidden, mask, "lasttoken"), [[2, 3], [10, 11]])
    np.testing.assert_allclose(pool(hidden, mask, "mean_sqrt_len"), [[2 / np.sqrt(2), 4 / np.sqrt(2)],
                                                                     [24 / np.sqrt(3), 27 / np.sqrt(3)]])
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(hidden, mask, "median")


def test_multilingual_default_string_input_model() -> None:
    e = Embedder.load(multilingual_default_model(), model_id="use-multilingual-v3-int8", threads=2)
    try:
        assert e.dimensions == 512 and not e.backend.accepts_token_ids
        texts = ["今天天气很好", "The weather is nice today", "SELECT name FROM users;", "股市大幅下跌"]
        result = e.embed_sync(texts)
        v = result.vectors
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert v[0] @ v[1] > 0.6  # Chinese and English paraphrases meet
        assert v[0] @ v[1] > v[0] @ v[2] + 0.3 and v[0] @ v[1] > v[0] @ v[3] + 0.2
        assert all(n > 1 for n in result.token_counts)  # counted by the graph's own sentencepiece tokenizer
        with pytest.raises(InvalidRequestError, match="send strings"):
            asyncio.run(e.embed_token_ids([[1, 2, 3]]))
    finally:
        e.close()


ZH_PARAPHRASES = [("今天天气很好", "今天是个晴朗的好天气"), ("我想预订一张去北京的机票", "帮我订一张飞往北京的航班"),
                  ("这家餐厅的菜很好吃", "这个饭店的饭菜味道不错"), ("股市今天大幅下跌", "今天股票市场暴跌"),
                  ("电动汽车越来越便宜", "电动车的价格不断下降"),
                  ("他在比赛最后一分钟进球", "他在终场前一分钟打进一球"),
                  ("请把报告发给我", "麻烦把那份报告发我一下"), ("我的猫喜欢睡觉", "我家的猫咪很爱睡觉"),
                  ("会议改到下周二", "会议推迟到了下个星期二"), ("机器学习需要大量数据", "训练机器学习模型要很多数据"),
                  ("How do I reset my password?", "我怎么重置我的密码？"),
                  ("The weather is nice today", "今天天气很好")]


def _paraphrase_retrieval(e: Embedder) -> float:
    a = e.embed_sync([p[0] for p in ZH_PARAPHRASES]).vectors
    b = e.embed_sync([p[1] for p in ZH_PARAPHRASES]).vectors
    return float(np.mean((a @ b.T).argmax(axis=1) == np.arange(len(ZH_PARAPHRASES))))


def test_multilingual_default_handles_chinese_better_than_minilm(embedder: Embedder) -> None:
    """Why the multilingual default exists: Chinese (and Chinese-English) paraphrase retrieval@1."""
    multilingual = Embedder.load(multilingual_default_model(), model_id="use", threads=2)
    try:
        use_score, minilm_score = _paraphrase_retrieval(multilingual), _paraphrase_retrieval(embedder)
    finally:
        multilingual.close()
    assert use_score >= 0.8 and use_score > minilm_score + 0.25, (use_score, minilm_score)


def test_serving_path_never_imports_torch(tmp_path: Path) -> None:
    """Converting the default, embedding, extracting keywords, the app and a chat request's conversion, in a fresh
    interpreter: no torch, no transformers."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from glm_edge.embed import Embedder, default_embedding_dir, multilingual_default_model\n"
        "from glm_edge.keywords import KeywordExtractor\n"
        "import glm_edge.api.embeddings\n"
        f"e = Embedder.load(default_embedding_dir({str(tmp_path)!r}))\n"
        "KeywordExtractor(e).extract_sync('今天在北京车展试了试新车 and liked it', top_n=3, use_maxsum=True)\n"
        "Embedder.load(multilingual_default_model()).embed_sync(['你好'])\n"
        "import glm_edge.api.app\n"  # the whole app, and a chat request through the API edge to the chat layer
        "from glm_edge.api.chat_input import chat_input\n"
        "from glm_edge.api.protocol import ChatCompletionRequest\n"
        "chat_input(ChatCompletionRequest.model_validate({'messages': [{'role': 'user', 'content': 'hi'}]}))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'sentence_transformers',"
        " 'sklearn', 'keybert'))\n"
        "print('LEAKED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LEAKED []" in out.stdout, out.stdout


def test_load_errors_and_model_file_of_a_folder(minilm_dir: Path, tmp_path: Path) -> None:
    from glm_edge.errors import ConfigError

    e = Embedder.load(minilm_dir / "model.onnx", model_id="m")  # the folder's own model file finds its config
    try:
        assert e.dimensions == 384
    finally:
        e.close()
    import shutil

    shutil.copy(minilm_dir / "model.onnx", tmp_path / "lonely.onnx")
    with pytest.raises(ConfigError, match="does not take strings"):
        Embedder.load(tmp_path / "lonely.onnx")
    with pytest.raises(ConfigError, match="neither an ONNX embedding folder"):
        Embedder.load(tmp_path)
