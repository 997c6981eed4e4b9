"""Embedding checkpoint -> ONNX (glm_edge_convert.embedding_onnx): parity with sentence-transformers on the real
all-MiniLM-L6-v2, and with transformers on tiny random BERT / XLM-R checkpoints; int8; atomic writes; errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from glm_edge.errors import ConfigError
from glm_edge_convert.embedding_onnx import (
    EmbeddingConversionError,
    SafetensorsWeights,
    TorchBinWeights,
    convert_embedding,
    encoder_config,
    is_embedding_checkpoint,
)
from glm_edge_convert.embedding_onnx_graph import build_encoder
from tests.test_embed_sentences import SENTENCES


@pytest.fixture(scope="module")
def st_reference(minilm_checkpoint: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_checkpoint), device="cpu")
    return model.encode(SENTENCES, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def onnx_dirs(minilm_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("minilm")
    return {"fp32": convert_embedding(minilm_checkpoint, root / "fp32"),
            "int8": convert_embedding(minilm_checkpoint, root / "int8", int8=True)}


def _embed(folder: Path) -> np.ndarray:
    from glm_edge.embed import Embedder

    embedder = Embedder.load(folder, model_id="minilm", threads=2)
    try:
        return embedder.embed_sync(SENTENCES).vectors
    finally:
        embedder.close()


def test_sentences_are_about_a_hundred_and_mixed() -> None:
    assert 95 <= len(SENTENCES) <= 120
    assert any("\u4e00" <= ch <= "\u9fff" for s in SENTENCES for ch in s)


def test_folder_layout_and_config(onnx_dirs: dict[str, Path], minilm_checkpoint: Path) -> None:
    folder = onnx_dirs["fp32"]
    assert sorted(p.name for p in folder.iterdir()) == ["embedding.json", "model.onnx", "tokenizer.json"]
    cfg = json.loads((folder / "embedding.json").read_text())
    assert cfg["pooling"] == "mean" and cfg["normalize"] is True
    assert cfg["max_seq_length"] == 256 and cfg["dimensions"] == 384 and cfg["architecture"] == "bert"
    tok = json.loads((folder / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"] is None  # the checkpoint's fixed 128 padding is gone
    assert is_embedding_checkpoint(minilm_checkpoint) and not is_embedding_checkpoint(folder)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_fp32_parity_with_sentence_transformers(onnx_dirs: dict[str, Path], st_reference: np.ndarray) -> None:
    ours = _embed(onnx_dirs["fp32"])
    cosine = (ours * st_reference).sum(axis=1)
    assert cosine.min() >= 0.9999, f"worst sentence: {SENTENCES[int(cosine.argmin())]!r} at {cosine.min():.6f}"


def test_int8_parity_with_sentence_transformers(onnx_dirs: dict[str, Path], st_reference: np.ndarray) -> None:
    cfg = json.loads((onnx_dirs["int8"] / "embedding.json").read_text())
    assert cfg["quantization"] == "int8-dynamic"
    assert (onnx_dirs["int8"] / "model.onnx").stat().st_size < 0.85 * (onnx_dirs["fp32"] / "model.onnx").stat().st_size
    ours = _embed(onnx_dirs["int8"])
    cosine = (ours * st_reference).sum(axis=1)
    # dynamic int8 is least faithful on one-word inputs ("yes", "OK": 0.976); the mean is the criterion
    assert cosine.mean() >= 0.99, f"mean cosine {cosine.mean():.5f}"
    assert cosine.min() >= 0.97, f"worst sentence: {SENTENCES[int(cosine.argmin())]!r} at {cosine.min():.6f}"


# ------------------------------------------------------------------------ tiny random checkpoints


def _tiny_checkpoint(kind: str, root: Path, minilm_checkpoint: Path, **overrides: object) -> Path:
    import torch
    from transformers import BertConfig, BertModel, ErnieConfig, ErnieModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    common = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=80, attn_implementation="eager")
    common.update(overrides)
    if kind == "bert":
        model = BertModel(BertConfig(**common), add_pooling_layer=False)
    elif kind == "ernie":  # text2vec-base-chinese-paraphrase is an ERNIE 3.0 encoder with task-type embeddings
        model = ErnieModel(ErnieConfig(use_task_id=True, task_type_vocab_size=3, **common), add_pooling_layer=False)
    else:
        model = XLMRobertaModel(XLMRobertaConfig(pad_token_id=1, type_vocab_size=1, **common), add_pooling_layer=False)
    with torch.no_grad():  # make LayerNorm and biases non-trivial so that wiring mistakes show
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    folder = root / f"tiny-{kind}"
    model.eval().save_pretrained(folder, safe_serialization=True)
    shutil.copy(minilm_checkpoint / "tokenizer.json", folder / "tokenizer.json")
    return folder


def _reference_and_inputs(folder: Path, kind: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    rng = np.random.default_rng(1)
    lengths = [12, 7, 3, 12, 1]
    pad = 1 if kind == "xlm-roberta" else 0
    ids = np.full((len(lengths), max(lengths)), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, 30000, size=n)
        mask[row, :n] = 1
    types = np.zeros_like(ids)
    if kind in ("bert", "ernie"):
        types[0, 6:12] = 1  # a sentence pair: the token type table must be used
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.from_numpy(types)).last_hidden_state.numpy()
    return ref, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _masked_max_diff(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs((a - b) * mask[:, :, None]).max())


@pytest.mark.parametrize("kind,act", [("bert", "gelu"), ("xlm-roberta", "gelu"), ("bert", "gelu_new"),
                                      ("bert", "relu"), ("ernie", "gelu")])
def test_tiny_checkpoint_matches_transformers(kind: str, act: str, tmp_path: Path, minilm_checkpoint: Path) -> None:
    src = _tiny_checkpoint(kind, tmp_path, minilm_checkpoint, hidden_act=act)
    out = convert_embedding(src, tmp_path / "onnx")
    cfg = json.loads((out / "embedding.json").read_text())
    assert cfg["pooling"] == "cls" and cfg["normalize"] is False  # a bare HF encoder: CLS, no Normalize module
    assert cfg["max_seq_length"] == (80 - 2 if kind == "xlm-roberta" else 80)
    ref, feed = _reference_and_inputs(src, kind)
    fused = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = encoder_config(json.loads((src / "config.json").read_text()))
    plain_graph = build_encoder(enc, SafetensorsWeights([src / "model.safetensors"]), fused=False)
    assert not [n for n in plain_graph.graph.node if n.domain]  # standard ONNX ops only
    plain = ort.InferenceSession(plain_graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for session in (fused, plain):
        got = session.run(["last_hidden_state"], feed)[0]
        assert got.shape == ref.shape
        assert _masked_max_diff(got, ref, feed["attention_mask"]) < 1e-4


def test_xlmr_position_offset_has_teeth(tmp_path: Path, minilm_checkpoint: Path) -> None:
    """Building the XLM-R graph with BERT's position ids (no padding_idx offset) must fail the same check."""
    src = _tiny_checkpoint("xlm-roberta", tmp_path, minilm_checkpoint)
    cfg = encoder_config(json.loads((src / "config.json").read_text()))
    wrong = build_encoder(dataclasses.replace(cfg, architecture="bert"),
                          SafetensorsWeights([src / "model.safetensors"]))
    ref, feed = _reference_and_inputs(src, "xlm-roberta")
    session = ort.InferenceSession(wrong.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(["last_hidden_state"], feed)[0]
    assert _masked_max_diff(got, ref, feed["attention_mask"]) > 1e-2


def test_bf16_checkpoint_is_widened(tmp_path: Path, minilm_checkpoint: Path) -> None:
    import torch
    from safetensors.torch import save_file

    src = _tiny_checkpoint("bert", tmp_path, minilm_checkpoint)
    from safetensors.torch import load_file

    tensors = load_file(src / "model.safetensors")
    save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, src / "model.safetensors")
    weights = SafetensorsWeights([src / "model.safetensors"])
    name = "embeddings.word_embeddings.weight"
    expected = tensors[name].to(torch.bfloat16).to(torch.float32).numpy()
    assert weights(name).dtype == np.float32
    np.testing.assert_array_equal(weights(name), expected)


