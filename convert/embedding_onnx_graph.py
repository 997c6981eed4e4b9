"""The BERT / XLM-RoBERTa encoder as an ONNX graph, built with `onnx.helper` from numpy weights.

No torch: the weights come from safetensors as numpy arrays and the graph is written op by op, so a
plain `pip install glm-edge` can turn a sentence-transformers checkpoint into ONNX at serving time.

The graph takes `input_ids`, `attention_mask` and `token_type_ids` (int64, [batch, seq]) and returns
`last_hidden_state` (float32, [batch, seq, hidden]). Pooling is left to the embedder (numpy), so one
graph serves every pooling mode sentence-transformers has and `embedding.json` can change it
without a new export; its cost (one pass over batch x seq x hidden floats) is negligible next to the
encoder.

Ops follow transformers' `BertModel` / `XLMRobertaModel` (eager attention):
embeddings = LayerNorm(word[ids] + position[pos] + token_type[tt]); each layer:
h = LayerNorm(h + Dense(SelfAttention(h))); h = LayerNorm(h + Dense(act(Dense(h)))).
Softmax masking adds the float32 minimum to masked keys, as transformers does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is a standard op from 17 on

# transformers' ACT2FN names -> how we build them. "gelu" is the exact erf form (torch's default);
# the tanh approximation is "gelu_new" / "gelu_pytorch_tanh" / "gelu_fast".
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish")


@dataclass(frozen=True)
class EncoderConfig:
    architecture: str  # "bert" or "xlm-roberta"
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float
    hidden_act: str
    pad_token_id: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    use_task_id: bool = False  # ERNIE 3.0: a task-type embedding (row 0) is added to every token

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


class _Builder:
    """Collects nodes and initializers; names every intermediate uniquely."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, array: np.ndarray, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: object) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _linear(b: _Builder, x: str, weights: Callable[[str], np.ndarray], prefix: str) -> str:
    """x @ W.T + bias, with W stored transposed so that MatMul (what int8 quantisation rewrites) sees [in, out]."""
    w = b.weight(weights(f"{prefix}.weight").T, f"{prefix}.weight_t")
    bias = b.weight(weights(f"{prefix}.bias"), f"{prefix}.bias")
    return b.op("Add", [b.op("MatMul", [x, w]), bias])


def _layer_norm(b: _Builder, x: str, weights: Callable[[str], np.ndarray], prefix: str, eps: float) -> str:
    scale = b.weight(weights(f"{prefix}.weight"), f"{prefix}.weight")
    bias = b.weight(weights(f"{prefix}.bias"), f"{prefix}.bias")
    return b.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=float(eps))


def _activation(b: _Builder, x: str, kind: str) -> str:
    f32 = np.float32
    if kind == "gelu":  # 0.5 * x * (1 + erf(x / sqrt(2)))
        inner = b.op("Erf", [b.op("Mul", [x, b.const(f32(1.0 / math.sqrt(2.0)), "inv_sqrt2")])])
        half_x = b.op("Mul", [x, b.const(f32(0.5), "half")])
        return b.op("Mul", [half_x, b.op("Add", [inner, b.const(f32(1.0), "one")])])
    if kind in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):  # 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
        cube = b.op("Mul", [b.op("Mul", [x, x]), x])
        poly = b.op("Add", [x, b.op("Mul", [cube, b.const(f32(0.044715), "c")])])
        t = b.op("Tanh", [b.op("Mul", [poly, b.const(f32(math.sqrt(2.0 / math.pi)), "s")])])
        half_x = b.op("Mul", [x, b.const(f32(0.5), "half")])
        return b.op("Mul", [half_x, b.op("Add", [t, b.const(f32(1.0), "one")])])
    if kind == "relu":
        return b.op("Relu", [x])
    if kind in ("silu", "swish"):
        return b.op("Mul", [x, b.op("Sigmoid", [x])])
    raise ValueError(f"unsupported hidden_act '{kind}'; supported: {', '.join(SUPPORTED_ACTIVATIONS)}")


