"""glm_edge.hub against a loopback stand-in of the hub: the real huggingface_hub code path, resume included.

huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE when it is imported, so each download runs in a fresh Python
process with the environment set, exactly as `glm-edge download` would; the stand-in runs in the test process and
records every request.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glm_edge.errors import ConfigError
from glm_edge.hub import available_quants, checkpoint_patterns, local_dir_for, matching_files, select_gguf
from tests.hub_standin import HubStandin, StandinRepo

MiB = 1024 * 1024
RUNNER = """
import json, sys
from pathlib import Path
from glm_edge.errors import ConfigError
from glm_edge.hub import download
args, kwargs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if kwargs.get("dest"):
    kwargs["dest"] = Path(kwargs["dest"])
try:
    path = download(*args, **kwargs)
except ConfigError as exc:
    print("CONFIG-ERROR " + json.dumps(str(exc)))
    sys.exit(1)
print("PATH " + str(path))
"""


def _bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # the catalog's all-MiniLM-L6-v2 repo
MINILM_FILES = {
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": _bytes(5000, 1),
    "pytorch_model.bin": _bytes(4000, 2),
    "tf_model.h5": _bytes(4000, 3),
    "rust_model.ot": _bytes(4000, 4),
    "onnx/model.onnx": _bytes(3000, 5),
    "openvino/openvino_model.bin": _bytes(3000, 6),
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b"{}",
    "special_tokens_map.json": b"{}",
    "vocab.txt": b"[PAD]\n[UNK]\n",
    "modules.json": b"[]",
    "sentence_bert_config.json": b'{"max_seq_length": 256}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "README.md": b"# all-MiniLM-L6-v2",
    "train_script.py": b"print('train')",
    ".gitattributes": b"*.bin filter=lfs",
}
MINILM_WANTED = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt", "modules.json", "sentence_bert_config.json",
                 "1_Pooling/config.json"}

R1_GGUF = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"  # the catalog's gguf_repo of DeepSeek-R1-Distill-Qwen-1.5B
R1_GGUF_FILES = {
    "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf": _bytes(6000, 10),
    "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_S.gguf": _bytes(5000, 11),
    "DeepSeek-R1-Distill-Qwen-1.5B-IQ4_XS.gguf": _bytes(5000, 12),
    "DeepSeek-R1-Distill-Qwen-1.5B-Q8_0.gguf": _bytes(7000, 13),
    "DeepSeek-R1-Distill-Qwen-1.5B-f16/DeepSeek-R1-Distill-Qwen-1.5B-f16-00001-of-00002.gguf": _bytes(4000, 14),
    "DeepSeek-R1-Distill-Qwen-1.5B-f16/DeepSeek-R1-Distill-Qwen-1.5B-f16-00002-of-00002.gguf": _bytes(3000, 15),
    "README.md": b"# GGUF",
}

BIG = "acme/big-model"
BIG_FILES = {"config.json": b'{"model_type": "qwen2"}', "model.safetensors": _bytes(24 * MiB, 20)}

SHARDED = "acme/sharded-model"
SHARDED_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "model.safetensors.index.json": b'{"weight_map": {}}',
    "model-00001-of-00002.safetensors": _bytes(2 * MiB, 30),
    "model-00002-of-00002.safetensors": _bytes(24 * MiB, 31),
}

GATED = "acme/gated-model"
GATED_TOKEN = "hf_standin_token"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubStandin]:
    repos = {
        MINILM: StandinRepo(dict(MINILM_FILES)),
        R1_GGUF: StandinRepo(dict(R1_GGUF_FILES)),
        BIG: StandinRepo(dict(BIG_FILES)),
        SHARDED: StandinRepo(dict(SHARDED_FILES)),
        GATED: StandinRepo({"config.json": b"{}", "model.safetensors": _bytes(3000, 40)}, gated_token=GATED_TOKEN),
    }
    with HubStandin(repos) as standin:
        yield standin


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        self.stdout, self.stderr = proc.stdout, proc.stderr
        lines = proc.stdout.splitlines()
        self.path = Path(lines[-1][5:]) if lines and lines[-1].startswith("PATH ") else None
        self.error = (json.loads(lines[-1][len("CONFIG-ERROR "):])
                      if lines and lines[-1].startswith("CONFIG-ERROR ") else None)

    def ok(self) -> Path:
        assert self.proc.returncode == 0 and self.path is not None, self.stdout + self.stderr
        return self.path

    def failed(self) -> str:
        assert self.proc.returncode == 1 and self.error is not None, self.stdout + self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        assert "\n" not in self.error
        return self.error


@pytest.fixture
def download(tmp_path: Path, hub: HubStandin):
    """Run glm_edge.hub.download(*args, **kwargs) in a fresh process against the stand-in."""

    def run(*args: str, endpoint: str | None = None, env: dict[str, str] | None = None, **kwargs: object) -> Run:
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith("HF_") and k not in ("HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE")}
        environ.update({
            "HF_ENDPOINT": endpoint or hub.endpoint,
            "HF_HOME": str(tmp_path / "hf-home"),
            "GLM_EDGE_MODELS_DIR": str(tmp_path / "models"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "NO_PROXY": "*",
        })
        environ.update(env or {})
        proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(args), json.dumps(kwargs, default=str)],
                              env=environ, capture_output=True, text=True, timeout=120)
        return Run(proc)

    return run


def _files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and ".cache" not in p.relative_to(folder).parts}


# ------------------------------------------------------------------------------- downloads through the hub


def test_catalog_id_downloads_only_the_files_its_kind_needs(download, hub: HubStandin, tmp_path: Path) -> None:
    folder = download("all-MiniLM-L6-v2").ok()
    assert folder == tmp_path / "models" / "all-MiniLM-L6-v2"
    assert _files_in(folder) == MINILM_WANTED
    for name in MINILM_WANTED:
        assert (folder / name).read_bytes() == MINILM_FILES[name], name
    for name in set(MINILM_FILES) - MINILM_WANTED:  # never even requested
        assert not hub.blob_requests(MINILM, name), name

    # A second run finds everything in place and fetches no bytes again.
    before = sum(len(hub.blob_requests(MINILM, name)) for name in MINILM_FILES)
    assert download("all-MiniLM-L6-v2", progress=False).ok() == folder
    assert sum(len(hub.blob_requests(MINILM, name)) for name in MINILM_FILES) == before


def test_unknown_repo_gets_checkpoint_files_into_owner_name_folder(download, tmp_path: Path) -> None:
    folder = download(BIG, progress=False).ok()
    assert folder == tmp_path / "models" / "acme--big-model"
    assert _files_in(folder) == set(BIG_FILES)


def test_gguf_quant_from_the_catalog_gguf_repo(download, hub: HubStandin, tmp_path: Path) -> None:
    path = download("DeepSeek-R1-Distill-Qwen-1.5B", gguf="q4_k_m").ok()
    assert path == tmp_path / "models" / "DeepSeek-R1-Distill-Qwen-1.5B" / "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
    assert path.read_bytes() == R1_GGUF_FILES[path.name]
    assert _files_in(path.parent) == {path.name}  # not Q4_K_S, not the others


def test_gguf_split_file_downloads_every_part(download, tmp_path: Path) -> None:
    path = download(R1_GGUF, gguf="F16", dest=str(tmp_path / "ggufs")).ok()
    parts = sorted(name for name in R1_GGUF_FILES if "-f16-" in name)
    assert path == tmp_path / "ggufs" / parts[0]
    assert _files_in(tmp_path / "ggufs") == set(parts)
    for name in parts:
        assert (tmp_path / "ggufs" / name).read_bytes() == R1_GGUF_FILES[name]


def test_unknown_quant_lists_the_available_ones(download) -> None:
    error = download("DeepSeek-R1-Distill-Qwen-1.5B", gguf="Q3_K_S").failed()
    assert error == (f"no GGUF file for quant 'Q3_K_S' in {R1_GGUF}; available: F16, IQ4_XS, Q4_K_M, Q4_K_S, Q8_0")


def test_gguf_repo_without_gguf_option_says_to_add_it(download) -> None:
    error = download(R1_GGUF).failed()
    assert "no files in" in error and "add --gguf with one of F16, IQ4_XS, Q4_K_M, Q4_K_S, Q8_0" in error


# ------------------------------------------------------------------------------------------------ resume


def test_broken_connection_resumes_with_a_range_request(download, hub: HubStandin) -> None:
    # huggingface_hub writes in 10 MiB chunks: cut after 12 MiB, so one whole chunk is on disk when the connection
    # drops; the rest is then asked for with `Range: bytes=10485760-`. huggingface_hub 2.x does that within the same
    # run; 1.x stops the run (one clear line) and keeps its .incomplete file, which the next run resumes.
    hub.cut_after[f"{BIG}/model.safetensors"] = [12 * MiB]
    mark = hub.mark()
    run = download(BIG)
    if run.proc.returncode != 0:
        assert run.failed().startswith(f"downloading {BIG} was interrupted (RemoteProtocolError")
        run = download(BIG)
    else:
        assert "Trying to resume download" in run.stderr  # huggingface_hub's own resume, not ours
    folder = run.ok()
    gets = hub.blob_requests(BIG, "model.safetensors", since=mark)
    assert [get.headers.get("range") for get in gets] == [None, f"bytes={10 * MiB}-"]
    assert _sha((folder / "model.safetensors").read_bytes()) == _sha(BIG_FILES["model.safetensors"])
    assert not list(folder.rglob("*.incomplete"))


def test_interrupted_run_fails_clearly_and_the_next_run_completes(download, hub: HubStandin) -> None:
    big = "model-00002-of-00002.safetensors"
    # The connection drops after 12 MiB, then every retry drops before sending a byte: the library gives up.
    hub.cut_after[f"{SHARDED}/{big}"] = [12 * MiB] + [0] * 6
    mark = hub.mark()
    error = download(SHARDED, progress=False).failed()
    assert error.startswith(f"downloading {SHARDED} was interrupted (RemoteProtocolError")
    assert error.endswith("run the same command again to continue (complete files are kept)")
    ranges = [get.headers.get("range") for get in hub.blob_requests(SHARDED, big, since=mark)]
    assert ranges[0] is None and set(ranges[1:]) <= {f"bytes={10 * MiB}-"}
    small = "model-00001-of-00002.safetensors"
    assert len(hub.blob_requests(SHARDED, small, since=mark)) == 1

    hub.cut_after.clear()
    mark = hub.mark()
    folder = download(SHARDED).ok()
    assert _files_in(folder) == set(SHARDED_FILES)
    for name, data in SHARDED_FILES.items():
        assert _sha((folder / name).read_bytes()) == _sha(data), name
    assert hub.blob_requests(SHARDED, small, since=mark) == []  # the shard that was complete is kept
    assert not list(folder.rglob("*.incomplete"))


# ------------------------------------------------------------------------------------------------- errors


def test_unknown_repo_is_one_clear_line(download, hub: HubStandin) -> None:
    error = download("acme/no-such-model").failed()
    assert error == (f"repository acme/no-such-model not found on {hub.endpoint} "
                     f"(if it is private or gated, set HF_TOKEN)")


def test_unknown_revision_is_one_clear_line(download, hub: HubStandin) -> None:
    error = download(BIG, revision="v9").failed()
    assert error == f"revision 'v9' not found in {BIG} on {hub.endpoint}"


def test_unknown_catalog_id_is_one_clear_line(download) -> None:
    error = download("glm-99").failed()
    assert error.startswith("unknown model 'glm-99': give a catalog id (") and "glm-4-9b-chat" in error


def test_unreachable_endpoint_is_one_clear_line(download) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
    error = download(BIG, endpoint=endpoint).failed()
    assert error.startswith(f"downloading {BIG}: cannot reach the hub at {endpoint} (set HF_ENDPOINT")


def test_server_error_on_a_file_is_one_clear_line(download, hub: HubStandin) -> None:
    name = "DeepSeek-R1-Distill-Qwen-1.5B-Q8_0.gguf"
    hub.fail_status[f"{R1_GGUF}/{name}"] = [503]
    error = download(R1_GGUF, gguf="Q8_0").failed()
    assert error.startswith(f"downloading {R1_GGUF}: the hub at {hub.endpoint} answered HTTP 503")
    assert download(R1_GGUF, gguf="Q8_0").ok().read_bytes() == R1_GGUF_FILES[name]


def test_gated_repo_needs_hf_token(download, hub: HubStandin) -> None:
    error = download(GATED).failed()
    assert error.startswith(f"{GATED} is gated") and "HF_TOKEN" in error
    folder = download(GATED, env={"HF_TOKEN": GATED_TOKEN}).ok()
    assert _files_in(folder) == {"config.json", "model.safetensors"}
    # The token goes to the hub, never to the CDN host the file redirects to.
    cdn_gets = hub.blob_requests(GATED, "model.safetensors")
    assert cdn_gets and all("authorization" not in get.headers for get in cdn_gets)
    heads = [r for r in hub.requests if r.method == "HEAD" and GATED in r.path]
    assert heads[-1].headers.get("authorization") == f"Bearer {GATED_TOKEN}"


def test_offline_mode_uses_what_is_there_or_says_so(download, tmp_path: Path) -> None:
    error = download("all-MiniLM-L6-v2", env={"HF_HUB_OFFLINE": "1"}).failed()
    assert error == (f"HF_HUB_OFFLINE is set and all-MiniLM-L6-v2 is not in {tmp_path / 'models' / 'all-MiniLM-L6-v2'}"
                     "; unset HF_HUB_OFFLINE to download it")
    folder = download("all-MiniLM-L6-v2").ok()
    assert download("all-MiniLM-L6-v2", env={"HF_HUB_OFFLINE": "1"}).ok() == folder


# ---------------------------------------------------------------------------------------- pure functions


def test_local_dir_for_catalog_ids_and_repos(tmp_path: Path) -> None:
    assert local_dir_for("all-minilm-l6-v2", tmp_path) == tmp_path / "all-MiniLM-L6-v2"
    assert local_dir_for(MINILM, tmp_path) == tmp_path / "all-MiniLM-L6-v2"
    assert local_dir_for(R1_GGUF, tmp_path) == tmp_path / "DeepSeek-R1-Distill-Qwen-1.5B"
    assert local_dir_for("someone/Some-Model", tmp_path) == tmp_path / "someone--Some-Model"
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        local_dir_for("nope", tmp_path)


def test_select_gguf_matches_whole_quant_tokens() -> None:
    files = ["m-Q4_K.gguf", "m-Q4_K_M.gguf", "m-IQ4_XS.gguf", "m.Q4_XS.gguf", "sub/m-q8_0-00002-of-00002.gguf",
             "sub/m-q8_0-00001-of-00002.gguf", "README.md"]
    assert select_gguf(files, "Q4_K", "r") == ["m-Q4_K.gguf"]
    assert select_gguf(files, "q4_k_m", "r") == ["m-Q4_K_M.gguf"]
    assert select_gguf(files, "Q4_XS", "r") == ["m.Q4_XS.gguf"]
    assert select_gguf(files, "Q8_0", "r") == ["sub/m-q8_0-00001-of-00002.gguf", "sub/m-q8_0-00002-of-00002.gguf"]
    assert select_gguf(files, "m-IQ4_XS.gguf", "r") == ["m-IQ4_XS.gguf"]
    assert available_quants(files) == ["IQ4_XS", "Q4_K", "Q4_K_M", "Q4_XS", "Q8_0"]
    with pytest.raises(ConfigError, match="holds only parts"):
        select_gguf(["a-Q8_0-00001-of-00003.gguf", "a-Q8_0-00003-of-00003.gguf"], "Q8_0", "r")
    with pytest.raises(ConfigError, match="several GGUF files"):
        select_gguf(["a-Q8_0.gguf", "b-Q8_0.gguf"], "Q8_0", "r")
    with pytest.raises(ConfigError, match="has no .gguf files"):
        select_gguf(["config.json"], "Q8_0", "r")


def test_checkpoint_patterns_fall_back_to_pytorch_weights_only_without_safetensors() -> None:
    files = ["config.json", "pytorch_model.bin", "vocab.txt", "README.md"]
    assert matching_files(files, checkpoint_patterns(None, files, "a/b")) == ["config.json", "pytorch_model.bin",
                                                                              "vocab.txt"]
    files = ["config.json", "model.safetensors", "pytorch_model.bin"]
    assert matching_files(files, checkpoint_patterns(None, files, "a/b")) == ["config.json", "model.safetensors"]
