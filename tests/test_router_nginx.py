"""Real glm-edge replicas behind Debian's nginx, configured from deploy/nginx.conf (only the replica addresses,
the port and the file paths are the test's): traffic reaches every replica, SSE passes through unbuffered, a
session header sticks to one replica (whose prefix cache then hits), and stopping a replica, gracefully or
hard, loses no request."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.server_process import free_port, stop_process, wait_healthy, wait_listening

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
MODEL = "smollm2-135m-instruct"
REPLICA_ARGS = ["--no-embedding", "--parallel", "2", "--ctx-size", "1024", "--threads", "1",
                "--shutdown-grace", "10"]

needs_nginx = pytest.mark.skipif(not Path(NGINX).is_file(), reason="nginx is not installed (.ci/run installs it)")


def render_nginx_conf(replicas: list[str], port: int, prefix: Path) -> str:
    """deploy/nginx.conf with these replicas in both upstreams, this port, and every path under `prefix`."""
    text = TEMPLATE.read_text()
    lines: list[str] = []
    in_run = False  # inside a run of replica lines: they become this test's replicas, once
    for line in text.splitlines():
        match = re.match(r"^(\s*)server\s+\S+(\s+[^;]*);\s*# replica$", line)
        if match and not in_run:
            indent, options = match.groups()
            lines.extend(f"{indent}server {address}{options};" for address in replicas)
        elif not match:
            lines.append(line)
        in_run = bool(match)
    rendered = "\n".join(lines)
    rendered, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", rendered)
    assert n == 1, "deploy/nginx.conf: no `listen 8080;`"
    assert rendered.count("server 127.0.0.1:") == 2 * len(replicas), "deploy/nginx.conf: replica lines not found"
    paths = (f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n")
    temp = "".join(f"    {kind}_temp_path {prefix}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    rendered = paths + rendered.replace("http {\n", f"http {{\n    access_log {prefix}/access.log;\n{temp}", 1)
    return rendered


def _start_replica(log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "glm_edge_cli.cli", "serve", MODEL, "--host", "127.0.0.1", "--port", str(port),
           *REPLICA_ARGS]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return f"127.0.0.1:{port}", proc


class Router:
    def __init__(self, url: str, replicas: list[tuple[str, subprocess.Popen[bytes]]], prefix: Path) -> None:
        self.url = url
        self.replicas = replicas
        self.error_log = prefix / "error.log"

    def chat(self, content: str | list[dict[str, str]], *, session: str | None = None,
             max_tokens: int = 4) -> httpx.Response:
        messages = [{"role": "user", "content": content}] if isinstance(content, str) else content
        headers = {"X-Session-Id": session} if session else {}
        return httpx.post(f"{self.url}/v1/chat/completions", headers=headers, timeout=60, json={
            "model": MODEL, "messages": messages, "temperature": 0, "max_tokens": max_tokens})


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """Three replicas (one to stop gracefully, one to kill, one that stays) and nginx, as a non-daemon child."""
    if not Path(NGINX).is_file():
        pytest.skip("nginx is not installed (.ci/run installs it)")
    prefix = tmp_path_factory.mktemp("nginx")
    os.chmod(prefix, 0o755)  # nginx's workers (user nobody) write their temp files here
    with ExitStack() as stack:
        replicas = [_start_replica(prefix / f"replica{i}.log") for i in range(3)]
        for _, proc in replicas:
            stack.callback(stop_process, proc)
        for address, proc in replicas:
            wait_healthy(f"http://{address}", proc, timeout=120)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(render_nginx_conf([address for address, _ in replicas], port, prefix))
        nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
                                  "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        stack.callback(stop_process, nginx)
        wait_listening(nginx, port, timeout=10, what="nginx", log=prefix / "error.log")
        yield Router(f"http://127.0.0.1:{port}", replicas, prefix)


@needs_nginx
def test_rendered_config_is_valid(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(["127.0.0.1:1", "127.0.0.1:2"], free_port(), tmp_path))
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = TEMPLATE.read_text()
    for directive in ("least_conn;", "hash $http_x_session_id consistent;", "proxy_buffering off;",
                      "proxy_next_upstream error timeout http_502 http_503 http_429"):
        assert directive in text


def test_every_replica_gets_traffic(router: Router) -> None:
    served = Counter()
    for i in range(9):
        response = router.chat(f"Say {i}.", max_tokens=2)
        assert response.status_code == 200, response.text
        served[response.headers["X-Glm-Edge-Upstream"]] += 1
    assert set(served) == {address for address, _ in router.replicas}, served


def test_sse_streams_through_unbuffered(router: Router) -> None:
    arrivals: list[float] = []
    started = time.monotonic()
    with httpx.stream("POST", f"{router.url}/v1/chat/completions", timeout=60, json={
            "model": MODEL, "stream": True, "temperature": 0, "max_tokens": 48,
            "messages": [{"role": "user", "content": "Count from one to twenty in words."}]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 10
    # chunks come one by one as the replica makes them, not all together at the end
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.1, arrivals
    assert len({round(t, 3) for t in arrivals}) >= len(arrivals) // 2, arrivals
    assert arrivals[len(arrivals) // 2] < arrivals[-1] - spread / 4, arrivals


def _cached_prompt_tokens(address: str) -> float:
    """The replica's count of prompt tokens taken from a slot's cached prefix (/metrics)."""
    text = httpx.get(f"http://{address}/metrics", timeout=10).text
    return sum(float(m) for m in re.findall(r"^glm_edge_prompt_tokens_cached_total\{[^}]*\} (\S+)$", text, re.M))


def test_a_session_sticks_to_one_replica_and_hits_its_prefix_cache(router: Router) -> None:
    system = {"role": "system", "content": "You are a terse assistant. " * 12}
    history = [system]
    upstreams = set()
    cached = []  # per turn: prompt tokens the replica reused, from its /metrics (and usage, where reported)
    for turn in range(4):
        history.append({"role": "user", "content": f"Turn {turn}: name a fruit."})
        before = {address: _cached_prompt_tokens(address) for address, _ in router.replicas}
        response = router.chat(history, session="session-0001-sticky", max_tokens=4)
        assert response.status_code == 200, response.text
        upstream = response.headers["X-Glm-Edge-Upstream"]
        upstreams.add(upstream)
        body = response.json()
        cached.append(_cached_prompt_tokens(upstream) - before[upstream])
        details = body["usage"].get("prompt_tokens_details")
        if details and turn:
            assert details["cached_tokens"] > 40, details  # the API says so too
        history.append({"role": "assistant", "content": body["choices"][0]["message"]["content"]})
    assert len(upstreams) == 1, upstreams
    assert all(tokens > 40 for tokens in cached[1:]), cached  # the system prompt and earlier turns, reused
    # other sessions spread: not every session on one replica
    homes = {router.chat("Hi.", session=f"session-{n:04d}-spread", max_tokens=1).headers["X-Glm-Edge-Upstream"]
             for n in range(8)}
    assert len(homes) >= 2, homes


def test_stopping_replicas_loses_no_request(router: Router) -> None:
    """Requests flow from three clients while one replica gets SIGTERM (it drains: new requests get 503, which
    nginx retries elsewhere) and another SIGKILL (refused connections, and a POST cut before its answer, retried
    elsewhere). Every request answers 200."""
    statuses: list[int] = []
    upstreams: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            response = router.chat(f"Client {n}, request {i}: say yes.", max_tokens=3)
            statuses.append(response.status_code)
            upstreams.append(response.headers.get("X-Glm-Edge-Upstream", ""))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        (graceful_address, graceful), (killed_address, killed), (survivor, _) = router.replicas
        graceful.send_signal(signal.SIGTERM)
        graceful.wait(timeout=20)  # drained and gone
        time.sleep(1.0)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        time.sleep(2.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert len(statuses) >= 10
    assert Counter(statuses) == {200: len(statuses)}, Counter(statuses)
    assert upstreams[-1].split(",")[-1].strip() == survivor  # the last ones all on the one left
    # the failover really happened: nginx tried the stopped replicas and went on (the header lists every try)
    assert any("," in tried for tried in upstreams), Counter(upstreams)
    errors = router.error_log.read_text()
    # how the killed replica's failure shows depends on the moment it died: refused, reset, or closed mid-answer
    assert any(sign in errors for sign in ("Connection refused", "Connection reset by peer", "prematurely closed")), \
        errors
    print(Counter(upstreams))


def test_litellm_config_builds_a_router(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/litellm.yaml's model list and router settings are ones LiteLLM's Router takes."""
    import yaml

    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("GLM_EDGE_API_KEY", "none")
    import litellm

    config = yaml.safe_load((TEMPLATE.parent / "litellm.yaml").read_text())
    settings = config["router_settings"]
    assert settings["routing_strategy"] == "simple-shuffle" and "session_affinity" in settings[
        "optional_pre_call_checks"]
    litellm_router = litellm.Router(model_list=config["model_list"], **settings)
    deployments = litellm_router.get_model_list() or []
    assert {d["litellm_params"]["api_base"] for d in deployments} == {
        "http://glm-edge-0:8200/v1", "http://glm-edge-1:8200/v1"}
