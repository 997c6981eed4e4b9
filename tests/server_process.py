"""Start the real `glm-edge serve` in a subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_listening(proc: subprocess.Popen[bytes], port: int, *, timeout: float, what: str, log: Path) -> None:
    """Until ``proc`` accepts TCP connections on 127.0.0.1:``port``; fails with its log if it dies first."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text(errors="replace") if log.exists() else f"{what} exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} does not listen on port {port}"
            time.sleep(0.1)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], *, timeout: float, log_path: Path | None = None) -> None:
    """Until the server at ``url`` answers /health with 200; fails if it exits first or takes over ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server {url} exited with {proc.returncode}; log: {log_path}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"server {url} not healthy after {timeout} s; log: {log_path}")
        time.sleep(0.3)


@contextmanager
def server_process(*args: str, env: dict[str, str] | None = None, timeout: float = 300.0,
                   log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The server's URL once /health says 200, and its process (for tests that signal it). Ends it with SIGTERM
    (a graceful drain), or SIGKILL after 30 s."""
    port = free_port()
    cmd = [sys.executable, "-m", "glm_edge_cli.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    full_env = {**os.environ, **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=timeout, log_path=log_path)
        yield url, proc
    finally:
        stop_process(proc, timeout=30)
        if log_path:
            log.close()


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, timeout: float = 300.0,
                   log_path: Path | None = None) -> Iterator[str]:
    with server_process(*args, env=env, timeout=timeout, log_path=log_path) as (url, _):
        yield url


@contextmanager
def running_default(log_dir: Path, *, embeddings: bool = False) -> Iterator[str]:
    """The server on the embedded default chat model (Qwen2.5-Coder-0.5B-Instruct) as the answer-quality and
    client tests use it: 2 slots of 2 048 tokens, 2 threads; embeddings only when asked. Yields the /v1 URL."""
    args = ["--parallel", "2", "--ctx-size", "2048", "--threads", "2"] + ([] if embeddings else ["--no-embedding"])
    with running_server(*args, log_path=log_dir / "serve.log") as url:
        yield f"{url}/v1"
