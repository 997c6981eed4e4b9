"""Per-architecture HF -> GGUF converters, looked up by config.json ``architectures``."""

from __future__ import annotations

from glm_edge.errors import ConfigError

from .base import ModelParams
from .chatglm import ChatGlmConverter
from .glm import GlmConverter
from .glm4 import Glm4Converter
from .llama import LlamaConverter
from .qwen2 import Qwen2Converter
from .spec import ArchConverter

_CONVERTERS: tuple[type[ArchConverter], ...] = (
    ChatGlmConverter, GlmConverter, Glm4Converter, Qwen2Converter, LlamaConverter)

REGISTRY: dict[str, type[ArchConverter]] = {a: c for c in _CONVERTERS for a in c.hf_architectures}


def converter_for(architecture: str) -> ArchConverter:
    try:
        return REGISTRY[architecture]()
    except KeyError:
        raise ConfigError(f"unsupported architecture {architecture!r}; glm-edge converts "
                          f"{', '.join(sorted(REGISTRY))}") from None


__all__ = ["ArchConverter", "ModelParams", "REGISTRY", "converter_for"]
