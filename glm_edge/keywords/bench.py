"""Keyphrase quality and speed: glm-edge's extractor, KeyBERT (same model through sentence-transformers) and
YAKE on a keyphrase dataset, in one run.

Datasets come in the layout of LIAAD/KeywordExtractor-Datasets (a zip or folder holding `docsutf8/*.txt` and
`keys/*.key`, one gold keyphrase a line). Scores are the usual ones: predictions and gold phrases are
lowercased, split into words and Porter-stemmed; a prediction counts when its stemmed form equals a gold one
(predictions that stem alike count once). P@k, R@k and F1@k are averaged over documents; s/doc is the wall time
of each system's own extraction loop divided by the number of documents.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

_WORDS = re.compile(r"[a-z0-9]+")
DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "tests" / "data" / "keyphrase" / "Inspec.zip"


def load_dataset(path: Path | str, limit: int | None = None, skip: int = 0) -> list[tuple[str, str, list[str]]]:
    """(id, text, gold keyphrases) of the documents, sorted by id (numerically where ids are numbers): ``limit``
    of them after the first ``skip`` (a held-out slice when the defaults were tuned on the first ones)."""
    path = Path(path)
    files: dict[str, bytes] = {}
    if path.is_dir():
        for f in path.rglob("*"):
            if f.is_file():
                files[f.relative_to(path).as_posix()] = f.read_bytes()
    else:
        with zipfile.ZipFile(path) as zf:
            files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    docs = {Path(n).stem: v for n, v in files.items() if "/docsutf8/" in f"/{n}" and n.endswith(".txt")}
    keys = {Path(n).stem: v for n, v in files.items() if "/keys/" in f"/{n}" and n.endswith(".key")}
    ids = sorted(set(docs) & set(keys), key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))
    out = []
    ids = ids[skip:]
    for doc_id in ids[:limit] if limit else ids:
        gold = [g.strip() for g in keys[doc_id].decode("utf-8", "replace").splitlines() if g.strip()]
        out.append((doc_id, docs[doc_id].decode("utf-8", "replace"), gold))
    return out


_stemmer: Any = None


def stem_phrase(phrase: str) -> str:
    global _stemmer
    if _stemmer is None:
        from nltk.stem.porter import PorterStemmer  # type: ignore[import-untyped]

        _stemmer = PorterStemmer()
    return " ".join(_stemmer.stem(w) for w in _WORDS.findall(phrase.lower()))


def scores(predicted: list[list[str]], gold: list[list[str]], ks: tuple[int, ...] = (5, 10)) -> dict[str, float]:
    """Mean P@k, R@k, F1@k over documents (Porter-stemmed exact match)."""
    out: dict[str, float] = {}
    for k in ks:
        p_sum = r_sum = f_sum = 0.0
        for pred, gold_doc in zip(predicted, gold):
            gold_set = {stem_phrase(g) for g in gold_doc} - {""}
            stems = list(dict.fromkeys(s for s in (stem_phrase(p) for p in pred) if s))[:k]
            hits = len(set(stems) & gold_set)
            p = hits / k
            r = hits / len(gold_set) if gold_set else 0.0
            p_sum, r_sum = p_sum + p, r_sum + r
            f_sum += 2 * p * r / (p + r) if p + r else 0.0
        n = max(len(gold), 1)
        out[f"P@{k}"], out[f"R@{k}"], out[f"F1@{k}"] = p_sum / n, r_sum / n, f_sum / n
    return out


Extract = Callable[[str], list[str]]


def _run(extract: Extract, texts: list[str]) -> tuple[list[list[str]], float]:
    extract(texts[0])  # warm-up (model load, caches of the first document are dropped by the caller)
    started = time.perf_counter()
    predicted = [extract(t) for t in texts]
    return predicted, (time.perf_counter() - started) / len(texts)


def _keybert(model_path: Path, threads: int, embedder: Any | None) -> Any:
    import os

    # keybert imports litellm, which otherwise fetches a price list from the internet at import
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from keybert import KeyBERT  # type: ignore[import-untyped]

    if embedder is not None:
        import numpy as np

        same = embedder
        from keybert.backend import BaseEmbedder  # type: ignore[import-untyped]

        class Ours(BaseEmbedder):  # type: ignore[misc]
            def embed(self, documents: Any, verbose: bool = False) -> Any:
                return np.asarray(same.embed_sync([str(d) for d in documents], truncate="cut").vectors)

        return KeyBERT(model=Ours())
    import torch
    from sentence_transformers import SentenceTransformer

    checkpoint = json.loads((model_path / "embedding.json").read_text(encoding="utf-8")).get("source")
    torch.set_num_threads(threads)
    return KeyBERT(model=SentenceTransformer(str(checkpoint), device="cpu"))


def run_keyword_bench(dataset: Path | str | None = None, *, limit: int | None = None, skip: int = 0, top: int = 10,
                      threads: int | None = None, systems: tuple[str, ...] = ("glm-edge", "keybert", "yake"),
                      model: Path | str | None = None, mixed: bool = True,
                      keybert_backend: str = "sentence-transformers") -> dict[str, Any]:
    """Scores and s/doc of each system on the dataset's first `limit` documents (all by default).

    `keybert_backend="glm-edge"` feeds KeyBERT vectors from glm-edge's ONNX embedder of the same model instead of
    sentence-transformers (quality checks without torch's start-up and speed; not for timing)."""
    import os

    from glm_edge.embed.defaults import default_embedding_dir
    from glm_edge.embed.embedder import Embedder
    from glm_edge.keywords.extractor import KeywordExtractor

    data = load_dataset(dataset or DEFAULT_DATASET, limit, skip)
    texts, gold = [d[1] for d in data], [d[2] for d in data]
    threads = threads or os.cpu_count() or 1
    model_path = Path(model) if model and str(model) != "all-MiniLM-L6-v2" else default_embedding_dir()
    report: dict[str, Any] = {"dataset": str(dataset or DEFAULT_DATASET), "documents": len(data), "skipped": skip,
                              "top": top, "threads": threads, "model": str(model_path), "systems": {}}
    embedder = Embedder.load(model_path, model_id="bench", threads=threads)
    try:
        if "glm-edge" in systems:
            extractor = KeywordExtractor(embedder, cache_size=0)
            predicted, per_doc = _run(lambda t: [k for k, _ in extractor.extract_sync(t, top_n=top)], texts)
            report["systems"]["glm-edge"] = {**scores(predicted, gold), "s_per_doc": per_doc,
                                             "how": "default /keyword settings", "example": predicted[0]}
            if mixed:
                report["mixed_embeddings"] = mixed_embeddings(embedder)
        if "keybert" in systems:
            kb = _keybert(model_path, threads, embedder if keybert_backend == "glm-edge" else None)
            predicted, per_doc = _run(lambda t: [k for k, _ in kb.extract_keywords(
                t, keyphrase_ngram_range=(1, 2), stop_words="english", top_n=top)], texts)
            report["systems"]["keybert"] = {**scores(predicted, gold), "s_per_doc": per_doc,
                                            "how": f"keyphrase_ngram_range=(1, 2), stop_words='english', "
                                                   f"{keybert_backend}", "example": predicted[0]}
    finally:
        embedder.close()
    if "yake" in systems:
        import yake  # type: ignore[import-untyped]

        yk = yake.KeywordExtractor(lan="en", n=3, top=top)
        predicted, per_doc = _run(lambda t: [k for k, _ in yk.extract_keywords(t)], texts)
        report["systems"]["yake"] = {**scores(predicted, gold), "s_per_doc": per_doc, "how": "n=3",
                                     "example": predicted[0]}
    return report


def mixed_embeddings(embedder: Any, *, short: int = 200, long_words: int = 400, rounds: int = 5) -> dict[str, Any]:
    """The issue's padding figure: seconds (best of `rounds`) to embed `short` short texts in one request, and the
    same with one long text (`long_words` words, cut to the model's length) added."""
    shorts = [f"keyword phrase number {i}" for i in range(short)]
    long = " ".join(f"word{i} of a long document" for i in range(long_words // 5 + 1))
    long_tokens = embedder.prepare_texts([long], truncate="cut")[0].length
    embedder.embed_sync([long] + shorts)  # warm-up
    best = {"short": float("inf"), "mixed": float("inf")}
    for _ in range(rounds):
        for name, texts in (("short", shorts), ("mixed", [long] + shorts)):
            started = time.perf_counter()
            embedder.embed_sync(texts, truncate="cut")
            best[name] = min(best[name], time.perf_counter() - started)
    return {"short": short, "long_tokens": long_tokens, "short_s": best["short"], "mixed_s": best["mixed"],
            "ratio": best["mixed"] / best["short"]}


def format_keyword_table(report: dict[str, Any]) -> str:
    lines = [f"{report['dataset']}: {report['documents']} documents after the first {report.get('skipped', 0)}, "
             f"top {report['top']}, {report['threads']} threads, "
             f"model {report['model']}",
             f"  {'system':<10} {'P@5':>6} {'F1@5':>6} {'F1@10':>6} {'s/doc':>8}"]
    for name, row in report["systems"].items():
        lines.append(f"  {name:<10} {row['P@5']:6.3f} {row['F1@5']:6.3f} {row['F1@10']:6.3f} {row['s_per_doc']:8.4f}")
    if "mixed_embeddings" in report:
        m = report["mixed_embeddings"]
        lines.append(f"  embeddings: {m['short']} short texts {m['short_s']:.3f} s; with one {m['long_tokens']}-token "
                     f"text {m['mixed_s']:.3f} s ({m['ratio']:.2f}x)")
    return "\n".join(lines)
