"""Measure conversion cost on a synthetic full-size checkpoint: peak RSS and wall time.

    python -m glm_edge_convert.measure [--workdir DIR] [--type F16] [--keep]

Writes a DeepSeek-R1-Distill-Qwen-1.5B-shaped bf16 safetensors checkpoint (random weights, 4 shards,
a small trained tokenizer), converts it in a child process and reports the child's peak RSS and time.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .synth import tensor_shapes
from .synth_presets import PRESETS

_HF_NAMES = {  # GGUF name pattern -> HF name pattern for the qwen2 layout
    "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight", "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def _hf_name(gguf_name: str) -> str:
    if gguf_name.startswith("blk."):
        _, bid, rest = gguf_name.split(".", 2)
        return f"model.layers.{bid}.{_HF_NAMES[rest]}"
    return _HF_NAMES[gguf_name]


def write_bf16_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], pool: np.ndarray) -> None:
    """A bf16 safetensors file of random values, written in chunks (numpy has no bf16; we write raw bits)."""
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(0)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for shape in shapes.values():
            left = int(np.prod(shape))
            while left:
                take = min(left, pool.size // 2)
                start = int(rng.integers(0, pool.size // 2))
                pool[start:start + take].tofile(f)
                left -= take


def write_checkpoint(directory: Path, shards: int = 4) -> Path:
    from .tiny import R1_ADDED, R1_SPECIAL, train_tokenizer
    from .vocab import QWEN2_REGEX

    _name, p = PRESETS[("qwen2", "1.5b")]
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pool = (rng.standard_normal(1 << 23, dtype=np.float32) * 0.02).view(np.uint32) >> 16
    pool = pool.astype(np.uint16)
    shapes = {_hf_name(n): s for n, s, _ in tensor_shapes(p)}
    names = list(shapes)
    weight_map = {}
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: shapes[n] for n in names[k::shards]}
        write_bf16_safetensors(directory / fname, part, pool)
        weight_map.update({n: fname for n in part})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": p.n_embd,
              "intermediate_size": p.n_ff, "num_hidden_layers": p.n_layer, "num_attention_heads": p.n_head,
              "num_key_value_heads": p.n_head_kv, "max_position_embeddings": p.n_ctx, "rms_norm_eps": p.rms_eps,
              "rope_theta": p.rope_theta, "vocab_size": p.vocab_size, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    tok = train_tokenizer(QWEN2_REGEX, R1_SPECIAL, R1_ADDED)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": R1_SPECIAL[0], "eos_token": R1_SPECIAL[1], "add_bos_token": True}, ensure_ascii=False))
    return directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--type", default="F16")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="glm-edge-measure-"))
    try:
        t0 = time.perf_counter()
        ckpt = write_checkpoint(work / "hf")
        size = sum(f.stat().st_size for f in ckpt.glob("*.safetensors"))
        print(f"checkpoint: {size / 2**30:.2f} GiB bf16 in 4 shards, written in {time.perf_counter() - t0:.1f} s")
        out = work / f"model-{args.type}.gguf"
        code = ("import sys; from pathlib import Path; from glm_edge_convert import convert_to_gguf; "
                f"convert_to_gguf(Path({str(ckpt)!r}), Path({str(out)!r}), {args.type!r}, progress=False)")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        elapsed = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"convert to {args.type}: {elapsed:.1f} s, peak RSS {peak:.0f} MiB, "
              f"output {out.stat().st_size / 2**30:.2f} GiB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
