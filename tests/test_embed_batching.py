"""Length-grouped micro-batches (glm_edge.embed.batcher): a long text never pads short ones far past their
length, and the vectors are the ones each text gets on its own."""

from __future__ import annotations

import numpy as np

from glm_edge.embed import Embedder
from glm_edge.embed.backends import Item
from glm_edge.embed.batcher import MicroBatcher


def _widths(lengths: list[int], **options: object) -> list[list[int]]:
    batcher = MicroBatcher(lambda items: (np.zeros((len(items), 1), np.float32), [0] * len(items)), **options)  # type: ignore[arg-type]
    try:
        items = [Item(ids=[1] * n) for n in lengths]
        order = sorted(range(len(items)), key=lambda i: items[i].length)
        return [[items[i].length for i in chunk] for chunk in batcher._chunks(order, items)]
    finally:
        batcher.close()


def test_a_long_text_gets_a_run_of_its_own() -> None:
    chunks = _widths([256] + [5, 6, 7, 8] * 50)
    assert [256] in chunks
    for chunk in chunks:
        assert max(chunk) <= 2 * min(chunk) + 8  # nobody padded past twice its length (plus a little)
        assert len(chunk) <= 64 and max(chunk) * len(chunk) <= 16384


def test_grouping_keeps_the_token_budget_and_the_size_cap() -> None:
    chunks = _widths([100] * 300, max_batch_size=64, max_batch_tokens=2000)
    assert all(len(c) <= 20 for c in chunks) and sum(map(len, chunks)) == 300
    strict = _widths([3, 4, 5, 30, 31, 200, 201], max_pad_ratio=1.0, pad_slack=0)
    assert strict == [[3], [4], [5], [30], [31], [200], [201]]


def test_mixed_lengths_give_the_vectors_of_each_text_alone(minilm: Embedder) -> None:
    long = " ".join(f"word{i} of a long document about embeddings" for i in range(60))
    texts = [long] + [f"short phrase {i}" for i in range(80)] + ["a medium sentence with a few more words in it"]
    together = minilm.embed_sync(texts)
    alone = np.stack([minilm.embed_sync([t]).vectors[0] for t in texts])
    np.testing.assert_allclose(together.vectors, alone, atol=2e-5)
    assert together.token_counts == [minilm.embed_sync([t]).token_counts[0] for t in texts]
    runs = minilm.batcher.stats.runs
    minilm.embed_sync(texts)
    assert minilm.batcher.stats.runs - runs >= 3  # short ones, the medium one and the long one are not padded together
