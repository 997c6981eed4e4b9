"""Multi-GPU placement settings (split_mode, tensor_split, main_gpu, devices, rpc): validated in Settings and
carried, unchanged, into the real `llama_model_params` llama.cpp loads the model with (on the CPU here)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from pydantic import ValidationError

from glm_edge.engine import model as model_mod
from glm_edge.engine.model import RPC_BUILD_HINT, add_rpc_servers, model_params, use_devices
from glm_edge.errors import ConfigError
from glm_edge.settings import Settings


def _shares(params: llama_cpp.llama_model_params) -> list[float]:
    if not params.tensor_split:
        return []
    return [params.tensor_split[i] for i in range(int(llama_cpp.llama_max_devices()))]


def test_model_params_fill_the_llama_struct() -> None:
    params, keep = model_params(n_gpu_layers=7, main_gpu=1, split_mode="row", tensor_split=[3.0, 1.0])
    assert isinstance(params, llama_cpp.llama_model_params)
    assert params.n_gpu_layers == 7 and params.main_gpu == 1
    assert params.split_mode == llama_cpp.LLAMA_SPLIT_MODE_ROW == 2
    shares = _shares(params)
    assert len(shares) == llama_cpp.llama_max_devices() == 16  # llama.cpp reads that many floats
    assert shares[:2] == [3.0, 1.0] and set(shares[2:]) == {0.0}
    assert keep is not None
    params, keep = model_params(n_gpu_layers=0, split_mode="none")
    assert params.split_mode == llama_cpp.LLAMA_SPLIT_MODE_NONE and not params.tensor_split and keep is None
    assert model_params(n_gpu_layers=0)[0].split_mode == llama_cpp.LLAMA_SPLIT_MODE_LAYER  # llama.cpp's default


@pytest.mark.parametrize("kwargs, message", [
    ({"split_mode": "column"}, "unknown split mode"),
    ({"main_gpu": -1}, "main_gpu"),
    ({"tensor_split": [1.0] * 17}, "at most 16"),
    ({"tensor_split": [1.0, -0.5]}, "non-negative"),
    ({"tensor_split": [0.0, 0.0]}, "non-negative"),
    ({"tensor_split": [float("nan")]}, "non-negative"),
])
def test_model_params_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_params(n_gpu_layers=0, **kwargs)


def test_settings_reach_the_loaded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings -> load_chat -> LlamaEngine -> LlamaModel -> the llama_model_params llama.cpp really loads with."""
    from glm_edge.defaults import embedded_chat_gguf
    from glm_edge.engine.llama_engine import LlamaEngine

    seen: list[dict[str, Any]] = []
    real_load = llama_cpp.llama_model_load_from_file

    def capture(path: bytes, params: llama_cpp.llama_model_params) -> Any:
        seen.append({"split_mode": params.split_mode, "main_gpu": params.main_gpu,
                     "n_gpu_layers": params.n_gpu_layers, "tensor_split": _shares(params)[:2]})
        return real_load(path, params)

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", capture)
    gguf = embedded_chat_gguf("smollm2-135m-instruct")
    settings = Settings(split_mode="none", tensor_split=[1.0, 0.0], main_gpu=0, n_gpu_layers=0)
    engine = LlamaEngine(str(gguf), n_ctx=256, n_parallel=1, n_batch=32, n_gpu_layers=settings.n_gpu_layers,
                         main_gpu=settings.main_gpu, split_mode=settings.split_mode,
                         tensor_split=settings.tensor_split).start()
    engine.close()
    assert seen == [{"split_mode": 0, "main_gpu": 0, "n_gpu_layers": 0, "tensor_split": [1.0, 0.0]}]

    # the loader hands the settings to the engine as they are
    import glm_edge.engine.llama_engine as engine_mod
    from glm_edge.loader import load_chat
    from glm_edge.resolve import resolve_chat

    given: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_engine(path: str, **kwargs: Any) -> Any:
        given.update(kwargs)
        raise Stop

    monkeypatch.setattr(engine_mod, "LlamaEngine", fake_engine)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    settings = Settings(model="smollm2-135m-instruct", split_mode="row", tensor_split="3,1", main_gpu=1,
                        devices="2,3", rpc="10.0.0.2:50052")
    with pytest.raises(Stop):
        load_chat(resolve_chat(settings.model), settings)
    assert given["split_mode"] == "row" and given["tensor_split"] == [3.0, 1.0] and given["main_gpu"] == 1
    assert given["rpc_servers"] == ["10.0.0.2:50052"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"  # set before llama.cpp starts CUDA


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_EDGE_SPLIT_MODE", "row")
    monkeypatch.setenv("GLM_EDGE_TENSOR_SPLIT", "0.6, 0.4")
    monkeypatch.setenv("GLM_EDGE_MAIN_GPU", "1")
    monkeypatch.setenv("GLM_EDGE_DEVICES", "0,1")
    monkeypatch.setenv("GLM_EDGE_RPC", "10.0.0.2:50052,worker-b:50052")
    settings = Settings()
    assert settings.split_mode == "row" and settings.tensor_split == [0.6, 0.4] and settings.main_gpu == 1
    assert settings.devices == "0,1" and settings.rpc == ["10.0.0.2:50052", "worker-b:50052"]
    assert Settings().split_mode == "row"
    monkeypatch.delenv("GLM_EDGE_SPLIT_MODE")
    for key in ("GLM_EDGE_TENSOR_SPLIT", "GLM_EDGE_MAIN_GPU", "GLM_EDGE_DEVICES", "GLM_EDGE_RPC"):
        monkeypatch.delenv(key)
    assert Settings().split_mode == "layer" and Settings().tensor_split == [] and Settings().rpc == []


@pytest.mark.parametrize("kwargs, message", [
    ({"split_mode": "column"}, "split_mode"),
    ({"tensor_split": "1,-1"}, "non-negative"),
    ({"tensor_split": "0,0"}, "add up to 0"),
    ({"tensor_split": ",".join(["1"] * 17)}, "at most 16"),
    ({"tensor_split": "a,b"}, "tensor_split"),
    ({"main_gpu": -1}, "main_gpu"),
    ({"devices": "0;1"}, "devices"),
    ({"devices": "0", "tensor_split": "1,1"}, "2 shares for 1 devices"),
    ({"devices": "0,1", "main_gpu": 2}, "main_gpu 2 is not one of the 2 devices"),
    ({"rpc": "10.0.0.2"}, "not HOST:PORT"),
    ({"rpc": "10.0.0.2:port"}, "not HOST:PORT"),
    ({"rpc": ":50052"}, "not HOST:PORT"),
])
def test_settings_refuse_bad_placement(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**kwargs)


@pytest.mark.parametrize("args, message", [
    (["--tensor-split=1,-1"], "non-negative"),
    (["--split-mode", "column"], "column"),
    (["--devices", "0", "--tensor-split", "1,1"], "2 shares for 1 devices"),
    (["--rpc", "nohost"], "not HOST:PORT"),
])
def test_serve_refuses_bad_placement_in_one_line(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "glm_edge_cli.cli", "serve", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # click's usage lines may come first
    assert last.startswith("Error:") and message in last, result.stderr


def test_serve_help_documents_placement() -> None:
    from click.testing import CliRunner

    from glm_edge_cli.cli import main

    output = CliRunner().invoke(main, ["serve", "--help"]).output
    for flag in ("--split-mode", "--tensor-split", "--main-gpu", "--devices", "--rpc", "GLM_EDGE_RPC",
                 "build-llama-rpc.sh"):
        assert flag in output, flag


def test_use_devices_sets_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    use_devices(None)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    use_devices(" 1, 2 ")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"


@pytest.mark.skipif(bool(llama_cpp.llama_supports_rpc()), reason="this llama.cpp has RPC: tests/test_rpc.py")
def test_rpc_refused_without_an_rpc_build(tmp_path: Path) -> None:
    """The stock wheel has no RPC backend: one clear line that says how to get one, never a silent CPU run."""
    with pytest.raises(ConfigError) as info:
        add_rpc_servers(["127.0.0.1:50052"])
    assert str(info.value) == RPC_BUILD_HINT and "scripts/build-llama-rpc.sh" in RPC_BUILD_HINT
    add_rpc_servers([])  # no workers: nothing to refuse
    from tests.server_process import free_port

    result = subprocess.run([sys.executable, "-m", "glm_edge_cli.cli", "serve", "smollm2-135m-instruct",
                             "--no-embedding", "--port", str(free_port()), "--rpc", "127.0.0.1:50052"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # the server's log lines come first
    assert last.startswith("Error:") and "scripts/build-llama-rpc.sh" in last, result.stderr


def test_ggml_libraries_are_the_loaded_ones() -> None:
    """add_rpc_servers talks to the libggml next to the libllama llama-cpp-python loaded (LLAMA_CPP_LIB_PATH)."""
    lib = model_mod._ggml_lib("ggml")
    assert isinstance(lib, ctypes.CDLL) and hasattr(lib, "ggml_backend_reg_by_name")
