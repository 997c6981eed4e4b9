"""GLM-4-9b-chat's real tokenizer (THUDM's tiktoken ``tokenizer.model``, 151 329 ranks) through the converter.

A tiny random-weight checkpoint in the real THUDM layout carries the real tokenizer files (tests/data/
glm-4-9b-chat, see SOURCE.md there); it is converted to GGUF and llama.cpp's ids are compared with tiktoken's,
which is what THUDM's own tokenization_chatglm.py runs. The merge rule is checked for teeth: the old rule
(a token's parts must rank below it) makes the same comparison fail.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from glm_edge.errors import ConfigError
from glm_edge_convert import convert_to_gguf
from glm_edge_convert import vocab as vocab_module
from glm_edge_convert.parity import GGUFTokenizer, compare_logits, gguf_metadata, llama_logits
from glm_edge_convert.tiktoken_vocab import bytes_to_token, merges_from_ranks, read_tiktoken
from glm_edge_convert.vocab import GLM4_REGEX
from tests.real_vocab import GLM4_DIR

REAL = GLM4_DIR

# llama.cpp's own pre-tokenizer check text (CHK_TXT of convert_hf_to_gguf_update.py, llama.cpp as vendored in
# llama-cpp-python 0.3.36): the text llama.cpp hashes to recognise a tokenizer's pre-tokenization.
LLAMA_CPP_CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) "
    "✅ 🦙🦙 3 33 "
    "333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you "
    "sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL")

TEXTS = {
    "english": "Hello world! It's a sunny day, isn't it? We'll see what they've done... The QUICK brown fox.",
    "chinese": "今天天气很好，我们去公园散步吧。人工智能正在改变世界！给你一个机会，你会想逃离你所在的虚拟世界吗？"
               "北京是中国的首都，上海是最大的城市。　全角空格和\u00a0不换行空格除外。",
    "code": "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n  # base case\n    return fibonacci(n - 1)"
            " + fibonacci(n - 2)\n\nfor i in range(10):\n\tprint(f'{i}: {fibonacci(i)}')\n\n"
            "```json\n{\"a\": [1, 2]}\n```",
    "emoji": "🚀🦙 ✅ 👍🏽 🎉🎉 ❤️ 🐍🦀 🤖 👨\u200d👩\u200d👧\u200d👦 🇨🇳🇺🇸 unusual: Ωmega ñandú café naïve",
    "whitespace": "a  b   c    d\n\n\n\te\t\t f \r\n g \u3000h\u00a0\u00a0i   \n    \n\t\t\n end   ",
    "numbers": "3 33 333 3333 33333 1,234,567.89 3.14159e-10 0x1F 2024-07-23 12:30:45 ¥1999 €12,50",
    "mixed": "GLM-4-9B-Chat 支持 128K 上下文，在 MMLU 上得分 72.4；它会调用 get_weather(city=\"北京\") 工具。",
    "llama.cpp check text": LLAMA_CPP_CHECK_TEXT,
}

SPECIAL_TEXT = ("[gMASK]<sop><|system|>\n你是一个乐于助人的助手。<|user|>\n你好, who are you?<|assistant|>\n我是"
                "GLM-4。<|observation|>\n{\"temperature\": 22}<|endoftext|>")


@lru_cache(maxsize=1)
def _ranks() -> dict[bytes, int]:
    ranks = read_tiktoken(REAL / "tokenizer.model")
    assert ranks is not None
    return ranks


@lru_cache(maxsize=1)
def _tiktoken_reference() -> Callable[[str, bool], list[int]]:
    """What THUDM's ChatGLM4Tokenizer runs: tiktoken over the ranks, its pat_str, the configured specials."""
    import tiktoken

    added = json.loads((REAL / "tokenizer_config.json").read_text(encoding="utf-8"))["added_tokens_decoder"]
    enc = tiktoken.Encoding("glm-4-9b-chat", pat_str=GLM4_REGEX, mergeable_ranks=_ranks(),
                            special_tokens={v["content"]: int(k) for k, v in added.items()})

    def encode(text: str, special: bool) -> list[int]:
        return enc.encode(text, allowed_special="all" if special else set(), disallowed_special=())

    return encode


def _old_rule_parts(ranks: dict[bytes, int], token: bytes, rank: int) -> list[bytes]:
    """The rule the converter used to have: BPE on the token's own bytes with only lower-ranked merges."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, i = min((ranks.get(parts[i] + parts[i + 1], rank), i) for i in range(len(parts) - 1))
        if best >= rank:
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def _old_rule_merges(ranks: dict[bytes, int]) -> list[str]:
    """The old rule's merges, with the tokens it cannot build skipped (it used to stop there with an error).
    Reproduced to prove that the tests notice it."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(parts := _old_rule_parts(ranks, token, rank)) == 2:
            merges.append(f"{bytes_to_token(parts[0])} {bytes_to_token(parts[1])}")
    return merges


@lru_cache(maxsize=1)
def _late_tokens() -> tuple[bytes, ...]:
    """Tokens the old rule cannot build (1 072 in glm-4-9b-chat, rank 23977 b"\\xa0" + "除" among them)."""
    ranks = _ranks()
    return tuple(t for t, r in ranks.items() if len(t) > 1 and len(_old_rule_parts(ranks, t, r)) != 2)


def _late_token_text() -> str:
    """Text in which those tokens occur inside longer pre-tokenizer pieces (where only merges can make them)."""
    words = []
    for t in _late_tokens():
        if 0x80 <= t[0] < 0xC0:
            t = b"\xc2" + t  # a lead byte, so that a continuation-led token becomes text
        text = t.decode("utf-8", errors="ignore")
        if text.strip():
            words.append(f"x{text}y {text}{text}")
    return " ".join(words)


