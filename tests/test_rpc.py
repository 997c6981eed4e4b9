"""llama.cpp's RPC backend on loopback: a real `rpc-server` worker holds the weights of a real model and
glm-edge (`--rpc 127.0.0.1:PORT`, libllama from the RPC build via LLAMA_CPP_LIB_PATH) answers through it exactly
as on the CPU. Needs the RPC build of scripts/build-llama-rpc.sh (.ci/run makes it); skipped, saying so, without."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import free_port, running_server, stop_process, wait_listening

VERSION = "0.3.36"
RPC_BUILD = Path(os.environ.get("GLM_EDGE_RPC_BUILD")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glm-edge"
                 / f"llama-rpc-{VERSION}")
MODEL = "smollm2-135m-instruct"
ARGS = ["--no-embedding", "--parallel", "1", "--ctx-size", "1024", "--threads", "2"]
PROMPTS = ["Name three colours.", "What is 2 + 3? Answer in one sentence."]

pytestmark = pytest.mark.skipif(
    not (RPC_BUILD / "lib" / "libllama.so").is_file() or not (RPC_BUILD / "lib" / "rpc-server").is_file(),
    reason=f"no RPC build of llama.cpp at {RPC_BUILD}: run scripts/build-llama-rpc.sh (.ci/run does)")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def rpc_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = tmp_path_factory.mktemp("rpc") / "rpc-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(RPC_BUILD / "bin" / "rpc-server"), "--host", "127.0.0.1", "--port", str(port),
                                 "--threads", "2"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(proc, port, timeout=30, what="rpc-server", log=log)
        yield f"127.0.0.1:{port}", proc
    finally:
        stop_process(proc, timeout=10)


def _answers(url: str) -> list[tuple[str, int]]:
    out = []
    for prompt in PROMPTS:
        response = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "model": MODEL, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 24})
        assert response.status_code == 200, response.text
        body = response.json()
        out.append((body["choices"][0]["message"]["content"], body["usage"]["completion_tokens"]))
    return out


def test_serves_through_an_rpc_worker_exactly_as_on_cpu(rpc_worker: tuple[str, subprocess.Popen[bytes]],
                                                         tmp_path: Path) -> None:
    endpoint, worker = rpc_worker
    rpc_env = {"LLAMA_CPP_LIB_PATH": str(RPC_BUILD / "lib")}
    # the reference: the same RPC-enabled libllama, all layers on the local CPU
    with running_server(MODEL, *ARGS, env=rpc_env, log_path=tmp_path / "cpu.log") as url:
        on_cpu = _answers(url)
    rss_before = _rss_mib(worker.pid)
    with running_server(MODEL, *ARGS, "--rpc", endpoint, env=rpc_env, log_path=tmp_path / "rpc.log") as url:
        # the worker now holds the weights (the Q4_1 GGUF is 94 MiB)
        assert _rss_mib(worker.pid) - rss_before > 60, (rss_before, _rss_mib(worker.pid))
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert re.search(r"^glm_edge_gpu_layers\{[^}]*\} 999", metrics, re.M), metrics  # all on the worker
        through_rpc = _answers(url)
    assert through_rpc == on_cpu
    # and as the stock llama-cpp-python wheel answers
    with running_server(MODEL, *ARGS, log_path=tmp_path / "stock.log") as url:
        assert _answers(url) == on_cpu
    assert all(tokens > 0 and text.strip() for text, tokens in on_cpu)


def test_unreachable_worker_is_one_clear_line(tmp_path: Path) -> None:
    import sys

    dead = f"127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-m", "glm_edge_cli.cli", "serve", MODEL, *ARGS, "--port",
                             str(free_port()), "--rpc", dead],
                            env={**os.environ, "LLAMA_CPP_LIB_PATH": str(RPC_BUILD / "lib")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:") and f"RPC worker {dead} does not answer" in last, result.stderr
