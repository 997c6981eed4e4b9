"""Per-architecture HF -> GGUF converters, looked up by config.json ``architectures``."""

from __future__ import annotations

from glm_edge.errors import ConfigError

from .arch_base import ModelParams
from .arch_chatglm import ChatGlmConverter
from .arch_glm import GlmConverter
from .arch_glm4 import Glm4Converter
from .arch_llama import LlamaConverter
from .arch_qwen2 import Qwen2Converter
from .arch_spec import ArchConverter

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
