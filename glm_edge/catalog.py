"""The model catalog (models/catalog.toml): the models glm-edge knows by id, with their facts."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def catalog_dir() -> Path:
    import glm_edge_models

    for entry in glm_edge_models.__path__:
        if (Path(entry) / "catalog.toml").exists():
            return Path(entry)
    raise FileNotFoundError("models/catalog.toml is missing from this installation")


def templates_dir() -> Path:
    return catalog_dir() / "templates"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    kind: Literal["chat", "embedding"]
    repo: str
    architecture: str
    description: str = ""
    gguf_arch: str = ""
    gguf_repo: str = ""
    embedded: bool = False
    template: str = ""
    chat_family: str = "generic"
    files: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    reasoning_parser: str = ""
    tool_parser: str = ""
    license: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    pooling: str = ""
    dimensions: int = 0
    max_tokens: int = 0
    context_length: int = 0  # chat models: the context the model was trained for (config.json)
    # chat models: the special-token text the model's own tokenizer puts first in encode() (ChatGLM3:
    # "[gMASK]sop"; GLM-4 families take theirs from the family), and whether that encode() parses
    # special-token text inside the text (HF added tokens do; ChatGLM3's SentencePiece wrapper does not)
    encode_prefix: str = ""
    encode_parses_special: bool = True

    def template_text(self) -> str | None:
        """The catalog's chat template for this model, if it overrides the GGUF's own."""
        if not self.template:
            return None
        return (templates_dir() / self.template).read_text(encoding="utf-8")


def _entry(model_id: str, raw: dict[str, Any]) -> CatalogEntry:
    known = set(CatalogEntry.__dataclass_fields__) - {"id"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"catalog entry {model_id!r} has unknown keys: {', '.join(sorted(unknown))}")
    values = dict(raw)
    for key in ("files", "stop_token_ids"):
        if key in values:
            values[key] = tuple(values[key])
    return CatalogEntry(id=model_id, **values)


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, CatalogEntry]

    def get(self, model_id: str) -> CatalogEntry | None:
        if model_id in self.entries:
            return self.entries[model_id]
        lowered = {key.lower(): entry for key, entry in self.entries.items()}
        return lowered.get(model_id.lower())

    def by_repo(self, repo: str) -> CatalogEntry | None:
        for entry in self.entries.values():
            if entry.repo.lower() == repo.lower() or entry.gguf_repo.lower() == repo.lower():
                return entry
        return None

    def of_kind(self, kind: str) -> list[CatalogEntry]:
        return [e for e in self.entries.values() if e.kind == kind]

    def ids(self) -> list[str]:
        return list(self.entries)


def parse_catalog(text: str) -> Catalog:
    data = tomllib.loads(text)
    return Catalog({model_id: _entry(model_id, raw) for model_id, raw in data.get("models", {}).items()})


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    return parse_catalog((catalog_dir() / "catalog.toml").read_text(encoding="utf-8"))