def _position_ids(b: _Builder, cfg: EncoderConfig) -> str:
    """BERT: 0..seq-1. XLM-R: padding_idx + cumsum(non-pad) over non-pad tokens, padding_idx on pads."""
    i64 = np.int64
    if cfg.architecture == "xlm-roberta":
        not_pad = b.op("Not", [b.op("Equal", ["input_ids", b.const(i64(cfg.pad_token_id), "pad_id")])])
        mask = b.op("Cast", [not_pad], to=TensorProto.INT64)
        running = b.op("CumSum", [mask, b.const(i64(1), "axis1")])
        return b.op("Add", [b.op("Mul", [running, mask]), b.const(i64(cfg.pad_token_id), "pad_id")])
    seq_len = b.op("Gather", [b.op("Shape", ["input_ids"]), b.const(i64(1), "dim1")], axis=0)
    positions = b.op("Range", [b.const(i64(0), "zero"), seq_len, b.const(i64(1), "step")])
    return b.op("Unsqueeze", [positions, b.const(np.array([0], dtype=i64), "axes0")])


def _self_attention(b: _Builder, h: str, bias: str, weights: Callable[[str], np.ndarray], prefix: str,
                    cfg: EncoderConfig) -> str:
    heads_shape = b.const(np.array([0, 0, cfg.num_heads, cfg.head_dim], dtype=np.int64), "heads_shape")
    scale = b.const(np.float32(1.0 / math.sqrt(cfg.head_dim)), "attn_scale")

    def split(name: str, perm: list[int]) -> str:
        projected = _linear(b, h, weights, f"{prefix}.self.{name}")
        return b.op("Transpose", [b.op("Reshape", [projected, heads_shape])], perm=perm)

    q = split("query", [0, 2, 1, 3])  # [B, nh, T, hd]
    k = split("key", [0, 2, 3, 1])  # [B, nh, hd, T]
    v = split("value", [0, 2, 1, 3])
    scores = b.op("Add", [b.op("MatMul", [b.op("Mul", [q, scale]), k]), bias])
    probs = b.op("Softmax", [scores], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged = b.op("Reshape", [context, b.const(np.array([0, 0, cfg.hidden_size], dtype=np.int64), "merge_shape")])
    return _linear(b, merged, weights, f"{prefix}.output.dense")


def _contrib(b: _Builder, op_type: str, inputs: list[str], **attrs: object) -> str:
    out = b.name(op_type.lower())
    b.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain="com.microsoft", **attrs))
    return out


def _fused_layer(b: _Builder, h: str, mask_i32: str, weights: Callable[[str], np.ndarray], p: str,
                 cfg: EncoderConfig) -> str:
    """One layer with ONNX Runtime's fused kernels (com.microsoft): Attention (packed QKV projection and masked
    softmax in one kernel), SkipLayerNormalization (bias + residual + LayerNorm), BiasGelu / FastGelu.
    The same arithmetic as `_plain_layer`; about 1.5x faster on CPU. Linear layers stay MatMul nodes, so
    dynamic int8 quantisation still applies to them (and Attention becomes QAttention)."""
    a = f"{p}.attention"
    parts = [f"{a}.self.{n}" for n in ("query", "key", "value")]
    qkv_w = b.weight(np.concatenate([weights(f"{x}.weight").T for x in parts], axis=1), f"{a}.self.qkv.weight_t")
    qkv_b = b.weight(np.concatenate([weights(f"{x}.bias") for x in parts]), f"{a}.self.qkv.bias")
    attn = _contrib(b, "Attention", [h, qkv_w, qkv_b, mask_i32], num_heads=cfg.num_heads)

    def skip_norm(x: str, residual: str, dense: str, norm: str) -> str:
        projected = b.op("MatMul", [x, b.weight(weights(f"{dense}.weight").T, f"{dense}.weight_t")])
        return _contrib(b, "SkipLayerNormalization",
                        [projected, residual, b.weight(weights(f"{norm}.weight"), f"{norm}.weight"),
                         b.weight(weights(f"{norm}.bias"), f"{norm}.bias"),
                         b.weight(weights(f"{dense}.bias"), f"{dense}.bias")],
                        epsilon=float(cfg.layer_norm_eps))

    h = skip_norm(attn, h, f"{a}.output.dense", f"{a}.output.LayerNorm")
    up = b.op("MatMul", [h, b.weight(weights(f"{p}.intermediate.dense.weight").T, f"{p}.intermediate.dense.weight_t")])
    up_bias = b.weight(weights(f"{p}.intermediate.dense.bias"), f"{p}.intermediate.dense.bias")
    if cfg.hidden_act == "gelu":
        inter = _contrib(b, "BiasGelu", [up, up_bias])
    elif cfg.hidden_act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        inter = _contrib(b, "FastGelu", [up, up_bias])
    else:
        inter = _activation(b, b.op("Add", [up, up_bias]), cfg.hidden_act)
    return skip_norm(inter, h, f"{p}.output.dense", f"{p}.output.LayerNorm")


