"""Names on the command line -> files on disk, as `glm-edge download` and `convert` lay them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from glm_edge.errors import ConfigError
from glm_edge.resolve import resolve_chat, resolve_embedding


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


def test_catalog_id_finds_a_downloaded_gguf(tmp_path: Path) -> None:
    q4 = touch(tmp_path / "DeepSeek-R1-Distill-Qwen-7B" / "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
    touch(tmp_path / "DeepSeek-R1-Distill-Qwen-7B" / "DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf")
    touch(tmp_path / "DeepSeek-R1-Distill-Qwen-7B" / ".cache" / "huggingface" / "x.gguf")
    spec = resolve_chat("DeepSeek-R1-Distill-Qwen-7B", tmp_path)
    assert spec.gguf == q4 and spec.id == "DeepSeek-R1-Distill-Qwen-7B" and spec.entry.chat_family == "deepseek-r1"
    by_repo = resolve_chat("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", tmp_path)
    assert by_repo.gguf == q4


def test_split_gguf_loads_from_its_first_part(tmp_path: Path) -> None:
    first = touch(tmp_path / "GLM-4-9B-0414" / "GLM-4-9B-0414-Q8_0-00001-of-00002.gguf")
    touch(tmp_path / "GLM-4-9B-0414" / "GLM-4-9B-0414-Q8_0-00002-of-00002.gguf")
    assert resolve_chat("GLM-4-9B-0414", tmp_path).gguf == first


def test_a_gguf_path_takes_the_catalog_facts_of_its_name(tmp_path: Path) -> None:
    path = touch(tmp_path / "glm-4-9b-chat-Q4_K_M.gguf")
    spec = resolve_chat(str(path), tmp_path)
    assert spec.id == "glm-4-9b-chat" and spec.entry.tool_parser == "glm4"
    other = touch(tmp_path / "my-finetune.gguf")
    assert resolve_chat(str(other), tmp_path).entry is None


def test_unknown_repo_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="glm-edge download someone/model --gguf Q4_K_M"):
        resolve_chat("someone/model", tmp_path)
    touch(tmp_path / "someone--model" / "model-Q4_K_M.gguf")
    assert resolve_chat("someone/model", tmp_path).id == "someone/model"
    with pytest.raises(ConfigError, match="embedding model"):
        resolve_chat("bge-m3", tmp_path)
    with pytest.raises(ConfigError, match="chat model"):
        resolve_embedding("glm-4-9b-chat", tmp_path)


def test_embedding_folders(tmp_path: Path) -> None:
    onnx = tmp_path / "bge-m3-onnx"
    touch(onnx / "model.onnx")
    assert resolve_embedding("bge-m3", tmp_path).source == onnx
    checkpoint = tmp_path / "bge-small-zh-v1.5"
    touch(checkpoint / "config.json")
    assert resolve_embedding("bge-small-zh-v1.5", tmp_path).source == checkpoint
    with pytest.raises(ConfigError, match="glm-edge download text2vec-large-chinese"):
        resolve_embedding("text2vec-large-chinese", tmp_path)


def test_a_converted_gguf_beside_the_checkpoint(tmp_path: Path) -> None:
    """`glm-edge convert models/glm-4-9b-chat --type Q4_K_M` writes models/glm-4-9b-chat-Q4_K_M.gguf."""
    (tmp_path / "glm-4-9b-chat").mkdir()
    touch(tmp_path / "glm-4-9b-chat" / "config.json")
    q4 = touch(tmp_path / "glm-4-9b-chat-Q4_K_M.gguf")
    touch(tmp_path / "glm-4-9b-chat-F16.gguf")
    hf = touch(tmp_path / "glm-4-9b-chat-hf-Q4_0.gguf")  # another model whose id starts the same
    spec = resolve_chat("glm-4-9b-chat", tmp_path)
    assert spec.gguf == q4 and spec.entry.id == "glm-4-9b-chat"
    assert resolve_chat("glm-4-9b-chat-hf", tmp_path).gguf == hf
    hf.unlink()
    with pytest.raises(ConfigError):  # another catalog model's file is not taken
        resolve_chat("glm-4-9b-chat-hf", tmp_path)
