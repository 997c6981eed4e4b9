"""`glm-edge bench --keywords` on a small Inspec subset: quality relations only (timing is the bench's job).
KeyBERT gets the vectors of glm-edge's ONNX embedder of the same model (no torch start-up)."""

from __future__ import annotations

import pytest

from glm_edge.keywords.bench import DEFAULT_DATASET, load_dataset, run_keyword_bench, scores, stem_phrase


def test_dataset_and_scoring() -> None:
    docs = load_dataset(DEFAULT_DATASET)
    assert len(docs) == 2000 and docs[0][0] == "2" and all(gold for _, _, gold in docs[:50])
    assert stem_phrase("Neural Networks") == stem_phrase("neural network") == "neural network"
    s = scores([["neural networks", "Neural network", "graphs"]], [["neural network", "trees"]], ks=(5,))
    assert s["P@5"] == pytest.approx(1 / 5) and s["R@5"] == pytest.approx(1 / 2)  # stemmed twins count once


def test_glm_edge_beats_keybert_and_yake_on_30_inspec_abstracts() -> None:
    pytest.importorskip("yake")
    pytest.importorskip("keybert")
    report = run_keyword_bench(limit=30, threads=2, mixed=False, keybert_backend="glm-edge")
    ours, keybert, yake = (report["systems"][k]["F1@10"] for k in ("glm-edge", "keybert", "yake"))
    assert ours >= yake and ours >= 1.3 * keybert, report["systems"]
    assert report["systems"]["glm-edge"]["P@5"] > report["systems"]["keybert"]["P@5"]