def _plain_layer(b: _Builder, h: str, bias: str, weights: Callable[[str], np.ndarray], p: str,
                 cfg: EncoderConfig) -> str:
    """One layer in standard ONNX ops only (any runtime)."""
    attn = _self_attention(b, h, bias, weights, f"{p}.attention", cfg)
    h = _layer_norm(b, b.op("Add", [attn, h]), weights, f"{p}.attention.output.LayerNorm", cfg.layer_norm_eps)
    inter = _activation(b, _linear(b, h, weights, f"{p}.intermediate.dense"), cfg.hidden_act)
    out = _linear(b, inter, weights, f"{p}.output.dense")
    return _layer_norm(b, b.op("Add", [out, h]), weights, f"{p}.output.LayerNorm", cfg.layer_norm_eps)


def build_encoder(cfg: EncoderConfig, weights: Callable[[str], np.ndarray], *, fused: bool = True) -> onnx.ModelProto:
    """The encoder graph; `weights(name)` returns the float32 numpy tensor for a transformers name
    without the model prefix (e.g. `encoder.layer.0.attention.self.query.weight`). `fused` uses ONNX Runtime's
    contrib kernels (the default: glm-edge runs on ONNX Runtime); `fused=False` gives standard ONNX ops only."""
    if cfg.hidden_size % cfg.num_heads:
        raise ValueError(f"hidden_size {cfg.hidden_size} is not a multiple of num_attention_heads {cfg.num_heads}")
    if cfg.hidden_act not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act '{cfg.hidden_act}'; supported: {', '.join(SUPPORTED_ACTIVATIONS)}")
    b = _Builder()
    word = b.op("Gather", [b.weight(weights("embeddings.word_embeddings.weight"), "word_embeddings"), "input_ids"])
    pos = b.op("Gather", [b.weight(weights("embeddings.position_embeddings.weight"), "position_embeddings"),
                          _position_ids(b, cfg)])
    types = b.op("Gather", [b.weight(weights("embeddings.token_type_embeddings.weight"), "token_type_embeddings"),
                            "token_type_ids"])
    summed = b.op("Add", [b.op("Add", [word, pos]), types])
    if cfg.use_task_id:  # transformers' ErnieEmbeddings with task_type_ids left at 0
        task = weights("embeddings.task_type_embeddings.weight")[0]
        summed = b.op("Add", [summed, b.weight(task, "task_type_embedding_0")])
    h = _layer_norm(b, summed, weights, "embeddings.LayerNorm", cfg.layer_norm_eps)

    if fused:
        mask_i32 = b.op("Cast", ["attention_mask"], to=TensorProto.INT32)
        for i in range(cfg.num_layers):
            h = _fused_layer(b, h, mask_i32, weights, f"encoder.layer.{i}", cfg)
    else:
        # additive key mask [B, 1, 1, T]: 0 where attended, float32 min where masked
        mask_f = b.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        inverted = b.op("Sub", [b.const(np.float32(1.0), "one"), mask_f])
        additive = b.op("Mul", [inverted, b.const(np.float32(np.finfo(np.float32).min), "neg_inf")])
        bias = b.op("Unsqueeze", [additive, b.const(np.array([1, 2], dtype=np.int64), "axes12")])
        for i in range(cfg.num_layers):
            h = _plain_layer(b, h, bias, weights, f"encoder.layer.{i}", cfg)
    b.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"], name="last_hidden_state"))

    ids = ["batch", "sequence"]
    graph = helper.make_graph(
        b.nodes, f"{cfg.architecture}_encoder",
        inputs=[helper.make_tensor_value_info(n, TensorProto.INT64, ids)
                for n in ("input_ids", "attention_mask", "token_type_ids")],
        outputs=[helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                               ["batch", "sequence", cfg.hidden_size])],
        initializer=b.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if fused else [])
    model = helper.make_model(graph, opset_imports=opsets,
                              producer_name="glm-edge", doc_string=f"{cfg.architecture} encoder")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    return model
