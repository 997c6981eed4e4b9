"""`glm-edge bench`: streaming throughput and latency through the HTTP API, against llama-cpp-python's `Llama`.

One run measures, on the same GGUF and machine:
- the baseline a user would otherwise pick: `llama_cpp.Llama` in this process, non-stream and stream;
- for each concurrency level: per-stream tok/s, aggregate tok/s, TTFT p50/p95, through streaming HTTP
  (OpenAI completions or chat wire format), against a running server (`url`) or one started here;
- a long answer (e.g. 1 024 tokens) against the short one: the per-token cost must stay flat;
- "join": TTFT of a request that arrives while 7 others stream.

Every request is greedy with the model's end-of-generation tokens biased away, so each answer has exactly
`max_tokens` tokens; the baseline gets the same prompt and the same bias.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import numpy as np

from glm_edge.errors import ConfigError

if TYPE_CHECKING:
    from glm_edge.engine.baseline import LlamaBaseline
    from glm_edge.engine.types import Engine

FILLER = ("The history of astronomy spans thousands of years, from early observers who tracked the motion of "
          "the planets to modern telescopes that map galaxies billions of light years away. ")


@dataclass
class RequestResult:
    ok: bool
    ttft_s: float = 0.0  # first text
    total_s: float = 0.0
    completion_tokens: int = 0
    error: str | None = None

    @property
    def decode_tok_s(self) -> float:
        """Tokens after the first / time after the first: the streaming speed the user sees."""
        span = self.total_s - self.ttft_s
        return (self.completion_tokens - 1) / span if span > 0 and self.completion_tokens > 1 else 0.0

    @property
    def e2e_tok_s(self) -> float:
        return self.completion_tokens / self.total_s if self.total_s > 0 else 0.0


StreamFn = Callable[[str, int, "asyncio.Event | None"], Awaitable[RequestResult]]


# --------------------------------------------------------------------------------------------- targets


class HttpTarget:
    """Streams from an OpenAI-compatible server (completions or chat)."""

    def __init__(self, url: str, model_id: str | None, *, api: str = "completions", api_key: str | None = None,
                 logit_bias: dict[int, float] | None = None, timeout_s: float = 600.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.model_id = model_id
        self.api = api
        self.logit_bias = {str(k): v for k, v in (logit_bias or {}).items()}
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
        self.client = httpx.AsyncClient(headers=headers, timeout=timeout_s, limits=limits)

    async def close(self) -> None:
        await self.client.aclose()

    async def stream(self, prompt: str, max_tokens: int, first: asyncio.Event | None = None) -> RequestResult:
        body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0, "stream": True,
                                "stream_options": {"include_usage": True}}
        if self.model_id:
            body["model"] = self.model_id
        if self.logit_bias:
            body["logit_bias"] = self.logit_bias
        if self.api == "chat":
            path = "/v1/chat/completions"
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            path = "/v1/completions"
            body["prompt"] = prompt
        t0 = time.perf_counter()
        ttft = None
        pieces = 0
        usage_tokens = None
        try:
            async with self.client.stream("POST", self.url + path, json=body) as resp:
                if resp.status_code != 200:
                    text = (await resp.aread()).decode("utf-8", errors="replace")
                    return RequestResult(False, error=f"HTTP {resp.status_code}: {text[:200]}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if "error" in event:
                        return RequestResult(False, error=str(event["error"])[:200])
                    if event.get("usage"):
                        usage_tokens = event["usage"].get("completion_tokens")
                    for choice in event.get("choices") or []:
                        text = choice.get("text")
                        if text is None:
                            delta = choice.get("delta") or {}
                            text = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
                        if text:
                            pieces += 1
                            if ttft is None:
                                ttft = time.perf_counter() - t0
                                if first is not None:
                                    first.set()
        except Exception as exc:  # network errors are results, not crashes
            return RequestResult(False, error=f"{type(exc).__name__}: {exc}")
        total = time.perf_counter() - t0
        n = usage_tokens if usage_tokens is not None else pieces
        return RequestResult(True, ttft if ttft is not None else total, total, n)


class EngineTarget:
    """Streams from a LlamaEngine in this process (no HTTP): the engine's own ceiling."""

    def __init__(self, engine: Engine, logit_bias: dict[int, float] | None = None) -> None:
        self.engine = engine
        self.logit_bias = dict(logit_bias or {})
        self._n = 0

    async def close(self) -> None:
        return None

    async def stream(self, prompt: str, max_tokens: int, first: asyncio.Event | None = None) -> RequestResult:
        from glm_edge.engine.types import SamplingParams

        self._n += 1
        tokens = self.engine.tokenize(prompt, add_special=True)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, logit_bias=self.logit_bias)
        t0 = time.perf_counter()
        ttft = None
        n = 0
        try:
            async for chunk in self.engine.generate(tokens, params, f"bench-{self._n}"):
                n = chunk.completion_tokens
                if chunk.text and ttft is None:
                    ttft = time.perf_counter() - t0
                    if first is not None:
                        first.set()
        except Exception as exc:
            return RequestResult(False, error=f"{type(exc).__name__}: {exc}")
        total = time.perf_counter() - t0
        return RequestResult(True, ttft if ttft is not None else total, total, n)


