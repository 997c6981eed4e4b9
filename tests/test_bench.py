"""glm_edge.bench on the real default model: in-process engine and the HTTP server started as a subprocess.

Small sizes (the figures themselves are measured with `glm-edge bench`, not asserted here)."""

from __future__ import annotations

import json

from glm_edge.bench import format_table, make_prompts, run_bench


def test_prompts_are_distinct_and_sized(default_gguf):
    from glm_edge.engine.model import LlamaModel

    vocab = LlamaModel(default_gguf, vocab_only=True)
    prompts = make_prompts(5, 48, vocab.tokenize)
    assert len(set(prompts)) == 5
    for p in prompts:
        assert 40 <= len(vocab.tokenize(p)) <= 60
    vocab.close()


def check_levels(result, levels, max_tokens):
    assert [lv["concurrency"] for lv in result["levels"]] == levels
    for lv in result["levels"]:
        assert lv["errors"] == 0, lv["first_error"]
        assert lv["completion_tokens"] == lv["requests"] * max_tokens  # EOG biased away: exact lengths
        assert lv["aggregate_tok_s"] > 0 and lv["per_stream_tok_s"] > 0
        assert 0 < lv["ttft_p50_s"] <= lv["ttft_p95_s"]
    assert result["levels"][0]["scaling_vs_single"] == 1.0


def test_in_process_engine_run(default_gguf):
    result = run_bench(model=str(default_gguf), concurrency=[1, 2], max_tokens=8, prompt_tokens=16,
                       requests_per_level=2, baseline=False, long_tokens=16, join=False, inprocess=True,
                       reference=True)
    check_levels(result, [1, 2], 8)
    assert set(result["reference"]["bare_batched_loop_tok_s"]) == {1, 2}
    assert "bare batched-decode loop" in format_table(result)
    assert result["long"]["long_tok_s"] > 0 and result["long"]["ratio"] > 0
    assert result["long"]["long_completion_tokens"] == 16 and result["long"]["errors"] == 0
    assert "baseline" not in result
    table = format_table(result)
    assert "aggregate" in table and "16-token stream" in table
    json.dumps(result)


def test_http_run_against_a_served_subprocess_with_baseline():
    result = run_bench(model="gemma-3-270m", concurrency=[1, 2], max_tokens=8, prompt_tokens=16, requests_per_level=2,
                       baseline=True, long_tokens=0, join=True, parallel=8)
    assert result["target"].startswith("glm-edge serve subprocess")
    check_levels(result, [1, 2], 8)
    base = result["baseline"]
    assert base["non_stream"]["completion_tokens"] == 8 and base["stream"]["completion_tokens"] == 8
    assert len(base["non_stream"]["runs_tok_s"]) == result["levels"][0]["requests"] == 3  # paired rounds
    assert base["stream"]["ttft_s"] is not None
    assert result["levels"][0]["ratio_to_baseline"] > 0 and result["single_stream_vs_baseline"] > 0
    join = result["join"]
    assert join["errors"] == 0 and join["join_ttft_s"] > 0
    table = format_table(result)
    assert "baseline llama-cpp-python Llama" in table and "join while 7 stream" in table
