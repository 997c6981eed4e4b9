"""Turn what a user names on the command line (catalog id, file, folder, hub repo) into files on disk.

Resolution is fast and happens before the server starts, so a bad name ends with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glm_edge.catalog import CatalogEntry, load_catalog
from glm_edge.defaults import (
    DEFAULT_CHAT_ID,
    DEFAULT_EMBEDDING_ID,
    EMBEDDED_CHAT,
    MULTILINGUAL_EMBEDDING_ID,
    embedded_chat_gguf,
    models_home,
)
from glm_edge.errors import ConfigError


@dataclass(frozen=True)
class ChatSpec:
    id: str  # the name clients use in "model"
    gguf: Path
    entry: CatalogEntry | None


@dataclass(frozen=True)
class EmbeddingSpec:
    id: str
    source: Path  # an ONNX folder, or a sentence-transformers checkpoint to convert once
    entry: CatalogEntry | None


def _local_folder(name: str, home: Path) -> Path:
    """Where `glm-edge download` puts a catalog id or repo (see glm_edge.hub)."""
    return home / name.replace("/", "--")


def _ggufs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = sorted(p for p in folder.rglob("*.gguf") if ".cache" not in p.relative_to(folder).parts)
    # a split GGUF loads from its first part
    return [p for p in found if "-of-" not in p.stem or "-00001-of-" in p.stem]


def _pick_gguf(candidates: list[Path], label: str) -> Path:
    if len(candidates) == 1:
        return candidates[0]
    order = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "F16", "BF16", "F32"]
    for quant in order:
        for path in candidates:
            if quant.lower() in path.name.lower():
                return path
    names = ", ".join(p.name for p in candidates)
    raise ConfigError(f"{label} has several GGUF files ({names}); name the file to serve")


def _catalog_entry(spec: str, kind: str, wrong_kind: str, unknown: str) -> CatalogEntry | None:
    """The catalog entry a name or repo id means (None for a repo the catalog does not know)."""
    catalog = load_catalog()
    entry = catalog.get(spec) or (catalog.by_repo(spec) if "/" in spec else None)
    if entry is not None and entry.kind != kind:
        raise ConfigError(wrong_kind)
    if entry is None and "/" not in spec:
        raise ConfigError(f"{unknown} ({', '.join(e.id for e in catalog.of_kind(kind))})")
    return entry


def resolve_chat(spec: str | None, home: Path | None = None) -> ChatSpec:
    home = home or models_home()
    catalog = load_catalog()
    spec = spec or DEFAULT_CHAT_ID
    embedded = catalog.get(spec)
    if embedded is not None and embedded.id in EMBEDDED_CHAT:  # a GGUF that PyPI packages carry
        return ChatSpec(embedded.id, embedded_chat_gguf(embedded.id, home), embedded)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {path}")
        entry = _entry_for_filename(path.name)
        return ChatSpec(entry.id if entry else path.stem, path, entry)
    if path.is_dir():
        found = _ggufs(path)
        if not found:
            raise ConfigError(f"no .gguf file in {path}; convert it first: glm-edge convert {path} --type Q4_K_M")
        chosen = _pick_gguf(found, str(path))
        entry = _entry_for_filename(path.name)
        return ChatSpec(entry.id if entry else path.name, chosen, entry)
    entry = _catalog_entry(spec, "chat", f"'{spec}' is an embedding model; serve it with --embedding {spec}",
                           f"unknown model '{spec}': not a file, a folder, a repo id or a catalog id")
    folders = [_local_folder(spec, home)]
    if entry is not None:
        folders += [_local_folder(entry.id, home), _local_folder(entry.repo, home)]
        if entry.gguf_repo:
            folders.append(_local_folder(entry.gguf_repo, home))
    for folder in folders:
        found = _ggufs(folder)
        if found:
            return ChatSpec(entry.id if entry else spec, _pick_gguf(found, str(folder)), entry)
    # `glm-edge convert models/<id>` writes models/<id>-<TYPE>.gguf beside the checkpoint folder
    name = entry.id if entry else _local_folder(spec, home).name
    converted = sorted(p for p in home.glob(f"{name}-*.gguf")
                       if p.is_file() and (entry is None or _entry_for_filename(p.name) == entry))
    if converted:
        return ChatSpec(entry.id if entry else spec, _pick_gguf(converted, str(home)), entry)
    hint = f"glm-edge download {spec} --gguf Q4_K_M" if (entry is None or entry.gguf_repo) else (
        f"glm-edge download {spec} && glm-edge convert {_local_folder(entry.id, home)} --type Q4_K_M")
    raise ConfigError(f"model '{spec}' has no GGUF under {home}; get one with: {hint}")


def _entry_for_filename(name: str) -> CatalogEntry | None:
    """A catalog entry whose id the file or folder name starts with (e.g. glm-4-9b-chat-Q4_K_M.gguf)."""
    lowered = name.lower()
    best = None
    for entry in load_catalog().entries.values():
        if lowered.startswith(entry.id.lower()) and (best is None or len(entry.id) > len(best.id)):
            best = entry
    return best


def resolve_embedding(spec: str | None, home: Path | None = None) -> EmbeddingSpec:
    home = home or models_home()
    catalog = load_catalog()
    if spec is None or spec == DEFAULT_EMBEDDING_ID:
        from glm_edge.defaults import default_embedding_checkpoint

        return EmbeddingSpec(DEFAULT_EMBEDDING_ID, default_embedding_checkpoint(), catalog.get(DEFAULT_EMBEDDING_ID))
    if spec == MULTILINGUAL_EMBEDDING_ID:
        from glm_edge.embed.defaults import multilingual_default_model

        return EmbeddingSpec(spec, multilingual_default_model(), catalog.get(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        entry = _entry_for_filename(path.name)
        return EmbeddingSpec(entry.id if entry else path.name.removesuffix("-onnx"), path, entry)
    if path.suffix == ".onnx" or path.exists():
        raise ConfigError(f"an embedding model is a folder (model.onnx + tokenizer.json), not a file: {path}")
    entry = _catalog_entry(spec, "embedding", f"'{spec}' is a chat model, not an embedding model",
                           f"unknown embedding model '{spec}': not a folder, a repo id or a catalog id")
    name = entry.id if entry else spec
    for folder in (_local_folder(name + "-onnx", home), _local_folder(name, home),
                   *( [_local_folder(entry.repo, home)] if entry else [])):
        if (folder / "model.onnx").is_file() or (folder / "config.json").is_file():
            return EmbeddingSpec(name, folder, entry)
    raise ConfigError(f"embedding model '{spec}' is not under {home}; get it with: glm-edge download {spec}")
