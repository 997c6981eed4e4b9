"""Shapes of the real models (from their config.json files) for synthetic GGUFs, plus tiny variants."""

from __future__ import annotations

from .arch_base import ModelParams

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}


def _p(hf: str, arch: str, n_layer: int, n_embd: int, n_ff: int, n_head: int, n_head_kv: int, head_dim: int,
       rot: float, theta: float, eps: float, ctx: int, vocab: int, **kw: object) -> ModelParams:
    return ModelParams(hf_arch=hf, gguf_arch=arch, n_layer=n_layer, n_embd=n_embd, n_ff=n_ff, n_head=n_head,
                       n_head_kv=n_head_kv, head_dim=head_dim, n_rot=int(head_dim * rot), rope_theta=theta,
                       rms_eps=eps, n_ctx=ctx, vocab_size=vocab, **kw)  # type: ignore[arg-type]


# (arch, size) -> (model name, params). Real values: THUDM/glm-4-9b-chat (rope_ratio 500, padded vocab),
# THUDM/GLM-4-9B-0414, deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B / -7B, DeepSeek-R1-Distill-Llama-8B.
PRESETS: dict[tuple[str, str], tuple[str, ModelParams]] = {
    ("chatglm", "9b"): ("glm-4-9b-chat", _p("ChatGLMModel", "chatglm", 40, 4096, 13696, 32, 2, 128, 0.5,
                                               5_000_000.0, 1.5625e-07, 131072, 151552)),
    ("glm4", "9b"): ("GLM-4-9B-0414", _p("Glm4ForCausalLM", "glm4", 40, 4096, 13696, 32, 2, 128, 0.5,
                                        10000.0, 1e-05, 32768, 151552)),
    ("qwen2", "1.5b"): ("DeepSeek-R1-Distill-Qwen-1.5B", _p("Qwen2ForCausalLM", "qwen2", 28, 1536, 8960, 12, 2, 128,
                                                           1.0, 10000.0, 1e-06, 131072, 151936)),
    ("qwen2", "7b"): ("DeepSeek-R1-Distill-Qwen-7B", _p("Qwen2ForCausalLM", "qwen2", 28, 3584, 18944, 28, 4, 128,
                                                       1.0, 10000.0, 1e-06, 131072, 152064)),
    ("llama", "8b"): ("DeepSeek-R1-Distill-Llama-8B", _p("LlamaForCausalLM", "llama", 32, 4096, 14336, 32, 8, 128,
                                                        1.0, 500000.0, 1e-05, 131072, 128256,
                                                        rope_scaling=dict(LLAMA3_ROPE))),
    ("chatglm", "tiny"): ("tiny-chatglm", _p("ChatGLMModel", "chatglm", 2, 256, 512, 4, 2, 64, 0.5,
                                             10000.0, 1e-05, 4096, 1024)),
    ("glm4", "tiny"): ("tiny-glm4", _p("Glm4ForCausalLM", "glm4", 2, 256, 512, 4, 2, 64, 0.5,
                                       10000.0, 1e-05, 4096, 1024)),
    ("qwen2", "tiny"): ("tiny-r1-qwen", _p("Qwen2ForCausalLM", "qwen2", 2, 256, 512, 4, 2, 64, 1.0,
                                           10000.0, 1e-06, 4096, 1024)),
    ("llama", "tiny"): ("tiny-r1-llama", _p("LlamaForCausalLM", "llama", 2, 256, 512, 4, 2, 64, 1.0,
                                            500000.0, 1e-05, 4096, 1024, rope_scaling=dict(LLAMA3_ROPE))),
}

# Special tokens at their real ids (GLM: THUDM order after the 151329 ranks; R1 distills: their tokenizer.json).
GLM_SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
                "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
                "<|begin_of_video|>", "<|end_of_video|>"]
R1_QWEN_SPECIALS = {151643: "<｜end▁of▁sentence｜>", 151644: "<｜User｜>", 151645: "<｜Assistant｜>",
                    151646: "<｜begin▁of▁sentence｜>", 151647: "<|EOT|>", 151648: "<think>", 151649: "</think>"}
R1_LLAMA_SPECIALS = {128000: "<｜begin▁of▁sentence｜>", 128001: "<｜end▁of▁sentence｜>", 128011: "<｜User｜>",
                     128012: "<｜Assistant｜>", 128013: "<think>", 128014: "</think>", 128015: "<｜▁pad▁｜>"}
NOT_CONTROL = {"<think>", "</think>"}  # plain added tokens in the R1 distills


def specials_for(arch: str, size: str, vocab_size: int) -> dict[int, str]:
    """Special tokens by id; tiny models place the same tokens right below the end of their small vocab."""
    if arch in ("chatglm", "glm4"):
        base = 151329 if size != "tiny" else vocab_size - 64
        return {base + i: t for i, t in enumerate(GLM_SPECIALS)}
    table = R1_QWEN_SPECIALS if arch == "qwen2" else R1_LLAMA_SPECIALS
    if size != "tiny":
        return dict(table)
    first = min(table)
    return {vocab_size - 64 + (i - first): t for i, t in table.items()}


GLM_CHAT_TEMPLATE = (
    "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}")
R1_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")
