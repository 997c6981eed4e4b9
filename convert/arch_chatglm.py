"""ChatGLMModel (THUDM/glm-4-9b-chat, remote code) -> GGUF ``chatglm``.

Names lose their ``transformer.`` prefix; ``query_key_value`` ([q; k; v], with bias) is llama.cpp's
fused ``attn_qkv``; ``dense_h_to_4h`` ([gate; up]) is the fused ``ffn_up``. Rope: interleaved pairs on
kv_channels/2 dims, base 10000 * rope_ratio. eps is ``layernorm_epsilon``, KV heads
``multi_query_group_num``, vocab ``padded_vocab_size``, context ``seq_length``.
"""

from __future__ import annotations

from typing import Any

from glm_edge.errors import ConfigError

from .arch_base import LayerJobs, ModelParams, T, check_all_used, require
from .arch_spec import ArchConverter
from .safetensors_reader import Checkpoint
from .tensors import TensorJob


class ChatGlmConverter(ArchConverter):
    hf_architectures = ("ChatGLMModel", "ChatGLMForConditionalGeneration")
    gguf_arch = "chatglm"
    vocab_family = "glm"

    def params(self, config: dict[str, Any]) -> ModelParams:
        n_embd = int(require(config, "hidden_size"))
        n_head = int(require(config, "num_attention_heads"))
        head_dim = int(config.get("kv_channels") or n_embd // n_head)
        if head_dim * n_head != n_embd:
            raise ConfigError(f"ChatGLM with kv_channels*heads != hidden_size ({head_dim}*{n_head} != {n_embd})")
        n_kv = int(config.get("multi_query_group_num") or n_head) if config.get("multi_query_attention", True) \
            else n_head
        return ModelParams(
            hf_arch=config["architectures"][0],
            gguf_arch=self.gguf_arch,
            n_layer=int(require(config, "num_layers", "num_hidden_layers")),
            n_embd=n_embd,
            n_ff=int(require(config, "ffn_hidden_size")),
            n_head=n_head,
            n_head_kv=n_kv,
            head_dim=head_dim,
            n_rot=head_dim // 2,
            rope_theta=10000.0 * float(config.get("rope_ratio", 1.0)),
            rms_eps=float(config.get("layernorm_epsilon", 1e-5)),
            n_ctx=int(require(config, "seq_length")),
            vocab_size=int(require(config, "padded_vocab_size", "vocab_size")),
            tie_embeddings=False,
        )

    def jobs(self, ckpt: Checkpoint, p: ModelParams) -> list[TensorJob]:
        lj = LayerJobs(ckpt)
        lj.embeddings_and_output("transformer.embedding.word_embeddings.weight",
                                 "transformer.encoder.final_layernorm.weight",
                                 "transformer.output_layer.weight", tie=False)
        for i in range(p.n_layer):
            pre = f"transformer.encoder.layers.{i}"
            lj.copy(f"{pre}.input_layernorm.weight", T.ATTN_NORM, i)
            lj.copy(f"{pre}.self_attention.query_key_value.weight", T.ATTN_QKV, i)
            lj.copy(f"{pre}.self_attention.query_key_value.bias", T.ATTN_QKV, i, "bias", optional=True)
            lj.copy(f"{pre}.self_attention.dense.weight", T.ATTN_OUT, i)
            lj.copy(f"{pre}.post_attention_layernorm.weight", T.FFN_NORM, i)
            lj.copy(f"{pre}.mlp.dense_h_to_4h.weight", T.FFN_UP, i)
            lj.copy(f"{pre}.mlp.dense_4h_to_h.weight", T.FFN_DOWN, i)
        check_all_used(ckpt, lj.used, ignored_suffixes=("rotary_pos_emb.inv_freq",))
        return lj.jobs
