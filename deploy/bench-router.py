"""The README's router figure: `glm-edge bench --url` straight at one replica, through nginx (deploy/nginx.conf)
to that one replica, and through nginx to two; plus nginx's own overhead (GET /health, median of 300).

    python deploy/bench-router.py [--model smollm2-135m-instruct] [--threads 1] [--max-tokens 64]

Uses the helpers of tests/test_router_nginx.py (replicas as subprocesses, nginx as a non-daemon child)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import test_router_nginx as rig  # noqa: E402
from tests.server_process import free_port  # noqa: E402


def start_nginx(stack: ExitStack, replicas: list[str], prefix: Path) -> str:
    prefix.mkdir(parents=True)
    os.chmod(prefix, 0o755)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(rig.render_nginx_conf(replicas, port, prefix))
    proc = subprocess.Popen([rig.NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
                             "-g", "daemon off;"])
    stack.callback(rig._stop, proc)
    time.sleep(0.5)
    return f"http://127.0.0.1:{port}"


def health_ms(url: str, n: int = 300) -> float:
    with httpx.Client() as client:
        for _ in range(20):
            client.get(f"{url}/health")
        times = []
        for _ in range(n):
            started = time.perf_counter()
            client.get(f"{url}/health")
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def bench(url: str, args: argparse.Namespace) -> dict:
    out = subprocess.run([sys.executable, "-m", "glm_edge_cli.cli", "bench", args.model, "--url", url,
                          "--no-baseline", "--long-tokens", "0", "--no-join", "--concurrency", args.concurrency,
                          "--max-tokens", str(args.max_tokens), "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=rig.MODEL)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    rig.MODEL = args.model
    rig.REPLICA_ARGS = ["--no-embedding", "--parallel", "8", "--ctx-size", "1024", "--threads", str(args.threads)]
    tmp = Path(tempfile.mkdtemp(prefix="glm-edge-router-bench-"))
    with ExitStack() as stack:
        replicas = [rig._start_replica(tmp / f"replica{i}.log") for i in range(2)]
        for _, proc in replicas:
            stack.callback(rig._stop, proc)
        for address, proc in replicas:
            rig._wait_healthy(address, proc)
        direct = f"http://{replicas[0][0]}"
        one = start_nginx(stack, [replicas[0][0]], tmp / "nginx1")
        two = start_nginx(stack, [a for a, _ in replicas], tmp / "nginx2")
        report = {"health_ms": {"direct": health_ms(direct), "nginx": health_ms(one)}}
        for name, url in (("direct, 1 replica", direct), ("nginx, 1 replica", one), ("nginx, 2 replicas", two)):
            report[name] = bench(url, args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