# ------------------------------------------------------------------------------------ failures


def test_failed_conversion_leaves_nothing(tmp_path: Path, minilm_checkpoint: Path) -> None:
    src = _tiny_checkpoint("bert", tmp_path, minilm_checkpoint)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(src / "model.safetensors")
    del tensors["encoder.layer.1.output.dense.weight"]
    save_file(tensors, src / "model.safetensors")
    out_root = tmp_path / "out"
    out_root.mkdir()
    with pytest.raises(EmbeddingConversionError, match="encoder.layer.1.output.dense.weight"):
        convert_embedding(src, out_root / "model")
    assert list(out_root.iterdir()) == []


def test_unsupported_and_missing_inputs(tmp_path: Path, minilm_checkpoint: Path) -> None:
    bad = tmp_path / "gpt"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (bad / "tokenizer.json").write_text("{}")
    with pytest.raises(EmbeddingConversionError, match="unsupported embedding architecture 'gpt2'") as info:
        convert_embedding(bad, tmp_path / "o1")
    assert isinstance(info.value, ConfigError)  # the CLI prints these as one line
    src = _tiny_checkpoint("bert", tmp_path, minilm_checkpoint)
    (src / "model.safetensors").rename(src / "pytorch_model.bin")  # not a torch zip archive
    with pytest.raises(EmbeddingConversionError, match="legacy"):
        convert_embedding(src, tmp_path / "o2")
    (src / "pytorch_model.bin").unlink()
    with pytest.raises(EmbeddingConversionError, match="no model.safetensors or pytorch_model.bin"):
        convert_embedding(src, tmp_path / "o2")
    with pytest.raises(EmbeddingConversionError, match="is not a folder"):
        convert_embedding(tmp_path / "nope", tmp_path / "o3")
    existing = tmp_path / "exists"
    existing.mkdir()
    with pytest.raises(EmbeddingConversionError, match="exists already"):
        convert_embedding(minilm_checkpoint, existing)


