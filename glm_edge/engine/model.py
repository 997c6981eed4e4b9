"""A loaded GGUF model and its vocabulary, through llama-cpp-python's low-level bindings.

Everything here only reads the model and the vocabulary, which llama.cpp allows from any thread, so the
API layer may tokenize on the event loop while the decode thread runs.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import socket
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Callable

import llama_cpp

from glm_edge.errors import ConfigError, InvalidRequestError

_backend_lock = threading.Lock()
_backend_ready = False

llama_log = logging.getLogger("glm_edge.llama_cpp")
# ggml_log_level: NONE=0 DEBUG=1 INFO=2 WARN=3 ERROR=4 CONT=5 (llama-cpp-python 0.3.36's own callback maps
# these off by one and prints every warning as an error, so we install ours)
_LOG_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_last_log_level = logging.DEBUG


def _log_to_python(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _last_log_level
    lvl = _last_log_level if level == 5 else _LOG_LEVELS.get(level, logging.DEBUG)
    _last_log_level = lvl
    if llama_log.isEnabledFor(lvl):
        message = text.decode("utf-8", errors="replace").rstrip("\n")
        if message:
            llama_log.log(lvl, message)


_log_callback = llama_cpp.llama_log_callback(_log_to_python)  # kept alive here: llama.cpp holds the pointer


def init_backend(verbose: bool = False) -> None:
    """Initialise llama.cpp once per process; its log goes to the `glm_edge.llama_cpp` logger
    (errors only unless `verbose`)."""
    global _backend_ready
    llama_log.setLevel(logging.DEBUG if verbose else logging.ERROR)
    with _backend_lock:
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


# llama.cpp applies no Unicode normalizer. The tokenizers behind these pre-tokenizers NFC-normalize first
# (Qwen2/2.5's tokenizer.json: "normalizer": {"type": "NFC"}), so their text is normalized before llama.cpp.
NFC_PRE_TOKENIZERS = frozenset({"qwen2"})


def supports_gpu_offload() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


# --- where the weights go: GPUs, the split between them, RPC workers --------------------------------------------

SPLIT_MODES = {"none": llama_cpp.LLAMA_SPLIT_MODE_NONE, "layer": llama_cpp.LLAMA_SPLIT_MODE_LAYER,
               "row": llama_cpp.LLAMA_SPLIT_MODE_ROW}

RPC_BUILD_HINT = ("this llama.cpp has no RPC backend (llama_supports_rpc() is false): build one with "
                  "scripts/build-llama-rpc.sh and start glm-edge with LLAMA_CPP_LIB_PATH=<its lib folder>")


def use_devices(devices: str | None) -> None:
    """Choose the CUDA devices the way CUDA_VISIBLE_DEVICES does. CUDA reads the variable once, when ggml's CUDA
    backend first counts devices, so this must run before any model is loaded in the process."""
    if devices is None:
        return
    value = ",".join(d.strip() for d in devices.split(",") if d.strip())
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if _backend_ready and current != value:
        llama_log.warning("devices %s chosen after llama.cpp started; CUDA may still see %s", value,
                          current if current is not None else "all devices")
    os.environ["CUDA_VISIBLE_DEVICES"] = value


_rpc_registered: set[str] = set()
_rpc_lock = threading.Lock()


def _ggml_lib(name: str) -> ctypes.CDLL:
    """One of the ggml libraries next to the libllama llama-cpp-python loaded (the same, already mapped copy)."""
    base = Path(getattr(llama_cpp.llama_cpp, "_base_path", Path(llama_cpp.__file__).parent / "lib"))
    return ctypes.CDLL(str(base / f"lib{name}.so"))


def _probe_rpc(endpoint: str, timeout: float = 5.0) -> None:
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"RPC worker {endpoint} does not answer ({exc}); is rpc-server running there, and "
                          "reachable?") from None


def add_rpc_servers(endpoints: list[str]) -> None:
    """Register llama.cpp rpc-server workers as devices, as llama-server's `--rpc` does (common/arg.cpp,
    add_rpc_devices): look the RPC backend up by name, get its `ggml_backend_rpc_add_server`, register the
    backend it returns. Each endpoint once per process; raises ConfigError without RPC or when a worker does
    not answer."""
    if not endpoints:
        return
    if not llama_cpp.llama_supports_rpc():
        raise ConfigError(RPC_BUILD_HINT)
    init_backend()
    ggml = _ggml_lib("ggml")
    ggml.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    ggml.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    ggml.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ggml.ggml_backend_register.restype = None
    ggml.ggml_backend_register.argtypes = [ctypes.c_void_p]
    with _rpc_lock:
        rpc_reg = ggml.ggml_backend_reg_by_name(b"RPC")
        if not rpc_reg:
            raise ConfigError(RPC_BUILD_HINT)
        address = ggml.ggml_backend_reg_get_proc_address(rpc_reg, b"ggml_backend_rpc_add_server")
        if not address:
            raise ConfigError("llama.cpp's RPC backend has no ggml_backend_rpc_add_server")
        add_server = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(address)
        for endpoint in endpoints:
            if endpoint in _rpc_registered:
                continue
            _probe_rpc(endpoint)  # llama.cpp aborts the process when it cannot connect: look first
            reg = add_server(endpoint.encode())
            if not reg:
                raise ConfigError(f"RPC worker {endpoint} does not answer (is rpc-server running there, "
                                  "and reachable?)")
            ggml.ggml_backend_register(reg)
            _rpc_registered.add(endpoint)
            llama_log.info("RPC worker %s registered", endpoint)


def model_params(*, n_gpu_layers: int, main_gpu: int = 0, split_mode: str = "layer",
                 tensor_split: list[float] | None = None,
                 vocab_only: bool = False) -> tuple[llama_cpp.llama_model_params, object]:
    """llama.cpp's model parameters, and the buffer `tensor_split` points into (keep it alive until the model is
    loaded; llama.cpp copies it)."""
    if split_mode not in SPLIT_MODES:
        raise ConfigError(f"unknown split mode {split_mode!r} (use none, layer or row)")
    if main_gpu < 0:
        raise ConfigError(f"main_gpu must be 0 or more, not {main_gpu}")
    shares = list(tensor_split or [])
    max_devices = int(llama_cpp.llama_max_devices())
    if len(shares) > max_devices:
        raise ConfigError(f"tensor_split has {len(shares)} shares; this llama.cpp takes at most {max_devices}")
    if any(not math.isfinite(x) or x < 0 for x in shares) or (shares and sum(shares) <= 0):
        raise ConfigError(f"tensor_split needs non-negative shares, at least one above 0: {shares}")
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = n_gpu_layers
    params.main_gpu = main_gpu
    params.split_mode = SPLIT_MODES[split_mode]
    keep: object = None
    if shares:
        array = (ctypes.c_float * max_devices)(*shares)  # the rest 0: llama.cpp reads llama_max_devices() floats
        params.tensor_split = ctypes.cast(array, ctypes.POINTER(ctypes.c_float))
        keep = array
    params.vocab_only = vocab_only  # tokenizer and metadata only: no weights read
    return params, keep


class LlamaModel:
    """Weights + vocabulary. Owns the `llama_model`; free with `close()`."""

    def __init__(self, path: str | Path, *, n_gpu_layers: int = -1, main_gpu: int = 0, split_mode: str = "layer",
                 tensor_split: list[float] | None = None, rpc_servers: list[str] | None = None,
                 vocab_only: bool = False, verbose: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}")
        init_backend(verbose)
        add_rpc_servers(list(rpc_servers or []))
        if n_gpu_layers < 0:
            # "all": GPUs and RPC workers are offload devices (an RPC build says it supports offload even without
            # workers; llama.cpp then keeps the layers on the CPU)
            n_gpu_layers = 999 if supports_gpu_offload() else 0
        params, keep = model_params(n_gpu_layers=n_gpu_layers, main_gpu=main_gpu, split_mode=split_mode,
                                    tensor_split=tensor_split, vocab_only=vocab_only)
        self.path = str(path)
        self.n_gpu_layers = n_gpu_layers
        self.split_mode = split_mode
        model = llama_cpp.llama_model_load_from_file(self.path.encode(), params)
        del keep
        if not model:
            raise ConfigError(f"llama.cpp could not load {path} (not a GGUF model, or an unsupported architecture)")
        self.model = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.n_swa = int(llama_cpp.llama_model_n_swa(model))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self._piece_cache = lru_cache(maxsize=65536)(self._piece_uncached)
        self._eog = lru_cache(maxsize=None)(self._is_eog_uncached)
        self.nfc = self.metadata().get("tokenizer.ggml.pre") in NFC_PRE_TOKENIZERS

    # --- vocabulary -------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        if self.nfc:
            text = unicodedata.normalize("NFC", text)
        data = text.encode("utf-8")
        n_max = len(data) + 8
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        if n < 0:  # buffer too small: -n is the size needed
            n_max = -n
            buf = (llama_cpp.llama_token * n_max)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
            if n < 0:
                raise InvalidRequestError("the text could not be tokenized")
        return list(buf[:n])

    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """The bytes of one token (special tokens rendered as their text when `special`)."""
        return self._piece_cache(int(token_id), bool(special))

    def _piece_uncached(self, token_id: int, special: bool) -> bytes:
        if not 0 <= token_id < self.n_vocab:
            raise InvalidRequestError(f"token id {token_id} is outside the vocabulary (0..{self.n_vocab - 1})")
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token_id, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token_id, buf, -n, 0, special)
        return buf.raw[:n]

    def detokenize(self, token_ids: list[int], *, special: bool = False) -> str:
        if not token_ids:
            return ""
        for t in token_ids:
            if not 0 <= int(t) < self.n_vocab:
                raise InvalidRequestError(f"token id {t} is outside the vocabulary (0..{self.n_vocab - 1})")
        arr = (llama_cpp.llama_token * len(token_ids))(*token_ids)
        size = max(64, 16 * len(token_ids))
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(self.vocab, arr, len(token_ids), buf, size, False, special)
        if n < 0:
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(self.vocab, arr, len(token_ids), buf, size, False, special)
        return buf.raw[:n].decode("utf-8", errors="replace")

    def is_eog(self, token_id: int) -> bool:
        return self._eog(int(token_id))

    def _is_eog_uncached(self, token_id: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token_id))

    def is_control(self, token_id: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_control(self.vocab, token_id))

    def eos_token_id(self) -> int:
        return int(llama_cpp.llama_vocab_eos(self.vocab))

    def bos_token_id(self) -> int:
        return int(llama_cpp.llama_vocab_bos(self.vocab))

    def eot_token_id(self) -> int:
        return int(llama_cpp.llama_vocab_eot(self.vocab))

    # --- metadata ---------------------------------------------------------------------------------

    def metadata(self) -> dict[str, str]:
        """All GGUF key/values as strings (arrays are summarised by llama.cpp; the chat template is whole)."""
        out: dict[str, str] = {}
        count = int(llama_cpp.llama_model_meta_count(self.model))
        for i in range(count):
            key = self._meta_string(llama_cpp.llama_model_meta_key_by_index, i)
            out[key] = self._meta_string(llama_cpp.llama_model_meta_val_str_by_index, i)
        template = llama_cpp.llama_model_chat_template(self.model, None)
        if template:
            out["tokenizer.chat_template"] = template.decode("utf-8", errors="replace")
        return out

    def _meta_string(self, fn: Callable[[llama_cpp.llama_model_p, int, ctypes.Array[ctypes.c_char], int], int],
                     i: int) -> str:
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = fn(self.model, i, buf, size)
            if n < 0:
                return ""
            if n < size:
                return buf.value.decode("utf-8", errors="replace")
            size = n + 1

    def description(self) -> str:
        buf = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(self.model, buf, 256)
        return buf.value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if getattr(self, "model", None):
            llama_cpp.llama_model_free(self.model)
            self.model = None