# `real_glm` (folder, GGUF, transformers model): tests/conftest.py, shared with tests/test_served_prompt_ids.py


def test_the_real_vocabulary_converts_with_every_rank_and_special(real_glm) -> None:
    _directory, gguf_path, _model = real_glm
    ranks = _ranks()
    assert len(ranks) == 151329 and len(_late_tokens()) == 1072  # the file the issue describes
    md = gguf_metadata(gguf_path)
    tokens = md["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list) and len(tokens) == 151552  # padded_vocab_size rows
    assert md["tokenizer.ggml.pre"] == "glm4"
    assert md["general.architecture"] == "chatglm"
    assert tokens[151329] == "<|endoftext|>" and tokens[151338] == "<|observation|>"
    assert md["tokenizer.ggml.bos_token_id"] == 151329 and md["tokenizer.ggml.eot_token_id"] == 151336
    assert sorted(md["glm_edge.stop_token_ids"]) == [151329, 151336, 151338]  # type: ignore[arg-type]
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    assert all(tokens[r] == bytes_to_token(b) for b, r in by_rank[::997])


def test_llama_cpp_ids_equal_tiktoken_on_real_text(real_glm) -> None:
    _directory, gguf_path, _model = real_glm
    reference = _tiktoken_reference()
    texts = dict(TEXTS, late_tokens=_late_token_text())
    with GGUFTokenizer(gguf_path) as tok:
        for kind, text in texts.items():
            ids = tok.encode(text)
            assert ids == reference(text, False), kind
            assert tok.decode(ids) == text.encode("utf-8"), kind
        assert tok.encode(SPECIAL_TEXT, special=True) == reference(SPECIAL_TEXT, True)
        assert tok.encode("[gMASK]<sop>", special=True) == [151331, 151333]


def test_the_old_merge_rule_fails_the_same_comparison(real_glm, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    directory, _gguf, _model = real_glm
    monkeypatch.setattr(vocab_module, "merges_from_ranks", _old_rule_merges)
    bad = convert_to_gguf(directory / "hf", tmp_path / "old-rule.gguf", "F16", progress=False)
    reference = _tiktoken_reference()
    text = _late_token_text()
    with GGUFTokenizer(bad) as tok:
        assert tok.encode(text) != reference(text, False)


def test_logits_of_the_real_vocabulary_checkpoint_match_transformers(real_glm) -> None:
    _directory, gguf_path, model = real_glm
    ids = [151331, 151333, 151336] + _tiktoken_reference()(TEXTS["mixed"], False) + [151337]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].float().numpy()
    parity = compare_logits(ref, llama_logits(gguf_path, ids))
    assert parity.ok(min_agreement=0.95, max_relative_diff=0.05), str(parity)
    assert np.isfinite(ref).all()


def _ranks_file(tmp_path: Path, ranks: dict[bytes, int]) -> Path:
    path = tmp_path / "tokenizer.model"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    return path


def test_merges_follow_tiktoken_when_a_part_ranks_above_its_token(tmp_path: Path) -> None:
    ranks = {bytes([b]): b for b in range(256)}
    ranks |= {b"cd": 256, b"bcd": 257, b"abcd": 258, b"ab": 300, b"bc": 301}  # "ab" ranks above "abcd"
    got = merges_from_ranks(read_tiktoken(_ranks_file(tmp_path, ranks)) or {})
    # by the token's rank, then by the ranks of its parts; every cut into two tokens is a merge
    expected = [("c", "d"), ("b", "cd"), ("bc", "d"), ("a", "bcd"), ("ab", "cd"), ("a", "b"), ("b", "c")]
    assert got == [f"{left} {right}" for left, right in expected]


def test_a_file_that_is_not_a_ranking_gets_a_clear_error() -> None:
    ranks = {bytes([b]): b for b in range(256)} | {b"xyz": 256}  # neither "xy" nor "yz" is a token
    with pytest.raises(ConfigError, match=r"token rank 256 \(b'xyz'\) cannot be cut into two tokens"):
        merges_from_ranks(ranks)
    no_bytes = {bytes([b]): b for b in range(255)}
    with pytest.raises(ConfigError, match="1 of the 256 single bytes have no rank"):
        merges_from_ranks(no_bytes)


def test_served_tokenize_answers_as_the_glm_api_server(real_glm) -> None:
    """/tokenize on glm-4-9b-chat: its tokenizer's encode() — [gMASK]<sop> first, then tiktoken's ids."""
    import httpx

    from tests.server_process import running_server

    directory, gguf_path, _model = real_glm
    served = directory / "glm-4-9b-chat-F16.gguf"
    if not served.exists():
        served.symlink_to(gguf_path)
    text = "给你一个机会，你会想逃离你所在的虚拟世界吗？ It's <|user|> time."
    expected = _tiktoken_reference()(text, True)
    with running_server(str(served), "--no-embedding", "--ctx-size", "512", "--parallel", "1",
                        log_path=directory / "serve.log") as url:
        full = httpx.post(f"{url}/tokenize", json={"prompt": text}, timeout=60).json()
        bare = httpx.post(f"{url}/tokenize", json={"prompt": text, "add_special_tokens": False}, timeout=60).json()
        cut = httpx.post(f"{url}/tokenize", json={"prompt": text, "max_tokens": 5}, timeout=60).json()
    assert full["model"] == "glm-4-9b-chat" and full["object"] == "tokenizer"
    assert full["tokenIds"] == [151331, 151333, *expected]
    assert full["tokens"][:2] == ["[gMASK]", "<sop>"] and len(full["tokens"]) == len(full["tokenIds"])
    assert bare["tokenIds"] == expected
    assert cut["tokenIds"] == full["tokenIds"][:5]