def test_pytorch_bin_and_vocab_txt_checkpoint(tmp_path: Path, minilm_checkpoint: Path) -> None:
    """A checkpoint like text2vec-large-chinese: pytorch_model.bin and vocab.txt only, read without torch."""
    import torch
    from safetensors.numpy import load_file
    from transformers import BertTokenizer

    src = _tiny_checkpoint("bert", tmp_path, minilm_checkpoint)
    tensors = load_file(src / "model.safetensors")
    state = {f"bert.{k}": torch.from_numpy(v.copy()) for k, v in tensors.items()}
    state["bert.embeddings.word_embeddings.weight"] = state["bert.embeddings.word_embeddings.weight"].half()
    torch.save(state, src / "pytorch_model.bin")
    (src / "model.safetensors").unlink()
    (src / "tokenizer.json").unlink()
    shutil.copy(minilm_checkpoint / "vocab.txt", src / "vocab.txt")
    shutil.copy(minilm_checkpoint / "tokenizer_config.json", src / "tokenizer_config.json")

    bin_weights = TorchBinWeights(src / "pytorch_model.bin")
    np.testing.assert_array_equal(bin_weights("encoder.layer.1.output.dense.weight"),
                                  tensors["encoder.layer.1.output.dense.weight"])
    assert bin_weights("embeddings.word_embeddings.weight").dtype == np.float32

    out = convert_embedding(src, tmp_path / "onnx")
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    slow = BertTokenizer(str(src / "vocab.txt"), do_lower_case=True)
    for text in ["Hello, World! naïve café", "北京是中国的首都。", "def f(x): return x**2", "I ❤️ NY 2024"]:
        assert ours.encode(text).ids == slow(text)["input_ids"], text

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array([ours.encode("a small check").ids], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    from transformers import BertModel

    ref_model = BertModel.from_pretrained(src, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = ref_model(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy()
    assert np.abs(session.run(["last_hidden_state"], feed)[0] - ref).max() < 1e-3  # fp16 word table in both


def test_torch_bin_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    import torch

    torch.save({"weights": torch.zeros(2), "evil": print}, tmp_path / "pytorch_model.bin")
    with pytest.raises(EmbeddingConversionError, match="refusing"):
        TorchBinWeights(tmp_path / "pytorch_model.bin")
