"""Clear one-line errors for bad input, and no half-written output files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from glm_edge.errors import ConfigError
from glm_edge_convert import convert_to_gguf, is_embedding_checkpoint
from glm_edge_convert.tiny import build_tiny_checkpoint


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("llama") / "hf"
    build_tiny_checkpoint("llama", d, seed=2)  # two bf16 shards with an index
    return d


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    return dst


def _no_leftovers(directory: Path) -> None:
    assert [p.name for p in directory.iterdir() if p.suffix in (".gguf", ".partial")] == []


def test_unsupported_architecture(llama_dir: Path, tmp_path: Path) -> None:
    d = _copy(llama_dir, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["MistralForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="unsupported architecture 'MistralForCausalLM'"):
        convert_to_gguf(d, tmp_path / "out" / "m.gguf", progress=False)


def test_missing_shard(llama_dir: Path, tmp_path: Path) -> None:
    d = _copy(llama_dir, tmp_path)
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConfigError, match="missing safetensors shard.*model-00002-of-00002"):
        convert_to_gguf(d, tmp_path / "m.gguf", progress=False)


def test_missing_tokenizer(llama_dir: Path, tmp_path: Path) -> None:
    d = _copy(llama_dir, tmp_path)
    (d / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match="no tokenizer found"):
        convert_to_gguf(d, tmp_path / "m.gguf", progress=False)


def test_missing_config_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        convert_to_gguf(tmp_path / "nope", tmp_path / "m.gguf", progress=False)
    with pytest.raises(ConfigError, match="no config.json"):
        convert_to_gguf(tmp_path, tmp_path / "m.gguf", progress=False)


def test_unknown_output_type_fails_before_writing(llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown quantization type 'Q9_X'"):
        convert_to_gguf(llama_dir, tmp_path / "m.gguf", "Q9_X", progress=False)
    _no_leftovers(tmp_path)


def test_failure_mid_write_leaves_no_file(llama_dir: Path, tmp_path: Path) -> None:
    """A shard cut short is only noticed while streaming: the output must not appear, nor a temp file stay."""
    d = _copy(llama_dir, tmp_path)
    shard = d / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4096])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "m.gguf").write_bytes(b"previous good file")
    with pytest.raises(ConfigError, match="truncated"):
        convert_to_gguf(d, out_dir / "m.gguf", progress=False)
    assert (out_dir / "m.gguf").read_bytes() == b"previous good file"
    assert [p.name for p in out_dir.iterdir()] == ["m.gguf"]


def test_unknown_pre_tokenizer_regex(llama_dir: Path, tmp_path: Path) -> None:
    d = _copy(llama_dir, tmp_path)
    tok = json.loads((d / "tokenizer.json").read_text())
    tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\w+|\s+"
    (d / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ConfigError, match="unknown pre-tokenizer regex"):
        convert_to_gguf(d, tmp_path / "m.gguf", progress=False)
    # the user can name it when they know
    out = convert_to_gguf(d, tmp_path / "m.gguf", tokenizer_pre="llama-bpe", progress=False)
    assert out.is_file()


def test_embedding_checkpoints_are_recognised(llama_dir: Path, tmp_path: Path, minilm_checkpoint: Path) -> None:
    assert is_embedding_checkpoint(minilm_checkpoint)
    assert not is_embedding_checkpoint(llama_dir)
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta"}))
    assert is_embedding_checkpoint(bert)
    with pytest.raises(ConfigError, match="unsupported architecture 'XLMRobertaModel'"):
        convert_to_gguf(bert, tmp_path / "m.gguf", progress=False)


def test_output_gets_normal_permissions(llama_dir: Path, tmp_path: Path) -> None:
    out = convert_to_gguf(llama_dir, tmp_path / "m.gguf", progress=False)
    assert out.stat().st_mode & 0o644 == 0o644  # not mkstemp's 0600
