"""The app shell without models: API keys, health while loading, error shapes."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from glm_edge.api.app import create_app
from glm_edge.registry import ModelRegistry
from glm_edge.settings import Settings


def test_api_keys() -> None:
    app = create_app(Settings(api_keys=["s3cret", "other"]))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # always open
        missing = client.get("/v1/models")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "authentication_error"
        assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/models", headers={"API-KEY": "other"}).status_code == 200
        assert client.get("/metrics", headers={"API-KEY": "nope"}).status_code == 401
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 401


def test_health_is_503_while_loading_then_ok() -> None:
    release = threading.Event()
    loaded = threading.Event()

    def loader(registry: ModelRegistry) -> None:
        release.wait(timeout=30)
        loaded.set()

    app = create_app(Settings(), loader=loader)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 503
        res = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert res.status_code == 503 and res.json()["error"]["type"] == "unavailable_error"
        assert "Retry-After" in res.headers
        release.set()
        assert loaded.wait(timeout=10)
        for _ in range(100):
            if client.get("/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/health").json() == {"status": "ok"}
        res = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert res.status_code == 404 and res.json()["error"]["code"] == "model_not_found"


def test_failed_load_is_reported() -> None:
    def loader(registry: ModelRegistry) -> None:
        raise RuntimeError("corrupt file")

    app = create_app(Settings(), loader=loader)
    with TestClient(app) as client:
        for _ in range(100):
            res = client.get("/health")
            if res.status_code == 500:
                break
            threading.Event().wait(0.05)
        assert res.status_code == 500 and "corrupt file" in res.json()["error"]["message"]


def test_validation_errors_are_400_in_openai_shape() -> None:
    with TestClient(create_app(Settings())) as client:
        res = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                         "top_p": 0})
        assert res.status_code == 400
        error = res.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "top_p"
        res = client.post("/tokenize", json={"prompt": 5})
        assert res.status_code == 400
        res = client.delete("/v1/models")
        assert res.status_code == 405 and "error" in res.json()
