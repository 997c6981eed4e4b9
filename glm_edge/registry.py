"""The models a running server holds, by id; the routes look them up here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from glm_edge.errors import ModelLoadingError, ModelNotFoundError

if TYPE_CHECKING:
    from glm_edge.chat_model import ChatModel
    from glm_edge.embed.embedder import Embedder
    from glm_edge.keywords.extractor import KeywordExtractor

M = TypeVar("M")


@dataclass
class ModelRegistry:
    chat: dict[str, ChatModel] = field(default_factory=dict)
    embedders: dict[str, Embedder] = field(default_factory=dict)
    keywords: dict[str, KeywordExtractor] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)  # id -> unix time it was loaded
    load_seconds: dict[str, float] = field(default_factory=dict)  # id -> how long loading it took
    loading: bool = True  # False once every model is loaded

    def _pick(self, table: dict[str, M], name: str | None, what: str) -> M:
        if self.loading and (not table or (name and name not in table)):
            raise ModelLoadingError("the models are still loading; try again shortly", retry_after=2.0)
        if not table:
            raise ModelNotFoundError(f"this server has no {what} model loaded")
        if name is None or name == "":
            return next(iter(table.values()))
        if name in table:
            return table[name]
        known = ", ".join(sorted(table))
        raise ModelNotFoundError(f"the {what} model '{name}' does not exist on this server; loaded: {known}")

    def chat_model(self, name: str | None) -> ChatModel:
        return self._pick(self.chat, name, "chat")

    def embedder(self, name: str | None) -> Embedder:
        return self._pick(self.embedders, name, "embedding")

    def keyword_extractor(self, name: str | None) -> KeywordExtractor:
        return self._pick(self.keywords, name, "keyword")
