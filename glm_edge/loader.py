"""Load what `glm-edge serve` was asked to serve into a ModelRegistry (runs in a worker thread)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glm_edge.catalog import CatalogEntry, load_catalog
from glm_edge.chat.conversation import FAMILY_PREFIX, detect_family
from glm_edge.chat.template import ChatTemplate
from glm_edge.chat_model import ChatModel
from glm_edge.defaults import DEFAULT_EMBEDDING_ID, DEFAULT_EMBEDDING_IDS
from glm_edge.errors import ConfigError
from glm_edge.registry import ModelRegistry
from glm_edge.resolve import ChatSpec, EmbeddingSpec, resolve_chat, resolve_embedding
from glm_edge.settings import Settings

if TYPE_CHECKING:
    from glm_edge.embed.embedder import Embedder

log = logging.getLogger("glm_edge.loader")


@dataclass(frozen=True)
class ServeSpecs:
    chat: ChatSpec | None
    embeddings: list[EmbeddingSpec] = field(default_factory=list)


def resolve_all(settings: Settings) -> ServeSpecs:
    """Fast checks before the server starts: every name resolves to files on disk (or a ConfigError)."""
    home = settings.models_home()
    chat = None if settings.no_chat else resolve_chat(settings.model, home)
    names: list[str] = [] if settings.no_embedding else (list(settings.embedding) or list(DEFAULT_EMBEDDING_IDS))
    embeddings = [resolve_embedding(name, home) for name in names]
    ids = [e.id for e in embeddings]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"an embedding model is named twice: {', '.join(ids)}")
    if chat is None and not embeddings:
        raise ConfigError("nothing to serve: --no-chat and --no-embedding together")
    if settings.chat_template is not None and not settings.chat_template.is_file():
        raise ConfigError(f"chat template file not found: {settings.chat_template}")
    return ServeSpecs(chat, embeddings)


def _family_entry(family: str) -> CatalogEntry | None:
    """A catalog model of the same family: the source of stop ids, parsers and defaults for unknown GGUFs."""
    if family in ("generic", "chatml"):  # no families: their catalog members' stop ids belong to their own vocabularies
        return None
    for entry in load_catalog().of_kind("chat"):
        if entry.chat_family == family:
            return entry
    return None


_SAMPLING_KEYS = {  # GGUF general.sampling.* -> request field names
    "general.sampling.temp": "temperature",
    "general.sampling.top_p": "top_p",
    "general.sampling.top_k": "top_k",
    "general.sampling.min_p": "min_p",
    "general.sampling.penalty_repeat": "repetition_penalty",
}
STOP_IDS_KEY = "glm_edge.stop_token_ids"  # written by glm-edge convert


def gguf_generation_facts(path: Path) -> tuple[dict[str, float], list[int]]:
    """The generation defaults and stop ids a GGUF carries (from its generation_config at conversion)."""
    from glm_edge.gguf_header import read_gguf_metadata

    # not gguf.GGUFReader: ~15 s on a 150k-token vocabulary (glm-4-9b-chat, Qwen2.5), at every start
    fields = read_gguf_metadata(path, keys=[*_SAMPLING_KEYS, STOP_IDS_KEY])
    defaults = {_SAMPLING_KEYS[key]: float(v) for key, v in fields.items()
                if key in _SAMPLING_KEYS and isinstance(v, (int, float))}
    stop_ids = fields.get(STOP_IDS_KEY)
    stops = [int(v) for v in stop_ids if isinstance(v, int)] if isinstance(stop_ids, list) else []
    return defaults, stops


def _template(spec: ChatSpec, settings: Settings, metadata: dict[str, str]) -> ChatTemplate:
    if settings.chat_template is not None:
        return ChatTemplate(settings.chat_template.read_text(encoding="utf-8"), name=str(settings.chat_template))
    if spec.entry is not None and spec.entry.template:
        return ChatTemplate(spec.entry.template_text() or "", name=f"catalog template {spec.entry.template}")
    text = metadata.get("tokenizer.chat_template")
    if not text:
        raise ConfigError(f"{spec.gguf} has no chat template; give one with --chat-template FILE")
    return ChatTemplate(text, name=f"chat template of {spec.gguf.name}")


def load_chat(spec: ChatSpec, settings: Settings) -> ChatModel:
    from glm_edge.engine.llama_engine import LlamaEngine
    from glm_edge.engine.model import use_devices

    started = time.perf_counter()
    use_devices(settings.devices)  # before llama.cpp first counts the CUDA devices
    engine = LlamaEngine(str(spec.gguf), n_ctx=settings.ctx_size, n_parallel=settings.parallel,
                         n_batch=max(settings.batch_size, settings.parallel), n_gpu_layers=settings.n_gpu_layers,
                         main_gpu=settings.main_gpu, split_mode=settings.split_mode,
                         tensor_split=settings.tensor_split, rpc_servers=settings.rpc,
                         flash_attn=settings.flash_attn or None, type_k=settings.cache_type,
                         type_v=settings.cache_type, n_threads=settings.threads, max_queue=settings.max_queue)
    engine.start()
    try:
        metadata = engine.metadata()
        template = _template(spec, settings, metadata)
        entry = spec.entry
        family = entry.chat_family if entry else detect_family(template.source)
        facts = entry or _family_entry(family)
        gguf_defaults, gguf_stops = gguf_generation_facts(spec.gguf)

        def piece(token_id: int) -> str:
            return engine.token_to_piece(token_id).decode("utf-8", errors="replace") if token_id >= 0 else ""

        model = ChatModel(
            id=spec.id, engine=engine, template=template, family=family, entry=entry,
            # the catalog's defaults, else what the GGUF took from generation_config, else the family's
            defaults=dict(entry.defaults) if entry else gguf_defaults or (dict(facts.defaults) if facts else {}),
            # the ids the GGUF's own tokenizer was converted with, else the catalog's
            stop_token_ids=gguf_stops or (list(facts.stop_token_ids) if facts else []),
            reasoning_parser=facts.reasoning_parser if facts else "",
            tool_parser=facts.tool_parser if facts else "",
            bos_token=piece(engine.bos_token_id()), eos_token=piece(engine.eos_token_id()),
            encode_prefix=(entry.encode_prefix if entry else "") or FAMILY_PREFIX.get(family, ""),
            encode_parses_special=entry.encode_parses_special if entry else True,
        )
    except BaseException:
        engine.close()
        raise
    log.info("chat model %s loaded from %s in %.1f s (family %s, %d slots x %d tokens)", spec.id, spec.gguf,
             time.perf_counter() - started, family, settings.parallel, settings.ctx_size)
    return model


def load_embedder(spec: EmbeddingSpec, settings: Settings) -> Embedder:
    from glm_edge.embed.embedder import Embedder

    folder = spec.source
    if spec.id == DEFAULT_EMBEDDING_ID and spec.entry is not None and spec.entry.embedded:
        from glm_edge.embed.defaults import default_embedding_dir

        folder = default_embedding_dir(settings.models_home())  # converted once from the packaged checkpoint
    elif folder.is_dir() and not (folder / "model.onnx").is_file():
        folder = _converted_onnx(folder, spec.id)
    return Embedder.load(folder, model_id=spec.id, threads=settings.embed_threads)


def _converted_onnx(checkpoint: Path, model_id: str) -> Path:
    """A downloaded sentence-transformers checkpoint, converted once to ONNX beside it (no torch)."""
    from glm_edge_convert.embedding_onnx import convert_embedding

    target = checkpoint.with_name(checkpoint.name + "-onnx")
    if (target / "model.onnx").is_file():
        return target
    log.info("converting %s to ONNX once: %s", model_id, target)
    return Path(convert_embedding(checkpoint, target))


def load_models(settings: Settings, specs: ServeSpecs, registry: ModelRegistry) -> None:
    from glm_edge.keywords.extractor import KeywordExtractor

    for spec in specs.embeddings:
        started = time.perf_counter()
        embedder = load_embedder(spec, settings)
        registry.embedders[spec.id] = embedder
        registry.keywords[spec.id] = KeywordExtractor(embedder, model_id=spec.id)
        registry.load_seconds[spec.id] = time.perf_counter() - started
        registry.created[spec.id] = int(time.time())
    if specs.chat is not None:
        started = time.perf_counter()
        registry.chat[specs.chat.id] = load_chat(specs.chat, settings)
        registry.load_seconds[specs.chat.id] = time.perf_counter() - started
        registry.created[specs.chat.id] = int(time.time())
