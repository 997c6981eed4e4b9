"""Shared pieces of the per-architecture converters: model parameters and the standard HF layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gguf

from glm_edge.errors import ConfigError

from .safetensors_reader import Checkpoint
from .tensors import TensorJob, passthrough, tensor_name

T = gguf.MODEL_TENSOR


@dataclass
class ModelParams:
    """Hyper-parameters of a decoder-only model, in GGUF terms."""

    hf_arch: str
    gguf_arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_rot: int
    rope_theta: float
    rms_eps: float
    n_ctx: int
    vocab_size: int
    tie_embeddings: bool = False
    rope_scaling: dict[str, Any] = field(default_factory=dict)


def rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """Rope settings in one dict, whether the config uses transformers 5's ``rope_parameters`` or the
    older top-level ``rope_theta`` / ``rope_scaling`` / ``partial_rotary_factor``."""
    rp = dict(config.get("rope_scaling") or {})
    rp.update(config.get("rope_parameters") or {})
    if "type" in rp and "rope_type" not in rp:
        rp["rope_type"] = rp["type"]
    for key in ("rope_theta", "partial_rotary_factor"):
        if key not in rp and key in config:
            rp[key] = config[key]
    return rp


def require(config: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in the config, or a clear error."""
    for k in keys:
        if config.get(k) is not None:
            return config[k]
    raise ConfigError(f"config.json lacks {' / '.join(keys)} (architecture {config.get('architectures')})")


def add_common_hparams(w: gguf.GGUFWriter, p: ModelParams) -> None:
    w.add_context_length(p.n_ctx)
    w.add_embedding_length(p.n_embd)
    w.add_block_count(p.n_layer)
    w.add_feed_forward_length(p.n_ff)
    w.add_head_count(p.n_head)
    w.add_head_count_kv(p.n_head_kv)
    w.add_key_length(p.head_dim)
    w.add_value_length(p.head_dim)
    w.add_layer_norm_rms_eps(p.rms_eps)
    w.add_rope_freq_base(p.rope_theta)
    w.add_rope_dimension_count(p.n_rot)
    w.add_vocab_size(p.vocab_size)


def check_all_used(ckpt: Checkpoint, used: set[str],
                   ignored_suffixes: tuple[str, ...] = ("rotary_emb.inv_freq",)) -> None:
    """Refuse checkpoints with tensors the converter does not understand (a silent drop would be a broken model)."""
    unknown = sorted(n for n in ckpt.names() if n not in used and not n.endswith(ignored_suffixes))
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise ConfigError(f"{ckpt.directory}: unexpected tensors {', '.join(unknown[:5])}{more}; "
                          "is config.json's architecture right?")


class LayerJobs:
    """Collects tensor jobs and remembers which checkpoint tensors were used."""

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt
        self.jobs: list[TensorJob] = []
        self.used: set[str] = set()

    def add(self, job: TensorJob, *sources: str) -> None:
        self.jobs.append(job)
        self.used.update(sources)

    def copy(self, hf_name: str, kind: T, bid: int | None = None, suffix: str = "weight", *,
             optional: bool = False) -> None:
        if optional and hf_name not in self.ckpt:
            return
        self.add(passthrough(self.ckpt, hf_name, tensor_name(kind, suffix, bid)), hf_name)

    def embeddings_and_output(self, embed: str, norm: str, head: str, tie: bool) -> None:
        self.copy(embed, T.TOKEN_EMBD)
        self.copy(norm, T.OUTPUT_NORM)
        if head in self.ckpt:
            self.copy(head, T.OUTPUT)
        elif not tie:
            raise ConfigError(f"{self.ckpt.directory}: {head} is missing and tie_word_embeddings is false")

    def finish(self) -> list[TensorJob]:
        check_all_used(self.ckpt, self.used)
        return self.jobs
