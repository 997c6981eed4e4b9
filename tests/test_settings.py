"""Settings precedence: flags > environment (GLM_EDGE_*, GLM_MODEL, API_PORT) > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from glm_edge.errors import ConfigError
from glm_edge.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("GLM_EDGE_") or key in ("GLM_MODEL", "API_PORT"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert (s.host, s.port, s.model, s.parallel) == ("127.0.0.1", 8200, None, 4)
    assert s.embedding == [] and s.api_keys == []


def test_seed_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_MODEL", "glm-4-9b-chat")
    monkeypatch.setenv("API_PORT", "8300")
    s = load_settings()
    assert s.model == "glm-4-9b-chat" and s.port == 8300


def test_prefixed_env_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_EDGE_PARALLEL", "8")
    monkeypatch.setenv("GLM_EDGE_EMBEDDING", "bge-m3, text2vec-base-multilingual")
    monkeypatch.setenv("GLM_EDGE_API_KEYS", '["k1", "k2"]')
    s = load_settings()
    assert s.parallel == 8
    assert s.embedding == ["bge-m3", "text2vec-base-multilingual"]
    assert s.api_keys == ["k1", "k2"]


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "glm-edge.toml"
    config.write_text('port = 7000\nparallel = 2\nctx_size = 2048\nembedding = ["bge-m3"]\n')
    s = load_settings(config)
    assert (s.port, s.parallel, s.ctx_size, s.embedding) == (7000, 2, 2048, ["bge-m3"])
    monkeypatch.setenv("API_PORT", "7100")
    monkeypatch.setenv("GLM_EDGE_PARALLEL", "3")
    s = load_settings(config)
    assert (s.port, s.parallel, s.ctx_size) == (7100, 3, 2048)  # env beats the file
    s = load_settings(config, port=7200, parallel=None)
    assert (s.port, s.parallel) == (7200, 3)  # flags beat env; a flag not given changes nothing


def test_bad_values_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_settings(port=70000)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(bad)


def test_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nalpha\n\nbeta\n")
    s = Settings(api_keys=["gamma"], api_key_file=keys)
    assert s.accepted_keys() == ["gamma", "alpha", "beta"]
