"""Reading an embedding checkpoint without torch: tensors from safetensors or from a PyTorch `.bin` zip archive
(through a restricted unpickler that only rebuilds tensors), and a tokenizer.json built from `vocab.txt` for
BERT checkpoints that ship no fast tokenizer (e.g. text2vec-large-chinese)."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from glm_edge.errors import ConfigError

_PREFIXES = ("bert.", "roberta.", "ernie.", "model.", "encoder_model.")

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
              "BF16": np.uint16}
_TORCH_STORAGES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
                   "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
                   "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


def strip_prefix(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _widen(array: np.ndarray, bf16: bool) -> np.ndarray:
    if bf16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32)


class EmbeddingConversionError(ConfigError, ValueError):
    """A checkpoint that cannot be converted; the message is one line a user can act on (the CLI prints it)."""


class SafetensorsWeights:
    """Tensors by name from one or more .safetensors files, as float32 numpy (bf16 widened by hand, which the
    safetensors numpy backend cannot do). Names are stripped of `bert.` / `roberta.` / `ernie.` prefixes."""

    def __init__(self, files: list[Path]) -> None:
        self._where: dict[str, tuple[Path, dict[str, Any], int]] = {}
        for path in files:
            with open(path, "rb") as f:
                header_len = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(header_len))
            for name, info in header.items():
                if name != "__metadata__":
                    self._where[strip_prefix(name)] = (path, info, 8 + header_len)

    def names(self) -> list[str]:
        return list(self._where)

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._where:
            raise EmbeddingConversionError(f"the checkpoint has no tensor '{name}' (is it a BERT / XLM-R encoder?)")
        path, info, data_start = self._where[name]
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise EmbeddingConversionError(f"tensor '{name}' has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        raw = np.fromfile(path, dtype=np.uint8, count=end - begin, offset=data_start + begin)
        return _widen(raw.view(dtype).reshape(info["shape"]), info["dtype"] == "BF16")


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles torch's `data.pkl` into numpy arrays. Only the classes a state dict needs are allowed, so a
    malicious pickle cannot run code."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._root = root

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        if module == "torch" and name in _TORCH_STORAGES:
            return name
        raise EmbeddingConversionError(f"pytorch_model.bin holds {module}.{name}, which a plain state dict does "
                                       "not; refusing it")

    def persistent_load(self, pid: Any) -> Any:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage":
            raise EmbeddingConversionError(f"unsupported persistent id {kind!r} in pytorch_model.bin")
        dtype = _TORCH_STORAGES.get(storage_type if isinstance(storage_type, str) else "")
        if dtype is None:
            raise EmbeddingConversionError(f"unsupported storage type {storage_type!r} in pytorch_model.bin")
        data = np.frombuffer(self._archive.read(f"{self._root}/data/{key}"), dtype=dtype, count=numel)
        return data, storage_type == "BFloat16Storage"


def _rebuild_tensor(storage: tuple[np.ndarray, bool], offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> np.ndarray:
    data, bf16 = storage
    if not size:
        view = data[offset:offset + 1].reshape(())
    else:
        step = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(data[offset:], shape=tuple(size),
                                               strides=tuple(x * step for x in stride))
    if bf16 or data.dtype.kind == "f":
        return _widen(np.array(view), bf16)
    return np.array(view)


class TorchBinWeights:
    """Tensors from a PyTorch `pytorch_model.bin` (the zip format of torch >= 1.6) without importing torch."""

    def __init__(self, path: Path) -> None:
        if not zipfile.is_zipfile(path):
            raise EmbeddingConversionError(f"{path} is in torch's legacy (pre-1.6) format; re-save it with torch "
                                           "or use safetensors")
        with zipfile.ZipFile(path) as archive:
            pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise EmbeddingConversionError(f"{path} has no data.pkl; it is not a torch checkpoint")
            root = pkl.rsplit("/", 1)[0] if "/" in pkl else ""
            with archive.open(pkl) as f:
                state = _TensorUnpickler(f, archive, root).load()
        if not isinstance(state, dict):
            raise EmbeddingConversionError(f"{path} does not hold a state dict")
        self._tensors = {strip_prefix(k): v for k, v in state.items() if isinstance(v, np.ndarray)}

    def names(self) -> list[str]:
        return list(self._tensors)

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._tensors:
            raise EmbeddingConversionError(f"the checkpoint has no tensor '{name}' (is it a BERT / XLM-R encoder?)")
        return self._tensors[name]


def load_weights(model_dir: Path) -> Callable[[str], np.ndarray]:
    """safetensors (one file or shards) first, else pytorch_model.bin read without torch."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        missing = [s for s in shards if not (model_dir / s).exists()]
        if missing:
            raise EmbeddingConversionError(f"missing safetensors shard(s) in {model_dir}: {', '.join(missing)}")
        return SafetensorsWeights([model_dir / s for s in shards])
    if (model_dir / "model.safetensors").exists():
        return SafetensorsWeights([model_dir / "model.safetensors"])
    if (model_dir / "pytorch_model.bin").exists():
        return TorchBinWeights(model_dir / "pytorch_model.bin")
    raise EmbeddingConversionError(f"no model.safetensors or pytorch_model.bin in {model_dir}")


def tokenizer_from_vocab(vocab: Path, tokenizer_config: dict[str, Any], out: Path) -> None:
    """A BERT WordPiece tokenizer.json from vocab.txt, configured as transformers' BertTokenizer would be."""
    from tokenizers.implementations import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(
        str(vocab),
        lowercase=bool(tokenizer_config.get("do_lower_case", True)),
        strip_accents=tokenizer_config.get("strip_accents"),
        handle_chinese_chars=bool(tokenizer_config.get("tokenize_chinese_chars", True)),
        clean_text=True,
    )
    tok.save(str(out))