# ---------------------------------------------------------------------------------------------- levels


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


async def run_level(stream: StreamFn, prompts: list[str], concurrency: int, max_tokens: int) -> dict[str, Any]:
    """`len(prompts)` requests, at most `concurrency` in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> RequestResult:
        async with sem:
            return await stream(prompt, max_tokens, None)

    t0 = time.perf_counter()
    results = await asyncio.gather(*[one(p) for p in prompts])
    return summarize(list(results), concurrency, max_tokens, time.perf_counter() - t0)


def summarize(results: list[RequestResult], concurrency: int, max_tokens: int, wall: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    tokens = sum(r.completion_tokens for r in ok)
    ttfts = [r.ttft_s for r in ok]
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "first_error": next((r.error for r in results if not r.ok), None),
        "max_tokens": max_tokens,
        "completion_tokens": tokens,
        "wall_s": wall,
        "per_stream_tok_s": float(np.median([r.decode_tok_s for r in ok])) if ok else 0.0,
        "per_stream_e2e_tok_s": float(np.median([r.e2e_tok_s for r in ok])) if ok else 0.0,
        "aggregate_tok_s": tokens / wall if wall > 0 else 0.0,
        "ttft_p50_s": _pct(ttfts, 50),
        "ttft_p95_s": _pct(ttfts, 95),
    }


async def run_single_paired(stream: StreamFn, prompts: list[str], max_tokens: int, rounds: int,
                            baseline: LlamaBaseline | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Single-stream requests interleaved with the baseline's non-stream and stream runs on the same prompt,
    so that both see the same machine (a shared machine's load changes by the minute). Medians reported."""
    results: list[RequestResult] = []
    base_runs: dict[str, list[dict[str, Any]]] = {"non_stream": [], "stream": []}
    for r in range(rounds):
        prompt = prompts[r % len(prompts)]
        if baseline is not None:
            base_runs["non_stream"].append(baseline.run(prompt, max_tokens, stream=False).to_dict())
            base_runs["stream"].append(baseline.run(prompt, max_tokens, stream=True).to_dict())
        results.append(await stream(prompt, max_tokens, None))
    level = summarize(results, 1, max_tokens, sum(x.total_s for x in results))
    if baseline is None:
        return level, None
    summary = {}
    for kind, runs in base_runs.items():
        ordered = sorted(runs, key=lambda d: d["tok_s"])
        summary[kind] = dict(ordered[len(ordered) // 2], runs_tok_s=[d["tok_s"] for d in runs])
    return level, summary


async def run_join(stream: StreamFn, prompts: list[str], max_tokens: int, n_background: int = 7) -> dict[str, Any]:
    """TTFT of a request that arrives while `n_background` others are streaming, next to its solo TTFT."""
    solo = await stream(prompts[-1], 8, None)
    firsts = [asyncio.Event() for _ in range(n_background)]
    background = [asyncio.ensure_future(stream(prompts[i], max_tokens, firsts[i])) for i in range(n_background)]
    for event, task in zip(firsts, background):  # all 7 streaming (or failed) before the probe arrives
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    probe = await stream(prompts[-1], 8, None)
    done = await asyncio.gather(*background)
    ok = [r for r in done if r.ok]
    step_s = float(np.median([1.0 / r.decode_tok_s for r in ok if r.decode_tok_s > 0])) if ok else 0.0
    return {
        "background_streams": n_background,
        "solo_ttft_s": solo.ttft_s,
        "join_ttft_s": probe.ttft_s if probe.ok else None,
        "step_s_while_busy": step_s,
        "extra_steps": ((probe.ttft_s - solo.ttft_s) / step_s) if probe.ok and step_s > 0 else None,
        "errors": sum(1 for r in done if not r.ok) + (0 if probe.ok else 1),
    }


# -------------------------------------------------------------------------------------------- helpers


def make_prompts(n: int, prompt_tokens: int, tokenize: Callable[[str], list[int]] | None) -> list[str]:
    """`n` distinct prompts of about `prompt_tokens` tokens (distinct heads, so no prompt reuses another's KV)."""
    words = (FILLER * (1 + prompt_tokens // 20)).split()
    body = ""
    for k in range(1, len(words) + 1):
        body = " ".join(words[:k])
        count = len(tokenize(body)) if tokenize else int(k * 1.3)
        if count >= prompt_tokens - 6:
            break
    return [f"Note {i + 1}: {body}" for i in range(n)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """`glm-edge serve` in a subprocess on a free port, for the run."""

    def __init__(self, model: str | None, *, parallel: int, threads: int | None, ctx_size: int,
                 extra_args: list[str] | None = None, startup_timeout_s: float = 600.0) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "glm_edge_cli.cli", "serve"] + ([model] if model else []) + [
            "--port", str(self.port), "--parallel", str(parallel), "--ctx-size", str(ctx_size),
            "--no-embedding", "--log-level", "warning"]
        if threads:
            cmd += ["--threads", str(threads)]
        cmd += extra_args or []
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"glm-edge-bench-server-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(startup_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise ConfigError(f"the server for the benchmark exited (code {self.proc.returncode}):\n{tail}")
            try:
                if httpx.get(self.url + "/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.close()
        raise ConfigError(f"the server for the benchmark was not ready within {timeout_s:.0f} s (log: {self.log_path})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _resolve_gguf(model: str | None) -> tuple[str, Path]:
    from glm_edge.resolve import resolve_chat

    spec = resolve_chat(model)
    return spec.id, Path(spec.gguf)


def _eog_bias(gguf: Path) -> tuple[dict[int, float], Callable[[str], list[int]]]:
    """-100 on every end-of-generation token (fixed-length answers), and a tokenizer for prompt sizing."""
    from glm_edge.engine.model import LlamaModel

    vocab = LlamaModel(gguf, vocab_only=True)
    bias = {t: -100.0 for t in range(vocab.n_vocab) if vocab.is_eog(t)}
    return bias, vocab.tokenize


def _machine() -> dict[str, Any]:
    import llama_cpp

    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                            "python": platform.python_version(), "llama_cpp_python": llama_cpp.__version__,
                            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload())}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            info["gpu"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# ------------------------------------------------------------------------------------------------ run


def run_bench(url: str | None = None, model: str | None = None, concurrency: list[int] | None = None,
              max_tokens: int = 128, prompt_tokens: int = 32, requests_per_level: int | None = None,
              baseline: bool = True, parallel: int | None = None, threads: int | None = None,
              long_tokens: int = 1024, join: bool = True, api: str = "completions", api_key: str | None = None,
              inprocess: bool = False, ctx_size: int | None = None, n_gpu_layers: int = -1,
              reference: bool = False) -> dict[str, Any]:
    """Run the whole benchmark and return a JSON-able dict (see `format_table`).

    url: a running server; else MODEL (catalog id / GGUF path / None = the embedded default) is served by a
    subprocess `glm-edge serve` (or, with `inprocess`, by a LlamaEngine in this process, no HTTP).
    requests_per_level: default 2 x concurrency. long_tokens: 0 skips the long-answer run. The baseline
    needs the GGUF: with `url`, give `model` too (else the baseline is skipped). `reference` adds, per
    level, a bare batched-decode loop on the same GGUF in this process (llama.cpp's own ceiling here)."""
    levels = sorted(set(concurrency or [1, 4, 8]))
    if not levels or levels[0] < 1:
        raise ConfigError("concurrency levels must be positive integers")
    if api not in ("completions", "chat"):
        raise ConfigError("api must be 'completions' or 'chat'")
    gguf: Path | None = None
    model_id: str | None = None
    if not (url and model is None):
        model_id, gguf = _resolve_gguf(model)
    bias, tokenize = _eog_bias(gguf) if gguf else ({}, None)
    n_prompts = max(max(levels) * 2, requests_per_level or 0, 16)
    prompts = make_prompts(n_prompts, prompt_tokens, tokenize)
    longest = max(max_tokens, long_tokens or 0)
    ctx = ctx_size or max(512, prompt_tokens + longest + 64)
    result: dict[str, Any] = {
        "model": model_id, "gguf": str(gguf) if gguf else None, "machine": _machine(),
        "settings": {"concurrency": levels, "max_tokens": max_tokens, "prompt_tokens": prompt_tokens,
                     "requests_per_level": requests_per_level, "threads": threads or os.cpu_count(),
                     "api": api, "ctx_size": ctx, "long_tokens": long_tokens},
    }
    n_slots = parallel or max(max(levels), 8 if join else 1)
    server = engine = base = None
    try:
        if baseline and gguf is not None:
            from glm_edge.engine.baseline import LlamaBaseline

            base = LlamaBaseline(str(gguf), n_ctx=ctx, n_threads=threads, n_gpu_layers=n_gpu_layers,
                                 logit_bias=bias)
        if inprocess:
            from glm_edge.engine.llama_engine import LlamaEngine

            engine = LlamaEngine(str(gguf), n_ctx=ctx, n_parallel=n_slots, n_threads=threads,
                                 n_gpu_layers=n_gpu_layers).start()
            result["target"] = "in-process LlamaEngine (no HTTP)"
        elif url is None:
            server = ServerProcess(model, parallel=n_slots, threads=threads, ctx_size=ctx)
            url = server.url
            result["target"] = f"glm-edge serve subprocess ({url}, --parallel {n_slots})"
        else:
            result["target"] = url
        result.update(asyncio.run(_measure(url, engine, model_id, bias, prompts, levels, max_tokens,
                                           requests_per_level, long_tokens, join, api, api_key, base)))
    finally:
        if server is not None:
            server.close()
        if engine is not None:
            engine.close()
        if base is not None:
            base.close()
    if reference and gguf is not None:
        from glm_edge.engine.baseline import bare_batched_loop

        bare = {c: bare_batched_loop(str(gguf), c, max_tokens, n_threads=threads).tok_s for c in levels}
        result["reference"] = {"bare_batched_loop_tok_s": bare,
                               "scaling_vs_single": {c: v / bare[levels[0]] for c, v in bare.items()}}
    _ratios(result)
    return result


async def _measure(url: str | None, engine: Engine | None, model_id: str | None, bias: dict[int, float],
                   prompts: list[str], levels: list[int], max_tokens: int, requests_per_level: int | None,
                   long_tokens: int, join: bool, api: str, api_key: str | None,
                   baseline: LlamaBaseline | None) -> dict[str, Any]:
    target: EngineTarget | HttpTarget
    if engine is not None:
        target = EngineTarget(engine, bias)
    elif url is not None:
        target = HttpTarget(url, model_id, api=api, api_key=api_key, logit_bias=bias)
    else:
        raise ValueError("nothing to measure: neither an engine nor a server URL")
    out: dict[str, Any] = {"levels": []}
    try:
        await target.stream(prompts[-1], 4, None)  # warm-up (first decode allocates buffers)
        if baseline is not None:
            baseline.run(prompts[-1], 4, stream=False)
        rounds = max(3, requests_per_level or 0)
        single, base = await run_single_paired(target.stream, prompts, max_tokens, rounds, baseline)
        if base is not None:
            out["baseline"] = base
        for c in levels:
            if c == 1:
                out["levels"].append(single)
                continue
            n = requests_per_level or 2 * c
            out["levels"].append(await run_level(target.stream, prompts[:n], c, max_tokens))
        if 1 not in levels:
            out["single"] = single
        if long_tokens:
            # short, long, short: the long answer is compared with the short ones around it
            before = await target.stream(prompts[0], max_tokens, None)
            long = await target.stream(prompts[1], long_tokens, None)
            after = await target.stream(prompts[2], max_tokens, None)
            short_tok_s = (before.decode_tok_s + after.decode_tok_s) / 2
            out["long"] = {"short_tokens": max_tokens, "long_tokens": long_tokens, "short_tok_s": short_tok_s,
                           "long_tok_s": long.decode_tok_s, "long_completion_tokens": long.completion_tokens,
                           "ratio": long.decode_tok_s / short_tok_s if short_tok_s else None,
                           "errors": sum(not r.ok for r in (before, long, after))}
        if join:
            out["join"] = await run_join(target.stream, prompts, max_tokens)
    finally:
        await target.close()
    return out


def _ratios(result: dict[str, Any]) -> None:
    base = (result.get("baseline") or {}).get("non_stream", {}).get("tok_s")
    single = next((lv for lv in result.get("levels", []) if lv["concurrency"] == 1), result.get("single"))
    for lv in result.get("levels", []):
        lv["ratio_to_baseline"] = lv["aggregate_tok_s"] / base if base else None
        lv["scaling_vs_single"] = (lv["aggregate_tok_s"] / single["aggregate_tok_s"]
                                   if single and single["aggregate_tok_s"] else None)
    if single and base:
        result["single_stream_vs_baseline"] = single["per_stream_e2e_tok_s"] / base


def format_table(result: dict[str, Any]) -> str:
    """A plain-text report of `run_bench`'s result."""
    lines = [f"model: {result.get('model')} ({result.get('gguf')})", f"target: {result.get('target')}",
             f"machine: {result['machine'].get('platform')}, {result['machine'].get('cpu_count')} CPUs"
             + (f", {result['machine']['gpu']}" if result["machine"].get("gpu") else ""),
             f"prompt ~{result['settings']['prompt_tokens']} tokens, answers {result['settings']['max_tokens']} "
             f"tokens, greedy, threads {result['settings']['threads']}", ""]
    base = result.get("baseline")
    if base:
        ns, st = base["non_stream"], base["stream"]
        lines.append(f"baseline llama-cpp-python Llama (median of {len(ns['runs_tok_s'])}, interleaved with the "
                     f"single-stream requests): non-stream {ns['tok_s']:.1f} tok/s, "
                     f"stream {st['tok_s']:.1f} tok/s (TTFT {st['ttft_s'] or 0:.3f} s)")
        lines.append("")
    header = f"{'conc':>5} {'reqs':>5} {'tok/s/stream':>13} {'aggregate':>10} {'TTFT p50':>9} {'TTFT p95':>9} " \
             f"{'x single':>9} {'x baseline':>11} {'errors':>7}"
    lines += [header, "-" * len(header)]
    for lv in result.get("levels", []):
        scale = f"{lv['scaling_vs_single']:.2f}" if lv.get("scaling_vs_single") else "-"
        ratio = f"{lv['ratio_to_baseline']:.2f}" if lv.get("ratio_to_baseline") else "-"
        lines.append(f"{lv['concurrency']:>5} {lv['requests']:>5} {lv['per_stream_tok_s']:>13.1f} "
                     f"{lv['aggregate_tok_s']:>10.1f} {lv['ttft_p50_s']:>9.3f} {lv['ttft_p95_s']:>9.3f} "
                     f"{scale:>9} {ratio:>11} {lv['errors']:>7}")
    if result.get("single_stream_vs_baseline"):
        lines.append("")
        lines.append(f"single stream (end to end) / baseline non-stream: {result['single_stream_vs_baseline']:.2f}")
    ref = result.get("reference")
    if ref:
        lines.append("bare batched-decode loop, same GGUF, this process: " + ", ".join(
            f"x{c}: {v:.1f} tok/s ({ref['scaling_vs_single'][c]:.2f}x)"
            for c, v in ref["bare_batched_loop_tok_s"].items()))
    long = result.get("long")
    if long and long.get("ratio"):
        lines.append(f"{long['long_tokens']}-token stream {long['long_tok_s']:.1f} tok/s vs "
                     f"{long['short_tokens']}-token {long['short_tok_s']:.1f} tok/s: {long['ratio']:.2f}")
    j = result.get("join")
    if j and j.get("join_ttft_s") is not None:
        extra = f"{j['extra_steps']:.1f}" if j.get("extra_steps") is not None else "-"
        lines.append(f"join while {j['background_streams']} stream: TTFT {j['join_ttft_s']:.3f} s (solo "
                     f"{j['solo_ttft_s']:.3f} s, step {j['step_s_while_busy'] * 1000:.1f} ms, {extra} extra steps)")
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))
