"""The command line: help, and bad settings that end with one clear line and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from glm_edge_cli.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glm_edge_cli.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_serve_help_documents_every_setting() -> None:
    from glm_edge.settings import Settings

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for name in ("--port", "--parallel", "--ctx-size", "--n-gpu-layers", "--flash-attn", "--api-key", "--embedding",
                 "--config", "GLM_MODEL", "API_PORT", "GLM_EDGE_API_KEYS"):
        assert name in result.output
    for name, field in Settings.model_fields.items():  # every setting is a flag, generated from the model
        if name == "model":
            continue  # the MODEL argument
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        assert "--" + str(extra.get("flag", name.replace("_", "-"))) in result.output, name


def test_serve_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Flags generated from Settings arrive typed: ints, floats, choices, paths, repeatable and comma lists."""
    import glm_edge.server
    from glm_edge.settings import Settings

    for key in ("GLM_EDGE_PARALLEL", "GLM_EDGE_EMBEDDING", "GLM_EDGE_API_KEYS", "GLM_EDGE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    seen: list[Settings] = []
    monkeypatch.setattr(glm_edge.server, "run_server", seen.append)
    result = CliRunner().invoke(main, ["serve", "gemma-3-270m", "--parallel", "3", "--shutdown-grace", "2.5",
                                       "--log-format", "json", "--embedding", "bge-m3,text2vec", "--embedding",
                                       "all-MiniLM-L6-v2", "--api-key", "k1", "--api-key", "k2",
                                       "--models-dir", str(tmp_path), "--flash-attn"])
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.model == "gemma-3-270m" and settings.parallel == 3 and settings.shutdown_grace == 2.5
    assert settings.log_format == "json" and settings.flash_attn is True
    assert settings.embedding == ["bge-m3", "text2vec", "all-MiniLM-L6-v2"]
    assert settings.api_keys == ["k1", "k2"]
    assert settings.models_home() == tmp_path
    assert settings.ctx_size == Settings.model_fields["ctx_size"].default  # not given: the default
    result = CliRunner().invoke(main, ["serve", "--log-format", "xml"])
    assert result.exit_code != 0 and "xml" in result.output


@pytest.mark.parametrize("args, message", [
    (["serve", "no-such-model"], "unknown model 'no-such-model'"),
    (["serve", "/nowhere/model.gguf"], "GGUF file not found"),
    (["serve", "glm-4-9b-chat"], "glm-edge download glm-4-9b-chat"),
    (["serve", "--embedding", "nope"], "unknown embedding model 'nope'"),
    (["serve", "--port", "99999"], "port"),
    (["serve", "--config", "/nowhere/glm-edge.toml"], "config file not found"),
])
def test_bad_settings_end_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_port_in_use(default_gguf: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("serve", "gemma-3-270m", "--port", str(port), "--no-embedding")
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_lists_the_catalog() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    assert "glm-4-9b-chat" in result.output and "DeepSeek-R1-Distill-Qwen-7B" in result.output
    assert "bge-m3" in result.output
