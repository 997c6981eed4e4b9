"""The embedding benchmark (glm_edge.embed.bench) runs end to end on a small load, sentence-transformers included."""

from __future__ import annotations

from pathlib import Path

import pytest

from glm_edge.embed import default_embedding_dir
from glm_edge.embed.bench import bench_texts, format_embed_table, run_embed_bench


def test_bench_texts_are_distinct_and_repeatable() -> None:
    texts = bench_texts(50)
    assert len(set(texts)) == 50 and texts == bench_texts(50) and texts != bench_texts(50, seed=1)


def test_run_embed_bench_small(tmp_path_factory: pytest.TempPathFactory, minilm_checkpoint: Path) -> None:
    folder = default_embedding_dir(tmp_path_factory.mktemp("home"))
    report = run_embed_bench(folder, n_texts=16, request_size=8, concurrency=4, threads=2, rounds=1)
    ours, st = report["glm_edge"], report["sentence_transformers"]
    assert ours["batch_texts_per_s"] > 0 and ours["concurrent_texts_per_s"] > 0
    assert 1 <= ours["mean_micro_batch"] <= 8  # concurrent 1-text requests were gathered
    assert st["batch_texts_per_s"] > 0 and st["single_texts_per_s"] > 0
    assert Path(report["model"]) == folder and report["concurrent_vs_batch"] > 0
    assert report["batch_vs_sentence_transformers"] > 0
    table = format_embed_table(report)
    assert "concurrent 1-text requests" in table and "sentence-transformers" in table
