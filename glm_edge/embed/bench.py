"""Embedding throughput: glm-edge's embedder against sentence-transformers on the same model, in one run.

Three ways of sending the same texts:
- `batch`: requests of `request_size` texts, one after another;
- `concurrent`: `concurrency` clients each sending 1-text requests at the same time (what micro-batching is
  for: it should come close to `batch`);
- sentence-transformers `encode` on `request_size` texts at a time (its best case), and on one text at a
  time (what a server that calls `encode` per request does with concurrent 1-text requests).
Numbers are texts per second, best of `rounds`, the workloads taking turns in each round. sentence-transformers
(and torch) are imported only here, only when the comparison is asked for.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

_SUBJECTS = ["The new library", "Our small team", "A local bakery", "The city council", "My neighbour's cat",
             "This open-source project", "The research group", "A delayed train", "The football club", "Her startup"]
_VERBS = ["announced", "postponed", "celebrated", "questioned", "described", "improved", "criticised", "planned"]
_OBJECTS = ["a plan to cut energy use by a third", "the results of a two-year study on sleep",
            "an update that makes search twice as fast", "a festival with music from twelve countries",
            "new opening hours for the weekend", "a partnership with three universities",
            "the price of its most popular product", "a programme that teaches children to code"]
_TAILS = ["", " after months of debate.", " on Tuesday morning.", " despite the bad weather.",
          ", according to people familiar with the matter.", " and thanked everyone who helped.",
          ". 今天的天气很好，我们决定出去走走。", ". 这个消息在网上引起了广泛的讨论。"]


def bench_texts(n: int, seed: int = 0) -> list[str]:
    """`n` distinct sentences of mixed length (some with Chinese), the same for every run with the same seed."""
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)} (#{i})"
            for i in range(n)]


Workload = Callable[[], None]


def _interleaved(workloads: dict[str, Workload], count: int, rounds: int) -> dict[str, float]:
    """Texts/s of each workload, best of `rounds`; the workloads take turns inside each round, so a busy
    machine slows all of them alike instead of whichever happened to run while it was busy."""
    best = {name: float("inf") for name in workloads}
    for _ in range(rounds):
        for name, fn in workloads.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: count / seconds for name, seconds in best.items()}


def _our_workloads(embedder: Any, texts: list[str], request_size: int, concurrency: int) -> dict[str, Workload]:
    async def batch() -> None:
        for i in range(0, len(texts), request_size):
            await embedder.embed(texts[i:i + request_size])

    async def concurrent() -> None:
        pending = iter(texts)

        async def client() -> None:
            for text in pending:  # each client sends its next 1-text request when the last one returned
                await embedder.embed([text])

        await asyncio.gather(*[client() for _ in range(concurrency)])

    return {"ours_batch": lambda: asyncio.run(batch()), "ours_concurrent": lambda: asyncio.run(concurrent())}


def _st_workloads(checkpoint: Path, texts: list[str], request_size: int,
                  threads: int | None) -> tuple[dict[str, Workload], str]:
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(checkpoint), device=device)
    model.encode(texts[:request_size])  # warm-up

    def batch() -> None:
        for i in range(0, len(texts), request_size):
            model.encode(texts[i:i + request_size], batch_size=request_size)

    def single() -> None:
        for text in texts:
            model.encode([text])

    return {"st_batch": batch, "st_single": single}, device


def run_embed_bench(model: Path | str | None = None, *, checkpoint: Path | str | None = None, n_texts: int = 256,
                    request_size: int = 32, concurrency: int = 32, threads: int | None = None, rounds: int = 3,
                    compare: bool = True) -> dict[str, Any]:
    """Texts/s of glm-edge's embedder (requests of `request_size` texts; `concurrency` concurrent 1-text requests)
    and, with `compare`, of sentence-transformers on `checkpoint` in the same process, rounds interleaved.

    `model`: an ONNX folder or .onnx file, or the id of an embedded model (default: all-MiniLM-L6-v2, converted
    once); `checkpoint`: the sentence-transformers folder it came from (default: read from the folder's
    embedding.json). Returns a dict (see `format_embed_table`).
    """
    import json

    from glm_edge.embed.defaults import MULTILINGUAL_ID, default_embedding_dir, multilingual_default_model
    from glm_edge.embed.embedder import Embedder
    from glm_edge.errors import ConfigError

    if not model or str(model) == "all-MiniLM-L6-v2":
        model_path = default_embedding_dir()
    elif str(model) == MULTILINGUAL_ID:
        model_path = multilingual_default_model()
    else:
        model_path = Path(model)
        if not model_path.exists():
            raise ConfigError(f"{model} is neither an ONNX embedding folder / .onnx file nor an embedded model "
                              f"(all-MiniLM-L6-v2, {MULTILINGUAL_ID})")
    if checkpoint is None and (model_path / "embedding.json").exists():
        checkpoint = json.loads((model_path / "embedding.json").read_text(encoding="utf-8")).get("source")
    threads = threads or os.cpu_count() or 1
    texts = bench_texts(n_texts)
    report: dict[str, Any] = {"model": str(model_path), "n_texts": n_texts, "request_size": request_size,
                              "concurrency": concurrency, "threads": threads, "rounds": rounds}
    embedder = Embedder.load(model_path, model_id="bench", threads=threads, max_batch_size=max(64, request_size))
    try:
        embedder.embed_sync(texts[:request_size])  # warm-up
        workloads = _our_workloads(embedder, texts, request_size, concurrency)
        st_info: dict[str, Any] = {}
        if compare:
            if checkpoint is None or not Path(checkpoint).exists():
                st_info = {"skipped": "no sentence-transformers checkpoint to compare with"}
            else:
                try:
                    st_loads, device = _st_workloads(Path(checkpoint), texts, request_size, threads)
                    workloads.update(st_loads)
                    st_info = {"device": device}
                except ImportError as exc:
                    st_info = {"skipped": f"sentence-transformers is not installed ({exc.name})"}
        before = embedder.batcher.stats.batches, embedder.batcher.stats.items
        rates = _interleaved(workloads, len(texts), rounds)
        batches = embedder.batcher.stats.batches - before[0]
        report["glm_edge"] = {
            "batch_texts_per_s": rates["ours_batch"], "concurrent_texts_per_s": rates["ours_concurrent"],
            "providers": list(getattr(getattr(embedder.backend, "session", None), "get_providers", list)()),
            "mean_micro_batch": (embedder.batcher.stats.items - before[1]) / max(batches, 1),
        }
    finally:
        embedder.close()
    if "st_batch" in rates:
        st_info.update(batch_texts_per_s=rates["st_batch"], single_texts_per_s=rates["st_single"])
    if st_info:
        report["sentence_transformers"] = st_info
    ours, st = report["glm_edge"], report.get("sentence_transformers", {})
    report["concurrent_vs_batch"] = ours["concurrent_texts_per_s"] / ours["batch_texts_per_s"]
    if "batch_texts_per_s" in st:
        report["batch_vs_sentence_transformers"] = ours["batch_texts_per_s"] / st["batch_texts_per_s"]
        report["concurrent_vs_sentence_transformers_single"] = ours["concurrent_texts_per_s"] / st["single_texts_per_s"]
    return report


def format_embed_table(report: dict[str, Any]) -> str:
    """The report of `run_embed_bench` as a few aligned lines for the terminal."""
    ours, st = report["glm_edge"], report.get("sentence_transformers", {})
    size, conc = report["request_size"], report["concurrency"]
    rows = [("glm-edge", f"{size}-text requests", ours["batch_texts_per_s"]),
            ("glm-edge", f"{conc} concurrent 1-text requests", ours["concurrent_texts_per_s"])]
    if "batch_texts_per_s" in st:
        rows += [("sentence-transformers", f"encode({size} texts)", st["batch_texts_per_s"]),
                 ("sentence-transformers", "encode(1 text) per request", st["single_texts_per_s"])]
    lines = [f"model {report['model']}  ({report['n_texts']} texts, {report['threads']} threads, best of "
             f"{report['rounds']})"]
    lines += [f"  {who:<22} {how:<34} {rate:9.1f} texts/s" for who, how, rate in rows]
    lines.append(f"  micro-batching: {ours['mean_micro_batch']:.1f} texts per session run; concurrent/batch = "
                 f"{report['concurrent_vs_batch']:.2f}")
    if "batch_vs_sentence_transformers" in report:
        lines.append(f"  vs sentence-transformers: batch {report['batch_vs_sentence_transformers']:.2f}x, concurrent "
                     f"vs per-request encode {report['concurrent_vs_sentence_transformers_single']:.2f}x")
    elif st.get("skipped"):
        lines.append(f"  sentence-transformers: skipped ({st['skipped']})")
    return "\n".join(lines)
