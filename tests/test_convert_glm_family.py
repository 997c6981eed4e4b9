"""The GLM family members of the catalog convert and match their references: ChatGLM3 (THUDM layout with the real
SentencePiece tokenizer.model), glm-4-9b / glm-4-9b-chat-1m (THUDM layout, their config differences) and
glm-edge-*-chat (GlmForCausalLM, tied, no attention bias).

Logits: llama.cpp vs transformers on the same ids. Token ids: llama.cpp vs ``sentencepiece`` on the real file and
vs ChatGLM3's own tokenization_chatglm.py (prefix tokens included). Each check has a sabotaged twin that must fail.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from glm_edge_convert import convert_to_gguf
from glm_edge_convert.parity import LogitsParity, compare_logits, gguf_metadata, llama_logits, llama_tokenize
from glm_edge_convert.sentencepiece_vocab import CHATGLM3_SPECIAL_TOKENS, read_sentencepiece
from glm_edge_convert.tiny_glm_family import TinyShape, build_glm4_thudm, build_glm_edge, build_thudm_real_vocab
from tests.chat_requests import render_request

CHATGLM3_DIR = Path(__file__).parent / "data" / "chatglm3-6b"

TEXTS = {
    "english": "Hello world! It's a sunny day, isn't it? We'll see what they've done... 12345 3.14",
    "chinese": "今天天气很好，我们去公园散步吧。人工智能正在改变世界！东京和大阪",
    "code": "def f(x: int) -> int:\n    return x ** 2  # square\n\nfor i in range(10):\n\tprint(f'{i}')\n",
    "emoji": "🚀🦙 ✅ 👍🏽 🎉🎉 ❤️ 🐍🦀 🤖 unusual: Ωmega ñandú café ₣7 ₱9",
    "whitespace": "   leading  and   inner   runs\n\n\n  trailing   ",
}
PROMPT = ("The quick brown fox jumps over the lazy dog. 今天天气很好，我们去公园散步吧。"
          "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) 🚀🦙 3.14159 ✅")


def _ok(p: LogitsParity) -> bool:
    return p.ok(min_agreement=0.95, max_relative_diff=0.05)


def _reference(model: Any, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def _sabotage_weights(src: Path, dst: Path, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
    shutil.copytree(src, dst)
    for shard in dst.glob("*.safetensors"):
        tensors = load_file(str(shard))
        save_file({k: fn(k, v).contiguous() for k, v in tensors.items()}, str(shard), metadata={"format": "pt"})


def _swap_gate_up(name: str, t: torch.Tensor) -> torch.Tensor:
    if name.endswith("dense_h_to_4h.weight"):  # [up; gate] instead of [gate; up]
        half = t.shape[0] // 2
        return torch.cat([t[half:], t[:half]])
    return t


# ------------------------------------------------------------------------------------------ ChatGLM3


def _chatglm3_tokenizer_module() -> ModuleType:
    """THUDM's own tokenization_chatglm.py (vendored), imported from its file."""
    spec = importlib.util.spec_from_file_location("thudm_tokenization_chatglm3",
                                                  CHATGLM3_DIR / "tokenization_chatglm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chatglm3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Path]:
    directory = tmp_path_factory.mktemp("chatglm3")
    model = build_thudm_real_vocab(directory / "hf", CHATGLM3_DIR, seed=5)
    gguf_path = convert_to_gguf(directory / "hf", directory / "chatglm3-f16.gguf", "F16", progress=False)
    return directory, model, gguf_path


@pytest.fixture(scope="module")
def thudm_sp() -> Any:
    """ChatGLM3's SPTokenizer from THUDM's tokenization_chatglm.py over the real tokenizer.model."""
    return _chatglm3_tokenizer_module().SPTokenizer(str(CHATGLM3_DIR / "tokenizer.model"))


def test_the_real_tokenizer_model_is_read_like_sentencepiece_reads_it() -> None:
    import sentencepiece

    ref = sentencepiece.SentencePieceProcessor(model_file=str(CHATGLM3_DIR / "tokenizer.model"))
    sp = read_sentencepiece(CHATGLM3_DIR / "tokenizer.model")
    assert sp is not None and len(sp.pieces) == ref.get_piece_size()
    assert sp.pieces == [ref.id_to_piece(i) for i in range(ref.get_piece_size())]
    assert np.array_equal(np.array(sp.scores, dtype=np.float32),
                          np.array([ref.get_score(i) for i in range(ref.get_piece_size())], dtype=np.float32))
    assert [i for i, t in enumerate(sp.types) if t == 6] == [i for i in range(len(sp.pieces)) if ref.is_byte(i)]
    assert [i for i, t in enumerate(sp.types) if t == 3] == [i for i in range(len(sp.pieces)) if ref.is_control(i)]
    assert (sp.unk_id, sp.bos_id, sp.eos_id) == (ref.unk_id(), ref.bos_id(), ref.eos_id())
    assert sp.model_type == "bpe" and sp.normalizer == "identity"
    # A tiktoken file is not mistaken for a SentencePiece model.
    glm4 = Path(__file__).parent / "data" / "glm-4-9b-chat" / "tokenizer.model"
    if glm4.is_file():
        assert read_sentencepiece(glm4) is None


def test_chatglm3_gguf_metadata(chatglm3: tuple[Path, Any, Path], thudm_sp: Any) -> None:
    _directory, _model, gguf_path = chatglm3
    meta = gguf_metadata(gguf_path)
    assert meta["general.architecture"] == "chatglm"
    assert meta["tokenizer.ggml.model"] == "llama"
    tokens = meta["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list) and len(tokens) == 65024  # the real padded_vocab_size
    for text, token_id in thudm_sp.special_tokens.items():
        assert tokens[token_id] == text
    assert set(thudm_sp.special_tokens) == set(CHATGLM3_SPECIAL_TOKENS)
    stops = meta["glm_edge.stop_token_ids"]
    assert stops == sorted([thudm_sp.eos_id, thudm_sp.special_tokens["<|user|>"],
                            thudm_sp.special_tokens["<|observation|>"]])
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert meta["chatglm.context_length"] == 8192
    assert meta["chatglm.rope.freq_base"] == pytest.approx(10000.0)


def test_chatglm3_ids_match_sentencepiece_and_thudm_encode(chatglm3: tuple[Path, Any, Path], thudm_sp: Any) -> None:
    _directory, _model, gguf_path = chatglm3
    import sentencepiece

    ref = sentencepiece.SentencePieceProcessor(model_file=str(CHATGLM3_DIR / "tokenizer.model"))
    prefix = [thudm_sp.special_tokens["[gMASK]"], thudm_sp.special_tokens["sop"]]
    for kind, text in TEXTS.items():
        assert llama_tokenize(gguf_path, text) == ref.encode(text), kind
        # ChatGLMTokenizer.encode(text) = get_prefix_tokens() + SPTokenizer.encode(text)
        assert llama_tokenize(gguf_path, "[gMASK]sop" + text, special=True) == prefix + thudm_sp.encode(text), kind
    # Role tokens are control tokens in the GGUF, as SPTokenizer's encode_special_tokens path sees them.
    assert llama_tokenize(gguf_path, "<|user|>", special=True) == [thudm_sp.special_tokens["<|user|>"]]
    assert llama_tokenize(gguf_path, PROMPT) == ref.encode(PROMPT)


def _with_scores(path: Path, out: Path, fn: Callable[[int, float], float]) -> None:
    """Rewrite a SentencePiece model with every piece's score replaced by fn(id, score) (other fields kept)."""
    from glm_edge_convert.sentencepiece_vocab import _fields

    def varint(n: int) -> bytes:
        b = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            b.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(b)

    def field(number: int, wire: int, payload: bytes) -> bytes:
        key = varint(number << 3 | wire)
        return key + (varint(len(payload)) + payload if wire == 2 else payload)

    data = bytearray()
    piece_id = 0
    for number, wire, value in _fields(path.read_bytes()):
        if number == 1:
            inner = bytearray()
            for n, w, v in _fields(value):
                if n == 2:
                    v = struct.pack("<f", fn(piece_id, struct.unpack("<f", v)[0]))
                inner += field(n, w, v) if w != 0 else varint(n << 3) + varint(v)
            data += field(1, 2, bytes(inner))
            piece_id += 1
        else:
            data += field(number, wire, value) if wire != 0 else varint(number << 3) + varint(value)
    out.write_bytes(bytes(data))


def test_a_sabotaged_vocabulary_fails_the_id_comparison(chatglm3: tuple[Path, Any, Path], tmp_path: Path) -> None:
    import sentencepiece

    directory, _model, _gguf = chatglm3
    ref = sentencepiece.SentencePieceProcessor(model_file=str(CHATGLM3_DIR / "tokenizer.model"))
    bad = tmp_path / "bad"
    shutil.copytree(directory / "hf", bad)
    # The rewrite itself is faithful: an identity rewrite reads back with the same scores.
    _with_scores(CHATGLM3_DIR / "tokenizer.model", tmp_path / "same.model", lambda _i, s: s)
    same = read_sentencepiece(tmp_path / "same.model")
    assert same is not None and same.scores == read_sentencepiece(CHATGLM3_DIR / "tokenizer.model").scores
    # Sabotage: merge priorities lost (every score 0), as a converter that drops scores would write them.
    _with_scores(CHATGLM3_DIR / "tokenizer.model", bad / "tokenizer.model", lambda _i, _s: 0.0)
    out = convert_to_gguf(bad, tmp_path / "bad.gguf", "F16", progress=False)
    mismatches = [k for k, t in TEXTS.items() if llama_tokenize(out, t) != ref.encode(t)]
    assert len(mismatches) >= 3, f"sabotage went unnoticed on {sorted(set(TEXTS) - set(mismatches))}"


def test_chatglm3_logits_match_transformers(chatglm3: tuple[Path, Any, Path], thudm_sp: Any, tmp_path: Path) -> None:
    directory, model, gguf_path = chatglm3
    ids = ([thudm_sp.special_tokens["[gMASK]"], thudm_sp.special_tokens["sop"], thudm_sp.special_tokens["<|user|>"]]
           + thudm_sp.encode("\n") + thudm_sp.encode(PROMPT) + [thudm_sp.special_tokens["<|assistant|>"]])
    assert len(ids) >= 40
    ref = _reference(model, ids)
    parity = compare_logits(ref, llama_logits(gguf_path, ids))
    assert _ok(parity), f"chatglm3 F16: {parity}"
    _sabotage_weights(directory / "hf", tmp_path / "bad", _swap_gate_up)
    bad = compare_logits(ref, llama_logits(convert_to_gguf(tmp_path / "bad", tmp_path / "bad.gguf", "F16",
                                                           progress=False), ids))
    assert not _ok(bad), f"chatglm3: sabotage went unnoticed: {bad}"


def test_chatglm3_rope_ratio_of_the_long_context_variants(tmp_path: Path, thudm_sp: Any) -> None:
    """chatglm3-6b-32k / -128k scale the rope base with rope_ratio; the conversion must follow it."""
    # head_dim 32 (rope on 16 dims), so a wrong base shows on the low-frequency pairs too
    model = build_thudm_real_vocab(tmp_path / "hf", CHATGLM3_DIR, rope_ratio=50.0, seed=6,
                           shape=TinyShape(hidden=64, heads=2, kv_heads=1, ffn=96, layers=2))
    ids = [thudm_sp.special_tokens["[gMASK]"], thudm_sp.special_tokens["sop"]] + thudm_sp.encode(PROMPT * 2)
    ref = _reference(model, ids)
    out = convert_to_gguf(tmp_path / "hf", tmp_path / "m.gguf", "F16", progress=False)
    assert gguf_metadata(out)["chatglm.rope.freq_base"] == pytest.approx(500000.0)
    assert _ok(parity := compare_logits(ref, llama_logits(out, ids))), str(parity)
    # Sabotage: the same weights converted without the ratio (as if rope_ratio were ignored) must fail.
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "hf", bad)
    cfg = json.loads((bad / "config.json").read_text())
    del cfg["rope_ratio"]
    (bad / "config.json").write_text(json.dumps(cfg))
    worse = compare_logits(ref, llama_logits(convert_to_gguf(bad, tmp_path / "bad.gguf", "F16", progress=False), ids))
    assert not _ok(worse), f"rope_ratio sabotage went unnoticed: {worse}"


# ------------------------------------------------------------------------------------------ GLM-4-9b THUDM variants


@pytest.mark.parametrize("variant", ["base", "1m"])
def test_glm4_9b_variants_convert_and_match(variant: str, tmp_path: Path) -> None:
    model, tok = build_glm4_thudm(tmp_path / "hf", variant=variant, seed=11)
    ids = [tok.token_to_id(t) for t in ("[gMASK]", "<sop>", "<|user|>")] + tok.encode(PROMPT).ids
    ref = _reference(model, ids)
    out = convert_to_gguf(tmp_path / "hf", tmp_path / "m.gguf", "F16", progress=False)
    meta = gguf_metadata(out)
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert meta["chatglm.context_length"] == cfg["seq_length"]
    assert meta["chatglm.attention.head_count_kv"] == cfg["multi_query_group_num"]
    assert meta["chatglm.rope.freq_base"] == pytest.approx(10000.0 * cfg.get("rope_ratio", 1.0))
    assert _ok(parity := compare_logits(ref, llama_logits(out, ids))), f"{variant}: {parity}"
    _sabotage_weights(tmp_path / "hf", tmp_path / "bad", _swap_gate_up)
    bad = compare_logits(ref, llama_logits(convert_to_gguf(tmp_path / "bad", tmp_path / "bad.gguf", "F16",
                                                           progress=False), ids))
    assert not _ok(bad), f"{variant}: sabotage went unnoticed: {bad}"


# ------------------------------------------------------------------------------------------ glm-edge


@pytest.mark.parametrize("partial", [0.5, 1.0])
def test_glm_edge_converts_and_matches(partial: float, tmp_path: Path) -> None:
    model, fast = build_glm_edge(tmp_path / "hf", partial_rotary_factor=partial, seed=13)
    ids = fast.convert_tokens_to_ids(["[gMASK]", "<sop>", "<|user|>"]) + fast.encode(PROMPT, add_special_tokens=False)
    ref = _reference(model, ids)
    out = convert_to_gguf(tmp_path / "hf", tmp_path / "m.gguf", "F16", progress=False)
    meta = gguf_metadata(out)
    assert meta["general.architecture"] == "chatglm"
    assert meta["chatglm.rope.dimension_count"] == int(16 * partial)
    assert _ok(parity := compare_logits(ref, llama_logits(out, ids))), f"glm-edge {partial}: {parity}"
    for kind, text in TEXTS.items():
        assert llama_tokenize(out, text) == fast.encode(text, add_special_tokens=False), kind
    # Sabotage: the other rotary fraction (what a converter with a fixed 0.5 or 1.0 would write) must fail.
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "hf", bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["partial_rotary_factor"] = 1.5 - partial
    (bad / "config.json").write_text(json.dumps(cfg))
    worse = compare_logits(ref, llama_logits(convert_to_gguf(bad, tmp_path / "bad.gguf", "F16", progress=False), ids))
    assert not _ok(worse), f"glm-edge {partial}: sabotage went unnoticed: {worse}"


def test_served_tokenize_gives_the_seed_examples_ids(chatglm3: tuple[Path, Any, Path], thudm_sp: Any) -> None:
    """GLM-API's /tokenize example is chatglm3-6b-32k: [gMASK] sop, then SentencePiece's ids (64790, 64792, 30910…)."""
    import httpx

    from tests.server_process import running_server

    directory, _model, gguf_path = chatglm3
    served = directory / "chatglm3-6b-32k-F16.gguf"
    if not served.exists():
        served.symlink_to(gguf_path)
    prompt = "给你一个机会，你会想逃离你所在的虚拟世界吗？"
    tricky = "sophisticated <|user|> eop"  # bare words that are also ChatGLM3 control tokens stay text
    with running_server(str(served), "--no-embedding", "--ctx-size", "512", "--parallel", "1",
                        log_path=directory / "serve.log") as url:
        seed = httpx.post(f"{url}/tokenize", json={"prompt": prompt, "max_tokens": 4096}, timeout=60).json()
        words = httpx.post(f"{url}/tokenize", json={"prompt": tricky}, timeout=60).json()
        bare = httpx.post(f"{url}/tokenize", json={"prompt": prompt, "add_special_tokens": False}, timeout=60).json()
    prefix = [thudm_sp.special_tokens["[gMASK]"], thudm_sp.special_tokens["sop"]]
    assert prefix == [64790, 64792]
    assert seed["model"] == "chatglm3-6b-32k"
    assert seed["tokenIds"] == prefix + thudm_sp.encode(prompt)
    assert seed["tokenIds"][:3] == [64790, 64792, 30910]  # as in the GLM-API example
    assert words["tokenIds"] == prefix + thudm_sp.encode(tricky)
    assert bare["tokenIds"] == thudm_sp.encode(prompt)


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "你好"}],
    [{"role": "system", "content": "You are ChatGLM3. Be brief."}, {"role": "user", "content": "Hi, who are you?"}],
    [{"role": "system", "content": "简短回答。"}, {"role": "user", "content": "1+1=?"},
     {"role": "assistant", "content": "2"}, {"role": "user", "content": "再加 3 呢？ And times 10?"}],
], ids=["one-turn", "system", "several-turns"])
def test_chatglm3_chat_prompt_ids_equal_thudm_build_chat_input(chatglm3: tuple[Path, Any, Path],
                                                               messages: list[dict[str, str]]) -> None:
    """The served path (catalog template rendered by glm_edge.chat, then llama.cpp with special tokens parsed)
    gives the ids of THUDM's own ChatGLMTokenizer.build_chat_input (its final packing step adds the prefix)."""
    from glm_edge.catalog import load_catalog
    from glm_edge.chat import ChatTemplate
    from glm_edge_convert.parity import GGUFTokenizer

    _directory, _model, gguf_path = chatglm3
    module = _chatglm3_tokenizer_module()

    class Tokenizer(module.ChatGLMTokenizer):  # type: ignore[misc,name-defined]
        def batch_encode_plus(self, batch: list[list[int]], **_: object) -> dict[str, list[list[int]]]:
            # transformers 5 dropped batch_encode_plus; what it did here: add the special tokens to the ids
            return {"input_ids": [self.build_inputs_with_special_tokens(batch[0])]}

    tok = Tokenizer(vocab_file=str(CHATGLM3_DIR / "tokenizer.model"))
    *history, query = messages
    expected = tok.build_chat_input(query["content"], history=history, role=query["role"])["input_ids"][0]

    entry = load_catalog().get("chatglm3-6b")
    assert entry is not None and entry.template_text() is not None
    prompt = render_request(ChatTemplate(entry.template_text() or ""), entry.chat_family, messages).prompt
    with GGUFTokenizer(gguf_path) as gguf_tok:
        assert gguf_tok.encode(prompt, special=True) == expected
